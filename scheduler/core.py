"""The scheduler core: a deterministic state machine over ports.

`Scheduler.handle(event, now)` is the only entry point. It routes the event to the
variant's policy object and returns an `Outcome`. Everything the core does to the world
goes through `scheduler.ports`; everything it decides goes out as a history event.

Design notes
------------
* **Time.** `now` comes with each event. Asynchronous work of the real system (goroutines,
  `scheduleRetry` sleeps, tickers) is modelled as Timer wake-ups: `ctx.spawn(delay, name,
  *args)` asks the Timer port for a `TimerFired(TimerTag(name, args))`, which the core routes
  back to the policy method `timer_<name>`. A zero delay models a `go f()`: it runs after the
  current handler, in FIFO order with other wake-ups of the same instant.
* **Volatile memory.** `ctx.memory` holds what the real server keeps in process memory (the
  pod slot map, connected agents, mutexes). `Restart` wipes it, and the world drops the
  scheduler's pending wake-ups, exactly as a process restart would.
* **Randomness.** Go's random map order is modelled with the seeded `ctx.rng`; nothing else
  draws random numbers.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, TypeVar

from scheduler import events as ev
from scheduler.history import HistoryEvent, Kind, Source
from scheduler.model import Task, TaskStatus
from scheduler.ports import Agents, Cluster, HistorySink, StateBackend, Store, Timer
from scheduler.settings import Settings

T = TypeVar("T")


class Context:
    """What a policy may touch: the ports, `now`, the seeded RNG and its volatile memory."""

    def __init__(
        self,
        *,
        store: Store,
        cluster: Cluster,
        agents: Agents,
        timer: Timer,
        history: HistorySink,
        rng: random.Random,
        settings: Settings,
        state: StateBackend | None = None,
    ) -> None:
        self.store = store
        # The Terraform state backend, when this world can read it (the live service needs
        # --backend-dir): without it an apply whose agent is lost has an unknown outcome.
        self.state = state
        self.cluster = cluster
        self.agents = agents
        self.timer = timer
        self.history = history
        self.rng = rng
        self.settings = settings
        self.now = 0.0
        self.memory: Any = None
        self.recorded = 0  # history events recorded so far: "did this step decide anything?"
        self._reads: dict[Any, tuple[int, Any]] = {}
        # Per-table versions ("tasks", "agents", ...): the in-memory store has them.
        self.versioned_tables = callable(getattr(store, "revision_of", None))

    # Asynchrony.
    def spawn(self, delay: float, name: str, *args: Any) -> None:
        self.timer.wake_at(self.now + delay, ev.TimerTag(name, args))

    # Reads.
    def cached(self, key: Any, read: Callable[[], T], *, tables: tuple[str, ...] = ()) -> T:
        """`read()` once per store revision: repeated scans between two writes (a reconcile
        pass, an autoscaler cycle, the HPA's demand reads) share one result instead of
        copying every record again. With `tables`, only writes to those tables count (a scan
        of tasks survives the heartbeats' agent writes). The caller must not mutate what it
        gets, with one exception: a memo (`read` returns an empty dict) that the caller fills
        with values derived from those same tables only, so that whatever it holds stays true
        until they are written and the next read starts a new one. A store without a `revision` (the SQL stores, where other replicas write) is
        read every time."""
        store = self.store
        if tables and self.versioned_tables:
            revision = store.revision_of(*tables)
        else:
            revision = getattr(store, "revision", None)
            if revision is None:
                return read()
        hit = self._reads.get(key)
        if hit is not None and hit[0] == revision:
            return hit[1]
        value = read()
        self._reads[key] = (revision, value)
        return value

    # Shared by every variant: a new task row, as CreatePlanTask writes it.
    def insert_task(self, ws: Any, e: ev.TaskCreated) -> Task:
        """Insert a pending task for `e` in workspace `ws` and record it. Raises the
        Store's StoreWriteError; the caller decides what the API answers."""
        task = Task(
            id=self.store.next_task_id(), workspace_id=ws.id, task_type=e.task_type,
            execution_mode=ws.execution_mode, created_by=e.user, description=e.description,
            created_at=self.now, updated_at=self.now,
        )
        self.store.insert_task(task)
        self.record(Kind.TASK_CREATED, task=task.id, workspace=ws.id, to_status="pending",
                    data={"type": task.task_type.value, "user": e.user})
        return task

    # Shared by every variant: the claim rule (`Task.runs_on`).
    def claim(self, e: ev.RunClaimed) -> ev.Outcome:
        """The answer to send the agent: 200 start the run; 404 for a task that does not
        exist, 409 for a run that is no longer its dispatch (the agent must not start it).
        Records nothing: the agent's `exec.invoke` row is the claim's record."""
        task = self.store.get_task(e.task_id)
        if task is None:
            return ev.Outcome(False, 404, message=f"task {e.task_id} not found")
        if not task.runs_on(e.agent_id, e.fence):
            return ev.Outcome(False, 409, task_id=task.id, message=(
                f"stale dispatch: task {task.id} is {task.status.value} with fence {task.fence} "
                f"on agent {task.agent_id}; do not run it"))
        return ev.Outcome(True, 200, task_id=task.id)

    # History.
    def record(
        self, kind: Kind, *, task: int | None = None, workspace: str | None = None,
        pod: str | None = None, slot: int | None = None, agent: str | None = None,
        from_status: str | None = None, to_status: str | None = None, reason: str = "",
        data: dict[str, Any] | None = None,
    ) -> None:
        """Append a scheduler row. The fields are spelled out and passed on by position:
        a third cheaper than forwarding `**fields` (a stuck day records 85k rows here)."""
        self.recorded += 1
        self.history.append(HistoryEvent(self.now, kind, Source.SCHEDULER, task, workspace, pod,
                                         slot, agent, from_status, to_status, reason, data))

    def transition(self, before: Task | TaskStatus | None, after: Task, reason: str, **data: Any) -> None:
        """Record a status change that has been written."""
        from_status = before.status if isinstance(before, Task) else before
        if from_status == after.status and not data.pop("force", False):
            return
        self.record(
            Kind.TASK_TRANSITION,
            task=after.id,
            workspace=after.workspace_id,
            agent=after.agent_id,
            pod=after.k8s_pod_name or None,
            slot=after.slot_id,
            from_status=from_status.value if from_status is not None else None,
            to_status=after.status.value,
            reason=reason,
            data={"stage": after.stage, **data},
        )


HANDLERS: dict[type, str] = {
    ev.TaskCreated: "on_task_created",
    ev.ConfirmApply: "on_confirm_apply",
    ev.CancelTask: "on_cancel",
    ev.RunClaimed: "on_run_claimed",
    ev.PlanFinished: "on_plan_finished",
    ev.ApplyFinished: "on_apply_finished",
    ev.TaskFailed: "on_task_failed",
    ev.CompletionNotice: "on_completion_notice",
    ev.PodAdded: "on_pod_added",
    ev.PodTerminating: "on_pod_terminating",
    ev.PodRemoved: "on_pod_removed",
    ev.AgentConnected: "on_agent_connected",
    ev.AgentHeartbeat: "on_agent_heartbeat",
    ev.AgentDisconnected: "on_agent_disconnected",
    ev.Restart: "on_restart",
    ev.RebuildPods: "on_rebuild_pods",
}


class Scheduler:
    """Routes events to a policy. One instance per scheduler process (a restart keeps it:
    the policy wipes its volatile memory itself on `Restart`)."""

    def __init__(self, policy: Any, ctx: Context) -> None:
        self.policy = policy
        self.ctx = ctx
        self._routes: dict[type, Callable[[Any], ev.Outcome | None]] = {
            etype: getattr(policy, name) for etype, name in HANDLERS.items()
        }
        # `timer_<name>` of the policy by name, looked up at a wake-up's first use: a day
        # routes tens of thousands of wake-ups through a handful of names.
        self._timers: dict[str, Callable[..., ev.Outcome | None]] = {}

    @property
    def name(self) -> str:
        return self.policy.name

    def metrics(self, pool_id: str) -> dict[str, float]:
        """What the scheduler exports for autoscalers (e.g. `demand_pods`), read-only.
        Variants without an exported metric return {} (the seed scales its own pods)."""
        export = getattr(self.policy, "export_metrics", None)
        return export(pool_id) if export is not None else {}

    def handle(self, event: ev.Event, now: float) -> ev.Outcome:
        self.ctx.now = now
        if isinstance(event, ev.TimerFired):
            tag = event.tag
            method = self._timers.get(tag.name)
            if method is None:
                method = getattr(self.policy, "timer_" + tag.name, None)
                if method is None:
                    raise ValueError(
                        f"{self.policy.name}: no handler for wake-up {tag.name!r}; "
                        "a TimerTag must name a timer_<name> method of the policy that asked for it"
                    )
                self._timers[tag.name] = method
            out = method(*tag.args)
        else:
            route = self._routes.get(type(event))
            if route is None:
                raise TypeError(f"not a scheduler event: {event!r}")
            out = route(event)
        return out if out is not None else ev.OK
