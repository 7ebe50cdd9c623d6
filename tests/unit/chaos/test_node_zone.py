"""The local control plane's node lifecycle controller follows the zone rules the simulated
world runs (`sim.kube.nodes`): it taints through the zone's token bucket, and when every node
is down it lifts the NoExecute taints and evicts nobody until a node is back. Driven pass by
pass on an explicit clock, without kubelets."""

from __future__ import annotations

from chaos.cluster import meta, resources
from chaos.cluster.controllers.nodelifecycle import LEASE_NAMESPACE, NodeLifecycleController
from chaos.cluster.events import Recorder
from chaos.cluster.kubelet import node_object
from chaos.cluster.registry import Registry
from chaos.cluster.storage import Store
from sim.kube import nodes as node_rules
from sim.kube.timescale import TimeScale

NOEXEC = ("node.kubernetes.io/unreachable", "NoExecute")


class World:
    def __init__(self, names: list[str]) -> None:
        self.now = 0.0
        self.store = Store(clock=lambda: self.now)
        self.registry = Registry(self.store, TimeScale(1.0))
        self.ctl = NodeLifecycleController(self.registry, Recorder(self.store), TimeScale(1.0))
        self.silent: set[str] = set()
        self.registry.create(resources.NAMESPACES, None, {"metadata": {"name": LEASE_NAMESPACE}})
        for n in names:
            self.registry.create(resources.NODES, None, node_object(n, 0.0))
        self.renew()

    def renew(self) -> None:
        for node in self.store.list(resources.NODES)[0]:
            name = node["metadata"]["name"]
            if name in self.silent:
                continue
            spec = {"holderIdentity": name, "renewTime": meta.micro_timestamp(self.now)}
            lease = self.store.get(resources.LEASES, LEASE_NAMESPACE, name)
            if lease is None:
                self.registry.create(resources.LEASES, LEASE_NAMESPACE,
                                     {"metadata": {"name": name, "namespace": LEASE_NAMESPACE},
                                      "spec": spec})
            else:
                new = meta.thaw(lease)
                new["spec"].update(spec)
                self.store.replace(resources.LEASES, new)

    def run_until(self, t: float) -> None:
        """Lease renewals every 10 s and monitor passes every 5 s, as upstream's defaults."""
        while self.now < t:
            self.now = round(self.now + 5.0, 6)
            if self.now % 10 == 0:
                self.renew()
            self.ctl.sync(self.now)

    def taints(self, name: str) -> set[tuple[str, str]]:
        node = self.store.get(resources.NODES, "", name)
        return {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}


def test_the_second_node_down_waits_for_a_token() -> None:
    w = World(["node-1", "node-2", "node-3"])
    w.silent |= {"node-1", "node-2"}
    w.run_until(55)  # both silent since t=0: Unknown at the pass after 50 s, one token
    assert NOEXEC in w.taints("node-1") and NOEXEC not in w.taints("node-2")
    w.run_until(60)  # the bucket refills at 0.1 node/s: 10 s after the first taint
    assert NOEXEC not in w.taints("node-2")
    w.run_until(65)
    assert NOEXEC in w.taints("node-2")


def test_full_disruption_lifts_the_noexecute_taints_until_a_node_is_back() -> None:
    w = World(["node-1", "node-2"])
    w.silent.add("node-1")
    w.run_until(60)
    assert NOEXEC in w.taints("node-1")
    w.silent.add("node-2")
    w.run_until(120)  # node-2 Unknown too: every node is down
    assert w.ctl.zone == node_rules.FULL_DISRUPTION
    assert NOEXEC not in w.taints("node-1") and NOEXEC not in w.taints("node-2")
    assert ("node.kubernetes.io/unreachable", "NoSchedule") in w.taints("node-1")
    w.run_until(1000)  # nothing is evicted while the taints are off
    assert NOEXEC not in w.taints("node-1")
    w.silent.discard("node-2")  # node-2 renews again
    w.renew()
    w.run_until(1005)
    assert w.ctl.zone == node_rules.NORMAL
    assert NOEXEC not in w.taints("node-1")  # the new bucket starts empty (SwapLimiter)
    w.run_until(1015)
    assert NOEXEC in w.taints("node-1") and w.taints("node-2") == set()
