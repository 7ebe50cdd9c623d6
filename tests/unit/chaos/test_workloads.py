"""Controllers and the process kubelet together: real processes behind Running pods,
restart policies, graceful termination, victim ranking, HPA, PDB-guarded eviction."""

from __future__ import annotations

import os
import signal
import socket
import sys

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import deployment, running_pods, wait_for


def log_of(core, name: str) -> str:
    """Raw log text (client 36 turns a text/plain body into "b'...'" when it preloads)."""
    return core.read_namespaced_pod_log(name, "default", _preload_content=False).data.decode()


def pids_of(cluster, pod_name: str) -> list[int]:
    for k in cluster.kubelets.values():
        for key, pids in k.pids().items():
            if key == f"default/{pod_name}":
                return pids
    return []


def test_each_running_pod_is_a_live_process_with_its_env(cluster, core, apps):
    script = "import os,time; print(os.environ['POD_NAME'], os.environ['NODE_NAME'], " \
             "os.environ['GREETING'], flush=True); time.sleep(600)"
    d = deployment("env", 2, command=(sys.executable, "-c", script))
    d["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "GREETING",
                                                              "value": "hi"}]
    apps.create_namespaced_deployment("default", d)
    pods = wait_for(running_pods(core, "app=env", 2), what="2 running pods")
    assert {p.spec.node_name for p in pods} <= {"node-1", "node-2", "node-3"}
    for p in pods:
        [pid] = pids_of(cluster, p.metadata.name)
        os.kill(pid, 0)  # alive
        line = wait_for(lambda p=p: log_of(core, p.metadata.name),
                        what="log output")
        assert line.split() == [p.metadata.name, p.spec.node_name, "hi"]


@pytest.mark.parametrize(("policy", "phase"), [("Always", "Running"), ("Never", "Failed")])
def test_killing_the_process_restarts_or_fails_per_restart_policy(cluster, core, policy, phase):
    core.create_namespaced_pod("default", {"metadata": {"name": "victim"}, "spec": {
        "restartPolicy": policy,
        "containers": [{"name": "main", "image": "x", "command": ["sleep", "600"]}]}})
    wait_for(lambda: pids_of(cluster, "victim"), what="a process")
    [pid] = pids_of(cluster, "victim")
    os.kill(pid, signal.SIGKILL)

    def settled():
        pod = core.read_namespaced_pod("victim", "default")
        cs = pod.status.container_statuses[0]
        if policy == "Always":
            return cs.restart_count == 1 and cs.state.running and pod
        return pod.status.phase == "Failed" and pod
    pod = wait_for(settled, timeout=5, what=f"{policy} outcome")
    cs = pod.status.container_statuses[0]
    assert pod.status.phase == phase
    if policy == "Always":  # a new process, and the old exit recorded as lastState
        assert pids_of(cluster, "victim") != [pid]
        assert cs.last_state.terminated.exit_code == 128 + signal.SIGKILL
    else:
        assert cs.state.terminated.exit_code == 128 + signal.SIGKILL


def test_graceful_delete_sends_sigterm_then_sigkill_at_the_scaled_deadline(cluster, core):
    """A process that ignores SIGTERM dies by SIGKILL at grace / scale (30 s / 20 = 1.5 s)."""
    trap = "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " \
           "print('up', flush=True); time.sleep(600)"
    core.create_namespaced_pod("default", {"metadata": {"name": "stubborn"}, "spec": {
        "containers": [{"name": "main", "image": "x", "command": [sys.executable, "-c", trap]}]}})
    wait_for(lambda: "up" in log_of(core, "stubborn"), what="start")
    [pid] = pids_of(cluster, "stubborn")
    import time
    t0 = time.monotonic()
    deleted = core.delete_namespaced_pod("stubborn", "default")
    assert deleted.metadata.deletion_timestamp is not None
    assert deleted.metadata.deletion_grace_period_seconds == 30
    wait_for(lambda: not os.path.exists(f"/proc/{pid}") or _zombie(pid), timeout=5,
             what="SIGKILL")
    elapsed = time.monotonic() - t0
    assert 1.3 <= elapsed <= 2.5, elapsed

    def gone():
        try:
            core.read_namespaced_pod("stubborn", "default")
        except ApiException as err:
            return err.status == 404
    wait_for(gone, what="pod removal")


def test_a_re_delete_whose_shorter_grace_is_already_past_stays_graceful_with_1_s(cluster, core):
    """Found by review: a re-delete with a grace that ended before now stamped the grace asked
    for (5), and a deadline in the past; upstream (and spec §3) keep it graceful with 1 s."""
    trap = "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " \
           "print('up', flush=True); time.sleep(600)"
    core.create_namespaced_pod("default", {"metadata": {"name": "slow"}, "spec": {
        "terminationGracePeriodSeconds": 600,
        "containers": [{"name": "main", "image": "x", "command": [sys.executable, "-c", trap]}]}})
    wait_for(lambda: "up" in log_of(core, "slow"), what="start")
    first = core.delete_namespaced_pod("slow", "default")
    assert first.metadata.deletion_grace_period_seconds == 600
    import time
    time.sleep(0.5)  # 10 s of cluster time at scale 20: a 5 s grace from the first delete is past
    again = core.delete_namespaced_pod("slow", "default", grace_period_seconds=5)
    assert again.metadata.deletion_grace_period_seconds == 1
    assert again.metadata.deletion_timestamp < first.metadata.deletion_timestamp


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] == "Z"
    except FileNotFoundError:
        return True


def test_replica_set_replaces_a_terminating_pod_at_once(cluster, core, apps):
    apps.create_namespaced_deployment("default", deployment("rep", 2))
    pods = wait_for(running_pods(core, "app=rep", 2), what="2 running pods")
    core.delete_namespaced_pod(pods[0].metadata.name, "default")
    names = {p.metadata.name for p in pods}
    wait_for(running_pods(core, "app=rep", 2), what="a replacement")
    now = {p.metadata.name for p in core.list_namespaced_pod(
        "default", label_selector="app=rep").items if p.metadata.deletion_timestamp is None}
    assert pods[0].metadata.name not in now and len(now - names) == 1


def test_scale_down_kills_the_pod_with_the_lowest_deletion_cost(cluster, core, apps):
    apps.create_namespaced_deployment("default", deployment("cost", 3))
    pods = wait_for(running_pods(core, "app=cost", 3), what="3 running pods")
    for i, p in enumerate(sorted(pods, key=lambda p: p.metadata.name)):
        core.patch_namespaced_pod(p.metadata.name, "default", {"metadata": {"annotations": {
            "controller.kubernetes.io/pod-deletion-cost": str([100, -5, 50][i])}}})
    cheap = sorted(pods, key=lambda p: p.metadata.name)[1].metadata.name
    apps.patch_namespaced_deployment("cost", "default", {"spec": {"replicas": 2}})
    survivors = wait_for(running_pods(core, "app=cost", 2), what="scale-down")
    assert cheap not in {p.metadata.name for p in survivors}


def test_eviction_is_refused_with_429_when_a_pdb_would_be_violated(cluster, api, core, apps):
    apps.create_namespaced_deployment("default", deployment("guarded", 2))
    pods = wait_for(running_pods(core, "app=guarded", 2), what="2 running pods")
    client.PolicyV1Api(api).create_namespaced_pod_disruption_budget("default", {
        "metadata": {"name": "guard"}, "spec": {
            "minAvailable": 2, "selector": {"matchLabels": {"app": "guarded"}}}})
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod_eviction(pods[0].metadata.name, "default", {
            "metadata": {"name": pods[0].metadata.name, "namespace": "default"}})
    assert err.value.status == 429
    client.PolicyV1Api(api).patch_namespaced_pod_disruption_budget(
        "guard", "default", {"spec": {"minAvailable": 1}})
    core.create_namespaced_pod_eviction(pods[0].metadata.name, "default", {
        "metadata": {"name": pods[0].metadata.name, "namespace": "default"}})
    # The eviction deletes the pod gracefully: it is terminating, or, since `sleep` exits at
    # once on SIGTERM, already gone by the time it is read.
    try:
        evicted = core.read_namespaced_pod(pods[0].metadata.name,
                                           "default").metadata.deletion_timestamp is not None
    except ApiException as e:
        evicted = e.status == 404
    assert evicted


def cpu_hpa(name: str, *, max_replicas: int, target: int, behavior: dict | None = None) -> dict:
    """An HPA (minReplicas 1) of the Deployment `name` on CPU utilization `target` %."""
    spec = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1, "maxReplicas": max_replicas,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}]}
    if behavior is not None:
        spec["behavior"] = behavior
    return {"metadata": {"name": name}, "spec": spec}


def test_hpa_scales_up_from_an_experiment_set_metric(cluster, api, core, apps):
    """2 replicas at 160 % of an 80 % target want 4: ceil(2 * 1.6 / 0.8)."""
    apps.create_namespaced_deployment("default", deployment("auto", 2))
    wait_for(running_pods(core, "app=auto", 2), what="2 running pods")
    client.AutoscalingV2Api(api).create_namespaced_horizontal_pod_autoscaler(
        "default", cpu_hpa("auto", max_replicas=10, target=80))
    cluster.board.set("default", "auto", 1.6)
    wait_for(lambda: apps.read_namespaced_deployment("auto", "default").spec.replicas == 4,
             timeout=5, what="scale to 4")
    # The controller writes the scale, then its own status: on a loaded machine a read can
    # fall between the two.
    hpas = client.AutoscalingV2Api(api)
    wait_for(lambda: hpas.read_namespaced_horizontal_pod_autoscaler(
        "auto", "default").status.desired_replicas == 4, timeout=5, what="status.desiredReplicas 4")


def test_hpa_brings_a_target_above_max_to_its_bound_without_any_metric(cluster, api, core, apps):
    """Found by review: with no sample the controller skipped the whole reconcile, so a
    Deployment scaled past maxReplicas stayed there; upstream rescales to the bound without
    metrics (TooManyReplicas), and says the metric is missing while in range."""
    apps.create_namespaced_deployment("default", deployment("over", 4))
    wait_for(running_pods(core, "app=over", 4), what="4 running pods")
    hpas = client.AutoscalingV2Api(api)
    hpas.create_namespaced_horizontal_pod_autoscaler("default", cpu_hpa("over", max_replicas=2, target=80))
    wait_for(lambda: apps.read_namespaced_deployment("over", "default").spec.replicas == 2,
             timeout=5, what="scale to maxReplicas 2")

    def active_reason():
        conditions = hpas.read_namespaced_horizontal_pod_autoscaler("over", "default").status.conditions
        return next((c.reason for c in conditions or [] if c.type == "ScalingActive"), None)

    wait_for(lambda: active_reason() == "FailedGetResourceMetric", timeout=5,
             what="in range, the missing metric reported")


def test_hpa_counts_a_running_pod_that_is_not_ready_as_missing_not_unready(cluster, api, core, apps, tmp_path):
    """Found by review: a Running NotReady pod was passed as unready, which a scale-down
    leaves out; upstream `groupPods` counts it missing (busy, on a scale-down), as the
    simulation does. 4 pods, 2 ready at 20 % of an 80 % target: [20, 20, 100, 100] % over
    80 % wants 3; leaving the other two out wanted 1."""
    marks = tmp_path / "ready"
    marks.mkdir()
    probe = {"exec": {"command": ["sh", "-c", f"test -e {marks}/$POD_NAME"]}, "periodSeconds": 1}
    apps.create_namespaced_deployment("default", deployment("half", 4, pod={"containers": [
        {"name": "main", "image": "local/sleep", "command": ["sleep", "600"], "readinessProbe": probe}]}))

    def running():
        pods = core.list_namespaced_pod("default", label_selector="app=half").items
        return pods if len(pods) == 4 and all(p.status.phase == "Running" for p in pods) else None

    for pod in wait_for(running, what="4 running pods")[:2]:
        (marks / pod.metadata.name).touch()
    wait_for(lambda: sum(bool(p.status.container_statuses and p.status.container_statuses[0].ready)
                         for p in core.list_namespaced_pod("default", label_selector="app=half").items) == 2,
             what="2 ready pods")
    client.AutoscalingV2Api(api).create_namespaced_horizontal_pod_autoscaler("default", cpu_hpa(
        "half", max_replicas=10, target=80,
        behavior={"scaleDown": {"stabilizationWindowSeconds": 0}}))
    cluster.board.set("default", "half", 0.2)
    first = wait_for(lambda: (n := apps.read_namespaced_deployment("half", "default").spec.replicas) != 4
                     and n, timeout=5, interval=0.01, what="the first rescale")
    assert first == 3


def test_hpa_conditions_carry_upstreams_reasons_and_messages(cluster, api, core, apps):
    """`kubectl describe hpa` shows the conditions as upstream's controller sets them: it
    printed ScalingActive True with the reason TooManyReplicas, and each condition's message
    was its reason. 2 pods at 90 % of a 50 % target want 4 = maxReplicas; then 4 want 8."""
    apps.create_namespaced_deployment("default", deployment("cond", 2))
    wait_for(running_pods(core, "app=cond", 2), what="2 running pods")
    hpas = client.AutoscalingV2Api(api)
    hpas.create_namespaced_horizontal_pod_autoscaler("default", cpu_hpa("cond", max_replicas=4, target=50))

    def conditions():
        got = hpas.read_namespaced_horizontal_pod_autoscaler("cond", "default").status.conditions
        return {c.type: (c.status, c.reason, c.message) for c in got or []}

    wait_for(lambda: "ScalingActive" in conditions(), timeout=5, what="a first sync")
    first = conditions()
    assert first["AbleToScale"] == ("True", "SucceededGetScale",
                                    "the HPA controller was able to get the target's current scale")
    assert first["ScalingActive"][:2] == ("False", "FailedGetResourceMetric")
    assert first["ScalingActive"][2].startswith("the HPA was unable to compute the replica count: ")
    cluster.board.set("default", "cond", 0.9)
    wait_for(lambda: conditions().get("ScalingLimited", ("",))[0] == "True", timeout=5,
             what="limited by maxReplicas")
    now = conditions()
    assert now["ScalingActive"] == (
        "True", "ValidMetricFound", "the HPA was able to successfully calculate a replica count "
        "from cpu resource utilization (percentage of request)")
    assert now["ScalingLimited"] == ("True", "TooManyReplicas",
                                     "the desired replica count is more than the maximum replica count")
    assert now["AbleToScale"] == ("True", "ReadyForNewScale", "recommended size matches current size")


def test_an_hpa_whose_metrics_endpoint_is_down_still_reconciles_and_says_why(cluster, api, apps):
    """Found by review: a scrape that failed (the scheduler whose /metrics the HPA reads
    killed by the experiment) raised out of the controller's pass, so no HPA of the cluster
    reconciled any more: a maxReplicas patch (the HPA scale-down fault) never took effect,
    for this HPA and for one that reads no endpoint. Upstream leaves such an HPA's count
    alone in range (ScalingActive False, naming the error) and still applies its bounds."""
    with socket.socket() as s:  # a local port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hpas = client.AutoscalingV2Api(api)
    for name in ("a-scraped", "b-board"):
        apps.create_namespaced_deployment("default", deployment(name, 2))
        hpa = cpu_hpa(name, max_replicas=1, target=80)
        if name == "a-scraped":  # a scraped gauge is a Pods metric, not CPU
            hpa["metadata"]["annotations"] = {
                "unstuck.io/metrics-url": f"http://127.0.0.1:{port}/metrics#busy"}
            hpa["spec"]["metrics"] = [{"type": "Pods", "pods": {"metric": {"name": "busy"},
                                       "target": {"type": "AverageValue", "averageValue": "1"}}}]
        hpas.create_namespaced_horizontal_pod_autoscaler("default", hpa)
    for name in ("a-scraped", "b-board"):
        wait_for(lambda n=name: apps.read_namespaced_deployment(n, "default").spec.replicas == 1,
                 timeout=5, what=f"{name} scaled down to maxReplicas 1")

    def active():
        got = hpas.read_namespaced_horizontal_pod_autoscaler("a-scraped", "default").status
        return next(((c.status, c.reason, c.message) for c in got.conditions or []
                     if c.type == "ScalingActive"), None)

    status, reason, message = wait_for(active, timeout=5, what="the failed scrape reported")
    assert status == "False" and f"127.0.0.1:{port}" in message, message
    assert reason == "FailedGetPodsMetric"  # upstream's reason names the metric's type
