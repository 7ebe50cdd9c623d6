"""`seed-head`: the project's later fix (seed-system.md §7), with the gaps it leaves.

Added over the seed:
1. The monitor rescans confirmed apply_pending tasks every tick and calls
   ExecuteConfirmedApply for each, bypassing GetNextExecutableTask.
2. Slot bookkeeping follows agent events: the HTTP status report reserves on apply_pending
   and releases on terminal statuses; the C&C task_completed / task_failed releases
   unconditionally (G1: that release lands after the reserve and wipes it).
3. The slot's pod is bound to the agent named after it (an online DB agent row whose name
   is the pod name), backfilled into the pod manager.
4. The in-process workspace mutex becomes a try-lock (PG advisory lock: skip if held).

Still missing (reproduced): G1 reservation release race, G2 no scale-up demand for a
confirmed apply_pending task without a slot, G5 no CAS in ExecuteConfirmedApply /
pushTaskToAgent (the monitor tick plus ConfirmApply's goroutine, or a double click, can
dispatch an apply twice), G7, G8, G9, G11, and, inherited from the seed, G3 (the freeze
branch and a rebuild delete busy pods) and G4 (reservations die with the process). Each has a
test in tests/quality/test_seed_head_gaps.py. G6 and G10 need several replicas, which the
model does not have.
"""

from __future__ import annotations

from scheduler.history import Kind
from scheduler.model import ManagedPod, SlotStatus, Task, TaskStatus
from scheduler.slots import SlotRef
from scheduler.variants.seed import SeedPolicy


class SeedHeadPolicy(SeedPolicy):
    name = "seed-head"

    def check_and_retry_pending_tasks(self) -> None:
        super().check_and_retry_pending_tasks()
        for task in self.active_tasks().values():
            if task.status is TaskStatus.APPLY_PENDING and task.confirmed:
                # No retry loop here: the monitor itself comes back in 10 s.
                no_loop = len(self.ctx.settings.retries.confirm_retry_sleeps_s)
                self.ctx.spawn(0.0, "execute_confirmed_apply", task.id, no_loop)

    def acquire(self, mutex: str) -> bool:
        """pg_try_advisory_lock: skip when held (no waiter is queued)."""
        if mutex in self.mem.mutex_held:
            return False
        self.mem.mutex_held.add(mutex)
        return True

    def resolve_agent_for_pod(self, ref: SlotRef) -> str:
        pod = self.mem.slots.pods[ref.pod]
        if not pod.agent_id:
            pod.agent_id = self.backfill_candidate(pod)  # backfill the pod manager
        return pod.agent_id

    def backfill_candidate(self, pod: ManagedPod) -> str:
        """The online agent row named after the pod, which the backfill would record."""
        for row in self.agent_rows().values():
            if row.pool_id != pod.pool_id:
                continue
            online = self.ctx.now - row.last_ping_at < self.ctx.settings.agents.offline_after_s
            if row.name == pod.name and online:
                return row.id
        return ""

    def slot_chooses_agent(self, pool_id: str) -> bool:
        """Yes, as soon as one pod of the pool has an agent id or would be backfilled with one."""
        return any(pod.agent_id or self.backfill_candidate(pod)
                   for pod in self.mem.slots.of_pool(pool_id))

    def after_status_report(self, task: Task) -> None:
        if task.status is TaskStatus.APPLY_PENDING:
            self.ctx.spawn(0.0, "reserve_task_slot", task.id)
        elif task.terminal:
            self.ctx.spawn(0.0, "release_task_slot", task.id, "task finished (status report)")
            self.ctx.spawn(0.0, "try_next", task.workspace_id)

    def on_completion_notice(self, e) -> None:
        self.ctx.spawn(0.0, "release_task_slot", e.task_id, "C&C task_completed")
        task = self.ctx.store.get_task(e.task_id)
        if task is not None:
            self.ctx.spawn(0.0, "try_next", task.workspace_id)

    def timer_reserve_task_slot(self, task_id: int) -> None:
        ref = self.mem.slots.find_by_task(task_id)
        if ref is None:
            self.ctx.record(Kind.DECISION, task=task_id, reason="cannot reserve: no slot holds the task")
            return
        slot = self.mem.slots.slot(ref)
        if slot is not None and slot.status is not SlotStatus.RESERVED:
            self.mem.slots.reserve(ref, task_id, self.ctx.now)
            self.ctx.record(Kind.SLOT_RESERVED, pod=ref.pod, slot=ref.slot, task=task_id,
                            reason="ReserveSlotForApplyPending")

    def timer_release_task_slot(self, task_id: int, why: str) -> None:
        ref = self.mem.slots.find_by_task(task_id)
        if ref is not None:
            self.release(ref, "ReleaseTaskSlot: " + why)
