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

from chaos.cluster.errors import (
    FieldError,
    field_forbidden,
    field_invalid,
    field_not_supported,
    field_required,
    invalid_object,
)

_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_service_ips = itertools.count(10)

DEFAULT_TOLERATION_S = 300
# autoscaling/v2 MetricSpec: which member holds the source of each metric type.
METRIC_WINDOW_S = 15.0  # a sample's window: metrics-server's resolution (§0.1)
METRIC_SOURCE_FIELD = {"Resource": "resource", "Pods": "pods", "Object": "object",
                       "External": "external", "ContainerResource": "containerResource"}
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"


def _name_errors(name: str, errs: list[FieldError]) -> None:
    """ValidateObjectMeta's name rules, on create (an update keeps the stored name)."""
    if not name:
        errs.append(field_required("metadata.name", "name or generateName is required"))
    elif len(name) > 253 or not _NAME_RE.match(name):
        errs.append(field_invalid(
            "metadata.name", name, "a lowercase RFC 1123 subdomain must consist of lower case "
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
            "character"))


def pod_spec(spec: dict, errs: list[FieldError], field: str = "spec") -> dict:
    containers = spec.get("containers")
    if not containers:
        errs.append(field_invalid(f"{field}.containers", containers, "Required value"))
    for i, c in enumerate(containers or []):
        if not c.get("name"):
            errs.append(field_invalid(f"{field}.containers[{i}].name", c.get("name"),
                                      "Required value"))
        if not c.get("image"):
            errs.append(field_invalid(f"{field}.containers[{i}].image", c.get("image"),
                                      "Required value"))
        c.setdefault("imagePullPolicy", "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        for p in c.get("ports") or []:
            p.setdefault("protocol", "TCP")
    policy = spec.setdefault("restartPolicy", "Always")
    if policy not in ("Always", "OnFailure", "Never"):
        errs.append(field_not_supported(f"{field}.restartPolicy", policy,
                                        ["Always", "OnFailure", "Never"]))
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    if spec.get("volumes") is None:
        spec["volumes"] = []
    tolerations = spec.setdefault("tolerations", [])
    _toleration_errors(tolerations, f"{field}.tolerations", errs)
    for taint in (NOT_READY_TAINT, UNREACHABLE_TAINT):
        if not any(t.get("key") == taint and t.get("effect") in (None, "", "NoExecute")
                   for t in tolerations):
            tolerations.append({"key": taint, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": DEFAULT_TOLERATION_S})
    return spec


TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _toleration_errors(tolerations: list[dict], field: str, errs: list[FieldError]) -> None:
    """Upstream ValidateTolerations (its key and value syntax checks aside), in its order."""
    for i, t in enumerate(tolerations):
        at, key, op = f"{field}[{i}]", t.get("key") or "", t.get("operator") or ""
        effect, value = t.get("effect") or "", t.get("value") or ""
        if not key and op != "Exists":
            errs.append(field_invalid(
                f"{at}.operator", op, "operator must be Exists when `key` is empty, which "
                'means "match all values and all keys"'))
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(field_invalid(
                f"{at}.effect", effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if op == "Exists" and value:
            errs.append(field_invalid(f"{at}.operator", t,
                                      "value must be empty when `operator` is 'Exists'"))
        if op not in ("", "Equal", "Exists"):
            errs.append(field_not_supported(f"{at}.operator", op, ["Equal", "Exists"]))
        if effect and effect not in TAINT_EFFECTS:
            errs.append(field_not_supported(f"{at}.effect", effect, list(TAINT_EFFECTS)))


POD_UPDATE_RULE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be "
    "set to 1 if it was previously negative)")


def _pod_update_errors(old: dict, new: dict, errs: list[FieldError]) -> None:
    """Upstream ValidatePodUpdate on two defaulted specs: an error unless only the mutable
    parts changed (images, a lowered activeDeadlineSeconds, added tolerations or another
    tolerationSeconds, grace -N -> 1)."""
    deadline_old, deadline_new = old.get("activeDeadlineSeconds"), new.get("activeDeadlineSeconds")
    if deadline_new is None and deadline_old is not None:
        errs.append(field_invalid("spec.activeDeadlineSeconds", None,
                                  "must not update from a positive integer to nil value"))
    elif deadline_old is not None and deadline_new > deadline_old:
        errs.append(field_invalid("spec.activeDeadlineSeconds", deadline_new,
                                  "must be less than or equal to previous value"))
    # validateOnlyAddedTolerations: each old toleration is still there, its tolerationSeconds
    # aside (which may change any way, to nil too; the taint eviction rereads it).
    new_tolerations = [_but_seconds(t) for t in new.get("tolerations") or []]
    if any(_but_seconds(t) not in new_tolerations for t in old.get("tolerations") or []):
        errs.append(field_forbidden(
            "spec.tolerations",
            "existing toleration can not be modified except its tolerationSeconds"))
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
        errs.append(field_forbidden("spec", POD_UPDATE_RULE))


def _but_seconds(toleration: dict) -> dict:
    return {k: v for k, v in toleration.items() if k != "tolerationSeconds"}


def pod_template(template: dict | None, errs: list[FieldError]) -> dict:
    template = template or {}
    template.setdefault("metadata", {})
    template["spec"] = pod_spec(template.get("spec") or {}, errs, "spec.template.spec")
    return template


def _selector_errors(obj: dict, errs: list[FieldError]) -> None:
    spec = obj["spec"]
    selector = spec.get("selector") or {}
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        errs.append(field_invalid("spec.selector", selector, "Required value"))
        return
    labels = spec["template"]["metadata"].get("labels") or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            errs.append(field_invalid("spec.template.metadata.labels", labels,
                                      "`selector` does not match template `labels`"))
            return


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_at_least(field: str, value, low: int, rule: str, errs: list[FieldError]) -> bool:
    """Whether `value` is an int >= low; an error in `errs` if not."""
    if _is_int(value) and value >= low:
        return True
    errs.append(field_invalid(field, value, rule))
    return False


def parse_quantity(text) -> float:
    """A Kubernetes quantity ("500m", "2", "1Ki") as a number; ValueError if it is none."""
    text = str(text)
    units = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}
    for suffix in sorted(units, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * units[suffix]
    return float(text)


def _positive_quantity(field: str, value, errs: list[FieldError]) -> None:
    try:
        number = parse_quantity(value)
    except ValueError:
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        errs.append(field_invalid(field, value, "must be a positive quantity, such as 500m or 2"))


_SELECT_POLICIES = ("Max", "Min", "Disabled")
_POLICY_TYPES = ("Pods", "Percent")


def _hpa_spec_errors(spec: dict, errs: list[FieldError]) -> None:
    """The autoscaling/v2 validation a real apiserver runs (HPAScaleToZero off), in
    upstream's order (replicas, target, metrics, behavior): every HPA it stores is one the
    controller (and `sim.kube.hpa.HPASpec`) can follow."""
    low = spec["minReplicas"]
    low_ok = _int_at_least("spec.minReplicas", low, 1, "must be greater than or equal to 1",
                           errs)
    if "maxReplicas" not in spec:
        errs.append(field_invalid("spec.maxReplicas", None, "Required value"))
    else:
        _int_at_least("spec.maxReplicas", spec["maxReplicas"], max(1, low) if low_ok else 1,
                      "must be greater than or equal to 1 and to `minReplicas`", errs)
    if not (spec.get("scaleTargetRef") or {}).get("name"):
        errs.append(field_invalid("spec.scaleTargetRef.name", None, "Required value"))
    for i, metric in enumerate(spec["metrics"]):
        member = METRIC_SOURCE_FIELD.get(metric.get("type", "Resource"), "resource")
        target = (metric.get(member) or {}).get("target") or {}
        if "averageUtilization" in target:
            _int_at_least(f"spec.metrics[{i}].{member}.target.averageUtilization",
                          target["averageUtilization"], 1, "must be greater than 0", errs)
        for key in ("averageValue", "value"):  # the controller scales on it: 0 or less is none
            if target.get(key) is not None:
                _positive_quantity(f"spec.metrics[{i}].{member}.target.{key}", target[key],
                                   errs)
    for direction in ("scaleUp", "scaleDown"):
        rules = (spec.get("behavior") or {}).get(direction) or {}
        at = f"spec.behavior.{direction}"
        if rules.get("selectPolicy", "Max") not in _SELECT_POLICIES:
            errs.append(field_invalid(f"{at}.selectPolicy", rules["selectPolicy"],
                                      f"supported values: {', '.join(_SELECT_POLICIES)}"))
        if "stabilizationWindowSeconds" in rules:
            window = rules["stabilizationWindowSeconds"]
            if _int_at_least(f"{at}.stabilizationWindowSeconds", window, 0,
                             "must be greater than or equal to 0", errs) and window > 3600:
                errs.append(field_invalid(f"{at}.stabilizationWindowSeconds", window,
                                          "must be less than or equal to 3600"))
        for j, policy in enumerate(rules.get("policies") or []):
            if policy.get("type") not in _POLICY_TYPES:
                errs.append(field_invalid(f"{at}.policies[{j}].type", policy.get("type"),
                                          f"supported values: {', '.join(_POLICY_TYPES)}"))
            _int_at_least(f"{at}.policies[{j}].value", policy.get("value"), 1,
                          "must be greater than 0", errs)
            period = policy.get("periodSeconds")
            if _int_at_least(f"{at}.policies[{j}].periodSeconds", period, 1,
                             "must be greater than 0", errs) and period > 1800:
                errs.append(field_invalid(f"{at}.policies[{j}].periodSeconds", period,
                                          "must be less than or equal to 1800"))


def apply(kind: str, obj: dict, *, creating: bool = False,
          old_pod_spec: dict | None = None) -> dict:
    """Default and validate `obj` (a private dict) in place; return it.

    Validation collects every field error, as upstream's ErrorList, and raises them in one
    422 Invalid (`errors.invalid_object`): the name's when `creating`, the object's own, then
    the pod update rules when `old_pod_spec` is the stored pod's spec."""
    errs: list[FieldError] = []
    md = obj.setdefault("metadata", {})
    name = md.get("name") or ""
    if creating:
        _name_errors(name, errs)
    _default_and_validate(kind, obj, errs)
    if old_pod_spec is not None:
        _pod_update_errors(old_pod_spec, obj.get("spec") or {}, errs)
    if errs:
        raise invalid_object(kind, name, errs)
    return obj


def _default_and_validate(kind: str, obj: dict, errs: list[FieldError]) -> None:
    spec = obj.get("spec")
    md = obj["metadata"]
    if kind == "Pod":
        obj["spec"] = pod_spec(spec or {}, errs)
        md.setdefault("ownerReferences", [])
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Pending")
        status.setdefault("qosClass", "BestEffort")
    elif kind in ("Deployment", "ReplicaSet"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        template_errs: list[FieldError] = []  # upstream's order: replicas, selector, template
        spec["template"] = pod_template(spec.get("template"), template_errs)
        _int_at_least("spec.replicas", spec["replicas"], 0,
                      "must be an integer greater than or equal to 0", errs)
        _selector_errors(obj, errs)
        errs.extend(template_errs)
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
        spec.setdefault("minReplicas", 1)
        if not spec.get("metrics"):
            spec["metrics"] = [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
        _hpa_spec_errors(spec, errs)
        status = obj.setdefault("status", {})
        status.setdefault("currentReplicas", 0)
        status.setdefault("desiredReplicas", 0)
    elif kind == "PodDisruptionBudget":
        spec = obj.setdefault("spec", {})
        if "minAvailable" in spec and "maxUnavailable" in spec:
            errs.append(field_invalid("spec", spec,
                                      "minAvailable and maxUnavailable cannot be both set"))
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
            errs.append(field_invalid("involvedObject", None, "Required value"))
    elif kind == "Node":
        obj.setdefault("spec", {})
        obj.setdefault("status", {})
    elif kind == "Lease":
        obj.setdefault("spec", {})
    elif kind == "NetworkPolicy":
        spec = obj.setdefault("spec", {})
        if not isinstance(spec.get("podSelector"), dict):
            errs.append(field_invalid("spec.podSelector", spec.get("podSelector"),
                                      "Required value: a label selector ({} selects every pod)"))
        # Upstream's defaulting: Ingress always, Egress when the policy has egress rules.
        spec.setdefault("policyTypes", ["Ingress"] + (["Egress"] if spec.get("egress") else []))
        for i, t in enumerate(spec["policyTypes"]):
            if t not in ("Ingress", "Egress"):
                errs.append(field_not_supported(f"spec.policyTypes[{i}]", t, ["Ingress", "Egress"]))
    elif kind == "PersistentVolumeClaim":
        # Stored only: no provisioner binds it and pods' volumes are not mounted.
        obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
        obj.setdefault("status", {"phase": "Pending"})
