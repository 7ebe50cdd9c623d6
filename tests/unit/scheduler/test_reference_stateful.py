"""Hypothesis stateful test of the reference scheduler over random interleavings.

Rules: creates, confirms (double confirms included), cancels, pod kills, agent
disconnects and reconnects, paused agents that wake up (or not), store write failures,
scheduler restarts, and the passage of time. After every step the safety invariants hold;
at teardown the world heals, time runs past the bound, and the liveness invariants hold.

The machine is a thin shell over `scheduler.testing.Script`; the invariants are plain
functions over the store and the history, so a failing example reads as a script.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from scheduler import events as ev
from scheduler.history import Kind
from scheduler.model import Pool, TaskStatus, TaskType
from scheduler.testing import Script

WORKSPACES = ("ws-1", "ws-2", "ws-3")
BOUND_S = 2400.0  # apply wait deadline 1800 s + retries and start-up
ACTIVE = (TaskStatus.RUNNING, TaskStatus.APPLY_PENDING)


def applies_per_epoch_ok(events) -> str | None:
    """At most one apply per plan, and each after a confirmation (with a user) of that plan.
    A plan ends running -> apply_pending from the planning stage; an apply sent back unclaimed
    goes the same way from the applying stage, and stays confirmed."""
    confirmed: dict[int, bool] = {}
    applied: dict[int, int] = {}
    stage: dict[int, str] = {}
    for e in events:
        if e.kind is Kind.TASK_TRANSITION:
            was, stage[e.task] = stage.get(e.task), e.data.get("stage")
            if e.to_status == "apply_pending" and e.from_status == "running" and was == "planning":
                confirmed[e.task], applied[e.task] = False, 0
        elif e.kind is Kind.TASK_CONFIRMED and e.data.get("user"):
            confirmed[e.task] = True
        elif e.kind is Kind.EXEC_INVOKE and e.data.get("action") == "apply":
            if not confirmed.get(e.task):
                return f"apply of task {e.task} at t={e.t} without a confirmation"
            applied[e.task] = applied.get(e.task, 0) + 1
            if applied[e.task] > 1:
                return f"task {e.task} applied twice for one confirmation (t={e.t})"
    return None


class ReferenceWorld(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.s = Script("reference", workspaces=WORKSPACES, agent_connect_s=20.0,
                        pool=Pool("pool-1", min_replicas=1, max_replicas=3),
                        plan_s=40.0, apply_s=40.0)
        self.t = 0.0
        self.created = 0
        self.lock_orphan_since: dict[str, float] = {}
        self.step(1.0)

    def step(self, dt: float) -> None:
        self.t += dt
        self.s.run(self.t)

    def task_ids(self) -> list[int]:
        return [t.id for t in self.s.store.list_tasks()]

    # ------------------------------------------------------------------ rules
    @rule(ws=st.sampled_from(WORKSPACES), pa=st.booleans())
    def create(self, ws: str, pa: bool) -> None:
        kind = TaskType.PLAN_AND_APPLY if pa else TaskType.PLAN
        out = self.s.send(ev.TaskCreated(ws, kind, "alice"))
        if out.ok:
            self.created += 1
        self.step(0.5)

    @rule(i=st.integers(0, 30), double=st.booleans())
    def confirm(self, i: int, double: bool) -> None:
        ids = self.task_ids()
        if not ids:
            return
        task_id = ids[i % len(ids)]
        self.s.confirm(self.t, task_id)
        if double:
            self.s.confirm(self.t + 0.1, task_id)
        self.step(0.5)

    @rule(i=st.integers(0, 30))
    def cancel(self, i: int) -> None:
        ids = self.task_ids()
        if ids:
            self.s.send(ev.CancelTask(ids[i % len(ids)], "alice"))
        self.step(0.5)

    @rule(i=st.integers(0, 10))
    def kill_pod(self, i: int) -> None:
        pods = sorted(self.s.pods)
        if pods:
            self.s.kill_pod(self.t, pods[i % len(pods)])
        self.step(0.5)

    @rule(i=st.integers(0, 10), back=st.sampled_from([None, 5.0, 90.0]))
    def disconnect_agent(self, i: int, back: float | None) -> None:
        agents = sorted(a for a, w in self.s.agents.items() if w.connected)
        if agents:
            self.s.disconnect_agent(self.t, agents[i % len(agents)], reconnect_after=back)
        self.step(0.5)

    @rule(i=st.integers(0, 10), wake=st.sampled_from([None, 30.0, 400.0]))
    def pause_agent(self, i: int, wake: float | None) -> None:
        agents = sorted(a for a, w in self.s.agents.items() if not w.dead and not w.paused)
        if agents:
            self.s.pause_agent(self.t, agents[i % len(agents)], resume_after=wake)
        self.step(0.5)

    @rule(n=st.integers(1, 3))
    def fail_writes(self, n: int) -> None:
        self.s.fail_writes(self.t, n)
        self.step(0.5)

    @rule()
    def restart(self) -> None:
        self.s.restart_scheduler(self.t)
        self.step(0.5)

    @rule(dt=st.sampled_from([1.0, 5.0, 15.0, 60.0, 300.0]))
    def wait(self, dt: float) -> None:
        self.step(dt)

    # ------------------------------------------------------------------ safety
    @invariant()
    def no_unconfirmed_or_double_apply(self) -> None:
        problem = applies_per_epoch_ok(self.s.history.events)
        assert problem is None, problem

    @invariant()
    def one_active_plan_and_apply_per_workspace(self) -> None:
        for ws in WORKSPACES:
            active = [t.id for t in self.s.store.list_tasks(workspace_id=ws, statuses=ACTIVE)
                      if t.task_type is TaskType.PLAN_AND_APPLY]
            assert len(active) <= 1, f"{ws} has several active plan_and_apply tasks: {active}"

    @invariant()
    def no_lost_task(self) -> None:
        assert len(self.s.store.list_tasks()) == self.created

    @invariant()
    def locks_have_live_owners(self) -> None:
        for ws in self.s.store.list_workspaces():
            owner = self.s.store.get_task(ws.lock_task_id) if ws.lock_task_id is not None else None
            orphan = ws.is_locked and (owner is None or owner.terminal)
            if not orphan:
                self.lock_orphan_since.pop(ws.id, None)
                continue
            since = self.lock_orphan_since.setdefault(ws.id, self.t)
            assert self.t - since <= 30.0, f"{ws.id} locked by ended task {ws.lock_task_id} since {since}"

    # ------------------------------------------------------------------ liveness
    def teardown(self) -> None:
        s = self.s
        s.store.heal()
        for a in list(s.agents.values()):  # every frozen node heals
            if a.paused and not a.dead:
                s.at(self.t, lambda a=a: s._resume(a))
        self.step(BOUND_S)
        tasks = s.store.list_tasks()
        waiting_on_human = {t.workspace_id: t.id for t in tasks
                            if t.status is TaskStatus.APPLY_PENDING and not t.confirmed}
        for t in tasks:
            if t.status is TaskStatus.APPLY_PENDING:
                assert not t.confirmed, f"task {t.id} confirmed at {t.apply_confirmed_at} still apply_pending at {self.t}"
            elif t.status is TaskStatus.PENDING and waiting_on_human.get(t.workspace_id, t.id) < t.id:
                pass  # queued behind a plan that awaits a human's confirm: waiting on a human too
            else:
                assert t.terminal, f"task {t.id} still {t.status.value} at {self.t}"
        for ws in s.store.list_workspaces():
            if ws.is_locked:
                owner = s.store.get_task(ws.lock_task_id)
                assert owner is not None and owner.status is TaskStatus.APPLY_PENDING and not owner.confirmed, \
                    f"{ws.id} locked without a live owner ({ws.lock_task_id})"


ReferenceWorld.TestCase.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
TestReferenceWorld = ReferenceWorld.TestCase
