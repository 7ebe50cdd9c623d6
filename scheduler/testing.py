"""A tiny deterministic world for scripted, clock-driven tests of the scheduler core.

Like kopf's `testing.py`: public, small, no SimPy. A `Script` owns a time-ordered queue
(ties broken by insertion order), a bare-pod cluster, agents that connect some time after
their pod starts, heartbeat every 10 s, claim each run first when the variant's agent does
(`agent_claims_runs`), run plans and applies for fixed durations and report the way the
seed's agents do (HTTP status report, then the C&C notice). Tests schedule user
actions and faults at exact times and assert exact outcomes; nothing sleeps.

The SimPy world in `sim/` is the full model (Kubernetes timings, distributions, random
faults); this one exists so that each failure path of the spec reads as a short table of
`(t, action)` rows.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scheduler import events as ev
from scheduler import heartbeat, reports
from scheduler.core import Context, Scheduler
from scheduler.history import History, HistoryEvent, Kind, Source
from scheduler.model import PodInfo, Pool, Task, TaskStatus, TaskType, Workspace
from scheduler.ports import AgentSendError, ClusterError, RunTask
from scheduler.settings import Settings
from scheduler.stores.memory import MemoryStore
from scheduler.variants import policy_class

# The agent's C&C reconnect backoff (seed-system.md §8; sim/config.py AgentConfig has the same).
RECONNECT_BASE_S = 2.0
RECONNECT_CAP_S = 60.0


@dataclass
class Execution:
    run: RunTask
    agent_id: str
    ends_at: float
    remaining: float = 0.0
    generation: int = 0


@dataclass
class WorldAgent:
    agent_id: str
    pod: str
    pool_id: str
    connected: bool = False
    paused: bool = False
    dead: bool = False
    runs: dict[int, Execution] = field(default_factory=dict)
    unreported: dict[int, int] = field(default_factory=dict)  # our agent: task -> reports due
    queued: list[RunTask] = field(default_factory=list)  # sent while frozen: unread in its socket
    backoff: float = 0.0  # the reconnect backoff after a refused connect (§8: 2 s doubling to 60 s)


class Script:
    """A scripted world around one scheduler. Times are seconds from 0."""

    def __init__(
        self,
        variant: str,
        *,
        settings: Settings | None = None,
        seed: int = 0,
        pool: Pool | None = None,
        workspaces: tuple[str, ...] | dict[str, str] = ("ws-mb7m9ii5ey",),
        other_pools: tuple[Pool, ...] = (),
        agent_connect_s: float | None = 30.0,
        plan_s: float = 60.0,
        apply_s: float = 60.0,
        has_changes: bool = True,
        notice_after_s: float = 0.05,
    ) -> None:
        self.now = 0.0
        self._queue: list[tuple[float, int, Callable[[], Any]]] = []
        self._seq = itertools.count()
        self.history = History()
        self.store = MemoryStore()
        self.pool = pool or Pool("pool-1", min_replicas=1, max_replicas=4)
        for p in (self.pool, *other_pools):
            self.store.put_pool(p)
        if not isinstance(workspaces, dict):
            workspaces = {ws: self.pool.id for ws in workspaces}
        for ws, pool_id in workspaces.items():
            self.store.put_workspace(Workspace(ws, pool_id=pool_id))
        self.pods: dict[str, PodInfo] = {}
        self.agents: dict[str, WorldAgent] = {}
        self.agent_connect_s = agent_connect_s
        self.plan_s, self.apply_s, self.has_changes = plan_s, apply_s, has_changes
        self.notice_after_s = notice_after_s
        self.fail_sends = 0
        self.listing_fails_until = -1.0
        self.fail_writes_after_send = 0
        self.state_lock: dict[str, tuple[int, int]] = {}
        self.scheduler_epoch = 0
        self.outcomes: list[tuple[float, Any, ev.Outcome]] = []
        ctx = Context(store=self.store, cluster=_Cluster(self), agents=_Agents(self),
                      timer=_Timer(self), history=self.history, rng=random.Random(seed),
                      settings=settings or Settings())
        policy = policy_class(variant)
        self.agent_reports: str = policy.agent_reports
        self.reports_until_delivered = self.agent_reports == reports.UNTIL_DELIVERED
        self.claims_runs: bool = policy.agent_claims_runs  # ours claims each run first
        self.scheduler = Scheduler(policy(ctx), ctx)
        self._agent_ids = itertools.count(1)
        self.at(0.0, ev.Restart())
        self._heartbeat_loop()

    # ------------------------------------------------------------------ queue
    def _push(self, t: float, fn: Callable[[], Any]) -> None:
        heapq.heappush(self._queue, (t, next(self._seq), fn))

    def at(self, t: float, action: Any) -> None:
        """Schedule a scheduler event, or a callable taking no arguments, at time t."""
        if callable(action) and not isinstance(action, type):
            self._push(t, action)
        else:
            self._push(t, lambda a=action: self.send(a))

    def send(self, event: Any) -> ev.Outcome:
        if isinstance(event, ev.Restart):
            self.scheduler_epoch += 1
            for a in self.agents.values():
                a.connected = False  # the process restart drops every C&C connection
            for a in self.agents.values():
                if not a.dead:
                    self._push(self.now + 2.0, lambda a=a: self._connect(a))
        if isinstance(event, (ev.TaskCreated, ev.ConfirmApply, ev.CancelTask)):
            self.world(Kind.USER, reason=type(event).__name__,
                       task=getattr(event, "task_id", None),
                       workspace=getattr(event, "workspace_id", None))
        out = self.scheduler.handle(event, self.now)
        self.outcomes.append((self.now, event, out))
        return out

    def run(self, until: float) -> Script:
        while self._queue and self._queue[0][0] <= until:
            t, _, fn = heapq.heappop(self._queue)
            self.now = t
            fn()
        self.now = until
        return self

    def world(self, kind: Kind, source: Source = Source.WORLD, **fields: Any) -> None:
        self.history.append(HistoryEvent(self.now, kind, source, **fields))

    # ------------------------------------------------------------------ user actions
    def create(self, t: float, workspace: str | None = None, task_type: TaskType = TaskType.PLAN_AND_APPLY) -> None:
        ws = workspace or self.store.list_workspaces()[0].id
        self.at(t, ev.TaskCreated(ws, task_type, "alice"))

    def confirm(self, t: float, task_id: int, user: str | None = "alice", digest: str | None = "auto") -> None:
        def go() -> None:
            d = digest
            if d == "auto":
                task = self.store.get_task(task_id)
                d = task.plan_digest if task else None
            self.send(ev.ConfirmApply(task_id, user, d))
        self.at(t, go)

    def add_pod(self, t: float, name: str, pool_id: str | None = None) -> None:
        """A pod the scheduler did not create, as an HPA or a Deployment starts one (this
        world has no controllers: a pool managed by either gets its pods this way)."""
        self.at(t, lambda: self._add_pod(pool_id or self.pool.id, name))

    # ------------------------------------------------------------------ faults
    def kill_pod(self, t: float, pod: str | Callable[[Script], str | None]) -> None:
        """SIGKILL-like: the pod vanishes from the API and its agent dies with it."""
        def go() -> None:
            name = pod(self) if callable(pod) else pod
            if name is None or name not in self.pods:
                return
            self.world(Kind.FAULT, Source.FAULT, pod=name, reason="pod killed",
                       data={"type": "pod-kill", "target": name})
            self._remove_pod(name, "killed")
        self.at(t, go)

    def disconnect_agent(self, t: float, agent: str | Callable[[Script], str | None], reconnect_after: float | None = None) -> None:
        def go() -> None:
            aid = agent(self) if callable(agent) else agent
            a = self.agents.get(aid or "")
            if a is None or not a.connected:
                return
            self.world(Kind.FAULT, Source.FAULT, agent=a.agent_id, pod=a.pod,
                       reason="agent disconnected", data={"type": "agent-disconnect"})
            a.connected = False
            self.send(ev.AgentDisconnected(a.agent_id))
            if reconnect_after is not None:
                self._push(self.now + reconnect_after, lambda: self._connect(a))
        self.at(t, go)

    def pause_agent(self, t: float, agent: str | Callable[[Script], str | None], resume_after: float | None = None) -> None:
        """Node loss seen from the agent: frozen (no heartbeats, no progress; runs sent to it
        wait unread in its socket), maybe woken later."""
        def go() -> None:
            aid = agent(self) if callable(agent) else agent
            a = self.agents.get(aid or "")
            if a is None:
                return
            self.world(Kind.FAULT, Source.FAULT, agent=a.agent_id, pod=a.pod,
                       reason="agent paused (node lost)", data={"type": "node-loss"})
            a.paused = True
            for x in a.runs.values():
                x.remaining = max(0.0, x.ends_at - self.now)
                x.generation += 1
            if resume_after is not None:
                self._push(self.now + resume_after, lambda: self._resume(a))
        self.at(t, go)

    def restart_scheduler(self, t: float) -> None:
        def go() -> None:
            self.world(Kind.FAULT, Source.FAULT, reason="scheduler restart",
                       data={"type": "scheduler-restart"})
            self.send(ev.Restart())
        self.at(t, go)

    def fail_writes(self, t: float, n: int = 1) -> None:
        def go() -> None:
            self.world(Kind.FAULT, Source.FAULT, reason=f"next {n} store writes fail",
                       data={"type": "db-write-failure", "count": n})
            self.store.fail_next_writes(n)
        self.at(t, go)

    def fail_listing(self, t: float, for_s: float) -> None:
        """The cluster's pod listing fails from t for for_s seconds (an API server outage
        as the scheduler sees it); creates and deletes still go through."""
        def go() -> None:
            self.listing_fails_until = self.now + for_s
        self.at(t, go)

    def fail_next_sends(self, t: float, n: int = 1, then_fail_writes: int = 0) -> None:
        """The next n run_task sends fail; optionally the store then fails the next writes
        too (the seed's rollback Save after a send failure, F3)."""
        def go() -> None:
            self.fail_sends = n
            self.fail_writes_after_send = then_fail_writes
        self.at(t, go)

    # ------------------------------------------------------------------ cluster
    def _add_pod(self, pool_id: str, name: str) -> None:
        if name in self.pods:
            raise ClusterError(f'pods "{name}" already exists')
        self.pods[name] = PodInfo(name, pool_id, "Running", created_at=self.now)
        self.world(Kind.POD_ADDED, pod=name, data={"pool": pool_id})
        self.send(ev.PodAdded(name, pool_id))
        if self.agent_connect_s is not None:
            a = WorldAgent(f"agent-{pool_id}-{next(self._agent_ids)}", name, pool_id)
            self.agents[a.agent_id] = a
            self._push(self.now + self.agent_connect_s, lambda: self._connect(a))

    def _remove_pod(self, name: str, cause: str) -> None:
        if self.pods.pop(name, None) is None:
            return
        self.world(Kind.POD_REMOVED, pod=name, data={"cause": cause})
        for a in self.agents.values():
            if a.pod == name and not a.dead:
                a.dead = True
                for x in a.runs.values():
                    self.world(Kind.EXEC_INFO, Source.AGENT, task=x.run.task_id, agent=a.agent_id,
                               pod=a.pod, workspace=x.run.workspace_id, reason="agent killed",
                               data={"action": x.run.action, "fence": x.run.fence})
                a.runs.clear()
                if a.connected:
                    a.connected = False
                    self.send(ev.AgentDisconnected(a.agent_id))
        self.send(ev.PodRemoved(name))

    def pod_of_task(self, task_id: int) -> str | None:
        """The pod whose agent last ran the task (for fault targeting)."""
        for e in reversed(self.history.events):
            if e.kind is Kind.EXEC_INVOKE and e.task == task_id:
                return e.pod
        return None

    def agent_of_task(self, task_id: int) -> str | None:
        for e in reversed(self.history.events):
            if e.kind is Kind.EXEC_INVOKE and e.task == task_id:
                return e.agent
        return None

    # ------------------------------------------------------------------ agents
    def _connect(self, a: WorldAgent) -> None:
        if a.dead or a.paused or a.connected or a.pod not in self.pods:
            return
        out = self.send(ev.AgentConnected(a.agent_id, a.pool_id, a.pod,
                                          current_tasks=self._current_tasks(a)))
        a.connected = out.ok
        if out.ok:
            a.backoff = 0.0
        else:  # refused (a registration the store could not write): reconnect later
            a.backoff = min(RECONNECT_CAP_S, a.backoff * 2 if a.backoff else RECONNECT_BASE_S)
            self._push(self.now + a.backoff, lambda: self._connect(a))

    def _resume(self, a: WorldAgent) -> None:
        if a.dead:
            return
        a.paused = False
        self.world(Kind.NODE, reason="node healed", agent=a.agent_id, pod=a.pod,
                   data={"event": "healed"})
        for x in a.runs.values():
            x.ends_at = self.now + x.remaining
            gen = x.generation
            self._push(x.ends_at, lambda a=a, x=x, gen=gen: self._finish(a, x, gen))
        queued, a.queued = a.queued, []
        for run in queued:
            self._start(a, run)
        self._connect(a)

    def _heartbeat_loop(self) -> None:
        for a in sorted(self.agents.values(), key=lambda a: a.agent_id):
            if a.connected and not a.paused and not a.dead:
                runs = [x.run for x in a.runs.values()]
                plan_running, apply_running = heartbeat.load(self._task_type(r.task_id) for r in runs)
                self.send(ev.AgentHeartbeat(
                    a.agent_id, plan_running=plan_running, apply_running=apply_running,
                    current_tasks=self._current_tasks(a),
                ))
        self._push(self.now + 10.0, self._heartbeat_loop)

    @staticmethod
    def _current_tasks(a: WorldAgent) -> tuple[int, ...]:
        return tuple(sorted({x.run.task_id for x in a.runs.values()} | a.unreported.keys()))

    def _task_type(self, task_id: int) -> TaskType | None:
        t = self.store.get_task(task_id)
        return t.task_type if t else None

    def _deliver(self, agent_id: str, run: RunTask) -> None:
        a = self.agents.get(agent_id)
        if a is None or not a.connected or a.dead:
            raise AgentSendError(f"agent {agent_id} not connected")
        if self.fail_sends > 0:
            self.fail_sends -= 1
            if self.fail_writes_after_send:
                self.store.fail_next_writes(self.fail_writes_after_send)
                self.fail_writes_after_send = 0
            raise AgentSendError("write: broken pipe")
        if a.paused:  # frozen: the message waits in its socket, read when it wakes
            a.queued.append(run)
        else:
            self._start(a, run)

    def _start(self, a: WorldAgent, run: RunTask, attempt: int = 0) -> None:
        """The agent reads `run` from its socket and acts on it."""
        agent_id = a.agent_id
        if run.action == "cancel":
            x = a.runs.pop(run.task_id, None)
            if x is not None:  # as sim/agents.py records it: the run ends here
                self.world(Kind.EXEC_INFO, Source.AGENT, task=run.task_id, agent=agent_id, pod=a.pod,
                           workspace=x.run.workspace_id, reason="cancelled by the server mid-run",
                           data={"action": x.run.action, "fence": x.run.fence})
            return
        if self.claims_runs:
            out = self.send(ev.RunClaimed(run.task_id, agent_id, run.fence))
            if not out.ok:
                # Not stored (503): asked again, as sim/agents.py does; refused (409): not run.
                delay = reports.retry_after(self.agent_reports, attempt) if out.status >= 500 else None
                if delay is not None:
                    self._push(self.now + delay, lambda: self._claim_again(a, run, attempt + 1))
                return
        extra = {}
        if run.action == "apply":
            prev = self.state_lock.get(run.workspace_id)
            self.state_lock[run.workspace_id] = (run.task_id, run.fence)
            if prev is not None and prev != (run.task_id, run.fence):
                extra["supersedes"] = list(prev)  # the older holder can no longer commit
        duration = self.plan_s if run.action == "plan" else self.apply_s
        x = Execution(run, agent_id, self.now + duration)
        a.runs[run.task_id] = x
        self.world(Kind.EXEC_INVOKE, Source.AGENT, task=run.task_id, agent=agent_id, pod=a.pod,
                   workspace=run.workspace_id,
                   data={"action": run.action, "fence": run.fence, "digest": run.plan_digest,
                         **extra})
        self._push(x.ends_at, lambda: self._finish(a, x, 0))

    def _claim_again(self, a: WorldAgent, run: RunTask, attempt: int) -> None:
        if a.dead:
            return
        if a.paused:
            a.queued.append(run)
        else:
            self._start(a, run, attempt)

    def _finish(self, a: WorldAgent, x: Execution, generation: int) -> None:
        if a.dead or a.paused or x.generation != generation or a.runs.get(x.run.task_id) is not x:
            return
        del a.runs[x.run.task_id]
        run = x.run
        common = dict(task=run.task_id, agent=a.agent_id, pod=a.pod, workspace=run.workspace_id)
        if run.action == "apply":
            if self.state_lock.get(run.workspace_id) != (run.task_id, run.fence):
                self.world(Kind.EXEC_FAIL, Source.AGENT, reason="state lock fenced: stale token",
                           data={"action": "apply", "fence": run.fence}, **common)
                return
            del self.state_lock[run.workspace_id]  # committed: the lock is released
            self.world(Kind.EXEC_OK, Source.AGENT, data={"action": "apply", "fence": run.fence}, **common)
            report: Any = ev.ApplyFinished(run.task_id, a.agent_id, True, run.fence)
        else:
            digest = f"sha256:plan-{run.task_id}-{run.fence}-{int(self.now)}"
            changes = self.has_changes
            self.world(Kind.EXEC_OK, Source.AGENT,
                       data={"action": "plan", "fence": run.fence, "has_changes": changes,
                             "digest": digest}, **common)
            report = ev.PlanFinished(run.task_id, a.agent_id, changes, digest, run.fence)
        if self.reports_until_delivered:
            a.unreported[run.task_id] = a.unreported.get(run.task_id, 0) + 1
        self._report(a, report, attempt=0)
        self._push(self.now + self.notice_after_s,
                   lambda: self.send(ev.CompletionNotice(run.task_id, a.agent_id, True)) if a.connected else None)

    def _report(self, a: WorldAgent, report: Any, attempt: int) -> None:
        """As the variant's agent delivers a report (scheduler/reports.py): ours until the
        scheduler takes it, the seed's 3 retries, then dropped."""
        if a.dead:
            return
        out = self.send(report)
        if out.ok or out.status < 500:
            left = a.unreported.pop(report.task_id, 0) - 1
            if left > 0:
                a.unreported[report.task_id] = left
        elif (delay := reports.retry_after(self.agent_reports, attempt)) is not None:
            self._push(self.now + delay, lambda: self._report(a, report, attempt + 1))

    # ------------------------------------------------------------------ inspection
    def task(self, task_id: int) -> Task:
        t = self.store.get_task(task_id)
        assert t is not None, f"task {task_id} does not exist"
        return t

    def workspace(self, ws_id: str | None = None) -> Workspace:
        w = self.store.get_workspace(ws_id or self.store.list_workspaces()[0].id)
        assert w is not None
        return w

    def finish(self) -> list[dict]:
        """Close the history (run.end) and return its rows."""
        self.world(Kind.RUN_END, Source.HARNESS, data={"drain_s": 0.0, "bound_s": 600.0})
        return self.history.rows()

    def stuck(self, bound_s: float = 600.0) -> list[int]:
        """Confirmed tasks still in apply_pending more than bound_s after their confirm."""
        out = []
        for t in self.store.list_tasks(statuses=[TaskStatus.APPLY_PENDING]):
            if t.confirmed and self.now - (t.apply_confirmed_at or 0.0) > bound_s:
                out.append(t.id)
        return out


class _Cluster:
    def __init__(self, world: Script) -> None:
        self.w = world

    def create_pod(self, pool_id: str, name: str) -> None:
        self.w._add_pod(pool_id, name)

    def delete_pod(self, name: str, *, scale_down: bool = False) -> None:
        if name not in self.w.pods:
            raise ClusterError(f'pods "{name}" not found')
        self.w._remove_pod(name, "deleted by scheduler")

    def list_pods(self, pool_id: str) -> list[PodInfo]:
        if self.w.now < self.w.listing_fails_until:
            raise ClusterError("list pods: the server is currently unable to handle the request")
        return [p for _, p in sorted(self.w.pods.items()) if p.pool_id == pool_id]

    def scale(self, pool_id: str, replicas: int) -> None:
        raise ClusterError("the scripted world has bare pods only")

    def annotate_pod(self, name: str, annotations: dict[str, str]) -> None:
        if name not in self.w.pods:
            raise ClusterError(f'pods "{name}" not found')


class _Agents:
    def __init__(self, world: Script) -> None:
        self.w = world

    def send_run_task(self, agent_id: str, run: RunTask) -> None:
        self.w._deliver(agent_id, run)

    def send_cancel(self, agent_id: str, task_id: int) -> None:
        self.w._deliver(agent_id, RunTask(task_id, "", "cancel"))


class _Timer:
    def __init__(self, world: Script) -> None:
        self.w = world

    def wake_at(self, when: float, tag: ev.TimerTag) -> None:
        epoch = self.w.scheduler_epoch

        def fire() -> None:
            if self.w.scheduler_epoch == epoch:  # wake-ups die with the process
                self.w.send(ev.TimerFired(tag))
        self.w._push(when, fire)
