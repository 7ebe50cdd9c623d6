"""HPA v2: every (scaled) sync period, read the target's scale, ask the metric source, and let
`sim.kube.hpa.reconcile` decide; write the scale subresource and the HPA's status.

The controller keeps each HPA's `HPAState` (recommendations and scale events) in memory,
as upstream does, so a control-plane restart forgets stabilization history exactly like a
kube-controller-manager restart.
"""

from __future__ import annotations

import logging

from chaos.cluster import defaults, meta, podstatus, resources
from chaos.cluster.controllers.base import Controller
from chaos.cluster.errors import ApiError
from chaos.cluster.events import Recorder
from chaos.cluster.metrics import MetricSource, MetricUnavailable
from chaos.cluster.registry import Registry
from chaos.cluster.selectors import parse_label_selector
from sim.kube import hpa as hpa_rules
from sim.kube.timescale import TimeScale

log = logging.getLogger(__name__)
_TARGETS = {"Deployment": resources.DEPLOYMENTS, "ReplicaSet": resources.REPLICASETS}


def _policies(rules: dict | None, scale: TimeScale, default):
    if not rules or not rules.get("policies"):
        return default
    return tuple(hpa_rules.ScalingPolicy(p["type"], int(p["value"]),
                                         scale.scaled(p["periodSeconds"]))
                 for p in rules["policies"])


def spec_of(hpa: dict, scale: TimeScale) -> hpa_rules.HPASpec:
    """The shared rules' view of an HPA object, with every duration time-scaled."""
    spec = hpa["spec"]
    base = hpa_rules.HPASpec()
    metric = (spec.get("metrics") or [{}])[0]
    member = defaults.METRIC_SOURCE_FIELD.get(metric.get("type", "Resource"), "resource")
    goal = (metric.get(member) or {}).get("target") or {}
    if goal.get("type", "Utilization") == "Utilization" and "averageUtilization" in goal:
        value, kind = goal["averageUtilization"] / 100.0, "Utilization"
    else:
        value = defaults.parse_quantity(goal.get("averageValue") or goal.get("value") or 1)
        kind = "AverageValue"
    behavior = spec.get("behavior") or {}
    up, down = behavior.get("scaleUp") or {}, behavior.get("scaleDown") or {}
    return hpa_rules.HPASpec(
        min_replicas=spec.get("minReplicas", 1), max_replicas=spec["maxReplicas"],
        target=value, target_type=kind,
        scale_up_window_s=scale.scaled(up.get("stabilizationWindowSeconds",
                                               base.scale_up_window_s)),
        scale_down_window_s=scale.scaled(down.get("stabilizationWindowSeconds",
                                                  base.scale_down_window_s)),
        scale_up_policies=_policies(up, scale, tuple(
            hpa_rules.ScalingPolicy(p.type, p.value, scale.scaled(p.period_s))
            for p in base.scale_up_policies)),
        scale_down_policies=_policies(down, scale, tuple(
            hpa_rules.ScalingPolicy(p.type, p.value, scale.scaled(p.period_s))
            for p in base.scale_down_policies)),
        scale_up_select=up.get("selectPolicy", "Max"),
        scale_down_select=down.get("selectPolicy", "Max"),
        sync_period_s=scale.scaled(base.sync_period_s))


def resource_of(hpa: dict) -> str | None:
    """The resource name of the HPA's (first) metric for a Resource metric, None for the
    others; an HPA without metrics defaults to CPU (§0.1)."""
    metrics = hpa["spec"].get("metrics") or [{"type": "Resource", "resource": {"name": "cpu"}}]
    metric = metrics[0]
    if metric.get("type", "Resource") != "Resource":
        return None
    return (metric.get("resource") or {}).get("name")


def failed_metric_reason(hpa: dict) -> str:
    """Upstream's reason when the (first) metric cannot be read: FailedGetResourceMetric,
    FailedGetPodsMetric, FailedGetObjectMetric, ... by the metric's type (CPU by default)."""
    return f"FailedGet{((hpa['spec'].get('metrics') or [{}])[0]).get('type', 'Resource')}Metric"


def metric_name(hpa: dict) -> str:
    """How upstream's controller names the (first) metric in its messages
    (`metricNameProposal`)."""
    metric = (hpa["spec"].get("metrics") or [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization"}}}])[0]
    kind = metric.get("type", "Resource")
    member = defaults.METRIC_SOURCE_FIELD.get(kind, "resource")
    source = metric.get(member) or {}
    if kind in ("Resource", "ContainerResource"):
        what = "resource" if kind == "Resource" else "container resource"
        if (source.get("target") or {}).get("type", "Utilization") == "Utilization":
            return f"{source.get('name')} {what} utilization (percentage of request)"
        return f"{source.get('name')} {what}"
    name = (source.get("metric") or {}).get("name")
    if kind == "Pods":
        return f"pods metric {name}"
    if kind == "Object":
        return f"{(source.get('describedObject') or {}).get('kind')} metric {name}"
    return f"external metric {name}"


# Upstream's ScalingLimited (convertDesiredReplicasWithRules / ...WithBehaviorRate) and
# AbleToScale stabilization messages, by reason.
_LIMIT_MESSAGES = {
    "TooManyReplicas": "the desired replica count is more than the maximum replica count",
    "TooFewReplicas": "the desired replica count is less than the minimum replica count",
    "ScaleUpLimit": "the desired replica count is increasing faster than the maximum scale rate",
    "ScaleDownLimit": "the desired replica count is decreasing faster than the maximum scale "
                      "rate",
    "DesiredWithinRange": "the desired count is within the acceptable range",
}
_STABILIZED_MESSAGES = {
    "ScaleDownStabilized": "recent recommendations were higher than current one, applying the "
                           "highest recent recommendation",
    "ScaleUpStabilized": "recent recommendations were lower than current one, applying the "
                         "lowest recent recommendation",
}


class HPAController(Controller):
    name = "hpa"
    on_change = False

    def __init__(self, registry: Registry, recorder: Recorder, scale: TimeScale,
                 source: MetricSource) -> None:
        self.registry = registry
        self.store = registry.store
        self.recorder = recorder
        self.scale = scale
        self.source = source
        self.period_s = scale.scaled(hpa_rules.HPASpec().sync_period_s)
        self.states: dict[str, hpa_rules.HPAState] = {}  # hpa uid -> remembered state

    def sync(self, now: float) -> None:
        hpas, _ = self.store.list(resources.HPAS)
        live = set()
        for hpa in hpas:
            live.add(hpa["metadata"]["uid"])
            try:
                self._sync_one(hpa, now)
            except ApiError as err:
                log.debug("hpa %s: %s", hpa["metadata"]["name"], err.message)
        self.states = {k: v for k, v in self.states.items() if k in live}

    def _sync_one(self, hpa: dict, now: float) -> None:
        ns = hpa["metadata"]["namespace"]
        ref = hpa["spec"]["scaleTargetRef"]
        res = _TARGETS.get(ref.get("kind"))
        if res is None:
            return self._status(hpa, None, None, "FailedGetScale",
                                f"unsupported scale target kind {ref.get('kind')!r}", now)
        scale = self.registry.get_scale(res, ns, ref["name"])
        current = scale["spec"]["replicas"]
        selector = parse_label_selector(scale["status"]["selector"])
        pods = [p for p in self.store.list(resources.PODS, ns)[0]
                if selector(meta.labels_of(p)) and podstatus.is_active(p)]
        # The sources sample ready pods only: a Running pod that is not ready is missing. A
        # sample is taken now and covers one metrics-server window; for a CPU metric the
        # shared rules then drop the samples of pods still initializing (§1.2).
        views = [self._metric_view(p, now) for p in pods]
        groups = hpa_rules.pod_groups(views, now, resource_of(hpa), hpa_rules.ReadinessSettings(
            self.scale.scaled(hpa_rules.ReadinessSettings().cpu_initialization_period_s),
            self.scale.scaled(hpa_rules.ReadinessSettings().initial_readiness_delay_s)))
        ready = sum(1 for p in pods if podstatus.is_ready(p))
        try:
            values, missing = self.source.sample(hpa, ready), "the metric source has no sample yet"
        except MetricUnavailable as err:  # upstream reconciles on: bounds apply, count kept
            values, missing = None, str(err)
        if values is not None and groups.sampled_unready:
            # The values are per pod but anonymous: drop as many as the rules excluded.
            values = values[:max(0, len(values) - groups.sampled_unready)]
        counted, unready = groups.counted, groups.unready
        spec = spec_of(hpa, self.scale)
        uid = hpa["metadata"]["uid"]
        # Reconciled without a sample too, as upstream does: the first sync records the
        # initial recommendation (which holds later scale-downs), and a target outside
        # [min, max] goes to its bound without any metric.
        decision = hpa_rules.reconcile(spec, self.states.get(uid, hpa_rules.HPAState()), now,
                                       current, values or [],
                                       ready_pods=max(counted, len(values or [])),
                                       unready_pods=unready)
        self.states[uid] = decision.state
        if values is None and decision.reason == "FailedGetMetrics":
            return self._status(hpa, current, None, failed_metric_reason(hpa), missing, now)
        if decision.desired != current:
            self.registry.set_scale(res, ns, ref["name"], {"spec": {"replicas": decision.desired}})
            if current > spec.max_replicas:
                why = "Current number of replicas above Spec.MaxReplicas"
            elif current < spec.min_replicas:
                why = "Current number of replicas below Spec.MinReplicas"
            elif decision.desired > current:
                why = f"{metric_name(hpa)} above target"
            else:
                why = "All metrics below target"
            self.recorder.record(hpa, "SuccessfulRescale",
                                 f"New size: {decision.desired}; reason: {why}",
                                 component="horizontal-pod-autoscaler")
        self._status(hpa, current, decision, decision.reason, "", now, values=values,
                     in_range=spec.min_replicas <= current <= spec.max_replicas)

    def _metric_view(self, pod: dict, now: float) -> hpa_rules.PodMetricView:
        cond = podstatus.condition(pod, "Ready")
        return hpa_rules.PodMetricView(
            phase=podstatus.phase(pod), deleting=podstatus.is_terminating(pod),
            start_time=meta.parse_time(pod.get("status", {}).get("startTime")),
            ready=cond.get("status") if cond else None,
            ready_transition=meta.parse_time(cond.get("lastTransitionTime")) if cond else None,
            sample_time=now if podstatus.is_ready(pod) else None,
            sample_window_s=self.scale.scaled(defaults.METRIC_WINDOW_S))

    def _status(self, hpa, current, decision, reason, message, now, values=None,
                in_range=True) -> None:
        """Status and the conditions upstream's controller sets in the same situation (a
        condition it would not touch keeps its previous value)."""
        old = hpa.get("status") or {}
        stamp = meta.timestamp(now)
        previous = {c["type"]: c for c in old.get("conditions") or []}
        conditions = dict(previous)

        def cond(type_, ok, why, text):
            flag = "True" if ok else "False"
            prior = previous.get(type_)
            conditions[type_] = {
                "type": type_, "status": flag, "reason": why, "message": text,
                "lastTransitionTime": prior["lastTransitionTime"]
                if prior and prior["status"] == flag else stamp}

        status = {"currentReplicas": current if current is not None else
                  old.get("currentReplicas", 0),
                  "desiredReplicas": decision.desired if decision else
                  old.get("desiredReplicas", 0)}
        if decision is not None and current is not None and decision.desired != current:
            status["lastScaleTime"] = stamp
        elif old.get("lastScaleTime"):
            status["lastScaleTime"] = old["lastScaleTime"]
        if current is None:
            cond("AbleToScale", False, reason,
                 f"the HPA controller was unable to get the target's current scale: {message}")
        else:
            cond("AbleToScale", True, "SucceededGetScale",
                 "the HPA controller was able to get the target's current scale")
            if decision is None or reason == "FailedGetMetrics":
                cond("ScalingActive", False, failed_metric_reason(hpa),
                     f"the HPA was unable to compute the replica count: {message}")
            elif reason == "ScalingDisabled":
                cond("ScalingActive", False, "ScalingDisabled",
                     "scaling is disabled since the replica count of the target is zero")
            elif in_range:  # outside [min, max] upstream rescales to the bound, metrics unread
                cond("ScalingActive", True, "ValidMetricFound", "the HPA was able to "
                     f"successfully calculate a replica count from {metric_name(hpa)}")
                if reason in _STABILIZED_MESSAGES:
                    cond("AbleToScale", True, reason, _STABILIZED_MESSAGES[reason])
                else:
                    cond("AbleToScale", True, "ReadyForNewScale",
                         "recommended size matches current size")
                why = reason if decision.limited else "DesiredWithinRange"
                cond("ScalingLimited", decision.limited, why,
                     _LIMIT_MESSAGES.get(why, why))
        order = ("AbleToScale", "ScalingActive", "ScalingLimited")
        status["conditions"] = [conditions[t] for t in order if t in conditions]
        if values and spec_of(hpa, self.scale).target_type == "Utilization":
            status["currentMetrics"] = [{"type": "Resource", "resource": {
                "name": "cpu", "current": {
                    "averageUtilization": round(100 * sum(values) / len(values))}}}]
        if status != old:
            new = meta.thaw(hpa)
            new["status"] = status
            self.store.replace(resources.HPAS, new, expect_rv=hpa["metadata"]["resourceVersion"])
