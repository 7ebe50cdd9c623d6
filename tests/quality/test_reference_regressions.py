"""Minimal programs for violations the SimPy world once found in the reference scheduler,
kept as regression tests (found by `unstuck sim`, see tests/slow/sim)."""

from __future__ import annotations

import dataclasses

import paths

from scheduler import events as ev
from scheduler.history import Kind
from scheduler.model import TaskStatus
from scheduler.ports import StateReadError
from scheduler.settings import ReferencePolicy, Settings
from sim import runner
from sim.config import FaultSpec
from sim.world import World
from tests.unit.sim.worlds import AGENTS, EXACT, config, fixed
from unstuck import checker
from unstuck.scenario import load


def test_a_frozen_apply_is_fenced_off_by_the_next_apply_of_its_workspace():
    # node-loss-mid-apply seed 4: task 5's apply freezes with its node at t=1051; after 60 s
    # without heartbeats the reference fails it (its state lock lapsed: the apply did not
    # commit) and unlocks; task 6's apply
    # takes the fenced state lock at t=1322, while task 5's pod still hangs on the lost node
    # (killed on heal at t=1655). The frozen apply can no longer commit, so no overlap counts.
    rows = runner.run(load("scenarios/node-loss-mid-apply.yaml").world(), "reference", 4).rows
    v = checker.check(rows)
    assert v.ok, [(x.invariant, x.message) for x in v.violations]
    takeover = [r for r in rows if r["kind"] == "exec.invoke" and r["task"] == 6
                and r["data"]["action"] == "apply"][0]
    assert takeover["data"]["supersedes"] == [5, 2]
    frozen_end = [r for r in rows if r["task"] == 5 and r["kind"] in ("exec.ok", "exec.fail", "exec.info")
                  and r["data"]["action"] == "apply"][0]
    assert frozen_end["t"] > takeover["t"]  # it really was still open at the takeover
    task5 = [r for r in rows if r["kind"] == "task.transition" and r["task"] == 5][-1]
    assert (task5["to_status"], task5["reason"].startswith("apply did not commit")) == ("failed", True)


def test_a_lock_whose_owner_went_back_to_pending_is_released():
    # db-write-failures seed 1: the lock was written at plan end but the task's CAS failed
    # and the agent gave up; the reconcile re-queued the plan behind its own lock.
    s = paths.planned("reference")
    task = s.task(1)
    s.store.cas_task(1, task.version, status=TaskStatus.PENDING, stage="pending", agent_id=None)
    assert s.workspace().is_locked and s.workspace().lock_task_id == 1
    s.run(400)
    released = [e.reason for e in s.history.events if e.kind is Kind.LOCK_RELEASED]
    assert released == ["lock owner is back in pending"]
    assert s.task(1).status is TaskStatus.APPLY_PENDING  # re-planned, locked again
    assert s.workspace().lock_task_id == 1


def test_a_plan_nobody_confirms_does_not_hold_its_pod_against_other_workspaces():
    # mixed-chaos-day seed 46: plans nobody confirmed held the plan_and_apply slot of every
    # pod of a pool at max_replicas, and new plan_and_apply tasks waited for hours (F11).
    # A reservation is kept for its hold time (15 min), then a waiting plan may take it.
    s = paths.Script("reference", workspaces=("ws-a", "ws-b"),
                     pool=paths.Pool("pool-1", min_replicas=1, max_replicas=1))
    s.create(5, "ws-a")
    s.run(150)  # task 1 waits for a confirm that never comes, reserving the only pod
    plan_end = s.task(1).completed_at
    s.create(200, "ws-b")
    s.run(plan_end + 900 - 1)
    assert s.task(2).status is TaskStatus.PENDING  # the reservation is still held
    s.run(plan_end + 1000)
    assert s.task(2).status is TaskStatus.APPLY_PENDING  # planned on the same pod
    released = [e for e in s.history.events if e.kind is Kind.SLOT_RELEASED and e.task == 1]
    assert [e.reason for e in released] == ["preempted by task 2"]
    assert plan_end + 900 <= released[0].t <= plan_end + 905  # at the next reconcile
    s.confirm(plan_end + 1100, 1)  # task 1's plan is stored: it still applies, on any slot
    s.confirm(plan_end + 1100, 2)
    s.run(plan_end + 3000)
    assert {s.task(1).status, s.task(2).status} == {TaskStatus.APPLIED}


def _disconnected_apply(cancel_at: float | None = None, run_timeout_s: float | None = None) -> list[dict]:
    """The apply runs 114..200 on an agent whose C&C connection drops at 120 for good. After
    60 s without heartbeats the reference asks the state backend: the run still holds the
    state lock under a live lease, so it waits (with `run_timeout_s` passed, it gives the run
    up instead: outcome unknown). A replacement pod is created at once, but the pod running
    the apply is kept until the run is settled: the apply commits at 200 and its HTTP report
    arrives; only then is the old pod deleted."""
    cfg = config(agents=dataclasses.replace(AGENTS, apply=fixed(86.0)),
                 faults=(FaultSpec("agent-disconnect", at=120.0, target="apply-runner",
                                   reconnect_after=300.0),))
    settings = None
    if run_timeout_s is not None:
        settings = Settings(reference=ReferencePolicy(run_timeout_s=run_timeout_s))
    w = World(cfg, "reference", 0, settings=settings)
    if cancel_at is not None:
        w.kernel.at(cancel_at, w.send, ev.CancelTask(1, user="alice"))
    return w.run()


def _statuses(rows: list[dict]) -> list[tuple[float, str, str]]:
    return [(r["t"], r["to_status"], r["reason"]) for r in rows
            if r["kind"] == "task.transition" and r["task"] == 1 and r["t"] >= 150]


def test_a_silent_apply_that_still_holds_its_lease_is_waited_for():
    # It used to be failed at 175 (outcome unknown), then made `applied` by its late report.
    rows = _disconnected_apply()
    assert _statuses(rows) == [(200.0, "applied", "apply finished")]
    assert checker.check(rows).ok


def test_an_apply_given_up_at_its_run_timeout_that_then_commits_is_recorded_applied():
    # Found by no_unrecorded_apply: the late report was refused as stale and the task read
    # `failed` for an apply that had changed the infrastructure.
    # Presumed lost at 175, the run is waited for (in doubt) until its timeout at 179:
    rows = _disconnected_apply(run_timeout_s=65.0)
    assert _statuses(rows) == [
        (180.0, "failed", "apply outcome unknown: no heartbeat from agent for 60 s, and the run timed out"),
        (200.0, "applied", "late report: the apply had committed (task was failed)"),
    ]
    assert checker.check(rows).ok


def test_a_cancel_that_came_after_the_commit_ends_applied():
    # The cancel could not reach the disconnected agent; the apply committed anyway.
    rows = _disconnected_apply(cancel_at=150.0)
    assert _statuses(rows) == [
        (150.0, "cancelled", "cancelled by user"),
        (200.0, "applied", "late report: the apply had committed (task was cancelled)"),
    ]
    assert checker.check(rows).ok


def _report_lost_world(db_down_s: float, run_timeout_s: float | None = None) -> World:
    cfg = config(cluster=dataclasses.replace(EXACT, nodes=1), duration_s=900.0, drain_s=900.0,
                 faults=(FaultSpec("db-write-failure", at=170.0, duration_s=db_down_s, rate=1.0),
                         FaultSpec("node-loss", at=180.0, target="random")))
    settings = None
    if run_timeout_s is not None:
        settings = Settings(reference=ReferencePolicy(run_timeout_s=run_timeout_s))
    return World(cfg, "reference", 0, settings=settings)


def _report_lost(db_down_s: float, cancel_at: float | None = None) -> tuple[list[dict], list]:
    """The apply commits at 174, while store writes fail (170 for `db_down_s`): its report is
    answered 503 and retried. At 180 the only node is lost for good, and the agent freezes
    with the report unsent: it will never arrive. Found as a compound fault by
    no_unrecorded_apply (the task was failed as "outcome unknown" for an apply that had
    changed the infrastructure)."""
    w = _report_lost_world(db_down_s)
    answers: list = []
    if cancel_at is not None:
        w.kernel.at(cancel_at, lambda: answers.append(w.send(ev.CancelTask(1, user="alice"))))
    return w.run(), answers


def test_an_apply_whose_report_died_with_its_agent_is_recorded_applied_from_the_state():
    rows, _ = _report_lost(60.0)
    assert [r["reason"] for r in rows if r["kind"] == "exec.ok" and r["data"]["action"] == "apply"] == [""]
    # 60 s after the last heartbeat (174), at the first reconcile with the store back:
    assert _statuses(rows) == [
        (235.0, "applied", "apply committed in the state (no heartbeat from agent for 60 s)")]
    assert checker.check(rows).ok


def test_a_cancel_of_an_apply_the_state_shows_committed_is_refused_and_the_task_applied():
    # The store is back at 200; the agent, frozen with the report, is not yet presumed lost.
    rows, answers = _report_lost(30.0, cancel_at=210.0)
    assert [(a.status, a.message) for a in answers] == [(409, "the apply has already committed")]
    assert _statuses(rows) == [(210.0, "applied", "apply committed in the state (cancel refused)")]
    assert checker.check(rows).ok


def _unreadable_until(w: World, back_at: float | None) -> None:
    """The state backend refuses every read until `back_at` (None: for ever). Injected: the
    simulated backend itself never fails."""
    read = w.state.apply_outcome

    def flaky(workspace_id: str, task_id: int, fence: int):
        if back_at is None or w.kernel.now < back_at:
            raise StateReadError("connection refused")
        return read(workspace_id, task_id, fence)

    w.state.apply_outcome = flaky


def test_a_state_that_cannot_be_read_for_a_while_is_waited_for_not_guessed():
    # The backend is unreachable when the agent is presumed lost (235): "applied" cannot be
    # claimed, and "failed" would be a guess (it did commit). It used to fail at once as
    # "outcome unknown", and no_unrecorded_apply flagged it. Asked at every pass, it answers
    # at the first pass once it is back:
    w = _report_lost_world(60.0)
    _unreadable_until(w, back_at=400.0)
    rows = w.run()
    assert _statuses(rows) == [
        (400.0, "applied", "apply committed in the state (no heartbeat from agent for 60 s)")]
    assert checker.check(rows).ok


def test_a_state_that_stays_unreadable_leaves_the_outcome_unknown_at_the_run_timeout():
    w = _report_lost_world(60.0, run_timeout_s=300.0)
    _unreadable_until(w, back_at=None)
    rows = w.run()
    # Asked again at every pass from 235, the backend never answers; the run, which began
    # at 115, times out at 415:
    assert _statuses(rows) == [
        (415.0, "failed", "apply outcome unknown: no heartbeat from agent for 60 s, and the "
                          "run timed out (state unreadable: connection refused)")]
    # The checker sees the commit the scheduler could not: an unrecorded apply.
    assert [v.invariant for v in checker.check(rows).violations] == ["no_unrecorded_apply"]


def test_a_long_apply_whose_agent_is_only_cut_off_is_not_killed_by_a_pod_replacement():
    # The apply runs 114..414; its agent's C&C connection drops at 120, and the agent works
    # on. After 60 s of silence the reference asked the state (in doubt: it waits), but in
    # the same pass replaced the pod as "agent unhealthy": our agent drains 30 s on SIGTERM,
    # the apply was cut off at 210 and failed as "did not commit", an apply the scheduler
    # itself killed. A pod holding a running task is not deleted until the run is settled.
    cfg = config(agents=dataclasses.replace(AGENTS, apply=fixed(300.0)), duration_s=900.0,
                 faults=(FaultSpec("agent-disconnect", at=120.0, target="apply-runner",
                                   reconnect_after=600.0),))
    rows = World(cfg, "reference", 0).run()
    assert _statuses(rows) == [(414.0, "applied", "apply finished")]
    runner_pod = [r["pod"] for r in rows if r["kind"] == "exec.invoke" and r["task"] == 1
                  and r["data"]["action"] == "apply"][0]
    assert not [r for r in rows if r["kind"] == "pod.delete" and r["pod"] == runner_pod
                and r["t"] < 414.0]
    assert checker.check(rows).ok
