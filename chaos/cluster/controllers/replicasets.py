"""ReplicaSet -> Pods: create replacements at once, delete the victims the shared rules rank.

A pod stops counting the moment it is marked for deletion (`replicas_to_create`), so a
terminated pod's replacement starts while the victim is still in its grace period; which pods a
scale-down kills is `sim.kube.replicasets.victims`, including the pod-deletion-cost annotation.
"""

from __future__ import annotations

from chaos.cluster import meta, podstatus, resources
from chaos.cluster.controllers.base import Controller
from chaos.cluster.events import Recorder
from chaos.cluster.registry import Registry
from sim.kube import replicasets as rs_rules


def owned_pods(pods: list[dict], rs: dict) -> list[dict]:
    uid = rs["metadata"]["uid"]
    return [p for p in pods if meta.controller_uid(p) == uid]


class ReplicaSetController(Controller):
    name = "replicasets"

    def __init__(self, registry: Registry, recorder: Recorder) -> None:
        self.registry = registry
        self.store = registry.store
        self.recorder = recorder

    def sync(self, now: float) -> None:
        rss, _ = self.store.list(resources.REPLICASETS)
        pods_by_ns: dict[str, list[dict]] = {}
        for rs in rss:
            ns = rs["metadata"]["namespace"]
            if ns not in pods_by_ns:
                pods_by_ns[ns] = self.store.list(resources.PODS, ns)[0]
            self._sync_one(rs, pods_by_ns[ns], rss, now)

    def _sync_one(self, rs: dict, ns_pods: list[dict], all_rs: list[dict], now: float) -> None:
        pods = owned_pods(ns_pods, rs)
        views = [podstatus.view(p) for p in pods]
        desired = rs["spec"].get("replicas", 1)
        if rs["metadata"].get("deletionTimestamp"):
            desired = 0
        create = rs_rules.replicas_to_create(views, desired)
        for _ in range(create):
            self._create_pod(rs)
        active = sum(1 for v in views if rs_rules.is_active(v))
        if active > desired:
            related = self._related(rs, ns_pods, all_rs)
            for victim in rs_rules.victims(views, active - desired, now, related=related):
                self.registry.delete(resources.PODS, rs["metadata"]["namespace"], victim.name)
                self.recorder.record(rs, "SuccessfulDelete", f"Deleted pod: {victim.name}")
        if create or active > desired:
            pods = owned_pods(self.store.list(resources.PODS, rs["metadata"]["namespace"])[0], rs)
        self._status(rs, pods, now)

    def _related(self, rs: dict, ns_pods: list[dict], all_rs: list[dict]):
        """Active pods of every ReplicaSet with the same owner (the co-location rank's scope)."""
        owner = meta.controller_uid(rs)
        siblings = [r for r in all_rs if owner and meta.controller_uid(r) == owner] or [rs]
        return [podstatus.view(p) for r in siblings for p in owned_pods(ns_pods, r)]

    def _create_pod(self, rs: dict) -> None:
        tmpl = rs["spec"]["template"]
        name = rs["metadata"]["name"]
        pod = {
            "metadata": {**meta.thaw(tmpl.get("metadata") or {}),
                         "generateName": f"{name}-", "namespace": rs["metadata"]["namespace"],
                         "ownerReferences": [meta.owner_ref(rs, "ReplicaSet", "apps/v1")]},
            "spec": meta.thaw(tmpl["spec"]),
        }
        pod["metadata"].pop("name", None)
        created = self.registry.create(resources.PODS, rs["metadata"]["namespace"], pod)
        self.recorder.record(rs, "SuccessfulCreate",
                             f"Created pod: {created['metadata']['name']}")

    def _status(self, rs: dict, pods: list[dict], now: float) -> None:
        active = [p for p in pods if podstatus.is_active(p)]
        min_ready = rs["spec"].get("minReadySeconds", 0)
        ready = [p for p in active if podstatus.is_ready(p)]
        available = [p for p in ready
                     if (podstatus.ready_since(p) or now) + min_ready <= now or min_ready == 0]
        labels_ok = all(meta.labels_of(p).get(k) == v for p in active
                        for k, v in (rs["spec"]["selector"].get("matchLabels") or {}).items())
        status = {"replicas": len(active),
                  "fullyLabeledReplicas": len(active) if labels_ok else 0,
                  "readyReplicas": len(ready), "availableReplicas": len(available),
                  "observedGeneration": rs["metadata"].get("generation", 1)}
        terminating = sum(1 for p in pods if podstatus.is_terminating(p))
        if terminating:
            status["terminatingReplicas"] = terminating
        status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
        if status != rs.get("status"):
            new = meta.thaw(rs)
            new["status"] = status
            self.store.replace(resources.REPLICASETS, new,
                               expect_rv=rs["metadata"]["resourceVersion"])
