"""Tiny history builder for checker tests: one line per event, rows exactly as the run writes.

`Story.add(t, kind, **fields)` appends a `HistoryEvent` and returns its seq, so a test can
name the rows it expects in a witness. The source is derived from the kind as the schema says
(exec.* from the agent, pod.* world events from the world, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scheduler.history import History, HistoryEvent, Kind, Source, read_jsonl

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "histories"

_SOURCES = {"pod.added": "world", "pod.terminating": "world", "pod.removed": "world",
            "node": "world", "fault": "fault", "user": "user", "run.end": "harness"}


def fixture(name: str) -> list[dict[str, Any]]:
    return read_jsonl(FIXTURES / name)


class Story:
    def __init__(self) -> None:
        self.history = History()

    def add(self, t: float, kind: str, **fields: Any) -> int:
        source = "agent" if kind.startswith("exec.") else _SOURCES.get(kind, "scheduler")
        fields.setdefault("data", {})
        self.history.append(HistoryEvent(t, Kind(kind), Source(source), **fields))
        return len(self.history) - 1

    # Shorthands for the rows almost every story needs.
    def created(self, t: float, task: int, ws: str = "ws-1", typ: str = "plan_and_apply") -> int:
        return self.add(t, "task.created", task=task, workspace=ws, to_status="pending",
                        data={"type": typ, "user": "u"})

    def to(self, t: float, task: int, frm: str, to: str, ws: str = "ws-1", reason: str = "",
           **kw: Any) -> int:
        return self.add(t, "task.transition", task=task, workspace=ws, from_status=frm,
                        to_status=to, reason=reason, **kw)

    def confirm(self, t: float, task: int, ws: str = "ws-1", user: str | None = "u",
                digest: str | None = None) -> int:
        return self.add(t, "task.confirmed", task=task, workspace=ws,
                        data={"user": user, "digest": digest})

    def end(self, t: float, bound_s: float = 300, drain_s: float = 600) -> int:
        return self.add(t, "run.end", data={"bound_s": bound_s, "drain_s": drain_s})

    def rows(self) -> list[dict[str, Any]]:
        """The rows in time order, as a run writes them (docs/history.md): a story may tell
        one task after another, so rows of equal `t` keep the order they were added in and
        `seq` is renumbered (what `add` returned is a row's seq only in a story told in time
        order)."""
        rows = self.history.rows()
        order = sorted(rows, key=lambda r: r["t"])
        return [{**r, "seq": i} for i, r in enumerate(order)]
