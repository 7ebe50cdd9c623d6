"""The seed's startup recovery cancels the pending tasks of run triggers (seed-system.md §5,
RecoverPendingTasks step 2): a task whose description starts "Triggered by workspace" is
not safe to resume after a restart. Other pending tasks are resumed."""

from __future__ import annotations

from scheduler import events as ev
from scheduler.model import TaskStatus, TaskType
from scheduler.testing import Script


def test_a_restart_cancels_pending_run_trigger_tasks_only():
    s = Script("seed", workspaces=("ws-a", "ws-b"), agent_connect_s=None)  # nothing runs
    s.at(5, ev.TaskCreated("ws-a", TaskType.PLAN_AND_APPLY, "alice",
                           description="Triggered by workspace ws-src (task #7)"))
    s.at(5, ev.TaskCreated("ws-b", TaskType.PLAN_AND_APPLY, "alice", description="nightly"))
    s.restart_scheduler(50)
    s.run(60)
    trigger, other = s.task(1), s.task(2)
    assert trigger.status is TaskStatus.CANCELLED
    assert trigger.error_message == (
        "Cancelled on server restart - Run Trigger tasks are not recovered for safety")
    assert other.status is TaskStatus.PENDING
