"""The ten invariants, one pure function each: history in, violations out.

Each function takes the history (a list of row dicts, or the `Timelines` already built from
it, which is how `check` avoids grouping the rows seven times) and returns its violations in
time order. Nothing here reads a clock, a file or a live object; the same history always gives
the same violations. docs/checker.md states each rule; the definitions of status, plan epoch,
confirmed, authorized and owed are in `timelines`.

Safety: `no_apply_without_confirmation`, `at_most_one_apply_per_confirmation`,
`per_workspace_serialization`, `no_lost_task`, `no_unrecorded_apply`, `no_stale_plan_apply`,
`agent_capacity`.
Liveness: `apply_pending_bound`, `drained`, `no_wedged_workspace`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from typing import Any

from scheduler.heartbeat import PLAN_LIMIT
from unstuck.checker import timelines, witness
from unstuck.checker.timelines import Row, Timelines, us
from unstuck.checker.verdicts import Violation

History = Iterable[Row] | Timelines


def _tl(history: History, bound_s: float | None = None, drain_s: float | None = None) -> Timelines:
    if isinstance(history, Timelines):
        return history
    return timelines.build(history, bound_s=bound_s, drain_s=drain_s)


def _user(row: Row) -> Any:
    return (row.get("data") or {}).get("user")


def _digest(row: Row) -> Any:
    return (row.get("data") or {}).get("digest")


def _lines(tl: Timelines) -> list[timelines.TaskLine]:
    return [tl.tasks[k] for k in sorted(tl.tasks)]


# --- safety --------------------------------------------------------------------------------


def no_apply_without_confirmation(history: History) -> list[Violation]:
    """Every apply (exec.invoke or dispatch, action apply) follows an authorized confirmation
    of the same plan epoch, with the same digest when both carry one, and no cancel of the
    user's stored between that confirmation and the apply. One violation per epoch."""
    tl = _tl(history)
    out = []
    for ln in _lines(tl):
        seen: set[int] = set()
        for row, epoch in sorted(ln.applies + ln.dispatch_applies, key=lambda p: p[0]["seq"]):
            if epoch in seen:
                continue
            before = [(c, e) for c, e in ln.confirms if c["seq"] < row["seq"]]
            ours = [c for c, e in before if e == epoch]
            authorized = [c for c in ours if _user(c) is not None]
            d = _digest(row)
            matching = [c for c in authorized if d is None or _digest(c) in (None, d)]
            # The user's stored cancel withdraws every confirmation before it: an apply that
            # starts after it is one nobody wanted (the seed's agent runs a dispatch that
            # was in flight when the cancel was stored).
            cancel = witness.last_at_or_before(ln.cancels, row["seq"])
            live = [c for c in matching if cancel is None or c["seq"] > cancel["seq"]]
            if live:
                continue
            seen.add(epoch)
            named = [row, before[-1][0] if before else None]
            if matching:
                assert cancel is not None
                why = f"the user cancelled the task at t={cancel['t']:g}, after the confirmation"
                named.append(cancel)
            elif authorized:
                why = (f"applies digest {d!r} but the confirmation was for "
                       f"{_digest(authorized[0])!r}")
            elif ours:
                why = "the only confirmation of this plan carried no user (data.user is null)"
            elif before:
                why = "the confirmation came before the latest plan ended, so it does not cover it"
            else:
                why = "the task was never confirmed"
            out.append(Violation(
                "no_apply_without_confirmation", ln.task, ln.workspace, float(row["t"]),
                f"task {ln.task}: {row['kind']} apply at t={row['t']:g} without a matching "
                f"confirmation: {why}",
                witness.explain(tl, ln, row["seq"], named),
            ))
    return out


def at_most_one_apply_per_confirmation(history: History) -> list[Violation]:
    """At most one apply per plan epoch: exec.invoke action apply, or, for a task with no
    exec rows at all, dispatch action apply. A second confirm (a double click) allows none."""
    tl = _tl(history)
    out = []
    for ln in _lines(tl):
        applies = ln.apply_starts()
        by_epoch: dict[int, list[Row]] = {}
        for row, epoch in applies:
            by_epoch.setdefault(epoch, []).append(row)
        for rows in by_epoch.values():
            if len(rows) < 2:
                continue
            first, second = rows[0], rows[1]
            # How the task got from the first apply to the second: its status rows between
            # them (a requeue to apply_pending, the second dispatch), which explain the
            # second apply better than the confirmation does.
            between = [r for r, _ in ln.status_rows if first["seq"] < r["seq"] < second["seq"]]
            out.append(Violation(
                "at_most_one_apply_per_confirmation", ln.task, ln.workspace, float(second["t"]),
                f"task {ln.task}: {len(rows)} applies ({rows[0]['kind']}) for one plan, at "
                + ", ".join(f"t={r['t']:g}" for r in rows),
                witness.explain(tl, ln, second["seq"], [first, second, *between]),
            ))
    return out


def per_workspace_serialization(history: History) -> list[Violation]:
    """Never two plan_and_apply tasks of one workspace both in running/apply_pending, and never
    two applies of one workspace executing at once (exec.invoke .. exec.ok/fail/info). An apply
    whose `exec.invoke` supersedes an older token of the fenced state lock ends the older
    apply's window there: the older one can no longer commit."""
    tl = _tl(history)
    out = _overlapping_statuses(tl) + _overlapping_applies(tl)
    out.sort(key=lambda v: (v.t, v.witness))
    return out


def _overlapping_statuses(tl: Timelines) -> list[Violation]:
    out = []
    for ws in sorted(tl.ws_status):
        # task -> (the row it became active, its status now, the row that set that status)
        active: dict[int, tuple[Row, str, Row]] = {}
        reported: set[tuple[int, int]] = set()
        for row, task, status in tl.ws_status[ws]:
            if status not in timelines.ACTIVE:
                active.pop(task, None)
                continue
            if task in active:
                active[task] = (active[task][0], status, row)
                continue
            for other, (entered, now, latest) in active.items():
                if (other, task) in reported:
                    continue
                reported.add((other, task))  # one per pair: re-entries of a pair repeat it
                since = "" if latest is entered else f" since t={latest['t']:g}"
                out.append(Violation(
                    "per_workspace_serialization", task, ws, float(row["t"]),
                    f"workspace {ws}: task {task} entered {status} at t={row['t']:g} while "
                    f"task {other} was {now}{since} (active since t={entered['t']:g})",
                    tuple(sorted({entered["seq"], latest["seq"], row["seq"]})),
                ))
            active[task] = (row, status, row)
    return out


def _overlapping_applies(tl: Timelines) -> list[Violation]:
    out = []
    for ws in sorted(tl.ws_apply_execs):
        running: list[Row] = []
        fenced: dict[tuple[Any, Any], Row] = {}  # token -> the newer apply that ended its window
        invoked: dict[tuple[Any, Any], Row] = {}  # token -> its latest exec.invoke
        for row in tl.ws_apply_execs[ws]:
            if row["kind"] == "exec.invoke":
                _fence_off(running, row, fenced)
                if running:  # one violation per overlapping start, against the oldest apply
                    other = running[0]
                    out.append(Violation(
                        "per_workspace_serialization", row.get("task"), ws, float(row["t"]),
                        f"workspace {ws}: apply of task {row.get('task')} on "
                        f"{row.get('agent')} started at t={row['t']:g} while the apply of task "
                        f"{other.get('task')} on {other.get('agent')} (since "
                        f"t={other['t']:g}) had not ended",
                        (other["seq"], row["seq"]),
                    ))
                running.append(row)
                invoked[_token(row)] = row
            elif _close(running, row, fenced) and row["kind"] == "exec.ok":
                # A fenced-off apply committed after all: its window did not end where the
                # newer apply took the state lock, so the two ran, and committed, at once.
                newer, older = fenced[_token(row)], invoked.get(_token(row))
                out.append(Violation(
                    "per_workspace_serialization", row.get("task"), ws, float(row["t"]),
                    f"workspace {ws}: apply of task {row.get('task')} on {row.get('agent')} "
                    f"committed at t={row['t']:g} after the apply of task {newer.get('task')} on "
                    f"{newer.get('agent')} took its state lock at t={newer['t']:g}: both applies "
                    f"ran and committed",
                    tuple(sorted({r["seq"] for r in (older, newer, row) if r is not None})),
                ))
    return out


def _token(row: Row) -> tuple[Any, Any]:
    """The (task, fence) token an apply row runs under; fence None when the row has none."""
    return row.get("task"), (row.get("data") or {}).get("fence")


def _fence_off(running: list[Row], invoke: Row, fenced: dict[tuple[Any, Any], Row]) -> None:
    """An apply that took the workspace's fenced state lock from an older token ends that
    older apply's claim: from this row on it can no longer commit (docs/checker.md)."""
    sup = (invoke.get("data") or {}).get("supersedes")
    if not sup:
        return
    token = (sup[0], sup[1])
    fenced[token] = invoke
    running[:] = [r for r in running if _token(r) != token]


def _close(running: list[Row], done: Row, fenced: dict[tuple[Any, Any], Row]) -> bool:
    """Close the open apply that `done` ends (`timelines.close_oldest`: the oldest of its
    token, the same agent preferred). The end of an apply whose token was fenced off closes
    nothing: that apply's window already ended, and it must not close another apply of its
    task that still runs. True for such an end of a fenced-off apply."""
    task, fence = _token(done)
    if fence is not None and (task, fence) in fenced and all(
            _token(inv) != (task, fence) for inv in running):
        return True
    timelines.close_oldest(running, done)
    return False


def no_lost_task(history: History, *, bound_s: float | None = None) -> list[Violation]:
    """At run end no task sits in `running` with no open execution and no dispatch, running
    entry or execution end in the last `bound_s`; and every task named by a scheduler or agent
    row was created."""
    tl = _tl(history, bound_s=bound_s)
    bound = tl.run.bound()
    out = []
    for ln in _lines(tl):
        if ln.created is None:
            if ln.first_ref is not None:
                ref = ln.first_ref
                out.append(Violation(
                    "no_lost_task", ln.task, ln.workspace, float(ref["t"]),
                    f"task {ln.task}: {ref['kind']} at t={ref['t']:g} names a task that was "
                    f"never created",
                    (ref["seq"],),
                ))
            continue
        if ln.status != "running" or ln.open_execs:
            continue
        entry = ln.segments[-1].start
        activity = [entry, witness.last_at_or_before(ln.dispatches, tl.run.end_seq),
                    witness.last_at_or_before(ln.exec_done, tl.run.end_seq)]
        last = max((r for r in activity if r is not None), key=lambda r: r["seq"])
        if us(tl.run.end_t - last["t"]) <= bound:
            continue
        t = us(float(last["t"]) + bound)
        out.append(Violation(
            "no_lost_task", ln.task, ln.workspace, t,
            f"task {ln.task}: running with no execution open and nothing sent to it since "
            f"{last['kind']} at t={last['t']:g} (bound {bound:g} s)",
            witness.explain(tl, ln, tl.seq_at(t), [last], stalled=True),
        ))
    out.sort(key=lambda v: v.t)
    return out


def no_unrecorded_apply(history: History) -> list[Violation]:
    """An apply that committed is recorded: a task with an `exec.ok` of action `apply` does not
    end in a terminal status other than `applied`. The agent's `exec.ok` is the world's word
    that the apply changed the infrastructure; a task that then reads `failed` or `cancelled`
    tells its user the opposite, and the next plan starts from a state nobody expects. An
    outcome the scheduler never learned (the agent died with its report) is no excuse once
    the apply committed: it is the case the check exists for. A task that has not ended is
    left to `no_lost_task` and `drained`."""
    tl = _tl(history)
    out = []
    for ln in _lines(tl):
        if not ln.terminal or ln.status == "applied":
            continue
        ok = next((r for r in ln.exec_done if r["kind"] == "exec.ok"
                   and _action(r) == "apply"), None)
        if ok is None:
            continue
        end = ln.segments[-1].start
        last = max(ok, end, key=lambda r: r["seq"])
        why = f" ({end['reason']})" if end.get("reason") else ""
        out.append(Violation(
            "no_unrecorded_apply", ln.task, ln.workspace, float(last["t"]),
            f"task {ln.task}: its apply committed at t={ok['t']:g} (exec.ok from "
            f"{ok.get('agent')}), but the task ended {ln.status} at t={end['t']:g}{why}",
            witness.explain(tl, ln, last["seq"], [_invoke_of(ln, ok), ok, end]),
        ))
    out.sort(key=lambda v: v.t)
    return out


def no_stale_plan_apply(history: History) -> list[Violation]:
    """A committed apply applies a plan of the workspace's current state: no other task's
    apply committed in the same workspace between the start of the plan an apply carries (its
    `exec.invoke`; its `exec.ok` when the history has no invoke for it) and the start of that
    apply. A plan is a diff against the state it read; once another apply has
    changed that state, the user's confirmation was for changes that no longer describe what
    the apply will do (Terraform refuses such a saved plan as stale; neither our simulated nor
    our live agent checks it, so the scheduler must not send one). The plan an apply carries
    is the task's latest plan `exec.ok` before the apply's `exec.invoke` with the invoke's
    digest (any digest when the invoke carries none). An apply that overlaps the other one is
    `per_workspace_serialization`'s, and the same task's second apply is
    `at_most_one_apply_per_confirmation`'s, so neither counts here."""
    tl = _tl(history)
    # Per workspace: (the commit's exec.ok, its invoke, the row that first shows it, its task).
    commits: dict[str | None, list[tuple[Row, Row | None, Row, int]]] = {}
    for ln in _lines(tl):
        for r in ln.exec_done:
            if r["kind"] == "exec.ok" and _action(r) == "apply":
                invoke = _invoke_of(ln, r)
                commits.setdefault(ln.workspace, []).append(
                    (r, invoke, _commit_known(ln, r, invoke), ln.task))
    out = []
    for ws, done in commits.items():
        done.sort(key=lambda p: p[2]["seq"])
        seqs = [k["seq"] for _, _, k, _ in done]
        for ok, invoke, _, task in done:
            ln = tl.tasks[task]
            plan = _plan_of(ln, invoke) if invoke is not None else None
            if plan is None:
                continue
            # The plan read the state when it started: a commit seen after that is one it
            # may have missed. Without its invoke row, from the plan's end.
            read = ln.plan_starts.get(plan["seq"], plan)
            between = done[bisect_right(seqs, read["seq"]):bisect_left(seqs, invoke["seq"])]
            other = next((o for o in between if o[3] != task), None)
            if other is None:
                continue
            c, c_invoke, k, u = other
            out.append(Violation(
                "no_stale_plan_apply", task, ws, float(ok["t"]),
                f"task {task}: its apply committed at t={ok['t']:g} a plan made at "
                f"t={plan['t']:g}, but task {u}'s apply had changed workspace {ws} at "
                f"t={k['t']:g}, in between: the user confirmed a plan of a state that was gone",
                witness.explain(tl, ln, ok["seq"], [plan, c_invoke, k, c, invoke, ok]),
            ))
    out.sort(key=lambda v: (v.t, v.witness))
    return out


def agent_capacity(history: History) -> list[Violation]:
    """No agent is sent more than it may run (seed-system.md §2.2, `IsAgentAvailable`): a
    plan_and_apply starts a phase only on an agent that runs no other plan_and_apply, and a
    plan or drift check only on one that runs fewer than `PLAN_LIMIT` plans. The agent itself
    enforces nothing and runs whatever it is sent, so an over-booked agent runs two applies
    side by side, and the seed's, whose `apply_running` flag the first end clears, then calls
    itself idle while one still runs (F7). A run lasts from its `exec.invoke` to the end that
    `close_oldest` matches to it; one with no recorded end holds its agent to the end of the
    history, which matters only if that agent starts something else. Only other tasks' runs
    count: one task's second apply is `at_most_one_apply_per_confirmation`'s. A task of
    unknown type (no `task.created`) is not judged."""
    tl = _tl(history)
    kind_of = {n: ln.type for n, ln in tl.tasks.items()}
    running: list[Row] = []  # open invokes, every agent's
    out = []
    for row in tl.execs:
        if row["kind"] != "exec.invoke":
            timelines.close_oldest(running, row)
            continue
        agent, task, kind = row.get("agent"), row["task"], kind_of.get(row["task"])
        others = [r for r in running if r.get("agent") == agent and r["task"] != task]
        if kind == "plan_and_apply":
            busy = [r for r in others if kind_of.get(r["task"]) == "plan_and_apply"][:1]
            rule = "one plan_and_apply at a time"
        elif kind in ("plan", "drift_check"):
            busy = [r for r in others if kind_of.get(r["task"]) == "plan"]
            busy = busy if len(busy) >= PLAN_LIMIT else []
            rule = f"at most {PLAN_LIMIT} plans at a time"
        else:
            busy = []
        if busy:
            ln = tl.tasks[task]
            held = ", ".join(
                f"task {r['task']}'s {kind_of.get(r['task'])} ({_action(r)}, since t={r['t']:g})"
                for r in busy)
            out.append(Violation(
                "agent_capacity", task, ln.workspace, float(row["t"]),
                f"agent {agent} started task {task}'s {kind} ({_action(row)}) at "
                f"t={row['t']:g} while it still ran {held}: an agent runs {rule} "
                f"(seed-system.md §2.2) and refuses nothing itself",
                witness.explain(tl, ln, row["seq"], [*busy, row]),
            ))
        running.append(row)
    return out


def _action(row: Row) -> Any:
    return (row.get("data") or {}).get("action")


def _commit_known(ln: timelines.TaskLine, ok: Row, invoke: Row | None) -> Row:
    """The first row that shows the commit `ok` made: `ok` itself, or the task's earlier
    transition to `applied` after the apply's invoke. A live `exec.ok` is recorded when its
    report reaches the service, which may be long after the commit (its agent cut off), while
    the scheduler read the commit from the state and marked the task `applied` before: from
    that row on, a plan reads the changed state. `invoke`: the apply's (`_invoke_of`)."""
    if invoke is None:
        return ok
    applied = next((r for r, _ in ln.status_rows if r.get("to_status") == "applied"
                    and invoke["seq"] < r["seq"] < ok["seq"]), None)
    return applied if applied is not None else ok


def _plan_of(ln: timelines.TaskLine, invoke: Row) -> Row | None:
    """The plan an apply carries: the task's latest plan `exec.ok` before the apply's
    `exec.invoke`, with its digest when the invoke names one."""
    d = _digest(invoke)
    for r in reversed(ln.exec_done):
        if (r["seq"] < invoke["seq"] and r["kind"] == "exec.ok"
                and _action(r) == "plan"
                and (d is None or _digest(r) == d)):
            return r
    return None


def _invoke_of(ln: timelines.TaskLine, done: Row) -> Row | None:
    """The `exec.invoke` an execution end closes: the latest one before it of the same
    token (fence) and agent."""
    token = _token(done)
    for inv, _ in reversed(ln.applies):
        if inv["seq"] < done["seq"] and _token(inv) == token and inv.get("agent") == done.get("agent"):
            return inv
    return None


# --- liveness ------------------------------------------------------------------------------


def apply_pending_bound(history: History, *, bound_s: float | None = None) -> list[Violation]:
    """No confirmed task stays in apply_pending more than `bound_s` after its confirmation
    (or after re-entering apply_pending, if the confirmation came first). First stay per task."""
    tl = _tl(history, bound_s=bound_s)
    bound = tl.run.bound()
    out = []
    for ln in _lines(tl):
        for clock, leave_t, seg in timelines.confirmed_waits(ln, tl.run.end_t):
            if us(leave_t - clock["t"]) <= bound:
                continue
            t = us(float(clock["t"]) + bound)
            left = f"left at t={leave_t:g}" if seg.end is not None else "still there at run end"
            out.append(Violation(
                "apply_pending_bound", ln.task, ln.workspace, t,
                f"task {ln.task}: confirmed, in apply_pending since t={clock['t']:g}, "
                f"{left} (bound {bound:g} s)",
                witness.explain(tl, ln, tl.seq_at(t), [clock], stalled=True),
            ))
            break
    out.sort(key=lambda v: v.t)
    return out


def drained(history: History, *, drain_s: float | None = None) -> list[Violation]:
    """At run end every task is terminal or excused: awaiting a human (apply_pending, not
    confirmed), created, confirmed or asked to cancel in the last `drain_s`, or held in its
    workspace's queue by a human (below)."""
    tl = _tl(history, drain_s=drain_s)
    drain = tl.run.drain()
    end_t = tl.run.end_t
    out = []
    lines = [ln for ln in _lines(tl) if ln.created is not None]
    # A workspace runs one plan_and_apply at a time, so a human's late action on the one that
    # holds it holds the tasks queued behind: those behind a plan that awaits a confirm, and
    # those still pending when a human confirmed, or asked to cancel, an earlier
    # plan_and_apply of their workspace that held it (running or apply_pending) inside the
    # drain. A queue whose tasks were each confirmed late holds its last task, created long
    # before the drain, until the one before it has applied.
    awaiting: dict[str, int] = {}
    released: dict[str, list[tuple[int, Row]]] = {}
    for ln in lines:
        if ln.status == "apply_pending" and not ln.confirmed():
            awaiting[ln.workspace] = min(awaiting.get(ln.workspace, ln.task), ln.task)
        if ln.type != "plan_and_apply":
            continue
        late = [r for r in ln.stimuli if r["kind"] != "task.created"
                and us(end_t - r["t"]) <= drain and ln.status_before(r["seq"]) in timelines.ACTIVE]
        released.setdefault(ln.workspace, []).extend((ln.task, r) for r in late)
    blocked_by = _blockers(tl, lines)
    for ln in lines:
        if ln.terminal or (ln.status == "apply_pending" and not ln.confirmed()):
            continue
        if any(us(end_t - r["t"]) <= drain for r in ln.stimuli):
            continue
        if ln.status == "pending" and awaiting.get(ln.workspace, ln.task) < ln.task:
            continue
        held = [r for task, r in released.get(ln.workspace, ()) if task < ln.task]
        if any(ln.status_before(r["seq"]) == "pending" for r in held):
            continue
        why = "confirmed and " if ln.confirmed() else ""
        blocker, rows = blocked_by(ln)
        behind = ""
        if blocker is not None:
            seg = blocker.segments[-1]
            behind = f"; queued behind task {blocker.task} ({blocker.status} since t={seg.start['t']:g})"
        out.append(Violation(
            "drained", ln.task, ln.workspace, end_t,
            f"task {ln.task}: {why}{ln.status} at run end t={end_t:g}, after a "
            f"{drain:g} s drain{behind}",
            tuple(sorted(set(witness.explain(tl, ln, tl.run.end_seq, stalled=True))
                         | {r["seq"] for r in rows})),
        ))
    return out


def _blockers(tl: Timelines, lines: list[timelines.TaskLine]
              ) -> Callable[[timelines.TaskLine], tuple[timelines.TaskLine | None, list[Row]]]:
    """What a pending task of a workspace waits behind at run end: the owner of the
    workspace's lock, else the workspace's active plan_and_apply (a task queued behind a stuck
    one says nothing by itself; its witness should name the one that holds it). The lookup
    returns the blocker and the rows that show it: its lock and its latest status row. The
    workspaces' locks and active tasks are gathered once, not per violation."""
    held = {s.workspace: s for s in tl.locks if s.released is None and s.end_t == tl.run.end_t}
    active: dict[str | None, list[timelines.TaskLine]] = {}
    for other in lines:
        if other.type == "plan_and_apply" and other.status in timelines.ACTIVE:
            active.setdefault(other.workspace, []).append(other)

    def blocker(ln: timelines.TaskLine) -> tuple[timelines.TaskLine | None, list[Row]]:
        if ln.status != "pending" or ln.workspace is None:
            return None, []
        span = held.get(ln.workspace)
        if span is not None and span.owner != ln.task and span.owner in tl.tasks \
                and tl.tasks[span.owner].created is not None:
            owner = tl.tasks[span.owner]
            return owner, [span.acquired, owner.segments[-1].start]
        other = next((o for o in active.get(ln.workspace, ()) if o.task != ln.task), None)
        return (other, [other.segments[-1].start]) if other is not None else (None, [])

    return blocker


def no_wedged_workspace(history: History, *, bound_s: float | None = None) -> list[Violation]:
    """No workspace lock stays held more than `bound_s` while its owner task is terminal, owed
    an apply nobody runs, null or unknown. One violation per lock acquisition."""
    tl = _tl(history, bound_s=bound_s)
    bound = tl.run.bound()
    out = []
    for span in tl.locks:
        lock_t = float(span.acquired["t"])
        owner = tl.tasks.get(span.owner) if span.owner is not None else None
        if owner is not None and owner.created is None:
            owner = None
        if owner is None:
            spans = [(span.acquired, lock_t, span.end_t)]
        else:
            spans = timelines.idle_spans(owner, tl.run.end_t)
        for start_row, s, e in spans:
            s, e = max(s, lock_t), min(e, span.end_t)
            if us(e - s) <= bound:
                continue
            t = us(s + bound)
            if owner is None:
                why = f"its owner {span.owner!r} is unknown" if span.owner is not None else \
                    "it names no owner task"
                wit = (span.acquired["seq"],)
            else:
                why = f"its owner task {owner.task} is {_idle_status(owner, start_row)}"
                wit = witness.explain(tl, owner, tl.seq_at(t), [span.acquired, start_row])
            held = "still held at run end" if span.end_t == tl.run.end_t and \
                span.released is None else f"released at t={span.end_t:g}"
            out.append(Violation(
                "no_wedged_workspace", span.owner, span.workspace, t,
                f"workspace {span.workspace}: locked since t={lock_t:g} and {why} since "
                f"t={s:g}; {held} (bound {bound:g} s)",
                wit,
            ))
            break
    out += _refused_while_unlocked(tl, bound)
    out.sort(key=lambda v: (v.t, v.workspace or ""))
    return out


def _refused_while_unlocked(tl: Timelines, bound: float) -> list[Violation]:
    """A lock the history does not show. The scheduler refuses a create with 423 only while
    its store holds the workspace's lock, so a refusal after the history's last `lock.released`
    (or with no lock row at all) shows a lock still held that no task owns: a release that was
    recorded but never written, say. It counts from that release (or from the first such
    refusal) and is a violation at the first refusal more than `bound_s` later. One violation
    per release."""
    out = []
    for ws in sorted(tl.refused_unlocked):
        reported: set[int] = set()
        first: dict[int, Row] = {}
        for refusal, span in tl.refused_unlocked[ws]:
            key = -1 if span is None else span.acquired["seq"]
            if key in reported:
                continue
            start = first.setdefault(key, refusal) if span is None or span.released is None \
                else span.released
            if us(float(refusal["t"]) - float(start["t"])) <= bound:
                continue
            reported.add(key)
            owner = tl.tasks.get(span.owner) if span is not None and span.owner is not None else None
            if span is None:
                since = f"has no lock row, yet creates were refused as locked from t={start['t']:g}"
            else:
                since = (f"was released at t={start['t']:g} ({start.get('reason') or 'no reason'})"
                         f" by the history, yet creates were still refused as locked")
            # The failed write that explains it: the workspace's own (a lock write), else the
            # owner's last one.
            cause = witness.last_at_or_before(tl.ws_write_failed.get(ws, []), start["seq"])
            if cause is None and owner is not None:
                cause = witness.last_at_or_before(owner.write_failed, start["seq"])
            out.append(Violation(
                "no_wedged_workspace", None if span is None else span.owner, ws,
                float(refusal["t"]),
                f"workspace {ws}: its lock {since} at t={refusal['t']:g}: the store holds a "
                f"lock no task owns (bound {bound:g} s)",
                tuple(sorted({r["seq"] for r in (None if span is None else span.acquired, start,
                                                   cause, refusal) if r is not None})),
            ))
    return out


def _idle_status(ln: timelines.TaskLine, start_row: Row) -> str:
    if start_row["kind"] == "task.confirmed":
        return "confirmed but not applied"
    status = start_row.get("to_status")
    return status if status in timelines.TERMINAL else f"confirmed but {status}"


ALL = (
    no_apply_without_confirmation,
    at_most_one_apply_per_confirmation,
    per_workspace_serialization,
    no_lost_task,
    no_unrecorded_apply,
    no_stale_plan_apply,
    agent_capacity,
    apply_pending_bound,
    drained,
    no_wedged_workspace,
)
