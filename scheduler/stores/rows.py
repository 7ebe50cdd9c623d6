"""Records as table rows: the column codecs and table definitions both SQL stores share.

Why one module: a row must read the same in SQLite and in PostgreSQL (enums as the strings
the real system stores, booleans as 0/1, times as seconds, freeze windows as a JSON list),
and a record read back must equal the dataclass written, field types included. The codecs
are derived from the dataclass type hints, so a new field needs a migration but no codec
edit. Nothing here knows a driver or a placeholder style: that is `scheduler.stores.sql`.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable
from enum import Enum
from typing import Any

from scheduler.model import AgentRow, FreezeWindow, PlanArtifact, Pool, Task, Workspace


def _identity(value: Any) -> Any:
    return value


def _field_codec(hint: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """(encode, decode) for one field type; `X | None` passes None through both ways."""
    nullable = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(hint))
        if len(args) != 1:
            raise TypeError(f"no column codec for union type {hint!r}")
        hint = args[0]

    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]
    if isinstance(hint, type) and issubclass(hint, Enum):
        enum_type = hint
        encode, decode = (lambda v: enum_type(v).value), enum_type
    elif hint is bool:
        encode, decode = int, bool
    elif typing.get_origin(hint) is tuple and typing.get_args(hint)[0] is FreezeWindow:
        encode = _encode_windows
        decode = _decode_windows
    elif hint in (int, float, str):
        encode = decode = _identity
    else:
        raise TypeError(f"no column codec for field type {hint!r}")

    if not nullable:
        return encode, decode
    return (
        lambda v: None if v is None else encode(v),
        lambda v: None if v is None else decode(v),
    )


def _encode_windows(windows: tuple[FreezeWindow, ...]) -> str:
    return json.dumps([[w.start_s, w.end_s] for w in windows])


def _decode_windows(text: str) -> tuple[FreezeWindow, ...]:
    return tuple(FreezeWindow(start, end) for start, end in json.loads(text))


class Table:
    """One record type stored in one table keyed by one of its fields, one column a field."""

    def __init__(self, name: str, record: type, key: str) -> None:
        hints = typing.get_type_hints(record)
        self.name = name
        self.record = record
        self.key = key
        self.text_key = hints[key] is str
        self.columns = tuple(f.name for f in dataclasses.fields(record))
        codecs = [_field_codec(hints[c]) for c in self.columns]
        self._encoders = {c: enc for c, (enc, _) in zip(self.columns, codecs, strict=True)}
        self._decoders = [dec for _, dec in codecs]

    def encode(self, obj: Any) -> tuple[Any, ...]:
        return tuple(self._encoders[c](getattr(obj, c)) for c in self.columns)

    def encode_field(self, column: str, value: Any) -> Any:
        return self._encoders[column](value)

    def decode(self, row: tuple[Any, ...]) -> Any:
        values = {c: dec(v) for c, dec, v in zip(self.columns, self._decoders, row, strict=True)}
        return self.record(**values)


TASKS = Table("tasks", Task, "id")
WORKSPACES = Table("workspaces", Workspace, "id")
POOLS = Table("pools", Pool, "id")
AGENTS = Table("agents", AgentRow, "id")
PLANS = Table("plans", PlanArtifact, "task_id")
TABLES = (TASKS, WORKSPACES, POOLS, AGENTS, PLANS)
