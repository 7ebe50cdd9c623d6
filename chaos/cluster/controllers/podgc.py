"""PodGC: force-delete pods bound to a node that no longer exists, after a quarantine.

This is what finally removes the pods of a `delete_nodes` chaos action (upstream: checked
every 20 s, quarantine 40 s; both time-scaled here). Until then those pods still count as
active for their ReplicaSets, so the replacements follow this deletion, as on a real cluster.
"""

from __future__ import annotations

from chaos.cluster import resources
from chaos.cluster.controllers.base import Controller
from chaos.cluster.events import Recorder
from chaos.cluster.registry import Registry
from sim.kube.timescale import TimeScale

CHECK_PERIOD_S = 20.0
QUARANTINE_S = 40.0


class PodGC(Controller):
    name = "podgc"
    on_change = False

    def __init__(self, registry: Registry, recorder: Recorder, scale: TimeScale) -> None:
        self.registry = registry
        self.store = registry.store
        self.recorder = recorder
        self.period_s = scale.scaled(CHECK_PERIOD_S)
        self.quarantine_s = scale.scaled(QUARANTINE_S)
        self._orphaned_since: dict[str, float] = {}  # pod uid -> first seen without its node

    def sync(self, now: float) -> None:
        pods, _ = self.store.list(resources.PODS)
        seen = set()
        for pod in pods:
            node = pod["spec"].get("nodeName")
            if not node or self.store.get(resources.NODES, "", node) is not None:
                continue
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            since = self._orphaned_since.setdefault(uid, now)
            if now - since >= self.quarantine_s:
                self.store.remove(resources.PODS, pod["metadata"]["namespace"],
                                  pod["metadata"]["name"])
                self.recorder.record(pod, "PodGCOrphaned",
                                     f"Deleted pod bound to missing node {node}",
                                     component="pod-garbage-collector")
        self._orphaned_since = {k: v for k, v in self._orphaned_since.items() if k in seen}
