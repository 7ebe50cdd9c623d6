"""The timeline of one seed: what each task, its slots and its pods did, as plain segments.

This is the data behind the report's Gantt chart (and its table): per task, the status it was
in over time, the slot it held (running or reserved), the lifetime of each pod it held a slot
on (with the terminating part), the faults that hit it and the witness rows of its
violations. Pure data from history rows, so a notebook can tabulate it without matplotlib.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from unstuck.checker.verdicts import stuck_first

# The history kinds a timeline reads (plus the witness rows): pass them to `Results.history`.
KINDS = ("task.created", "task.transition", "slot.assigned", "slot.reserved", "slot.released",
         "pod.added", "pod.terminating", "pod.removed", "fault", "run.end")
_TERMINAL = {"planned_and_finished", "success", "applied", "failed", "cancelled"}


@dataclass(frozen=True)
class Segment:
    task: int
    kind: str  # status | slot | pod
    label: str  # the status; "running"/"reserved" for a slot; the pod name (+ " terminating")
    start: float
    end: float
    open: bool  # still going at the end of the run


@dataclass(frozen=True)
class Mark:
    task: int | None  # None: a fault that hit no shown task (drawn across the chart)
    kind: str  # fault | witness | violation
    t: float
    seq: int | None  # the history row; None for a violation, which is no row
    label: str


@dataclass(frozen=True)
class Timeline:
    scenario: str
    scheduler: str
    seed: int
    tasks: tuple[int, ...]
    segments: tuple[Segment, ...]
    marks: tuple[Mark, ...]
    end_t: float

    def table(self) -> pd.DataFrame:
        """Segments and marks in one table (the numbers behind the Gantt chart)."""
        rows = [{"what": "segment", **asdict(s)} for s in self.segments]
        rows += [{"what": "mark", "task": m.task, "kind": m.kind, "label": m.label, "start": m.t,
                  "end": m.t, "open": False, "seq": m.seq} for m in self.marks]
        cols = ["what", "task", "kind", "label", "start", "end", "open", "seq"]
        # Ids stay ints where some are missing (a segment's seq, a fault that hit no task).
        return pd.DataFrame(rows, columns=cols).astype({"task": "Int64", "seq": "Int64"})


def choose_tasks(rows: list[dict[str, Any]], violations: list[dict[str, Any]], limit: int) -> list[int]:
    """The tasks worth drawing: those a violation names (stuck ones first), then their
    workspaces' other tasks, then the rest in creation order, at most `limit`."""
    created = [r["task"] for r in rows if r["kind"] == "task.created" and r.get("task") is not None]
    ws_of = {r["task"]: r.get("workspace") for r in rows if r["kind"] == "task.created"}
    named = stuck_first(violations)
    picked: list[int] = []
    for v in named:
        if v.get("task") is not None and v["task"] not in picked:
            picked.append(int(v["task"]))
    wss = {ws_of.get(t) for t in picked} | {v.get("workspace") for v in named if v.get("workspace")}
    picked += [t for t in created if ws_of.get(t) in wss and t not in picked]
    picked += [t for t in created if t not in picked]
    return picked[:limit]


def extract(rows: list[dict[str, Any]], violations: list[dict[str, Any]], *, scenario: str = "",
            scheduler: str = "", seed: int = 0, limit: int = 12) -> Timeline:
    """Build the timeline of the chosen tasks. `violations` are dicts with invariant, task,
    workspace, t and witness (a list of seq numbers), as in the `violations` table."""
    end_t = max((float(r["t"]) for r in rows), default=0.0)
    tasks = choose_tasks(rows, violations, limit)
    shown = set(tasks)
    segs: list[Segment] = []
    status_at: dict[int, tuple[str, float]] = {}
    slot_at: dict[tuple[str, int], tuple[int, str, float]] = {}
    pods_of: dict[int, set[str]] = {t: set() for t in tasks}
    held: dict[str, set[int]] = {}  # pod -> tasks holding a slot on it now
    fault_marks: list[Mark] = []
    for r in rows:
        kind, tid, t = r["kind"], r.get("task"), float(r["t"])
        if kind == "task.created" and tid in shown:
            status_at[tid] = ("pending", t)
        elif kind == "task.transition" and tid in shown and r.get("to_status"):
            prev = status_at.get(tid)
            if prev is not None:
                segs.append(Segment(tid, "status", prev[0], prev[1], t, False))
            status_at[tid] = (r["to_status"], t)
        elif kind in ("slot.assigned", "slot.reserved") and tid in shown and r.get("pod"):
            key = (r["pod"], r.get("slot") if r.get("slot") is not None else -1)
            slot_at[key] = (tid, "reserved" if kind == "slot.reserved" else "running", t)
            pods_of[tid].add(r["pod"])
            held.setdefault(r["pod"], set()).add(tid)
        elif kind == "fault":
            fault_marks += _fault_marks(r, shown, held)
        elif kind == "slot.released" and r.get("pod"):
            key = (r["pod"], r.get("slot") if r.get("slot") is not None else -1)
            got = slot_at.pop(key, None)
            if got is not None:
                held.get(r["pod"], set()).discard(got[0])
                if t > got[2]:
                    segs.append(Segment(got[0], "slot", got[1], got[2], t, False))
    for tid, (status, start) in status_at.items():
        if status not in _TERMINAL:
            segs.append(Segment(tid, "status", status, start, end_t, True))
    for (_pod, _slot), (tid, label, start) in slot_at.items():
        segs.append(Segment(tid, "slot", label, start, end_t, True))
    segs += _pod_segments(rows, pods_of, end_t)
    marks = _unique(fault_marks + _violation_marks(rows, violations, shown))
    return Timeline(scenario, scheduler, seed, tuple(tasks), tuple(segs), tuple(marks), end_t)


def _pod_segments(rows: list[dict[str, Any]], pods_of: dict[int, set[str]], end_t: float) -> list[Segment]:
    added: dict[str, float] = {}
    terminating: dict[str, float] = {}
    removed: dict[str, float] = {}
    for r in rows:
        pod = r.get("pod")
        if not pod:
            continue
        if r["kind"] == "pod.added":
            added.setdefault(pod, float(r["t"]))
        elif r["kind"] == "pod.terminating":
            terminating.setdefault(pod, float(r["t"]))
        elif r["kind"] == "pod.removed":
            removed.setdefault(pod, float(r["t"]))
    out = []
    for tid, pods in pods_of.items():
        for pod in sorted(pods):
            start = added.get(pod, 0.0)
            stop = removed.get(pod, end_t)
            term = terminating.get(pod)
            live_end = term if term is not None else stop
            out.append(Segment(tid, "pod", pod, start, live_end, pod not in removed and term is None))
            if term is not None:
                out.append(Segment(tid, "pod", f"{pod} terminating", term, stop, pod not in removed))
    return out


def _fault_marks(r: dict[str, Any], shown: set[int], held: dict[str, set[int]]) -> list[Mark]:
    """A fault marks the tasks it names or whose slot was on its pod at that moment."""
    label = str((r.get("data") or {}).get("type") or "fault")
    on_pod = held.get(r["pod"], set()) if r.get("pod") else set()
    hit = sorted(t for t in shown if r.get("task") == t or t in on_pod)
    return [Mark(t, "fault", float(r["t"]), r["seq"], label) for t in hit or [None]]


def _unique(marks: list[Mark]) -> list[Mark]:
    """Each mark once: a fault is marked on the tasks it hit and again for each violation
    that cites it as a witness, and two violations of one task may share witness rows. A
    fault drawn across the chart (it hit no shown task) is dropped once a violation ties it
    to a shown task."""
    tied = {m.seq for m in marks if m.kind == "fault" and m.task is not None}
    return list(dict.fromkeys(m for m in marks
                              if not (m.kind == "fault" and m.task is None and m.seq in tied)))


def _violation_marks(rows: list[dict[str, Any]], violations: list[dict[str, Any]],
                     shown: set[int]) -> list[Mark]:
    by_seq = {r["seq"]: r for r in rows}
    out = []
    for v in violations:
        tid = v.get("task")
        if tid is None or int(tid) not in shown:
            continue
        tid = int(tid)
        out.append(Mark(tid, "violation", float(v["t"]), None, str(v["invariant"])))
        for seq in v.get("witness") or []:
            row = by_seq.get(int(seq))
            if row is not None:
                out.append(Mark(tid, "witness", float(row["t"]), int(seq), str(row["kind"])))
                if row["kind"] == "fault":  # the checker tied this fault to the task
                    label = str((row.get("data") or {}).get("type") or "fault")
                    out.append(Mark(tid, "fault", float(row["t"]), int(seq), label))
    return out
