"""`seed-proposal`: the seed plus the long-term fixes the incident report itself proposes.

From shared/seed/incident-601-apply-pending-report.md, "长期解决方案" sections 1 and 2:
1. On a reservation miss, reset the task to pending with a retry count, failing it after
   3 tries (`RetryCount >= 3`), sleep 2 s, then TryExecuteNextTask.
2. The pending-tasks monitor also calls TryExecuteNextTask for every workspace that has an
   apply_pending task.

Neither touches the workspace lock, and GetNextExecutableTask still returns nothing for a
locked workspace and never returns apply_pending: the tests show what that means.
"""

from __future__ import annotations

from scheduler.model import Stage, Task, TaskStatus
from scheduler.variants.seed import SeedPolicy


class SeedProposalPolicy(SeedPolicy):
    name = "seed-proposal"
    max_retries = 3

    def on_reservation_miss(self, task: Task, mutex: str | None) -> bool | None:
        before = task.status
        if task.retry_count >= self.max_retries:
            task.status = TaskStatus.FAILED
            task.error_message = "Pod deleted, exceeded max retries"
            task.completed_at = self.ctx.now
            self.save(task, before, task.error_message)
            self.release_mutex(mutex)
            return False  # fmt.Errorf("max retries exceeded")
        task.status, task.stage, task.agent_id, task.started_at = (
            TaskStatus.PENDING, Stage.PENDING, None, None,
        )
        task.retry_count += 1
        task.error_message = f"Pod deleted, resetting to pending (retry {task.retry_count}/3)"
        ok = self.save(task, before, task.error_message)
        self.release_mutex(mutex)
        if not ok:
            return False
        self.ctx.spawn(2.0, "try_next", task.workspace_id)  # time.Sleep(2 s); TryExecuteNextTask
        return True

    def monitor_workspaces(self) -> list[str]:
        """The report's loop is `for ws := range uniqueWorkspaces` over a Go map: its order
        is random each tick, so which workspace's goroutine takes a contended slot first is
        too (the seed's own monitor keeps the query's order)."""
        workspaces = self.workspaces_with(TaskStatus.PENDING, TaskStatus.APPLY_PENDING)
        self.ctx.rng.shuffle(workspaces)
        return workspaces
