"""chaostoolkit-kubernetes, unchanged, against the local control plane; each action's effect
is checked through the API. The activities find the server through `secrets`
(KUBERNETES_HOST) with KUBECONFIG pointing nowhere, because the kubernetes client reads
KUBECONFIG only once per process; `chaos run` in a subprocess uses a real kubeconfig."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from chaosk8s.deployment.actions import scale_deployment
from chaosk8s.deployment.probes import deployment_available_and_healthy
from chaosk8s.node.actions import cordon_node, delete_nodes, drain_nodes, uncordon_node
from chaosk8s.pod.actions import terminate_pods
from chaosk8s.pod.probes import count_pods, pods_in_phase
from chaoslib.exceptions import ActivityFailed
from kubernetes import client

from chaos.cluster import kubeconfig

from .conftest import deployment, running_pods, wait_for


@pytest.fixture
def secrets(cluster, monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    return {"KUBERNETES_HOST": cluster.url}


def _quick_deployment(name: str, replicas: int) -> dict:
    """Grace 0: evicted pods go at once, so drain_nodes never enters its 10 s polling sleep."""
    return deployment(name, replicas, pod={"terminationGracePeriodSeconds": 0})


def test_terminate_pods_and_the_replica_set_replaces_the_pod(secrets, core, apps):
    apps.create_namespaced_deployment("default", deployment("tp", 2))
    before = {p.metadata.name for p in wait_for(running_pods(core, "app=tp", 2))}
    terminate_pods(label_selector="app=tp", ns="default", qty=1, secrets=secrets)
    after = {p.metadata.name for p in wait_for(running_pods(core, "app=tp", 2),
                                               what="replacement")}
    assert len(before - after) == 1 and len(after - before) == 1
    assert pods_in_phase(label_selector="app=tp", phase="Running", ns="default",
                         secrets=secrets)
    assert count_pods(label_selector="app=tp", phase="Running", ns="default",
                      secrets=secrets) >= 2


def test_scale_deployment_and_deployment_probe(secrets, core, apps):
    apps.create_namespaced_deployment("default", deployment("sd", 1))
    wait_for(running_pods(core, "app=sd", 1))
    scale_deployment("sd", 3, ns="default", secrets=secrets)
    wait_for(running_pods(core, "app=sd", 3), what="3 pods")
    wait_for(lambda: apps.read_namespaced_deployment("sd", "default").status
             .available_replicas == 3, what="status caught up")
    assert deployment_available_and_healthy("sd", ns="default", secrets=secrets)
    assert count_pods(label_selector="app=sd", ns="default", secrets=secrets) == 3


def test_deployment_probe_fails_while_unavailable(secrets, apps):
    apps.create_namespaced_deployment("default", deployment("never", 2, pod={
        "nodeSelector": {"no-such": "node"}}))
    with pytest.raises(ActivityFailed):
        deployment_available_and_healthy("never", ns="default", secrets=secrets)


def test_cordon_and_uncordon(secrets, core):
    cordon_node(name="node-2", secrets=secrets)
    assert core.read_node("node-2").spec.unschedulable is True
    core.create_namespaced_pod("default", {"metadata": {"name": "pinned"}, "spec": {
        "nodeSelector": {"kubernetes.io/hostname": "node-2"},
        "containers": [{"name": "m", "image": "x", "command": ["sleep", "60"]}]}})
    wait_for(lambda: any(c.reason == "Unschedulable" for c in core.read_namespaced_pod(
        "pinned", "default").status.conditions or []), what="unschedulable")
    uncordon_node(name="node-2", secrets=secrets)
    assert not core.read_node("node-2").spec.unschedulable
    wait_for(lambda: core.read_namespaced_pod("pinned", "default").spec.node_name == "node-2",
             what="scheduled after uncordon")


def test_drain_nodes_moves_pods_off_the_node(secrets, core, apps):
    apps.create_namespaced_deployment("default", _quick_deployment("dr", 3))
    wait_for(running_pods(core, "app=dr", 3))
    drain_nodes(name="node-1", secrets=secrets, timeout=10)
    pods = wait_for(running_pods(core, "app=dr", 3), what="pods moved")
    assert all(p.spec.node_name != "node-1" for p in pods)
    assert core.read_node("node-1").spec.unschedulable is True


def test_drain_nodes_is_blocked_by_a_pdb(secrets, api, core, apps):
    apps.create_namespaced_deployment("default", _quick_deployment("pdb", 3))
    wait_for(running_pods(core, "app=pdb", 3))
    client.PolicyV1Api(api).create_namespaced_pod_disruption_budget("default", {
        "metadata": {"name": "all"}, "spec": {"minAvailable": 3,
                                              "selector": {"matchLabels": {"app": "pdb"}}}})
    with pytest.raises(ActivityFailed, match="Failed to evict pod"):
        drain_nodes(name="node-1", secrets=secrets, timeout=10)
    assert len(core.list_namespaced_pod("default", label_selector="app=pdb").items) == 3


def test_delete_nodes_and_podgc_reschedules_their_pods(secrets, core, apps):
    apps.create_namespaced_deployment("default", deployment("dn", 3))
    doomed = {p.metadata.name for p in wait_for(running_pods(core, "app=dn", 3))
              if p.spec.node_name == "node-3"}
    assert doomed
    delete_nodes(label_selector="kubernetes.io/hostname=node-3", secrets=secrets)
    assert "node-3" not in {n.metadata.name for n in core.list_node().items}
    # PodGC quarantine: 40 s / 20 = 2 s, then the ReplicaSet replaces the pods
    wait_for(lambda: not doomed & {p.metadata.name for p in core.list_namespaced_pod(
        "default", label_selector="app=dn").items}, timeout=6, what="PodGC")
    pods = wait_for(running_pods(core, "app=dn", 3), timeout=3, what="replacements")
    assert all(p.spec.node_name != "node-3" for p in pods)


def test_chaos_run_with_a_kubeconfig(cluster, core, apps, tmp_path):
    """The `chaos` CLI in its own process finds the cluster through the kubeconfig."""
    apps.create_namespaced_deployment("default", deployment("exp", 2))
    wait_for(running_pods(core, "app=exp", 2))
    wait_for(lambda: apps.read_namespaced_deployment("exp", "default").status
             .available_replicas == 2)
    path = tmp_path / "kubeconfig"
    kubeconfig.write(path, cluster.url, time_scale=cluster.scale.factor)
    experiment = {
        "title": "a pod dies and the deployment stays available",
        "description": "terminate one pod",
        "steady-state-hypothesis": {"title": "available", "probes": [{
            "type": "probe", "name": "available", "tolerance": True,
            "provider": {"type": "python", "module": "chaosk8s.deployment.probes",
                         "func": "deployment_available_and_healthy",
                         "arguments": {"name": "exp", "ns": "default"}}}]},
        "method": [{"type": "action", "name": "kill-one", "provider": {
            "type": "python", "module": "chaosk8s.pod.actions", "func": "terminate_pods",
            "arguments": {"label_selector": "app=exp", "ns": "default", "qty": 1}},
            "pauses": {"after": 1}}],
    }
    (tmp_path / "exp.json").write_text(json.dumps(experiment))
    env = {**os.environ, "KUBECONFIG": str(path)}
    chaos = os.path.join(os.path.dirname(sys.executable), "chaos")
    done = subprocess.run([chaos, "--no-version-check", "--no-log-file", "run",
                           "--journal-path", str(tmp_path / "journal.json"),
                           str(tmp_path / "exp.json")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["status"] == "completed", done.stdout + done.stderr
    assert journal["run"][0]["status"] == "succeeded"
