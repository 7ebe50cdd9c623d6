"""Properties: a task's verdict depends on its own story only, and witnesses never lie.

Into each checked-in history we weave the events of an unrelated task (its own workspace,
pod, agent and node; any statuses in any order, faults included) and check that every
verdict and metric about the original tasks is unchanged, up to the renumbering of seq.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.history import HistoryEvent, Kind, Source
from unstuck import checker

from .story import FIXTURES, fixture

NAMES = sorted(p.name for p in FIXTURES.glob("*.jsonl"))
STATUSES = ["pending", "running", "apply_pending", "applied", "failed", "cancelled",
            "planned_and_finished"]
OTHER = 9000  # unrelated task ids start here


@st.composite
def unrelated_event(draw: Any) -> dict[str, Any]:
    task = OTHER + draw(st.integers(0, 2))
    ws = f"ws-unrelated-{task}"
    action = draw(st.sampled_from(["plan", "apply"]))
    kind = draw(st.sampled_from([
        "task.created", "task.transition", "task.transition", "task.confirmed", "task.cancel",
        "dispatch", "dispatch.failed", "exec.invoke", "exec.ok", "exec.fail", "exec.info",
        "slot.assigned", "slot.reserved", "slot.released", "lock.acquired", "lock.released",
        "fault", "pod.added", "retry.scheduled", "store.write_failed",
    ]))
    f: dict[str, Any] = {"task": task, "workspace": ws, "data": {}}
    if kind == "task.created":
        f.update(to_status="pending",
                 data={"type": draw(st.sampled_from(["plan", "plan_and_apply"])), "user": "z"})
    elif kind == "task.transition":
        f.update(from_status=draw(st.sampled_from(STATUSES)),
                 to_status=draw(st.sampled_from(STATUSES)), reason=draw(st.sampled_from(["", "x"])))
    elif kind == "task.confirmed":
        f["data"] = {"user": draw(st.sampled_from(["z", None])),
                     "digest": draw(st.sampled_from(["d", None]))}
    elif kind.startswith(("dispatch", "exec.")):
        f.update(pod="pod-u", agent="agent-u", data={"action": action, "fence": 1})
    elif kind.startswith("slot."):
        f.update(pod="pod-u", slot=draw(st.integers(0, 1)))
    elif kind.startswith("lock."):
        f["task"] = draw(st.sampled_from([task, None]))
    elif kind == "fault":
        f = {"task": draw(st.sampled_from([task, None])), "pod": "pod-u", "agent": "agent-u",
             "data": {"type": draw(st.sampled_from(["pod-kill", "node-loss", "agent-disconnect"])),
                      "node": "node-u"}}
    elif kind == "pod.added":
        f = {"pod": "pod-u", "data": {"node": "node-u"}}
    elif kind == "retry.scheduled":
        f["task"] = draw(st.sampled_from([task, None]))
    source = "agent" if kind.startswith("exec.") else {
        "fault": "fault", "pod.added": "world"}.get(kind, "scheduler")
    return HistoryEvent(0.0, Kind(kind), Source(source), **f).to_row(0)


def _weave(rows: list[dict], extra: list[tuple[int, dict]]) -> tuple[list[dict], dict[int, int]]:
    """Insert `extra` rows before original rows 1..n-1 (so never after run.end), each at the
    time of the row before it; renumber seq. Returns the rows and old seq -> new seq."""
    by_pos: dict[int, list[dict]] = {}
    for pos, row in extra:
        by_pos.setdefault(pos % (len(rows) - 1) + 1, []).append(row)
    out: list[dict] = []
    new_seq: dict[int, int] = {}
    for i, row in enumerate(rows):
        for e in by_pos.get(i, []):
            out.append({**e, "seq": len(out), "t": rows[i - 1]["t"]})
        new_seq[row["seq"]] = len(out)
        out.append({**row, "seq": len(out)})
    return out, new_seq


def _remap(v: checker.Violation, new_seq: dict[int, int]) -> tuple:
    return (v.invariant, v.task, v.workspace, v.t, v.message, tuple(new_seq[s] for s in v.witness))


def _ours(v: checker.Violation) -> bool:
    if v.task is not None:
        return v.task < OTHER
    return not (v.workspace or "").startswith("ws-unrelated")


def _metric_key(rec: Any, new_seq: dict[int, int] | None) -> tuple:
    d = rec.to_dict()
    for k in ("fault_seq", "effect_seq", "progress_seq", "confirm_seq", "apply_seq"):
        if new_seq is not None and d.get(k) is not None:
            d[k] = new_seq[d[k]]
    return tuple(sorted((k, "nan" if isinstance(v, float) and math.isnan(v) else v)
                        for k, v in d.items()))


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(NAMES),
       extra=st.lists(st.tuples(st.integers(0, 1000), unrelated_event()), max_size=25))
def test_unrelated_events_never_change_a_tasks_verdict(name: str, extra: list) -> None:
    rows = fixture(name)
    woven, new_seq = _weave(rows, extra)
    # Positions map: an original row keeps its identity through the weave.
    for old, new in new_seq.items():
        assert {k: v for k, v in woven[new].items() if k != "seq"} == \
            {k: v for k, v in rows[old].items() if k != "seq"}

    before, m_before = checker.judge(rows)
    after, m_after = checker.judge(woven)
    assert [_remap(v, new_seq) for v in before.violations] == \
        [(v.invariant, v.task, v.workspace, v.t, v.message, v.witness)
         for v in after.violations if _ours(v)]
    for field in ("recovery", "confirm_to_apply", "stuck"):
        old = [_metric_key(r, new_seq) for r in getattr(m_before, field)]
        new = [_metric_key(r, None) for r in getattr(m_after, field) if r.task < OTHER]
        assert old == new, field

    # Witnesses are ordered, exist, and never cite a row after the violation.
    t_of = {r["seq"]: r["t"] for r in woven}
    for v in after.violations:
        assert list(v.witness) == sorted(set(v.witness)) and v.witness
        assert all(t_of[s] <= v.t for s in v.witness), v

