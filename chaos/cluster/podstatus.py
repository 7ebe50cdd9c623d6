"""Read-only questions about a pod object (ready? terminating? since when?).

Kept apart so the registry (eviction), the controllers and the kubelet answer them the same
way; `view` turns a pod into the `sim.kube.replicasets.PodView` the shared rules rank.
"""

from __future__ import annotations

from chaos.cluster import meta
from sim.kube import replicasets as rs_rules


def condition(pod: dict, type_: str) -> dict | None:
    for c in pod.get("status", {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def is_ready(pod: dict) -> bool:
    c = condition(pod, "Ready")
    return bool(c and c.get("status") == "True")


def ready_since(pod: dict) -> float | None:
    c = condition(pod, "Ready")
    if not c or c.get("status") != "True":
        return None
    return meta.parse_time(c.get("lastTransitionTime"))


def is_terminating(pod: dict) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def phase(pod: dict) -> str:
    return pod.get("status", {}).get("phase", "Pending")


def is_active(pod: dict) -> bool:
    """Counts towards a ReplicaSet: not terminating and not Succeeded/Failed."""
    return not is_terminating(pod) and phase(pod) not in ("Succeeded", "Failed")


def restart_count(pod: dict) -> int:
    """The highest restart count over the pod's containers (what victim ranking compares)."""
    return max((cs.get("restartCount", 0)
                for cs in pod.get("status", {}).get("containerStatuses") or []), default=0)


def view(pod: dict) -> rs_rules.PodView:
    md = pod["metadata"]
    return rs_rules.PodView(
        name=md["name"],
        node=pod["spec"].get("nodeName") or "",
        phase=phase(pod),
        ready=is_ready(pod),
        ready_since=ready_since(pod),
        created_at=meta.parse_time(md.get("creationTimestamp")) or 0.0,
        restart_count=restart_count(pod),
        deletion_cost=rs_rules.deletion_cost(md.get("annotations") or {}),
        terminating=is_terminating(pod),
    )
