"""Node loss on the scaled Kubernetes clock (time scale 100: lease renew 0.1 s, grace 0.5 s,
monitor 0.05 s, default toleration 300 s -> 3 s), and healing."""

from __future__ import annotations

import os
import time

import pytest
from kubernetes import client

from chaos.cluster.cluster import LocalCluster

from .conftest import deployment, running_pods, wait_for

SCALE = 100.0


@pytest.fixture
def fast(tmp_path):
    with LocalCluster(nodes=3, time_scale=SCALE, workdir=str(tmp_path / "c")) as c:
        cfg = client.Configuration()
        cfg.host = c.url
        with client.ApiClient(cfg) as api:
            yield c, client.CoreV1Api(api), client.AppsV1Api(api)


def ready_status(core, node: str) -> str:
    conds = core.read_node(node).status.conditions
    return next(c.status for c in conds if c.type == "Ready")


def state_of(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_a_frozen_node_goes_unknown_then_its_pods_are_evicted_and_replaced(fast):
    cluster, core, apps = fast
    apps.create_namespaced_deployment("default", deployment("loss", 3))
    pods = wait_for(running_pods(core, "app=loss", 3), what="3 running pods")
    lost = [p for p in pods if p.spec.node_name == "node-1"]
    assert lost, "the scheduler spreads 3 pods over 3 nodes"
    pids = [pid for p in lost for pid in cluster.kubelets["node-1"].pids()[
        f"default/{p.metadata.name}"]]

    t0 = time.monotonic()
    cluster.kubelet("node-1").freeze()
    # SIGSTOP is delivered asynchronously: wait until every process shows state T.
    wait_for(lambda: all(state_of(pid) == "T" for pid in pids), timeout=2, interval=0.01,
             what="node-1's processes stopped")
    wait_for(lambda: ready_status(core, "node-1") == "Unknown", timeout=3, interval=0.01,
             what="Ready=Unknown")
    unknown_after = time.monotonic() - t0
    # grace 50 s -> 0.5 s after the last renewal (renewals every 0.1 s), seen by a 0.05 s monitor
    # 0.35 s at the earliest; the upper bound allows for a loaded 2-core CI machine.
    assert 0.35 <= unknown_after <= 1.5, unknown_after
    # The controller marks the node Unknown and taints it in two writes, as upstream does:
    # a read between them sees no taints yet.
    unreachable = {("node.kubernetes.io/unreachable", "NoExecute"),
                   ("node.kubernetes.io/unreachable", "NoSchedule")}
    wait_for(lambda: unreachable <= {(t.key, t.effect)
                                     for t in core.read_node("node-1").spec.taints or ()},
             timeout=0.5, interval=0.01, what="node-1's unreachable taints")
    assert not core.read_namespaced_pod(lost[0].metadata.name, "default").status.conditions[
        [c.type for c in core.read_namespaced_pod(lost[0].metadata.name,
                                                  "default").status.conditions].index("Ready")
    ].status == "True"

    def evicted():
        pod = core.read_namespaced_pod(lost[0].metadata.name, "default")
        return pod.metadata.deletion_timestamp is not None
    wait_for(evicted, timeout=6, interval=0.02, what="taint eviction")
    evicted_after = time.monotonic() - t0
    # tolerationSeconds 300 -> 3 s after the NoExecute taint
    assert 3.0 + 0.35 <= evicted_after <= 3.0 + 1.2, evicted_after
    replacements = wait_for(running_pods(core, "app=loss", 3), timeout=3,
                            what="replacements on healthy nodes")
    assert all(p.spec.node_name != "node-1" for p in replacements)
    # the frozen kubelet cannot confirm: the old pod stays Terminating, its process stopped
    assert core.read_namespaced_pod(lost[0].metadata.name, "default").metadata.deletion_timestamp
    assert all(state_of(pid) == "T" for pid in pids)

    cluster.kubelet("node-1").heal()
    wait_for(lambda: ready_status(core, "node-1") == "True", timeout=3, what="Ready again")
    wait_for(lambda: not core.read_node("node-1").spec.taints, timeout=3, what="taints gone")
    wait_for(lambda: all(not os.path.exists(f"/proc/{pid}") or state_of(pid) == "Z"
                         for pid in pids), timeout=3, what="old processes terminated")
    names = {p.metadata.name for p in core.list_namespaced_pod("default",
                                                               label_selector="app=loss").items}
    wait_for(lambda: lost[0].metadata.name not in {
        p.metadata.name for p in core.list_namespaced_pod("default",
                                                          label_selector="app=loss").items},
        timeout=3, what="old pod removed")
    assert len(names) >= 3


def test_a_killed_node_restarts_its_containers_after_healing(fast):
    cluster, core, _ = fast
    core.create_namespaced_pod("default", {"metadata": {"name": "solo"}, "spec": {
        "nodeSelector": {"kubernetes.io/hostname": "node-2"},
        "containers": [{"name": "main", "image": "x", "command": ["sleep", "600"]}]}})
    wait_for(lambda: cluster.kubelets["node-2"].pids().get("default/solo"), what="started")
    [pid] = cluster.kubelets["node-2"].pids()["default/solo"]
    cluster.kubelet("node-2").kill()
    wait_for(lambda: not os.path.exists(f"/proc/{pid}") or state_of(pid) == "Z", what="killed")
    cluster.kubelet("node-2").heal()

    def restarted():
        cs = core.read_namespaced_pod("solo", "default").status.container_statuses[0]
        return cs.restart_count == 1 and cs.state.running is not None
    wait_for(restarted, timeout=3, what="container restart after heal")
