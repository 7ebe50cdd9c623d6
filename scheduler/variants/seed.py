"""`seed`: the iac-platform scheduler as the incident found it (seed commit b5aefed).

Each method mirrors one Go function of shared/specs/seed-system.md and keeps its bugs:
retries are workspace-scoped timers that call TryExecuteNextTask, which returns nothing
while the workspace is locked and never returns apply_pending (§6 root cause); the monitor
scans only `pending`; slot reservations live in process memory and are changed only by the
5 s reconcile; agent reports are written without a transition guard (T14); a disconnect
fails running tasks but keeps the workspace lock (F8).

Goroutines are wake-ups (`ctx.spawn`). pushTaskToAgent runs in two steps, a read step and,
`seed.dispatch_latency_s` later, its Save + send, because the Go code does DB round trips in
between without a lock: that gap is where the F7 races live.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from scheduler import autoscaler, reports
from scheduler import events as ev
from scheduler.core import Context
from scheduler.history import Kind
from scheduler.model import (
    ACTIVE_STATUSES,
    RUN_TRIGGER_PREFIX,
    AgentRow,
    ExecutionMode,
    ManagedPod,
    PlanArtifact,
    Pool,
    SlotStatus,
    Stage,
    Task,
    TaskStatus,
    TaskType,
    Workspace,
)
from scheduler.ports import AgentSendError, ClusterError, RunTask, StoreWriteError
from scheduler.slots import PodSlots, SlotRef

SLOT_MEMORY_LOST = "slot memory lost with the scheduler process"


def held_slots(name: str, pod: ManagedPod) -> list[ev.HeldSlot]:
    """The slots of `pod` (named `name`) that hold a task, as the history says them."""
    return [ev.HeldSlot(name, s.slot_id, s.task_id, s.status.value)
            for s in pod.slots if s.status is not SlotStatus.IDLE]


@dataclass
class AgentConn:
    """A C&C connection as the server's `agents` map holds it (state up to 10 s stale)."""

    agent_id: str
    pool_id: str
    pod: str
    plan_running: int = 0
    plan_limit: int = 3
    apply_running: bool = False
    last_heartbeat: float = 0.0


@dataclass
class SeedMemory:
    slots: PodSlots
    cc: dict[str, AgentConn] = field(default_factory=dict)
    mutex_held: set[str] = field(default_factory=set)
    mutex_waiters: dict[str, list[str]] = field(default_factory=dict)
    unhealthy_restarts: dict[str, tuple[int, float]] = field(default_factory=dict)
    # Sleeping scheduleRetry goroutines, counted by (workspace, wake-up time): those that
    # wake at the same instant share one timer (see `timer_retry`).
    retry_goroutines: dict[tuple[str, float], int] = field(default_factory=dict)
    # Per pool, what AutoScalePods last counted when it decided to do nothing (see
    # `scale_inputs`): the same counts give the same decision, so it is not made again.
    steady_scale: dict[str, tuple] = field(default_factory=dict)
    # Per pool, the last decision AutoScalePods made outside the freeze window, as
    # (rule, current, desired): a repeated skipped scale-down is not recorded again.
    last_decision: dict[str, tuple] = field(default_factory=dict)
    # Per pool, the versions the last syncPodsFromK8s and syncTaskStatusToSlots passes left
    # behind at a fixed point: a pass over the same versions would change nothing.
    synced: dict[str, tuple] = field(default_factory=dict)
    slots_synced: dict[str, tuple] = field(default_factory=dict)
    # Per pool, the version the last cleanupExpiredReservations pass left and the oldest
    # reservation it left in place (see `cleanup_expired_reservations`).
    reservations_due: dict[str, tuple[int, float]] = field(default_factory=dict)
    # Per pool, what the last autoscaler cycle read when it did nothing at all (see
    # `cycle_inputs`), the instant until which its health check stays as it was, and
    # whether that check counted the agents (the pool had no work in hand).
    quiet_cycles: dict[str, tuple[tuple, float, bool]] = field(default_factory=dict)


@dataclass(frozen=True)
class PoolDemand:
    """The task counts AutoScalePods and the unhealthy-pod check read (seed-system.md §4)."""

    pending: int
    unblocked_pending_pa: int  # pending plan_and_apply with no older active task in its workspace
    unblocked_pending_any: int
    any_apply_pending: bool
    any_busy: bool  # a running or apply_pending task

    @classmethod
    def of(cls, tasks: list[Task]) -> PoolDemand:
        first: dict[str, int] = {}  # the oldest active task of each workspace
        for t in tasks:
            if t.id < first.get(t.workspace_id, t.id + 1):
                first[t.workspace_id] = t.id
        pending = [t for t in tasks if t.status is TaskStatus.PENDING]
        unblocked = [t for t in pending if t.id == first[t.workspace_id]]
        return cls(
            pending=len(pending),
            unblocked_pending_pa=sum(1 for t in unblocked if t.task_type is TaskType.PLAN_AND_APPLY),
            unblocked_pending_any=len(unblocked),
            any_apply_pending=any(t.status is TaskStatus.APPLY_PENDING for t in tasks),
            any_busy=any(t.status in (TaskStatus.RUNNING, TaskStatus.APPLY_PENDING) for t in tasks),
        )


@dataclass
class Push:
    """An in-flight pushTaskToAgent between its read step and its Save + send."""

    task: Task  # the stale in-memory object that will be saved whole
    before: TaskStatus
    ref: SlotRef | None
    agent_id: str
    action: str
    mutex: str | None


class SeedPolicy:
    name = "seed"
    # What the agent this scheduler ships with does on SIGTERM (a graceful pod delete). The
    # seed's agent exits at once: WaitForShutdown (backend/agent/control/cc_manager.go)
    # cancels the context every task runs under, closes the C&C socket and main returns, so
    # no report is sent and the server sees a disconnect (F8) the moment the delete starts.
    agent_on_sigterm = "exit"
    # Its HTTP client retries a report 3 times and drops it (seed-system.md §2.2; the
    # numbers are `reports.SEED_RETRIES` and its backoff).
    agent_reports = reports.RETRY_THEN_DROP
    # Its Terraform state lock has no lease: a newer apply takes it over (sim/agents.py).
    agent_state_lease_s: float | None = None
    # It runs whatever it is sent: a run_task that waited in a frozen agent's socket runs when
    # the agent wakes, however stale.
    agent_claims_runs = False

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.memory: SeedMemory | None = None
        # How many identical goroutines the TryExecuteNextTask call in progress stands for,
        # and how many of them its exit accounted for (see `timer_retry`).
        self._goroutines = 1
        self._goroutines_done = 1

    @property
    def mem(self) -> SeedMemory:
        if self.memory is None:
            raise RuntimeError(
                "the scheduler has not booted: send a Restart event first (it doubles as boot)"
            )
        return self.memory

    # ------------------------------------------------------------------ helpers
    def save(self, task: Task, before: TaskStatus | None, reason: str) -> bool:
        """GORM Save of the whole row. Returns False on a write failure (callers decide
        whether the Go code ignored it)."""
        try:
            self.ctx.store.save_task(task)
        except StoreWriteError as err:
            self.ctx.record(
                Kind.STORE_WRITE_FAILED, task=task.id, workspace=task.workspace_id,
                reason=str(err), data={"op": reason},
            )
            return False
        self.ctx.transition(before, task, reason)
        return True

    def release(self, ref: SlotRef | None, reason: str, goroutines: int = 1) -> None:
        if ref is None:
            return
        before = self.mem.slots.release(ref, self.ctx.now)
        if before is not None and (before.status is not SlotStatus.IDLE):
            data: dict = {"was": before.status.value}
            if goroutines > 1:
                data["goroutines"] = goroutines
            self.ctx.record(
                Kind.SLOT_RELEASED, pod=ref.pod, slot=ref.slot, task=before.task_id,
                reason=reason, data=data,
            )

    def pool_of(self, workspace_id: str) -> str | None:
        ws = self.workspace_rows().get(workspace_id)
        return ws.pool_id if ws is not None else None

    def k8s_pools(self) -> list[Pool]:
        """Read-only (see `Context.cached`)."""
        return self.ctx.cached(
            "k8s_pools", lambda: [p for p in self.ctx.store.list_pools() if p.pool_type == "k8s"],
            tables=("pools",))

    def lock_workspace(self, task: Task) -> None:
        """Executor: lock for apply at plan end. A failure is only a warning in the seed."""
        ws = self.ctx.store.get_workspace(task.workspace_id)
        if ws is None:
            return
        ws.is_locked, ws.locked_by, ws.locked_at = True, "system", self.ctx.now
        ws.lock_reason = f"Locked for apply (task #{task.id})"
        ws.lock_task_id = task.id
        try:
            self.ctx.store.save_workspace(ws)
        except StoreWriteError as err:
            self.ctx.record(Kind.STORE_WRITE_FAILED, workspace=ws.id, task=task.id,
                            reason=str(err), data={"op": "lock workspace"})
            return
        self.ctx.record(Kind.LOCK_ACQUIRED, workspace=ws.id, task=task.id,
                        reason=ws.lock_reason, data={"by": "system"})

    def unlock_workspace(self, workspace_id: str, reason: str, *, if_names_task: int | None = None) -> None:
        ws = self.ctx.store.get_workspace(workspace_id)
        if ws is None or not ws.is_locked:
            return
        if if_names_task is not None and f"#{if_names_task})" not in ws.lock_reason:
            return
        owner = ws.lock_task_id
        ws.is_locked, ws.locked_by, ws.lock_reason, ws.locked_at, ws.lock_task_id = (
            False, None, "", None, None,
        )
        try:
            self.ctx.store.save_workspace(ws)
        except StoreWriteError as err:
            self.ctx.record(Kind.STORE_WRITE_FAILED, workspace=ws.id, reason=str(err),
                            data={"op": "unlock workspace"})
            return
        self.ctx.record(Kind.LOCK_RELEASED, workspace=ws.id, task=owner, reason=reason)

    # ------------------------------------------------------------------ boot
    def on_restart(self, e: ev.Restart) -> None:
        self.forget_slots(e.held_slots)
        self.memory = SeedMemory(PodSlots(self.ctx.rng))
        self.ctx.record(Kind.SCHEDULER_RESTART, reason="scheduler process started")
        self.recover_pending_tasks()
        loops = self.ctx.settings.loops
        self.ctx.spawn(0.0, "ensure_pods_all")
        self.ctx.spawn(0.0, "agent_cleanup")
        self.ctx.spawn(loops.reconcile_period_s, "autoscaler_cycle")
        self.ctx.spawn(loops.monitor_period_s, "monitor")

    def forget_slots(self, logged: tuple[ev.HeldSlot, ...] = ()) -> None:
        """The slot memory dies with the process (F5). Say so for each slot it held: nothing
        else would, and a reader of the history (the checker's fault hits) would take the
        new process to hold them still, so a later kill of that pod would "hit" a task that
        lost its slot long before. A fresh process (a live restart) has no memory to read:
        the slots its predecessors held are the ones their history shows (`logged`)."""
        held = (logged if self.memory is None else
                [h for name, pod in sorted(self.memory.slots.pods.items()) for h in held_slots(name, pod)])
        self.record_lost(held, SLOT_MEMORY_LOST)

    def recover_pending_tasks(self) -> None:
        store = self.ctx.store
        for task in store.list_tasks(statuses=[TaskStatus.RUNNING]):
            before = task.status
            if task.stage == Stage.APPLY_PENDING:
                task.status = TaskStatus.APPLY_PENDING
                self.save(task, before, "reset to apply_pending by server restart")
            else:
                task.status = TaskStatus.FAILED
                task.error_message = "Task interrupted by server restart"
                task.completed_at = self.ctx.now
                self.save(task, before, "Task interrupted by server restart")
        # Run triggers' pending tasks are not safe to resume: cancelled (only status and
        # error_message are written; no unlock, no completed_at), each write's error ignored.
        resume: set[str] = set()
        for task in store.list_tasks(statuses=[TaskStatus.PENDING]):
            if not task.description.startswith(RUN_TRIGGER_PREFIX):
                resume.add(task.workspace_id)
                continue
            task.status = TaskStatus.CANCELLED
            task.error_message = ("Cancelled on server restart - Run Trigger tasks are "
                                  "not recovered for safety")
            self.save(task, TaskStatus.PENDING, task.error_message)
        # The workspaces with a pending task that is not a run trigger's (one whose cancel
        # failed above is skipped here; the monitor takes it up 10 s later).
        self.go_try_next_each(sorted(resume))
        # apply_pending tasks are only counted and logged, never resumed (task-500).

    # ------------------------------------------------------------------ user API
    def on_task_created(self, e: ev.TaskCreated) -> ev.Outcome:
        store = self.ctx.store
        ws = store.get_workspace(e.workspace_id)
        if ws is None:
            return ev.Outcome(False, 404, message=f"workspace {e.workspace_id} not found")
        if ws.is_locked:
            self.ctx.record(Kind.TASK_REJECTED, workspace=ws.id, reason="workspace is locked",
                            data={"status": 423})
            return ev.Outcome(False, 423, message="workspace is locked")
        try:
            task = self.ctx.insert_task(ws, e)
        except StoreWriteError as err:
            return ev.Outcome(False, 500, message=str(err))
        self.ctx.spawn(0.0, "try_next", ws.id)
        return ev.Outcome(True, 201, task_id=task.id)

    def on_confirm_apply(self, e: ev.ConfirmApply) -> ev.Outcome:
        task = self.ctx.store.get_task(e.task_id)
        if task is None:
            return ev.Outcome(False, 404, message=f"task {e.task_id} not found")
        if task.task_type is not TaskType.PLAN_AND_APPLY or task.status is not TaskStatus.APPLY_PENDING:
            self.ctx.record(Kind.CONFIRM_REJECTED, task=task.id, workspace=task.workspace_id,
                            reason=f"task is {task.status.value}", data={"status": 400})
            return ev.Outcome(False, 400, task_id=task.id, message=f"task is {task.status.value}")
        if e.user is not None:  # F6: without a user id the confirmer stays null, still 200
            task.apply_confirmed_by = e.user
            task.apply_confirmed_at = self.ctx.now
        task.apply_description = e.description
        task.stage = Stage.APPLY_PENDING
        if task.plan_task_id is None:
            task.plan_task_id = task.id
        if not self.save(task, task.status, "confirm apply"):
            return ev.Outcome(False, 500, task_id=task.id, message="failed to save confirmation")
        self.ctx.record(Kind.TASK_CONFIRMED, task=task.id, workspace=task.workspace_id,
                        data={"user": e.user, "digest": e.plan_digest})
        self.ctx.spawn(0.0, "execute_confirmed_apply", task.id, 0)
        return ev.Outcome(True, 200, task_id=task.id, message="Apply queued")

    def on_run_claimed(self, e: ev.RunClaimed) -> ev.Outcome:
        """The seed's agent claims nothing (it runs whatever it is sent); our agent, pointed
        at a seed service, is held to the same claim rule as under the reference."""
        return self.ctx.claim(e)

    def on_cancel(self, e: ev.CancelTask) -> ev.Outcome:
        task = self.ctx.store.get_task(e.task_id)
        if task is None:
            return ev.Outcome(False, 404, message=f"task {e.task_id} not found")
        if task.status not in ACTIVE_STATUSES:
            return ev.Outcome(False, 400, task_id=task.id, message=f"task is {task.status.value}")
        before = task.status
        if before is TaskStatus.RUNNING and task.agent_id:
            try:
                self.ctx.agents.send_cancel(task.agent_id, task.id)
            except AgentSendError:
                pass
        task.status = TaskStatus.CANCELLED
        task.completed_at = self.ctx.now
        if not self.save(task, before, "cancelled by user"):
            return ev.Outcome(False, 500, task_id=task.id, message="failed to save")
        self.ctx.record(Kind.TASK_CANCELLED, task=task.id, workspace=task.workspace_id,
                        data={"user": e.user})
        self.unlock_workspace(task.workspace_id, "task cancelled", if_names_task=task.id)
        self.ctx.spawn(0.0, "try_next", task.workspace_id)
        return ev.Outcome(True, 200, task_id=task.id)

    def timer_execute_confirmed_apply(self, task_id: int, attempt: int) -> None:
        """ExecuteConfirmedApply, wrapped in ConfirmApply's retry loop (errors only)."""
        if self.execute_confirmed_apply(task_id):
            return
        sleeps = self.ctx.settings.retries.confirm_retry_sleeps_s
        if attempt < len(sleeps):
            self.ctx.spawn(sleeps[attempt], "execute_confirmed_apply", task_id, attempt + 1)

    def execute_confirmed_apply(self, task_id: int) -> bool:
        task = self.ctx.store.get_task(task_id)
        if task is None or task.status is not TaskStatus.APPLY_PENDING:
            return False
        if not task.confirmed:
            self.ctx.record(Kind.DISPATCH_FAILED, task=task.id, workspace=task.workspace_id,
                            reason="apply not confirmed (apply_confirmed_by is null)",
                            data={"action": "apply", "retry": "confirm_loop"})
            return False
        ws = self.ctx.store.get_workspace(task.workspace_id)
        if ws is None:
            return False
        if ws.execution_mode is ExecutionMode.LOCAL:
            return False
        return self.push_task_to_agent(task, mutex=None)

    # ------------------------------------------------------------------ queue
    def get_next_executable_task(self, workspace_id: str) -> Task | None:
        """The task TryExecuteNextTask would run now, as a copy of its own (pushTaskToAgent
        mutates and saves it whole). The choice reads only the task and workspace rows, so
        it is made once per revision of those: the retries of a stuck day ask again and
        again in between, without writing either."""
        task = self.next_task_of(self.next_tasks(), workspace_id)
        return task.copy() if task is not None else None

    def next_tasks(self) -> dict[str, Task | None]:
        """GetNextExecutableTask's choice per workspace over the rows as stored now: one memo
        per revision of the task and workspace rows, empty at first and filled in by
        `next_task_of` as workspaces are asked about. A write starts a new one."""
        return self.ctx.cached("next_tasks", dict, tables=("tasks", "workspaces"))

    def next_task_of(self, memo: dict[str, Task | None], workspace_id: str) -> Task | None:
        """The workspace's choice, made once per memo. The task is shared: copy it before
        changing it (`get_next_executable_task` does)."""
        try:
            return memo[workspace_id]
        except KeyError:
            task = memo[workspace_id] = self._next_executable(workspace_id)
            return task

    def _next_executable(self, workspace_id: str) -> Task | None:
        """GetNextExecutableTask over the stored rows (read-only: see `Context.cached`)."""
        ws = self.workspace_rows().get(workspace_id)
        if ws is None or ws.is_locked:
            return None
        # Every rule below reads only pending / running / apply_pending rows.
        tasks = [t for t in self.active_tasks().values() if t.workspace_id == workspace_id]
        pending_pa = [t for t in tasks if t.status is TaskStatus.PENDING
                      and t.task_type is TaskType.PLAN_AND_APPLY]
        if pending_pa:
            first = min(pending_pa, key=lambda t: (t.created_at, t.id))
            blocked = any(
                t.task_type is TaskType.PLAN_AND_APPLY and t.id < first.id and t.status in ACTIVE_STATUSES
                for t in tasks
            )
            if not blocked:
                return first
        for ttype in (TaskType.PLAN, TaskType.DRIFT_CHECK):
            cands = [t for t in tasks if t.status is TaskStatus.PENDING and t.task_type is ttype]
            if cands:
                return min(cands, key=lambda t: (t.created_at, t.id))
        return None

    def timer_try_next(self, workspace_id: str) -> None:
        self.try_execute_next_task(workspace_id)

    def go_try_next_each(self, workspaces: list[str]) -> None:
        """`go TryExecuteNextTask(ws)` for each workspace, as the monitor and the startup
        recovery do. The goroutines would be queued back to back behind the caller, so
        nothing else could run between them: one wake-up runs them in turn, in the same order."""
        if workspaces:
            self.ctx.spawn(0.0, "try_next_each", tuple(workspaces))

    def timer_try_next_each(self, workspaces: tuple[str, ...]) -> None:
        """A workspace with nothing to run returns at once and writes nothing, so the rows
        stay as they were and one memo of choices serves until a call does run a task: the
        monitor of a day with many waiting workspaces asks about 26 of them every tick."""
        memo = self.next_tasks()
        for ws in workspaces:
            if self.next_task_of(memo, ws) is not None:
                self.try_execute_next_task(ws)
                memo = self.next_tasks()

    def timer_retry(self, workspace_id: str, at: float) -> None:
        """The scheduleRetry goroutines of this workspace that wake at this instant.

        The seed never ends a retry chain while the workspace cannot dispatch, and each
        monitor tick starts another, so a stuck day holds hundreds of goroutines per
        workspace, all waking at the same instants. They share one timer. The first runs
        where its timer was queued; the others run after everything else due at this
        instant (`timer_retry_rest`), so that they see whatever that changed: a slot the
        autoscaler freed in between is raced for, as the literal model races for it.
        """
        rest = self.mem.retry_goroutines.pop((workspace_id, at), 1) - 1
        self.try_execute_next_task(workspace_id)
        if rest:
            self.ctx.spawn(0.0, "retry_rest", workspace_id, rest)

    def timer_retry_rest(self, workspace_id: str, goroutines: int) -> None:
        """Run `goroutines` waiting goroutines one after another, nothing else between them.
        When one takes an exit that leaves nothing changed (`unchanged_goroutines`, or no
        task to run), every one still waiting would read the same rows and memory at the same instant
        and take the same exit, so that exit stands for all of them: one history row pair
        with `goroutines` = their number, and one timer for their next wake-up. Only the
        draws of Go's map order that those calls would have thrown away are not made."""
        left = goroutines
        try:
            while left > 0:
                self._goroutines, self._goroutines_done = left, 1
                self.try_execute_next_task(workspace_id)
                left -= self._goroutines_done
        finally:
            self._goroutines = self._goroutines_done = 1

    def try_execute_next_task(self, workspace_id: str) -> bool:
        task = self.get_next_executable_task(workspace_id)
        if task is None:
            self._goroutines_done = self._goroutines  # nothing written: every one ends here
            return True
        mutex = None
        if task.task_type is TaskType.PLAN_AND_APPLY:
            mutex = "ws_" + workspace_id
            if not self.acquire(mutex):
                return True  # blocked on the in-process mutex; re-run when released
            task = self.ctx.store.get_task(task.id)
            if task is None or task.status not in (TaskStatus.PENDING, TaskStatus.APPLY_PENDING):
                self.release_mutex(mutex)
                return True
        return self.push_task_to_agent(task, mutex=mutex)

    def acquire(self, mutex: str) -> bool:
        """The seed's blocking in-process sync.Mutex: a waiter re-runs when it is released."""
        if mutex in self.mem.mutex_held:
            self.mem.mutex_waiters.setdefault(mutex, []).append(mutex[3:])
            return False
        self.mem.mutex_held.add(mutex)
        return True

    def release_mutex(self, mutex: str | None) -> None:
        if mutex is None:
            return
        self.mem.mutex_held.discard(mutex)
        waiters = self.mem.mutex_waiters.pop(mutex, [])
        if waiters:
            self.ctx.spawn(0.0, "try_next", waiters[0])
            if len(waiters) > 1:
                self.mem.mutex_waiters[mutex] = waiters[1:]

    def schedule_retry(self, task: Task, delay: float, reason: str, ref: SlotRef | None = None,
                       goroutines: int = 1, action: str | None = None) -> None:
        """scheduleRetry(ws, d): a goroutine that later calls TryExecuteNextTask(ws), here
        for `goroutines` identical calls at once (see `timer_retry`). `action` is the
        dispatch's, when the task's status no longer tells it."""
        at = self.ctx.now + delay
        if action is None:
            action = "apply" if task.status is TaskStatus.APPLY_PENDING else "plan"
        self.ctx.record(
            Kind.DISPATCH_FAILED, task=task.id, workspace=task.workspace_id,
            pod=ref.pod if ref else None, slot=ref.slot if ref else None, reason=reason,
            data={"action": action,
                  "retry": "schedule_retry", "goroutines": goroutines},
        )
        self.ctx.record(Kind.RETRY_SCHEDULED, task=task.id, workspace=task.workspace_id,
                        reason=reason, data={"delay": delay, "at": at, "goroutines": goroutines})
        if not self.ctx.settings.seed.bundle_retry_goroutines:
            self.ctx.spawn(delay, "retry", task.workspace_id, at)  # a timer per goroutine
            return
        key = (task.workspace_id, at)
        sleeping = self.mem.retry_goroutines.get(key)
        self.mem.retry_goroutines[key] = (sleeping or 0) + goroutines
        if sleeping is None:
            self.ctx.spawn(delay, "retry", task.workspace_id, at)

    def unchanged_goroutines(self, mutex: str | None) -> int:
        """How many goroutines an exit that leaves nothing changed stands for: every identical
        one still waiting at this instant, unless releasing the mutex hands it to a queued
        waiter (a write the next goroutine would see)."""
        n = 1 if mutex is not None and self.mem.mutex_waiters.get(mutex) else self._goroutines
        self._goroutines_done = n
        return n

    def retry_unchanged(self, task: Task, delay: float, reason: str, mutex: str | None) -> None:
        """A scheduleRetry exit taken before the call wrote anything."""
        self.schedule_retry(task, delay, reason, goroutines=self.unchanged_goroutines(mutex))
        self.release_mutex(mutex)

    # ------------------------------------------------------------------ pushTaskToAgent
    def on_reservation_miss(self, task: Task, mutex: str | None) -> bool | None:
        """Hook: the reserved slot of an apply_pending task is gone. Return None to fall
        through to a new slot (the seed), or a push result to stop here."""
        if not self.ctx.settings.seed.doc_variant_reset:
            return None
        # F4, the task-601 doc variant: reset to pending, Save error ignored, retrigger.
        before = task.status
        task.status, task.stage, task.agent_id, task.started_at = (
            TaskStatus.PENDING, Stage.PENDING, None, None,
        )
        self.save(task, before, "reserved pod deleted: reset to pending (doc variant)")
        self.release_mutex(mutex)
        self.ctx.spawn(0.0, "try_next", task.workspace_id)
        return True

    def record_assigned(self, ref: SlotRef | None, task: Task, goroutines: int = 1) -> None:
        """The row of AssignTaskToSlot, written when the push knows how many goroutines it
        stands for (nothing is recorded between the assignment and that point)."""
        if ref is None:
            return
        data: dict = {"type": task.task_type.value}
        if goroutines > 1:
            data["goroutines"] = goroutines
        self.ctx.record(Kind.SLOT_ASSIGNED, pod=ref.pod, slot=ref.slot, task=task.id, data=data)

    def slot_chooses_agent(self, pool_id: str) -> bool:
        """Could the slot a push takes in this pool choose its agent (step 3's pod.AgentID)?
        Never in the seed (F10): which free slot a goroutine takes then cannot change where
        it ends."""
        return False

    def resolve_agent_for_pod(self, ref: SlotRef) -> str:
        """Step 3's pod.AgentID: always empty in the seed (F10)."""
        return self.mem.slots.pods[ref.pod].agent_id

    def fresh_slot_unchanged(self, assigned: SlotRef | None, ws: Workspace) -> bool:
        """Does a push that ends here, having given back what it took, leave nothing another
        goroutine reads? Yes when it took a fresh slot (or none, outside k8s): the slot is
        idle again and an idle slot's time is never read. Not when it gave back a
        reservation, nor where the slot it took could have chosen its agent (which free slot
        a goroutine takes is Go's map order, and the goroutines would differ there)."""
        return ((assigned is not None or ws.execution_mode is not ExecutionMode.K8S)
                and not self.slot_chooses_agent(ws.pool_id))

    def push_task_to_agent(self, task: Task, *, mutex: str | None) -> bool:
        """Steps 0–7 (read step). Returns False only for the step-0 error."""
        ctx, mem = self.ctx, self.mem
        apply = task.status is TaskStatus.APPLY_PENDING
        if apply and not task.confirmed:
            self.release_mutex(mutex)
            return False
        ws = self.workspace_rows().get(task.workspace_id)
        if ws is None or ws.pool_id is None:
            self.retry_unchanged(task, ctx.settings.retries.no_pool_s, "workspace has no pool", mutex)
            return True
        pool_id = ws.pool_id
        ref: SlotRef | None = None
        assigned = None  # a slot this call took: its row is written with the exit's count
        selected_agent = ""
        if ws.execution_mode is ExecutionMode.K8S:
            if apply:
                ref = mem.slots.find_by_task(task.id)
                if ref is None:
                    stop = self.on_reservation_miss(task, mutex)
                    if stop is not None:
                        return stop
            if ref is None:
                ref = mem.slots.find_pod_with_free_slot(
                    pool_id, task.task_type, ctx.now, ctx.settings.slots.pod_offline_after_s
                )
                if ref is None:
                    self.retry_unchanged(task, ctx.settings.retries.no_free_slot_s, "no free slot",
                                         mutex)
                    return True
                if not mem.slots.assign(ref, task.id, task.task_type, ctx.now):
                    self.schedule_retry(task, ctx.settings.retries.assign_failure_s,
                                        "assign slot failed", ref)
                    self.release_mutex(mutex)
                    return True
                assigned = ref
            selected_agent = self.resolve_agent_for_pod(ref)
        # Step 4: connected agents.
        if not mem.cc:
            # Every goroutine still waiting would take the same exit, as below; each one's
            # `go triggerK8sScaleUpForPool` would be queued right behind the last, so one
            # timer runs them in turn (`timer_scale_up`).
            n = self.unchanged_goroutines(mutex) if self.fresh_slot_unchanged(assigned, ws) else 1
            self.record_assigned(assigned, task, n)
            self.release(ref, "no connected agents", n)
            if ws.execution_mode is ExecutionMode.K8S:
                ctx.spawn(0.0, "scale_up", pool_id, n)
            self.schedule_retry(task, ctx.settings.retries.no_connected_agents_s,
                                "no connected agents", ref, goroutines=n)
            self.release_mutex(mutex)
            return True
        # Step 5: a pre-selected agent that is not connected.
        if selected_agent and selected_agent not in mem.cc:
            self.record_assigned(assigned, task)
            assigned = None
            self.release(ref, "pre-selected agent not connected")
            ref, selected_agent = None, ""
        # Step 6: generic search in random map order.
        agent_id = selected_agent if selected_agent in mem.cc else ""
        if not agent_id:
            conns = [c for _, c in sorted(mem.cc.items())]
            ctx.rng.shuffle(conns)
            for conn in conns:
                row = self.agent_rows().get(conn.agent_id)
                if row is None or row.pool_id != pool_id:
                    continue
                if self.agent_available(conn, task.task_type):
                    agent_id = conn.agent_id
                    break
        if not agent_id:
            n = self.unchanged_goroutines(mutex) if self.fresh_slot_unchanged(assigned, ws) else 1
            self.record_assigned(assigned, task, n)
            self.release(ref, "no available agent", n)
            self.schedule_retry(task, ctx.settings.retries.no_available_agent_s,
                                "no available agent in pool", ref, goroutines=n)
            self.release_mutex(mutex)
            return True
        self.record_assigned(assigned, task)
        # Step 7: mutate the in-memory object.
        before = task.status
        action = "apply" if apply else "plan"
        task.status = TaskStatus.RUNNING
        task.started_at = ctx.now
        task.agent_id = agent_id
        task.stage = Stage.APPLYING if apply else Stage.PLANNING
        if apply:
            task.plan_task_id = task.id
        push = Push(task, before, ref, agent_id, action, mutex)
        ctx.spawn(ctx.settings.seed.dispatch_latency_s, "push_commit", push)
        return True

    def timer_push_commit(self, push: Push) -> None:
        """Steps 8–10: full-row Save of the stale object, then the send."""
        ctx = self.ctx
        task, ref = push.task, push.ref
        try:
            try:
                ctx.store.save_task(task)
            except StoreWriteError as err:
                ctx.record(Kind.STORE_WRITE_FAILED, task=task.id, workspace=task.workspace_id,
                           reason=str(err), data={"op": "save running"})
                self.release(ref, "save failed")
                # Only the retry count changes: the object still says running, with the
                # agent and stage of step 7, and this Save writes it whole. If it goes
                # through, the task is `running` on an agent that was never sent it (F3).
                task.retry_count += 1
                self.save(task, push.before, "retry count after save failure")
                self.schedule_retry(task, ctx.settings.retries.backoff(task.retry_count),
                                    "DB save failed", ref, action=push.action)
                return
            ctx.transition(push.before, task, f"dispatch {push.action}")
            run = RunTask(task.id, task.workspace_id, push.action, fence=task.fence,
                          plan_digest=task.plan_digest, pod=ref.pod if ref else None,
                          slot=ref.slot if ref else None, task_type=task.task_type)
            try:
                ctx.agents.send_run_task(push.agent_id, run)
            except AgentSendError as err:
                self.release(ref, "send failed")
                task.status = push.before  # pending, or apply_pending for an apply
                task.stage = Stage.ROLLED_BACK
                task.started_at, task.agent_id = None, None
                self.save(task, TaskStatus.RUNNING, f"send failed: {err}")
                task.retry_count += 1
                self.save(task, task.status, "retry count after send failure")
                self.schedule_retry(task, ctx.settings.retries.backoff(task.retry_count),
                                    f"send failed: {err}", ref)
                return
            ctx.record(Kind.DISPATCH, task=task.id, workspace=task.workspace_id,
                       pod=ref.pod if ref else None, slot=ref.slot if ref else None,
                       agent=push.agent_id, data={"action": push.action, "fence": task.fence})
            if task.retry_count > 0:
                task.retry_count = 0
                self.save(task, task.status, "reset retry count")
        finally:
            self.release_mutex(push.mutex)

    @staticmethod
    def agent_available(conn: AgentConn, task_type: TaskType) -> bool:
        if task_type in (TaskType.PLAN, TaskType.DRIFT_CHECK):
            return conn.plan_running < conn.plan_limit
        if task_type is TaskType.PLAN_AND_APPLY:
            return not conn.apply_running
        return False

    # ------------------------------------------------------------------ agent reports
    def reported_task(self, task_id: int, agent_id: str, fence: int) -> Task | ev.Outcome:
        """T14: the seed writes whatever the agent reports; no transition guard, no fence."""
        task = self.ctx.store.get_task(task_id)
        if task is None:
            return ev.Outcome(False, 404, message=f"task {task_id} not found")
        return task

    def on_plan_finished(self, e: ev.PlanFinished) -> ev.Outcome:
        task = self.reported_task(e.task_id, e.agent_id, e.fence)
        if isinstance(task, ev.Outcome):
            return task
        before = task.status
        task.completed_at = self.ctx.now
        task.plan_digest = e.digest
        task.has_changes = e.has_changes
        try:
            self.ctx.store.put_plan(PlanArtifact(task.id, e.digest, self.ctx.now, task.workspace_id))
        except StoreWriteError as err:
            self.ctx.record(Kind.STORE_WRITE_FAILED, task=task.id, workspace=task.workspace_id,
                            reason=str(err), data={"op": "upload plan"})
            return ev.Outcome(False, 500, task_id=task.id, message="plan upload failed")
        if task.task_type is TaskType.PLAN_AND_APPLY and e.has_changes:
            self.lock_workspace(task)
            task.status, task.stage, task.plan_task_id = (
                TaskStatus.APPLY_PENDING, Stage.APPLY_PENDING, task.id,
            )
        elif task.task_type is TaskType.PLAN_AND_APPLY:
            task.status, task.stage = TaskStatus.PLANNED_AND_FINISHED, Stage.PLANNED_AND_FINISHED
        else:
            task.status, task.stage = TaskStatus.SUCCESS, Stage.COMPLETED
        if not self.save(task, before, "plan finished" + (" with changes" if e.has_changes else "")):
            return ev.Outcome(False, 500, task_id=task.id, message="status update failed")
        self.after_status_report(task)
        return ev.Outcome(True, 200, task_id=task.id)

    def on_apply_finished(self, e: ev.ApplyFinished) -> ev.Outcome:
        task = self.reported_task(e.task_id, e.agent_id, e.fence)
        if isinstance(task, ev.Outcome):
            return task
        before = task.status
        task.completed_at = self.ctx.now
        if e.ok:
            task.status, task.stage = TaskStatus.APPLIED, Stage.APPLIED
        else:
            task.status, task.error_message = TaskStatus.FAILED, e.error or "apply failed"
        if not self.save(task, before, "apply finished" if e.ok else "apply failed"):
            return ev.Outcome(False, 500, task_id=task.id, message="status update failed")
        self.unlock_workspace(task.workspace_id, "apply finished" if e.ok else "apply failed")
        self.after_status_report(task)
        return ev.Outcome(True, 200, task_id=task.id)

    def on_task_failed(self, e: ev.TaskFailed) -> ev.Outcome:
        task = self.reported_task(e.task_id, e.agent_id, e.fence)
        if isinstance(task, ev.Outcome):
            return task
        before = task.status
        was_apply = task.stage == Stage.APPLYING
        task.status, task.error_message, task.completed_at = TaskStatus.FAILED, e.reason, self.ctx.now
        if not self.save(task, before, e.reason):
            return ev.Outcome(False, 500, task_id=task.id, message="status update failed")
        if was_apply:
            self.unlock_workspace(task.workspace_id, "apply failed")
        self.after_status_report(task)
        return ev.Outcome(True, 200, task_id=task.id)

    def after_status_report(self, task: Task) -> None:
        """Hook after an agent's HTTP status report was written. The seed does nothing
        (slot bookkeeping is left to the reconcile; no retrigger)."""

    def on_completion_notice(self, e: ev.CompletionNotice) -> None:
        """C&C task_completed / task_failed: notifications only, in the seed."""

    # ------------------------------------------------------------------ cluster events
    def on_pod_added(self, e: ev.PodAdded) -> None:
        """The seed polls; it has no watch."""

    def on_pod_terminating(self, e: ev.PodTerminating) -> None:
        """The seed polls; it has no watch."""

    def on_pod_removed(self, e: ev.PodRemoved) -> None:
        """The seed polls; it has no watch."""

    # ------------------------------------------------------------------ agents (C&C)
    def on_agent_connected(self, e: ev.AgentConnected) -> ev.Outcome:
        if not e.token_ok:
            return ev.Outcome(False, 401, message="invalid pool token")
        row = AgentRow(e.agent_id, e.pool_id, e.pod, "online", self.ctx.now)
        try:
            self.ctx.store.put_agent(row)  # registration, then the C&C connect
        except StoreWriteError as err:
            return ev.Outcome(False, 500, message=str(err))
        conn = AgentConn(
            e.agent_id, e.pool_id, e.pod, plan_limit=self.ctx.settings.agents.plan_limit,
            last_heartbeat=self.ctx.now,
        )
        self.mem.cc[e.agent_id] = conn
        # The row may have moved here from another pool, whose count of online agents it
        # no longer adds to: no pool's idle cycle is skipped on its last count.
        for pool_id in [p for p, (_, _, counted) in self.mem.quiet_cycles.items() if counted]:
            del self.mem.quiet_cycles[pool_id]
        self.ctx.record(Kind.AGENT_CONNECTED, agent=e.agent_id, pod=e.pod, data={"pool": e.pool_id})
        self.ctx.spawn(self.ctx.settings.loops.health_period_s, "health", conn)
        return ev.Outcome(True, 200)

    def on_agent_heartbeat(self, e: ev.AgentHeartbeat) -> ev.Outcome:
        conn = self.mem.cc.get(e.agent_id)
        if conn is None:
            return ev.Outcome(False, 404, message="agent not connected")
        conn.plan_running, conn.plan_limit, conn.apply_running = (
            e.plan_running, e.plan_limit, e.apply_running,
        )
        conn.last_heartbeat = self.ctx.now
        try:
            self.ctx.store.ping_agent(e.agent_id, "online", self.ctx.now)
        except StoreWriteError:
            pass
        return ev.OK

    def on_agent_disconnected(self, e: ev.AgentDisconnected) -> None:
        self.disconnect(e.agent_id, "disconnected")

    def disconnect(self, agent_id: str, why: str) -> None:
        conn = self.mem.cc.pop(agent_id, None)
        if conn is None:
            return
        self.ctx.record(Kind.AGENT_DISCONNECTED, agent=agent_id, pod=conn.pod, reason=why,
                        data={"pool": conn.pool_id})
        self.cleanup_agent_tasks(agent_id)
        # The Go code also stamps last_ping_at, which the unhealthy-pod check and the
        # agent cleanup read: the row counts as online for 2 more minutes.
        try:
            self.ctx.store.ping_agent(agent_id, "offline", self.ctx.now)
        except StoreWriteError:
            pass

    def cleanup_agent_tasks(self, agent_id: str) -> None:
        """Running tasks of the agent become failed. F8: no unlock, no slot release."""
        for task in self.ctx.store.list_tasks(statuses=[TaskStatus.RUNNING]):
            if task.agent_id != agent_id:
                continue
            task.status = TaskStatus.FAILED
            task.error_message = f"Agent {agent_id} disconnected unexpectedly"
            task.completed_at = self.ctx.now
            self.save(task, TaskStatus.RUNNING, task.error_message)

    def timer_health(self, conn: AgentConn) -> None:
        """monitorHealth: each connection's own 30 s ticker, started when it connects and
        stopped with it (a closed or replaced connection's wake-up does nothing)."""
        if self.mem.cc.get(conn.agent_id) is not conn:
            return
        if self.ctx.now - conn.last_heartbeat > self.ctx.settings.agents.heartbeat_timeout_s:
            self.disconnect(conn.agent_id, "no heartbeat for 120 s")
            return
        self.ctx.spawn(self.ctx.settings.loops.health_period_s, "health", conn)

    def timer_agent_cleanup(self) -> None:
        a = self.ctx.settings.agents
        for row in self.ctx.store.list_agents():
            age = self.ctx.now - row.last_ping_at
            if age > a.delete_after_s:
                self.ctx.store.delete_agent(row.id)
            elif age > a.offline_after_s and row.status != "offline":
                row.status = "offline"
                try:
                    self.ctx.store.put_agent(row)
                except StoreWriteError:
                    pass
        self.ctx.spawn(self.ctx.settings.loops.agent_cleanup_period_s, "agent_cleanup")

    # ------------------------------------------------------------------ monitor
    def timer_monitor(self) -> None:
        self.check_and_retry_pending_tasks()
        self.ctx.spawn(self.ctx.settings.loops.monitor_period_s, "monitor")

    def check_and_retry_pending_tasks(self) -> None:
        self.go_try_next_each(self.monitor_workspaces())

    def monitor_workspaces(self) -> list[str]:
        """The seed scans only `pending`."""
        return self.workspaces_with(TaskStatus.PENDING)

    def workspaces_with(self, *statuses: TaskStatus) -> list[str]:
        """The workspaces that have a task in one of `statuses` (all active), sorted."""
        return sorted({t.workspace_id for t in self.active_tasks().values() if t.status in statuses})

    # ------------------------------------------------------------------ pods and autoscaler
    def reconcile_pods(self, pool_id: str) -> tuple | None:
        """syncPodsFromK8s, syncTaskStatusToSlots, cleanupExpiredReservations. Returns what
        the pass read (`reconcile_inputs`) when it left the pool at a fixed point: a second
        pass over the same inputs would change nothing. It does unless the listing failed or
        showed a Failed or Succeeded pod, whose deletion is retried (and recorded) each pass.
        A failed listing ends the pass there, as ReconcilePods returns SyncPodsFromK8s's
        error: no slot sync and no reservation expiry until the cluster answers again."""
        fixed = self.sync_pods_from_k8s(pool_id)
        if fixed is None:
            return None
        self.sync_task_status_to_slots(pool_id)
        self.cleanup_expired_reservations(pool_id)
        return self.reconcile_inputs(pool_id) if fixed else None

    def reconcile_inputs(self, pool_id: str) -> tuple | None:
        """What a whole reconcile pass reads: `now`, the pods and slots, the cluster and the
        task and workspace rows (see `versions`)."""
        v = self.versions(pool_id, cluster=True, rows=True)
        return None if v is None else (self.ctx.now, *v)

    def versions(self, pool_id: str, *, cluster: bool = False, rows: bool = False) -> tuple | None:
        """The version of the pool's pods and slots, with its cluster listing's and the task
        and workspace rows' when asked: what a pass over a pool reads besides the clock. A
        pass that changed nothing would change nothing again over the same versions, so the
        passes below skip it. Per pool, because every pass reads and writes one pool's pods
        only: another pool's churn (a Deployment whose ReplicaSet replaces each pod the seed
        deletes) leaves this pool's passes skipped. A cluster without per-pool revisions is
        read with its global one. None where a source has no version (the live cluster, the
        SQL stores): those passes always run."""
        ctx = self.ctx
        slots = self.mem.slots.version_of(pool_id)
        if not cluster:
            if not rows:
                return (slots,)
            if not ctx.versioned_tables:
                return None
            return (slots, ctx.store.revision_of("tasks", "workspaces"))
        revision_of = getattr(ctx.cluster, "revision_of", None)
        listing = revision_of(pool_id) if revision_of is not None else getattr(ctx.cluster, "revision", None)
        if listing is None:
            return None
        if not rows:
            return (slots, listing)
        if not ctx.versioned_tables:
            return None
        return (slots, listing, ctx.store.revision_of("tasks", "workspaces"))

    def sync_pods_from_k8s(self, pool_id: str) -> bool | None:
        """SyncPodsFromK8s. True when it left the pool's pods at a fixed point, False when a
        Failed or Succeeded pod's deletion is due again next pass, None when the listing
        failed."""
        ctx, slots = self.ctx, self.mem.slots
        inputs = self.pod_sync_inputs(pool_id)
        if inputs is not None and self.mem.synced.get(pool_id) == inputs:
            self.stamp_pods(pool_id)  # the same listing over the same pod map: nothing else
            return True
        try:
            listed = ctx.cluster.list_pods(pool_id)
        except ClusterError:
            return None
        seen = set()
        fixed = True
        for info in listed:
            if info.phase in ("Failed", "Succeeded"):
                fixed = False
                if info.name in slots.pods:
                    self.drop_pod(info.name, f"pod {info.phase}")
                try:
                    ctx.cluster.delete_pod(info.name)
                    ctx.record(Kind.POD_DELETE, pod=info.name, reason=f"pod {info.phase}",
                               data={"pool": pool_id, "cause": "sync"})
                except ClusterError:
                    pass
                continue
            seen.add(info.name)
            pod = slots.pods.get(info.name)
            if pod is None:
                pod = slots.add(info.name, pool_id, ctx.now)
            pod.last_heartbeat = ctx.now
        for pod in slots.of_pool(pool_id):
            if pod.name not in seen:
                self.drop_pod(pod.name, "pod no longer listed")
        if fixed and inputs is not None:
            self.mem.synced[pool_id] = self.pod_sync_inputs(pool_id)
        return fixed

    def stamp_pods(self, pool_id: str) -> None:
        """What a pod sync over an unchanged listing writes: every pod's LastHeartbeat is now
        (so the 2-minute offline check never fires: seed-system.md §3.4)."""
        now = self.ctx.now
        for pod in self.mem.slots.of_pool(pool_id):
            pod.last_heartbeat = now

    def pod_sync_inputs(self, pool_id: str) -> tuple | None:
        """What syncPodsFromK8s reads besides `now`: the cluster's listing and the pod map."""
        return self.versions(pool_id, cluster=True)

    def drop_pod(self, name: str, reason: str) -> None:
        pod = self.mem.slots.remove(name)
        if pod is not None:
            self.record_held_slots_lost(name, pod, reason + " (slot dropped with its pod)")

    def record_held_slots_lost(self, name: str, pod: ManagedPod, reason: str) -> None:
        """One `slot.released` per slot of `pod` that held a task, which the memory lost."""
        self.record_lost(held_slots(name, pod), reason)

    def record_lost(self, held: Iterable[ev.HeldSlot], reason: str) -> None:
        for h in held:
            self.ctx.record(Kind.SLOT_RELEASED, pod=h.pod, slot=h.slot, task=h.task,
                            reason=reason, data={"was": h.was})

    def sync_task_status_to_slots(self, pool_id: str) -> None:
        ctx = self.ctx
        inputs = self.slot_sync_inputs(pool_id)
        if inputs is not None and self.mem.slots_synced.get(pool_id) == inputs:
            return  # the last pass changed nothing, and nothing it reads has moved since
        active_tasks = self.active_tasks()
        for pod in self.mem.slots.of_pool(pool_id):
            for s in pod.slots:
                if s.task_id is None:
                    continue
                task = active_tasks.get(s.task_id)  # None: gone or terminal
                # The Go query joins the task to its workspace's current pool: a task whose
                # workspace has moved to another pool is not listed, so its slot here is freed.
                active = (task is not None and task.agent_id
                          and task.status in (TaskStatus.RUNNING, TaskStatus.APPLY_PENDING)
                          and self.pool_of(task.workspace_id) == pool_id)
                if active and task.status is TaskStatus.APPLY_PENDING and s.status is SlotStatus.RUNNING:
                    self.mem.slots.reserve(SlotRef(pod.name, s.slot_id), task.id, ctx.now)
                    ctx.record(Kind.SLOT_RESERVED, pod=pod.name, slot=s.slot_id, task=task.id,
                               reason="reconcile: task is apply_pending")
                elif not active:
                    self.release(SlotRef(pod.name, s.slot_id), "reconcile: task not active")
        if inputs is not None and self.slot_sync_inputs(pool_id) == inputs:
            self.mem.slots_synced[pool_id] = inputs

    def slot_sync_inputs(self, pool_id: str) -> tuple | None:
        """What syncTaskStatusToSlots reads: the slots and the task and workspace rows (no
        clock; the time it writes goes with a change)."""
        return self.versions(pool_id, rows=True)

    def cleanup_expired_reservations(self, pool_id: str) -> None:
        """Release the reservations older than the expiry. The pass remembers the oldest one
        it left in place with the pool's version: until the slots move, nothing can expire
        before that one does, and the pass is skipped."""
        if not self.reservation_may_expire(pool_id):
            return
        now, limit = self.ctx.now, self.ctx.settings.slots.reservation_expiry_s
        slots, due = self.mem.slots, self.mem.reservations_due
        reserved, oldest = SlotStatus.RESERVED, math.inf
        for pod in slots.of_pool(pool_id):
            for s in pod.slots:
                if s.status is reserved:
                    if now - s.updated_at > limit:
                        self.release(SlotRef(pod.name, s.slot_id), "reservation expired (24 h)")
                    elif s.updated_at < oldest:
                        oldest = s.updated_at
        due[pool_id] = (slots.version_of(pool_id), oldest)

    def reservation_may_expire(self, pool_id: str) -> bool:
        """Whether a reservation of the pool may have expired since the last scan: the slots
        have moved, or the oldest one the scan left in place has come of age."""
        seen = self.mem.reservations_due.get(pool_id)
        return (seen is None or seen[0] != self.mem.slots.version_of(pool_id)
                or self.ctx.now - seen[1] > self.ctx.settings.slots.reservation_expiry_s)

    def timer_autoscaler_cycle(self) -> None:
        quiet = self.mem.quiet_cycles
        for pool in self.k8s_pools():
            inputs = self.cycle_inputs(pool)
            last = quiet.get(pool.id)
            if inputs is not None and last is not None and last[0] == inputs and self.stays_quiet(pool, *last[1:]):
                self.stamp_pods(pool.id)  # all the cycle would have written
                continue
            recorded = self.ctx.recorded
            fixed = self.reconcile_pods(pool.id)
            restarted, calm = self.check_and_restart_unhealthy_pods(pool)
            # AutoScalePods reconciles again; skipped when the first pass left a fixed point
            # and nothing it reads has moved since (the same histories, only faster). Only a
            # pod deleted by the health check can have moved it.
            self.auto_scale_pods(pool, reconciled=fixed is not None and (
                not restarted or fixed == self.reconcile_inputs(pool.id)))
            if (inputs is not None and fixed is not None and self.ctx.recorded == recorded
                    and calm is not None and self.cycle_inputs(pool) == inputs
                    and not self.in_freeze(pool)):
                # The rows are as the check read them: busy then if busy now.
                quiet[pool.id] = (inputs, calm, not self.pool_demand(pool.id).any_busy)
            else:
                quiet.pop(pool.id, None)
        self.ctx.spawn(self.ctx.settings.loops.reconcile_period_s, "autoscaler_cycle")

    def cycle_inputs(self, pool: Pool) -> tuple | None:
        """What a whole autoscaler cycle over `pool` reads besides the clock: its pods and
        slots, its listing, the task and workspace rows and the pool rows.

        A cycle that recorded nothing, moved none of these and left the pod sync at a fixed
        point (`reconcile_pods`), outside the pool's freeze window, did nothing: each step
        took its own skip, and the health check either returned before it read the agents
        (the pool had a running or apply_pending task) or found as many agents online as
        Running pods. The next cycle over the same inputs does the same nothing, unless the
        clock alone changes a step: a freeze window opens, a reservation comes due, or an
        agent may have gone offline (`stays_quiet`). So it is skipped whole: on a day, most
        cycles of a pool."""
        v = self.versions(pool.id, cluster=True, rows=True)
        return None if v is None else (*v, self.ctx.store.revision_of("pools"))

    def stays_quiet(self, pool: Pool, calm_until: float, counted_agents: bool) -> bool:
        """Whether the clock alone leaves a quiet cycle's steps where they were: outside the
        freeze window, with no reservation due (`cleanup_expired_reservations`'s own skip)
        and before `calm_until`; and, where the health check counted the agents, with no
        restart record to clear (the check that finds its pool healthy clears every pool's,
        even a pool with no Running pod, whose calm never ends)."""
        if self.ctx.now >= calm_until or (counted_agents and self.mem.unhealthy_restarts):
            return False
        return not self.reservation_may_expire(pool.id) and not self.in_freeze(pool)

    def timer_ensure_pods_all(self) -> None:
        for pool in self.k8s_pools():
            self.ensure_pods_for_pool(pool)

    def timer_scale_up(self, pool_id: str, goroutines: int = 1) -> None:
        """triggerK8sScaleUpForPool: EnsurePodsForPool, then AutoScalePods; `goroutines` of
        them back to back, as a bundle of retry goroutines queues them (`push_task_to_agent`)."""
        for _ in range(goroutines):
            pool = self.ctx.store.get_pool(pool_id)
            if pool is None:
                return
            self.ensure_pods_for_pool(pool)
            self.auto_scale_pods(pool)

    def ensure_pods_for_pool(self, pool: Pool) -> None:
        self.reconcile_pods(pool.id)
        missing = pool.min_replicas - len(self.mem.slots.of_pool(pool.id))
        if missing > 0:
            self.create_pods(pool.id, missing, "ensure min_replicas")

    def in_freeze(self, pool: Pool) -> bool:
        if pool.one_time_unfreeze_until is not None and pool.one_time_unfreeze_until > self.ctx.now:
            return False
        if not pool.freeze_windows:
            return False
        sod = (self.ctx.settings.seed.clock_origin_s + self.ctx.now) % 86400.0
        return any(w.contains(sod) for w in pool.freeze_windows)

    def workspace_rows(self) -> dict[str, Workspace]:
        """The workspace rows by id, as stored now. Read-only (see `Context.cached`)."""
        return self.ctx.cached("workspace_rows",
                               lambda: {w.id: w for w in self.ctx.store.list_workspaces()},
                               tables=("workspaces",))

    def agent_rows(self) -> dict[str, AgentRow]:
        """The agent rows by id, as stored now. Read-only (see `Context.cached`): the pushes
        of one instant share one read."""
        return self.ctx.cached("agent_rows", lambda: {a.id: a for a in self.ctx.store.list_agents()},
                               tables=("agents",))

    def active_tasks(self) -> dict[int, Task]:
        """The pending, running and apply_pending tasks by id, as stored now. Read-only: the
        pod manager and the autoscaler only look, so one read serves until a task is written."""
        return self.ctx.cached(
            "active_tasks", lambda: {t.id: t for t in self.ctx.store.list_tasks(statuses=ACTIVE_STATUSES)},
            tables=("tasks",))

    def pool_tasks(self, pool_id: str) -> list[Task]:
        """Active tasks of the pool's k8s workspaces (the Go code joins tasks to workspaces).
        Read-only, like `active_tasks`."""
        return self.ctx.cached(("pool_tasks", pool_id), lambda: self._pool_tasks(pool_id),
                               tables=("tasks", "workspaces"))

    def _pool_tasks(self, pool_id: str) -> list[Task]:
        rows = self.workspace_rows()
        return [t for t in self.active_tasks().values()
                if (ws := rows.get(t.workspace_id)) is not None
                and ws.pool_id == pool_id and ws.execution_mode is ExecutionMode.K8S]

    def auto_scale_pods(self, pool: Pool, *, reconciled: bool = False) -> None:
        ctx, slots = self.ctx, self.mem.slots
        if not reconciled:
            self.reconcile_pods(pool.id)
        if self.in_freeze(pool):
            # A freeze pass breaks a run of decisions (see `last_decision`).
            self.mem.steady_scale.pop(pool.id, None)
            self.mem.last_decision.pop(pool.id, None)
            pods = slots.of_pool(pool.id)
            if not pods:
                return
            for pod in slots.idle_pods(pool.id):
                self.delete_pod(pod.name, "freeze window: delete idle pod", scale_down=True)
            return
        mem = self.mem
        inputs = self.scale_inputs(pool)
        if inputs is not None and mem.steady_scale.get(pool.id) == inputs:
            return
        demand = self.pool_demand(pool.id)
        st = slots.stats(pool.id)
        snap = autoscaler.PoolSnapshot(
            current=len(slots.of_pool(pool.id)), total=st.total, used=st.used, reserved=st.reserved,
            min_replicas=pool.min_replicas, max_replicas=pool.max_replicas,
            pending_tasks=demand.pending, unblocked_pending_pa=demand.unblocked_pending_pa,
            unblocked_pending_any=demand.unblocked_pending_any,
            pods_with_running=st.pods_with_running, any_apply_pending=demand.any_apply_pending,
        )
        d = autoscaler.decide(snap)
        decision = (d.rule, snap.current, d.desired)
        # A skipped scale-down is recorded when it starts, not again every cycle it repeats.
        if d.desired != snap.current or (d.skipped_scale_down and mem.last_decision.get(pool.id) != decision):
            ctx.record(Kind.DECISION, reason=d.rule,
                       data={"pool": pool.id, "current": snap.current, "desired": d.desired})
        mem.last_decision[pool.id] = decision
        if inputs is not None and d.desired == snap.current:
            mem.steady_scale[pool.id] = inputs
        if d.desired > snap.current:
            self.create_pods(pool.id, d.desired - snap.current, d.rule)
        elif d.desired < snap.current:
            for pod in slots.idle_pods(pool.id)[: snap.current - d.desired]:
                self.delete_pod(pod.name, d.rule, scale_down=True)

    def scale_inputs(self, pool: Pool) -> tuple | None:
        """Versions of everything AutoScalePods counts outside the freeze window: the slot
        memory, the task and workspace rows, and the pool's bounds. `decide` is a pure function
        of those counts, and a decision to keep the count writes and draws nothing (a skipped
        scale-down is recorded only when it first comes), so a pass over unchanged inputs after
        such a decision would do nothing again."""
        v = self.versions(pool.id, rows=True)
        return None if v is None else (*v, pool.min_replicas, pool.max_replicas)

    def pool_demand(self, pool_id: str) -> PoolDemand:
        """What AutoScalePods counts in the pool's tasks; recounted only after a task write."""
        return self.ctx.cached(("pool_demand", pool_id),
                               lambda: PoolDemand.of(self.pool_tasks(pool_id)),
                               tables=("tasks", "workspaces"))

    def create_pods(self, pool_id: str, count: int, cause: str) -> None:
        unix = int(self.ctx.settings.seed.epoch_unix_s + self.ctx.now)
        for _ in range(count):
            name = f"iac-agent-{pool_id}-{unix}"
            try:
                self.ctx.cluster.create_pod(pool_id, name)
            except ClusterError as err:
                self.ctx.record(Kind.DECISION, pod=name, reason=f"create pod failed: {err}",
                                data={"pool": pool_id})
                return  # stops at the first error (same-second name collisions)
            self.mem.slots.add(name, pool_id, self.ctx.now)
            self.ctx.record(Kind.POD_CREATE, pod=name, data={"pool": pool_id, "cause": cause})

    def delete_pod(self, name: str, cause: str, *, scale_down: bool = False,
                   refuse_busy: bool = True) -> bool:
        """DeletePod refuses a pod with a running or reserved slot; the unhealthy-pod check
        deletes through the API directly (`refuse_busy=False`)."""
        pod = self.mem.slots.pods.get(name)
        if refuse_busy and pod is not None and not pod.fully_idle:
            return False
        try:
            self.ctx.cluster.delete_pod(name, scale_down=scale_down)
        except ClusterError:
            return False
        self.mem.slots.remove(name)
        self.ctx.record(Kind.POD_DELETE, pod=name, data={"cause": cause})
        return True

    def check_and_restart_unhealthy_pods(self, pool: Pool) -> tuple[bool, float | None]:
        """Returns whether it deleted a pod (nothing else here writes), and until when the
        check would do the same again over the same rows and listing: for ever when it
        returned before reading the agents (work in hand), `health_calm_until` when it found
        the pool healthy, None when the listing failed or it went on to the restarts.

        As the Go code has it: the pods are the Kubernetes listing's, their age its creation
        time; the candidates (Running, older than the grace) are cut to the shortfall
        *before* the per-pod backoff and restart cap are applied, so a pod waiting out its
        backoff keeps its place; the count goes up before the delete is tried; the pod is
        deleted straight through the API (not DeletePod, so a busy slot does not refuse it)
        and dropped from the pod map; the restart records are cleared when the pool looks
        healthy and for pods no longer listed."""
        ctx, s = self.ctx, self.ctx.settings.slots
        try:
            listed = ctx.cluster.list_pods(pool.id)
        except ClusterError:
            return False, None
        if self.pool_demand(pool.id).any_busy:  # a running or apply_pending task
            return False, math.inf
        pings = [a.last_ping_at for a in ctx.store.list_agents(pool.id)
                 if ctx.now - a.last_ping_at < ctx.settings.agents.offline_after_s]
        online = len(pings)
        running = [p for p in listed if p.phase == "Running"]
        restarts = self.mem.unhealthy_restarts
        if online >= len(running):
            restarts.clear()
            return False, self.health_calm_until(pings, len(running))
        shortfall = len(running) - online
        candidates = [p for p in running if ctx.now - p.created_at >= s.unhealthy_grace_s][:shortfall]
        deleted = False
        for info in candidates:
            count, last = restarts.get(info.name, (0, 0.0))
            backoff = s.unhealthy_backoff_s[min(count, len(s.unhealthy_backoff_s) - 1)]
            if count > 0 and ctx.now - last < backoff:
                continue
            if count >= s.unhealthy_max_restarts:
                continue
            restarts[info.name] = (count + 1, ctx.now)
            if self.delete_pod(info.name, "unhealthy pod: no online agent", refuse_busy=False):
                deleted = True
        names = {p.name for p in listed}
        for name in [n for n in restarts if n not in names]:
            del restarts[name]
        return deleted, None

    def health_calm_until(self, pings: list[float], running: int) -> float:
        """Until when at least `running` of the agents last pinged at `pings` stay online
        (and listed: the cleanup deletes a row only after `delete_after_s` without a ping),
        whatever else happens. Every write to an agent row stamps `last_ping_at` with now,
        which only keeps it online longer, except a connect, which may move the row to
        another pool: `on_agent_connected` forgets every pool's calm. A microsecond short,
        so float rounding cannot make the check's own `now - last_ping_at` disagree."""
        if running == 0:
            return math.inf
        a = self.ctx.settings.agents
        ends = sorted(p + min(a.offline_after_s, a.delete_after_s) for p in pings)
        return ends[len(ends) - running] - 1e-6  # the count falls short at this end

    def on_rebuild_pods(self, e: ev.RebuildPods) -> None:
        """RebuildIdlePods with a fresh pod manager: every slot looks idle, so every pod goes."""
        fresh = PodSlots(self.ctx.rng)
        try:
            listed = self.ctx.cluster.list_pods(e.pool_id)
        except ClusterError:
            return
        count = 0
        for info in listed:
            if info.phase in ("Failed", "Succeeded"):
                continue
            fresh.add(info.name, e.pool_id, self.ctx.now)
            try:
                self.ctx.cluster.delete_pod(info.name)
            except ClusterError:
                continue
            count += 1
            self.ctx.record(Kind.POD_DELETE, pod=info.name, data={"cause": "rebuild (config update)"})
        self.ctx.spawn(self.ctx.settings.slots.rebuild_pause_s, "rebuild_create", e.pool_id, count)

    def timer_rebuild_create(self, pool_id: str, count: int) -> None:
        self.create_pods(pool_id, count, "rebuild (config update)")
