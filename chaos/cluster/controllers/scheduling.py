"""The pod scheduler: bind each unscheduled pod to a feasible node, spreading by pod count.

Feasible means: the node exists and is not being deleted, is not cordoned
(`spec.unschedulable`), matches the pod's nodeSelector, and carries no NoSchedule/NoExecute
taint the pod does not tolerate. Among feasible nodes the one with the fewest active pods
wins (ties by name), a stand-in for the default scorer's spreading. A pod with no feasible
node gets PodScheduled=False/Unschedulable and waits for the next pass.
"""

from __future__ import annotations

from collections import Counter

from chaos.cluster import meta, podstatus, resources, taints
from chaos.cluster.controllers.base import Controller
from chaos.cluster.events import Recorder
from chaos.cluster.registry import Registry


def feasible(pod: dict, node: dict) -> bool:
    if node["metadata"].get("deletionTimestamp") or node["spec"].get("unschedulable"):
        return False
    labels = meta.labels_of(node)
    if any(labels.get(k) != v for k, v in (pod["spec"].get("nodeSelector") or {}).items()):
        return False
    return taints.schedulable_on(pod, node)


def _set_condition(pod: dict, status: str, reason: str | None, message: str | None,
                   now: float) -> dict:
    new = meta.thaw(pod)
    conds = [c for c in new["status"].get("conditions") or [] if c["type"] != "PodScheduled"]
    cond = {"type": "PodScheduled", "status": status,
            "lastTransitionTime": meta.timestamp(now), "lastProbeTime": None}
    if reason:
        cond["reason"], cond["message"] = reason, message
    new["status"]["conditions"] = [cond, *conds]
    return new


class Scheduler(Controller):
    name = "scheduler"

    def __init__(self, registry: Registry, recorder: Recorder) -> None:
        self.registry = registry
        self.store = registry.store
        self.recorder = recorder

    def sync(self, now: float) -> None:
        pods, _ = self.store.list(resources.PODS)
        pending = [p for p in pods if not p["spec"].get("nodeName")
                   and not podstatus.is_terminating(p)
                   and p["spec"].get("schedulerName", "default-scheduler") == "default-scheduler"]
        if not pending:
            return
        nodes, _ = self.store.list(resources.NODES)
        load = Counter(p["spec"]["nodeName"] for p in pods
                       if p["spec"].get("nodeName") and podstatus.is_active(p))
        pending.sort(key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"]))
        for pod in pending:
            options = [n for n in nodes if feasible(pod, n)]
            if not options:
                self._unschedulable(pod, len(nodes), now)
                continue
            node = min(options, key=lambda n: (load[n["metadata"]["name"]], n["metadata"]["name"]))
            name = node["metadata"]["name"]
            bound = _set_condition(pod, "True", None, None, now)
            bound["spec"]["nodeName"] = name
            self.store.replace(resources.PODS, bound, expect_rv=pod["metadata"]["resourceVersion"])
            load[name] += 1
            self.recorder.record(pod, "Scheduled", f"Successfully assigned "
                                 f"{pod['metadata']['namespace']}/{pod['metadata']['name']} "
                                 f"to {name}", component="default-scheduler")

    def _unschedulable(self, pod: dict, total: int, now: float) -> None:
        current = podstatus.condition(pod, "PodScheduled")
        if current and current.get("reason") == "Unschedulable":
            return
        message = f"0/{total} nodes are available: no node is schedulable, untainted and " \
                  "matching the pod's nodeSelector."
        self.store.replace(resources.PODS, _set_condition(pod, "False", "Unschedulable",
                                                          message, now),
                           expect_rv=pod["metadata"]["resourceVersion"])
        self.recorder.record(pod, "FailedScheduling", message, type_="Warning",
                             component="default-scheduler")
