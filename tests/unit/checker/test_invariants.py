"""Each invariant on small scripted stories: the edges of every rule, with exact times.

Stories are tables of (t, event); bound 300 s and drain 600 s unless a test says otherwise.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys

import pytest

from unstuck import checker
from unstuck.checker import invariants

from .story import Story, fixture


def _planned(s: Story, task: int = 1, ws: str = "ws-1", t: float = 0.0,
             digest: str | None = "d1", agent: str = "a1") -> int:
    """Create a plan_and_apply task and run its plan to apply_pending; returns the plan end."""
    pod = "p" + agent[1:]
    s.created(t, task, ws)
    s.to(t + 1, task, "pending", "running", ws, "dispatched", agent=agent, pod=pod)
    s.add(t + 2, "exec.invoke", task=task, workspace=ws, agent=agent, pod=pod,
          data={"action": "plan", "fence": 1})
    s.add(t + 10, "exec.ok", task=task, workspace=ws, agent=agent, pod=pod,
          data={"action": "plan", "fence": 1, "has_changes": True, "digest": digest})
    return s.to(t + 10, task, "running", "apply_pending", ws, "plan has changes")


def _apply(s: Story, t: float, task: int = 1, ws: str = "ws-1", agent: str = "a1",
           digest: str | None = "d1", outcome: str | None = "ok") -> int:
    """apply_pending -> running -> (outcome) for one apply attempt; returns the invoke's seq."""
    s.to(t, task, "apply_pending", "running", ws, "apply dispatched", agent=agent)
    inv = s.add(t + 1, "exec.invoke", task=task, workspace=ws, agent=agent,
                data={"action": "apply", "fence": 2, "digest": digest})
    if outcome is not None:
        s.add(t + 5, f"exec.{outcome}", task=task, workspace=ws, agent=agent,
              data={"action": "apply", "fence": 2})
        s.to(t + 5, task, "running", "applied" if outcome == "ok" else "failed", ws, "done")
    return inv


# --- plan epochs and confirmations -----------------------------------------------------------


def test_an_apply_retried_after_a_rollback_keeps_its_confirmation() -> None:
    s = Story()
    _planned(s)
    s.confirm(20, 1, digest="d1")
    s.to(21, 1, "apply_pending", "running", reason="apply dispatch")
    s.add(21, "dispatch.failed", task=1, workspace="ws-1", reason="send failed",
          data={"action": "apply"})
    s.to(21, 1, "running", "apply_pending", reason="rolled back", data={"stage": ""})
    _apply(s, 30)
    s.end(100)
    assert checker.check(s.rows()).ok


def test_a_confirmation_during_the_plan_does_not_cover_the_apply() -> None:
    s = Story()
    s.created(0, 1)
    s.to(1, 1, "pending", "running")
    s.confirm(5, 1, digest="d1")  # early: the plan has not ended yet
    s.to(10, 1, "running", "apply_pending", reason="plan has changes")
    inv = _apply(s, 20)
    s.end(100)
    (v,) = invariants.no_apply_without_confirmation(s.rows())
    assert (v.task, v.t, v.witness[-1]) == (1, 21.0, inv)


def test_a_second_plan_needs_a_second_confirmation_but_then_may_apply() -> None:
    s = Story()
    _planned(s)
    s.confirm(20, 1)
    _apply(s, 30, outcome="fail")
    s.to(40, 1, "failed", "pending", reason="re-plan")
    s.to(41, 1, "pending", "running")
    s.to(50, 1, "running", "apply_pending", reason="plan has changes")
    s.confirm(60, 1)
    _apply(s, 70)
    s.end(200)
    assert invariants.no_apply_without_confirmation(s.rows()) == []
    assert invariants.at_most_one_apply_per_confirmation(s.rows()) == []


def test_dispatch_counts_as_an_apply_only_when_the_task_has_no_exec_rows() -> None:
    s = Story()
    _planned(s)  # has exec rows (the plan)
    s.confirm(20, 1)
    s.to(21, 1, "apply_pending", "running", agent="a1")
    for t in (21, 22):  # the second dispatch never reached an invoke: one apply ran
        s.add(t, "dispatch", task=1, workspace="ws-1", agent="a1", data={"action": "apply"})
    s.add(23, "exec.invoke", task=1, workspace="ws-1", agent="a1", data={"action": "apply"})
    s.end(100)
    assert invariants.at_most_one_apply_per_confirmation(s.rows()) == []

    bare = Story()  # scheduler rows only: dispatches are all there is to count
    bare.created(0, 1)
    bare.to(1, 1, "pending", "running")
    bare.to(10, 1, "running", "apply_pending")
    bare.confirm(20, 1)
    d1 = bare.add(21, "dispatch", task=1, workspace="ws-1", data={"action": "apply"})
    d2 = bare.add(22, "dispatch", task=1, workspace="ws-1", data={"action": "apply"})
    bare.end(100)
    (v,) = invariants.at_most_one_apply_per_confirmation(bare.rows())
    assert v.t == 22.0 and d1 in v.witness and d2 in v.witness


# --- serialization --------------------------------------------------------------------------


def test_applies_of_different_workspaces_may_overlap_and_an_info_ends_an_apply() -> None:
    s = Story()
    _planned(s, 1, "ws-1")
    _planned(s, 2, "ws-2", t=1)
    s.confirm(20, 1, "ws-1")
    s.confirm(20, 2, "ws-2")
    _apply(s, 30, 1, "ws-1", outcome=None)
    _apply(s, 30, 2, "ws-2")
    s.add(40, "exec.info", task=1, workspace="ws-1", agent="a1", data={"action": "apply"})
    s.end(100)
    assert invariants.per_workspace_serialization(s.rows()) == []


# --- lost tasks -----------------------------------------------------------------------------


@pytest.mark.parametrize(("end", "lost"), [(121.0, False), (121.5, True)])
def test_a_running_task_is_lost_once_the_bound_passes_without_a_dispatch(end, lost) -> None:
    s = Story()
    s.created(0, 1, typ="plan")
    s.to(1, 1, "pending", "running")
    s.add(21, "dispatch", task=1, workspace="ws-1", agent="a1", data={"action": "plan"})
    s.end(end, bound_s=100)
    found = invariants.no_lost_task(s.rows())
    # 121 - 21 = 100 is exactly the bound: not yet lost.
    assert [(v.task, v.t) for v in found] == ([(1, 121.0)] if lost else [])


@pytest.mark.parametrize("late_end", ["exec.fail", "exec.ok"])
def test_a_late_report_of_an_older_run_does_not_end_the_newer_run_of_the_task(late_end) -> None:
    # An open execution ends at an exec.* end of the same task and agent (docs/checker.md).
    # a1 goes silent mid-apply (the service records exec.info for it); the apply is re-sent
    # to a2, which is still applying at run end. a1 then wakes up and reports its own run
    # (fence 2), late: that ends nothing of a2's run (fence 3), so task 1 is not lost.
    s = Story()
    _planned(s)
    s.confirm(20, 1, digest="d1")
    s.to(30, 1, "apply_pending", "running", reason="apply dispatched", agent="a1")
    s.add(30, "dispatch", task=1, workspace="ws-1", agent="a1", data={"action": "apply", "fence": 2})
    s.add(31, "exec.invoke", task=1, workspace="ws-1", agent="a1",
          data={"action": "apply", "fence": 2, "digest": "d1"})
    s.add(90, "exec.info", task=1, workspace="ws-1", agent="a1", reason="agent silent",
          data={"action": "apply", "fence": 2})
    s.add(100, "dispatch", task=1, workspace="ws-1", agent="a2", data={"action": "apply", "fence": 3})
    s.add(101, "exec.invoke", task=1, workspace="ws-1", agent="a2",
          data={"action": "apply", "fence": 3, "digest": "d1", "supersedes": [1, 2]})
    s.add(110, late_end, task=1, workspace="ws-1", agent="a1", reason="state lock fenced",
          data={"action": "apply", "fence": 2})
    s.end(500)
    assert invariants.no_lost_task(s.rows()) == []


@pytest.mark.parametrize(("own_end", "lost"), [(False, []), (True, [(1, 720.0)])])
def test_an_execution_end_of_another_agent_of_the_task_leaves_its_own_open_run_open(
        own_end, lost) -> None:
    # a2's end of a run it was refused before it began (no invoke of its own) ends nothing
    # of a1's run; once a1's own run ends, the task running with nothing sent is lost.
    s = Story()
    s.created(0, 1, typ="plan")
    s.to(1, 1, "pending", "running", agent="a1")
    s.add(1, "dispatch", task=1, workspace="ws-1", agent="a1", data={"action": "plan", "fence": 1})
    s.add(2, "exec.invoke", task=1, workspace="ws-1", agent="a1", data={"action": "plan", "fence": 1})
    s.add(10, "exec.fail", task=1, workspace="ws-1", agent="a2", reason="refused",
          data={"action": "plan", "fence": 2})
    if own_end:
        s.add(420, "exec.ok", task=1, workspace="ws-1", agent="a1",
              data={"action": "plan", "fence": 1})
    s.end(800, drain_s=1000)
    assert [(v.task, v.t) for v in invariants.no_lost_task(s.rows())] == lost


def test_user_actions_and_rejections_naming_unknown_tasks_are_not_lost_tasks() -> None:
    s = Story()
    s.add(1, "user", task=99, workspace="ws-1", data={"action": "confirm"})
    s.add(1, "confirm.rejected", task=99, workspace="ws-1", reason="no such task",
          data={"status": 404})
    s.end(10)
    assert checker.check(s.rows()).ok


# --- apply_pending bound --------------------------------------------------------------------


@pytest.mark.parametrize(("leave", "violated"), [(320.0, False), (320.5, True)])
def test_the_bound_runs_from_the_confirmation(leave, violated) -> None:
    s = Story()
    _planned(s)
    s.confirm(20, 1)
    _apply(s, leave)
    s.end(1000)
    found = invariants.apply_pending_bound(s.rows())
    assert [(v.task, v.t) for v in found] == ([(1, 320.0)] if violated else [])


def test_the_bound_restarts_when_a_confirmed_task_falls_back_to_apply_pending() -> None:
    s = Story()
    _planned(s)
    s.confirm(20, 1)
    s.to(100, 1, "apply_pending", "running", reason="apply dispatch")
    s.add(100, "dispatch", task=1, workspace="ws-1", agent="a1", data={"action": "apply"})
    back = s.to(200, 1, "running", "apply_pending", reason="rolled back")
    s.end(1000)
    (v,) = invariants.apply_pending_bound(s.rows())
    assert v.t == 500.0  # 200 + 300, not 20 + 300: the first stay was within the bound
    assert back in v.witness


def test_an_unconfirmed_plan_may_wait_for_a_human_forever() -> None:
    s = Story()
    _planned(s)
    s.add(10, "lock.acquired", task=1, workspace="ws-1", reason="Locked for apply (task #1)")
    s.end(100_000)
    assert checker.check(s.rows()).ok


def test_a_confirm_without_a_user_still_starts_the_clock() -> None:
    # The scheduler accepted it (the seed's F6 answers 200), so the user now waits on the
    # scheduler; it does not authorize an apply, but the task must not sit there forever.
    s = Story()
    _planned(s)
    s.confirm(20, 1, user=None)
    s.end(1000)
    (v,) = invariants.apply_pending_bound(s.rows())
    assert v.t == 320.0


# --- drain ----------------------------------------------------------------------------------


def test_a_confirm_inside_the_drain_period_exempts_the_task() -> None:
    s = Story()
    _planned(s)
    s.confirm(950, 1)
    s.end(1000, drain_s=100)
    assert invariants.drained(s.rows()) == []
    s2 = Story()
    _planned(s2)
    s2.confirm(850, 1)
    s2.end(1000, drain_s=100)
    assert [(v.task, v.t) for v in invariants.drained(s2.rows())] == [(1, 1000.0)]


def test_a_task_queued_behind_a_stuck_one_names_it_in_message_and_witness() -> None:
    # Found by a mutation test: the witness of the queued task was its creation alone.
    s = Story()
    _planned(s)
    acq = s.add(10, "lock.acquired", task=1, workspace="ws-1")
    s.confirm(20, 1)
    running = s.to(30, 1, "apply_pending", "running", reason="apply dispatched", agent="a1")
    s.created(40, 2)
    s.end(1000, drain_s=100)
    v = {x.task: x for x in invariants.drained(s.rows())}
    assert v[2].message.endswith("; queued behind task 1 (running since t=30)")
    assert {acq, running} <= set(v[2].witness)
    assert "queued behind" not in v[1].message


def test_a_task_queued_behind_one_confirmed_inside_the_drain_is_exempt_too() -> None:
    # Found by the scenario fuzz under the reference: a workspace's queue of five, each
    # confirmed late; the last was created long before the drain and was still queued when
    # the one before it, confirmed 40 s before the end, was applying.
    def story(confirm_t: float) -> Story:
        s = Story()
        _planned(s)
        s.created(5, 2, "ws-1")
        s.confirm(confirm_t, 1)
        _apply(s, confirm_t, outcome=None)
        s.end(1000, drain_s=100)
        return s

    assert invariants.drained(story(960).rows()) == []
    assert [v.task for v in invariants.drained(story(850).rows())] == [1, 2]


@pytest.mark.parametrize("cancel_t, flagged", [(850, [2]), (950, [2])])
def test_a_cancel_of_a_task_that_held_nothing_exempts_no_one(cancel_t, flagged) -> None:
    # Found by review: task 1 only queued, so cancelling it inside the drain frees nothing;
    # task 2, confirmed and owed an apply since t=52, is stuck whenever that cancel comes.
    s = Story()
    s.created(0, 1, "ws-1")
    _planned(s, task=2, t=5)
    s.confirm(40, 2)
    _apply(s, 50, task=2, outcome=None)
    s.add(52, "exec.fail", task=2, workspace="ws-1", agent="a1",
          data={"action": "apply", "fence": 2})
    s.to(52, 2, "running", "pending", "ws-1", "apply failed: requeued")
    s.add(cancel_t, "task.cancel", task=1, workspace="ws-1", data={"user": "u"})
    s.to(cancel_t, 1, "pending", "cancelled", "ws-1", "cancelled by user")
    s.end(1000, drain_s=100)
    assert [v.task for v in invariants.drained(s.rows())] == flagged


def _plan_running_at_a_late_confirm() -> Story:
    """Task 1 planned (apply_pending); task 2, a plan of the same workspace, running since
    t=20 on another agent when task 1 is confirmed late (t=950)."""
    s = Story()
    _planned(s)
    s.created(5, 2, "ws-1", typ="plan")
    s.to(20, 2, "pending", "running", "ws-1", "dispatched", agent="a2", pod="p2")
    s.confirm(950, 1)
    return s


def test_a_task_that_was_running_when_the_earlier_one_was_confirmed_is_not_held() -> None:
    # Found by review: a plan running since t=20, back to pending after the late confirm of
    # an earlier task and never run again, was not queued behind it.
    s = _plan_running_at_a_late_confirm()
    _apply(s, 950, outcome=None)
    s.to(960, 2, "running", "pending", "ws-1", "requeued")
    s.end(1000, drain_s=100)
    assert [v.task for v in invariants.drained(s.rows())] == [2]


def test_a_task_pending_at_a_later_confirm_of_the_earlier_one_is_held_by_that_one() -> None:
    # As above, but the apply's send fails and the user confirms task 1 again at t=970
    # (accepted: it is back in apply_pending), when task 2 is pending: held by that confirm,
    # though not by the first one.
    s = _plan_running_at_a_late_confirm()
    s.to(950, 1, "apply_pending", "running", reason="apply dispatch")
    s.add(950, "dispatch.failed", task=1, workspace="ws-1", reason="send failed",
          data={"action": "apply"})
    s.to(951, 1, "running", "apply_pending", reason="rolled back")
    s.to(960, 2, "running", "pending", "ws-1", "requeued")
    s.confirm(970, 1)
    s.end(1000, drain_s=100)
    assert invariants.drained(s.rows()) == []


def test_a_task_started_after_an_earlier_one_was_confirmed_inside_the_drain_is_exempt() -> None:
    # Also found by the fuzz: the earlier task was confirmed inside the drain and applied; the
    # one queued behind it (created long before) only then started its plan, still running
    # at the end. Before the drain, the same story leaves the scheduler time: a violation.
    def story(confirm_t: float) -> Story:
        s = Story()
        _planned(s)
        s.created(5, 2, "ws-1")
        s.confirm(confirm_t, 1)
        _apply(s, confirm_t)
        s.to(confirm_t + 6, 2, "pending", "running", "ws-1", "dispatched", agent="a1", pod="p1")
        s.end(1000, drain_s=100)
        return s

    assert invariants.drained(story(950).rows()) == []
    assert [v.task for v in invariants.drained(story(850).rows())] == [2]


# --- wedged workspace -----------------------------------------------------------------------


def test_a_lock_without_an_owner_wedges_after_the_bound() -> None:
    s = Story()
    acq = s.add(10, "lock.acquired", workspace="ws-1", reason="manual", data={"by": "ops"})
    s.end(1000)
    (v,) = invariants.no_wedged_workspace(s.rows())
    assert (v.task, v.workspace, v.t, v.witness) == (None, "ws-1", 310.0, (acq,))
    assert "it names no owner task" in v.message


def test_a_failed_owner_releasing_its_lock_in_time_does_not_wedge() -> None:
    s = Story()
    _planned(s)
    s.add(10, "lock.acquired", task=1, workspace="ws-1")
    s.to(50, 1, "apply_pending", "cancelled", reason="user cancelled")
    s.add(349, "lock.released", task=1, workspace="ws-1")
    s.end(1000)
    assert invariants.no_wedged_workspace(s.rows()) == []


def test_an_owner_reset_to_pending_behind_its_own_lock_wedges_it() -> None:
    # The doc variant's reset (F4): confirmed, set back to pending, never picked up because
    # the workspace is locked. Idle from the confirm on, across both statuses.
    s = Story()
    _planned(s)
    acq = s.add(10, "lock.acquired", task=1, workspace="ws-1")
    c = s.confirm(100, 1)
    s.to(150, 1, "apply_pending", "pending", reason="reservation miss: reset")
    s.end(1000)
    (v,) = invariants.no_wedged_workspace(s.rows())
    assert v.t == 400.0 and acq in v.witness and c in v.witness
    assert invariants.apply_pending_bound(s.rows()) == []  # it left apply_pending in time
    assert [v.task for v in invariants.drained(s.rows())] == [1]


def test_a_lock_its_failed_owner_writes_again_is_one_lock_held_since_the_first() -> None:
    # The seed locks the workspace before it saves a plan's end (on_plan_finished), so each
    # retry of a late plan report whose save fails writes lock.acquired again for the same
    # owner, with no release between: one lock, held by a failed task since t=100 (F8 plus
    # db-write-failure). Re-counted from each re-write, it never wedged.
    s = Story()
    s.created(0, 1)
    s.to(1, 1, "pending", "running", agent="a1", pod="p1")
    s.to(50, 1, "running", "failed", reason="agent disconnected")
    acq = s.add(100, "lock.acquired", task=1, workspace="ws-1", reason="Locked for apply (task #1)")
    for t in (100, 300, 500):
        if t > 100:
            s.add(t, "lock.acquired", task=1, workspace="ws-1", reason="Locked for apply (task #1)")
        s.add(t, "store.write_failed", task=1, workspace="ws-1", reason="db write failed",
              data={"op": "save task"})
    s.end(700)
    (v,) = invariants.no_wedged_workspace(s.rows())
    assert (v.task, v.t) == (1, 400.0) and acq in v.witness


def test_a_lock_taken_over_by_another_owner_is_a_new_lock() -> None:
    s = Story()
    s.add(100, "lock.acquired", task=1, workspace="ws-1")
    s.add(300, "lock.acquired", task=2, workspace="ws-1")
    s.add(500, "lock.acquired", task=1, workspace="ws-1")
    s.end(700)
    # Owners never created: each lock is wedged from its own acquisition, and none lasted
    # more than the bound.
    assert invariants.no_wedged_workspace(s.rows()) == []


def _refusal(s: Story, t: float, ws: str = "ws-1") -> int:
    return s.add(t, "task.rejected", workspace=ws, reason="workspace is locked",
                 data={"status": 423})


def test_creates_refused_as_locked_long_after_the_history_released_the_lock_wedge_it() -> None:
    # The store kept the lock (its unlock write failed) while the history says released: the
    # only symptom is the 423s, as in the incident ("creation answers 423").
    s = Story()
    _planned(s)
    acq = s.add(10, "lock.acquired", task=1, workspace="ws-1")
    s.confirm(20, 1)
    _apply(s, 30)
    failed = s.add(35, "store.write_failed", workspace="ws-1", reason="injected",
                   data={"op": "unlock"})
    rel = s.add(35, "lock.released", task=1, workspace="ws-1", reason="apply finished")
    _refusal(s, 300)  # within the bound: the release may still be on its way
    late = _refusal(s, 700)
    _refusal(s, 900)
    s.end(1000)
    (v,) = invariants.no_wedged_workspace(s.rows())
    assert (v.task, v.workspace, v.t) == (1, "ws-1", 700.0)
    assert v.witness == (acq, failed, rel, late)
    assert "released at t=35 (apply finished)" in v.message
    assert "the store holds a lock no task owns" in v.message


def test_refusals_while_the_history_holds_the_lock_or_within_the_bound_are_fine() -> None:
    s = Story()
    _planned(s)
    s.add(10, "lock.acquired", task=1, workspace="ws-1")
    _refusal(s, 200)  # the owner is apply_pending: the lock is its own
    s.confirm(400, 1)
    _apply(s, 410)
    s.add(415, "lock.released", task=1, workspace="ws-1")
    _refusal(s, 415)  # same instant as the release
    _refusal(s, 700, ws="ws-2")  # another workspace, refused for its own reasons... within 300 s
    _refusal(s, 900, ws="ws-2")  # ...of its first refusal: not yet
    s.end(1000)
    assert invariants.no_wedged_workspace(s.rows()) == []


def test_refusals_on_a_workspace_the_history_never_locked_count_from_the_first() -> None:
    s = Story()
    first = _refusal(s, 100, ws="ws-9")
    over = _refusal(s, 401, ws="ws-9")
    s.end(1000)
    (v,) = invariants.no_wedged_workspace(s.rows())
    assert (v.task, v.workspace, v.t, v.witness) == (None, "ws-9", 401.0, (first, over))
    assert "has no lock row" in v.message


def test_an_apply_that_committed_must_not_end_failed() -> None:
    # A scheduler that fails a running task on restart while its agent goes on (the seed's
    # F5): the apply commits, its report is refused as stale, and the task reads failed.
    s = Story()
    _planned(s)
    s.confirm(20, 1)
    inv = _apply(s, 30, outcome=None)
    end = s.to(33, 1, "running", "failed", reason="orphaned by scheduler restart")
    ok = s.add(36, "exec.ok", task=1, workspace="ws-1", agent="a1",
               data={"action": "apply", "fence": 2})
    s.end(1000)
    (v,) = invariants.no_unrecorded_apply(s.rows())
    assert (v.task, v.t) == (1, 36.0)
    assert {inv, end, ok} <= set(v.witness)
    assert v.message == ("task 1: its apply committed at t=36 (exec.ok from a1), but the task "
                         "ended failed at t=33 (orphaned by scheduler restart)")


@pytest.mark.parametrize("outcome,final,flagged", [
    ("ok", "applied", False),  # recorded
    ("ok", None, False),  # not ended: no_lost_task's and drained's business
    ("ok", "failed", True),  # the report was lost and the scheduler gave up
    ("ok", "cancelled", True),
    ("fail", "failed", False),  # the apply failed: failed is the truth
    ("info", "failed", False),  # outcome unknown (the agent died): no commit is known
])
def test_only_a_committed_apply_needs_the_applied_status(outcome, final, flagged) -> None:
    s = Story()
    _planned(s)
    s.confirm(20, 1)
    _apply(s, 30, outcome=None)
    s.add(35, f"exec.{outcome}", task=1, workspace="ws-1", agent="a1",
          data={"action": "apply", "fence": 2})
    if final is not None:
        s.to(40, 1, "running", final, reason="done")
    s.end(1000)
    assert bool(invariants.no_unrecorded_apply(s.rows())) is flagged


def _stale_story(second_plan_at: float, commit_outcome: str = "ok",
                 second_digest: str | None = "d2") -> tuple[Story, dict[str, int]]:
    """Round 3's path: task 1's apply is given up while it runs (t=25); task 2 of the same
    workspace plans from `second_plan_at`; task 1's apply ends (`commit_outcome`) at t=50 and
    a commit is recorded late; task 2 is confirmed and applies over t=200..205."""
    s = Story()
    _planned(s, task=1)
    s.confirm(15, 1)
    seqs = {"invoke1": _apply(s, 20, task=1, outcome=None)}
    s.to(25, 1, "running", "failed", reason="apply outcome unknown")
    # On another agent: a1 still runs task 1's apply (`agent_capacity`).
    seqs["plan2"] = _planned(s, task=2, t=second_plan_at, digest=second_digest, agent="a2")
    seqs["ok1"] = s.add(50, f"exec.{commit_outcome}", task=1, workspace="ws-1", agent="a1",
                        data={"action": "apply", "fence": 2})
    if commit_outcome == "ok":
        s.to(50, 1, "failed", "applied", reason="late_commit")
    s.confirm(190, 2, digest=second_digest)
    seqs["invoke2"] = _apply(s, 200, task=2, digest=second_digest, agent="a2")
    s.end(1000)
    return s, seqs


def test_an_apply_of_a_plan_made_before_another_commit_is_stale() -> None:
    # A given-up apply commits after the workspace's next plan_and_apply planned; that
    # stale plan is then confirmed and applied.
    s, seqs = _stale_story(second_plan_at=30)
    (v,) = invariants.no_stale_plan_apply(s.rows())
    assert (v.invariant, v.task, v.workspace, v.t) == ("no_stale_plan_apply", 2, "ws-1", 205.0)
    assert {seqs["invoke1"], seqs["ok1"], seqs["invoke2"]} <= set(v.witness)
    assert v.message == ("task 2: its apply committed at t=205 a plan made at t=40, but task "
                         "1's apply had changed workspace ws-1 at t=50, in between: the user "
                         "confirmed a plan of a state that was gone")
    assert [x.invariant for x in checker.check(s.rows()).violations] == ["no_stale_plan_apply"]


@pytest.mark.parametrize("second_plan_at,commit_outcome,flagged", [
    (30, "ok", True),  # planned before the other commit: stale
    (60, "ok", False),  # planned after it: the plan saw the change
    (45, "ok", True),  # the commit landed while the plan ran (47..55): it read the old state
    (49, "ok", False),  # the plan started (51) after the commit: it read the new state
    (30, "fail", False),  # the other apply failed: the state did not change
    (30, "info", False),  # outcome unknown: no commit is known
])
def test_only_a_commit_between_plan_and_apply_makes_it_stale(
        second_plan_at, commit_outcome, flagged) -> None:
    s, _ = _stale_story(second_plan_at, commit_outcome)
    assert bool(invariants.no_stale_plan_apply(s.rows())) is flagged


def test_the_plan_an_apply_carries_is_found_by_its_digest() -> None:
    # Task 2 planned twice: d2 before task 1's late commit, then d3 after it. An apply that
    # carries d3 is fresh; one that carries the old d2 is stale.
    for applied, flagged in (("d3", False), ("d2", True)):
        s = Story()
        _planned(s, task=1)
        s.confirm(15, 1)
        _apply(s, 20, task=1, outcome=None)
        s.to(25, 1, "running", "failed", reason="apply outcome unknown")
        _planned(s, task=2, t=30, digest="d2")
        s.add(50, "exec.ok", task=1, workspace="ws-1", agent="a1",
              data={"action": "apply", "fence": 2})
        s.to(50, 1, "failed", "applied", reason="late_commit")
        s.to(60, 2, "apply_pending", "running", reason="re-plan", agent="a1", pod="p1")
        s.add(61, "exec.invoke", task=2, workspace="ws-1", agent="a1", pod="p1",
              data={"action": "plan", "fence": 3})
        s.add(70, "exec.ok", task=2, workspace="ws-1", agent="a1", pod="p1",
              data={"action": "plan", "fence": 3, "has_changes": True, "digest": "d3"})
        s.to(70, 2, "running", "apply_pending", reason="plan has changes")
        s.confirm(190, 2, digest=applied)
        _apply(s, 200, task=2, digest=applied)
        s.end(1000)
        assert bool(invariants.no_stale_plan_apply(s.rows())) is flagged, applied


def test_a_commit_the_scheduler_recorded_before_its_late_exec_ok_is_dated_by_that_record() -> None:
    # Live, an exec.ok is recorded when its report reaches the service: task 1's agent is cut
    # off after its commit, the scheduler reads the commit from the state (t=30: applied), task
    # 2 plans over the changed state (t=40..50), and the report lands only at t=60. The commit
    # is known from t=30, before task 2's plan: not stale. Without that record, it would be.
    for state_read, flagged in ((True, False), (False, True)):
        s = Story()
        _planned(s, task=1)
        s.confirm(15, 1)
        _apply(s, 20, task=1, outcome=None)
        if state_read:
            s.to(30, 1, "running", "applied", reason="apply committed in the state (agent lost)")
        _planned(s, task=2, t=40, digest="d2")
        s.add(60, "exec.ok", task=1, workspace="ws-1", agent="a1", data={"action": "apply", "fence": 2})
        if not state_read:
            s.to(60, 1, "running", "applied", reason="apply finished")
        s.confirm(190, 2, digest="d2")
        _apply(s, 200, task=2, digest="d2")
        s.end(1000)
        assert bool(invariants.no_stale_plan_apply(s.rows())) is flagged, state_read


def test_a_stale_check_is_per_workspace_and_ignores_the_same_tasks_applies() -> None:
    s, _ = _stale_story(second_plan_at=30)
    other = [r if r.get("task") != 1 else {**r, "workspace": "ws-2"} for r in s.rows()]
    assert invariants.no_stale_plan_apply(other) == []
    # Task 1 applying twice from one plan is at_most_one_apply_per_confirmation's.
    s = Story()
    _planned(s)
    s.confirm(20, 1)
    _apply(s, 30)
    s.to(40, 1, "applied", "apply_pending", reason="requeued")
    _apply(s, 50)
    s.end(1000)
    assert invariants.no_stale_plan_apply(s.rows()) == []


def _run(s: Story, task: int, start: float, end: float | None, agent: str = "a1",
         action: str = "plan") -> None:
    """One run of `task` on `agent` from `start` to `end` (None: never ended)."""
    s.add(start, "exec.invoke", task=task, workspace=f"ws-{task}", agent=agent,
          data={"action": action, "fence": 1})
    if end is not None:
        s.add(end, "exec.ok", task=task, workspace=f"ws-{task}", agent=agent,
              data={"action": action, "fence": 1})


def _invokes(rows: list[dict], v: checker.Violation) -> list[tuple[float, int]]:
    """(t, task) of the exec.invoke rows in `v`'s witness."""
    return [(r["t"], r["task"]) for r in checker.witness_rows(rows, v) if r["kind"] == "exec.invoke"]


@pytest.mark.parametrize("second_agent, second_at, flagged", [
    ("a1", 30, True),  # while task 1's apply runs on a1
    ("a2", 30, False),  # another agent
    ("a1", 40, False),  # task 1's apply ended at 40 (its end is recorded first)
    ("a1", 12, True),  # between task 1's phases a1 is free, but not during its plan
])
def test_an_agent_runs_one_plan_and_apply_at_a_time(second_agent, second_at, flagged) -> None:
    s = Story()
    for task in (1, 2):
        s.created(0, task, f"ws-{task}")
    _run(s, 1, 5, 15)
    _run(s, 1, 20, 40, action="apply")
    _run(s, 2, second_at, second_at + 2, agent=second_agent)
    s.end(1000)
    rows = s.rows()
    got = invariants.agent_capacity(rows)
    assert bool(got) is flagged
    if flagged:
        (v,) = got
        phase, since = ("plan", 5) if second_at < 15 else ("apply", 20)
        assert (v.invariant, v.task, v.workspace, v.t) == ("agent_capacity", 2, "ws-2", second_at)
        assert _invokes(rows, v) == [(since, 1), (second_at, 2)]
        assert v.message == (
            f"agent a1 started task 2's plan_and_apply (plan) at t={second_at} while it still "
            f"ran task 1's plan_and_apply ({phase}, since t={since}): "
            "an agent runs one plan_and_apply at a time (seed-system.md §2.2) and refuses "
            "nothing itself")


def test_an_agent_runs_at_most_three_plans_and_drift_checks_count_toward_none() -> None:
    s = Story()
    for task, typ in ((1, "plan"), (2, "plan"), (3, "plan"), (4, "drift_check"),
                      (5, "plan_and_apply"), (6, "drift_check"), (7, "plan")):
        s.created(0, task, f"ws-{task}", typ=typ)
    for task in (1, 2, 4):  # two plans and a drift check: room for one more plan
        _run(s, task, 10, 100)
    _run(s, 5, 11, 100)  # a plan_and_apply runs beside plans: not a plan
    _run(s, 3, 12, 100)  # the third plan: allowed
    _run(s, 6, 13, 100)  # a drift check needs plan_running < 3: refused
    _run(s, 7, 14, 100)  # so is a fourth plan
    _run(s, 7, 150, 160)  # all ended: free again
    s.end(1000)
    rows = s.rows()
    got = invariants.agent_capacity(rows)
    assert [(v.task, v.t) for v in got] == [(6, 13.0), (7, 14.0)]
    assert _invokes(rows, got[1]) == [(10, 1), (10, 2), (12, 3), (14, 7)]
    assert "while it still ran task 1's plan (plan, since t=10), task 2's plan (plan, since " \
           "t=10), task 3's plan (plan, since t=12): an agent runs at most 3 plans at a " \
           "time" in got[1].message


def test_a_run_without_an_end_holds_its_agent_and_only_other_tasks_count() -> None:
    s = Story()
    for task in (1, 2):
        s.created(0, task, f"ws-{task}")
    _run(s, 1, 5, None, action="apply")  # never reported: still running, for all we know
    _run(s, 1, 50, 60, action="apply")  # the same task again: at_most_one_apply's business
    _run(s, 2, 500, 530)
    s.end(1000)
    assert [(v.task, v.t) for v in invariants.agent_capacity(s.rows())] == [(2, 500.0)]
    # An end recorded by someone else (the live service's "outcome unknown") frees it too.
    s.add(400, "exec.info", task=1, workspace="ws-1", agent="a1", data={"action": "apply"})
    assert invariants.agent_capacity(s.rows()) == []


# --- input errors ---------------------------------------------------------------------------


def test_a_history_without_run_end_needs_explicit_bounds() -> None:
    rows = [r for r in fixture("incident-601-seed.jsonl") if r["kind"] != "run.end"]
    with pytest.raises(checker.HistoryInvalid, match=re.escape(
            "history: bound_s is not set; the run.end row's data must carry bound_s and "
            "drain_s (docs/history.md), or pass bound_s= to the checker")):
        checker.check(rows)
    verdict = checker.check(rows, bound_s=20, drain_s=600)
    assert verdict.end_t == 470.0  # the last row's time stands in for the run's end
    assert [(v.invariant, v.t) for v in verdict.violations] == [
        ("apply_pending_bound", 460.0), ("no_wedged_workspace", 460.0)]


def test_explicit_bounds_override_the_run_end_row() -> None:
    rows = fixture("incident-601-seed.jsonl")
    verdict = checker.check(rows, bound_s=2000)
    assert (verdict.bound_s, verdict.drain_s) == (2000.0, 600.0)
    assert [v.invariant for v in verdict.violations] == ["drained"]


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda rows: rows.append(dict(rows[3])),
     r"^history rows: seq 3 appears twice; seq is the run's total order and must be unique"),
    (lambda rows: rows[5].pop("kind"),
     r"^history row 5: missing column 'kind'; every row needs seq, t and kind"),
    (lambda rows: rows[4].update(t=None),
     r"^history row 4 \(seq 4\): t = None \(NoneType\): expected a finite number of seconds"),
    (lambda rows: rows[4].update(t="3"),
     r"^history row 4 \(seq 4\): t = '3' \(str\): expected a finite number of seconds"),
    (lambda rows: rows[4].update(t=float("nan")), r"^history row 4 \(seq 4\): t = nan"),
    (lambda rows: rows[4].update(t=True), r"^history row 4 \(seq 4\): t = True \(bool\)"),
    (lambda rows: rows[4].update(seq="4"),
     r"^history row 4: seq = '4' \(str\): expected an integer"),
    (lambda rows: rows[4].update(seq=4.0), r"^history row 4: seq = 4.0 \(float\)"),
    (lambda rows: rows[4].update(seq=False), r"^history row 4: seq = False \(bool\)"),
    (lambda rows: rows[2].update(data="oops"),
     r"^history row 2 \(seq 2\): data = 'oops' \(str\): expected an object or null; fix the "
     r"row's data \(docs/history.md\)$"),
    (lambda rows: rows[2].update(task="1"),
     r"^history row 2 \(seq 2\): task = '1' \(str\): expected an integer or null"),
    (lambda rows: rows[2].update(task=True), r"^history row 2 \(seq 2\): task = True \(bool\)"),
    (lambda rows: rows[2].update(workspace=7),
     r"^history row 2 \(seq 2\): workspace = 7 \(int\): expected a string or null"),
    (lambda rows: rows[3].update(pod=["pod-a"]), r"^history row 3 \(seq 3\): pod = \['pod-a'\]"),
    (lambda rows: rows[3].update(slot="0"), r"^history row 3 \(seq 3\): slot = '0' \(str\)"),
    (lambda rows: rows[4].update(to_status={"s": 1}), r"^history row 4 \(seq 4\): to_status = "),
    (lambda rows: rows[4].update(kind=None), r"^history row 4 \(seq 4\): kind = None"),
    # Found by review: a fault's reason that was a list passed, and writing the results
    # tables' fault_events.reason (a string column) crashed.
    (lambda rows: rows[11].update(reason=["pod killed"]),
     r"^history row 11 \(seq 11\): reason = \['pod killed'\] \(list\): expected a string "
     r"or null; fix the row's reason \(docs/history.md\)$"),
    (lambda rows: rows.__setitem__(4, [4, 1.0, "task.transition"]),
     r"^history row 4: \[4, 1.0, 'task.transition'\] \(list\): expected an object with "
     r"seq, t and kind"),
    (lambda rows: rows.__setitem__(4, 4), r"^history row 4: 4 \(int\): expected an object"),
    # Found by review: a t that runs backwards against seq was judged, and a latency or a
    # stay measured across it came out negative.
    (lambda rows: rows[4].update(t=rows[3]["t"] - 0.5),
     r"^history row seq 4 \(task.transition\): t = 99.5 is before t = 100.0 of seq 3 "
     r"\(slot.assigned\); a run's time never goes back: rows are in time order, rows of one "
     r"t ordered by seq \(docs/history.md\)\. Fix the row's t, or renumber seq in time order$"),
    (lambda rows: rows.reverse() or rows[-2].update(t=200.0),  # out of seq order too
     r"^history row seq 2 \(task.created\): t = 100.0 is before t = 200.0 of seq 1 "
     r"\(agent.connected\)"),
    # Found by review: a list or object here crashed the grouping (TypeError: unhashable),
    # and True named the fault of seq 1.
    *[(lambda rows, v=v: rows.insert(-1, {**rows[-1], "seq": 900, "kind": "pod.terminating",
                                          "pod": "pod-a", "data": {"fault": v}}),
       r"^history row seq 900 \(pod.terminating\): data.fault = " + re.escape(repr(v))
       + r": expected the seq of the fault row whose effect this deletion is \(an integer\) "
       r"or null; fix the row's data.fault \(docs/history.md\)$")
      for v in ([11], {"seq": 11}, True, "11")],
    # Found by review: a task's or fault's type (or a node) that is not a string was judged
    # fine, and writing the results tables (Parquet string columns) then crashed.
    *[(lambda rows, i=i, key=key, v=v: rows[i]["data"].update({key: v}),
       rf"^history row seq {i} \({kind}\): data.{key} = " + re.escape(repr(v))
       + rf": expected a string or null; fix the row's data.{key} \(docs/history.md\)$")
      for i, kind, key in ((2, "task.created", "type"), (11, "fault", "type"),
                           (11, "fault", "node"), (0, "pod.added", "node"))
      for v in (["plan"], {"t": "x"}, 7)],
    (lambda rows: rows[-1]["data"].update(bound_s="5m"),
     r"^bound_s = '5m' \(str\): expected a non-negative number of seconds; fix the run.end "
     r"row's data.bound_s or pass bound_s= to the checker$"),
])
def test_malformed_histories_get_a_message_naming_the_problem(mutate, message) -> None:
    rows = fixture("incident-601-seed.jsonl")
    mutate(rows)
    with pytest.raises(checker.HistoryInvalid, match=message):
        checker.check(rows)


def test_no_wrongly_typed_column_or_data_field_gets_past_the_checker_as_a_crash() -> None:
    """Each column of each row of a fixture set to each wrong JSON type: the checker names the
    row (HistoryInvalid) or judges it, and never raises anything else (what `unstuck report`
    and `unstuck gate` would print as a traceback or a harness error)."""
    rows = fixture("agent-disconnect-wedge-f8.jsonl") + [
        {**r, "seq": r["seq"] + 1000} for r in fixture("two-tasks-overlapping.jsonl")
        if r["kind"] != "run.end"]
    rows.sort(key=lambda r: r["kind"] == "run.end")
    for r in rows:  # an apply that took the state lock from another token (its list form)
        if r["kind"] == "exec.invoke" and r["data"].get("action") == "apply":
            r["data"]["supersedes"] = [99, 1]
    wrong = ["x", 7, 1.5, True, [1], {"a": 1}]
    for i, row in enumerate(rows):
        fields = [(row, k) for k in row if k not in ("seq", "t")]
        fields += [(row["data"], k) for k in row.get("data") or {}]
        for target, key in fields:
            for value in wrong:
                mutated = copy.deepcopy(rows)
                where = mutated[i] if target is row else mutated[i]["data"]
                where[key] = value
                try:
                    checker.judge(mutated)
                except checker.HistoryInvalid:
                    pass
                except Exception as e:  # noqa: BLE001 - the point of the test
                    pytest.fail(f"row {i} ({row['kind']}) {key} = {value!r}: "
                                f"{type(e).__name__}: {e}")


def test_rows_out_of_order_are_judged_in_seq_order() -> None:
    rows = fixture("incident-601-seed.jsonl")
    assert checker.check(list(reversed(rows))) == checker.check(rows)


def test_the_checker_imports_no_world() -> None:
    code = ("import sys, unstuck.checker; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('simpy', 'kubernetes', 'sim', 'chaos', 'pandas')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_a_witness_skips_the_scheduler_attempts_from_before_the_plan() -> None:
    s = Story()
    s.created(0, 1)
    early = s.add(1, "dispatch.failed", task=1, workspace="ws-1", reason="no connected agents",
                  data={"action": "plan"})
    s.to(5, 1, "pending", "running")
    s.to(10, 1, "running", "apply_pending", reason="plan has changes")
    s.confirm(20, 1)
    late = s.add(20, "dispatch.failed", task=1, workspace="ws-1", reason="no connected agents",
                 data={"action": "apply"})
    s.end(1000)
    (v,) = invariants.apply_pending_bound(s.rows())
    assert late in v.witness and early not in v.witness
    (d,) = invariants.drained(s.rows())
    assert early not in d.witness


def test_three_overlapping_applies_are_two_violations_not_three_pairs() -> None:
    s = Story()
    _planned(s)
    s.confirm(20, 1)
    invokes = [_apply(s, t, outcome=None) for t in (30, 31, 32)]
    s.end(100)
    found = invariants.per_workspace_serialization(s.rows())
    assert [v.witness for v in found] == [(invokes[0], invokes[1]), (invokes[0], invokes[2])]


# --- review findings ------------------------------------------------------------------------


@pytest.mark.parametrize(("fault_type", "cited"), [
    ("pod-kill", False), ("agent-disconnect", False), ("node-loss", True)])
def test_only_a_node_loss_reaches_the_other_pods_of_its_node(fault_type, cited) -> None:
    # sim/faults.py records data.node on a pod-kill or agent-disconnect only to say where its
    # target was: it did not touch task 2's pod p2 on the same node. A node-loss did.
    s = Story()
    s.add(0, "pod.added", pod="p1", data={"node": "n1"})
    s.add(0, "pod.added", pod="p2", data={"node": "n1"})
    s.created(0, 2, "ws-2", typ="plan")
    s.add(1, "slot.assigned", task=2, pod="p2", slot=0)
    s.to(1, 2, "pending", "running", "ws-2", "dispatch plan", pod="p2")
    fault = s.add(50, "fault", pod="p1", agent="a1", data={"type": fault_type, "node": "n1"})
    s.end(1000, drain_s=100)
    (v,) = invariants.drained(s.rows())
    assert (fault in v.witness) is cited


def test_sends_that_fail_before_anything_went_out_do_not_restart_the_clock() -> None:
    # The seed's F3 in a loop: confirmed at 20, every 200 s the apply is saved as running, the
    # send fails and it is rolled back, nothing dispatched; it finally goes out at 1400.
    s = Story()
    _planned(s)
    acq = s.add(10, "lock.acquired", task=1, workspace="ws-1", reason="Locked for apply")
    c = s.confirm(20, 1)
    for t in range(200, 1400, 200):
        s.to(t, 1, "apply_pending", "running", reason="dispatch apply")
        s.add(t, "dispatch.failed", task=1, workspace="ws-1", reason="send failed",
              data={"action": "apply", "retry": "requeue"})
        s.to(t, 1, "running", "apply_pending", reason="send failed: rolled back")
    _apply(s, 1400)
    s.add(1405, "lock.released", task=1, workspace="ws-1")
    s.end(2000)
    (v,) = invariants.apply_pending_bound(s.rows())
    assert v.t == 320.0 and c in v.witness and "left at t=1400" in v.message
    (w,) = invariants.no_wedged_workspace(s.rows())
    assert w.t == 320.0 and acq in w.witness and c in w.witness


def test_the_late_end_of_a_fenced_off_apply_does_not_close_the_apply_that_fenced_it() -> None:
    # Task 1's apply on a1 is re-sent on a2, which takes the state lock from token (1, 1);
    # a1 wakes up and fails ("state lock fenced"). Task 1's a2 apply still runs when task
    # 2's apply starts.
    s = Story()

    def invoke(t: float, task: int, agent: str, fence: int, **data: object) -> int:
        return s.add(t, "exec.invoke", task=task, workspace="ws-1", agent=agent,
                     data={"action": "apply", "fence": fence, **data})

    def end(t: float, kind: str, task: int, agent: str, fence: int) -> int:
        return s.add(t, kind, task=task, workspace="ws-1", agent=agent,
                     data={"action": "apply", "fence": fence})

    invoke(100, 1, "a1", 1)
    second = invoke(200, 1, "a2", 2, supersedes=[1, 1])
    end(300, "exec.fail", 1, "a1", 1)
    third = invoke(400, 2, "a3", 1)
    end(500, "exec.ok", 1, "a2", 2)
    end(600, "exec.ok", 2, "a3", 1)
    s.end(1000)
    found = invariants.per_workspace_serialization(s.rows())
    assert [(v.t, v.witness) for v in found] == [(400.0, (second, third))]


@pytest.mark.parametrize(("late", "flagged"), [("exec.fail", False), ("exec.ok", True)])
def test_a_fenced_off_apply_that_commits_after_all_overlapped_the_apply_that_fenced_it(
        late, flagged) -> None:
    # Task 2's apply takes the state lock from task 1's token (1, 1) (the lock's lease ran
    # out while a1 was frozen; task 1 was failed, then late-corrected). The older apply's
    # window ends there only because it can no longer commit: its late exec.ok says it did,
    # so both applies ran and committed at once (docs/checker.md, "Fenced state locks").
    s = Story()
    first = s.add(100, "exec.invoke", task=1, workspace="ws-1", agent="a1",
                  data={"action": "apply", "fence": 1})
    s.add(150, "exec.info", task=1, workspace="ws-1", agent="a1", reason="agent silent",
          data={"action": "apply", "fence": 1})
    second = s.add(200, "exec.invoke", task=2, workspace="ws-1", agent="a2",
                   data={"action": "apply", "fence": 1, "supersedes": [1, 1]})
    end = s.add(300, late, task=1, workspace="ws-1", agent="a1", data={"action": "apply", "fence": 1})
    s.add(400, "exec.ok", task=2, workspace="ws-1", agent="a2", data={"action": "apply", "fence": 1})
    s.end(1000)
    found = invariants.per_workspace_serialization(s.rows())
    assert [(v.task, v.t, v.witness) for v in found] == (
        [(1, 300.0, (first, second, end))] if flagged else [])


# Times as a history records them (1 us): 4543.616756 - 3943.616756 is 600.0000000000005 in
# floating point, and 3943.616756 + 600 is 4543.616755999999.
CLOCK, EXACT, LATE = 3943.616756, 4543.616756, 4543.616757


@pytest.mark.parametrize(("leave", "violated"), [(EXACT, False), (LATE, True)])
def test_a_stay_of_exactly_the_bound_is_allowed_to_the_microsecond(leave, violated) -> None:
    s = Story()
    s.created(3900, 1)
    s.to(3901, 1, "pending", "running", reason="dispatch plan")
    s.to(3902, 1, "running", "apply_pending", reason="plan has changes")
    s.confirm(CLOCK, 1)
    s.to(leave, 1, "apply_pending", "running", reason="dispatch apply")
    s.add(leave, "dispatch", task=1, workspace="ws-1", data={"action": "apply"})
    s.to(4550, 1, "running", "applied", reason="apply finished")
    s.end(4600, bound_s=600)
    found = invariants.apply_pending_bound(s.rows())
    assert [v.t for v in found] == ([EXACT] if violated else [])


@pytest.mark.parametrize(("released", "violated"), [(EXACT, False), (LATE, True)])
def test_a_lock_held_exactly_the_bound_is_not_wedged(released, violated) -> None:
    s = Story()
    s.add(CLOCK, "lock.acquired", workspace="ws-1", reason="manual")
    s.add(released, "lock.released", workspace="ws-1")
    s.end(5000, bound_s=600)
    found = invariants.no_wedged_workspace(s.rows())
    assert [v.t for v in found] == ([EXACT] if violated else [])


@pytest.mark.parametrize(("end", "violated"), [(EXACT, False), (LATE, True)])
def test_a_task_running_exactly_the_bound_without_a_dispatch_is_not_lost(end, violated) -> None:
    s = Story()
    s.created(3900, 1, typ="plan")
    s.to(CLOCK, 1, "pending", "running", reason="dispatch plan")
    s.end(end, bound_s=600, drain_s=1000)
    found = invariants.no_lost_task(s.rows())
    assert [v.t for v in found] == ([EXACT] if violated else [])


@pytest.mark.parametrize(("confirm", "exempt"), [(316.731789, True), (316.731788, False)])
def test_a_confirm_exactly_drain_s_before_the_end_exempts_the_task(confirm, exempt) -> None:
    # 916.731789 - 600 is 316.73178900000005 in floating point.
    s = Story()
    _planned(s)
    s.confirm(confirm, 1)
    s.end(916.731789, drain_s=600)
    assert [v.task for v in invariants.drained(s.rows())] == ([] if exempt else [1])


def test_column_types_are_the_ones_typed_checks() -> None:
    """`timelines._typed` (the fast path, written out) and `COLUMN_TYPES` (the rule the error
    messages name) must agree on every column: a right type or null passes, any other fails."""
    from unstuck.checker import timelines

    sample = {str: "x", int: 7, dict: {}}
    good = {key: sample[typ] for key, typ in timelines.COLUMN_TYPES.items()}
    assert timelines._typed(good)
    for key, typ in timelines.COLUMN_TYPES.items():
        assert timelines._typed({**good, key: None}) is (key != "kind"), key
        for other in (str, int, dict):
            if other is not typ:
                assert not timelines._typed({**good, key: sample[other]}), (key, other)
        assert not timelines._typed({**good, key: 1.5}), key


def test_a_stuck_task_s_witness_leaves_out_the_faults_it_moved_on_from() -> None:
    # A fault the task recovered from (it was dispatched again after it) explains nothing
    # about why it is stuck now; only the faults since its last progress do. A double apply
    # is different: there an older fault can be the reason, so it keeps every fault.
    s = Story()
    _planned(s)
    s.add(11, "slot.reserved", task=1, workspace="ws-1", pod="p1", slot=0)
    s.confirm(20, 1)
    s.to(21, 1, "apply_pending", "running", reason="dispatch apply", pod="p1", agent="a1")
    s.add(21, "dispatch", task=1, workspace="ws-1", pod="p1", agent="a1",
          data={"action": "apply"})
    s.add(30, "fault", pod="p1", data={"type": "pod-kill"})
    s.to(40, 1, "running", "apply_pending", reason="agent lost: rolled back")
    s.to(50, 1, "apply_pending", "running", reason="dispatch apply", pod="p2", agent="a2")
    s.add(50, "dispatch", task=1, workspace="ws-1", pod="p2", agent="a2",
          data={"action": "apply"})
    s.add(60, "fault", pod="p2", data={"type": "pod-kill"})
    s.to(70, 1, "running", "apply_pending", reason="agent lost: rolled back")
    s.end(2000)
    rows = s.rows()
    kill = {r["t"]: r["seq"] for r in rows if r["kind"] == "fault"}
    (bound,) = invariants.apply_pending_bound(rows)
    (drain,) = invariants.drained(rows)
    for v in (bound, drain):
        assert kill[60] in v.witness and kill[30] not in v.witness, v


@pytest.mark.parametrize(("kind", "hint"), [
    ("exec.invok", "did you mean 'exec.invoke'?"), ("nope", "")])
def test_a_row_of_no_history_kind_is_refused_naming_it(kind: str, hint: str) -> None:
    # Found by review: an unknown kind was skipped in silence, so a misspelt exec.invoke hid
    # an apply from every safety invariant while the verdict read ok.
    s = Story()
    _planned(s)
    s.add(20, "exec.invoke", task=1, workspace="ws-1", agent="a1", data={"action": "apply"})
    s.end(100)
    rows = s.rows()
    invoke = [r for r in rows if r["kind"] == "exec.invoke"][-1]  # the apply
    invoke["kind"] = kind
    with pytest.raises(checker.HistoryInvalid) as err:
        checker.check(rows)
    assert f"kind = {kind!r} is not a history kind; {hint}" in str(err.value)
    assert "docs/history.md" in str(err.value)


@pytest.mark.parametrize(("key", "value", "hint"), [
    ("to_status", "apply_pendng", "did you mean 'apply_pending'?"),
    ("from_status", "Running", "did you mean 'running'?")])
def test_a_transition_of_no_task_status_is_refused_naming_it(key: str, value: str,
                                                             hint: str) -> None:
    # A misspelt apply_pending would hide the confirmed wait from apply_pending_bound.
    s = Story()
    _planned(s)
    rows = s.rows()
    last = [r for r in rows if r["kind"] == "task.transition"][-1]
    last[key] = value
    with pytest.raises(checker.HistoryInvalid) as err:
        checker.check(rows)
    assert f"{key} = {value!r} is not a task status; {hint}" in str(err.value)


@pytest.mark.parametrize("invoke_after_cancel", [True, False])
def test_an_apply_that_starts_after_the_users_cancel_has_no_confirmation(
        invoke_after_cancel: bool) -> None:
    # Found by review: a confirm, the user's cancel stored, then the apply ran anyway (the
    # seed's agent runs a dispatch that was in flight) passed every invariant: nothing said
    # a cancel withdraws the confirmation. An apply that started before the cancel is the
    # cancel's business (no_unrecorded_apply), not this invariant's.
    s = Story()
    _planned(s)
    confirm = s.confirm(20, 1)
    s.to(21, 1, "apply_pending", "running", reason="dispatch apply", agent="a1")
    s.add(21, "dispatch", task=1, workspace="ws-1", agent="a1", data={"action": "apply"})
    if not invoke_after_cancel:
        s.add(22, "exec.invoke", task=1, workspace="ws-1", agent="a1", data={"action": "apply"})
    s.to(25, 1, "running", "cancelled", reason="cancelled by user")
    cancel = s.add(25, "task.cancel", task=1, workspace="ws-1", data={"user": "u"})
    if invoke_after_cancel:
        invoke = s.add(30, "exec.invoke", task=1, workspace="ws-1", agent="a1",
                       data={"action": "apply"})
    s.end(100)
    found = invariants.no_apply_without_confirmation(s.rows())
    if not invoke_after_cancel:
        assert found == []
        return
    (v,) = found
    assert v.message.endswith("the user cancelled the task at t=25, after the confirmation")
    assert {confirm, cancel, invoke} <= set(v.witness)


def test_an_apply_refused_by_a_live_lease_never_began_and_overlaps_nothing() -> None:
    # The agent's state lock refuses task 2's apply while task 1's apply (cancelled, its agent
    # cut off) still holds it under a live lease: an exec.fail with no invoke. It never began,
    # so the checker sees no second apply beside the first (with an invoke it would count one:
    # per_workspace_serialization). Reached in the simulation until session 17; the reference
    # now holds task 2's plan back instead (tests/unit/sim/test_world.py).
    s = Story()
    s.add(40, "exec.invoke", task=1, workspace="ws-1", agent="a1",
          data={"action": "apply", "fence": 2})
    s.add(66, "exec.fail", task=2, workspace="ws-1", agent="a2",
          reason="state of ws-1 is locked by task 1 (fence 2) under a live lease",
          data={"action": "apply", "fence": 2})
    s.add(240, "exec.ok", task=1, workspace="ws-1", agent="a1", data={"action": "apply", "fence": 2})
    s.end(900)
    assert invariants.per_workspace_serialization(s.rows()) == []
