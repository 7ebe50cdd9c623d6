"""The world: one scheduler core driven through its ports by a simulated cluster, agents,
users and faults, in SimPy time.

`World(cfg, variant, seed).run()` returns the history rows, closed by `run.end`. Everything
random draws from child streams of `seed` (`sim.rng`); nothing reads a clock. The same
(config, variant, seed, perturb_ties) gives byte-identical rows in any process.

How the world drives the core (the same contract as `scheduler.testing.Script`):
* boot with `Restart()` at t = 0; a `scheduler-restart` fault sends `Restart()` again, drops
  every C&C connection and discards the scheduler's pending wake-ups (they were goroutines of
  the dead process: `Timer.wake_at` wake-ups carry the epoch they were asked in); with a
  `down_s`, the `Restart()` comes that much later and every call between is answered 503;
* watch events (`PodAdded`, `PodTerminating`, `PodRemoved`) and a closed connection's
  `AgentDisconnected` are delivered as their own events, never inside a scheduler call;
* the history sink also tells the users when a task enters apply_pending (what the UI shows).
"""

from __future__ import annotations

import random
from typing import Any

from scheduler import events as ev
from scheduler.core import Context, Scheduler
from scheduler.history import History, HistoryEvent, Kind, Source
from scheduler.model import FreezeWindow, Pool, Workspace
from scheduler.settings import SeedQuirks, Settings, scaled_settings
from scheduler.stores.memory import MemoryStore
from scheduler.variants import policy_class
from sim import rng as rngs
from sim.agents import AgentFleet
from sim.cluster import ClusterSim
from sim.config import WorldConfig
from sim.faults import Faults
from sim.kernel import Kernel
from sim.state import StateSim
from sim.users import Users

_APPLY_PENDING = "apply_pending"
_UNAVAILABLE = ev.Outcome(False, 503, message="no scheduler process is serving (restarting)")


class _WorldHistory(History):
    """The history sink; it also shows the users their tasks' new status."""

    __slots__ = ("users",)

    def __init__(self) -> None:
        super().__init__()
        self.users: Users | None = None

    def append(self, event: HistoryEvent) -> None:
        self.events.append(event)
        if event.to_status == _APPLY_PENDING and event.kind is Kind.TASK_TRANSITION and self.users:
            self.users.saw_apply_pending(event.task)  # type: ignore[arg-type]


class World:
    def __init__(self, cfg: WorldConfig, variant: str, seed: int, *,
                 perturb_ties: bool = False, settings: Settings | None = None) -> None:
        self.cfg = cfg
        self.variant = variant
        self.seed = seed
        self.kernel = Kernel(self.rng("ties") if perturb_ties else None)
        self.history = _WorldHistory()
        self.store = MemoryStore()
        for pc in cfg.pools:
            self.store.put_pool(Pool(
                pc.id, pc.min_replicas, pc.max_replicas,
                freeze_windows=tuple(FreezeWindow(a, b) for a, b in pc.freeze_windows),
                # An HPA owns a Deployment pool's count when one is configured.
                manager="hpa" if pc.manager == "deployment" and pc.hpa is not None else pc.manager,
            ))
        for group in cfg.workload:
            for ws in group.workspace_names():
                self.store.put_workspace(Workspace(ws, pool_id=group.pool))
        self.plan_pod: dict[int, str] = {}
        self.epoch = 0
        self.booted = False
        self.down = False  # between a restart's kill and its new process (`down_s`)
        policy = policy_class(variant)
        self.agent_on_sigterm: str = policy.agent_on_sigterm  # the agent this variant ships
        self.agent_reports: str = policy.agent_reports
        self.agent_state_lease_s: float | None = policy.agent_state_lease_s
        self.agent_claims_runs: bool = policy.agent_claims_runs
        self.state = StateSim(self.kernel, self.agent_state_lease_s)
        self.cluster = ClusterSim(self)
        self.agents = AgentFleet(self)
        self.users = Users(self)
        self.faults = Faults(self)
        self.history.users = self.users
        if settings is None:
            settings = Settings(seed=SeedQuirks(clock_origin_s=cfg.clock_origin_s))
            if cfg.time_scale != 1.0:  # a compressed run's (sim.config.compressed)
                settings = scaled_settings(settings, cfg.time_scale)
        ctx = Context(store=self.store, cluster=self.cluster, agents=self.agents, timer=self,
                      history=self.history, rng=self.rng("scheduler"), settings=settings,
                      state=self.state)
        self.scheduler = Scheduler(policy(ctx), ctx)

    def rng(self, stream: str) -> random.Random:
        return rngs.child(self.seed, stream)

    # ------------------------------------------------------------------ the core
    def send(self, event: Any) -> ev.Outcome:
        if self.down:
            return _UNAVAILABLE
        return self.scheduler.handle(event, self.kernel.env._now)

    def notify(self, event: Any) -> None:
        """Deliver a watch or connection event as its own step, after the current one."""
        self.kernel.after(self.cfg.cluster.watch_latency_s, self.send, event)

    def wake_at(self, when: float, tag: ev.TimerTag) -> None:
        self.kernel.at(when, self._wake, tag, self.epoch)

    def _wake(self, tag: ev.TimerTag, epoch: int) -> None:
        if epoch == self.epoch:  # wake-ups die with the process that asked for them
            self.scheduler.handle(ev.TimerFired(tag), self.kernel.env._now)  # `send`, inlined

    def restart_scheduler(self, down_s: float = 0.0) -> None:
        """Kill the scheduler's process; the new one boots `down_s` later. Meanwhile nothing
        is served: every call is answered 503, as a refused connection is (an agent's register
        or report, a user's click: each retries as it would live), and the watch events of
        the gap are lost, as the dead process's informer's are (the new one lists the pods)."""
        self.epoch += 1
        self.agents.drop_all()
        if down_s > 0:
            self.down = True
            self.kernel.after(down_s, self._serve, self.epoch)
        else:
            self._serve(self.epoch)

    def _serve(self, epoch: int) -> None:
        if epoch == self.epoch:  # not killed again while it started
            self.down = False
            self.send(ev.Restart())

    def record(
        self, kind: Kind, source: Source = Source.WORLD, *, task: int | None = None,
        workspace: str | None = None, pod: str | None = None, slot: int | None = None,
        agent: str | None = None, from_status: str | None = None, to_status: str | None = None,
        reason: str = "", data: dict[str, Any] | None = None,
    ) -> None:
        """Append a world row (fields passed on by position, as `Context.record` does)."""
        self.history.events.append(HistoryEvent(
            self.kernel.env._now, kind, source, task, workspace, pod, slot, agent, from_status,
            to_status, reason, data))

    # ------------------------------------------------------------------ run
    def _boot(self) -> None:
        if self.booted:
            # A second boot would start a second scheduler, cluster and set of users.
            raise RuntimeError("the world was booted twice: call World.run(), or schedule "
                               "_boot and run the kernel yourself, not both")
        self.booted = True
        if self.cfg.cluster.deployments_first:
            self.cluster.start(at_once=True)
            self.send(ev.Restart())
        else:
            self.send(ev.Restart())
            self.cluster.start()
        self.users.start()
        self.faults.start()

    def run(self, *, release: bool = False) -> list[dict[str, Any]]:
        """Run to the end and return the rows; `release=True` empties `history` while it
        serialises it (for callers that only want the rows)."""
        self.kernel.at(0.0, self._boot)
        self.kernel.run(self.cfg.end_s)
        self.record(Kind.RUN_END, Source.HARNESS,
                    data={"drain_s": self.cfg.drain_s, "bound_s": self.cfg.bound_s,
                          "seed": self.seed, "scheduler": self.variant,
                          "scenario": self.cfg.name, "faults_fired": self.faults.fired,
                          "faults_missed": self.faults.missed})
        return self.history.rows(release=release)
