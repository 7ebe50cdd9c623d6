"""`reference`: unstuck's corrected scheduler.

Why it cannot leave a task stuck
--------------------------------
* **Level-triggered.** Every `reconcile` looks at every non-terminal task in the store and
  moves it forward if it can. A wake-up only says "look again soon"; no timer ever holds the
  only copy of pending work, so a restart loses nothing. A periodic pass is skipped only when
  it provably would change nothing (`reconcile_needed`), which keeps a simulated day fast.
* **Compare-and-set.** Every task write is `Store.cas_task(id, version, ...)`. Two confirms,
  a monitor tick and a confirm, or two replicas can race; only one dispatch wins.
* **Fencing.** Each dispatch bumps `Task.fence` and sends it with the run. Reports carrying an
  older fence are refused, so an agent that was paused on a lost node and wakes later cannot
  move the task; the agents' state lock is fenced with the same token.
* **Durable plan.** The plan artifact and digest are stored when the plan ends, so the apply
  can run on any pod; the reserved pod is only a preference.
* **Demand.** A confirmed apply_pending task without a live reserved pod counts as demand for
  a pod, from zero pods too.
* **Protection.** Pods that hold a reservation or a running task carry a
  `controller.kubernetes.io/pod-deletion-cost`, and the scheduler never scales them down.
  A pod whose agent is gone is replaced, but not while a run on it is unsettled (an agent
  cut off from us works on); one that holds only a reservation may go (the plan is stored).
* **Explicit ends.** A lost agent ends its plan (re-queued) or its apply (settled by the
  Terraform state: applied if it committed, else failed; never guessed; an apply its agent
  never claimed never began, and is sent again); an unconfirmed plan expires after a TTL (cancelled,
  stage `discarded`); a confirm is bound to the digest the user saw; dispatch failures have a
  budget and waiting for capacity has a deadline, both ending in `failed` with the workspace
  unlocked. A lock whose owner task has ended is released by the next reconcile.

State lives in the store; `memory` is only a cache of what the cluster and the agents said,
rebuilt after a restart from the store, from a list of the pods, and from the runs each agent
lists when it connects again. Whether an apply's agent has claimed its run is in the task's
row (`Task.claimed_fence`, written before the claim is answered), so a restart loses
nothing of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scheduler import events as ev
from scheduler import reports
from scheduler.core import Context
from scheduler.heartbeat import PLAN_LIMIT
from scheduler.history import Kind
from scheduler.model import (
    ACTIVE_STATUSES,
    ExecutionMode,
    PlanArtifact,
    Pool,
    Stage,
    Task,
    TaskStatus,
    TaskType,
    Workspace,
)
from scheduler.ports import (
    AgentSendError,
    ApplyOutcome,
    ClusterError,
    RunTask,
    StateReadError,
    StoreWriteError,
)

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
UNKNOWN_OUTCOME = "apply outcome unknown"  # the error of an apply failed without the state's word
PLAN_SLOTS = PLAN_LIMIT  # an agent runs up to 3 plans and 1 plan_and_apply (seed-system.md §2.2)


@dataclass
class PodView:
    name: str
    pool_id: str
    alive: bool = True  # Running/Pending and not terminating
    created_at: float = 0.0
    idle_since: float = 0.0  # when a reconcile first saw it without a task or reservation
    cost: int | None = None  # the deletion cost we last wrote
    busy: bool = False  # what the last reconcile saw


@dataclass
class AgentView:
    agent_id: str
    pool_id: str
    pod: str
    connected: bool = True
    last_seen: float = 0.0
    current_tasks: tuple[int, ...] = ()
    heartbeat_at: float | None = None


@dataclass
class RefMemory:
    booted_at: float
    pods: dict[str, PodView] = field(default_factory=dict)
    agents: dict[str, AgentView] = field(default_factory=dict)
    pod_agents: dict[str, set[str]] = field(default_factory=dict)  # pod -> agent ids
    kick_at: float | None = None
    undelivered: dict[int, int] = field(default_factory=dict)  # task -> fence never delivered
    last_failure: dict[int, str] = field(default_factory=dict)
    pod_seq: int = 0
    # Quiet-pass skipping (see `reconcile_needed`): what the last reconcile that changed
    # nothing saw, and when the first deadline after it falls due.
    dirty: bool = True
    quiet_at: float = 0.0
    quiet_revision: int | None = None
    quiet_until: float = 0.0
    calm_until: float = 0.0  # before it, no agent's last heartbeat can have aged past a threshold
    aging: set[str] = field(default_factory=set)  # agents whose last heartbeat may yet age past one
    # Agent -> the earliest dispatch of a run it holds that its heartbeats still lack (a
    # heartbeat that lacks it past report_grace_s is news), and the runs the pass saw running
    # (one gone from a heartbeat is news). Only read while the store is as the pass saw it.
    unheard: dict[str, float] = field(default_factory=dict)
    running: frozenset[int] = frozenset()
    # Applies given up on while they ran, whose outcome the state has not settled yet:
    # cancelled (the cancel may not have reached the agent, or came after the commit), or
    # failed "apply outcome unknown" (past the run timeout): see `settle_given_up`.
    given_up_applies: set[int] = field(default_factory=set)
    # Runs the scheduler let go of that their agent may still be running: (task, agent) ->
    # (pod, type, let go at). A run cancelled while its agent was out of reach (the cancel
    # could not be sent), a plan requeued because its agent was lost (out of reach, not known
    # dead: `check_running`), and any run an agent lists (its connect, its heartbeats) that
    # the store does not hold as running on it (`agent_lists`): the agent's word rebuilds
    # what a restart forgot. Each keeps its capacity on the agent until a later heartbeat no
    # longer lists it: an agent that reconnects is otherwise free for a new plan_and_apply
    # before any heartbeat (seed-system.md §2.2). Given-up applies, which may still commit,
    # are `given_up_applies'`.
    let_go_runs: dict[tuple[int, str], tuple[str, TaskType, float]] = field(default_factory=dict)
    # Idle pods the last scale-down passed over because their agent still listed a run
    # (`agent_working`): only a heartbeat that drops such an agent's last run is news.
    kept_for_runs: set[str] = field(default_factory=set)
    # Deployment pool -> the replicas we last set, and the pods it had then: a pod kept for
    # its run is a replica that is no capacity, so `desired` and the capacity differ on every
    # pass while it stays; setting the same count again would be a PATCH (and a history row)
    # per pass. Any change of the pods (someone else's scale included) sets it again.
    replicas_set: dict[str, tuple[int, frozenset[str]]] = field(default_factory=dict)


class ReferencePolicy:
    name = "reference"
    # Our agent drains on SIGTERM: no new work, runs finish within the grace period, then it
    # exits (scheduler/agent/process.py; docs/agent-protocol.md).
    agent_on_sigterm = "drain"
    # Our agent delivers every report at least once and lists its task in its heartbeats
    # until then (scheduler/reports.py): a committed apply is never left for "outcome unknown".
    agent_reports = reports.UNTIL_DELIVERED
    # Its applies hold the state lock under a lease they renew (scheduler/agent/backend.py,
    # `--lease`): frozen past it, an apply cannot commit when it wakes.
    agent_state_lease_s: float | None = 30.0
    # It claims each run before it starts it (`POST /agent/exec` invoke), and a run that is no
    # longer the task's current dispatch (a fence bumped while it waited in a frozen agent)
    # is refused and never runs.
    agent_claims_runs = True

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.memory: RefMemory | None = None
        self.cfg = ctx.settings.reference

    @property
    def mem(self) -> RefMemory:
        if self.memory is None:
            raise RuntimeError(
                "the scheduler has not booted: send a Restart event first (it doubles as boot)"
            )
        return self.memory

    def active(self) -> tuple[list[Task], dict[str, Workspace]]:
        """The non-terminal tasks and the workspaces, as stored now (shared between writes:
        read-only, see `Context.cached`)."""
        # A pass asks for the pair a dozen times between two writes: one look-up serves it.
        return self.ctx.cached("active_pair", self._active_pair, tables=("tasks", "workspaces"))

    def _active_pair(self) -> tuple[list[Task], dict[str, Workspace]]:
        store, cached = self.ctx.store, self.ctx.cached
        # Two reads: a task write (most writes) leaves the workspaces' copies standing.
        return (cached("active", lambda: store.list_tasks(statuses=ACTIVE_STATUSES), tables=("tasks",)),
                cached("workspaces", lambda: {w.id: w for w in store.list_workspaces()},
                       tables=("workspaces",)))

    # ------------------------------------------------------------------ writes
    def cas(self, task: Task, reason: str, **changes) -> Task | None:
        """Compare-and-set on the task's version; records the transition when it lands."""
        try:
            new = self.ctx.store.cas_task(task.id, task.version, updated_at=self.ctx.now, **changes)
        except StoreWriteError as err:
            self.ctx.record(Kind.STORE_WRITE_FAILED, task=task.id, workspace=task.workspace_id,
                            reason=str(err), data={"op": reason})
            self.mem.dirty = True  # not written: try again next pass
            return None
        if new is None:
            self.mem.dirty = True  # lost a race: look again next time
        else:
            self.ctx.transition(task, new, reason)
            if new.fence != task.fence:
                self.mem.undelivered.pop(task.id, None)
        return new

    def set_lock(self, workspace_id: str, owner: Task | None, reason: str) -> bool:
        ws = self.ctx.store.get_workspace(workspace_id)
        if ws is None:
            return False
        previous = ws.lock_task_id
        if owner is not None:
            if ws.is_locked and ws.lock_task_id == owner.id:
                return True
            ws.is_locked, ws.locked_by, ws.locked_at = True, "system", self.ctx.now
            ws.lock_reason, ws.lock_task_id = f"Locked for apply (task #{owner.id})", owner.id
        else:
            if not ws.is_locked:
                return True
            ws.is_locked, ws.locked_by, ws.locked_at, ws.lock_reason, ws.lock_task_id = (
                False, None, None, "", None,
            )
        try:
            self.ctx.store.save_workspace(ws)
        except StoreWriteError as err:
            self.ctx.record(Kind.STORE_WRITE_FAILED, workspace=workspace_id, reason=str(err),
                            data={"op": "lock" if owner else "unlock"})
            self.mem.dirty = True  # not written: try again next pass
            return False
        if owner is not None:
            self.ctx.record(Kind.LOCK_ACQUIRED, workspace=workspace_id, task=owner.id,
                            reason=ws.lock_reason, data={"by": "system"})
        else:
            self.ctx.record(Kind.LOCK_RELEASED, workspace=workspace_id, task=previous, reason=reason)
        return True

    def unlock_if_owner(self, task: Task, reason: str) -> None:
        ws = self.ctx.store.get_workspace(task.workspace_id)
        if ws is not None and ws.is_locked and ws.lock_task_id == task.id:
            self.set_lock(task.workspace_id, None, reason)

    def end_run(self, task: Task, reason: str, *, slot: str | None, unlock: str,
                **changes) -> Task | None:
        """End `task` by the scheduler's own decision, not its agent's report (a plan expired
        unconfirmed, an apply with no capacity before its deadline, a run timed out or given
        up): its run is fenced off, so a late report from it is stale, and detached from its
        pod; the slot it held is released (`slot`, the reason; None when the caller releases
        it) and the workspace lock it owns is let go. The stored task, or None when the
        write failed (nothing else changes, and the next pass decides again)."""
        new = self.cas(task, reason, completed_at=self.ctx.now, fence=task.fence + 1,
                       k8s_pod_name="", slot_id=None, **changes)
        if new is not None:
            if slot is not None:
                self.release_slot_of(task, slot)
            self.unlock_if_owner(new, unlock)
        return new

    def kick(self) -> None:
        """Ask for a reconcile right after this event (deduplicated per instant)."""
        self.mem.dirty = True
        if self.mem.kick_at != self.ctx.now:
            self.mem.kick_at = self.ctx.now
            self.ctx.spawn(0.0, "reconcile", False)

    # ------------------------------------------------------------------ boot
    def on_restart(self, e: ev.Restart) -> None:
        self.memory = RefMemory(booted_at=self.ctx.now)
        self.ctx.record(Kind.SCHEDULER_RESTART, reason="scheduler process started")
        for pool in self.ctx.store.list_pools():
            self.relist_pods(pool.id)
        for task in self.ctx.store.list_tasks(statuses=[TaskStatus.APPLY_PENDING]):
            if task.k8s_pod_name and task.k8s_pod_name in self.mem.pods:
                self.ctx.record(Kind.SLOT_RESERVED, pod=task.k8s_pod_name, slot=task.slot_id,
                                task=task.id, reason="reservation rebuilt from the store")
        if self.ctx.state is not None:
            self.mem.given_up_applies = {
                t.id for t in self.ctx.store.list_tasks(statuses=[TaskStatus.CANCELLED, TaskStatus.FAILED])
                if t.stage == Stage.APPLYING and t.agent_id and self.given_up(t)}
        self.ctx.spawn(0.0, "reconcile", True)

    def relist_pods(self, pool_id: str) -> None:
        try:
            listed = self.ctx.cluster.list_pods(pool_id)
        except ClusterError:
            return
        names = set()
        for info in listed:
            names.add(info.name)
            alive = info.phase in ("Pending", "Running") and not info.terminating
            view = self.mem.pods.get(info.name)
            if view is None:
                self.mem.pods[info.name] = PodView(info.name, pool_id, alive, info.created_at,
                                                   self.ctx.now, None)
            else:
                view.alive = alive
        for name, view in list(self.mem.pods.items()):
            if view.pool_id == pool_id and name not in names:
                self.pod_gone(name, "pod no longer listed")

    # ------------------------------------------------------------------ user API
    def on_task_created(self, e: ev.TaskCreated) -> ev.Outcome:
        store = self.ctx.store
        ws = store.get_workspace(e.workspace_id)
        if ws is None:
            return ev.Outcome(False, 404, message=f"workspace {e.workspace_id!r} not found")
        if e.user is None:
            return ev.Outcome(False, 401, message="creating a task needs an identity (bearer token)")
        if ws.is_locked:
            self.ctx.record(Kind.TASK_REJECTED, workspace=ws.id, reason="workspace is locked",
                            data={"status": 423})
            return ev.Outcome(False, 423, message=f"workspace {ws.id} is locked: {ws.lock_reason}")
        try:
            task = self.ctx.insert_task(ws, e)
        except StoreWriteError as err:
            return ev.Outcome(False, 503, message=f"could not store the task, retry: {err}")
        self.kick()
        return ev.Outcome(True, 201, task_id=task.id)

    def reject_confirm(self, task: Task | None, status: int, reason: str) -> ev.Outcome:
        self.ctx.record(Kind.CONFIRM_REJECTED, task=task.id if task else None,
                        workspace=task.workspace_id if task else None, reason=reason,
                        data={"status": status})
        return ev.Outcome(False, status, task_id=task.id if task else None, message=reason)

    def on_confirm_apply(self, e: ev.ConfirmApply) -> ev.Outcome:
        task = self.ctx.store.get_task(e.task_id)
        if task is None:
            return ev.Outcome(False, 404, message=f"task {e.task_id} not found")
        if e.user is None:
            return self.reject_confirm(task, 401, "confirm needs an identity (bearer token)")
        if task.task_type is not TaskType.PLAN_AND_APPLY:
            return self.reject_confirm(task, 409, f"task {task.id} is a {task.task_type.value}, not plan_and_apply")
        if task.status is not TaskStatus.APPLY_PENDING:
            return self.reject_confirm(task, 409, f"task {task.id} is {task.status.value}, not apply_pending")
        if task.confirmed:
            return self.reject_confirm(task, 409, f"task {task.id} was already confirmed by {task.apply_confirmed_by}")
        if e.plan_digest is None:
            return self.reject_confirm(task, 400, "confirm must carry the plan_digest the user reviewed")
        if e.plan_digest != task.plan_digest:
            return self.reject_confirm(
                task, 409, f"plan digest {e.plan_digest!r} does not match the current plan "
                f"{task.plan_digest!r}: review the new plan and confirm again")
        new = self.cas(task, "confirm apply", apply_confirmed_by=e.user,
                       apply_confirmed_at=self.ctx.now, confirmed_digest=e.plan_digest,
                       apply_description=e.description, attempts=0)
        if new is None:
            return ev.Outcome(False, 503, task_id=task.id, message="confirm not stored; retry")
        self.ctx.record(Kind.TASK_CONFIRMED, task=task.id, workspace=task.workspace_id,
                        data={"user": e.user, "digest": e.plan_digest})
        self.kick()
        return ev.Outcome(True, 200, task_id=task.id, message="Apply queued")

    def on_cancel(self, e: ev.CancelTask) -> ev.Outcome:
        task = self.ctx.store.get_task(e.task_id)
        if task is None:
            return ev.Outcome(False, 404, message=f"task {e.task_id} not found")
        if e.user is None:
            return ev.Outcome(False, 401, task_id=task.id, message="cancel needs an identity")
        if task.status not in ACTIVE_STATUSES:
            return ev.Outcome(False, 409, task_id=task.id, message=f"task is already {task.status.value}")
        if task.stage == Stage.APPLYING and self.state_of(task)[0] is ApplyOutcome.COMMITTED:
            # Too late: the change is made. Say so, and record it (its report may be lost).
            done = self.finish(task, "apply committed in the state (cancel refused)",
                               status=TaskStatus.APPLIED, stage=Stage.APPLIED,
                               fence=task.fence + 1, k8s_pod_name="", slot_id=None)
            if not done.ok:
                return done
            return ev.Outcome(False, 409, task_id=task.id, message="the apply has already committed")
        new = self.cas(task, "cancelled by user", status=TaskStatus.CANCELLED,
                       completed_at=self.ctx.now, fence=task.fence + 1)
        if new is None:
            # Nothing changed, as a 503 says: the run goes on (the agent is told only once
            # the cancel is stored, or a cancel answered "retry" would abort it all the same).
            return ev.Outcome(False, 503, task_id=task.id, message="cancel not stored; retry")
        if task.status is TaskStatus.RUNNING and task.agent_id:
            try:
                self.ctx.agents.send_cancel(task.agent_id, task.id)
            except AgentSendError:
                # The fence bump above makes any later report stale, but the run goes on.
                self.let_go(task)
        self.ctx.record(Kind.TASK_CANCELLED, task=task.id, workspace=task.workspace_id,
                        data={"user": e.user})
        if task.status is TaskStatus.RUNNING and task.stage == Stage.APPLYING and self.ctx.state is not None:
            self.mem.given_up_applies.add(task.id)
        self.release_slot_of(task, "task cancelled")
        self.unlock_if_owner(new, "task cancelled")
        self.kick()
        return ev.Outcome(True, 200, task_id=task.id)

    # ------------------------------------------------------------------ agent reports
    def on_run_claimed(self, e: ev.RunClaimed) -> ev.Outcome:
        """The agent starts the run now. Its apply may change the infrastructure from here
        on, so if its agent goes silent and the state holds no commit, it is failed, not
        sent again (`settle_apply`). So an apply's claim is written into the task's row
        (`claimed_fence`) before it is answered: a restarted process, or another replica,
        then knows it too. A claim that cannot be written is answered 503 and the agent
        asks again; until then the apply counts as never begun, which it has not. A plan's
        claim writes nothing: a lost plan is planned again either way."""
        out = self.ctx.claim(e)
        if not out.ok:
            return out
        task = self.ctx.store.get_task(e.task_id)
        if task is None or task.stage != Stage.APPLYING or task.claimed:
            return out
        if self.cas(task, "claim", claimed_fence=e.fence) is None:
            return ev.Outcome(False, 503, task_id=task.id, message="claim not stored, retry")
        return out

    def current(self, task_id: int, agent_id: str, fence: int) -> Task | ev.Outcome:
        task = self.ctx.store.get_task(task_id)
        if task is None:
            return ev.Outcome(False, 404, message=f"task {task_id} not found")
        if task.status is not TaskStatus.RUNNING or task.fence != fence or task.agent_id != agent_id:
            self.ctx.record(Kind.REPORT_REFUSED, task=task_id, agent=agent_id,
                            reason=f"stale report: task is {task.status.value} with fence {task.fence}",
                            data={"fence": fence, "current": task.fence})
            return ev.Outcome(False, 409, task_id=task_id,
                              message=f"stale fencing token {fence}; current is {task.fence}")
        return task

    def run_ended(self, task_id: int, agent_id: str) -> None:
        """A report comes once its run has ended: that agent no longer runs the task, so a
        hold of its run (`let_go_runs`) ends now, not at the agent's next heartbeat."""
        if self.mem.let_go_runs.pop((task_id, agent_id), None) is not None:
            self.mem.dirty = True

    def on_plan_finished(self, e: ev.PlanFinished) -> ev.Outcome:
        self.run_ended(e.task_id, e.agent_id)
        task = self.current(e.task_id, e.agent_id, e.fence)
        if isinstance(task, ev.Outcome):
            return task
        try:
            self.ctx.store.put_plan(PlanArtifact(task.id, e.digest, self.ctx.now, task.workspace_id))
        except StoreWriteError as err:
            self.ctx.record(Kind.STORE_WRITE_FAILED, task=task.id, workspace=task.workspace_id,
                            reason=str(err), data={"op": "store plan"})
            return ev.Outcome(False, 503, task_id=task.id, message=f"plan not stored, retry: {err}")
        if task.task_type is TaskType.PLAN_AND_APPLY and e.has_changes:
            if not self.set_lock(task.workspace_id, task, "plan has changes"):
                return ev.Outcome(False, 503, task_id=task.id, message="lock not stored, retry")
            new = self.cas(task, "plan finished with changes", status=TaskStatus.APPLY_PENDING,
                           stage=Stage.APPLY_PENDING, plan_task_id=task.id, plan_digest=e.digest,
                           has_changes=True, completed_at=self.ctx.now, attempts=0)
            if new is not None and new.k8s_pod_name:
                self.ctx.record(Kind.SLOT_RESERVED, pod=new.k8s_pod_name, slot=new.slot_id,
                                task=new.id, reason="plan finished: slot kept for the apply")
        else:
            done = (TaskStatus.PLANNED_AND_FINISHED, Stage.PLANNED_AND_FINISHED) \
                if task.task_type is TaskType.PLAN_AND_APPLY else (TaskStatus.SUCCESS, Stage.COMPLETED)
            new = self.cas(task, "plan finished", status=done[0], stage=done[1],
                           plan_digest=e.digest, has_changes=e.has_changes,
                           completed_at=self.ctx.now)
            if new is not None:
                self.release_slot_of(task, "plan finished")
        if new is None:
            return ev.Outcome(False, 503, task_id=task.id, message="status not stored, retry")
        self.kick()
        return ev.Outcome(True, 200, task_id=task.id)

    def on_apply_finished(self, e: ev.ApplyFinished) -> ev.Outcome:
        self.run_ended(e.task_id, e.agent_id)
        late = self.late_commit(e) if e.ok else None
        if late is not None:
            return late
        task = self.current(e.task_id, e.agent_id, e.fence)
        if isinstance(task, ev.Outcome):
            return task
        if e.ok:
            return self.finish(task, "apply finished", status=TaskStatus.APPLIED, stage=Stage.APPLIED)
        if not task.claimed:
            # Refused before its claim: our agent found the workspace's state lock held under
            # another run's live lease (a stale run of this task between its lock and its
            # refused claim, a cut-off agent renewing, a given-up apply still at work). The
            # apply never began, so the confirmation stands: it waits for a pod again, and
            # for the lock, within its retry budget (with its back-off) and its deadline.
            if self.requeue_or_fail(task, f"apply refused before it began: {e.error}",
                                    TaskStatus.APPLY_PENDING, Stage.APPLY_PENDING) is None:
                return ev.Outcome(False, 503, task_id=task.id, message="status not stored, retry")
            self.kick()
            return ev.Outcome(True, 200, task_id=task.id)
        return self.finish(task, "apply failed", status=TaskStatus.FAILED,
                           error_message=e.error or "apply failed")

    def late_commit(self, e: ev.ApplyFinished) -> ev.Outcome | None:
        """The success report of the apply run this scheduler stopped waiting for: it gave
        the run up (`settle_apply`: past the run timeout, or with no state backend to read),
        or the user cancelled it, and bumped the fence. Yet the agent was only frozen or unheard (a node lost and
        healed; heartbeats and reports that could not be stored), or the commit came before
        the cancel reached it, and the apply committed. A commit is a fact, so the task is recorded `applied`: its user must not
        read `failed` or `cancelled` for a change that was made (the checker's
        `no_unrecorded_apply`). None when the report is not that run's."""
        task = self.ctx.store.get_task(e.task_id)
        if (task is None or task.status not in (TaskStatus.FAILED, TaskStatus.CANCELLED)
                or task.stage != Stage.APPLYING or task.fence != e.fence + 1
                or task.agent_id != e.agent_id):
            return None
        new = self.cas(task, f"late report: the apply had committed (task was {task.status.value})",
                       status=TaskStatus.APPLIED, stage=Stage.APPLIED, error_message="")
        if new is None:
            return ev.Outcome(False, 503, task_id=task.id, message="status not stored, retry")
        return ev.Outcome(True, 200, task_id=task.id)

    def on_task_failed(self, e: ev.TaskFailed) -> ev.Outcome:
        self.run_ended(e.task_id, e.agent_id)
        task = self.current(e.task_id, e.agent_id, e.fence)
        if isinstance(task, ev.Outcome):
            return task
        return self.finish(task, e.reason, status=TaskStatus.FAILED, error_message=e.reason)

    def finish(self, task: Task, reason: str, **changes) -> ev.Outcome:
        """A reported terminal status: write it, free the slot, release the lock it owns."""
        new = self.cas(task, reason, completed_at=self.ctx.now, **changes)
        if new is None:
            return ev.Outcome(False, 503, task_id=task.id, message="status not stored, retry")
        self.release_slot_of(task, reason)
        self.unlock_if_owner(new, reason)
        self.kick()
        return ev.Outcome(True, 200, task_id=task.id)

    def on_completion_notice(self, e: ev.CompletionNotice) -> None:
        """One channel decides: the HTTP report. The C&C notice changes nothing (no G1)."""

    def release_slot_of(self, task: Task, reason: str) -> None:
        if task.k8s_pod_name:
            self.ctx.record(Kind.SLOT_RELEASED, pod=task.k8s_pod_name, slot=task.slot_id,
                            task=task.id, reason=reason,
                            data={"was": "reserved" if task.status is TaskStatus.APPLY_PENDING else "running"})

    # ------------------------------------------------------------------ cluster events
    def on_pod_added(self, e: ev.PodAdded) -> None:
        view = self.mem.pods.get(e.pod)
        if view is None:
            self.mem.pods[e.pod] = PodView(e.pod, e.pool_id, True, self.ctx.now, self.ctx.now)
        self.kick()

    def on_pod_terminating(self, e: ev.PodTerminating) -> None:
        view = self.mem.pods.get(e.pod)
        if view is not None:
            view.alive = False
        self.kick()

    def on_pod_removed(self, e: ev.PodRemoved) -> None:
        self.pod_gone(e.pod, "pod removed")
        self.kick()

    def pod_gone(self, name: str, reason: str) -> None:
        view = self.mem.pods.pop(name, None)
        if view is None:
            return
        for key in [key for key, (pod, _, _) in self.mem.let_go_runs.items() if pod == name]:
            del self.mem.let_go_runs[key]
        for task in self.ctx.store.list_tasks(statuses=[TaskStatus.APPLY_PENDING]):
            if task.k8s_pod_name == name:
                new = self.cas(task, "reservation dropped: " + reason, k8s_pod_name="", slot_id=None)
                if new is not None:
                    self.ctx.record(Kind.SLOT_RELEASED, pod=name, slot=task.slot_id, task=task.id,
                                    reason=reason + "; the apply will run on any pod",
                                    data={"was": "reserved"})

    def on_rebuild_pods(self, e: ev.RebuildPods) -> None:
        """A config change rolls the pool: idle pods go now, busy ones when they are idle
        (the reconcile's scale-down deletes only idle, unprotected pods). A pod whose agent
        still lists a run is passed over as the scale-down passes over it (`agent_working`):
        its report may be the only record of a change."""
        for view in [v for v in self.mem.pods.values() if v.pool_id == e.pool_id]:
            if not self.pod_busy(view.name) and not self.agent_working(view.name):
                self.delete_pod(view.name, "rebuild (config update)")
        self.kick()

    # ------------------------------------------------------------------ agents
    def on_agent_connected(self, e: ev.AgentConnected) -> ev.Outcome:
        if not e.token_ok:
            return ev.Outcome(False, 401, message="invalid pool token")
        from scheduler.model import AgentRow

        try:
            self.ctx.store.put_agent(AgentRow(e.agent_id, e.pool_id, e.pod, "online", self.ctx.now))
        except StoreWriteError as err:
            return ev.Outcome(False, 503, message=f"registration not stored, retry: {err}")
        old = self.mem.agents.get(e.agent_id)
        if old is not None:
            self.mem.pod_agents.get(old.pod, set()).discard(e.agent_id)
        # What it runs as it (re)connects is as true as a heartbeat's list (a run it lists
        # is not timed out as lost, its pod is not scaled down under it), though not yet
        # what it does not run: that waits for a heartbeat (`heartbeat_at`, `check_running`).
        self.mem.agents[e.agent_id] = AgentView(e.agent_id, e.pool_id, e.pod, True, self.ctx.now,
                                                tuple(e.current_tasks))
        self.mem.aging.add(e.agent_id)
        self.mem.pod_agents.setdefault(e.pod, set()).add(e.agent_id)
        if e.pod not in self.mem.pods:
            self.mem.pods[e.pod] = PodView(e.pod, e.pool_id, True, self.ctx.now, self.ctx.now)
        self.agent_lists(self.mem.agents[e.agent_id], e.current_tasks)
        self.ctx.record(Kind.AGENT_CONNECTED, agent=e.agent_id, pod=e.pod, data={"pool": e.pool_id})
        self.kick()
        return ev.Outcome(True, 200)

    def on_agent_heartbeat(self, e: ev.AgentHeartbeat) -> ev.Outcome:
        view = self.mem.agents.get(e.agent_id)
        if view is None:
            return ev.Outcome(False, 404, message="agent not registered: connect first")
        current, mem, now = tuple(e.current_tasks), self.mem, self.ctx.now
        if (not view.connected
                or now - mem.unheard.get(e.agent_id, now) > self.cfg.report_grace_s
                or not mem.running.isdisjoint(set(view.current_tasks).difference(current))
                or (view.current_tasks and not current and view.pod in mem.kept_for_runs)
                or now - view.last_seen > self.recent_s):
            # News for the reconcile (`check_running`'s tests, over the runs the last quiet
            # pass saw): an agent that had gone quiet is back, a run is still missing from its
            # heartbeat past the report grace, or a run has gone from it, or its last run has
            # from a pod a scale-down passed over (`agent_working`). A run that only appears, or
            # one that leaves after it ended in the store while others stay, cannot make the
            # pass act (but for a new hold, which is demand: `agent_lists` marks it).
            mem.dirty = True
        view.connected, view.last_seen = True, self.ctx.now
        mem.aging.add(e.agent_id)
        view.current_tasks, view.heartbeat_at = current, self.ctx.now
        self.agent_lists(view, current)
        return ev.OK

    def agent_lists(self, view: AgentView, current: tuple[int, ...]) -> None:
        """The agent says it runs `current` (its connect or a heartbeat): the truth about its
        capacity. A run let go of before now that it no longer lists has ended: its capacity
        is free again. A run it lists that the store does not hold as running on it (another
        status, or running on another agent: cancelled, requeued, given up) may run on, so it
        is held (`let_go_runs`) until a later heartbeat drops it. This rebuilds every hold
        after any number of restarts, with nothing more in the store. Task ids suffice: our
        agent runs one run per task (a new run supersedes the old one), and only other
        tasks' runs count against a dispatch."""
        mem, now, agent = self.mem, self.ctx.now, view.agent_id
        if mem.let_go_runs:
            ended = [key for key, (_, _, at) in mem.let_go_runs.items()
                     if key[1] == agent and at < now and key[0] not in current]
            for key in ended:
                del mem.let_go_runs[key]
            mem.dirty = mem.dirty or bool(ended)  # its capacity is free again
        for task_id in current:
            if (task_id, agent) in mem.let_go_runs:
                continue
            task = self.active_by_id().get(task_id) or self.ctx.store.get_task(task_id)
            if (task is not None and not (task.status is TaskStatus.RUNNING and task.agent_id == agent)
                    and self.hold(task_id, agent, view.pod, task.task_type)):
                mem.dirty = True  # a hold is demand for a pod (`demand`)

    def on_agent_disconnected(self, e: ev.AgentDisconnected) -> None:
        view = self.mem.agents.get(e.agent_id)
        if view is not None and view.connected:
            view.connected = False
            self.ctx.record(Kind.AGENT_DISCONNECTED, agent=e.agent_id, pod=view.pod,
                            reason="connection closed", data={"pool": view.pool_id})
        self.kick()

    @property
    def recent_s(self) -> float:
        """How long an agent's last heartbeat counts as recent: the report grace, and never
        longer than the agent timeout, after which `agent_lost` presumes it lost (a grace set
        longer made a pod usable, and runs went to an agent the next pass gave up on)."""
        return min(self.cfg.report_grace_s, self.cfg.agent_timeout_s)

    def agent_for_pod(self, pod: str) -> AgentView | None:
        """The pod's agent, if it is connected and has been heard from recently."""
        recently = self.recent_s
        for agent_id in sorted(self.mem.pod_agents.get(pod, ())):
            view = self.mem.agents[agent_id]
            if view.connected and self.ctx.now - view.last_seen <= recently:
                return view
        return None

    def pod_health(self, view: PodView) -> str:
        """healthy | starting | unhealthy | gone: what a pod is worth as capacity."""
        if not view.alive:
            return "gone"
        if self.agent_for_pod(view.name) is not None:
            return "healthy"
        ever = bool(self.mem.pod_agents.get(view.name))
        since = max(view.created_at, self.mem.booted_at)
        if not ever and self.ctx.now - since < self.cfg.agent_startup_grace_s:
            return "starting"
        if ever and self.ctx.now - max(since, self.last_seen_on(view.name)) < self.cfg.agent_timeout_s:
            return "starting"  # a blip: give it the heartbeat timeout to come back
        return "unhealthy"

    def last_seen_on(self, pod: str) -> float:
        return max((self.mem.agents[a].last_seen for a in self.mem.pod_agents.get(pod, ())),
                   default=0.0)

    def agent_lost(self, agent_id: str | None) -> str | None:
        """Why the agent of a running task is presumed lost, or None while it may live."""
        now, mem = self.ctx.now, self.mem
        view = mem.agents.get(agent_id or "")
        if view is None:
            if now - mem.booted_at > self.cfg.agent_timeout_s:
                return "agent never reconnected"
            return None
        if now - view.last_seen > self.cfg.agent_timeout_s:
            return f"no heartbeat from agent for {self.cfg.agent_timeout_s:g} s"
        return None

    # ------------------------------------------------------------------ reconcile
    def timer_reconcile(self, periodic: bool) -> None:
        if periodic:
            self.ctx.spawn(self.cfg.reconcile_period_s, "reconcile", True)
        else:
            self.mem.kick_at = None
        if not self.reconcile_needed():
            return
        mem = self.mem
        mem.dirty = False
        self.reconcile()
        if not mem.dirty:
            # The pass left nothing to retry: a second one now would change nothing (it
            # acted on every task and pod it may act on), so the next needs what a quiet
            # pass's would: a new event or write, or a threshold crossed.
            mem.quiet_at, mem.quiet_revision = self.ctx.now, getattr(self.ctx.store, "revision", None)
            self.remember_quiet_pass()

    def reconcile_needed(self) -> bool:
        """Would a reconcile now change anything? False only when the last pass left nothing
        to retry (`dirty`: a write failed, a race was lost, a pod was scaled down, one per
        pass), no event or store write has come since, and no time threshold it tests has
        been crossed: the pass is a pure function of (store, memory, now) that acts on every
        task and pod it may act on, so a second one would change nothing. Tested by running
        every scenario with and without skipping and comparing the histories byte for byte
        (tests/unit/sim/test_quiet_reconcile.py)."""
        mem = self.mem
        if not self.cfg.skip_quiet_reconciles or mem.dirty or mem.quiet_revision is None:
            return True
        if getattr(self.ctx.store, "revision", None) != mem.quiet_revision:
            return True
        now = self.ctx.now
        if now >= mem.quiet_until:
            return True
        # Agents age without events: a heartbeat that stops is the news.
        if now < mem.calm_until:
            return False
        mem.calm_until = self.agents_calm_until(mem.quiet_at)
        return now >= mem.calm_until

    def agents_calm_until(self, since: float) -> float:
        """The first instant, from `since` on, at which an agent's last heartbeat ages past a
        threshold the pass tests (agent_timeout_s; report_grace_s while connected). A later
        heartbeat only moves an agent's later, and one that comes after now cannot age past
        one before now + the shorter threshold."""
        now, grace, timeout = self.ctx.now, self.cfg.report_grace_s, self.cfg.agent_timeout_s
        calm, mem = now + min(grace, timeout), self.mem
        for agent_id in list(mem.aging):
            view = mem.agents[agent_id]
            if view.last_seen + max(grace, timeout) < since:
                mem.aging.discard(agent_id)  # aged past both: only a new heartbeat brings it back
                continue
            if since <= view.last_seen + timeout < calm:
                calm = view.last_seen + timeout
            if view.connected and since <= view.last_seen + grace < calm:
                calm = view.last_seen + grace
        return calm

    def remember_quiet_pass(self) -> None:
        """What `reconcile_needed` and a heartbeat need to know of a pass that changed
        nothing: the first instant after now at which a condition it tests on a clock may flip
        (thresholds already past have flipped) or an agent's heartbeat may age past one; the
        agents whose heartbeats lack
        a run they hold, each with that run's earliest dispatch (the pass tests a heartbeat's
        time against it); and the runs it saw running."""
        cfg, mem, now = self.cfg, self.mem, self.ctx.now
        marks: list[float] = []
        unheard: dict[str, float] = {}
        running = set()
        busy = set()
        for t in self.active()[0]:
            if t.k8s_pod_name:
                busy.add(t.k8s_pod_name)
            if t.attempts:
                marks.append(t.updated_at + self.backoff_s(t.attempts))
            if t.status is TaskStatus.RUNNING:
                running.add(t.id)
                dispatched = t.started_at or 0.0
                marks.append(dispatched + cfg.run_timeout_s)
                view = mem.agents.get(t.agent_id or "")
                if view is None:
                    marks.append(mem.booted_at + cfg.agent_timeout_s)
                elif t.id not in view.current_tasks:
                    unheard[view.agent_id] = min(dispatched, unheard.get(view.agent_id, dispatched))
            elif t.status is TaskStatus.APPLY_PENDING:
                if t.confirmed:
                    marks.append((t.apply_confirmed_at or 0.0) + cfg.apply_wait_deadline_s)
                else:
                    done = t.completed_at or t.updated_at
                    marks += (done + cfg.plan_ttl_s, done + cfg.reservation_hold_s)
        for v in mem.pods.values():
            if v.alive:
                since = max(v.created_at, mem.booted_at)
                marks += (since + cfg.agent_startup_grace_s, since + cfg.agent_timeout_s)
                if v.name not in busy:
                    marks.append(v.idle_since + cfg.idle_pod_cooldown_s)
        mem.quiet_until = min((m for m in marks if m >= now), default=math.inf)
        mem.calm_until = self.agents_calm_until(now)
        mem.unheard, mem.running = unheard, frozenset(running)

    @staticmethod
    def given_up(task: Task) -> bool:
        """An apply the scheduler stopped waiting for without the state's word on it."""
        return task.status is TaskStatus.CANCELLED or (
            task.status is TaskStatus.FAILED and task.error_message.startswith(UNKNOWN_OUTCOME))

    def settle_given_up(self) -> set[str]:
        """An apply the scheduler gave up on while it ran may commit all the same: a cancel
        could not reach its agent (cut off from us, or reconnecting after a restart), or came
        after the commit; a run past the run timeout failed "apply outcome unknown" while the
        state was in doubt, and its agent worked on. Its report then makes the task `applied`
        (`late_commit`), but the report may never come (a database outage holds it back, then
        the pod goes). As `settle_apply` does for a silent run, ask the state: committed, the
        task is `applied`; in doubt (the run holds the lock under a live lease) or unreadable,
        ask again next pass; not committed, the cancel or the failure stands. Returns the
        workspaces of the applies still in doubt (or committed and not yet recorded): the
        state may yet change under them."""
        unsettled: set[str] = set()
        for task_id in sorted(self.mem.given_up_applies):
            task = self.ctx.store.get_task(task_id)
            if task is None or task.stage != Stage.APPLYING or not self.given_up(task):
                self.mem.given_up_applies.discard(task_id)
                continue
            outcome, unread = self.state_of(task, fence=task.fence - 1)  # giving up bumped it
            if outcome is ApplyOutcome.IN_DOUBT or unread:
                self.mem.dirty = True  # the backend may change with no event: look again
                if not unread:
                    # Its run holds the state lock under a live lease: it may yet commit.
                    # A backend that cannot be read holds nothing back, or a backend broken
                    # for good would hold the workspace's plan_and_apply tasks for ever.
                    unsettled.add(task.workspace_id)
            elif outcome is ApplyOutcome.NOT_COMMITTED:
                self.mem.given_up_applies.discard(task_id)
            elif self.cas(task, "apply committed in the state (after the cancel)"
                          if task.status is TaskStatus.CANCELLED else
                          "apply committed in the state (after the run timeout)",
                          status=TaskStatus.APPLIED, stage=Stage.APPLIED, error_message="") is not None:
                self.mem.given_up_applies.discard(task_id)
            else:
                unsettled.add(task.workspace_id)  # committed, not yet recorded
        return unsettled

    def reconcile(self) -> None:
        unsettled = self.settle_given_up() if self.mem.given_up_applies else set()
        tasks = self.active()[0]
        for task in tasks:
            if task.status is TaskStatus.RUNNING:
                self.check_running(task)
                if task.id in self.mem.given_up_applies:  # given up just now, in doubt
                    unsettled.add(task.workspace_id)
            elif task.status is TaskStatus.APPLY_PENDING and not task.confirmed:
                if self.ctx.now - (task.completed_at or task.updated_at) > self.cfg.plan_ttl_s:
                    self.end_run(task, "plan expired unconfirmed", slot="plan expired",
                                 unlock="plan expired unconfirmed", status=TaskStatus.CANCELLED,
                                 stage=Stage.DISCARDED,
                                 error_message="plan discarded: not confirmed within the TTL")
        self.release_orphan_locks(self.active()[1])
        pools = self.ctx.store.list_pools()
        tasks, workspaces = self.active()
        ready = self.ready()
        if unsettled:
            # A given-up apply may still commit: a plan_and_apply planned now could be
            # confirmed and applied over a state that changed after its plan. Its plan waits
            # until the state has settled the run (plain plans change nothing and go on).
            ready = [(t, a) for t, a in ready if not (
                a == "plan" and t.task_type is TaskType.PLAN_AND_APPLY and t.workspace_id in unsettled)]
        for pool in pools:
            self.dispatch_pool(pool, tasks, workspaces, ready)
        tasks, workspaces = self.active()
        for pool in pools:
            self.scale_pool(pool, tasks, workspaces)

    def check_running(self, task: Task) -> None:
        if self.mem.undelivered.get(task.id) == task.fence:
            # The send failed and the roll-back write did not land: it was never delivered.
            apply = task.stage == Stage.APPLYING
            back = (TaskStatus.APPLY_PENDING, Stage.APPLY_PENDING) if apply else (TaskStatus.PENDING, Stage.PENDING)
            self.requeue_or_fail(task, "run was never delivered", *back)
            return
        why = lost = self.agent_lost(task.agent_id)
        view = self.mem.agents.get(task.agent_id or "")
        if why is None and view is not None and view.heartbeat_at is not None:
            dispatched = task.started_at or 0.0
            if (view.heartbeat_at - dispatched > self.cfg.report_grace_s
                    and task.id not in view.current_tasks):
                why = "agent is alive but not running the task"
        timed_out = self.ctx.now - (task.started_at or 0.0) > self.cfg.run_timeout_s
        if timed_out and why is None and task.stage != Stage.APPLYING:
            if view is None:
                # Its agent has not reconnected since we restarted, but may yet (`agent_lost`
                # says when it is presumed lost, at a pass that comes due): whether it still
                # runs the plan decides between a plan too long and a plan lost. Requeued at
                # once (until session 31), an hour's plan ran again from its start beside
                # the first run.
                return
            if task.id in view.current_tasks:
                self.stop_overlong_plan(task)
                return
        if timed_out:
            why = f"{why}, and the run timed out" if why else "run timed out"
        if why is None:
            return
        if task.stage == Stage.APPLYING:
            self.settle_apply(task, why, wait=not timed_out)
            return
        if self.requeue_or_fail(task, "plan lost: " + why, TaskStatus.PENDING, Stage.PENDING):
            self.release_slot_of(task, why)
            if task.agent_id and (lost is not None or view is None or view.heartbeat_at is None
                                  or task.id in view.current_tasks):
                # The agent may run on, as after a cancel it never got: it is only out of
                # reach (a frozen node heals, a cut-off agent reconnects), it has sent no
                # heartbeat since it (re)connected or we restarted, or its last heartbeat
                # still listed the run past the run timeout. Held now, not from its next
                # heartbeat, so that this very pass sends it no other plan_and_apply
                # (seed-system.md §2.2); a heartbeat without the run ends the hold.
                self.let_go(task)

    def stop_overlong_plan(self, task: Task) -> None:
        """A plan past the run timeout that its agent, in reach, still lists is not lost: it
        is too long. Run again from its start it would time out again, each attempt the
        same hour, until the retry budget failed it hours later (the reference did so until
        session 30). It fails now, as a Terraform Cloud run past its timeout errors, and its
        agent is told to stop. The run is held (`let_go_runs`) until a heartbeat no longer
        lists it: a live agent may take that long to act on the cancel, and this pass must
        not send it another plan_and_apply (seed-system.md §2.2)."""
        t = self.cfg.run_timeout_s
        limit = f"{t / 60:g} min" if t % 60 == 0 else f"{t:g} s"
        new = self.end_run(task, f"plan timed out: still running past the run timeout ({limit})",
                           slot="plan timed out", unlock="plan timed out", status=TaskStatus.FAILED,
                           error_message=(f"the plan ran past the run timeout ({limit}) and was "
                                          "stopped; a plan this long will not finish in one run: "
                                          "raise the run timeout, or split the workspace"))
        if new is None:
            return
        self.let_go(task)
        try:
            self.ctx.agents.send_cancel(task.agent_id or "", task.id)
        except AgentSendError:
            pass  # held all the same: the next heartbeat that lists no run ends the hold

    def state_of(self, task: Task, fence: int | None = None) -> tuple[ApplyOutcome | None, str]:
        """What the state backend says of the apply of `task`'s current run (or of the run
        fenced `fence`): (None, why not) when there is no backend to ask (the live service
        without --backend-dir) or it cannot be read."""
        if self.ctx.state is None:
            return None, ""
        try:
            return self.ctx.state.apply_outcome(task.workspace_id, task.id,
                                                task.fence if fence is None else fence), ""
        except StateReadError as err:
            return None, f" (state unreadable: {err})"

    def settle_apply(self, task: Task, why: str, *, wait: bool) -> None:
        """The apply run of `task` has gone silent (`why`): ask the state backend what it did.
        Committed, the task is `applied`, though its report may never come (its agent died
        with the report unsent: a database outage held it back, then its node was lost). In
        doubt (the run still holds the state lock under a live lease), it may yet commit, so
        the task keeps running and the question is asked again at the next pass, unless
        `wait` is off (the run timeout has passed). A backend that cannot be read is waited
        for in the same way: it may hold the commit, and a read that fails for a moment (a
        remount, a network blip) must not turn an applied task into a failed one. Otherwise,
        an apply its agent never claimed goes back to `apply_pending`, still confirmed: it
        never began. One that began, with no commit or no backend to ask, fails (it may have
        changed the infrastructure), and a late report of a commit still makes it `applied`
        (`late_commit`)."""
        outcome, unread = self.state_of(task)
        if wait and (outcome is ApplyOutcome.IN_DOUBT or unread):
            self.mem.dirty = True  # the backend may change with no event: look again
            return
        if outcome is ApplyOutcome.COMMITTED:
            self.finish(task, f"apply committed in the state ({why})", status=TaskStatus.APPLIED,
                        stage=Stage.APPLIED, fence=task.fence + 1, k8s_pod_name="", slot_id=None)
            return
        if not task.claimed and (
                outcome is ApplyOutcome.NOT_COMMITTED or (outcome is None and not unread)):
            # Its agent never claimed the run (frozen or cut off with the run unread, or it
            # dropped it): the apply never began, and once the fence is bumped it never will,
            # as claims and this pass take turns on one loop. The state agrees (nothing
            # committed, no live lease), or there is no backend to ask. The user's
            # confirmation still stands, so the apply goes back to wait for a pod, as an
            # apply whose send failed does (within its retry budget and its deadline).
            self.requeue_or_fail(task, f"apply never started: {why}", TaskStatus.APPLY_PENDING,
                                 Stage.APPLY_PENDING)
            return
        if outcome is ApplyOutcome.NOT_COMMITTED:
            label = "apply did not commit"
            message = (f"the apply did not commit ({why}): the state holds none of its changes; "
                       "re-plan and confirm")
        else:
            label = UNKNOWN_OUTCOME
            message = f"{UNKNOWN_OUTCOME} ({why}); check the state and re-plan"
        new = self.end_run(task, f"{label}: {why}{unread}", slot=why, unlock=label,
                           status=TaskStatus.FAILED, error_message=message)
        if new is not None and outcome is not ApplyOutcome.NOT_COMMITTED and self.ctx.state is not None:
            self.mem.given_up_applies.add(task.id)  # it may commit yet: settle_given_up

    def requeue_or_fail(self, task: Task, reason: str, status: TaskStatus, stage: str) -> Task | None:
        """Put `task` back to `status` for another attempt, or fail it once the retry budget
        is spent; the stored task, or None when the write failed (the next pass tries again)."""
        attempts = task.attempts + 1
        if attempts > self.cfg.retry_budget:
            return self.end_run(task, f"retry budget exhausted ({reason})", slot=None,
                                unlock="retry budget exhausted", status=TaskStatus.FAILED,
                                error_message=f"gave up after {task.attempts} attempts: {reason}",
                                attempts=attempts)
        keep_pod = status is TaskStatus.APPLY_PENDING
        return self.cas(task, reason, status=status, stage=stage, agent_id=None, started_at=None,
                        fence=task.fence + 1, attempts=attempts,
                        k8s_pod_name=task.k8s_pod_name if keep_pod else "",
                        slot_id=task.slot_id if keep_pod else None)

    def active_by_id(self) -> dict[int, Task]:
        """`active()`'s tasks by id (read-only, see `Context.cached`)."""
        return self.ctx.cached("active_by_id", lambda: {t.id: t for t in self.active()[0]},
                               tables=("tasks",))

    def release_orphan_locks(self, workspaces: dict[str, Workspace]) -> None:
        """A lock is held for a plan that ended with changes, until its apply ends. An owner
        that has ended, or is back in `pending` (its plan report was lost), holds nothing."""
        active = self.active_by_id()
        for ws in workspaces.values():
            if not ws.is_locked:
                continue
            owner = None
            if ws.lock_task_id is not None:
                # An active owner is in the shared scan; only an ended one needs a read.
                owner = active.get(ws.lock_task_id) or self.ctx.store.get_task(ws.lock_task_id)
            if owner is None or owner.status not in (TaskStatus.APPLY_PENDING, TaskStatus.RUNNING):
                why = "lock owner has ended" if owner is None or owner.terminal else \
                    "lock owner is back in pending"
                self.set_lock(ws.id, None, why)

    # ------------------------------------------------------------------ dispatch
    def usable_pods(self, pool_id: str) -> list[str]:
        return [name for name, v in sorted(self.mem.pods.items())
                if v.pool_id == pool_id and v.alive and self.agent_for_pod(name) is not None]

    def occupancy(self, tasks: list[Task]) -> dict[str, list[Task]]:
        held: dict[str, list[Task]] = {}
        for t in tasks:
            if t.k8s_pod_name and t.status in (TaskStatus.RUNNING, TaskStatus.APPLY_PENDING):
                held.setdefault(t.k8s_pod_name, []).append(t)
        return held

    def free_slot(self, pod: str, task: Task, held: dict[str, list[Task]]) -> int | None:
        on_pod = [t for t in held.get(pod, []) if t.id != task.id]
        used = {t.slot_id for t in on_pod}
        if task.task_type is TaskType.PLAN_AND_APPLY:
            if (any(t.task_type is TaskType.PLAN_AND_APPLY for t in on_pod)
                    or self.runs_let_go_apply(pod, task.id)):
                return None
        else:
            plans = [t for t in on_pod if t.task_type is not TaskType.PLAN_AND_APPLY
                     and t.status is TaskStatus.RUNNING]
            stray = [k for k in self.let_go_types(pod, task.id) if k is not TaskType.PLAN_AND_APPLY]
            if len(plans) + len(stray) >= PLAN_SLOTS:
                return None
        for slot in range(4):
            if slot not in used:
                return slot
        return None

    def let_go(self, task: Task) -> None:
        """`task`'s run, let go of now, may run on in its agent (`let_go_runs`)."""
        self.hold(task.id, task.agent_id or "", task.k8s_pod_name, task.task_type)

    def hold(self, task_id: int, agent_id: str, pod: str, kind: TaskType) -> bool:
        """Hold a run its agent may still run (`let_go_runs`), unless its pod is already
        gone: a run there runs nowhere, and `pod_gone`, which ends a pod's holds, would never
        come again for it (a plan requeued as lost after its pod's removal was held until the
        next restart). Whether it is held now."""
        if pod not in self.mem.pods:
            return False
        self.mem.let_go_runs[(task_id, agent_id)] = (pod, kind, self.ctx.now)
        return True

    def runs_let_go_apply(self, pod: str, task_id: int) -> bool:
        """The pod's agent may still run a plan_and_apply the scheduler let go of (a given-up
        apply, or a run in `let_go_runs` other than `task_id`'s): it has no plan_and_apply
        capacity to give (seed-system.md §2.2)."""
        return (pod in self.given_up_pods()
                or TaskType.PLAN_AND_APPLY in self.let_go_types(pod, task_id))

    def let_go_types(self, pod: str, task_id: int | None = None) -> list[TaskType]:
        """The types of the runs let go of that the pod's agent may still run
        (`let_go_runs`), but `task_id`'s: a new run of a task supersedes its old one."""
        return [kind for (t, _), (p, kind, _) in self.mem.let_go_runs.items()
                if p == pod and t != task_id]

    def runnable(self, tasks: list[Task], workspaces: dict[str, Workspace]) -> list[tuple[Task, str]]:
        """Per workspace, what may start now: its confirmed apply, or its next pending task."""
        out: list[tuple[Task, str]] = []
        by_ws: dict[str, list[Task]] = {}
        for t in tasks:
            by_ws.setdefault(t.workspace_id, []).append(t)
        for ws_id, ws_tasks in sorted(by_ws.items()):
            ws = workspaces.get(ws_id)
            if ws is None or ws.execution_mode is ExecutionMode.LOCAL:
                continue
            for t in ws_tasks:
                if t.status is TaskStatus.APPLY_PENDING and t.confirmed:
                    out.append((t, "apply"))
            pa_active = [t for t in ws_tasks if t.task_type is TaskType.PLAN_AND_APPLY
                         and t.status in ACTIVE_STATUSES]
            first_pa = min(pa_active, key=lambda t: t.id) if pa_active else None
            for t in ws_tasks:
                if t.status is not TaskStatus.PENDING:
                    continue
                # Plans and drift checks change nothing: like speculative plans they run
                # on a locked workspace. A plan_and_apply waits its turn and the lock.
                if t.task_type is TaskType.PLAN_AND_APPLY and (ws.is_locked or t is not first_pa):
                    continue
                out.append((t, "plan"))
        return out

    def backoff_s(self, attempts: int) -> float:
        steps = self.cfg.retry_backoff_s
        return steps[min(attempts - 1, len(steps) - 1)]

    def due(self, task: Task) -> bool:
        return task.attempts == 0 or self.ctx.now - task.updated_at >= self.backoff_s(task.attempts)

    def dispatch_pool(self, pool: Pool, tasks: list[Task], workspaces: dict[str, Workspace],
                      ready: list[tuple[Task, str]]) -> None:
        mine, wanted = self.pool_work(pool.id, tasks, workspaces)
        if not wanted:
            return  # nothing of this pool may start (`ready` holds no more than `wanted`)
        held = self.occupancy(mine)
        usable = self.usable_pods(pool.id)
        for task, action in ready:
            if self.pool_of(task, workspaces) != pool.id:
                continue
            if not self.due(task):
                continue
            if action == "apply" and self.ctx.now - (task.apply_confirmed_at or 0.0) > self.cfg.apply_wait_deadline_s:
                new = self.end_run(task, "no capacity for the apply before the deadline",
                                   slot="apply deadline", unlock="apply deadline passed",
                                   status=TaskStatus.FAILED,
                                   error_message="no agent could take the apply within "
                                   f"{self.cfg.apply_wait_deadline_s:g} s of the confirm")
                if new is not None:
                    # Its workspace's next task may start now, but this pass chose what may
                    # start before: the next one must run, not be skipped as quiet.
                    self.mem.dirty = True
                continue
            choice = None
            prefer = [task.k8s_pod_name] if task.k8s_pod_name in usable else []
            for pod in prefer + [p for p in usable if p not in prefer]:
                if pod == task.k8s_pod_name and task.slot_id is not None:
                    choice = (pod, task.slot_id)
                    break
                slot = self.free_slot(pod, task, held)
                if slot is not None:
                    choice = (pod, slot)
                    break
            if choice is None and task.task_type is TaskType.PLAN_AND_APPLY:
                choice = self.preempt_reservation(task, usable, held, any_age=action == "apply")
            if choice is None:
                self.note_failure(task, action, "no free slot on a pod with a connected agent")
                continue
            self.dispatch(task, action, choice[0], choice[1], held)

    def held_reservation(self, t: Task) -> bool:
        """An unconfirmed plan's reservation within its hold time: kept, and counted as demand."""
        return (t.status is TaskStatus.APPLY_PENDING and not t.confirmed and bool(t.k8s_pod_name)
                and self.ctx.now - (t.completed_at or t.updated_at) < self.cfg.reservation_hold_s)

    def preempt_reservation(self, task: Task, usable: list[str], held: dict[str, list[Task]],
                            *, any_age: bool) -> tuple[str, int] | None:
        """A reservation is a preference, not a lock: a confirmed apply may take the
        plan_and_apply slot of any unconfirmed plan, and a plan that would otherwise wait may
        take one held longer than `reservation_hold_s` (the stored plan can apply on any pod
        once confirmed). Without this, plans nobody confirms hold every pod's plan_and_apply
        slot until their TTL (F11 starvation)."""
        for pod in usable:
            occupants = held.get(pod, [])
            if self.runs_let_go_apply(pod, task.id) or any(
                    t.status is TaskStatus.RUNNING and t.task_type is TaskType.PLAN_AND_APPLY
                    for t in occupants):
                continue
            for victim in occupants:
                if (victim.id != task.id and victim.status is TaskStatus.APPLY_PENDING
                        and not victim.confirmed and (any_age or not self.held_reservation(victim))):
                    if self.cas(victim, "reservation preempted by a confirmed apply",
                                k8s_pod_name="", slot_id=None) is None:
                        return None
                    self.ctx.record(Kind.SLOT_RELEASED, pod=pod, slot=victim.slot_id, task=victim.id,
                                    reason=f"preempted by task {task.id}", data={"was": "reserved"})
                    occupants.remove(victim)
                    slot = self.free_slot(pod, task, held)
                    return (pod, slot) if slot is not None else None
        return None

    def note_failure(self, task: Task, action: str, reason: str) -> None:
        if self.mem.last_failure.get(task.id) == reason:
            return
        self.mem.last_failure[task.id] = reason
        self.ctx.record(Kind.DISPATCH_FAILED, task=task.id, workspace=task.workspace_id,
                        reason=reason, data={"action": action, "retry": "reconcile"})

    def dispatch(self, task: Task, action: str, pod: str, slot: int, held: dict[str, list[Task]]) -> None:
        agent = self.agent_for_pod(pod)
        if agent is None:
            return
        apply = action == "apply"
        new = self.cas(task, f"dispatch {action}", status=TaskStatus.RUNNING,
                       stage=Stage.APPLYING if apply else Stage.PLANNING, agent_id=agent.agent_id,
                       started_at=self.ctx.now, k8s_pod_name=pod, slot_id=slot,
                       fence=task.fence + 1,
                       plan_task_id=task.id if apply else task.plan_task_id)
        if new is None:
            return  # lost the race or the write failed: the next reconcile looks again
        self.mem.last_failure.pop(task.id, None)
        held.setdefault(pod, []).append(new)
        if task.k8s_pod_name != pod:
            self.ctx.record(Kind.SLOT_ASSIGNED, pod=pod, slot=slot, task=task.id,
                            data={"type": task.task_type.value})
        run = RunTask(task.id, task.workspace_id, action, fence=new.fence,
                      plan_digest=new.plan_digest if apply else None, pod=pod, slot=slot,
                      task_type=task.task_type)
        try:
            self.ctx.agents.send_run_task(agent.agent_id, run)
        except AgentSendError as err:
            self.ctx.record(Kind.DISPATCH_FAILED, task=task.id, workspace=task.workspace_id,
                            pod=pod, slot=slot, agent=agent.agent_id, reason=f"send failed: {err}",
                            data={"action": action, "retry": "reconcile"})
            back = (TaskStatus.APPLY_PENDING, Stage.APPLY_PENDING) if apply else (TaskStatus.PENDING, Stage.PENDING)
            self.mem.undelivered[task.id] = new.fence
            self.requeue_or_fail(new, f"send failed: {err}", *back)
            return
        self.ctx.record(Kind.DISPATCH, task=task.id, workspace=task.workspace_id, pod=pod,
                        slot=slot, agent=agent.agent_id, data={"action": action, "fence": new.fence})

    # ------------------------------------------------------------------ capacity
    def pod_busy(self, pod: str, tasks: list[Task] | None = None) -> bool:
        return pod in self.busy_pods(tasks)

    def busy_pods(self, tasks: list[Task] | None = None) -> set[str]:
        """Pods holding a running task or a reservation, or whose agent still runs a given-up
        apply (`given_up_pods`) or any other plan_and_apply run let go of (`let_go_runs`):
        busy pods carry a deletion cost and are never scaled down. Without a state backend a
        cancelled apply is held only as a stray, and at cost 0 a ReplicaSet scale-down could
        pick its pod and kill the apply mid-way. Its plan is held as well: a heartbeat lists
        task ids, not which phase runs."""
        if tasks is None:
            tasks = self.active()[0]
        busy = {t.k8s_pod_name for t in tasks if t.k8s_pod_name
                and t.status in (TaskStatus.RUNNING, TaskStatus.APPLY_PENDING)} | self.given_up_pods()
        if self.mem.let_go_runs:
            busy.update(pod for pod, kind, _ in self.mem.let_go_runs.values()
                        if kind is TaskType.PLAN_AND_APPLY)
        return busy

    @staticmethod
    def pool_of(task: Task, workspaces: dict[str, Workspace]) -> str | None:
        ws = workspaces.get(task.workspace_id)
        return ws.pool_id if ws is not None else None

    def demand(self, pool_id: str, tasks: list[Task] | None = None,
               workspaces: dict[str, Workspace] | None = None) -> int:
        """Pods this pool needs now: one per plan_and_apply that runs or may start (a confirmed
        apply_pending without a slot included, a given-up apply its agent still runs:
        `given_up_pods`, and any other plan_and_apply run let go of: `let_go_runs`), and one
        per 3 plans (stray plans included)."""
        if tasks is None or workspaces is None:
            tasks, workspaces = self.active()
        mine, wanted = self.pool_work(pool_id, tasks, workspaces)
        pa = plans = 0
        for t in mine:
            # A reservation past its hold time is no demand: a plan nobody confirms must not
            # hold a pod up for its whole TTL, and a waiting plan may take its slot.
            if not (t.status is TaskStatus.RUNNING or t.id in wanted or self.held_reservation(t)):
                continue
            if t.task_type is TaskType.PLAN_AND_APPLY:
                pa += 1
            else:
                plans += 1
        # A given-up apply its agent still runs takes a pod, as a running task does: a
        # connected agent has no plan_and_apply slot to give; a cut-off one's pod is kept
        # (not replaced while it may commit) and is a replica an HPA or a Deployment counts,
        # so without this demand it would hold the pool's only replica and starve the rest.
        # So does any other run let go of that its agent may still run (`let_go_runs`), but
        # one of a task now running on that pod again (the new run supersedes it), counted
        # once above: without it a pod held by a stray plan_and_apply is capacity by count
        # and a confirmed apply waits for the stray to end. Only on a pod counted as
        # capacity: a pod that is going, or replaced as unhealthy, is no capacity already.
        mem = self.mem
        strays: list[tuple[str, TaskType]] = []
        if mem.let_go_runs:  # most passes: nothing let go of
            on_pod = {(t.id, t.k8s_pod_name) for t in mine if t.status is TaskStatus.RUNNING}
            strays = [(pod, kind) for (t, _), (pod, kind, _) in mem.let_go_runs.items()
                      if (t, pod) not in on_pod and pod in mem.pods and mem.pods[pod].pool_id == pool_id
                      and self.pod_health(mem.pods[pod]) in ("healthy", "starting")]
        pa += len({pod for pod in self.given_up_pods() if pod in mem.pods
                   and mem.pods[pod].pool_id == pool_id}
                  | {pod for pod, kind in strays if kind is TaskType.PLAN_AND_APPLY})
        plans += sum(1 for _, kind in strays if kind is not TaskType.PLAN_AND_APPLY)
        return max(pa, math.ceil(plans / PLAN_SLOTS))

    def pool_work(self, pool_id: str, tasks: list[Task], workspaces: dict[str, Workspace]
                  ) -> tuple[list[Task], set[int]]:
        """The pool's active tasks and the ids of those that may start now. A pure function
        of the rows: over the rows as stored now, one computation serves until a task or
        workspace is written (read-only, see `Context.cached`)."""
        def compute(ready: list[tuple[Task, str]] | None) -> tuple[list[Task], set[int]]:
            mine = [t for t in tasks if self.pool_of(t, workspaces) == pool_id]
            if ready is None:
                return mine, {t.id for t, _ in self.runnable(mine, workspaces)}
            # What runnable() says of a workspace depends on its own tasks alone, and a
            # workspace is in one pool: the pool's share of the shared scan is the same set.
            return mine, {t.id for t, _ in ready if self.pool_of(t, workspaces) == pool_id}

        current = self.active()
        if tasks is current[0] and workspaces is current[1]:
            return self.ctx.cached(("pool_work", pool_id), lambda: compute(self.ready()),
                                   tables=("tasks", "workspaces"))
        return compute(None)

    def ready(self) -> list[tuple[Task, str]]:
        """runnable() over the active tasks as stored now (read-only, see `Context.cached`)."""
        tasks, workspaces = self.active()
        return self.ctx.cached("ready", lambda: self.runnable(tasks, workspaces),
                               tables=("tasks", "workspaces"))

    def export_metrics(self, pool_id: str) -> dict[str, float]:
        """The demand an HPA scales an "hpa" pool on (the scheduler never fights it)."""
        return {"demand_pods": float(self.demand(pool_id))}

    def scale_pool(self, pool: Pool, tasks: list[Task], workspaces: dict[str, Workspace]) -> None:
        mem = self.mem
        need = self.demand(pool.id, tasks, workspaces)
        desired = min(max(need, pool.min_replicas), pool.max_replicas)
        views = [v for _, v in sorted(mem.pods.items()) if v.pool_id == pool.id]
        if mem.kept_for_runs:  # this pass decides anew (empty but for lost reports)
            mem.kept_for_runs.difference_update(v.name for v in views)
        health = {v.name: self.pod_health(v) for v in views}
        busy_pods = self.busy_pods(tasks)
        for v in views:
            busy = v.name in busy_pods
            if v.busy and not busy:
                v.idle_since = self.ctx.now
            v.busy = busy
            cost = self.cfg.reservation_deletion_cost if busy else 0
            if v.alive and v.cost != cost and pool.manager in ("deployment", "hpa"):
                try:
                    self.ctx.cluster.annotate_pod(v.name, {DELETION_COST: str(cost)})
                    v.cost = cost
                    self.ctx.record(Kind.POD_ANNOTATE, pod=v.name,
                                    data={"annotations": {DELETION_COST: str(cost)}})
                except ClusterError:
                    mem.dirty = True  # not written: try again next pass
        # A pod whose agent is gone is no capacity: replace it, once no run on it is left
        # to settle. An agent that is only cut off from us works on, and its apply may be
        # in doubt for minutes: deleting its pod would kill the apply the reconcile waits
        # for. Until the run is settled the pod stays; it is not counted as capacity, so a
        # replacement is created all the same. The same holds for an apply given up on while
        # its agent works on (cancelled, or past the run timeout), until `settle_given_up`
        # settles it (committed, or not committed with its lease gone).
        running = {t.k8s_pod_name for t in tasks
                   if t.k8s_pod_name and t.status is TaskStatus.RUNNING} | self.given_up_pods()
        for v in views:
            if health[v.name] == "unhealthy" and v.name not in running:
                self.delete_pod(v.name, "agent unhealthy: replace the pod")
        capacity = [v for v in views if health[v.name] in ("healthy", "starting")]
        if pool.manager == "hpa":
            return  # the HPA owns the count; it reads export_metrics()
        if pool.manager == "deployment":
            pods = frozenset(v.name for v in views if v.alive)
            if desired != len(capacity) and mem.replicas_set.get(pool.id) != (desired, pods) and (
                    need > len(capacity) or not any(v.name in busy_pods for v in capacity[desired:])):
                try:
                    self.ctx.cluster.scale(pool.id, desired)
                    mem.replicas_set[pool.id] = (desired, pods)
                    self.ctx.record(Kind.SCALE, reason=f"demand {need}",
                                    data={"pool": pool.id, "replicas": desired})
                except ClusterError:
                    mem.dirty = True
            return
        if desired > len(capacity):
            for _ in range(desired - len(capacity)):
                mem.pod_seq += 1
                name = f"unstuck-{pool.id}-{int(self.ctx.now)}-{mem.pod_seq}"
                try:
                    self.ctx.cluster.create_pod(pool.id, name)
                except ClusterError:
                    mem.dirty = True
                    break
                mem.pods[name] = PodView(name, pool.id, True, self.ctx.now, self.ctx.now)
                self.ctx.record(Kind.POD_CREATE, pod=name, reason=f"demand {need}",
                                data={"pool": pool.id, "cause": "reference demand"})
        elif desired < len(capacity):
            for v in capacity:
                if (health[v.name] == "healthy" and v.name not in busy_pods
                        and self.ctx.now - v.idle_since >= self.cfg.idle_pod_cooldown_s):
                    if self.agent_working(v.name):
                        mem.kept_for_runs.add(v.name)
                        continue
                    self.delete_pod(v.name, f"scale down to {desired}", scale_down=True)
                    mem.dirty = True  # one pod per pass: the next pass may take another
                    break

    def given_up_pods(self) -> set[str]:
        """Pods whose agent may still run an apply the scheduler gave up on: the run is in
        `given_up_applies` (the state has not settled it: its lease is live, or the backend
        cannot be read) and the agent's last heartbeat lists it, or the agent the run was
        sent to has sent no heartbeat since the give-up (it was cut off before one listed the
        run, or it reconnected, or we restarted: nothing says the run has ended). The task
        has ended in the store, yet the agent's plan_and_apply capacity is taken
        (seed-system.md §2.2: `!apply_running`) and deleting the pod would interrupt the
        apply mid-way."""
        mem = self.mem
        if not mem.given_up_applies:
            return set()
        ids = tuple(sorted(mem.given_up_applies))

        def read() -> dict[str, float]:  # agent -> its latest give-up
            out: dict[str, float] = {}
            for task in filter(None, map(self.ctx.store.get_task, ids)):
                if task.agent_id:
                    out[task.agent_id] = max(out.get(task.agent_id, 0.0), task.completed_at or 0.0)
            return out

        given = self.ctx.cached(("given_up_agents", ids), read, tables=("tasks",))
        return {v.pod for v in mem.agents.values()
                if not mem.given_up_applies.isdisjoint(v.current_tasks) or (
                    v.agent_id in given and (v.heartbeat_at is None or v.heartbeat_at <= given[v.agent_id]))}

    def agent_working(self, pod: str) -> bool:
        """The pod's connected agent still lists a run in its last heartbeat, though the
        store may hold nothing for the pod: a run whose task ended without its report (an
        apply cancelled while its agent was out of reach, which committed after all and whose
        report a database outage holds back). The agent lists it until the report is
        delivered; deleting the pod on scale-down would lose the report, and with it the
        `late_commit` that records the change as made."""
        return any(self.mem.agents[a].connected and self.mem.agents[a].current_tasks
                   for a in self.mem.pod_agents.get(pod, ()))

    def delete_pod(self, name: str, cause: str, *, scale_down: bool = False) -> None:
        try:
            self.ctx.cluster.delete_pod(name, scale_down=scale_down)
        except ClusterError:
            self.mem.dirty = True
            return
        view = self.mem.pods.get(name)
        if view is not None:
            view.alive = False
        self.ctx.record(Kind.POD_DELETE, pod=name, data={"cause": cause})
