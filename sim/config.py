"""The world's configuration: plain frozen records, built by `unstuck.scenario` from a YAML file.

Why here and not in `unstuck`: the simulation sits below the harness (`unstuck -> sim ->
scheduler`), so it cannot import the pydantic scenario model. The scenario layer validates the
file and hands over these records; inside `sim/` they are trusted. Durations are seconds.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from statistics import NormalDist

from sim.kube.hpa import HPASpec
from sim.kube.nodes import NodeTimings
from sim.kube.pods import StartupDelay
from sim.kube.timescale import TimeScale

DIST_KINDS = ("fixed", "uniform", "lognormal", "exponential")
_Z99 = 2.3263478740408408
_EXP_MAX = 709.0  # math.exp overflows above ~709.78: a median 1e-20, p99 1e20 lognormal


@dataclass(frozen=True)
class Dist:
    """A duration distribution.

    fixed: always `a`; uniform: on [a, b]; lognormal: median `a`, 99th percentile `b`;
    exponential: mean `a`. Every draw is floored at `minimum`.
    """

    kind: str = "fixed"
    a: float = 0.0
    b: float = 0.0
    minimum: float = 0.0

    def sample(self, rng: random.Random) -> float:
        k = self.kind
        if k == "fixed":
            x = self.a
        elif k == "uniform":
            x = rng.uniform(self.a, self.b)
        elif k == "lognormal":
            sigma = (math.log(self.b) - math.log(self.a)) / _Z99 if self.b > self.a else 0.0
            x = rng.lognormvariate(math.log(self.a), sigma)
        else:
            x = rng.expovariate(1.0 / self.a) if self.a > 0 else 0.0
        return x if x > self.minimum else self.minimum

    def mean(self) -> float:
        """About the mean draw (the floor taken as a lower bound, not integrated): what a
        scenario's arrival gaps must leave room for."""
        k = self.kind
        if k == "lognormal":
            sigma = (math.log(self.b) - math.log(self.a)) / _Z99 if self.b > self.a else 0.0
            x = self.a * math.exp(min(sigma * sigma / 2, _EXP_MAX))
        else:
            x = {"fixed": self.a, "uniform": (self.a + self.b) / 2, "exponential": self.a}.get(k, self.a)
        return max(x, self.minimum)

    def quantile(self, q: float) -> float:
        """The `q`-quantile of a draw (floored as the draws are): what a scenario's drain and
        bounds must leave room for."""
        k = self.kind
        if k == "fixed":
            x = self.a
        elif k == "uniform":
            x = self.a + q * (self.b - self.a)
        elif k == "lognormal":
            sigma = (math.log(self.b) - math.log(self.a)) / _Z99 if self.b > self.a else 0.0
            x = self.a * math.exp(min(sigma * NormalDist().inv_cdf(q), _EXP_MAX))
        else:
            x = -self.a * math.log(1.0 - q)
        return max(x, self.minimum)


def fixed(x: float) -> Dist:
    return Dist("fixed", x)


@dataclass(frozen=True)
class HPAConfig:
    """A Deployment pool's HPA. Its metric comes from the world: a total `load` (in units of
    one pod at 100 %) spread evenly over the ready pods; `load = target * n` holds n pods."""

    spec: HPASpec
    load: float


@dataclass(frozen=True)
class PoolConfig:
    id: str
    manager: str = "bare"  # bare | deployment
    min_replicas: int = 1
    max_replicas: int = 4
    freeze_windows: tuple[tuple[float, float], ...] = ()  # seconds of the day
    hpa: HPAConfig | None = None
    initial_replicas: int | None = None  # deployment: spec.replicas at t=0 (default: min)


@dataclass(frozen=True)
class ClusterConfig:
    nodes: int = 3
    node_timings: NodeTimings = field(default_factory=NodeTimings)
    pod_startup: StartupDelay = field(default_factory=StartupDelay)
    grace_s: float = 30.0
    """terminationGracePeriodSeconds of agent pods (the seed never sets it: API default)."""
    watch_latency_s: float = 0.05
    """Delay between an API change and the controllers (ReplicaSet) acting on it."""
    deployments_first: bool = False
    """The pools' Deployments, and their ReplicaSets' first pods, exist before the scheduler
    first starts (a live cluster: the agents applied before `unstuck serve`). By default the
    cluster starts with the scheduler, whose first look finds no pod: the seed then creates a
    bare pod of its own beside the Deployment's, which a live run never shows."""


@dataclass(frozen=True)
class AgentConfig:
    connect: Dist = field(default_factory=lambda: Dist("uniform", 20.0, 90.0))
    """From pod Running to the C&C connect (seed-system.md §8: environment-dependent, 20-90 s)."""
    plan: Dist = field(default_factory=lambda: Dist("lognormal", 60.0, 240.0, 5.0))
    apply: Dist = field(default_factory=lambda: Dist("lognormal", 90.0, 400.0, 5.0))
    has_changes: float = 0.9
    plan_fail: float = 0.0
    apply_fail: float = 0.0
    claim: Dist = field(default_factory=lambda: fixed(0.0))
    """Our agent's claim in flight: from a run's arrival (an apply's, with the state lock
    taken) to the scheduler storing the claim. The window in which the run holds the lock
    but has not begun; 0 claims at once and draws nothing. The seed's agent claims nothing."""
    heartbeat_s: float = 10.0
    notice_after_s: float = 0.05
    reconnect_base_s: float = 2.0
    reconnect_cap_s: float = 60.0
    silent_close_s: float | None = None
    """Seconds after which the server closes the C&C session of an agent it no longer hears
    (cut off, or frozen on a lost node). None: never, as the seed's WebSocket through a
    partition, which only the missing heartbeats give away. unstuck's live service closes a
    long-poll session that stopped polling (`--poll-timeout` plus `--agent-stale`)."""


@dataclass(frozen=True)
class UserConfig:
    confirm: Dist = field(default_factory=lambda: Dist("lognormal", 120.0, 1800.0, 5.0))
    never_confirm: float = 0.0
    double_click: float = 0.0
    double_click_gap_s: float = 0.3
    cancel: float = 0.0
    name: str = "alice"
    cancel_anytime: float = 0.0
    """Probability that a created task is cancelled by its user, at any stage, a
    `cancel_anytime_delay` draw after its creation (0: never; draws nothing)."""
    cancel_anytime_delay: Dist = field(default_factory=lambda: Dist("uniform", 0.0, 600.0))
    click_retries: int = 0
    """Clicks again after a Confirm or a Cancel answered 5xx, at most (0: the user walks
    away)."""
    click_retry: Dist = field(default_factory=lambda: fixed(5.0))
    run_triggers: float = 0.0
    """Probability that a created plan_and_apply task is a run trigger's (its description
    starts "Triggered by workspace"; 0: never, draws nothing)."""


@dataclass(frozen=True)
class WorkspaceGroup:
    """`count` workspaces on `pool`; each creates tasks at `at` times and/or every
    `every_s` on average (exponential gaps), until the workload ends."""

    count: int = 1
    pool: str = "pool-1"
    prefix: str = "ws"
    names: tuple[str, ...] = ()
    at: tuple[float, ...] = ()
    every_s: float | None = None
    types: tuple[tuple[str, float], ...] = (("plan_and_apply", 1.0),)

    def workspace_names(self) -> tuple[str, ...]:
        if self.names:
            return self.names
        return tuple(f"{self.prefix}-{i}" for i in range(1, self.count + 1))


TARGETED_FAULTS = ("pod-kill", "node-loss", "agent-disconnect", "agent-partition")  # the faults that take a `target`


def names_target(fault_type: str, target: str) -> bool:
    """Whether a fault's row (and its summary) names its target: a targeted fault always; a
    fault that may only be aimed at a state (a db-write-failure) when it is."""
    return fault_type in TARGETED_FAULTS or target != "random"


@dataclass(frozen=True)
class FaultSpec:
    """One fault: at a time (`at`, retried every `retry_s` until a target exists, for at most
    `within_s`) or at a random rate (`rate_per_h` between `start_s` and `end_s`)."""

    type: str
    at: float | None = None
    rate_per_h: float | None = None
    start_s: float = 0.0
    end_s: float | None = None
    within_s: float = 600.0
    retry_s: float = 5.0
    target: str = "random"  # random | reserved-holder | apply-runner (TARGETED_FAULTS only)
    mode: str = "forced"  # pod-kill: graceful | forced; hpa-scale-down: metric | patch
    pool: str | None = None
    heal_after: float | None = None
    duration_s: float | None = None
    rate: float = 1.0  # db-write-failure: probability that a write fails
    reconnect_after: float | Dist | None = None  # agent-disconnect: seconds, or a draw per fault
    load: float | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    gap_s: float = 0.3
    freeze_s: float = 600.0
    rank_first: str | None = None  # hpa-scale-down: a target (as `target`) ranked first for deletion
    down_s: float | Dist | None = None  # scheduler-restart: the kill to the new process serving (None: at once)


def hpa_fault_pool(pool: str | None, hpa_pools: Iterable[str]) -> str | None:
    """The pool an hpa-scale-down acts on: its own `pool`, else the first pool (by id) that
    has an HPA. One rule for validation and the world: the world took the first Deployment,
    and one without an HPA sorting first made a fault validation had accepted never fire."""
    return pool if pool is not None else min(hpa_pools, default=None)


@dataclass(frozen=True)
class WorldConfig:
    name: str = "scenario"
    duration_s: float = 3600.0
    """Tasks arrive and faults fire until then; the drain follows."""
    drain_s: float = 1800.0
    bound_s: float = 600.0
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    pools: tuple[PoolConfig, ...] = (PoolConfig("pool-1"),)
    agents: AgentConfig = field(default_factory=AgentConfig)
    users: UserConfig = field(default_factory=UserConfig)
    workload: tuple[WorkspaceGroup, ...] = (WorkspaceGroup(),)
    faults: tuple[FaultSpec, ...] = ()
    clock_origin_s: float = 0.0
    """Seconds of the day at t = 0 (freeze windows are times of day)."""
    time_scale: float = 1.0
    """How fast the clocks of Kubernetes, the scheduler and the agents' protocol run against
    real time (`compressed`); the World scales the scheduler's settings by it."""

    @property
    def end_s(self) -> float:
        return self.duration_s + self.drain_s


def compressed(cfg: WorldConfig, time_scale: float) -> WorldConfig:
    """The world of a run whose clocks run `time_scale` times real time, as unstuck's local
    recipe runs a live one (docs/chaos.md: the cluster at `--time-scale 10`, the service at
    `--time-scale 0.1`), so that a simulation of it says what that run should see, second for
    second (`unstuck conform`, docs/conformance.md).

    Scaled: Kubernetes' timings (node leases and evictions, pod start-up and termination
    grace, the watch's latency, each pool's HPA sync, windows and policies: what the local
    cluster's flag scales), the agents' protocol (heartbeats, reconnects) and, in the World,
    the scheduler's settings (what the service's flag scales). Not scaled: what describes the
    run itself, in its own seconds (the workload, the agents' connect, plan and apply times,
    the users, the faults, the bounds, `duration_s` and `drain_s`)."""
    if time_scale == 1.0:
        return cfg
    scale = TimeScale(1.0 / time_scale)
    pools = tuple(p if p.hpa is None else replace(p, hpa=scale.apply(p.hpa)) for p in cfg.pools)
    agents = replace(cfg.agents, **{k: getattr(cfg.agents, k) * time_scale for k in (
        "heartbeat_s", "notice_after_s", "reconnect_base_s", "reconnect_cap_s")})
    return replace(cfg, cluster=scale.apply(cfg.cluster), pools=pools, agents=agents,
                   time_scale=time_scale)
