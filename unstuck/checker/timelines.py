"""One pass over a history, grouped by task and by workspace: what every invariant reads.

The invariants and metrics never scan the raw rows again; they read the `Timelines` built here
in a single pass (O(rows), plus a little per fault). That is what keeps a 100k-row history
well under a second.

Definitions shared by every invariant (docs/checker.md spells them out):

- **status**: from `task.created` (`to_status`, default `pending`) and each `task.transition`.
- **plan epoch**: epoch 0 starts at creation. A new epoch starts when a task enters
  `apply_pending` after a *plan* run, i.e. its last `running` stint was entered from a status
  other than `apply_pending` and no apply was attempted (`dispatch`, `dispatch.failed` or
  `exec.invoke` with action `apply`) during it. A `running -> apply_pending` that ends an *apply*
  attempt (the seed's send-failure rollback, F3) is not a new plan, so it keeps the epoch and
  the confirmation that came with it.
- **confirmed**: a `task.confirmed` row in the current epoch. The scheduler accepted the
  confirm (it answered 200), so the liveness clock runs, even when `data.user` is null (the
  seed's F6). **authorized**: a confirmed row whose `data.user` is not null; only that allows
  an apply (the safety invariants).
- **owed**: a non-terminal task that is confirmed in its current epoch and sits in
  `apply_pending`, `pending` or `waiting`: the scheduler owes it an apply and nobody runs it.
- **progress**: a transition *into* `running`, `applied`, `success`, `planned_and_finished`,
  into `failed` / `cancelled` with a non-empty reason, the end of a plan into
  `apply_pending` (the start of a new plan epoch), or the first `exec.invoke` of a running
  stint by the agent it was sent to (its run began: a claim whose write failed, taken at
  the next try, or an agent that woke in time to claim it). A `running` stint rolled back to the status
  it came from before anything was dispatched or invoked (the seed's send failure, F3) moved
  nothing forward, so its entry does not count; nor does it restart a bound's clock: the stay
  before it, the stint and the stay after it are one wait (`confirmed_waits`, `idle_spans`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from difflib import get_close_matches
from itertools import accumulate
from math import isfinite
from typing import Any, TypeVar

from scheduler.gc_pause import paused
from scheduler.history import Kind
from scheduler.model import TaskStatus
from unstuck.checker import verdicts

Row = dict[str, Any]
T = TypeVar("T")

TERMINAL = frozenset({"planned_and_finished", "success", "applied", "failed", "cancelled"})
PROGRESS = frozenset({"running", "applied", "success", "planned_and_finished"})
EXPLICIT_END = frozenset({"failed", "cancelled"})
OWED = frozenset({"apply_pending", "pending", "waiting"})
ACTIVE = frozenset({"running", "apply_pending"})  # per-workspace serialization
EXEC_DONE = frozenset({"exec.ok", "exec.fail", "exec.info"})
# Kinds whose task field asserts that the task exists (a `user` action or a rejected confirm
# may name a task id that never existed; that is the user's mistake, not a lost task).
ASSERTS_TASK = frozenset({
    "task.transition", "task.confirmed", "task.cancel", "dispatch", "dispatch.failed",
    "slot.assigned", "slot.reserved", "lock.acquired", "exec.invoke",
})
RESTART_FAULT = "scheduler-restart"
NODE_FAULT = "node-loss"  # the only fault whose data.node reaches every pod of the node
DB_FAULT = "db-write-failure"  # hits through the `store.write_failed` rows of its window


@dataclass(slots=True)
class Segment:
    """A maximal stay of one task in one status."""

    status: str
    start: Row  # the row that entered the status
    end: Row | None  # the row that left it; None when the task was still in it at run end
    epoch: int


@dataclass(slots=True)
class FaultLink:
    """A fault that touched a resource the task held before it (for witnesses)."""

    fault: Row
    link: Row | None  # the task's latest row tying it to the fault's pod/agent/node
    cause: Row | None = None  # for an effect row (`effect_of`): the fault row it names


@dataclass(slots=True)
class Hit:
    """A fault that hit a task: at the fault's time the task held the fault's target."""

    fault: Row
    task: int
    status: str | None  # the task's status at the fault
    awaiting_human: bool  # apply_pending and not confirmed in its epoch
    cause: Row | None = None  # when `fault` is an effect row: the fault row it names
    run: str | None = None  # a running task's stint at the fault: "plan" or "apply"


@dataclass(slots=True)
class TaskLine:
    task: int
    workspace: str | None = None
    type: str | None = None
    created: Row | None = None
    first_ref: Row | None = None  # first row asserting the task exists
    status_rows: list[tuple[Row, int]] = field(default_factory=list)  # (row, epoch)
    epoch_starts: list[Row] = field(default_factory=list)  # epoch k >= 1 starts at [k-1]
    confirms: list[tuple[Row, int]] = field(default_factory=list)  # accepted, any user
    applies: list[tuple[Row, int]] = field(default_factory=list)  # exec.invoke apply
    dispatch_applies: list[tuple[Row, int]] = field(default_factory=list)
    has_exec: bool = False
    dispatches: list[Row] = field(default_factory=list)
    dispatch_failed: list[Row] = field(default_factory=list)
    slot_released: list[Row] = field(default_factory=list)
    retries: list[Row] = field(default_factory=list)
    write_failed: list[Row] = field(default_factory=list)
    stimuli: list[Row] = field(default_factory=list)  # created, confirmed, cancel requested
    cancels: list[Row] = field(default_factory=list)  # task.cancel: the user's cancel, stored
    progress: list[Row] = field(default_factory=list)
    faults: list[FaultLink] = field(default_factory=list)
    exec_done: list[Row] = field(default_factory=list)
    plan_starts: dict[int, Row] = field(default_factory=dict)  # plan exec.ok seq -> its exec.invoke
    open_execs: list[Row] = field(default_factory=list)  # exec.invoke rows not yet ended
    segments: list[Segment] = field(default_factory=list)
    # Pass state.
    status: str | None = None
    epoch: int = 0
    confirmed_epoch: int = -1
    run_kind: str | None = None  # "plan" or "apply": what the current/last running stint did
    armed: bool = False  # a plan stint ended and has not yet opened its epoch
    came_from: str | None = None  # the status the current running stint was entered from
    unproven: Row | None = None  # the entry into running, while no dispatch or exec.invoke followed
    # The current running stint has not begun (no exec.invoke yet), and the agent its latest
    # dispatch went to (None before any dispatch): its first invoke from there is progress.
    unbegun: bool = False
    sent_to: str | None = None
    rolled_back: set[int] = field(default_factory=set)  # seqs of rows ending an unsent stint
    slots: set[tuple[str | None, Any]] = field(default_factory=set)
    placement: tuple[str | None, str | None] | None = None  # (agent, pod)
    links: dict[tuple[str, str], Row] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def confirmed(self) -> bool:
        return self.confirmed_epoch == self.epoch

    def status_before(self, seq: int) -> str | None:
        """The task's status just before row `seq` (None before it was created)."""
        status = None
        for seg in self.segments:
            if seg.start["seq"] >= seq:
                break
            status = seg.status
        return status

    def epoch_start(self, epoch: int) -> Row | None:
        return self.epoch_starts[epoch - 1] if epoch > 0 else None

    def apply_starts(self) -> list[tuple[Row, int]]:
        """The rows that start this task's applies, with their epochs (`apply_starts`)."""
        return apply_starts(self.applies, self.dispatch_applies, self.has_exec)

    def user_cancel(self) -> Row | None:
        """The transition into `cancelled` that ended the task when its user ended it: the
        task ended `cancelled` and a `task.cancel` row (written once the cancel is stored)
        came after the status before it. None when the task runs on or the scheduler ended
        it itself. The one rule for "the user ended it" (docs/metrics.md): a wait it ends
        is censored, neither late nor done."""
        if self.status != "cancelled" or not self.status_rows:
            return None
        end = self.status_rows[-1][0]
        before = self.status_rows[-2][0]["seq"] if len(self.status_rows) > 1 else -1
        if any(r["seq"] > before for r in self.cancels):
            return end
        return None

    def first_confirm(self, epoch: int, before_seq: int | None = None) -> Row | None:
        for row, e in self.confirms:
            if e == epoch and (before_seq is None or row["seq"] < before_seq):
                return row
        return None


@dataclass(slots=True)
class LockSpan:
    workspace: str
    acquired: Row
    released: Row | None  # None: still held at run end (or replaced by a new acquisition)
    owner: int | None
    end_t: float | None  # when the span ended; run end when still held


@dataclass(slots=True)
class Run:
    end_t: float  # the run.end row's t, or the last row's t when the history has none
    end_seq: int
    bound_s: float | None  # explicit argument, else run.end data.bound_s
    drain_s: float | None
    closed: bool  # the history has its run.end row

    def bound(self) -> float:
        return self._need("bound_s", self.bound_s)

    def drain(self) -> float:
        return self._need("drain_s", self.drain_s)

    @staticmethod
    def _need(name: str, value: float | None) -> float:
        if value is None:
            raise verdicts.HistoryInvalid(
                f"history: {name} is not set; the run.end row's data must carry bound_s and "
                f"drain_s (docs/history.md), or pass {name}= to the checker"
            )
        return value


@dataclass(slots=True)
class Timelines:
    rows: list[Row]
    tasks: dict[int, TaskLine]
    run: Run
    locks: list[LockSpan]
    ws_status: dict[str, list[tuple[Row, int, str]]]  # plan_and_apply status rows per workspace
    ws_apply_execs: dict[str, list[Row]]  # exec.* rows with action apply, per workspace
    execs: list[Row]  # every exec.* row of a task, in history order
    ws_retries: dict[str, list[Row]]  # workspace-scoped retry.scheduled (task null)
    # Creates refused with 423 "locked" while no lock span of the workspace was open, with
    # the workspace's last lock span before each (None: the history never locked it).
    refused_unlocked: dict[str, list[tuple[Row, LockSpan | None]]]
    ws_write_failed: dict[str, list[Row]]  # store.write_failed rows of no task (a lock write)
    hits: list[Hit]
    pod_node: dict[str, str]
    _seqs: list[int]
    _tmax: list[float]

    def seq_at(self, t: float) -> int:
        """The last seq whose time is <= t: the cut-off for a witness of a violation at t."""
        i = bisect_right(self._tmax, t)
        return self._seqs[i - 1] if i else -1

    def line(self, task: int) -> TaskLine:
        return self.tasks[task]


def apply_starts(invokes: list[T], dispatches: list[T], has_exec: bool) -> list[T]:
    """Where a task's applies start (docs/checker.md, docs/metrics.md): its `exec.invoke`
    rows with action apply, or, for a task with no `exec.*` rows at all (a history without
    agent rows), its `dispatch` rows with action apply. The one statement of the rule: the
    invariants, the confirm-to-apply metric and the results' tasks table all read it."""
    return invokes if has_exec else dispatches


def close_oldest(open_invokes: list[Row], done: Row) -> Row | None:
    """Remove from `open_invokes` and return the `exec.invoke` that the execution end `done`
    ends: the oldest open one of its token (task, and `data.fence` when both rows carry one),
    of the same agent if there is one, else of any agent; None when it ends none (a late
    report of a run that already ended, or of a run refused before it began). The one rule
    for which run an `exec.ok` / `exec.fail` / `exec.info` ends (docs/checker.md): open
    executions (`no_lost_task`) and apply windows (`per_workspace_serialization`) read it."""
    task, fence = done.get("task"), (done.get("data") or {}).get("fence")
    agent = done.get("agent")
    for same_agent in (True, False):
        for i, inv in enumerate(open_invokes):
            other = (inv.get("data") or {}).get("fence")
            if inv.get("task") == task and (fence is None or other is None or other == fence) and (
                    not same_agent or inv.get("agent") == agent):
                return open_invokes.pop(i)
    return None


def us(seconds: float) -> float:
    """Round a span to the history's 1 us, as `t` is recorded: a stay of exactly the bound must
    not be over it by a float error (4543.616756 - 3943.616756 is 600.0000000000005), and a
    latency must not print as 0.30000000000000004."""
    return round(seconds, 6)


def _num(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e308:
        raise verdicts.HistoryInvalid(
            f"{what} = {value!r} ({type(value).__name__}): expected a non-negative number of "
            f"seconds; fix the run.end row's data.{what} or pass {what}= to the checker"
        )
    return float(value)


# The columns the checker groups, compares and looks up by, or the results tables hold as
# strings (a reason), with the one type each has when not null (docs/history.md's schema): a
# list or a number there would crash the grouping, make two tasks of one id, or crash
# writing the tables.
COLUMN_TYPES: dict[str, type] = {
    "kind": str, "task": int, "workspace": str, "pod": str, "slot": int, "agent": str,
    "from_status": str, "to_status": str, "reason": str, "data": dict,
}
_TYPE_NAMES = {str: "a string", int: "an integer", dict: "an object"}


_STR, _INT, _DICT = (frozenset((typ, type(None))) for typ in (str, int, dict))
# The kinds of docs/history.md. Any other is refused: a misspelt kind ("exec.invok") would
# be a row the checker silently skips, and an apply it hides could never be judged.
KINDS = frozenset(k.value for k in Kind)
# The task statuses, and null. A misspelt one ("apply_pendng") would hide a confirmed wait
# from the bound, or an apply's start, as surely as a misspelt kind.
STATUSES = frozenset([*(s.value for s in TaskStatus), None])


def _typed(r: Row) -> bool:
    """Does every column of COLUMN_TYPES hold its type or null (kind: never null)? Written
    out, not looped over COLUMN_TYPES: it runs for every row of every judged history (about
    a third faster so; `test_column_types_are_the_ones_typed_checks` keeps the two agreeing)."""
    g = r.get
    return (type(r["kind"]) is str and type(g("task")) in _INT and type(g("workspace")) in _STR
            and type(g("pod")) in _STR and type(g("slot")) in _INT and type(g("agent")) in _STR
            and type(g("from_status")) in _STR and type(g("to_status")) in _STR
            and type(g("reason")) in _STR and type(g("data")) in _DICT)


def _ordered(rows: list[Row]) -> list[Row]:
    """The rows in seq order, each checked for what the checker orders, times and groups by.
    One pass: a row with an int seq, a finite float t and columns of their types (what
    History.rows() writes) is checked by type alone; any other goes through `_check_row`,
    which names what is wrong."""
    in_order, last, prev = True, None, None
    for i, r in enumerate(rows):
        if type(r) is dict and "seq" in r and "t" in r and "kind" in r:
            seq, t = r["seq"], r["t"]
            if (type(seq) is int and type(t) is float and isfinite(t) and _typed(r)
                    and r["kind"] in KINDS and r.get("to_status") in STATUSES
                    and r.get("from_status") in STATUSES):
                if last is not None and not last < seq:
                    in_order = False
                elif in_order and prev is not None and t < prev["t"]:
                    _backwards(prev, r)
                last, prev = seq, r
                continue
        _check_row(i, r)
        seq = r["seq"]
        if last is not None and not last < seq:
            in_order = False
        elif in_order and prev is not None and r["t"] < prev["t"]:
            _backwards(prev, r)
        last, prev = seq, r
    if in_order:
        return rows
    ordered = sorted(rows, key=lambda r: r["seq"])
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a["seq"] == b["seq"]:
            raise verdicts.HistoryInvalid(
                f"history rows: seq {a['seq']} appears twice; seq is the run's total order and "
                f"must be unique (write the history with History.rows())"
            )
        if b["t"] < a["t"]:
            _backwards(a, b)
    return ordered


def _backwards(a: Row, b: Row) -> None:
    """Row `b` follows row `a` in seq order but has an earlier t: refuse the history. Both
    worlds write time in order (the simulated clock; the live service's monotonic RunClock,
    on one event loop), and a stay or latency measured across such a row would be negative."""
    raise verdicts.HistoryInvalid(
        f"history row seq {b['seq']} ({b['kind']}): t = {b['t']!r} is before t = {a['t']!r} of "
        f"seq {a['seq']} ({a['kind']}); a run's time never goes back: rows are in time order, "
        f"rows of one t ordered by seq (docs/history.md). Fix the row's t, or renumber seq in "
        f"time order"
    )


def _check_row(i: int, r: Row) -> None:
    if not isinstance(r, dict):
        raise verdicts.HistoryInvalid(
            f"history row {i}: {r!r} ({type(r).__name__}): expected an object with seq, t and "
            f"kind, one JSON object per line (docs/history.md)"
        )
    for key in ("seq", "t", "kind"):
        if key not in r:
            raise verdicts.HistoryInvalid(
                f"history row {i}: missing column {key!r}; every row needs seq, t and kind "
                f"(docs/history.md)"
            )
    seq, t = r["seq"], r["t"]
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise verdicts.HistoryInvalid(
            f"history row {i}: seq = {seq!r} ({type(seq).__name__}): expected an integer, "
            f"the row's place in the run's total order; write the history with "
            f"History.rows() (docs/history.md)"
        )
    if not (isfinite(t) if isinstance(t, float) else
            isinstance(t, int) and not isinstance(t, bool) and abs(t) < 1e308):
        raise verdicts.HistoryInvalid(
            f"history row {i} (seq {seq}): t = {t!r} ({type(t).__name__}): expected a finite "
            f"number of seconds since the run started; fix the row's t (docs/history.md)"
        )
    for key, typ in COLUMN_TYPES.items():
        v = r.get(key)
        if (v is None and key == "kind") or (v is not None and type(v) is not typ):
            null = "" if key == "kind" else " or null"
            raise verdicts.HistoryInvalid(
                f"history row {i} (seq {seq}): {key} = {v!r} ({type(v).__name__}): expected "
                f"{_TYPE_NAMES[typ]}{null}; fix the row's {key} (docs/history.md)"
            )
    if r["kind"] not in KINDS:
        raise verdicts.HistoryInvalid(
            f"history row {i} (seq {seq}): kind = {r['kind']!r} is not a history kind; "
            f"{_did_you_mean(r['kind'], KINDS)}the kinds are listed in docs/history.md"
        )
    for key in ("from_status", "to_status"):
        if r.get(key) not in STATUSES:
            names = STATUSES - {None}
            raise verdicts.HistoryInvalid(
                f"history row {i} (seq {seq}): {key} = {r[key]!r} is not a task status; "
                f"{_did_you_mean(r[key], names)}the statuses are {', '.join(sorted(names))}, "
                f"or null (docs/history.md)"
            )


def _did_you_mean(value: str, names: Iterable[str]) -> str:
    near = get_close_matches(value, names, n=1)
    return f"did you mean {near[0]!r}? " if near else ""


def _scalar(row: Row, data: dict[str, Any], key: str, pair: bool = False,
            text: bool = False) -> None:
    """A `data` field the checker matches rows by (a fence token) must be a JSON scalar, or
    with `pair` null or a [task, fence] pair of scalars, or with `text` (a name: a node, a
    task's or fault's type, which the results tables hold as strings) a string or null; name
    the row otherwise."""
    v = data.get(key)
    if pair:
        ok = v is None or (isinstance(v, list) and len(v) == 2
                           and not any(isinstance(x, dict | list) for x in v))
    elif text:
        ok = v is None or type(v) is str
    else:
        ok = not isinstance(v, dict | list)
    if not ok:
        what = ("a [task, fence] pair" if pair else "a string" if text
                else "a string or a number")
        raise verdicts.HistoryInvalid(
            f"history row seq {row['seq']} ({row['kind']}): data.{key} = {v!r}: "
            f"expected {what} or null; fix the row's data.{key} (docs/history.md)"
        )


def _fault_seq(row: Row, v: Any) -> int | None:
    """A pod deletion's `data.fault`: the seq of the fault row it is the effect of, or null."""
    if v is not None and type(v) is not int:
        raise verdicts.HistoryInvalid(
            f"history row seq {row['seq']} ({row['kind']}): data.fault = {v!r}: expected the "
            f"seq of the fault row whose effect this deletion is (an integer) or null; fix the "
            f"row's data.fault (docs/history.md)"
        )
    return v


def build(
    rows: Iterable[Row], *, bound_s: float | None = None, drain_s: float | None = None
) -> Timelines:
    """Group a history by task and workspace in one pass. Explicit bounds override run.end."""
    with paused():  # grouping allocates per row; see scheduler/gc_pause.py
        return _build(list(rows), bound_s, drain_s)


def _build(rows: list[Row], bound_s: float | None, drain_s: float | None) -> Timelines:
    rows = _ordered(rows)
    tasks: dict[int, TaskLine] = {}
    live: dict[int, TaskLine] = {}  # created, non-terminal tasks, for scheduler-restart hits
    ever_pod: dict[str, set[int]] = {}
    ever_agent: dict[str, set[int]] = {}
    pod_node: dict[str, str] = {}
    node_pods: dict[str, set[str]] = {}
    ws_status: dict[str, list[tuple[Row, int, str]]] = {}
    ws_apply_execs: dict[str, list[Row]] = {}
    execs: list[Row] = []
    ws_retries: dict[str, list[Row]] = {}
    locks: list[LockSpan] = []
    held: dict[str, LockSpan] = {}
    last_span: dict[str, LockSpan] = {}
    refused_unlocked: dict[str, list[tuple[Row, LockSpan | None]]] = {}
    ws_write_failed: dict[str, list[Row]] = {}
    hits: list[Hit] = []
    fault_rows: dict[int, Row] = {}
    db_windows: list[Row] = []  # db-write-failure fault rows in force, oldest first
    db_hit: set[tuple[int, int]] = set()  # (fault seq, task): its first failed write only
    run_end: Row | None = None

    def line_of(task: int, row: Row) -> TaskLine:
        ln = tasks.get(task)
        if ln is None:
            ln = tasks[task] = TaskLine(task, workspace=row.get("workspace"))
        return ln

    def link(ln: TaskLine, row: Row) -> None:
        pod, agent = row.get("pod"), row.get("agent")
        if pod:
            ln.links[("pod", pod)] = row
            ever_pod.setdefault(pod, set()).add(ln.task)
        if agent:
            ln.links[("agent", agent)] = row
            ever_agent.setdefault(agent, set()).add(ln.task)

    for row in rows:
        kind = row["kind"]
        task = row.get("task")
        data = row.get("data") or {}

        if kind == "fault":
            _scalar(row, data, "node", text=True)
            _scalar(row, data, "type", text=True)
            fault_rows[row["seq"]] = row
            _fault(row, data, tasks, live, ever_pod, ever_agent, pod_node, node_pods, hits)
            if data.get("type") == DB_FAULT:
                db_windows.append(row)
            continue
        if kind == "fault.end" and data.get("type") == DB_FAULT:
            # The end row repeats its fault's fields; alike windows last alike, so the
            # oldest alike one is the one that ends.
            ended = next((w for w in db_windows if (w.get("data") or {}) == data), None)
            if ended is not None:
                db_windows.remove(ended)
            continue
        if kind == "pod.added" or kind == "pod.terminating" or kind == "pod.removed":
            _scalar(row, data, "node", text=True)
            node, pod = data.get("node"), row.get("pod")
            if node and pod:
                pod_node[pod] = node
                node_pods.setdefault(node, set()).add(pod)
            cause = fault_rows.get(_fault_seq(row, data.get("fault")))
            if cause is not None:
                _fault(row, cause.get("data") or {}, tasks, live, ever_pod, ever_agent, pod_node,
                       node_pods, hits, cause=cause)
            continue
        if kind == "lock.acquired" or kind == "lock.released":
            ws = row.get("workspace")
            prev = held.get(ws)
            # A lock its holder writes again (the seed locks before it saves a plan's end,
            # so each retry of a report whose save failed locks again) is the same lock.
            again = kind == "lock.acquired" and prev is not None and task is not None \
                and prev.owner == task
            if prev is not None and not again:
                del held[ws]
                prev.end_t = row["t"]
                if kind == "lock.released":
                    prev.released = row
            if kind == "lock.acquired" and not again:
                span = LockSpan(ws, row, None, task, None)
                held[ws] = span
                last_span[ws] = span
                locks.append(span)
            if task is None:
                continue
        if kind == "run.end":
            run_end = row
            continue
        if kind == "task.rejected":
            ws = row.get("workspace")
            if data.get("status") == 423 and ws is not None and ws not in held:
                refused_unlocked.setdefault(ws, []).append((row, last_span.get(ws)))
            continue
        if kind == "store.write_failed" and task is None:
            ws = row.get("workspace")
            if ws is not None:
                ws_write_failed.setdefault(ws, []).append(row)
            continue
        if kind == "retry.scheduled" and task is None:
            ws = row.get("workspace")
            if ws is not None:
                ws_retries.setdefault(ws, []).append(row)
            continue
        if task is None:
            continue

        ln = line_of(task, row)
        if ln.created is None and ln.first_ref is None and kind in ASSERTS_TASK:
            ln.first_ref = row
        action = data.get("action")

        if kind == "task.created":
            _scalar(row, data, "type", text=True)
            ln.created = row
            ln.workspace = row.get("workspace")
            ln.type = data.get("type")
            ln.status = row.get("to_status") or "pending"
            ln.status_rows.append((row, ln.epoch))
            ln.stimuli.append(row)
            if ln.status not in TERMINAL:
                live[task] = ln
            if ln.type == "plan_and_apply" and ln.workspace is not None:
                ws_status.setdefault(ln.workspace, []).append((row, task, ln.status))
        elif kind == "task.transition":
            _transition(ln, row, live, ws_status)
            link(ln, row)
        elif kind == "task.confirmed":
            ln.confirms.append((row, ln.epoch))
            ln.confirmed_epoch = ln.epoch
            ln.stimuli.append(row)
        elif kind == "task.cancel":
            ln.stimuli.append(row)
            ln.cancels.append(row)
        elif kind == "dispatch":
            ln.dispatches.append(row)
            ln.unproven = None
            ln.placement = (row.get("agent"), row.get("pod"))
            ln.sent_to = row.get("agent")
            link(ln, row)
            if action == "apply":
                ln.dispatch_applies.append((row, ln.epoch))
                if ln.status == "running":
                    ln.run_kind = "apply"
        elif kind == "dispatch.failed":
            ln.dispatch_failed.append(row)
            link(ln, row)
            if action == "apply" and ln.status == "running":
                ln.run_kind = "apply"
        elif kind == "exec.invoke":
            _scalar(row, data, "fence")
            _scalar(row, data, "supersedes", pair=True)
            ln.unproven = None
            if ln.unbegun and ln.status == "running" and ln.sent_to in (None, row.get("agent")):
                ln.unbegun = False
                ln.progress.append(row)  # the stint's run began
            ln.has_exec = True
            ln.open_execs.append(row)
            execs.append(row)
            ln.placement = (row.get("agent"), row.get("pod"))
            link(ln, row)
            if action == "apply":
                ln.applies.append((row, ln.epoch))
                if ln.status == "running":
                    ln.run_kind = "apply"
                _ws_exec(ws_apply_execs, ln, row)
        elif kind in EXEC_DONE:
            _scalar(row, data, "fence")
            ln.has_exec = True
            ln.exec_done.append(row)
            execs.append(row)
            opened = close_oldest(ln.open_execs, row)
            if opened is not None and action == "plan" and kind == "exec.ok":
                ln.plan_starts[row["seq"]] = opened
            if ln.placement is not None and ln.placement[0] == row.get("agent"):
                ln.placement = None
            if action == "apply":
                _ws_exec(ws_apply_execs, ln, row)
        elif kind == "slot.assigned" or kind == "slot.reserved":
            ln.slots.add((row.get("pod"), row.get("slot")))
            link(ln, row)
        elif kind == "slot.released":
            ln.slot_released.append(row)
            pod, slot = row.get("pod"), row.get("slot")
            if slot is None:
                ln.slots = {s for s in ln.slots if s[0] != pod}
            else:
                ln.slots.discard((pod, slot))
        elif kind == "retry.scheduled":
            ln.retries.append(row)
        elif kind == "store.write_failed":
            ln.write_failed.append(row)
            # A write of this task that failed while a db-write-failure was in force is that
            # fault's effect on it: the window whose rate the world applies, the highest in
            # force, the first started on a tie (scheduler.stores.failures.worst).
            cause = max((w for w in db_windows if _in_window(w, row)), default=None,
                        key=lambda w: _rate((w.get("data") or {}).get("rate")))
            if (cause is not None and (cause["seq"], task) not in db_hit
                    and not ln.terminal and ln.created is not None):
                db_hit.add((cause["seq"], task))
                _fault(row, cause.get("data") or {}, tasks, live, ever_pod, ever_agent, pod_node,
                       node_pods, hits, cause=cause)

    if not rows:
        end_t, end_seq = 0.0, -1
    elif run_end is not None:
        end_t, end_seq = float(run_end["t"]), run_end["seq"]
    else:
        end_t, end_seq = float(rows[-1]["t"]), rows[-1]["seq"]
    end_data = (run_end or {}).get("data") or {}
    if bound_s is None:
        bound_s = end_data.get("bound_s")
    if drain_s is None:
        drain_s = end_data.get("drain_s")
    run = Run(
        end_t, end_seq,
        None if bound_s is None else _num(bound_s, "bound_s"),
        None if drain_s is None else _num(drain_s, "drain_s"),
        run_end is not None,
    )
    for span in locks:
        if span.end_t is None:
            span.end_t = end_t
    for ln in tasks.values():
        ln.segments = _segments(ln)
    seqs = [r["seq"] for r in rows]
    tmax = list(accumulate((float(r["t"]) for r in rows), max))
    return Timelines(rows, tasks, run, locks, ws_status, ws_apply_execs, execs, ws_retries,
                     refused_unlocked, ws_write_failed, hits, pod_node, seqs, tmax)


def _transition(
    ln: TaskLine, row: Row, live: dict[int, TaskLine],
    ws_status: dict[str, list[tuple[Row, int, str]]],
) -> None:
    prev = ln.status
    to = row.get("to_status")
    if to is None:
        return
    if prev == "running" and to != "running" and ln.unproven is not None and to == ln.came_from:
        # Rolled back before anything was sent: the entry into running was no progress.
        if ln.progress and ln.progress[-1] is ln.unproven:
            ln.progress.pop()
        ln.unproven = None
        ln.rolled_back.add(row["seq"])
    if to == "running" and prev != "running":
        came_from = row.get("from_status") or prev
        ln.run_kind = "apply" if came_from == "apply_pending" else "plan"
        ln.armed = True
        ln.came_from, ln.unproven = came_from, row
        ln.unbegun, ln.sent_to = True, None
    if to == "apply_pending" and prev != "apply_pending" and ln.run_kind == "plan" and ln.armed:
        ln.epoch += 1
        ln.epoch_starts.append(row)
        ln.armed = False
        ln.progress.append(row)  # the plan ended with changes: what is left waits on a human
    if to != "running":
        ln.placement = None
    if to != prev and (to in PROGRESS or (to in EXPLICIT_END and row.get("reason"))):
        ln.progress.append(row)
    ln.status = to
    ln.status_rows.append((row, ln.epoch))
    if to in TERMINAL:
        live.pop(ln.task, None)
    elif ln.created is not None:  # a row naming a task never created hits nothing
        live[ln.task] = ln
    if ln.type == "plan_and_apply" and ln.workspace is not None:
        ws_status.setdefault(ln.workspace, []).append((row, ln.task, to))


def _ws_exec(ws_apply_execs: dict[str, list[Row]], ln: TaskLine, row: Row) -> None:
    ws = row.get("workspace") or ln.workspace
    if ws is not None:
        ws_apply_execs.setdefault(ws, []).append(row)


def _rate(value: Any) -> float:
    """A db-write-failure's failure rate (1 when a live harness gave none)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 1.0


def _in_window(fault: Row, row: Row) -> bool:
    """Is `row` inside the db-write-failure window `fault` opened? Its `fault.end` row closes
    it; a live harness that announces a window without one may give `data.duration_s`."""
    duration = (fault.get("data") or {}).get("duration_s")
    if not isinstance(duration, int | float) or isinstance(duration, bool):
        return True
    return float(row["t"]) <= float(fault["t"]) + duration


def _fault(
    row: Row, data: dict[str, Any], tasks: dict[int, TaskLine], live: dict[int, TaskLine],
    ever_pod: dict[str, set[int]], ever_agent: dict[str, set[int]],
    pod_node: dict[str, str], node_pods: dict[str, set[str]], hits: list[Hit],
    cause: Row | None = None,
) -> None:
    """Record which tasks the fault touched (witnesses) and which it hit (metrics).

    `row` is the fault row, or with `cause` an effect row: a pod deletion that names the fault
    it is the effect of (`data.fault`, the fault row's seq; an hpa-scale-down's ReplicaSet
    scale-down, a pool-scale-down's deletions), or a task's failed store write in a
    db-write-failure's window. The fault hits there, at the effect's time, the tasks on the
    deleted pod, or the task whose write failed; `data` is the fault's."""
    pod, agent, target = row.get("pod"), row.get("agent"), row.get("task")
    if row["kind"] == "store.write_failed":
        pod = agent = None  # the write failed for its task, not for the pod's other tasks
    node = data.get("node") if cause is None else None
    restart = data.get("type") == RESTART_FAULT and cause is None
    # Only a node-loss takes the node's other pods with it: a pod-kill, agent-disconnect or
    # agent-partition records `data.node` just to say where its target was.
    pods = set(node_pods.get(node, ())) if node and data.get("type") == NODE_FAULT else set()
    if pod:
        pods.add(pod)
    candidates: set[int] = set()
    for p in pods:
        candidates |= ever_pod.get(p, set())
    if agent:
        candidates |= ever_agent.get(agent, set())
    if target is not None and target in tasks:
        candidates.add(target)
    if restart:
        candidates |= set(live)
    for task in sorted(candidates):
        ln = tasks[task]
        if ln.terminal or ln.created is None:  # only a task that exists can be hit
            continue
        keys = [("pod", p) for p in pods] + ([("agent", agent)] if agent else [])
        linked = [ln.links[k] for k in keys if k in ln.links]
        ln.faults.append(FaultLink(row, max(linked, key=lambda r: r["seq"]) if linked else None,
                                   cause))
        held_pods = {s[0] for s in ln.slots}
        if ln.placement is not None:
            held_pods.add(ln.placement[1])
        hit = (
            restart or task == target
            or bool(held_pods & pods)
            or (agent is not None and ln.placement is not None and ln.placement[0] == agent)
        )
        if hit:
            awaiting = ln.status == "apply_pending" and not ln.confirmed()
            hits.append(Hit(row, task, ln.status, awaiting, cause,
                            ln.run_kind if ln.status == "running" else None))


def _segments(ln: TaskLine) -> list[Segment]:
    out: list[Segment] = []
    for row, epoch in ln.status_rows:
        status = row.get("to_status") or "pending"
        if out and out[-1].status == status:
            continue
        if out:
            out[-1].end = row
        out.append(Segment(status, row, None, epoch))
    return out


def _unsent(ln: TaskLine, seg: Segment) -> bool:
    """A `running` stint rolled back to the status it came from before anything was sent."""
    return seg.status == "running" and seg.end is not None and seg.end["seq"] in ln.rolled_back


def confirmed_waits(ln: TaskLine, end_t: float) -> list[tuple[Row, float, Segment]]:
    """Each stay in apply_pending with a confirmation in its epoch: (clock row, leave t, stay).

    The clock row is the confirmation, or the entry into apply_pending when the confirmation
    came earlier in the same epoch (an apply attempt that was sent, then rolled back). A stay
    that outlived the run leaves at `end_t`. Stays joined by unsent `running` stints (the
    seed's send failure, F3, however often it repeats) are one stay, stints included, with
    the first one's clock; the segment returned is the last one.
    """
    out: list[tuple[Row, float, Segment]] = []
    joined = False  # the last stay went on through an unsent stint
    for seg in ln.segments:
        if _unsent(ln, seg):
            continue
        if seg.status != "apply_pending":
            joined = False
            continue
        c = ln.first_confirm(seg.epoch, before_seq=seg.end["seq"] if seg.end else None)
        if c is None:
            joined = False
            continue
        leave = seg.end["t"] if seg.end else end_t
        if joined:
            out[-1] = (out[-1][0], leave, seg)
        else:
            out.append((c if c["seq"] > seg.start["seq"] else seg.start, leave, seg))
        joined = seg.end is not None
    return out


def idle_spans(ln: TaskLine, end_t: float) -> list[tuple[Row, float, float]]:
    """When nobody works for the task: terminal, or owed an apply. (start row, start t, end t).

    Adjacent spans merge (owed in apply_pending, then reset to pending, then failed is one
    span), so a bound applies to the whole idle time; so do spans joined by an unsent
    `running` stint (F3's failed send): nobody worked for the task during it either.
    """
    out: list[tuple[Row, float, float]] = []
    contiguous = False
    for seg in ln.segments:
        leave = seg.end["t"] if seg.end else end_t
        if seg.status in TERMINAL:
            start = seg.start
        elif seg.status in OWED:
            c = ln.first_confirm(seg.epoch, before_seq=seg.end["seq"] if seg.end else None)
            if c is None:
                contiguous = False
                continue
            start = c if c["seq"] > seg.start["seq"] else seg.start
        elif _unsent(ln, seg):
            continue  # the idle span, if any, goes on through it
        else:
            contiguous = False
            continue
        if contiguous and start is seg.start:
            row, t0, _ = out[-1]
            out[-1] = (row, t0, leave)
        else:
            out.append((start, float(start["t"]), leave))
        contiguous = seg.end is not None
    return out
