"""Metrics over one history: recovery latency, confirm-to-apply latency, stuck durations.

Exact definitions are in docs/metrics.md; this module is their only implementation. Every
record is a frozen dataclass (`to_dict()` gives a plain dict for a DataFrame row); a value
that never happened is NaN with an explicit outcome flag, never a dropped row, so an
unrecovered task cannot vanish from a percentile. `quantile` is the one percentile rule:
the CLI, the report, the gate and `summary` all count what never finished as infinitely late.
No pandas here: this runs inside every seed's worker.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from scheduler.gc_pause import paused
from unstuck.checker import timelines
from unstuck.checker.timelines import TERMINAL, Row, TaskLine, Timelines, us

NAN = float("nan")

RECOVERED = "recovered"
UNRECOVERED = "unrecovered"
HUMAN = "human"  # waiting on a human who never confirmed before the task moved on or the run ended
CANCELLED = "cancelled"  # a wait its user ended with a cancel (TaskLine.user_cancel): censored
# Outcomes of the metrics table (results.metric_records) that are in no percentile and no
# gate threshold: the scheduler owed nothing (recovery's `human`) or the user ended the wait.
CENSORED = frozenset({HUMAN, CANCELLED})


class HitKey(NamedTuple):
    """What a fault hit, as `gates.sometimes` goals match it (`Sometimes.matches(*key)`): one
    shape for `unstuck sim`'s per-seed counts and the gate's rows of the faults table."""

    fault_type: str | None
    status: str | None  # the task's status at the fault
    run: str | None  # running: "plan" or "apply"
    awaiting_human: bool  # apply_pending with no confirm yet


@dataclass(frozen=True, slots=True)
class RecoveryHit:
    """One (fault, task) hit and how long the task took to make progress again."""

    fault_seq: int
    fault_type: str | None
    fault_t: float
    # The deletion through which a fault with no target of its own hit (docs/metrics.md,
    # "Effects"): the clock starts there. None when the fault row itself hit.
    effect_seq: int | None
    task: int
    workspace: str | None
    status_at_fault: str | None
    run_at_fault: str | None  # a running task's stint then: "plan" or "apply"; else None
    awaiting_human: bool  # apply_pending and unconfirmed at the fault: clock starts at confirm
    queued: bool  # a pending plan_and_apply behind earlier ones: clock starts when they end
    clock_t: float  # the fault's t, the confirm's t or the turn's; NaN when never started
    progress_seq: int | None
    progress_t: float
    # The status the progress entered (running, applied, failed...; apply_pending for a plan's
    # end): an explicit failure ends a task's wait as surely as a run, but reads differently.
    progress_to: str | None
    latency_s: float  # progress_t - clock_t; NaN unless outcome == "recovered"
    outcome: str  # recovered | unrecovered | human | cancelled (censored: CENSORED)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def key(self) -> HitKey:
        """What the fault hit, as a `gates.sometimes` goal matches it."""
        return HitKey(self.fault_type, self.status_at_fault, self.run_at_fault, self.awaiting_human)


@dataclass(frozen=True, slots=True)
class ConfirmToApply:
    """First confirmation of a plan epoch -> first apply start in that epoch."""

    task: int
    workspace: str | None
    epoch: int
    confirm_seq: int
    confirm_t: float
    apply_seq: int | None
    apply_t: float
    latency_s: float  # NaN when no apply started
    started: bool
    # The user cancelled the task before any apply of the epoch started: the cancel, not the
    # scheduler, ended the wait, so it is censored: in no percentile, neither late nor applied.
    cancelled: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class StuckDuration:
    """Time a confirmed task spent in apply_pending after its confirmation."""

    task: int
    workspace: str | None
    since_t: float  # when the first confirmed wait started
    stuck_s: float  # summed over every confirmed stay in apply_pending
    open: bool  # still in apply_pending at run end

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Summary:
    """Percentiles of measurements; `missing` counts those that never finished (NaN), which
    the percentiles count as infinitely late."""

    n: int
    missing: int
    p50: float
    p95: float
    p99: float
    max: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Metrics:
    recovery: tuple[RecoveryHit, ...]
    confirm_to_apply: tuple[ConfirmToApply, ...]
    stuck: tuple[StuckDuration, ...]

    @property
    def unrecovered(self) -> int:
        return sum(1 for h in self.recovery if h.outcome == UNRECOVERED)

    def recovery_summary(self) -> Summary:
        """Latency of the hits the scheduler owed a recovery (a human's wait and a user's
        cancel are censored); an unrecovered one is `missing` and counts as infinitely late."""
        return summary(h.latency_s for h in self.recovery if h.outcome not in CENSORED)

    def confirm_to_apply_summary(self) -> Summary:
        """Latency of the confirmations the scheduler owed an apply (a wait the user ended
        with a cancel is censored); one whose apply never started is `missing`."""
        return summary(c.latency_s for c in self.confirm_to_apply if not c.cancelled)

    def stuck_summary(self) -> Summary:
        return summary(s.stuck_s for s in self.stuck)

    def to_dict(self) -> dict[str, Any]:
        return {
            "recovery": [h.to_dict() for h in self.recovery],
            "confirm_to_apply": [c.to_dict() for c in self.confirm_to_apply],
            "stuck": [s.to_dict() for s in self.stuck],
        }


def quantile(values: Iterable[float], never: int, q: float) -> float:
    """Quantile `q` of the finished measurements `values` (NaN ones are left out) plus `never`
    that never finished, counted as infinitely late: linear interpolation between closest
    ranks, numpy's default. NaN when there is nothing. The one rule behind every percentile
    unstuck shows (`summary`, `percentiles`; docs/metrics.md), so a p99 cannot hide a stuck task."""
    finite = sorted(float(v) for v in values if not math.isnan(v))
    n = len(finite) + never
    if n == 0:
        return NAN
    pos = q * (n - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    if hi >= len(finite):
        return math.inf if (lo >= len(finite) or pos > lo) else finite[lo]
    return finite[lo] + (finite[hi] - finite[lo]) * (pos - lo)


PERCENTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))


def percentiles(values: Iterable[float], never: int,
                qs: tuple[tuple[str, float], ...] = PERCENTILES) -> dict[str, float]:
    """`quantile` at each of `qs`, and `max`: what the report's tables, `unstuck sim`'s table
    and JSON and the gate's p99 checks show (`max` is inf when any never finished; NaN when
    there is nothing at all)."""
    finite = [float(v) for v in values if not math.isnan(v)]
    out = {name: quantile(finite, never, q) for name, q in qs}
    out["max"] = math.inf if never else (max(finite) if finite else NAN)
    return out


def summary(values: Iterable[float]) -> Summary:
    """p50/p95/p99/max of `values`, a NaN one being a measurement that never finished
    (counted as infinitely late, and in `missing`)."""
    vals = list(values)
    finite = [v for v in vals if not math.isnan(v)]
    never = len(vals) - len(finite)
    p = percentiles(finite, never, (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)))
    return Summary(n=len(finite), missing=never, **p)


def _tl(history: Iterable[Row] | Timelines) -> Timelines:
    return history if isinstance(history, Timelines) else timelines.build(history)


def _span(start: Row, end: Row) -> float:
    """Seconds between two rows, rounded to the history's 1 us so sums compare exactly."""
    return us(float(end["t"]) - float(start["t"]))


def _first_after(rows: list[Row], seq: int) -> Row | None:
    i = bisect_right(rows, seq, key=lambda r: r["seq"])
    return rows[i] if i < len(rows) else None


def _ended_by(cancel: Row | None, start: Row, until: Row | None, inclusive: bool = False) -> bool:
    """The user's cancel (`TaskLine.user_cancel`) ended a wait that started at `start` before
    `until` (or at it, when `inclusive`: the cancel's own transition, forward progress by its
    status, is not the scheduler's)."""
    if cancel is None or cancel["seq"] <= start["seq"]:
        return False
    return until is None or cancel["seq"] < until["seq"] or (inclusive and cancel is until)


def _status_at(ln: TaskLine, seq: int) -> str | None:
    status = "pending" if ln.created is not None and ln.created["seq"] <= seq else None
    for row, _ in ln.status_rows:
        if row["seq"] > seq:
            break
        status = row.get("to_status") or status
    return status


def _turn(tl: Timelines, pa_of: dict[str | None, list[int]], ln: TaskLine, f: Row) -> Row | None | bool:
    """A pending plan_and_apply waits its turn behind the earlier plan_and_apply tasks of its
    workspace that are still active at the fault (per-workspace serialization: no scheduler
    may start it sooner), however long their plans, confirms and applies take. Returns False
    when it waits behind none, else the row where the last of them ended, or None when one
    never ended."""
    if ln.type != "plan_and_apply" or _status_at(ln, f["seq"]) != "pending":
        return False
    turn: Row | None | bool = False
    for other in pa_of.get(ln.workspace, ()):
        if other >= ln.task:
            break
        o = tl.tasks[other]
        status = _status_at(o, f["seq"])
        if status is None or status in TERMINAL:
            continue
        end = next((r for r, _ in o.status_rows
                    if r["seq"] > f["seq"] and r.get("to_status") in TERMINAL), None)
        if end is None:
            return None
        if turn is False or end["seq"] > turn["seq"]:  # type: ignore[index]
            turn = end
    return turn


def _entered(progress: Row) -> str | None:
    """The status a progress row entered, or `began` for an `exec.invoke`: the run of a
    stint already `running` began (a task hit between its dispatch and its claim)."""
    return "began" if progress["kind"] == "exec.invoke" else progress.get("to_status")


def recovery_latencies(history: Iterable[Row] | Timelines) -> list[RecoveryHit]:
    tl = _tl(history)
    pa_of: dict[str | None, list[int]] = {}  # plan_and_apply task ids per workspace, ascending
    for task in sorted(tl.tasks):
        if tl.tasks[task].type == "plan_and_apply":
            pa_of.setdefault(tl.tasks[task].workspace, []).append(task)
    out = []
    for hit in tl.hits:
        ln = tl.tasks[hit.task]
        f = hit.fault
        cancel = ln.user_cancel()
        nxt = _first_after(ln.progress, f["seq"])
        clock: Row | None = f
        outcome = None
        turn = False if hit.awaiting_human else _turn(tl, pa_of, ln, f)
        if hit.awaiting_human:
            clock = _first_after([c for c, _ in ln.confirms], f["seq"])
            if clock is not None and nxt is not None and nxt["seq"] < clock["seq"]:
                clock = None  # the task moved on (cancelled, expired) before any confirm
            nxt = _first_after(ln.progress, clock["seq"]) if clock is not None else None
        elif turn is not False and (nxt is None or turn is None or nxt["seq"] > turn["seq"]):
            if turn is not None:
                clock, nxt = turn, _first_after(ln.progress, turn["seq"])
            else:  # its turn never came: a human's wait or a stuck task ahead of it
                clock = None
                ahead = [tl.tasks[o] for o in pa_of.get(ln.workspace, ())
                         if o < ln.task and tl.tasks[o].status not in TERMINAL]
                if nxt is not None and nxt is cancel:
                    outcome = CANCELLED  # its user ended the wait, as below
                elif not any(o.status == "apply_pending" and not o.confirmed() for o in ahead):
                    outcome = UNRECOVERED
        elif turn is not False and nxt is not None and nxt.get("to_status") == "cancelled":
            # Cancelled while it waited its turn: nothing was owed. Its user's cancel is the
            # censored `cancelled`, as for any wait a user ends; another end is `human`.
            clock = None
            if nxt is cancel:
                outcome = CANCELLED
        if outcome is None:
            outcome = (HUMAN if clock is None
                       else CANCELLED if _ended_by(cancel, clock, nxt, inclusive=True)
                       else UNRECOVERED if nxt is None else RECOVERED)
        out.append(RecoveryHit(
            fault_seq=(hit.cause or f)["seq"],
            fault_type=((hit.cause or f).get("data") or {}).get("type"),
            fault_t=float((hit.cause or f)["t"]),
            effect_seq=f["seq"] if hit.cause is not None else None,
            task=hit.task,
            workspace=ln.workspace,
            status_at_fault=hit.status,
            run_at_fault=hit.run,
            awaiting_human=hit.awaiting_human,
            queued=turn is not False,
            clock_t=float(clock["t"]) if clock is not None else NAN,
            progress_seq=nxt["seq"] if outcome == RECOVERED else None,
            progress_t=float(nxt["t"]) if outcome == RECOVERED else NAN,
            progress_to=_entered(nxt) if outcome == RECOVERED else None,
            latency_s=_span(clock, nxt) if outcome == RECOVERED else NAN,
            outcome=outcome,
        ))
    return out


def confirm_to_apply(history: Iterable[Row] | Timelines) -> list[ConfirmToApply]:
    tl = _tl(history)
    out = []
    for task in sorted(tl.tasks):
        ln = tl.tasks[task]
        applies = ln.apply_starts()
        cancel = ln.user_cancel()
        seen: set[int] = set()
        for c, epoch in ln.confirms:
            if epoch in seen:
                continue
            seen.add(epoch)
            a = next((r for r, e in applies if e == epoch and r["seq"] > c["seq"]), None)
            nxt = ln.epoch_start(epoch + 1) if epoch + 1 <= len(ln.epoch_starts) else None
            cancelled = a is None and _ended_by(cancel, c, nxt)
            out.append(ConfirmToApply(
                task=task, workspace=ln.workspace, epoch=epoch,
                confirm_seq=c["seq"], confirm_t=float(c["t"]),
                apply_seq=a["seq"] if a is not None else None,
                apply_t=float(a["t"]) if a is not None else NAN,
                latency_s=_span(c, a) if a is not None else NAN,
                started=a is not None,
                cancelled=cancelled,
            ))
    return out


def stuck_durations(history: Iterable[Row] | Timelines) -> list[StuckDuration]:
    tl = _tl(history)
    out = []
    for task in sorted(tl.tasks):
        ln = tl.tasks[task]
        waits = timelines.confirmed_waits(ln, tl.run.end_t)
        if not waits:
            continue
        out.append(StuckDuration(
            task=task, workspace=ln.workspace,
            since_t=float(waits[0][0]["t"]),
            stuck_s=us(sum(leave - float(clock["t"]) for clock, leave, _ in waits)),
            open=waits[-1][2].end is None,
        ))
    return out


def measure(history: Iterable[Row] | Timelines) -> Metrics:
    with paused():
        tl = _tl(history)
        return Metrics(
            recovery=tuple(recovery_latencies(tl)),
            confirm_to_apply=tuple(confirm_to_apply(tl)),
            stuck=tuple(stuck_durations(tl)),
        )
