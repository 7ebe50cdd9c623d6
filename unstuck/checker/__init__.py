"""unstuck.checker: a pure judge over histories.

Contract: input is a history, a list of row dicts as written by `scheduler.history`
(`History.rows()` or `read_jsonl`), and nothing else; output is a `Verdict` (violations, each
with a minimal witness of `seq` numbers) and `Metrics` (plain frozen records). The checker
never imports simpy, kubernetes, `sim` or `chaos`, never reads a clock or a live object, and
gives the same answer for the same rows, so a simulated run and a live run are judged by the
same code. One pass groups the rows by task and workspace (`timelines`); each invariant is a
pure function in `invariants`; `witness` builds the explanations; `metrics` measures.
docs/checker.md and docs/metrics.md define every rule.

This `__init__` imports names (not only modules) because it is the package's public surface.
"""

from __future__ import annotations

from collections.abc import Iterable

from scheduler.gc_pause import paused
from unstuck.checker import invariants, metrics, timelines
from unstuck.checker.metrics import Metrics, measure, summary
from unstuck.checker.timelines import Row, Timelines
from unstuck.checker.verdicts import (
    INVARIANTS,
    LIVENESS,
    SAFETY,
    HistoryInvalid,
    Verdict,
    Violation,
    witness_rows,
)

__all__ = [
    "INVARIANTS", "LIVENESS", "SAFETY", "HistoryInvalid", "Metrics", "Verdict", "Violation",
    "check", "judge", "measure", "summary", "witness_rows",
]


def check(
    rows: Iterable[Row] | Timelines, *, bound_s: float | None = None, drain_s: float | None = None
) -> Verdict:
    """Judge a history against every invariant.

    `bound_s` (the apply_pending bound) and `drain_s` default to the run.end row's data;
    passing them overrides it. Raises `HistoryInvalid` when neither gives a value, or the rows
    are malformed.
    """
    with paused():
        return _check(rows if isinstance(rows, Timelines) else timelines.build(
            rows, bound_s=bound_s, drain_s=drain_s))


def _check(tl: Timelines) -> Verdict:
    tl.run.bound()
    tl.run.drain()
    order = {name: i for i, name in enumerate(INVARIANTS)}
    found = [v for inv in invariants.ALL for v in inv(tl)]
    found.sort(key=lambda v: (v.t, order[v.invariant], -1 if v.task is None else v.task,
                              v.witness))
    return Verdict(
        violations=tuple(found),
        end_t=tl.run.end_t,
        bound_s=tl.run.bound(),
        drain_s=tl.run.drain(),
        rows=len(tl.rows),
        tasks=sum(1 for ln in tl.tasks.values() if ln.created is not None),
    )


def judge(
    rows: Iterable[Row], *, bound_s: float | None = None, drain_s: float | None = None
) -> tuple[Verdict, Metrics]:
    """`check` and `measure` over one grouping of the rows: what a seed's worker calls."""
    with paused():
        tl = timelines.build(rows, bound_s=bound_s, drain_s=drain_s)
        return _check(tl), metrics.measure(tl)
