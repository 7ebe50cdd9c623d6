"""Node lifecycle and taint-based eviction, on the shared `sim.kube.nodes` rules.

Every monitor period the controller compares each node's Lease renewTime with the (scaled)
grace: a silent node goes Ready=Unknown, its pods go NotReady, and it gets the `unreachable`
NoSchedule taint at once and the NoExecute taint through the zone's token bucket, whose rate
follows the zone state computed on every pass (`node_rules.zone_state`, `swap_limiter`: the
same rules the simulated world runs). When every node is down (full disruption) the NoExecute
taints are lifted and no pod is evicted until a node is back. A pod on a NoExecute-tainted node
is deleted (gracefully) at taint time + its tolerationSeconds; a node that renews again loses
the taints.
"""

from __future__ import annotations

import dataclasses

from chaos.cluster import meta, podstatus, resources, taints
from chaos.cluster.controllers.base import Controller
from chaos.cluster.events import Recorder
from chaos.cluster.registry import Registry, pods_on_node
from sim.kube import nodes as node_rules
from sim.kube.timescale import TimeScale

LEASE_NAMESPACE = "kube-node-lease"
_MANAGED = (node_rules.UNREACHABLE_TAINT, node_rules.NOT_READY_TAINT)


def scaled_timings(timings: node_rules.NodeTimings, scale: TimeScale) -> node_rules.NodeTimings:
    return dataclasses.replace(
        timings,
        lease_renew_s=scale.scaled(timings.lease_renew_s),
        monitor_period_s=scale.scaled(timings.monitor_period_s),
        grace_s=scale.scaled(timings.grace_s),
        toleration_s=scale.scaled(timings.toleration_s),
        eviction_rate_per_s=scale.rate(timings.eviction_rate_per_s),
        secondary_eviction_rate_per_s=scale.rate(timings.secondary_eviction_rate_per_s))


def last_renewal(store, node: dict) -> float:
    lease = store.get(resources.LEASES, LEASE_NAMESPACE, node["metadata"]["name"])
    renewed = meta.parse_time((lease or {}).get("spec", {}).get("renewTime"))
    return renewed if renewed is not None else meta.parse_time(node["metadata"]["creationTimestamp"])


class NodeLifecycleController(Controller):
    name = "node-lifecycle"
    on_change = False

    def __init__(self, registry: Registry, recorder: Recorder, scale: TimeScale,
                 timings: node_rules.NodeTimings | None = None) -> None:
        self.registry = registry
        self.store = registry.store
        self.recorder = recorder
        self.scale = scale
        self.timings = scaled_timings(timings or node_rules.NodeTimings(), scale)
        self.period_s = self.timings.monitor_period_s
        self.zone = node_rules.NORMAL
        self.limiter = node_rules.TaintLimiter(self.timings.eviction_rate_per_s)
        self.tainted_at: dict[tuple[str, str], float] = {}  # (node, taint key) -> when

    def sync(self, now: float) -> None:
        nodes, _ = self.store.list(resources.NODES)
        conditions = {n["metadata"]["name"]: node_rules.node_condition(
            last_renewal(self.store, n), now, self.timings) for n in nodes}
        down = sum(1 for c in conditions.values() if c != node_rules.READY)
        state = node_rules.zone_state(down, len(nodes), self.timings)
        if state != self.zone:  # upstream `handleDisruption`: swap the zone's bucket
            rate = node_rules.zone_rate(state, len(nodes), self.timings)
            self.limiter = node_rules.swap_limiter(self.limiter, rate, now)
            self.zone = state
        for node in nodes:
            name = node["metadata"]["name"]
            node = self._mark(node, conditions[name], now)
            node = self._taint(node, conditions[name], now)
            self._evict(node, now)

    def _mark(self, node: dict, condition: str, now: float) -> dict:
        if condition != node_rules.UNKNOWN:
            return node
        ready = next((c for c in node.get("status", {}).get("conditions") or []
                      if c["type"] == "Ready"), None)
        if ready is not None and ready.get("status") == "Unknown":
            return node
        new = meta.thaw(node)
        stamp = meta.timestamp(now)
        for c in new["status"].get("conditions") or []:
            c.update(status="Unknown", reason="NodeStatusUnknown", lastTransitionTime=stamp,
                     message="Kubelet stopped posting node status.")
        node = self.store.replace(resources.NODES, new)
        self.recorder.record(node, "NodeNotReady", f"Node {node['metadata']['name']} status is "
                             "now: NodeNotReady", component="node-controller")
        for pod in pods_on_node(self.store, node["metadata"]["name"]):
            self._pod_not_ready(pod, now)
        return node

    def _pod_not_ready(self, pod: dict, now: float) -> None:
        if not podstatus.is_ready(pod):
            return
        new = meta.thaw(pod)
        for c in new["status"].get("conditions") or []:
            if c["type"] in ("Ready", "ContainersReady"):
                c.update(status="False", lastTransitionTime=meta.timestamp(now))
        for cs in new["status"].get("containerStatuses") or []:
            cs["ready"] = False
        self.store.replace(resources.PODS, new)

    def _taint(self, node: dict, condition: str, now: float) -> dict:
        name = node["metadata"]["name"]
        current = node["spec"].get("taints") or []
        wanted = [w.split(":") for w in node_rules.taints_for(condition)]
        if self.zone == node_rules.FULL_DISRUPTION:
            # Upstream `markNodeAsReachable` on every node: no NoExecute taint, no eviction.
            wanted = [w for w in wanted if w[1] != "NoExecute"]
        keep = [t for t in current if t.get("key") not in _MANAGED
                or [t["key"], t["effect"]] in wanted]
        for key, effect in wanted:
            if any(t["key"] == key and t["effect"] == effect for t in keep):
                continue
            if effect == "NoExecute":
                if node_rules.next_taint_at(self.limiter, now) > now:
                    continue  # no token: the node waits in the queue
                self.limiter = node_rules.after_taint(self.limiter, now)
            keep.append({"key": key, "effect": effect, "timeAdded": meta.timestamp(now)})
            self.tainted_at[(name, f"{key}:{effect}")] = now
        if keep == current:
            return node
        new = meta.thaw(node)
        new["spec"]["taints"] = keep
        if not keep:
            new["spec"].pop("taints")
        return self.store.replace(resources.NODES, new)

    def _evict(self, node: dict, now: float) -> None:
        name = node["metadata"]["name"]
        noexec = [t for t in node["spec"].get("taints") or [] if t.get("effect") == "NoExecute"]
        if not noexec:
            return
        for pod in pods_on_node(self.store, name):
            if podstatus.is_terminating(pod):
                continue
            due = min(self._eviction_time(name, pod, taint, now) for taint in noexec)
            if now >= due:
                self.registry.delete(resources.PODS, pod["metadata"]["namespace"],
                                     pod["metadata"]["name"])
                self.recorder.record(pod, "TaintManagerEviction",
                                     f"Marking for deletion Pod {pod['metadata']['namespace']}/"
                                     f"{pod['metadata']['name']}", component="taint-eviction")

    def _eviction_time(self, node: str, pod: dict, taint: dict, now: float) -> float:
        """Untolerated: at once; tolerated for N s: taint time + N (scaled); else never."""
        since = self.tainted_at.get((node, f"{taint['key']}:NoExecute"))
        if since is None:
            since = meta.parse_time(taint.get("timeAdded")) or now
        tolerated, seconds = taints.toleration_seconds(pod, taint)
        if not tolerated:
            return since
        return node_rules.eviction_at(since, None if seconds is None else self.scale.scaled(seconds))
