"""Recovery latency does not charge a human's wait to the scheduler: a task queued behind a
plan that awaits its confirm waits on that human too, so its clock starts at the confirm
(found in mixed-chaos-day seed 0, where such a wait showed as a 4.8 h "recovery")."""

from __future__ import annotations

import paths

from scheduler import events as ev
from scheduler.model import TaskType
from unstuck import checker


def test_a_task_queued_behind_an_unconfirmed_plan_starts_its_clock_at_the_confirm():
    s = paths.Script("reference")
    s.run(40)
    s.create(50)  # task 1 plans, ends with changes at 110 and waits for its confirm
    s.at(51, ev.TaskCreated("ws-mb7m9ii5ey", TaskType.PLAN_AND_APPLY, "bob"))  # task 2 queues
    s.restart_scheduler(500)  # a fault that hits every unfinished task
    s.confirm(5000, 1)
    s.run(8000)
    m = checker.judge(s.finish())[1]
    hit = [r for r in m.recovery if r.task == 2][0]
    assert (hit.status_at_fault, hit.awaiting_human, hit.clock_t) == ("pending", True, 5000.0)
    # Task 1's apply takes 60 s; task 2 is dispatched when it ends and unlocks the workspace.
    assert hit.latency_s == 60.0
