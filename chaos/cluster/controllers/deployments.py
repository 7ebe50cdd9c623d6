"""Deployment -> ReplicaSets: one ReplicaSet per pod-template hash, rolled by the strategy.

RollingUpdate keeps at most `replicas + maxSurge` pods and at least `replicas -
maxUnavailable` available ones while moving from the old ReplicaSets to the new one;
Recreate empties the old ones first. Status mirrors what `kubectl rollout status` and chaosk8s
read: observedGeneration, replicas, updated/ready/available/unavailableReplicas, conditions.
"""

from __future__ import annotations

import hashlib
import json
import math

from chaos.cluster import meta, resources
from chaos.cluster.controllers.base import Controller
from chaos.cluster.events import Recorder
from chaos.cluster.patches import MERGE_PATCH
from chaos.cluster.registry import Registry

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: dict) -> str:
    digest = int.from_bytes(hashlib.sha256(
        json.dumps(template, sort_keys=True).encode()).digest()[:8], "big")
    out = []
    for _ in range(10):
        digest, r = divmod(digest, len(_ALPHABET))
        out.append(_ALPHABET[r])
    return "".join(out)


def resolve(value, total: int, *, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        frac = int(value[:-1]) * total / 100
        return math.ceil(frac) if round_up else math.floor(frac)
    return int(value or 0)


def _condition(type_: str, status: bool, reason: str, message: str, now: str,
               previous: dict | None) -> dict:
    flag = "True" if status else "False"
    same = previous is not None and previous.get("status") == flag
    return {"type": type_, "status": flag, "reason": reason, "message": message,
            "lastUpdateTime": previous["lastUpdateTime"] if same and
            previous.get("reason") == reason else now,
            "lastTransitionTime": previous["lastTransitionTime"] if same else now}


class DeploymentController(Controller):
    name = "deployments"

    def __init__(self, registry: Registry, recorder: Recorder) -> None:
        self.registry = registry
        self.store = registry.store
        self.recorder = recorder

    def sync(self, now: float) -> None:
        deployments, _ = self.store.list(resources.DEPLOYMENTS)
        for d in deployments:
            if not d["metadata"].get("deletionTimestamp"):
                self._sync_one(d, now)

    def _owned(self, d: dict) -> list[dict]:
        uid = d["metadata"]["uid"]
        rss, _ = self.store.list(resources.REPLICASETS, d["metadata"]["namespace"])
        return [r for r in rss if meta.controller_uid(r) == uid]

    def _sync_one(self, d: dict, now: float) -> None:
        spec = d["spec"]
        owned = self._owned(d)
        h = template_hash(spec["template"])
        new_rs = next((r for r in owned if meta.labels_of(r).get(HASH_LABEL) == h), None)
        olds = sorted((r for r in owned if r is not new_rs),
                      key=lambda r: int(meta.annotations_of(r).get(REVISION, "0")))
        desired = spec.get("replicas", 1)
        strategy = spec.get("strategy") or {}
        if new_rs is None:
            revision = 1 + max((int(meta.annotations_of(r).get(REVISION, "0")) for r in owned),
                               default=0)
            start = desired if not any(r["spec"].get("replicas") for r in olds) else 0
            new_rs = self._create_rs(d, h, revision, start)
            owned.append(new_rs)
        if not spec.get("paused"):
            if strategy.get("type") == "Recreate":
                self._recreate(d, new_rs, olds, desired)
            else:
                self._roll(d, new_rs, olds, desired)
            self._cleanup(d, olds)
        self._status(d, new_rs, self._owned(d), now)

    def _create_rs(self, d: dict, h: str, revision: int, replicas: int) -> dict:
        tmpl = meta.thaw(d["spec"]["template"])
        tmpl.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        selector = meta.thaw(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        name = f"{d['metadata']['name']}-{h}"
        rs = {
            "metadata": {"name": name, "namespace": d["metadata"]["namespace"],
                         "labels": dict(tmpl["metadata"]["labels"]),
                         "annotations": {REVISION: str(revision),
                                         "deployment.kubernetes.io/desired-replicas":
                                             str(d["spec"].get("replicas", 1))},
                         "ownerReferences": [meta.owner_ref(d, "Deployment", "apps/v1")]},
            "spec": {"replicas": replicas, "selector": selector, "template": tmpl,
                     "minReadySeconds": d["spec"].get("minReadySeconds", 0)},
        }
        created = self.registry.create(resources.REPLICASETS, d["metadata"]["namespace"], rs)
        self.recorder.record(d, "ScalingReplicaSet",
                             f"Scaled up replica set {name} from 0 to {replicas}")
        return created

    def _scale(self, d: dict, rs: dict, replicas: int) -> None:
        current = rs["spec"].get("replicas", 0)
        if current == replicas:
            return
        self.registry.patch(
            resources.REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"],
            MERGE_PATCH, {"metadata": {"resourceVersion": rs["metadata"]["resourceVersion"],
                                       "annotations": {"deployment.kubernetes.io/desired-replicas":
                                                       str(d["spec"].get("replicas", 1))}},
                          "spec": {"replicas": replicas}})
        verb = "up" if replicas > current else "down"
        self.recorder.record(d, "ScalingReplicaSet", f"Scaled {verb} replica set "
                             f"{rs['metadata']['name']} from {current} to {replicas}")

    def _recreate(self, d: dict, new_rs: dict, olds: list[dict], desired: int) -> None:
        live = [r for r in olds if r["spec"].get("replicas") or r.get("status", {}).get("replicas")]
        for r in live:
            self._scale(d, r, 0)
        if not live:
            self._scale(d, new_rs, desired)

    def _roll(self, d: dict, new_rs: dict, olds: list[dict], desired: int) -> None:
        olds = [r for r in olds if r["spec"].get("replicas", 0) > 0]
        if not olds:
            self._scale(d, new_rs, desired)
            return
        ru = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        surge = resolve(ru.get("maxSurge", "25%"), desired, round_up=True)
        unavailable = resolve(ru.get("maxUnavailable", "25%"), desired, round_up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        everyone = [new_rs, *olds]
        total = sum(r["spec"].get("replicas", 0) for r in everyone)
        new_count = new_rs["spec"].get("replicas", 0)
        room = max(0, desired + surge - total)
        target_new = min(desired, new_count + room)
        if target_new != new_count:
            self._scale(d, new_rs, target_new)
        available = sum(r.get("status", {}).get("availableReplicas", 0) for r in everyone)
        removable = max(0, available - (desired - unavailable))
        for r in olds:
            count = r["spec"].get("replicas", 0)
            unhealthy = max(0, count - r.get("status", {}).get("availableReplicas", 0))
            cut = min(count, unhealthy + removable)
            removable -= max(0, cut - unhealthy)
            if cut:
                self._scale(d, r, count - cut)

    def _cleanup(self, d: dict, olds: list[dict]) -> None:
        limit = d["spec"].get("revisionHistoryLimit", 10)
        idle = [r for r in olds if not r["spec"].get("replicas")
                and not r.get("status", {}).get("replicas")]
        for r in idle[: max(0, len(idle) - limit)]:
            self.registry.delete(resources.REPLICASETS, r["metadata"]["namespace"],
                                 r["metadata"]["name"])

    def _status(self, d: dict, new_rs: dict, owned: list[dict], now: float) -> None:
        desired = d["spec"].get("replicas", 1)
        new_rs = next((r for r in owned if r["metadata"]["uid"] == new_rs["metadata"]["uid"]),
                      new_rs)
        sums = {k: sum(r.get("status", {}).get(k, 0) for r in owned)
                for k in ("replicas", "readyReplicas", "availableReplicas")}
        ru = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        max_unavail = resolve(ru.get("maxUnavailable", "25%"), desired, round_up=False) \
            if (d["spec"].get("strategy") or {}).get("type") != "Recreate" else 0
        updated = new_rs.get("status", {}).get("replicas", 0)
        old = d.get("status", {})
        previous = {c["type"]: c for c in old.get("conditions") or []}
        stamp = meta.timestamp(now)
        is_available = sums["availableReplicas"] >= desired - max_unavail
        complete = (updated == desired and sums["replicas"] == desired
                    and sums["availableReplicas"] == desired)
        conditions = [
            _condition("Available", is_available,
                       "MinimumReplicasAvailable" if is_available else "MinimumReplicasUnavailable",
                       "Deployment has minimum availability." if is_available else
                       "Deployment does not have minimum availability.", stamp,
                       previous.get("Available")),
            _condition("Progressing", True,
                       "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                       f'ReplicaSet "{new_rs["metadata"]["name"]}" '
                       + ("has successfully progressed." if complete else "is progressing."),
                       stamp, previous.get("Progressing")),
        ]
        status = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": sums["replicas"], "updatedReplicas": updated,
            "readyReplicas": sums["readyReplicas"],
            "availableReplicas": sums["availableReplicas"],
            "unavailableReplicas": max(0, desired - sums["availableReplicas"]),
            "conditions": conditions,
        }
        status = {k: v for k, v in status.items() if v != 0 or k == "observedGeneration"}
        if status != old:
            new = meta.thaw(d)
            new["status"] = status
            self.store.replace(resources.DEPLOYMENTS, new,
                               expect_rv=d["metadata"]["resourceVersion"])
