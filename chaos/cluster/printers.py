"""Per-kind table columns, as the apiserver's printers define them for `kubectl get`.

kubectl prints whatever columns the server sends, so these functions decide what
`kubectl get pods` shows: READY, STATUS (the same reason precedence as the real printer:
waiting/terminated container reasons over the phase, Terminating once deleted), RESTARTS,
AGE, and the priority-1 columns `-o wide` adds. Each printer is (columns, cells(obj, now)).
Kinds without their own printer get NAME and AGE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chaos.cluster import meta
from chaos.cluster.selectors import selector_string

NONE = "<none>"
UNKNOWN = "<unknown>"


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "string"
    priority: int = 0
    format: str = ""
    description: str = ""

    def definition(self) -> dict:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


@dataclass(frozen=True)
class Printer:
    columns: tuple[Column, ...]
    cells: Callable[[dict, float], list]


NAME = Column("Name", format="name", description="Name must be unique within a namespace.")
AGE = Column("Age", description="CreationTimestamp is a timestamp representing the server "
                                "time when this object was created.")


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration, which AGE columns use."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = hours // 24 // 365, (hours // 24) % 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def since(text: str | None, now: float) -> str:
    when = meta.parse_time(text)
    return UNKNOWN if when is None else human_duration(now - when)


def age(obj: dict, now: float) -> str:
    return since(obj["metadata"].get("creationTimestamp"), now)


def format_selector(selector: dict | None) -> str:
    """metav1.FormatLabelSelector: matchLabels as k=v, expressions as k in (a,b) etc."""
    if not selector:
        return NONE
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key = expr.get("operator", ""), expr.get("key", "")
        values = ",".join(sorted(expr.get("values") or []))
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": key, "DoesNotExist": f"!{key}"}.get(op, f"{key} {op}"))
    return ",".join(parts) or NONE


def _containers_images(template_spec: dict) -> list[str]:
    containers = template_spec.get("containers") or []
    return [",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers)]


# --- pods ------------------------------------------------------------------------------------
def pod_status_reason(pod: dict) -> tuple[str, int, int, float | None]:
    """(STATUS, ready containers, restarts, last restart) as the real pod printer derives them."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    ready = restarts = 0
    last_restart: float | None = None
    has_running = False
    for cs in reversed(status.get("containerStatuses") or []):
        restarts += cs.get("restartCount", 0)
        finished = meta.parse_time(
            ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
        if finished is not None and (last_restart is None or finished > last_restart):
            last_restart = finished
        state = cs.get("state") or {}
        waiting, terminated = state.get("waiting"), state.get("terminated")
        if waiting and waiting.get("reason"):
            reason = waiting["reason"]
        elif terminated and terminated.get("reason"):
            reason = terminated["reason"]
        elif terminated:
            signal = terminated.get("signal") or 0
            reason = f"Signal:{signal}" if signal else f"ExitCode:{terminated.get('exitCode', 0)}"
        elif cs.get("ready") and state.get("running") is not None:
            has_running = True
            ready += 1
    if reason == "Completed" and has_running:
        ready_cond = any(c.get("type") == "Ready" and c.get("status") == "True"
                         for c in status.get("conditions") or [])
        reason = "Running" if ready_cond else "NotReady"
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason, ready, restarts, last_restart


def _pod_cells(pod: dict, now: float) -> list:
    reason, ready, restarts, last_restart = pod_status_reason(pod)
    total = len(pod.get("spec", {}).get("containers") or [])
    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({human_duration(now - last_restart)} ago)"
    status, spec = pod.get("status") or {}, pod.get("spec") or {}
    gates = spec.get("readinessGates") or []
    return [meta.name_of(pod), f"{ready}/{total}", reason, restarts_text, age(pod, now),
            status.get("podIP") or NONE, spec.get("nodeName") or NONE,
            status.get("nominatedNodeName") or NONE,
            NONE if not gates else f"0/{len(gates)}"]


PODS = Printer((NAME, Column("Ready", description="The aggregate readiness state of this pod "
                                                  "for accepting traffic."),
                Column("Status", description="The aggregate status of the containers in this "
                                             "pod."),
                Column("Restarts", description="The number of times the containers in this pod "
                                               "have been restarted and when the last container "
                                               "in this pod has restarted."),
                AGE, Column("IP", priority=1, description="IP address allocated to the pod."),
                Column("Node", priority=1, description="Name of the node the pod is on."),
                Column("Nominated Node", priority=1, description="Nominated node name."),
                Column("Readiness Gates", priority=1, description="Pod readiness gates.")),
               _pod_cells)


# --- nodes -----------------------------------------------------------------------------------
def _node_cells(node: dict, now: float) -> list:
    status, spec = node.get("status") or {}, node.get("spec") or {}
    states = [c["type"] if c.get("status") == "True" else "Not" + c["type"]
              for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    states = states or ["Unknown"]
    if spec.get("unschedulable"):
        states.append("SchedulingDisabled")
    labels = meta.labels_of(node)
    roles = sorted({k.split("/", 1)[1] for k in labels
                    if k.startswith("node-role.kubernetes.io/") and k.split("/", 1)[1]}
                   | ({labels["kubernetes.io/role"]} if labels.get("kubernetes.io/role")
                      else set()))
    info = status.get("nodeInfo") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    return [meta.name_of(node), ",".join(states), ",".join(roles) or NONE, age(node, now),
            info.get("kubeletVersion", ""), addresses.get("InternalIP") or NONE,
            addresses.get("ExternalIP") or NONE, info.get("osImage") or UNKNOWN,
            info.get("kernelVersion") or UNKNOWN, info.get("containerRuntimeVersion") or UNKNOWN]


NODES = Printer((NAME, Column("Status", description="The status of the node"),
                 Column("Roles", description="The roles of the node"), AGE,
                 Column("Version", description="Kubelet Version reported by the node."),
                 Column("Internal-IP", priority=1), Column("External-IP", priority=1),
                 Column("OS-Image", priority=1), Column("Kernel-Version", priority=1),
                 Column("Container-Runtime", priority=1)),
                _node_cells)


# --- workloads -------------------------------------------------------------------------------
_WIDE_WORKLOAD = (Column("Containers", priority=1), Column("Images", priority=1),
                  Column("Selector", priority=1))


def _deployment_cells(d: dict, now: float) -> list:
    spec, status = d.get("spec") or {}, d.get("status") or {}
    return [meta.name_of(d), f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0), age(d, now),
            *_containers_images((spec.get("template") or {}).get("spec") or {}),
            format_selector(spec.get("selector"))]


DEPLOYMENTS = Printer((NAME, Column("Ready"), Column("Up-to-date", "integer"),
                       Column("Available", "integer"), AGE, *_WIDE_WORKLOAD),
                      _deployment_cells)


def _replicaset_cells(rs: dict, now: float) -> list:
    spec, status = rs.get("spec") or {}, rs.get("status") or {}
    return [meta.name_of(rs), spec.get("replicas", 1), status.get("replicas", 0),
            status.get("readyReplicas", 0), age(rs, now),
            *_containers_images((spec.get("template") or {}).get("spec") or {}),
            format_selector(spec.get("selector"))]


REPLICASETS = Printer((NAME, Column("Desired", "integer"), Column("Current", "integer"),
                       Column("Ready", "integer"), AGE, *_WIDE_WORKLOAD),
                      _replicaset_cells)


# --- autoscaling and disruption ------------------------------------------------------------
def _metric_text(spec: dict, status: dict | None) -> str:
    """One entry of the HPA TARGETS column (formatHPAMetrics)."""
    kind = spec.get("type", "")
    source_key = {"Resource": "resource", "ContainerResource": "containerResource",
                  "Pods": "pods", "Object": "object", "External": "external"}.get(kind)
    if source_key is None:
        return "<unknown type>"
    source = spec.get(source_key) or {}
    target = source.get("target") or {}
    current = ((status or {}).get(source_key) or {}).get("current") or {}
    if kind in ("Resource", "ContainerResource"):
        name = source.get("name", "")
        if target.get("averageValue") is not None:
            return f"{name}: {current.get('averageValue', UNKNOWN)}/{target['averageValue']}"
        now_text = (f"{current['averageUtilization']}%"
                    if current.get("averageUtilization") is not None else UNKNOWN)
        want = (f"{target['averageUtilization']}%"
                if target.get("averageUtilization") is not None else "<auto>")
        return f"{name}: {now_text}/{want}"
    if kind == "Pods" or target.get("averageValue") is not None:
        text = f"{current.get('averageValue', UNKNOWN)}/{target.get('averageValue')}"
        return text if kind == "Pods" else text + " (avg)"
    return f"{current.get('value', UNKNOWN)}/{target.get('value')}"


def hpa_targets(hpa: dict) -> str:
    specs = (hpa.get("spec") or {}).get("metrics") or []
    if not specs:
        return NONE
    statuses = (hpa.get("status") or {}).get("currentMetrics") or []
    texts = [_metric_text(s, statuses[i] if i < len(statuses) else None)
             for i, s in enumerate(specs)]
    if len(texts) > 2:
        return f"{', '.join(texts[:2])} + {len(texts) - 2} more..."
    return ", ".join(texts)


def _hpa_cells(hpa: dict, now: float) -> list:
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    return [meta.name_of(hpa), f"{ref.get('kind', '')}/{ref.get('name', '')}",
            hpa_targets(hpa), spec.get("minReplicas", 1), spec.get("maxReplicas", 0),
            status.get("currentReplicas", 0), age(hpa, now)]


HPAS = Printer((NAME, Column("Reference"), Column("Targets"), Column("MinPods", "integer"),
                Column("MaxPods", "integer"), Column("Replicas", "integer"), AGE),
               _hpa_cells)


def _pdb_cells(pdb: dict, now: float) -> list:
    spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
    return [meta.name_of(pdb), str(spec.get("minAvailable", "N/A")),
            str(spec.get("maxUnavailable", "N/A")), status.get("disruptionsAllowed", 0),
            age(pdb, now)]


PDBS = Printer((NAME, Column("Min Available"), Column("Max Unavailable"),
                Column("Allowed Disruptions", "integer"), AGE),
               _pdb_cells)


# --- small core kinds ------------------------------------------------------------------------
def _namespace_cells(ns: dict, now: float) -> list:
    return [meta.name_of(ns), (ns.get("status") or {}).get("phase", "Active"), age(ns, now)]


def _configmap_cells(cm: dict, now: float) -> list:
    return [meta.name_of(cm), len(cm.get("data") or {}) + len(cm.get("binaryData") or {}),
            age(cm, now)]


def _secret_cells(secret: dict, now: float) -> list:
    return [meta.name_of(secret), secret.get("type", "Opaque"),
            len(secret.get("data") or {}), age(secret, now)]


def _event_cells(ev: dict, now: float) -> list:
    """printEvent, wide (the server always prints wide; kubectl hides priority-1 columns)."""
    first = since(ev.get("firstTimestamp"), now) if ev.get("firstTimestamp") else \
        since(ev.get("eventTime"), now)
    last = since(ev.get("lastTimestamp"), now) if ev.get("lastTimestamp") else first
    count = ev.get("count") or 1
    series = ev.get("series")
    if series:
        last, count = since(series.get("lastObservedTime"), now), series.get("count", 0)
    involved = ev.get("involvedObject") or {}
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = ev.get("source") or {}
    component = source.get("component") or ev.get("reportingComponent", "")
    instance = source.get("host") or ev.get("reportingInstance", "")
    return [last, ev.get("type", ""), ev.get("reason", ""), target,
            involved.get("fieldPath", ""), f"{component}, {instance}" if instance else component,
            str(ev.get("message", "")).strip(), first, count, meta.name_of(ev)]


EVENTS = Printer((Column("Last Seen"), Column("Type"), Column("Reason"), Column("Object"),
                  Column("Subobject", priority=1), Column("Source", priority=1),
                  Column("Message"), Column("First Seen", priority=1),
                  Column("Count", priority=1), Column("Name", priority=1, format="name")),
                 _event_cells)


def _network_policy_cells(np: dict, now: float) -> list:
    """printNetworkPolicy: the pod selector as FormatLabelSelector writes it."""
    chosen = selector_string((np.get("spec") or {}).get("podSelector"))
    return [meta.name_of(np), chosen or "<none>", age(np, now)]


def _generic_cells(obj: dict, now: float) -> list:
    return [meta.name_of(obj), age(obj, now)]


GENERIC = Printer((NAME, AGE), _generic_cells)

BY_KIND: dict[str, Printer] = {
    "Pod": PODS,
    "Node": NODES,
    "Deployment": DEPLOYMENTS,
    "ReplicaSet": REPLICASETS,
    "HorizontalPodAutoscaler": HPAS,
    "PodDisruptionBudget": PDBS,
    "Event": EVENTS,
    "Namespace": Printer((NAME, Column("Status"), AGE), _namespace_cells),
    "ConfigMap": Printer((NAME, Column("Data", "integer"), AGE), _configmap_cells),
    "Secret": Printer((NAME, Column("Type"), Column("Data", "integer"), AGE), _secret_cells),
    "NetworkPolicy": Printer((NAME, Column("Pod-Selector"), AGE), _network_policy_cells),
}


def for_kind(kind: str) -> Printer:
    return BY_KIND.get(kind, GENERIC)
