"""Defaulting and validation on write, per kind: what the apiserver adds so clients never see
a field their deserialiser requires (or chaosk8s iterates) as null.

Both client generations reject, for example, a containerStatus without `imageID` or a PDB
status without `expectedPods`; chaosk8s iterates `spec.volumes` and `ownerReferences`. So
every kind gets its required fields here, once, on every create and update.
"""

from __future__ import annotations

import base64
import itertools
import math
import re

from chaos.cluster.errors import forbidden, invalid, not_supported

_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_service_ips = itertools.count(10)

DEFAULT_TOLERATION_S = 300
# autoscaling/v2 MetricSpec: which member holds the source of each metric type.
METRIC_WINDOW_S = 15.0  # a sample's window: metrics-server's resolution (§0.1)
METRIC_SOURCE_FIELD = {"Resource": "resource", "Pods": "pods", "Object": "object",
                       "External": "external", "ContainerResource": "containerResource"}
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"


def validate_name(kind: str, name: str) -> None:
    if not name or len(name) > 253 or not _NAME_RE.match(name):
        raise invalid(kind, name, "metadata.name", name,
                      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                      "characters, '-' or '.', and must start and end with an alphanumeric "
                      "character")


def pod_spec(spec: dict, kind: str, name: str, field: str = "spec") -> dict:
    containers = spec.get("containers")
    if not containers:
        raise invalid(kind, name, f"{field}.containers", containers, "Required value")
    for i, c in enumerate(containers):
        if not c.get("name"):
            raise invalid(kind, name, f"{field}.containers[{i}].name", c.get("name"),
                          "Required value")
        if not c.get("image"):
            raise invalid(kind, name, f"{field}.containers[{i}].image", c.get("image"),
                          "Required value")
        c.setdefault("imagePullPolicy", "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        for p in c.get("ports") or []:
            p.setdefault("protocol", "TCP")
    policy = spec.setdefault("restartPolicy", "Always")
    if policy not in ("Always", "OnFailure", "Never"):
        raise invalid(kind, name, f"{field}.restartPolicy", policy,
                      'supported values: "Always", "OnFailure", "Never"')
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    if spec.get("volumes") is None:
        spec["volumes"] = []
    tolerations = spec.setdefault("tolerations", [])
    validate_tolerations(tolerations, kind, name, f"{field}.tolerations")
    for taint in (NOT_READY_TAINT, UNREACHABLE_TAINT):
        if not any(t.get("key") == taint and t.get("effect") in (None, "", "NoExecute")
                   for t in tolerations):
            tolerations.append({"key": taint, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": DEFAULT_TOLERATION_S})
    return spec


TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def validate_tolerations(tolerations: list[dict], kind: str, name: str, field: str) -> None:
    """Upstream ValidateTolerations (its key and value syntax checks aside), in its order."""
    for i, t in enumerate(tolerations):
        at, key, op = f"{field}[{i}]", t.get("key") or "", t.get("operator") or ""
        effect, value = t.get("effect") or "", t.get("value") or ""
        if not key and op != "Exists":
            raise invalid(kind, name, f"{at}.operator", op, "operator must be Exists when "
                          '`key` is empty, which means "match all values and all keys"')
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            raise invalid(kind, name, f"{at}.effect", effect,
                          "effect must be 'NoExecute' when `tolerationSeconds` is set")
        if op == "Exists" and value:
            raise invalid(kind, name, f"{at}.operator", t,
                          "value must be empty when `operator` is 'Exists'")
        if op not in ("", "Equal", "Exists"):
            raise not_supported(kind, name, f"{at}.operator", op, ["Equal", "Exists"])
        if effect and effect not in TAINT_EFFECTS:
            raise not_supported(kind, name, f"{at}.effect", effect, list(TAINT_EFFECTS))


POD_UPDATE_RULE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be "
    "set to 1 if it was previously negative)")


def validate_pod_update(old: dict, new: dict, name: str) -> None:
    """Upstream ValidatePodUpdate on two defaulted specs: 422 unless only the mutable parts
    changed (images, a lowered activeDeadlineSeconds, added tolerations or another
    tolerationSeconds, grace -N -> 1)."""
    deadline_old, deadline_new = old.get("activeDeadlineSeconds"), new.get("activeDeadlineSeconds")
    if deadline_new is None and deadline_old is not None:
        raise invalid("Pod", name, "spec.activeDeadlineSeconds", None,
                      "must not update from a positive integer to nil value")
    if deadline_old is not None and deadline_new > deadline_old:
        raise invalid("Pod", name, "spec.activeDeadlineSeconds", deadline_new,
                      "must be less than or equal to previous value")
    # validateOnlyAddedTolerations: each old toleration is still there, its tolerationSeconds
    # aside (which may change any way, to nil too; the taint eviction rereads it).
    new_tolerations = [_but_seconds(t) for t in new.get("tolerations") or []]
    if any(_but_seconds(t) not in new_tolerations for t in old.get("tolerations") or []):
        raise forbidden("Pod", name, "spec.tolerations",
                        "existing toleration can not be modified except its tolerationSeconds")
    munged = {**new, "activeDeadlineSeconds": deadline_old, "tolerations": old.get("tolerations")}
    if deadline_old is None:
        munged.pop("activeDeadlineSeconds")
    if "tolerations" not in old:
        munged.pop("tolerations")
    for field in ("containers", "initContainers"):
        before, after = old.get(field) or [], new.get(field) or []
        if after and len(before) == len(after):
            munged[field] = [{**c, "image": b.get("image")} for c, b in
                             zip(after, before, strict=True)]
    grace_old = old.get("terminationGracePeriodSeconds")
    if grace_old is not None and grace_old < 0 and new.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = grace_old
    if munged != old:
        raise forbidden("Pod", name, "spec", POD_UPDATE_RULE)


def _but_seconds(toleration: dict) -> dict:
    return {k: v for k, v in toleration.items() if k != "tolerationSeconds"}


def pod_template(template: dict | None, kind: str, name: str) -> dict:
    template = template or {}
    template.setdefault("metadata", {})
    template["spec"] = pod_spec(template.get("spec") or {}, kind, name, "spec.template.spec")
    return template


def _selector_matches_template(obj: dict, kind: str, name: str) -> None:
    spec = obj["spec"]
    selector = spec.get("selector") or {}
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        raise invalid(kind, name, "spec.selector", selector, "Required value")
    labels = spec["template"]["metadata"].get("labels") or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            raise invalid(kind, name, "spec.template.metadata.labels", labels,
                          "`selector` does not match template `labels`")


def _int_at_least(kind: str, name: str, field: str, value, low: int, rule: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise invalid(kind, name, field, value, rule)


def parse_quantity(text) -> float:
    """A Kubernetes quantity ("500m", "2", "1Ki") as a number; ValueError if it is none."""
    text = str(text)
    units = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}
    for suffix in sorted(units, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * units[suffix]
    return float(text)


def _positive_quantity(kind: str, name: str, field: str, value) -> None:
    try:
        number = parse_quantity(value)
    except ValueError:
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise invalid(kind, name, field, value,
                      "must be a positive quantity, such as 500m or 2")


_SELECT_POLICIES = ("Max", "Min", "Disabled")
_POLICY_TYPES = ("Pods", "Percent")


def _hpa_spec(spec: dict, kind: str, name: str) -> None:
    """The autoscaling/v2 validation a real apiserver runs (HPAScaleToZero off): every HPA
    it stores is one the controller (and `sim.kube.hpa.HPASpec`) can follow."""
    low = spec["minReplicas"]
    _int_at_least(kind, name, "spec.minReplicas", low, 1, "must be greater than or equal to 1")
    _int_at_least(kind, name, "spec.maxReplicas", spec["maxReplicas"], max(1, low),
                  "must be greater than or equal to 1 and to `minReplicas`")
    for i, metric in enumerate(spec["metrics"]):
        member = METRIC_SOURCE_FIELD.get(metric.get("type", "Resource"), "resource")
        target = (metric.get(member) or {}).get("target") or {}
        if "averageUtilization" in target:
            _int_at_least(kind, name, f"spec.metrics[{i}].{member}.target.averageUtilization",
                          target["averageUtilization"], 1, "must be greater than 0")
        for key in ("averageValue", "value"):  # the controller scales on it: 0 or less is none
            if target.get(key) is not None:
                _positive_quantity(kind, name, f"spec.metrics[{i}].{member}.target.{key}",
                                   target[key])
    for direction in ("scaleUp", "scaleDown"):
        rules = (spec.get("behavior") or {}).get(direction) or {}
        at = f"spec.behavior.{direction}"
        if rules.get("selectPolicy", "Max") not in _SELECT_POLICIES:
            raise invalid(kind, name, f"{at}.selectPolicy", rules["selectPolicy"],
                          f"supported values: {', '.join(_SELECT_POLICIES)}")
        if "stabilizationWindowSeconds" in rules:
            window = rules["stabilizationWindowSeconds"]
            _int_at_least(kind, name, f"{at}.stabilizationWindowSeconds", window, 0,
                          "must be greater than or equal to 0")
            if window > 3600:
                raise invalid(kind, name, f"{at}.stabilizationWindowSeconds", window,
                              "must be less than or equal to 3600")
        for j, policy in enumerate(rules.get("policies") or []):
            if policy.get("type") not in _POLICY_TYPES:
                raise invalid(kind, name, f"{at}.policies[{j}].type", policy.get("type"),
                              f"supported values: {', '.join(_POLICY_TYPES)}")
            _int_at_least(kind, name, f"{at}.policies[{j}].value", policy.get("value"), 1,
                          "must be greater than 0")
            period = policy.get("periodSeconds")
            _int_at_least(kind, name, f"{at}.policies[{j}].periodSeconds", period, 1,
                          "must be greater than 0")
            if period > 1800:
                raise invalid(kind, name, f"{at}.policies[{j}].periodSeconds", period,
                              "must be less than or equal to 1800")


def apply(kind: str, obj: dict) -> dict:
    """Default and validate `obj` (a private dict) in place; return it."""
    md = obj.setdefault("metadata", {})
    name = md.get("name", "")
    spec = obj.get("spec")
    if kind == "Pod":
        obj["spec"] = pod_spec(spec or {}, kind, name)
        md.setdefault("ownerReferences", [])
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Pending")
        status.setdefault("qosClass", "BestEffort")
    elif kind in ("Deployment", "ReplicaSet"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec["template"] = pod_template(spec.get("template"), kind, name)
        _selector_matches_template(obj, kind, name)
        _int_at_least(kind, name, "spec.replicas", spec["replicas"], 0,
                      "must be an integer greater than or equal to 0")
        spec.setdefault("minReadySeconds", 0)
        if kind == "Deployment":
            strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
            if strategy.get("type", "RollingUpdate") == "RollingUpdate":
                strategy["type"] = "RollingUpdate"
                ru = strategy.setdefault("rollingUpdate", {})
                ru.setdefault("maxSurge", "25%")
                ru.setdefault("maxUnavailable", "25%")
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
        obj.setdefault("status", {})
    elif kind == "HorizontalPodAutoscaler":
        spec = obj.setdefault("spec", {})
        if not spec.get("scaleTargetRef", {}).get("name"):
            raise invalid(kind, name, "spec.scaleTargetRef.name", None, "Required value")
        if "maxReplicas" not in spec:
            raise invalid(kind, name, "spec.maxReplicas", None, "Required value")
        spec.setdefault("minReplicas", 1)
        if not spec.get("metrics"):
            spec["metrics"] = [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
        _hpa_spec(spec, kind, name)
        status = obj.setdefault("status", {})
        status.setdefault("currentReplicas", 0)
        status.setdefault("desiredReplicas", 0)
    elif kind == "PodDisruptionBudget":
        spec = obj.setdefault("spec", {})
        if "minAvailable" in spec and "maxUnavailable" in spec:
            raise invalid(kind, name, "spec", spec,
                          "minAvailable and maxUnavailable cannot be both set")
        status = obj.setdefault("status", {})
        for field in ("currentHealthy", "desiredHealthy", "disruptionsAllowed", "expectedPods"):
            status.setdefault(field, 0)
    elif kind == "Namespace":
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj.setdefault("status", {"phase": "Active"})
    elif kind == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec.get("clusterIP") in (None, ""):
            n = next(_service_ips)
            spec["clusterIP"] = f"10.96.{n // 250}.{n % 250 + 1}"
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
        obj.setdefault("status", {"loadBalancer": {}})
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        data = obj.setdefault("data", {})
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
    elif kind == "Event":
        if not obj.get("involvedObject"):
            raise invalid(kind, name, "involvedObject", None, "Required value")
    elif kind == "Node":
        obj.setdefault("spec", {})
        obj.setdefault("status", {})
    elif kind == "Lease":
        obj.setdefault("spec", {})
    elif kind == "PersistentVolumeClaim":
        # Stored only: no provisioner binds it and pods' volumes are not mounted.
        obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
        obj.setdefault("status", {"phase": "Pending"})
    return obj
