"""Pydantic's validation errors in the user's words: the field path as the file spells it
(`faults[2].at`, not a discriminator's branch), the rule with its fix, the fields allowed
where a key is unknown, and the value as the file wrote it."""

from __future__ import annotations

import datetime
import difflib
import re
import types
import typing
from typing import Annotated, Any, Union

from pydantic import BaseModel

from unstuck.scenario.fields import FLOAT_MAX, NAME_PATTERN
from unstuck.scenario.messages import cut
from unstuck.scenario.schema import (
    BOUND_WHY,
    FAULT_MODELS,
    FAULT_TYPES,
    Dist,
    Freeze,
    PoolModel,
    Scenario,
    Workspaces,
)


def field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in FAULT_TYPES:
            continue  # the discriminator's branch, not a field
        else:
            name = "from" if part == "from_" else str(part)
            if not re.fullmatch(r"[\w-]+", name):  # an unknown key: `a b`, `a\nb`: one line
                name = repr(name)
            out += ("." if out else "") + cut(name, 40)
    return out or "(top level)"


def _model_at(loc: tuple[Any, ...]) -> Any:
    """The pydantic model class that owns the field at `loc` (for 'allowed fields' lists)."""
    cls: Any = Scenario
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if part in FAULT_TYPES:
            cls = FAULT_MODELS[part]
            continue
        field = cls.model_fields.get(part) if isinstance(cls, type) and issubclass(cls, BaseModel) else None
        if field is None:
            return None
        cls = _inner_model(field.annotation)
    return cls


def _inner_model(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    if origin in (Union, types.UnionType, list, tuple, Annotated):
        for arg in typing.get_args(tp):
            m = _inner_model(arg)
            if m is not None:
                return m
    return None


def rule_text(err: dict[str, Any]) -> str:
    kind, msg, ctx = err["type"], err["msg"], err.get("ctx") or {}
    if kind == "missing":
        return "required field is missing; add it"
    if kind == "extra_forbidden":
        cls = _model_at(tuple(err["loc"]))
        allowed = [f.alias or n for n, f in cls.model_fields.items()] if cls is not None else []
        near = difflib.get_close_matches(str(err["loc"][-1]), allowed, n=1)
        return ("unknown field" + (f" (did you mean {near[0]}?)" if near else "")
                + (f"; allowed here: {', '.join(allowed)}" if allowed else ""))
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return _shape_rule(tuple(err["loc"]), err.get("input"))
    if kind == "list_type":
        return _list_rule(tuple(err["loc"]), err.get("input"))
    if kind == "string_type" and isinstance(err.get("input"), datetime.date):
        return "YAML read a date where text goes; quote it, e.g. '2020-01-01'"
    if kind == "string_type" and isinstance(err.get("input"), int | float | bool):
        # `names: [1e5, 7]`: YAML read a number (or yes/no) where a name goes.
        return ("YAML read a number or a boolean where text goes; quote it as you wrote it, "
                "e.g. '1e5' or 'yes'")
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected', '')}"
    if kind == "union_tag_invalid":
        return f"unknown fault type; choose one of {', '.join(FAULT_TYPES)}"
    if kind == "union_tag_not_found":
        return f"a fault needs a type; choose one of {', '.join(FAULT_TYPES)}"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if kind == "greater_than":
        return f"must be > {ctx.get('gt')}"
    if kind == "greater_than_equal":
        return f"must be >= {ctx.get('ge')}"
    if kind == "less_than_equal":
        le = ctx.get("le")
        le = int(le) if isinstance(le, float) and le.is_integer() else le
        rule = next((BOUND_WHY[k] for k in map(str, err["loc"][::-1][:2]) if k in BOUND_WHY),
                    "must be <= {le}")
        return rule.format(le=le)
    if msg.startswith("Input should be "):
        return "expected " + msg.removeprefix("Input should be ")
    return msg


def _shape_rule(loc: tuple[Any, ...], value: Any) -> str:
    """What a mapping at `loc` looks like, where pydantic said "a valid dictionary or
    instance of Workspaces" (a class name the user never wrote)."""
    cls = _model_at(loc + (None,))
    if cls is Dist:
        return ("expected seconds as a number (a fixed time) or a distribution such as "
                "{kind: uniform, min: 20, max: 90}")
    if loc[:1] == ("faults",) and len(loc) == 2:
        return "expected a fault, a mapping such as {type: pod-kill, at: 0}"
    if loc[-1:] == ("types",):
        return "expected task types with weights, such as {plan_and_apply: 3, plan: 1}"
    example = {Workspaces: "{count: 1, at: [0]}", PoolModel: "{id: pool-1}",
               Freeze: '{from: "22:00", to: "23:00"}'}.get(cls)
    if example:
        return f"expected a mapping such as {example}"
    fields = [f.alias or n for n, f in cls.model_fields.items()] if cls is not None else []
    return "expected a mapping (field: value)" + (
        f" of: {', '.join(fields)}" if fields else "")


_LISTS = {"pools": "[{id: pool-1}]", "workload": "[{count: 1, at: [0]}]",
          "faults": "[{type: pod-kill, at: 0}]", "freeze": '[{from: "22:00", to: "23:00"}]',
          "names": "[ws-a]", "at": "[0]"}


def _list_rule(loc: tuple[Any, ...], value: Any) -> str:
    """"expected a list", with the list to write: the user's one value in brackets where
    that is a valid item (`names: ws-a`: [ws-a]), else an example."""
    field = loc[-1] if loc else None
    if field == "names" and isinstance(value, str) and NAME_PATTERN.fullmatch(value):
        fix = f"[{value}]"
    elif field == "at" and isinstance(value, int | float) and not isinstance(value, bool) and (
            0 <= value <= FLOAT_MAX):
        fix = f"[{value}]"
    else:
        fix = _LISTS.get(field, "[a, b]")
    return f"expected a list; write {fix}"


def odd_key_rule(key: Any, text: str | None) -> str:
    """A key YAML read as something other than text: say what it was read as, in the
    user's own spelling where the loader kept it (`yes`, not True)."""
    kind = ("a boolean (YAML 1.1 reads unquoted yes, no, on, off, true and false so)"
            if isinstance(key, bool) else "null" if key is None else
            "a number" if isinstance(key, int | float) else "a date")
    text = text if text is not None else ("null" if key is None else str(key).lower()
                                          if isinstance(key, bool) else str(key))
    return (f"the key {text} was read as {kind}, and a key here is a field name; write the "
            f"field's name, or quote it: '{text}':")


def user_loc(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """`loc` cut where the file has a plain value: `connect_s: -5` is read as
    `{kind: fixed, value: -5}`, and its error is at `connect_s`, not `connect_s.value`."""
    node = data
    for n, part in enumerate(loc):
        if part in FAULT_TYPES:
            continue
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif isinstance(node, int | float) and not isinstance(node, bool):
            return loc[:n]
        else:
            return loc
    return loc


def as_written(data: Any, path: str, value: Any) -> Any:
    """The value at `path` as the file wrote it (`900`, where validation made it 900.0), so
    that a message quotes the user; `value` when the file holds something else there (a
    default, or a path that names a list for one of its items)."""
    node = data
    for part in re.findall(r"\[(\d+)\]|([^.\[\]]+)", path):
        index, key = part
        if index and isinstance(node, list) and int(index) < len(node):
            node = node[int(index)]
        elif key and isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return value
    return node if node == value and type(node) is not bool else value
