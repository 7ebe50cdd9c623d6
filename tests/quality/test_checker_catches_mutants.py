"""The checker's power to see a bug, itself under test.

The reference passing every invariant on every scenario means something only if the checker
would fail a reference that had the bugs the scenarios are about. So each mutant below is a
realistic bug of the reference, one of the failure paths F1-F11 of
shared/specs/seed-system.md, planted by monkeypatching `ReferencePolicy` for one test: the
world and the checker run for real on a shipped scenario, and the checker must name the
invariant that the bug breaks. A change to the checker that blinds it to one of these bugs
(a narrowed rule, an exemption too wide, a refactor that drops a case) fails here, although
every history the suite ships would still pass. A mutation audit of the reference found two
such blind spots (`no_unrecorded_apply`; the 423 refusals `no_wedged_workspace` reads).

Each mutant adds to `bent` the task or workspace whose handling it changed, so the test also
knows that the mutant fired and that the checker blamed the right one. The control test runs
the same seeds unmutated: a violation there would be the reference's bug, not the mutant's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from scheduler import events as ev
from scheduler.history import Kind
from scheduler.model import ExecutionMode, Stage, TaskStatus, TaskType
from scheduler.ports import AgentSendError, RunTask
from scheduler.variants.reference import ReferencePolicy
from sim import runner
from sim.config import UserConfig, WorkspaceGroup, WorldConfig, fixed
from tests.unit.sim.worlds import config
from unstuck import checker
from unstuck.scenario import load

Patch = Callable[[pytest.MonkeyPatch, set], None]


# ---------------------------------------------------------------- the mutants
def reservation_lost_apply_never_dispatched(mp: pytest.MonkeyPatch, bent: set) -> None:
    """01, F1 (incident 601): only an apply that still holds its reserved pod may start; one
    whose reservation was dropped with its pod waits forever."""
    runnable = ReferencePolicy.runnable

    def mutant(self, tasks, workspaces):
        ready = runnable(self, tasks, workspaces)
        dropped = {t.id for t, action in ready if action == "apply" and not t.k8s_pod_name}
        bent.update(dropped)
        return [(t, action) for t, action in ready if t.id not in dropped]

    mp.setattr(ReferencePolicy, "runnable", mutant)


def lost_apply_ignored(mp: pytest.MonkeyPatch, bent: set) -> None:
    """02, F8: an apply whose agent is lost is left `running`; only a run never delivered is
    still rolled back."""
    check_running = ReferencePolicy.check_running

    def mutant(self, task):
        if task.stage == Stage.APPLYING and self.mem.undelivered.get(task.id) != task.fence:
            if self.agent_lost(task.agent_id):
                bent.add(task.id)
            return
        check_running(self, task)

    mp.setattr(ReferencePolicy, "check_running", mutant)


def lost_apply_retried(mp: pytest.MonkeyPatch, bent: set) -> None:
    """03, F8: an apply whose agent is lost, and that the state does not show committed, is
    put back in `apply_pending` and applied again, instead of failed."""
    cas = ReferencePolicy.cas

    def mutant(self, task, reason, **changes):
        if reason.startswith(("apply outcome unknown: ", "apply did not commit: ")):
            bent.add(task.id)
            why = reason.partition(": ")[2]
            self.requeue_or_fail(task, "apply lost, retrying: " + why,
                                 TaskStatus.APPLY_PENDING, Stage.APPLY_PENDING)
            return None  # and the lock stays with it
        return cas(self, task, reason, **changes)

    mp.setattr(ReferencePolicy, "cas", mutant)


def second_confirm_resends_apply(mp: pytest.MonkeyPatch, bent: set) -> None:
    """04, F7 (G5): a second click on Confirm while the apply runs re-sends it "to make sure the
    agent has it" (the incident's manual workaround, built in)."""
    on_confirm_apply = ReferencePolicy.on_confirm_apply

    def mutant(self, e):
        task = self.ctx.store.get_task(e.task_id)
        if (task is None or task.status is not TaskStatus.RUNNING
                or task.stage != Stage.APPLYING or not task.confirmed or not task.agent_id):
            return on_confirm_apply(self, e)
        run = RunTask(task.id, task.workspace_id, "apply", fence=task.fence,
                      plan_digest=task.plan_digest, pod=task.k8s_pod_name, slot=task.slot_id,
                      task_type=task.task_type)
        try:
            self.ctx.agents.send_run_task(task.agent_id, run)
        except AgentSendError:
            pass
        else:
            bent.add(task.id)
            self.ctx.record(Kind.DISPATCH, task=task.id, workspace=task.workspace_id,
                            pod=task.k8s_pod_name, slot=task.slot_id, agent=task.agent_id,
                            data={"action": "apply", "fence": task.fence})
        return ev.Outcome(True, 200, task_id=task.id, message="Apply queued")

    mp.setattr(ReferencePolicy, "on_confirm_apply", mutant)


def apply_without_confirm(mp: pytest.MonkeyPatch, bent: set) -> None:
    """05: a plan with changes is applied whether or not anyone confirmed it."""
    runnable = ReferencePolicy.runnable

    def mutant(self, tasks, workspaces):
        ready = runnable(self, tasks, workspaces)
        for t in tasks:
            ws = workspaces.get(t.workspace_id)
            if (t.status is TaskStatus.APPLY_PENDING and not t.confirmed and t.has_changes
                    and ws is not None and ws.execution_mode is not ExecutionMode.LOCAL):
                bent.add(t.id)
                ready.append((t, "apply"))
        return ready

    mp.setattr(ReferencePolicy, "runnable", mutant)


def unlock_at_apply_dispatch(mp: pytest.MonkeyPatch, bent: set) -> None:
    """06, F7's outcome: the lock is released once the apply is sent ("the workspace can take
    new work"), and the next plan_and_apply no longer waits for the one before it."""
    runnable, dispatch = ReferencePolicy.runnable, ReferencePolicy.dispatch

    def mutant_runnable(self, tasks, workspaces):
        ready = runnable(self, tasks, workspaces)
        queued = {t.id for t, _ in ready}
        for t in tasks:
            ws = workspaces.get(t.workspace_id)
            if (t.status is TaskStatus.PENDING and t.task_type is TaskType.PLAN_AND_APPLY
                    and t.id not in queued and ws is not None and not ws.is_locked
                    and ws.execution_mode is not ExecutionMode.LOCAL):
                ready.append((t, "plan"))
        return ready

    def mutant_dispatch(self, task, action, pod, slot, held):
        dispatch(self, task, action, pod, slot, held)
        sent = self.ctx.store.get_task(task.id)
        if (action == "apply" and sent.status is TaskStatus.RUNNING
                and self.mem.undelivered.get(task.id) != sent.fence):
            bent.add(task.workspace_id)
            self.unlock_if_owner(sent, "apply dispatched")

    mp.setattr(ReferencePolicy, "runnable", mutant_runnable)
    mp.setattr(ReferencePolicy, "dispatch", mutant_dispatch)


def restart_fails_running_tasks(mp: pytest.MonkeyPatch, bent: set) -> None:
    """08, F5 (the seed's CleanupOrphanTasks): after a restart every `running` task is marked
    failed, while its agent goes on and may commit the apply."""
    on_restart = ReferencePolicy.on_restart

    def mutant(self, e):
        on_restart(self, e)
        for task in self.ctx.store.list_tasks(statuses=[TaskStatus.RUNNING]):
            bent.add(task.id)
            self.cas(task, "orphaned by scheduler restart", status=TaskStatus.FAILED,
                     completed_at=self.ctx.now, error_message="orphaned by scheduler restart")

    mp.setattr(ReferencePolicy, "on_restart", mutant)


def failed_confirm_write_ignored(mp: pytest.MonkeyPatch, bent: set) -> None:
    """09, F6's symptom: a confirm whose write failed is answered 200 "Apply queued" all the same; the
    user waits for an apply the store never heard of."""
    on_confirm_apply = ReferencePolicy.on_confirm_apply

    def mutant(self, e):
        out = on_confirm_apply(self, e)
        if out.status != 503:
            return out
        task = self.ctx.store.get_task(e.task_id)
        bent.add(task.id)
        self.ctx.record(Kind.TASK_CONFIRMED, task=task.id, workspace=task.workspace_id,
                        data={"user": e.user, "digest": e.plan_digest})
        self.kick()
        return ev.Outcome(True, 200, task_id=task.id, message="Apply queued")

    mp.setattr(ReferencePolicy, "on_confirm_apply", mutant)


def _lock_kept(mp: pytest.MonkeyPatch, bent: set, unlock_reason: str, status: TaskStatus) -> None:
    """The unlock for `unlock_reason` is skipped, and the orphan-lock sweep, the safety net
    that would release it at the next reconcile, skips owners that ended in `status`."""
    unlock_if_owner, set_lock = ReferencePolicy.unlock_if_owner, ReferencePolicy.set_lock

    def mutant_unlock(self, task, reason):
        if reason == unlock_reason:
            bent.add(task.workspace_id)
            return
        unlock_if_owner(self, task, reason)

    def mutant_set_lock(self, workspace_id, owner, reason):
        if owner is None and reason == "lock owner has ended":
            ws = self.ctx.store.get_workspace(workspace_id)
            held_by = self.ctx.store.get_task(ws.lock_task_id) if ws.lock_task_id else None
            if held_by is not None and held_by.status is status:
                return False
        return set_lock(self, workspace_id, owner, reason)

    mp.setattr(ReferencePolicy, "unlock_if_owner", mutant_unlock)
    mp.setattr(ReferencePolicy, "set_lock", mutant_set_lock)


def no_unlock_on_cancel(mp: pytest.MonkeyPatch, bent: set) -> None:
    """10, F8's wedge, by a cancel: a cancelled task keeps its workspace's lock."""
    _lock_kept(mp, bent, "task cancelled", TaskStatus.CANCELLED)


def failed_unlock_write_ignored(mp: pytest.MonkeyPatch, bent: set) -> None:
    """12, F4's ignored save, on the lock: a lock write that failed is logged and recorded as
    done, and there is no orphan-lock sweep to release the lock later. The history says
    unlocked; users get 423 (F8's wedge)."""
    set_lock = ReferencePolicy.set_lock

    def mutant(self, workspace_id, owner, reason):
        before = self.ctx.store.get_workspace(workspace_id)
        if set_lock(self, workspace_id, owner, reason) or before is None:
            return before is not None
        bent.add(workspace_id)  # the write failed: carry on as if it had landed
        if owner is not None:
            self.ctx.record(Kind.LOCK_ACQUIRED, workspace=workspace_id, task=owner.id,
                            reason=f"Locked for apply (task #{owner.id})", data={"by": "system"})
        else:
            self.ctx.record(Kind.LOCK_RELEASED, workspace=workspace_id,
                            task=before.lock_task_id, reason=reason)
        return True

    mp.setattr(ReferencePolicy, "set_lock", mutant)
    mp.setattr(ReferencePolicy, "release_orphan_locks", lambda self, workspaces: None)


def dispatch_inflight_never_cleared(mp: pytest.MonkeyPatch, bent: set) -> None:
    """13, F3: an in-memory "dispatch in flight" guard against double dispatch, cleared only
    when the dispatch write lands; a task whose write failed is never dispatched again."""
    dispatch_pool, dispatch = ReferencePolicy.dispatch_pool, ReferencePolicy.dispatch

    def inflight(self) -> set[int]:
        if not hasattr(self.mem, "inflight"):
            self.mem.inflight = set()  # in memory: a restart forgets it
        return self.mem.inflight

    def mutant_dispatch_pool(self, pool, tasks, workspaces, ready):
        guarded = inflight(self)
        dispatch_pool(self, pool, tasks, workspaces, [r for r in ready if r[0].id not in guarded])

    def mutant_dispatch(self, task, action, pod, slot, held):
        if self.agent_for_pod(pod) is not None:
            inflight(self).add(task.id)
        dispatch(self, task, action, pod, slot, held)
        if self.ctx.store.get_task(task.id).version != task.version:
            inflight(self).discard(task.id)
        elif task.id in inflight(self):
            bent.add(task.id)

    mp.setattr(ReferencePolicy, "dispatch_pool", mutant_dispatch_pool)
    mp.setattr(ReferencePolicy, "dispatch", mutant_dispatch)


def lost_apply_keeps_lock(mp: pytest.MonkeyPatch, bent: set) -> None:
    """15, F8: an apply failed as its agent was lost (it did not commit) keeps its
    workspace's lock, and the sweep skips failed owners."""
    _lock_kept(mp, bent, "apply did not commit", TaskStatus.FAILED)


# ---------------------------------------------------------------- the cases
def cancelling_users() -> WorldConfig:
    """No shipped scenario but mixed-chaos-day (too long here) has users who cancel: a user
    who cancels every plan, then a second task of the workspace."""
    return config(users=UserConfig(confirm=fixed(20.0), cancel=1.0),
                  workload=(WorkspaceGroup(names=("ws-1",), at=(5.0, 400.0)),))


def given_up_apply_holds_nothing(mp: pytest.MonkeyPatch, bent: set) -> None:
    """13 (session 17, round 3): an apply given up past the run timeout while its agent works
    on does not hold the workspace's next plan_and_apply, which plans at once; the old apply
    commits after that plan, and the stale plan is confirmed and applied."""
    settle_given_up = ReferencePolicy.settle_given_up

    def mutant(self):
        held = settle_given_up(self)
        bent.update(held)
        return set()

    mp.setattr(ReferencePolicy, "settle_given_up", mutant)


def plan_and_apply_beside_another(mp: pytest.MonkeyPatch, bent: set) -> None:
    """14, §2.2 (`!apply_running`): a plan_and_apply goes to any pod with a free slot, even one
    whose agent already runs or holds another plan_and_apply."""
    free_slot = ReferencePolicy.free_slot

    def mutant(self, pod, task, held):
        slot = free_slot(self, pod, task, held)
        if slot is None and task.task_type is TaskType.PLAN_AND_APPLY:
            used = {t.slot_id for t in held.get(pod, []) if t.id != task.id}
            slot = next((s for s in range(4) if s not in used), None)
            if slot is not None:
                bent.add(task.id)
        return slot

    mp.setattr(ReferencePolicy, "free_slot", mutant)


def given_up_apply_frees_its_agent(mp: pytest.MonkeyPatch, bent: set) -> None:
    """15 (session 18, rounds 1 and 5): an agent still running an apply the scheduler gave
    up on (past the run timeout) counts as free, so another workspace's plan_and_apply goes to
    it beside that apply."""
    given_up_pods, free_slot = ReferencePolicy.given_up_pods, ReferencePolicy.free_slot

    def mutant(self, pod, task, held):
        slot = free_slot(self, pod, task, held)
        if slot is not None and task.task_type is TaskType.PLAN_AND_APPLY and pod in given_up_pods(self):
            bent.add(task.id)
        return slot

    mp.setattr(ReferencePolicy, "given_up_pods", lambda self: set())
    mp.setattr(ReferencePolicy, "free_slot", mutant)


@dataclass(frozen=True)
class Case:
    mutant: Patch
    world: str | Callable[[], WorldConfig]  # a scenario file, or a small world
    seeds: tuple[int, ...]
    invariants: tuple[str, ...]  # each must name a bent task or workspace in some seed
    says: str = ""  # and say this, where the invariant has more than one way to catch it

    @property
    def id(self) -> str:
        return self.mutant.__name__

    def config(self) -> WorldConfig:
        return load(self.world).world() if isinstance(self.world, str) else self.world()


INCIDENT_601 = "scenarios/incident-601.yaml"
NODE_LOSS = "scenarios/node-loss-mid-apply.yaml"
POD_KILL = "scenarios/pod-kill-reserved-slot.yaml"
DOUBLE_CONFIRM = "scenarios/double-confirm.yaml"
RESTART = "scenarios/scheduler-restart.yaml"
DB_WRITES = "scenarios/db-write-failures.yaml"
STALE_PLAN = "scenarios/adversarial/timed-out-apply-stale-plan.yaml"
STUCK = ("apply_pending_bound", "no_wedged_workspace", "drained")

CASES = [
    Case(reservation_lost_apply_never_dispatched, INCIDENT_601, (0, 1, 2), STUCK),
    # Not on node-loss-mid-apply: its nodes heal, and a frozen agent past its state-lock
    # lease reports its own failure on waking, which ends the task anyway. A killed pod's
    # agent never reports.
    Case(lost_apply_ignored, POD_KILL, (5, 6, 11), ("no_lost_task", "drained")),
    Case(lost_apply_retried, NODE_LOSS, (0, 1, 2), ("at_most_one_apply_per_confirmation",)),
    Case(second_confirm_resends_apply, DOUBLE_CONFIRM, (0, 1, 2),
         ("at_most_one_apply_per_confirmation",)),
    Case(apply_without_confirm, INCIDENT_601, (0, 1, 2), ("no_apply_without_confirmation",)),
    Case(unlock_at_apply_dispatch, RESTART, (0, 1, 2), ("per_workspace_serialization",)),
    # These three are caught in half the seeds or fewer: where a restart meets a running
    # apply, where a confirm meets a failing write, where a dispatch does.
    Case(restart_fails_running_tasks, RESTART, (0, 1, 2), ("no_unrecorded_apply",)),
    Case(failed_confirm_write_ignored, DB_WRITES, (5, 6, 7), STUCK),
    Case(dispatch_inflight_never_cleared, DB_WRITES, (0, 6, 7), STUCK),
    Case(no_unlock_on_cancel, cancelling_users, (0, 1), ("no_wedged_workspace",)),
    # Seeds where nothing but the 423 refusals show the lock the history says is gone.
    Case(failed_unlock_write_ignored, DB_WRITES, (1, 2, 15), ("no_wedged_workspace",),
         says="refused as locked"),
    Case(lost_apply_keeps_lock, NODE_LOSS, (0, 1, 2), ("no_wedged_workspace",)),
    Case(given_up_apply_holds_nothing, STALE_PLAN, (0, 2, 4), ("no_stale_plan_apply",)),
    # Caught by agent_capacity alone: every other invariant holds in these seeds.
    Case(plan_and_apply_beside_another, "scenarios/pod-kill-reserved-slot.yaml", (0, 1),
         ("agent_capacity",)),
    Case(given_up_apply_frees_its_agent, "scenarios/adversarial/given-up-apply-reconnect.yaml",
         (0, 1), ("agent_capacity",)),
]


def judged(case: Case, bent: set) -> dict[int, tuple[checker.Verdict, set]]:
    """Each seed's verdict, with what the mutant bent in that seed (ids repeat across seeds)."""
    cfg, out = case.config(), {}
    for seed in case.seeds:
        bent.clear()
        out[seed] = checker.check(runner.run(cfg, "reference", seed).rows), set(bent)
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_checker_catches_the_mutant(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    bent: set = set()
    case.mutant(monkeypatch, bent)
    seeds = judged(case, bent)
    assert any(b for _, b in seeds.values()), (
        f"{case.id} never fired on seeds {case.seeds}: pick seeds that reach its bug")
    for invariant in case.invariants:
        blamed = [v for verdict, b in seeds.values() for v in verdict.violations
                  if v.invariant == invariant and (v.task in b or v.workspace in b)
                  and case.says in v.message]
        assert blamed, (
            f"the checker no longer sees {case.id} as {invariant} on {case.world} seeds "
            f"{case.seeds}; it found {[(s, v.invariant, v.task, v.workspace, v.message) for s, (verdict, _) in seeds.items() for v in verdict.violations]}; "
            f"the mutant bent {[sorted(b, key=str) for _, b in seeds.values()]}")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_same_seeds_pass_without_the_mutant(case: Case) -> None:
    for seed, (verdict, _) in judged(case, set()).items():
        assert verdict.ok, (seed, [(v.invariant, v.message) for v in verdict.violations])
