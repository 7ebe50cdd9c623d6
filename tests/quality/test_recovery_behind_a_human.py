"""Recovery latency charges the scheduler only for time it could have used: a pending
plan_and_apply queued behind earlier plan_and_apply tasks of its workspace waits its turn
(per-workspace serialization), so its clock starts when the last of them ends, however long
their humans and applies take. Found on mixed-chaos-day: seed 0 showed a 4.8 h "recovery"
behind an unconfirmed plan, seed 48 a 28 min one behind a plan that was still running at
the fault and then waited 19 min for its confirm."""

from __future__ import annotations

import paths

from scheduler import events as ev
from scheduler.model import TaskType
from unstuck import checker

WS = "ws-mb7m9ii5ey"


def second_task_hit(fault_at: float) -> checker.metrics.RecoveryHit:
    s = paths.Script("reference")
    s.run(40)
    s.create(50)  # task 1 plans 50-110, waits for its confirm, applies 5000-5060
    s.at(51, ev.TaskCreated(WS, TaskType.PLAN_AND_APPLY, "bob"))  # task 2 queues behind it
    s.restart_scheduler(fault_at)  # a fault that hits every unfinished task
    s.confirm(5000, 1)
    s.run(8000)
    m = checker.judge(s.finish())[1]
    return next(r for r in m.recovery if r.task == 2)


def test_a_task_queued_behind_an_unconfirmed_plan_starts_its_clock_when_that_task_ends():
    hit = second_task_hit(500)
    assert (hit.status_at_fault, hit.queued, hit.awaiting_human) == ("pending", True, False)
    # Task 1's apply ends at 5060 and unlocks the workspace; task 2 is dispatched at once.
    assert (hit.clock_t, hit.latency_s, hit.outcome) == (5060.0, 0.0, "recovered")


def test_a_task_queued_behind_a_plan_still_running_at_the_fault_waits_the_same_turn():
    hit = second_task_hit(80)  # task 1 is still planning; its human wait begins after the fault
    assert (hit.queued, hit.clock_t, hit.latency_s) == (True, 5060.0, 0.0)
