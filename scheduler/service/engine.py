"""The engine: one core, its port adapters, and the one place events enter it.

Every input of the live scheduler (an HTTP request, an agent report, a timer wake-up, a pod
that appeared or died, an agent that went silent) becomes one `scheduler.events` value and
goes through `Engine.handle`, which stamps it with the run clock's `now`, calls
`Scheduler.handle(event, now)`, and fsyncs the history rows it produced. `handle` runs only
on the event loop's thread and never awaits, so calls are serialized without a lock: the
core sees one event at a time, in arrival order, as in the simulation. Threads (the
Kubernetes watch) hand their events over with `loop.call_soon_threadsafe(engine.submit, e)`.

Rows the service itself observes (user actions as issued, agent execution rows, a pod whose
process died, faults a harness announces) are appended with `world()` at the current `now`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from scheduler import events as ev
from scheduler.agent.backend import Backend
from scheduler.core import Context, Scheduler
from scheduler.history import HistoryEvent, Kind, Source
from scheduler.model import Pool, TaskStatus, Workspace
from scheduler.service.clock import RunClock
from scheduler.service.config import ServiceConfig
from scheduler.service.effects import Effects
from scheduler.service.held_slots import HeldSlots
from scheduler.service.historylog import HistoryLog
from scheduler.service.mailboxes import Mailboxes
from scheduler.service.metrics import ServiceMetrics
from scheduler.service.state_reader import StateReader
from scheduler.service.static_cluster import StaticCluster, process_alive
from scheduler.service.write_faults import WriteFaultWindows
from scheduler.stores import open_store
from scheduler.variants import policy_class

AGENT_DISCONNECT = "agent-disconnect"
"""The fault type a --fault-injection service injects into its own C&C sessions."""

log = logging.getLogger("unstuck.service")


def exec_key(agent: str | None, task: int, fence: int | None, kind: str, action: str | None,
             run: str | None) -> tuple:
    """What makes an execution row one of its own: a retried report's row has the key of the
    one recorded before (`Engine.exec_seen`), a second run of one dispatch (the seed's agent,
    whose scheduler never moves a fence) another `run`."""
    return (agent, task, fence, kind, action, run)


class Engine:
    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        data = config.data_dir
        if data is not None:
            data.mkdir(parents=True, exist_ok=True)
        self.clock = RunClock(data / "clock.json" if data else None, scheduler=config.scheduler)
        url = config.store_url or (f"sqlite:///{data / 'store.db'}" if data else "memory://")
        self.store = open_store(url)
        self.history = HistoryLog(data / "history.jsonl" if data else None, self.clock.t)
        if self.history.last is not None:
            self.clock.not_before(self.history.last["t"])
        self.mailboxes = Mailboxes(self.clock.now, poll_timeout_s=config.poll_timeout_s,
                                   stale_after_s=config.agent_stale_s)
        self.cluster = self._cluster()
        if isinstance(self.cluster, StaticCluster):
            self.mailboxes.process_alive = lambda box: box.pid is None or process_alive(box.pid)
        from scheduler.service.timer import LoopTimer

        self.timer = LoopTimer(self.clock.now, self.submit)
        self.metrics = ServiceMetrics(tasks_by_status=self.tasks_by_status, stuck=self.stuck_count,
                                      agents_connected=self.agents_connected)
        state = (StateReader(Backend(config.backend_dir, create=False),
                             on_error=self.metrics.state_read_errors.inc)
                 if config.backend_dir else None)
        self.ctx = Context(store=self.store, cluster=self.cluster, agents=self.mailboxes,
                           timer=self.timer, history=self.history,
                           rng=random.Random(config.seed), settings=config.settings, state=state)
        self.scheduler = Scheduler(policy_class(config.scheduler)(self.ctx), self.ctx)
        self.open_execs: dict[tuple[str, int], dict[str, Any]] = {}  # (agent, task) -> invoke row
        self.exec_seen: set[tuple] = set()  # execution rows already recorded (retried reports)
        self.pod_places: dict[str, dict[str, Any]] = {}  # pod -> node and pool, as the watch saw it
        self.effects = Effects()  # which announced fault a pod deletion is the effect of
        self.held_slots = HeldSlots()  # what the log shows held, for the boot's Restart
        self.write_faults = WriteFaultWindows(self.store, config.seed)
        # A restart continues the run: its timings, the executions and the faults in force,
        # rebuilt from the log in one read of it.
        self.metrics.observer.replay(self._tracked(self.history.replay()))
        self.history.observers.append(self.metrics.observe_row)
        self.history.observers.append(self._track_execs)
        self.history.observers.append(self.effects.observe)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.booted = False
        self._tasks: list[asyncio.Task] = []
        self._seed_store()

    def _cluster(self):
        cfg = self.config
        if cfg.cluster == "static":
            return StaticCluster(cfg.pool_id, list(cfg.pods), self.clock.now())
        if cfg.cluster == "kubernetes":
            from scheduler.service.kube_cluster import KubernetesCluster

            return KubernetesCluster(namespace=cfg.namespace, selector=cfg.agent_selector,
                                     deployment=cfg.deployment, scaling=cfg.scaling,
                                     kubeconfig=cfg.kubeconfig, now=self.clock.now,
                                     pool_id=cfg.pool_id)
        raise ValueError(f"--cluster {cfg.cluster!r}: choose static or kubernetes")

    def _seed_store(self) -> None:
        """Create the pool and workspaces named in the config, once (setup writes)."""
        cfg = self.config
        if self.store.get_pool(cfg.pool_id) is None:
            static = cfg.cluster == "static"
            manager = "bare" if static or cfg.deployment is None else "deployment"
            n = len(cfg.pods) if static else 1
            self.store.put_pool(Pool(cfg.pool_id, min_replicas=n if static else 1,
                                     max_replicas=n if static else 10, manager=manager))
        for ws in cfg.workspaces:
            if self.store.get_workspace(ws) is None:
                self.store.put_workspace(Workspace(ws, pool_id=cfg.pool_id))

    # ---------------------------------------------------------------- life cycle
    async def start(self) -> None:
        """Boot the core (a `Restart`, as every process start is) and start the watchers."""
        self.loop = asyncio.get_running_loop()
        self.timer.bind(self.loop)
        for seq, row in list(self.effects.in_force.items()):
            if (row.get("data") or {}).get("rate") is not None:  # died with the last process
                self.end_fault(seq, "service restarted: its injected write failures ended with it")
        self.handle(ev.Restart(self.held_slots.held()))
        self.booted = True
        self._tasks.append(asyncio.create_task(self._watch()))
        starter = getattr(self.cluster, "start", None)
        if starter is not None:
            loop = self.loop
            starter(lambda e: loop.call_soon_threadsafe(self.from_watch, e),
                    lambda *where: loop.call_soon_threadsafe(self.placed, *where))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        self.timer.close()
        stopper = getattr(self.cluster, "stop", None)
        if stopper is not None:
            stopper()
        self.clock.save()
        self.history.close()
        close = getattr(self.store, "close", None)
        if close is not None:
            close()

    async def _watch(self) -> None:
        """Process liveness (static cluster) and silent agents, every `watch_period_s`."""
        ticks = 0
        while True:
            await asyncio.sleep(self.config.watch_period_s)
            try:
                self.watch_once()
            except Exception:  # noqa: BLE001 - a watcher must survive a bad tick; it is logged
                log.exception("watch tick failed")
            ticks += 1
            if ticks % 50 == 0:
                self.clock.save()

    def watch_once(self) -> None:
        if isinstance(self.cluster, StaticCluster):
            for pod, event in self.cluster.poll():
                self.process_died(pod.name)
                self.handle(event)
        for box in self.mailboxes.silent():
            self.mailboxes.disconnect(box.agent_id)
            self.executions_unknown(lambda agent, invoke, a=box.agent_id: agent == a,
                                    "agent silent: outcome unknown")
            self.handle(ev.AgentDisconnected(box.agent_id))

    def executions_unknown(self, match, reason: str) -> None:
        """Close matching open executions with `exec.info`: as far as anyone outside the agent
        can tell, the run may or may not have had its effect (Elle's "info"). An agent that
        was only frozen may still report later; its row then follows this one, and the state
        lock's lease (scheduler/agent/backend.py) is what keeps it from committing."""
        for (agent, task), invoke in sorted(self.open_execs.items()):
            if match(agent, invoke):
                self.world(Kind.EXEC_INFO, Source.AGENT, task=task, agent=agent, pod=invoke.get("pod"),
                           workspace=invoke.get("workspace"), reason=reason,
                           data={"action": invoke["data"].get("action"),
                                 "fence": invoke["data"].get("fence"), "observed_by": "service"})

    def process_died(self, pod: str) -> None:
        """The pod's process is gone: its open executions end with an unknown outcome."""
        self.world(Kind.POD_REMOVED, pod=pod, data={"cause": "process exited", "pool": self.config.pool_id})
        self.executions_unknown(lambda agent, invoke: invoke.get("pod") == pod, "agent process killed")
        self.drop_agents(pod)

    def drop_agents(self, pod: str | None, agent: str | None = None,
                    hold_s: float | None = None) -> list[str]:
        """End the C&C session of each connected agent on `pod` (named `agent` where given):
        the core hears `AgentDisconnected`, and the agent's next poll is told to register
        again, refused for `hold_s` seconds if given. Returns the agents."""
        dropped = self.connected_agents(pod, agent)
        for one in dropped:
            self.mailboxes.disconnect(one, hold_s)
            self.handle(ev.AgentDisconnected(one))
        return dropped

    def _tracked(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            self._track_execs(row)
            self.effects.observe(row)
            self.held_slots.observe(row)
            yield row

    def _track_execs(self, row: dict[str, Any]) -> None:
        kind = row["kind"]
        if not kind.startswith("exec.") or row.get("task") is None:
            return
        data = row.get("data") or {}
        self.exec_seen.add(exec_key(row.get("agent"), row["task"], data.get("fence"), kind[5:],
                                    data.get("action"), data.get("run")))
        key = (row.get("agent") or "", row["task"])
        if kind == "exec.invoke":
            self.open_execs[key] = row
        else:
            self.open_execs.pop(key, None)

    # ---------------------------------------------------------------- events in
    def handle(self, event: ev.Event) -> ev.Outcome:
        """Hand one event to the core now; fsync the rows it produced."""
        try:
            return self.scheduler.handle(event, self.clock.now())
        finally:
            self.history.flush()

    def submit(self, event: ev.Event) -> None:
        """For callbacks (timer, watch threads): handle, and log instead of raising."""
        try:
            self.handle(event)
        except Exception:  # noqa: BLE001 - an event that crashes the core is logged, not fatal
            log.exception("event %r failed", event)

    def placed(self, pod: str, pool: str, node: str) -> None:
        """The Kubernetes watch saw `pod` bound to `node`: its `pod.added` row, which says
        where it runs, as the simulation's does (a node-loss takes the node's pods with it)."""
        self.pod_places[pod] = {"node": node, "pool": pool}
        self.world(Kind.POD_ADDED, pod=pod, data=self.pod_places[pod])

    def from_watch(self, event: ev.Event) -> None:
        """A pod change the Kubernetes watch saw: its world row, then the event, as the
        simulation records a change before the scheduler hears of it. The rows let the checker
        follow a pod of a live run (docs/history.md). The watch does not know who deleted a
        pod: a deletion names a fault only when `Effects` can tell it was an announced
        untargeted fault's (an HPA scale-down's ReplicaSet deletion). A pod never bound to a
        node, which no agent ran on, leaves no row."""
        pod = getattr(event, "pod", "")
        where = self.pod_places.get(pod)
        if where is not None and isinstance(event, (ev.PodTerminating, ev.PodRemoved)):
            if isinstance(event, ev.PodRemoved):
                del self.pod_places[pod]
            cause = self.effects.cause(pod, where.get("node"))
            kind = Kind.POD_TERMINATING if isinstance(event, ev.PodTerminating) else Kind.POD_REMOVED
            self.world(kind, pod=pod, data=where if cause is None else {**where, "fault": cause})
        self.submit(event)

    # ---------------------------------------------------------------- faults
    def fault(self, reason: str, **fields: Any) -> dict[str, Any]:
        """Record a fault a harness announces. Two the service also injects (the app admits
        them only with --fault-injection): one whose `data` has a `rate` (a db-write-failure),
        whose store writes fail from now until its end, `data.duration_s` later or at its
        `end_fault`; and an agent-disconnect, whose agent's C&C session (its long-poll) ends
        now: the core hears `AgentDisconnected`, and the agent's next poll is told to
        register again, which is refused for `data.reconnect_after` seconds if given."""
        row = self.world(Kind.FAULT, Source.FAULT, reason=reason, **fields)
        data = row.get("data") or {}
        if data.get("type") == AGENT_DISCONNECT and self.config.fault_injection:
            # As a dropped WebSocket is to the seed: the server hears the close at once and
            # the agent, its process and its HTTP calls untouched, connects again.
            self.drop_agents(row.get("pod"), row.get("agent"), data.get("reconnect_after"))
        if data.get("rate") is not None:
            self.write_faults.start(row["seq"], data["rate"])
            if data.get("duration_s") is not None and self.loop is not None:
                self.loop.call_later(data["duration_s"], self.end_fault, row["seq"],
                                     "failing store writes over")
        return row

    def connected_agents(self, pod: str | None, agent: str | None) -> list[str]:
        """The agents with a C&C session now, on `pod` and named `agent` where given."""
        return sorted(b.agent_id for b in self.mailboxes.boxes.values() if b.connected
                      and pod in (None, b.pod) and agent in (None, b.agent_id))

    def end_fault(self, seq: int, reason: str) -> dict[str, Any] | None:
        """Write the `fault.end` of fault `seq`, which repeats the fault's fields, and end its
        injection. None when it has ended already (its window's time came after a harness
        ended it)."""
        row = self.effects.in_force.get(seq)
        if row is None:
            return None
        # A `fault.end` row ends the oldest alike fault as the history is read back (`Effects`):
        # end that one. Alike faults last alike, so it is `seq` whenever a window's time ends it.
        seq = self.effects.match(row)
        row = self.effects.in_force[seq]
        end = self.world(Kind.FAULT_END, Source.FAULT, reason=reason, pod=row.get("pod"),
                         agent=row.get("agent"), task=row.get("task"), data=dict(row.get("data") or {}))
        self.write_faults.end(seq)
        return end

    def world(self, kind: Kind, source: Source = Source.WORLD, **fields: Any) -> dict[str, Any]:
        row = self.history.append(HistoryEvent(self.clock.now(), kind, source, **fields))
        self.history.flush()
        return row

    # ---------------------------------------------------------------- views
    def tasks_by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.store.list_tasks():
            counts[t.status.value] = counts.get(t.status.value, 0) + 1
        return counts

    def stuck_count(self) -> int:
        now = self.clock.now()
        return sum(1 for t in self.store.list_tasks(statuses=[TaskStatus.APPLY_PENDING])
                   if t.confirmed and now - (t.apply_confirmed_at or now) > self.config.stuck_after_s)

    def agents_connected(self) -> int:
        now = self.clock.now()
        return sum(1 for b in self.mailboxes.boxes.values() if b.live(now, self.config.agent_stale_s))


def data_dir(path: str | None) -> Path | None:
    return Path(path) if path else None
