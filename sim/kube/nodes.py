"""Node lifecycle: lease grace, the Unknown condition, taints and taint-based eviction.

Why: when a node is lost its pods stop at once, but Kubernetes only notices about 50 s later
and evicts them (creating replacements) 300 s after that. A scheduler that waits for the pod
object to go away waits those six minutes; these functions give both worlds the same clock.

Timeline (k8s-semantics.md §0.4, §4.1-4.2; defaults of Kubernetes >= 1.32):
* the kubelet renews its Lease every 10 s;
* the node lifecycle controller checks every node every 5 s; a node whose newest renewal is
  older than 50 s (strictly) goes Ready=Unknown, its pods go Ready=False (their phase stays
  Running) and it gets the `unreachable` taints; until then the control plane sees it Ready;
* the NoExecute taints are added through a per-zone token bucket (0.1 node/s, burst 1) whose
  rate follows the zone state, re-evaluated on every pass (`zone_state`, `swap_limiter`);
  when every node is Unknown, tainting stops and the NoExecute taints are lifted;
* each pod tolerates the taint for 300 s (the DefaultTolerationSeconds admission plugin),
  then the taint-eviction controller deletes it (a normal graceful delete).

Quantisation: monitor passes run at `phase_s + k * monitor_period_s`; the flip to Unknown is
the first pass strictly after `last renewal + grace`. Upstream stamps a renewal when a pass
observes it and its passes drift by their run time; we take the renewal time itself, which
matches the spec's "50 s after the last renewal plus up to 5 s".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sim.kube._validate import require

READY = "Ready"
UNKNOWN = "Unknown"  # kubelet silent: lease too old
NOT_READY = "NotReady"  # kubelet alive but reports Ready=False
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
NORMAL = "Normal"  # zone states of upstream `ComputeZoneState`
PARTIAL_DISRUPTION = "PartialDisruption"
FULL_DISRUPTION = "FullDisruption"


@dataclass(frozen=True)
class NodeTimings:
    """Node lifecycle settings with the defaults of Kubernetes >= 1.32 (§0.4); the zone fields
    are the KCM's secondary eviction rate, unhealthy-zone threshold and large-cluster size."""

    lease_renew_s: float = 10.0
    monitor_period_s: float = 5.0
    grace_s: float = 50.0
    toleration_s: float = 300.0
    eviction_rate_per_s: float = 0.1
    secondary_eviction_rate_per_s: float = 0.01
    unhealthy_zone_threshold: float = 0.55
    large_cluster_size: int = 50

    def __post_init__(self) -> None:
        for name in ("lease_renew_s", "monitor_period_s", "grace_s"):
            require(
                getattr(self, name) > 0, f"NodeTimings.{name}", getattr(self, name), "must be > 0"
            )
        require(
            self.toleration_s >= 0, "NodeTimings.toleration_s", self.toleration_s, "must be >= 0"
        )
        require(
            self.eviction_rate_per_s >= 0,
            "NodeTimings.eviction_rate_per_s",
            self.eviction_rate_per_s,
            "must be >= 0",
        )


def last_renewal(now: float, started_at: float, timings: NodeTimings) -> float:
    """The latest lease renewal at or before `now` of a kubelet renewing since `started_at`."""
    return (
        started_at + math.floor((now - started_at) / timings.lease_renew_s) * timings.lease_renew_s
    )


def node_condition(last_lease_renewal: float, now: float, timings: NodeTimings) -> str:
    """What a monitor pass at `now` concludes: Unknown once the renewal is older than the grace."""
    return UNKNOWN if now - last_lease_renewal > timings.grace_s else READY


def next_monitor_time(after: float, timings: NodeTimings, *, phase_s: float = 0.0) -> float:
    """The first monitor pass strictly after `after`."""
    k = math.floor((after - phase_s) / timings.monitor_period_s) + 1
    return phase_s + k * timings.monitor_period_s


def unknown_at(last_lease_renewal: float, timings: NodeTimings, *, phase_s: float = 0.0) -> float:
    """When the controller marks a silent node Unknown and taints it (no renewal after
    `last_lease_renewal`)."""
    return next_monitor_time(last_lease_renewal + timings.grace_s, timings, phase_s=phase_s)


def taints_for(condition: str) -> tuple[str, ...]:
    """Taints the node lifecycle controller keeps on a node in `condition` (key:effect)."""
    key = {UNKNOWN: UNREACHABLE_TAINT, NOT_READY: NOT_READY_TAINT}.get(condition)
    return () if key is None else (f"{key}:NoExecute", f"{key}:NoSchedule")


def eviction_at(tainted_at: float, toleration_s: float | None) -> float:
    """When the taint-eviction controller deletes a pod: taint time + its tolerationSeconds.
    None means tolerated forever (never evicted); <= 0 means at once."""
    if toleration_s is None:
        return math.inf
    return tainted_at + max(0.0, toleration_s)


def zone_state(not_ready: int, total: int, timings: NodeTimings) -> str:
    """Upstream `ComputeZoneState` for one zone of `total` nodes, `not_ready` of which have a
    Ready condition that is not True (for a lost node: once the controller marked it Unknown;
    a node whose kubelet died a moment ago still counts as Ready).

    No Ready node at all is full disruption; more than 2 down and at least 55 % down is
    partial disruption. Note: upstream needs more than 2 nodes down, so a 3-node kind cluster
    losing both workers is still Normal.
    """
    if total > 0 and not_ready >= total:
        return FULL_DISRUPTION
    if not_ready > 2 and not_ready / total >= timings.unhealthy_zone_threshold:
        return PARTIAL_DISRUPTION
    return NORMAL


def zone_rate(state: str, total: int, timings: NodeTimings) -> float:
    """NoExecute tainting rate (nodes/s) of a zone in `state` (upstream `setLimiterInZone`),
    for a cluster of one zone. Full disruption of every zone stops tainting (0); partial
    disruption slows it to 0.01/s in clusters of more than 50 nodes and stops it otherwise."""
    if state == FULL_DISRUPTION:
        return 0.0
    if state == PARTIAL_DISRUPTION:
        return timings.secondary_eviction_rate_per_s if total > timings.large_cluster_size else 0.0
    return timings.eviction_rate_per_s


def eviction_rate(not_ready: int, total: int, timings: NodeTimings) -> float:
    """NoExecute tainting rate (nodes/s) for one zone with `not_ready` of `total` nodes down:
    `zone_rate(zone_state(...))`."""
    return zone_rate(zone_state(not_ready, total, timings), total, timings)


@dataclass(frozen=True)
class TaintLimiter:
    """A zone's NoExecute tainting token bucket (burst 1) at `rate_per_s` (0: never).

    Why a value and not a rate: the zone state is re-evaluated on every monitor pass and the
    controller swaps the bucket when it changes (`swap_limiter`); whether the new bucket starts
    full or empty decides when a waiting node is tainted. `next_token_at` is when the bucket
    next holds a token (-inf: it holds one now).
    """

    rate_per_s: float
    next_token_at: float = -math.inf


def next_taint_at(limiter: TaintLimiter, now: float) -> float:
    """When the tainter can taint the next queued node, at or after `now` (inf at rate 0)."""
    return math.inf if limiter.rate_per_s <= 0 else max(now, limiter.next_token_at)


def after_taint(limiter: TaintLimiter, at: float) -> TaintLimiter:
    """The bucket after a taint at `at` (>= `next_taint_at`): empty for 1/rate seconds."""
    return TaintLimiter(limiter.rate_per_s, at + 1.0 / limiter.rate_per_s)


def swap_limiter(limiter: TaintLimiter, rate_per_s: float, now: float) -> TaintLimiter:
    """Upstream `RateLimitedTimedQueue.SwapLimiter` at a zone state change: an equal rate
    keeps the bucket; rate 0 never gives a token; a new positive rate starts a full bucket,
    drained at once if the old one had no token now (so leaving a 0 rate, e.g. full
    disruption, taints the first waiting node 1/rate later, not at once)."""
    if rate_per_s == limiter.rate_per_s:
        return limiter
    if rate_per_s <= 0:
        return TaintLimiter(0.0, math.inf)
    had_token = next_taint_at(limiter, now) <= now
    return TaintLimiter(rate_per_s, -math.inf if had_token else now + 1.0 / rate_per_s)


def taint_times(unknown_times: Sequence[float], rate_per_s: float) -> list[float]:
    """When each node (in order of going Unknown) gets its NoExecute taint at a constant
    rate: the queue is first-in first-out through a `TaintLimiter`, so the first at once and
    the next no sooner than 1/rate later."""
    limiter = TaintLimiter(rate_per_s)
    out: list[float] = []
    for t in sorted(unknown_times):
        at = next_taint_at(limiter, max(t, out[-1]) if out else t)
        if at < math.inf:
            limiter = after_taint(limiter, at)
        out.append(at)
    return out
