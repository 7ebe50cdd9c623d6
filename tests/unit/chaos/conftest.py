"""Fixtures for the local control plane: a running cluster, a client bound to it, a waiter.

Tests use a time scale of 20 (a 300 s toleration takes 15 s, a 15 s HPA sync 0.75 s) and an
ephemeral 127.0.0.1 port, and never sleep for a fixed time: they wait for a condition.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from chaos.cluster import kubeconfig
from chaos.cluster.cluster import LocalCluster
from tests import waiting

SCALE = 20.0
KUBECTL = shutil.which("kubectl")


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02, what: str = "condition"):
    return waiting.wait_for(predicate, timeout, interval, what)


def refused_invalid(call) -> dict:
    """The Status body of a write the API server refuses as 422 Invalid."""
    with pytest.raises(ApiException) as err:
        call()
    body = json.loads(err.value.body)
    assert (err.value.status, body["reason"]) == (422, "Invalid"), body
    return body


@pytest.fixture
def cluster(tmp_path):
    with LocalCluster(nodes=3, time_scale=SCALE, workdir=str(tmp_path / "cluster")) as c:
        yield c


@pytest.fixture
def kubectl(cluster, tmp_path):
    """Run kubectl against `cluster`: returns stdout after a zero exit, or with `ok=False`
    the stderr of a command that must fail."""
    if KUBECTL is None:
        pytest.skip("kubectl is not installed on this machine")
    path = tmp_path / "kubeconfig"
    kubeconfig.write(path, cluster.url, time_scale=cluster.scale.factor)

    def run(*args: str, stdin: str | None = None, ok: bool = True) -> str:
        done = subprocess.run([KUBECTL, "--kubeconfig", str(path), *args], capture_output=True,
                              text=True, timeout=30, input=stdin)
        if not ok:
            assert done.returncode != 0, done.stdout
            return done.stderr
        assert done.returncode == 0, done.stderr
        return done.stdout
    return run


@pytest.fixture
def api(cluster):
    cfg = client.Configuration()
    cfg.host = cluster.url
    with client.ApiClient(cfg) as api_client:
        yield api_client


@pytest.fixture
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture
def apps(api):
    return client.AppsV1Api(api)


def deployment(name: str, replicas: int, command=("sleep", "600"), **spec_extra) -> dict:
    pod_spec = {"containers": [{"name": "main", "image": "local/sleep", "command": list(command)}],
                "terminationGracePeriodSeconds": 30}
    pod_spec.update(spec_extra.pop("pod", {}))
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
                     **spec_extra}}


def running_pods(core, selector: str, count: int, ns: str = "default"):
    def check():
        pods = [p for p in core.list_namespaced_pod(ns, label_selector=selector).items
                if p.metadata.deletion_timestamp is None]
        ready = [p for p in pods if p.status.phase == "Running" and p.status.container_statuses
                 and all(c.ready for c in p.status.container_statuses)]
        return ready if len(ready) == count == len(pods) else None
    return check
