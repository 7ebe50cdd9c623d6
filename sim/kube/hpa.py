"""One HorizontalPodAutoscaler (autoscaling/v2) reconcile, as a pure function.

Why: the HPA is where a "scale-down fault" really comes from. Modelling its 300 s
stabilization and rate policies, rather than "drop N pods now", decides *when* agents vanish
under a task. The caller owns the loop: it calls `reconcile` every `spec.sync_period_s`
(15 s; an edit of the HPA is only seen at the next tick) and keeps the returned `state`.

Algorithm (k8s-semantics.md §1.1-1.3; upstream `horizontal.go`, `replica_calculator.go`):

1. The first reconcile records `current` as a recommendation (a controller restart acts like
   "current was recommended just now", so it holds scale-downs for a full window).
2. `current == 0` while `min_replicas != 0`: scaling disabled (ScalingDisabled, inactive).
3. `current` above max / below min: desired is the bound at once, no stabilization or policy.
4. Proposal: ratio = mean(metric_values) / target; within [1-tol, 1+tol] (inclusive) keep
   `current`, else `ceil(ratio * pods with a sample)`. Missing samples and unready pods take
   the conservative recompute of §1.2.
5. Stabilization: records younger than a window (strictly) vote; scale-up goes no higher than
   the MIN of the up window, scale-down no lower than the MAX of the down window.
6. Rate policies over each policy's period, from this HPA's own recorded scale events
   (others' scaling is invisible); select Max / Min / Disabled; then clamp to [min, max].
   Scale-up and scale-down events are kept apart, each pruned by its own direction's
   longest policy period (`storeScaleEvent`).

Simplifications (docs/kube-rules.md): one metric (`metric_values` are the per-pod values of
the pods that have a sample, as utilization ratios or average values); one tolerance for both
directions; the CPU readiness rules are `pod_group`'s, and the caller passes its counts;
the legacy no-`behavior` path is not modelled (defaults behave the same, §1.3). Upstream
truncates a utilization to a whole percent (`GetResourceUtilizationRatio`: int32(total * 100 /
requests)) before dividing it by the target, and so do we (`usage_ratio`); otherwise we work in
floats and absorb 1e-9 of rounding noise at the tolerance edges and in the ceiling.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from sim.kube._validate import require

PODS = "Pods"
PERCENT = "Percent"
SELECT_POLICIES = ("Max", "Min", "Disabled")
TARGET_TYPES = ("Utilization", "AverageValue")
_EPS = 1e-9


@dataclass(frozen=True)
class ScalingPolicy:
    """At most `value` pods (Pods) or `value` % (Percent) of change per `period_s`."""

    type: str  # "Pods" | "Percent"
    value: int
    period_s: float

    def __post_init__(self) -> None:
        require(
            self.type in (PODS, PERCENT), "ScalingPolicy.type", self.type, "use 'Pods' or 'Percent'"
        )
        require(self.value > 0, "ScalingPolicy.value", self.value, "must be > 0")
        require(self.period_s > 0, "ScalingPolicy.period_s", self.period_s, "must be > 0 seconds")


@dataclass(frozen=True)
class HPASpec:
    """An HPA with API defaults (§0.1). `target` is a utilization ratio (0.8 = 80 %) or an
    average value per pod, as `target_type` says; it only matters for missing samples."""

    min_replicas: int = 1
    max_replicas: int = 10
    target: float = 0.8
    tolerance: float = 0.1
    scale_up_window_s: float = 0.0
    scale_down_window_s: float = 300.0
    scale_up_policies: tuple[ScalingPolicy, ...] = (
        ScalingPolicy(PODS, 4, 15.0),
        ScalingPolicy(PERCENT, 100, 15.0),
    )
    scale_down_policies: tuple[ScalingPolicy, ...] = (ScalingPolicy(PERCENT, 100, 15.0),)
    scale_up_select: str = "Max"
    scale_down_select: str = "Max"
    sync_period_s: float = 15.0
    target_type: str = "Utilization"

    def __post_init__(self) -> None:
        require(self.min_replicas >= 0, "HPASpec.min_replicas", self.min_replicas, "must be >= 0")
        require(
            self.max_replicas >= max(1, self.min_replicas),
            "HPASpec.max_replicas",
            self.max_replicas,
            f"must be >= 1 and >= min_replicas ({self.min_replicas})",
        )
        require(self.target > 0, "HPASpec.target", self.target, "must be > 0 (0.8 means 80 %)")
        require(self.tolerance >= 0, "HPASpec.tolerance", self.tolerance, "must be >= 0")
        for name in ("scale_up_window_s", "scale_down_window_s"):
            require(
                getattr(self, name) >= 0, f"HPASpec.{name}", getattr(self, name), "must be >= 0"
            )
        require(self.sync_period_s > 0, "HPASpec.sync_period_s", self.sync_period_s, "must be > 0")
        require(
            self.target_type in TARGET_TYPES,
            "HPASpec.target_type",
            self.target_type,
            f"use one of {TARGET_TYPES}",
        )
        for direction in ("up", "down"):
            select = getattr(self, f"scale_{direction}_select")
            require(
                select in SELECT_POLICIES,
                f"HPASpec.scale_{direction}_select",
                select,
                f"use one of {SELECT_POLICIES}",
            )
            policies = getattr(self, f"scale_{direction}_policies")
            require(
                bool(policies) or select == "Disabled",
                f"HPASpec.scale_{direction}_policies",
                policies,
                "needs at least one policy unless the select policy is 'Disabled'",
            )


@dataclass(frozen=True)
class HPAState:
    """What the controller remembers between reconciles (in memory upstream, lost on restart).

    `recommendations`: (time, raw proposal) pairs; `scale_up_events` / `scale_down_events`:
    (time, replicas added / removed), kept apart as upstream's `scaleUpEvents` and
    `scaleDownEvents`, each pruned by its own direction's longest policy period.
    """

    recommendations: tuple[tuple[float, int], ...] = ()
    scale_up_events: tuple[tuple[float, int], ...] = ()
    scale_down_events: tuple[tuple[float, int], ...] = ()


@dataclass(frozen=True)
class HPADecision:
    """`desired` is the new `spec.replicas` (== current when nothing changes); `reason` is the
    upstream condition reason; `limited` mirrors ScalingLimited, `active` ScalingActive."""

    desired: int
    state: HPAState
    reason: str
    limited: bool
    active: bool


CPU = "cpu"
IGNORED, UNREADY, MISSING, READY = "ignored", "unready", "missing", "ready"


@dataclass(frozen=True)
class ReadinessSettings:
    """The controller manager's flags for the CPU readiness rules (§0.1)."""

    cpu_initialization_period_s: float = 300.0
    """`--horizontal-pod-autoscaler-cpu-initialization-period` (5 min)."""
    initial_readiness_delay_s: float = 30.0
    """`--horizontal-pod-autoscaler-initial-readiness-delay` (30 s)."""


@dataclass(frozen=True)
class PodMetricView:
    """What the HPA reads of one pod for one metric.

    `ready`: the status of the pod's Ready condition ("True", "False", "Unknown"), None when it
    has none; `ready_transition`: that condition's lastTransitionTime. `sample_time`: when the
    pod's latest sample ends (metrics-server's `timestamp`), None when it has no sample;
    `sample_window_s`: the sample's window."""

    phase: str
    deleting: bool = False
    start_time: float | None = None
    ready: str | None = None
    ready_transition: float | None = None
    sample_time: float | None = None
    sample_window_s: float = 0.0


@dataclass(frozen=True)
class PodGroups:
    """Counts of upstream `groupPods`. `ready`: pods whose sample counts; `missing`: counted
    pods without a sample; `unready`: Pending pods and, for CPU, pods the readiness rules
    exclude (`sampled_unready` of them have a sample, which must not be passed).
    `reconcile` takes `ready_pods=counted`, `unready_pods=unready` and `ready` values."""

    ready: int = 0
    missing: int = 0
    unready: int = 0
    sampled_unready: int = 0

    @property
    def counted(self) -> int:
        return self.ready + self.missing


def pod_group(
    pod: PodMetricView,
    now: float,
    resource: str | None,
    settings: ReadinessSettings = ReadinessSettings(),
) -> str:
    """Upstream `groupPods` for one pod (§1.2): IGNORED, UNREADY, MISSING or READY.

    The order is upstream's: deleting or Failed is ignored; Pending is unready; no sample is
    missing (so a Running, NotReady pod without a sample is missing); then, for the `cpu`
    resource only, the readiness rules: no Ready condition or no start time; inside the CPU
    initialization period after start, NotReady (status "False") or a sample that ends
    earlier than one window after the last Ready transition; past it, NotReady with a last
    transition within the initial readiness delay of start (it never became Ready). Every
    comparison is strict, as upstream's `Before` / `After`."""
    if pod.deleting or pod.phase == "Failed":
        return IGNORED
    if pod.phase == "Pending":
        return UNREADY
    if pod.sample_time is None:
        return MISSING
    if resource != CPU:
        return READY
    if pod.ready is None or pod.start_time is None or pod.ready_transition is None:
        return UNREADY
    not_ready = pod.ready == "False"
    if pod.start_time + settings.cpu_initialization_period_s > now:
        fresh = pod.sample_time < pod.ready_transition + pod.sample_window_s
        return UNREADY if not_ready or fresh else READY
    never_ready = pod.start_time + settings.initial_readiness_delay_s > pod.ready_transition
    return UNREADY if not_ready and never_ready else READY


def pod_groups(
    pods: Iterable[PodMetricView],
    now: float,
    resource: str | None,
    settings: ReadinessSettings = ReadinessSettings(),
) -> PodGroups:
    """Upstream `groupPods` (§1.2) over the pods the target's selector matches, as counts
    `reconcile` takes. The simulation and the local control plane both group pods here."""
    ready = missing = unready = sampled_unready = 0
    for pod in pods:
        group = pod_group(pod, now, resource, settings)
        if group == READY:
            ready += 1
        elif group == MISSING:
            missing += 1
        elif group == UNREADY:
            unready += 1
            sampled_unready += pod.sample_time is not None
    return PodGroups(ready, missing, unready, sampled_unready)


@dataclass(frozen=True)
class MetricInput:
    """One more metric for `reconcile`, against the same target: `values` of its ready pods,
    `ready_pods` counted (the surplus are missing), `unready_pods`."""

    values: tuple[float, ...]
    ready_pods: int
    unready_pods: int = 0


def reconcile(
    spec: HPASpec,
    state: HPAState,
    now: float,
    current_replicas: int,
    metric_values: Sequence[float],
    ready_pods: int | None = None,
    *,
    unready_pods: int = 0,
    more_metrics: Sequence[MetricInput] = (),
) -> HPADecision:
    """One reconcile at `now` of a target whose `spec.replicas` is `current_replicas`.

    `metric_values`: one value per ready pod that has a sample. `ready_pods`: ready pods the
    HPA counts (default: one per value); the surplus have no sample ("missing"). `unready_pods`:
    pods that count as 0 on a scale-up. Terminating pods must not be passed at all (§1.2).
    `more_metrics`: further metrics; the proposal is the largest, and a metric without a
    sample stops a scale-down (and all scaling when every metric lacks one), as upstream
    `computeReplicasForMetrics`.
    """
    current = current_replicas
    require(current >= 0, "current_replicas", current, "must be >= 0")
    ready = len(metric_values) if ready_pods is None else ready_pods
    require(
        ready >= len(metric_values),
        "ready_pods",
        ready_pods,
        f"must be >= len(metric_values) ({len(metric_values)})",
    )
    require(unready_pods >= 0, "unready_pods", unready_pods, "must be >= 0")
    for i, m in enumerate(more_metrics):
        require(
            m.ready_pods >= len(m.values) and m.unready_pods >= 0,
            f"more_metrics[{i}]",
            m,
            "needs ready_pods >= len(values) and unready_pods >= 0",
        )
    if not state.recommendations:
        state = replace(state, recommendations=((now, current),))
    if current == 0 and spec.min_replicas != 0:
        return HPADecision(0, state, "ScalingDisabled", limited=False, active=False)
    if current > spec.max_replicas:
        return _rescaled(spec, state, now, current, spec.max_replicas, "TooManyReplicas", True)
    if current < spec.min_replicas:
        return _rescaled(spec, state, now, current, spec.min_replicas, "TooFewReplicas", True)
    proposals = [_proposal(spec, current, metric_values, ready, unready_pods)] + [
        _proposal(spec, current, m.values, m.ready_pods, m.unready_pods) for m in more_metrics
    ]
    valid = [p for p in proposals if p is not None]
    proposal = max(valid) if valid else None
    if proposal is not None and len(valid) < len(proposals) and proposal < current:
        proposal = None  # some metrics failed and the others would scale down: no scaling
    if proposal is None:
        return HPADecision(current, state, "FailedGetMetrics", limited=False, active=False)
    stabilized, records = _stabilize(spec, state.recommendations, now, current, proposal)
    state = replace(state, recommendations=records)
    desired, why = _rate_limited(spec, state, now, current, stabilized)
    limited = desired != stabilized
    if not limited and stabilized != proposal:
        why = "ScaleDownStabilized" if stabilized > proposal else "ScaleUpStabilized"
    return _rescaled(spec, state, now, current, desired, why, limited)


def within_tolerance(ratio: float, tolerance: float) -> bool:
    """Upstream `Tolerances.isWithin`: both bounds inclusive."""
    return abs(ratio - 1.0) <= tolerance + _EPS


def usage_ratio(spec: HPASpec, values: Sequence[float]) -> float:
    """Mean over target, as upstream computes it: a Utilization is first truncated to a whole
    percent (`GetResourceUtilizationRatio`: int32(total * 100 / requests)), so 88.5 % of the
    request is 88 %; an AverageValue is a plain value."""
    mean = sum(values) / len(values)
    if spec.target_type == "Utilization":
        return math.floor(mean * 100 + _EPS) / (spec.target * 100)
    return mean / spec.target


def _ceil(x: float) -> int:
    return math.ceil(x - _EPS)


def _proposal(
    spec: HPASpec, current: int, values: Sequence[float], ready: int, unready: int
) -> int | None:
    """Per-metric replica count (§1.2, resource and Pods metrics). None = no sample: error."""
    if not values:
        return None
    ratio = usage_ratio(spec, values)
    missing = ready - len(values)
    up_with_unready = unready > 0 and ratio > 1.0
    if missing == 0 and not up_with_unready:
        return current if within_tolerance(ratio, spec.tolerance) else _ceil(ratio * len(values))
    # Conservative recompute: missing pods use 100 % (or the target) on a scale-down and 0 on a
    # scale-up; unready pods use 0 on a scale-up.
    filled = list(values)
    if ratio < 1.0:
        busy = max(spec.target, 1.0) if spec.target_type == "Utilization" else spec.target
        filled += [busy] * missing
    elif ratio > 1.0:
        filled += [0.0] * missing
    if up_with_unready:
        filled += [0.0] * unready
    new_ratio = usage_ratio(spec, filled)
    if (
        within_tolerance(new_ratio, spec.tolerance)
        or (ratio < 1.0 < new_ratio)
        or (ratio > 1.0 > new_ratio)
    ):
        return current
    new = _ceil(new_ratio * len(filled))
    if (new_ratio < 1.0 and new > current) or (new_ratio > 1.0 and new < current):
        return current
    return new


def _stabilize(
    spec: HPASpec, records: tuple[tuple[float, int], ...], now: float, current: int, proposal: int
) -> tuple[int, tuple[tuple[float, int], ...]]:
    """Clamp `current` between the up window's min and the down window's max (§1.3 step 1).

    The new record takes the slot of a record older than both windows, as upstream does, so
    the list stays bounded and is never emptied (no second "initial" recommendation).
    """
    # One pass over the records (an HPA reconciles every 15 s all day).
    up_since, down_since = now - spec.scale_up_window_s, now - spec.scale_down_window_s
    obsolete = now - max(spec.scale_up_window_s, spec.scale_down_window_s)
    up = down = proposal
    last_old = -1  # the last record older than both windows
    for i, (t, r) in enumerate(records):
        if t > up_since and r < up:
            up = r
        if t > down_since and r > down:
            down = r
        if t < obsolete:
            last_old = i
    if last_old >= 0:
        records = records[:last_old] + ((now, proposal),) + records[last_old + 1 :]
    else:
        records = records + ((now, proposal),)
    return min(max(current, up), down), records


Events = tuple[tuple[float, int], ...]


def _changed_within(events: Events, now: float, period_s: float) -> int:
    """Upstream `getReplicasChangePerPeriod`: every stored event younger than the period,
    whether or not it is marked outdated for its own direction."""
    return sum(n for t, n in events if t > now - period_s)


def _limit(spec: HPASpec, up: bool, state: HPAState, now: float, current: int) -> int:
    """The furthest the policies of one direction allow from `current` (§1.3 step 2).

    Each policy starts from the replicas at the start of its period, `current - added +
    removed` by this HPA within it; Max takes the most permissive policy, Min the least.
    """
    policies, select = (
        (spec.scale_up_policies, spec.scale_up_select)
        if up
        else (spec.scale_down_policies, spec.scale_down_select)
    )
    if select == "Disabled":
        return current
    limits = []
    for p in policies:
        start = (
            current
            - _changed_within(state.scale_up_events, now, p.period_s)
            + _changed_within(state.scale_down_events, now, p.period_s)
        )
        # Same float expressions as upstream, so Percent rounding matches bit for bit.
        if p.type == PODS:
            limits.append(start + p.value if up else start - p.value)
        elif up:
            limits.append(math.ceil(start * (1 + p.value / 100)))
        else:
            limits.append(int(start * (1 - p.value / 100)))
    most_permissive = (select == "Max") == up
    return max(limits) if most_permissive else min(limits)


def _rate_limited(
    spec: HPASpec, state: HPAState, now: float, current: int, desired: int
) -> tuple[int, str]:
    """Rate policies, then min/max (upstream `convertDesiredReplicasWithBehaviorRate`)."""
    if desired > current:
        limit = max(_limit(spec, True, state, now, current), current)
        if limit < spec.max_replicas:
            return min(desired, limit), "ScaleUpLimit" if desired > limit else "DesiredWithinRange"
        if desired > spec.max_replicas:
            return spec.max_replicas, "TooManyReplicas"
    elif desired < current:
        limit = min(_limit(spec, False, state, now, current), current)
        if limit > spec.min_replicas:
            return max(
                desired, limit
            ), "ScaleDownLimit" if desired < limit else "DesiredWithinRange"
        if desired < spec.min_replicas:
            return spec.min_replicas, "TooFewReplicas"
    return desired, "DesiredWithinRange"


def _rescaled(
    spec: HPASpec,
    state: HPAState,
    now: float,
    current: int,
    desired: int,
    reason: str,
    limited: bool,
) -> HPADecision:
    """Record this HPA's own scale event (used by the rate policies) in its direction's list,
    as upstream `storeScaleEvent`: events older than that direction's longest policy period
    are outdated, and the new event takes the slot of the last outdated one (else it is
    appended). The other direction's list is left alone, so its events keep counting for
    this direction's policies as long as they are stored and young enough."""
    if desired != current:
        up = desired > current
        policies = spec.scale_up_policies if up else spec.scale_down_policies
        longest = max((p.period_s for p in policies), default=0.0)
        events = state.scale_up_events if up else state.scale_down_events
        event = (now, abs(desired - current))
        outdated = [i for i, (t, _) in enumerate(events) if t < now - longest]
        if outdated:
            i = outdated[-1]
            events = events[:i] + (event,) + events[i + 1 :]
        else:
            events = events + (event,)
        field = "scale_up_events" if up else "scale_down_events"
        state = replace(state, **{field: events})
    return HPADecision(desired, state, reason, limited=limited, active=True)
