"""The disruption controller: publish each PodDisruptionBudget's numbers in its status."""

from __future__ import annotations

from chaos.cluster import disruption, meta, resources
from chaos.cluster.controllers.base import Controller


class DisruptionController(Controller):
    name = "disruption"

    def __init__(self, store) -> None:
        self.store = store

    def sync(self, now: float) -> None:
        for pdb in self.store.list(resources.PDBS)[0]:
            b = disruption.evaluate(self.store, pdb)
            status = {"currentHealthy": b.current_healthy, "desiredHealthy": b.desired_healthy,
                      "disruptionsAllowed": b.disruptions_allowed,
                      "expectedPods": b.expected_pods,
                      "observedGeneration": pdb["metadata"].get("generation", 1)}
            old = pdb.get("status") or {}
            if any(old.get(k) != v for k, v in status.items()):
                new = meta.thaw(pdb)
                new["status"] = {**old, **status}
                self.store.replace(resources.PDBS, new,
                                   expect_rv=pdb["metadata"]["resourceVersion"])
