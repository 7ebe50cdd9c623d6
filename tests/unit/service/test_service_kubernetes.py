"""The `kubernetes` cluster adapter against a real API server (chaos.cluster's LocalCluster):
watch by label, pods listed per pool, deletion-cost annotations, Deployment scaling, HPA mode."""

from __future__ import annotations

import asyncio
import threading

import pytest
from kubernetes import client

from chaos.cluster import kubeconfig
from chaos.cluster.cluster import LocalCluster
from scheduler import events as ev
from scheduler.ports import ClusterError
from scheduler.service.config import ServiceConfig
from scheduler.service.engine import Engine
from scheduler.service.kube_cluster import DELETION_COST, KubernetesCluster
from tests.unit.service.live import wait_for

NS = "default"


def agent_deployment(replicas: int) -> dict:
    labels = {"app": "unstuck-agent"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "agents"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "agent", "image": "local/sleep",
                                                           "command": ["sleep", "600"]}],
                                           "terminationGracePeriodSeconds": 1}}}}


@pytest.fixture
def local(tmp_path):
    with LocalCluster(nodes=2, time_scale=20.0, workdir=str(tmp_path / "cluster")) as cluster:
        yield cluster


@pytest.fixture
def kube(local):
    cfg = client.Configuration()
    cfg.host = local.url
    with client.ApiClient(cfg) as api:
        client.AppsV1Api(api).create_namespaced_deployment(NS, agent_deployment(2))
        yield api


class Events:
    def __init__(self) -> None:
        self.items: list[ev.Event] = []
        self.lock = threading.Lock()

    def __call__(self, e: ev.Event) -> None:
        with self.lock:
            self.items.append(e)

    def of(self, kind: type) -> list:
        with self.lock:
            return [e for e in self.items if isinstance(e, kind)]


def running(adapter: KubernetesCluster, n: int):
    pods = [p for p in adapter.list_pods("pool-1") if p.phase == "Running" and not p.terminating]
    return pods if len(pods) == n else None


def test_watch_list_annotate_scale_and_delete(kube):
    adapter = KubernetesCluster(namespace=NS, selector="app=unstuck-agent", deployment="agents",
                                api_client=kube, watch_timeout_s=5)
    seen = Events()
    adapter.start(seen)
    try:
        pods = wait_for(lambda: running(adapter, 2), 20, what="2 running agent pods")
        wait_for(lambda: len(seen.of(ev.PodAdded)) == 2, 10, what="two PodAdded from the watch")
        assert {e.pod for e in seen.of(ev.PodAdded)} == {p.name for p in pods}
        assert adapter.list_pods("another-pool") == []

        adapter.annotate_pod(pods[0].name, {DELETION_COST: "1000"})
        assert {p.name: p.deletion_cost for p in adapter.list_pods("pool-1")}[pods[0].name] == 1000

        adapter.scale("pool-1", 3)
        assert client.AppsV1Api(kube).read_namespaced_deployment("agents", NS).spec.replicas == 3
        wait_for(lambda: len(seen.of(ev.PodAdded)) == 3, 20, what="the third pod's PodAdded")

        adapter.delete_pod(pods[1].name)
        wait_for(lambda: any(e.pod == pods[1].name for e in seen.of(ev.PodRemoved)), 20,
                 what="PodRemoved of the deleted pod")
        with pytest.raises(ClusterError, match="delete pod nope: 404"):
            adapter.delete_pod("nope")
    finally:
        adapter.stop()


def test_hpa_mode_leaves_the_count_alone(kube):
    adapter = KubernetesCluster(namespace=NS, selector="app=unstuck-agent", deployment="agents",
                                scaling="hpa", api_client=kube)
    with pytest.raises(ClusterError, match="left to the HPA"):
        adapter.scale("pool-1", 5)
    assert client.AppsV1Api(kube).read_namespaced_deployment("agents", NS).spec.replicas == 2


def test_the_service_records_the_pods_its_watch_sees(kube, local, tmp_path):
    # A live history follows its pods as a simulated one does: which node each ran on, when it
    # began to terminate and when it went. Here the reference, with no task to run, scales the
    # Deployment down to its pool's minimum of 1, and the ReplicaSet deletes one of the two.
    # Both pods bound first: the reference may scale down before a pod is placed, and a pod
    # never bound to a node, which no agent ran on, leaves no row (seen once in CI under load).
    core = client.CoreV1Api(kube)
    wait_for(lambda: len([p for p in core.list_namespaced_pod(NS, label_selector="app=unstuck-agent").items
                          if p.spec.node_name]) == 2, 20, what="both agent pods bound to a node")
    kubeconfig.write(tmp_path / "kubeconfig", local.url, time_scale=local.scale.factor)
    engine = Engine(ServiceConfig(data_dir=tmp_path / "run", store_url="memory://",
                                  cluster="kubernetes", kubeconfig=str(tmp_path / "kubeconfig"),
                                  namespace=NS, deployment="agents"))

    def rows(kind: str) -> list[dict]:
        return [r for r in engine.history.rows if r["kind"] == kind]

    async def run() -> None:
        await engine.start()
        try:
            for _ in range(400):
                if rows("pod.removed"):
                    return
                await asyncio.sleep(0.05)
        finally:
            await engine.stop()

    asyncio.run(run())
    added = {r["pod"]: r["data"] for r in rows("pod.added")}
    assert len(added) == 2 and all(d["node"] in ("node-1", "node-2") and d["pool"] == "pool-1"
                                   for d in added.values()), added
    (removed,) = rows("pod.removed")
    (terminating,) = [r for r in rows("pod.terminating") if r["pod"] == removed["pod"]]
    assert terminating["seq"] < removed["seq"]
    assert terminating["data"] == removed["data"] == added[removed["pod"]]
