"""Taints and tolerations: which pods a node's taints keep off or push away.

Shared by the scheduler (NoSchedule and NoExecute filter placement) and the node lifecycle
controller (NoExecute evicts after a toleration's tolerationSeconds).
"""

from __future__ import annotations


def tolerates(toleration: dict, taint: dict) -> bool:
    """Upstream `Toleration.ToleratesTaint`."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    op = toleration.get("operator") or "Equal"
    if not key:
        return op == "Exists"
    if key != taint.get("key"):
        return False
    return op == "Exists" or (toleration.get("value") or "") == (taint.get("value") or "")


def tolerating(pod: dict, taint: dict) -> list[dict]:
    return [t for t in pod["spec"].get("tolerations") or [] if tolerates(t, taint)]


def toleration_seconds(pod: dict, taint: dict) -> tuple[bool, float | None]:
    """(tolerated?, seconds) for a NoExecute taint; seconds None means forever; upstream
    takes the smallest tolerationSeconds among the tolerations that match."""
    matches = tolerating(pod, taint)
    if not matches:
        return False, None
    bounded = [t["tolerationSeconds"] for t in matches if t.get("tolerationSeconds") is not None]
    return True, (min(bounded) if bounded else None)


def schedulable_on(pod: dict, node: dict) -> bool:
    for taint in node["spec"].get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerating(pod, taint):
            return False
    return True
