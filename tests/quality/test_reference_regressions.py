"""Minimal programs for violations the SimPy world once found in the reference scheduler,
kept as regression tests (found by `unstuck sim`, see tests/slow/sim)."""

from __future__ import annotations

import dataclasses

import paths

from scheduler import events as ev
from scheduler.history import Kind
from scheduler.model import TaskStatus
from sim import runner
from sim.config import FaultSpec
from sim.world import World
from tests.unit.sim.worlds import AGENTS, config, fixed
from unstuck import checker
from unstuck.scenario import load


def test_a_frozen_apply_is_fenced_off_by_the_next_apply_of_its_workspace():
    # node-loss-mid-apply seed 4: task 5's apply freezes with its node at t=1051; after 60 s
    # without heartbeats the reference fails it (outcome unknown) and unlocks; task 6's apply
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
    assert (task5["to_status"], task5["reason"].startswith("apply outcome unknown")) == ("failed", True)


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


def _disconnected_apply(cancel_at: float | None = None) -> list[dict]:
    """The apply runs 114..200 on an agent whose C&C connection drops at 120 for good. After
    60 s without heartbeats the reference gives the run up (failed: outcome unknown) and
    replaces the pod; our agent drains on SIGTERM, so the apply commits at 200 within the
    30 s grace and its HTTP report arrives with the old fence."""
    cfg = config(agents=dataclasses.replace(AGENTS, apply=fixed(86.0)),
                 faults=(FaultSpec("agent-disconnect", at=120.0, target="apply-runner",
                                   reconnect_after=300.0),))
    w = World(cfg, "reference", 0)
    if cancel_at is not None:
        w.kernel.at(cancel_at, w.send, ev.CancelTask(1, user="alice"))
    return w.run()


def _statuses(rows: list[dict]) -> list[tuple[float, str, str]]:
    return [(r["t"], r["to_status"], r["reason"]) for r in rows
            if r["kind"] == "task.transition" and r["task"] == 1 and r["t"] >= 150]


def test_an_apply_given_up_as_outcome_unknown_that_then_commits_is_recorded_applied():
    # Found by no_unrecorded_apply: the late report was refused as stale and the task read
    # `failed` for an apply that had changed the infrastructure.
    rows = _disconnected_apply()
    assert _statuses(rows) == [
        (175.0, "failed", "apply outcome unknown: no heartbeat from agent for 60 s"),
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
