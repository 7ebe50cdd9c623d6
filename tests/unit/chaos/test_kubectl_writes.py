"""kubectl writes without flags: apply/create -f (validation through OpenAPI v3), generators."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from kubernetes.client.rest import ApiException

from chaos.cluster import openapi, resources

from .conftest import running_pods, wait_for

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: applied
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: applied}}
  template:
    metadata:
      labels: {{app: applied}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: main
        image: local/sleep
        command: [sleep, "600"]
{env}---
apiVersion: v1
kind: ConfigMap
metadata:
  name: applied-config
data:
  mode: {mode}
"""


def test_every_served_kind_advertises_field_validation_on_patch():
    root = openapi.root()["paths"]
    for res in resources.RESOURCES:
        gv = f"api/{res.version}" if not res.group else f"apis/{res.group}/{res.version}"
        assert root[gv]["serverRelativeURL"].startswith(f"/openapi/v3/{gv}?hash=")
        doc = openapi.lookup(gv.split("/"))
        patches = [p["patch"] for p in doc["paths"].values() if "patch" in p
                   and p["patch"]["x-kubernetes-group-version-kind"]["kind"] == res.kind]
        assert len(patches) == 1, res.kind
        assert "fieldValidation" in {q["name"] for q in patches[0]["parameters"]}
        assert "application/strategic-merge-patch+json" in patches[0]["requestBody"]["content"]
        assert doc["components"] == {"schemas": {}}
    assert openapi.lookup(["apis", "batch", "v1"]) is None


def test_openapi_v3_over_http(cluster):
    with urllib.request.urlopen(f"{cluster.url}/openapi/v3", timeout=5) as resp:
        url = json.loads(resp.read())["paths"]["apis/apps/v1"]["serverRelativeURL"]
    with urllib.request.urlopen(cluster.url + url, timeout=5) as resp:
        assert json.loads(resp.read())["openapi"] == "3.0.0"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{cluster.url}/openapi/v3/apis/batch/v1", timeout=5)
    err.value.close()
    assert err.value.code == 404


def test_kubectl_apply_without_flags_creates_then_patches(kubectl, core, apps, tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text(MANIFEST.format(replicas=1, env="", mode="one"))
    out = kubectl("apply", "-f", str(path))
    assert "deployment.apps/applied created" in out and "configmap/applied-config created" in out
    wait_for(running_pods(core, "app=applied", 1))

    env = '        env: [{name: MODE, value: "two"}]\n'
    path.write_text(MANIFEST.format(replicas=2, env=env, mode="two"))
    out = kubectl("apply", "-f", str(path))
    assert "deployment.apps/applied configured" in out
    assert "configmap/applied-config configured" in out
    dep = apps.read_namespaced_deployment("applied", "default")
    assert dep.spec.replicas == 2
    assert [(e.name, e.value) for e in dep.spec.template.spec.containers[0].env] == [
        ("MODE", "two")]
    assert core.read_namespaced_config_map("applied-config", "default").data == {"mode": "two"}
    wait_for(running_pods(core, "app=applied", 2), what="the rolled-out pods")
    assert "unchanged" in kubectl("apply", "-f", str(path))


def test_kubectl_generators_send_protobuf_and_the_json_route_works(kubectl, core, apps):
    """client-go's typed clients pick protobuf themselves (rest.Request.UseProtobufAsDefault),
    whatever discovery says, so `kubectl create deployment` gets a 415 naming the JSON route;
    that route (`--dry-run=client -o yaml | kubectl apply -f -`) creates the same object."""
    refused = kubectl("create", "deployment", "gen", "--image=local/sleep", ok=False)
    assert "(got application/vnd.kubernetes.protobuf)" in refused
    assert "--dry-run=client -o yaml | kubectl apply -f -" in refused

    manifest = kubectl("create", "deployment", "gen", "--image=local/sleep", "--replicas=2",
                       "--dry-run=client", "-o", "yaml", "--", "sleep", "600")
    assert "deployment.apps/gen created" in kubectl("apply", "-f", "-", stdin=manifest)
    wait_for(running_pods(core, "app=gen", 2))
    assert apps.read_namespaced_deployment("gen", "default").spec.template.spec.containers[
        0].command == ["sleep", "600"]


def test_a_server_side_dry_run_answers_what_it_would_write_and_writes_nothing(
        cluster, kubectl, core, apps):
    core.create_namespaced_config_map("default", {"metadata": {"name": "keep"}})
    apps.create_namespaced_deployment("default", {
        "metadata": {"name": "idle"}, "spec": {
            "replicas": 0, "selector": {"matchLabels": {"app": "idle"}},
            "template": {"metadata": {"labels": {"app": "idle"}}, "spec": {"containers": [
                {"name": "main", "image": "local/sleep"}]}}}})
    pod = core.create_namespaced_pod("default", {"metadata": {"name": "stay"}, "spec": {
        "containers": [{"name": "main", "image": "local/sleep", "command": ["sleep", "600"]}]}})
    node = wait_for(lambda: core.read_namespaced_pod("stay", "default").spec.node_name)
    kept_rv = core.read_namespaced_config_map("keep", "default").metadata.resource_version
    # The deployment controller's own first status write of "idle" comes after the create:
    # the check below is of the dry runs' writes, so it starts once that write is done.
    wait_for(lambda: (lambda d: d.status.observed_generation == d.metadata.generation)(
        apps.read_namespaced_deployment("idle", "default")), what="idle observed")
    since = cluster.store.rv

    assert "(server dry run)" in kubectl("delete", "configmap", "keep", "--dry-run=server")
    labelled = json.loads(kubectl("label", "configmap", "keep", "a=b", "--dry-run=server",
                                  "-o", "json"))
    assert labelled["metadata"]["labels"] == {"a": "b"}
    assert labelled["metadata"]["resourceVersion"] == kept_rv  # not bumped
    kubectl("apply", "--dry-run=server", "-f", "-", stdin=MANIFEST.format(
        replicas=1, env="", mode="dry").split("---\n")[1])
    scaled = apps.patch_namespaced_deployment_scale("idle", "default", {"spec": {"replicas": 3}},
                                                    dry_run="All")
    assert scaled.spec.replicas == 3
    assert "(server dry run)" in kubectl("drain", node, "--dry-run=server", "--force",
                                         "--pod-selector=x!=y")
    would = core.delete_namespaced_pod("stay", "default", dry_run="All")
    assert would.metadata.deletion_timestamp is not None
    core.create_namespaced_pod_eviction("stay", "default", {
        "metadata": {"name": "stay", "namespace": "default"},
        "deleteOptions": {"dryRun": ["All"]}})
    created = core.create_namespaced_pod("default", {"metadata": {"name": "ghost"}, "spec": {
        "containers": [{"name": "main", "image": "local/sleep"}]}}, dry_run="All")
    assert created.metadata.uid and created.metadata.resource_version is None
    assert created.spec.restart_policy == "Always"  # defaulted as a real create
    with pytest.raises(ApiException) as exists:  # the write path's errors still apply
        core.create_namespaced_config_map("default", {"metadata": {"name": "keep"}},
                                          dry_run="All")
    assert exists.value.status == 409
    with pytest.raises(ApiException) as forbidden:
        core.patch_namespaced_pod("stay", "default", {"spec": {"hostname": "x"}},
                                  dry_run="All")
    assert forbidden.value.status == 422
    with pytest.raises(ApiException) as unknown:
        core.delete_namespaced_config_map("keep", "default", dry_run="Yes")
    assert unknown.value.status == 422
    assert json.loads(unknown.value.body)["message"] == (
        'DeleteOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: '
        '[]string{"Yes"}: supported values: "All"')

    kept = core.read_namespaced_config_map("keep", "default")
    assert kept.metadata.labels is None and kept.metadata.resource_version == kept_rv
    assert apps.read_namespaced_deployment("idle", "default").spec.replicas == 0
    assert not core.read_node(node).spec.unschedulable
    again = core.read_namespaced_pod("stay", "default")
    assert again.metadata.uid == pod.metadata.uid and again.metadata.deletion_timestamp is None
    for name in ("ghost", "applied-config"):
        with pytest.raises(ApiException) as missing:
            core.read_namespaced_config_map(name, "default") if name != "ghost" else \
                core.read_namespaced_pod(name, "default")
        assert missing.value.status == 404
    # No watch event of any of it: only the kubelets' and controllers' own writes.
    touched = {(e.key, e.obj["metadata"]["name"]) for e in cluster.store.events_after(since)}
    assert not touched & {(resources.by_kind("ConfigMap").key, "keep"), (resources.PODS.key, "ghost"),
                          (resources.by_kind("ConfigMap").key, "applied-config"),
                          (resources.DEPLOYMENTS.key, "idle")}
    assert all(not e.obj["metadata"].get("deletionTimestamp")
               for e in cluster.store.events_after(since) if e.obj["metadata"]["name"] == "stay")
