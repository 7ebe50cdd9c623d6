"""The history: one record schema shared by simulated and live runs.

Contract: plain data and pure functions. The scheduler core, the SimPy world, the live
service and the agents all append `HistoryEvent`s; the checker, the reports and the
notebooks read them and nothing else (Elle's "record first, judge second"). The schema is
documented in docs/history.md; a change here is a change of that document.

Canonical form: one JSON object per line, keys sorted, no spaces, `t` rounded to the
microsecond, enum values as their strings. Two runs are "the same history" when their
canonical bytes are equal; `digest()` is the sha256 of those bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any


class Kind(str, Enum):
    # Task life (scheduler).
    TASK_CREATED = "task.created"
    TASK_REJECTED = "task.rejected"
    TASK_TRANSITION = "task.transition"
    TASK_CONFIRMED = "task.confirmed"
    CONFIRM_REJECTED = "confirm.rejected"
    TASK_CANCELLED = "task.cancel"
    # Dispatch decisions (scheduler).
    DISPATCH = "dispatch"
    DISPATCH_FAILED = "dispatch.failed"
    RETRY_SCHEDULED = "retry.scheduled"
    REPORT_REFUSED = "report.refused"
    STORE_WRITE_FAILED = "store.write_failed"
    # Slots and locks (scheduler).
    SLOT_ASSIGNED = "slot.assigned"
    SLOT_RESERVED = "slot.reserved"
    SLOT_RELEASED = "slot.released"
    LOCK_ACQUIRED = "lock.acquired"
    LOCK_RELEASED = "lock.released"
    # Cluster commands and the scheduler's view of the cluster.
    POD_CREATE = "pod.create"
    POD_DELETE = "pod.delete"
    POD_ANNOTATE = "pod.annotate"
    SCALE = "scale"
    DECISION = "decision"
    AGENT_CONNECTED = "agent.connected"
    AGENT_DISCONNECTED = "agent.disconnected"
    SCHEDULER_RESTART = "scheduler.restart"
    # The world: what really happened (simulation or live observers).
    POD_ADDED = "pod.added"
    POD_TERMINATING = "pod.terminating"
    POD_REMOVED = "pod.removed"
    NODE = "node"
    FAULT = "fault"
    FAULT_END = "fault.end"
    USER = "user"
    # Agent execution, Elle-style: invoke, then ok / fail / info (outcome unknown).
    EXEC_INVOKE = "exec.invoke"
    EXEC_OK = "exec.ok"
    EXEC_FAIL = "exec.fail"
    EXEC_INFO = "exec.info"
    RUN_END = "run.end"


class Source(str, Enum):
    SCHEDULER = "scheduler"
    WORLD = "world"
    AGENT = "agent"
    USER = "user"
    FAULT = "fault"
    HARNESS = "harness"


@dataclass(frozen=True, slots=True, init=False)
class HistoryEvent:
    t: float
    kind: Kind
    source: Source = Source.SCHEDULER
    task: int | None = None
    workspace: str | None = None
    pod: str | None = None
    slot: int | None = None
    agent: str | None = None
    from_status: str | None = None
    to_status: str | None = None
    reason: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def __init__(
        self, t: float, kind: Kind, source: Source = Source.SCHEDULER, task: int | None = None,
        workspace: str | None = None, pod: str | None = None, slot: int | None = None,
        agent: str | None = None, from_status: str | None = None, to_status: str | None = None,
        reason: str = "", data: dict[str, Any] | None = None,
    ) -> None:
        """The dataclass `__init__`, written out for speed: a frozen dataclass sets each
        field through `object.__setattr__`, this one through the slots' own setters, a third
        faster (a simulated day records up to 700k events)."""
        _set_t(self, t)
        _set_kind(self, kind)
        _set_source(self, source)
        _set_task(self, task)
        _set_workspace(self, workspace)
        _set_pod(self, pod)
        _set_slot(self, slot)
        _set_agent(self, agent)
        _set_from_status(self, from_status)
        _set_to_status(self, to_status)
        _set_reason(self, reason)
        _set_data(self, {} if data is None else data)

    def to_row(self, seq: int) -> dict[str, Any]:
        """The serialised row: what files, DataFrames and the checker see."""
        # Written for speed (a simulated day can hold 700k rows): the common case is that
        # every value is already a plain scalar, so `_plain` runs only for the rest.
        # `_value_` is what the `value` property returns, without the property call.
        frm, to, t, data = self.from_status, self.to_status, self.t, self.data
        return {
            "seq": seq,
            "t": round(t if type(t) is float else float(t), 6),
            "kind": self.kind._value_,
            "source": self.source._value_,
            "task": self.task,
            "workspace": self.workspace,
            "pod": self.pod,
            "slot": self.slot,
            "agent": self.agent,
            "from_status": frm if type(frm) in _SCALARS else _plain(frm),
            "to_status": to if type(to) in _SCALARS else _plain(to),
            "reason": self.reason,
            "data": data.copy() if _SCALARS.issuperset(map(type, data.values()))
            else {k: v if type(v) in _SCALARS else _plain(v) for k, v in data.items()},
        }


(_set_t, _set_kind, _set_source, _set_task, _set_workspace, _set_pod, _set_slot, _set_agent,
 _set_from_status, _set_to_status, _set_reason, _set_data) = (
    HistoryEvent.__dict__[f.name].__set__ for f in fields(HistoryEvent))


COLUMNS = (
    "seq", "t", "kind", "source", "task", "workspace", "pod", "slot", "agent",
    "from_status", "to_status", "reason", "data",
)


_SCALARS = frozenset((str, int, float, bool, type(None)))


def _plain(value: Any) -> Any:
    if type(value) in _SCALARS:
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


class History:
    """An append-only log; the default HistorySink for simulations and tests."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: list[HistoryEvent] = []

    def append(self, event: HistoryEvent) -> None:
        self.events.append(event)

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[HistoryEvent]:
        return iter(self.events)

    def rows(self, *, release: bool = False) -> list[dict[str, Any]]:
        """The serialised rows. `release=True` empties the log as it goes, so a long history
        never exists twice in memory (a seed-head day peaks at 0.94 GB instead of 1.12 GB)."""
        if not release:
            return [e.to_row(i) for i, e in enumerate(self.events)]
        events, out = self.events, []
        for i in range(len(events)):
            out.append(events[i].to_row(i))
            events[i] = None  # type: ignore[call-overload]
        events.clear()
        return out

    def of_kind(self, *kinds: Kind) -> list[HistoryEvent]:
        wanted = set(kinds)
        return [e for e in self.events if e.kind in wanted]

    def for_task(self, task_id: int) -> list[HistoryEvent]:
        return [e for e in self.events if e.task == task_id]


def canonical_line(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, separators=(",", ":"), allow_nan=False)


def canonical_bytes(rows: Iterable[dict[str, Any]]) -> bytes:
    return b"".join((canonical_line(r) + "\n").encode() for r in rows)


def digest(rows: Iterable[dict[str, Any]]) -> str:
    h = hashlib.sha256()
    for r in rows:
        h.update((canonical_line(r) + "\n").encode())
    return h.hexdigest()


def read_jsonl(path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
