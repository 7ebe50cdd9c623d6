"""Witnesses: the shortest chain of history rows that explains why a task went wrong.

A reader should be able to follow a witness like a story, without the rest of the history:
the task was created, its plan ended, the user confirmed, a fault hit a pod the task held (and
the row that tied the task to that pod), the scheduler's last failed attempt, and the state it
was left in. Only rows at or before the moment of the violation count, so a witness never
cites the future. docs/checker.md states the algorithm; this module is its only
implementation, so a change here is a change of that page.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

from unstuck.checker.timelines import Row, TaskLine, Timelines


def last_at_or_before(rows: list[Row], seq: int) -> Row | None:
    """The last row of a seq-ordered list with seq <= `seq`."""
    i = bisect_right(rows, seq, key=lambda r: r["seq"])
    return rows[i - 1] if i else None


def epoch_at(ln: TaskLine, seq: int) -> int:
    return bisect_right(ln.epoch_starts, seq, key=lambda r: r["seq"])


def explain(tl: Timelines, ln: TaskLine, upto: int, extra: Iterable[Row | None] = (), *,
            stalled: bool = False) -> tuple[int, ...]:
    """The witness of a violation about task `ln` that happened at row `upto` (a seq).

    `extra` are the rows the invariant itself names (the offending apply, a lock
    acquisition); they are always kept. `stalled`: the violation is that the task stopped
    moving (a bound, the drain, a lost run), so a fault the task moved on from before `upto`
    explains nothing about it and is left out: only the faults since its last progress are
    cited. Elsewhere (a double apply, a lock its failed owner kept) an older fault may be
    the reason, and every fault is cited.
    """
    chosen: list[Row | None] = list(extra)
    if ln.created is not None and ln.created["seq"] <= upto:
        chosen.append(ln.created)
    epoch = epoch_at(ln, upto)
    plan_end = ln.epoch_start(epoch)
    chosen.append(plan_end)
    chosen.append(ln.first_confirm(epoch, before_seq=upto + 1))
    moved = last_at_or_before(ln.progress, upto) if stalled else None
    since_move = moved["seq"] if moved is not None else -1
    for fl in ln.faults:
        if since_move < fl.fault["seq"] <= upto:
            chosen.append(fl.fault)
            chosen.append(fl.link)
            chosen.append(fl.cause)
    # The scheduler's last attempts, within the current plan epoch only: a failed plan
    # dispatch before the plan ran explains nothing about a stuck apply.
    since = plan_end["seq"] if plan_end is not None else -1
    for row in (last_at_or_before(ln.dispatch_failed, upto),
                last_at_or_before(ln.slot_released, upto),
                last_at_or_before(ln.write_failed, upto),
                _last_retry(tl, ln, upto)):
        if row is not None and row["seq"] >= since:
            chosen.append(row)
    status_rows = [r for r, _ in ln.status_rows]
    chosen.append(last_at_or_before(status_rows, upto))
    return tuple(sorted({r["seq"] for r in chosen if r is not None}))


def _last_retry(tl: Timelines, ln: TaskLine, upto: int) -> Row | None:
    """The latest retry.scheduled for the task, or for its workspace (the seed's are
    workspace-scoped) once the task existed."""
    own = last_at_or_before(ln.retries, upto)
    ws = last_at_or_before(tl.ws_retries.get(ln.workspace, []), upto) if ln.workspace else None
    if ws is not None and ln.created is not None and ws["seq"] < ln.created["seq"]:
        ws = None
    candidates = [r for r in (own, ws) if r is not None]
    return max(candidates, key=lambda r: r["seq"]) if candidates else None
