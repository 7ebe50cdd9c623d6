"""PodDisruptionBudget arithmetic: how many matching pods may be disrupted right now.

Shared by the eviction subresource (which must answer 429 atomically with the delete) and the
disruption controller (which publishes the same numbers in `status`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chaos.cluster import podstatus, resources
from chaos.cluster.selectors import compile_label_selector
from chaos.cluster.storage import Store


@dataclass(frozen=True)
class Budget:
    expected_pods: int
    current_healthy: int
    desired_healthy: int

    @property
    def disruptions_allowed(self) -> int:
        return max(0, self.current_healthy - self.desired_healthy)


def _scaled(value, total: int, *, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        frac = int(value[:-1]) * total / 100
        return math.ceil(frac) if round_up else math.floor(frac)
    return int(value)


def matching_pods(store: Store, pdb: dict) -> list[dict]:
    pred = compile_label_selector(pdb["spec"].get("selector"), empty_matches_all=False)
    pods, _ = store.list(resources.PODS, pdb["metadata"]["namespace"])
    return [p for p in pods if pred(p["metadata"].get("labels") or {})]


def _expected(store: Store, pods: list[dict]) -> int:
    """The owners' desired scale, as the disruption controller computes it."""
    active = [p for p in pods if podstatus.is_active(p)]
    owners: dict[str, int] = {}
    for p in active:
        for ref in p["metadata"].get("ownerReferences") or []:
            if ref.get("controller") and ref.get("kind") == "ReplicaSet":
                rs = store.get(resources.REPLICASETS, p["metadata"]["namespace"], ref["name"])
                if rs is not None:
                    owners[ref["uid"]] = rs["spec"].get("replicas", 0)
    unowned = sum(1 for p in active if not any(
        r.get("controller") and r.get("kind") == "ReplicaSet"
        for r in p["metadata"].get("ownerReferences") or []))
    return sum(owners.values()) + unowned


def evaluate(store: Store, pdb: dict) -> Budget:
    pods = matching_pods(store, pdb)
    healthy = sum(1 for p in pods if podstatus.is_active(p) and podstatus.is_ready(p))
    spec = pdb["spec"]
    if "maxUnavailable" in spec:
        expected = _expected(store, pods)
        desired = expected - _scaled(spec["maxUnavailable"], expected, round_up=True)
    else:
        min_available = spec.get("minAvailable", 1)
        if isinstance(min_available, str) and min_available.endswith("%"):
            expected = _expected(store, pods)
            desired = _scaled(min_available, expected, round_up=True)
        else:
            expected = sum(1 for p in pods if podstatus.is_active(p))
            desired = int(min_available)
    return Budget(expected, healthy, max(0, desired))
