"""The HTTP API through the official kubernetes client: CRUD, concurrency, patches, errors,
discovery, watches, and schema-valid objects of every kind."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import struct
import urllib.request

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from chaos.cluster import resources

from .conftest import deployment, running_pods, wait_for


def raw(cluster, method: str, path: str, body=None, ctype="application/json"):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(cluster.url + path, data=data, method=method,
                                 headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_objects_carry_metadata_and_generation_bumps_on_spec_change(apps):
    d = apps.create_namespaced_deployment("default", deployment("gen", 1))
    assert d.metadata.uid and d.metadata.resource_version and d.metadata.creation_timestamp
    assert d.metadata.generation == 1
    same = apps.patch_namespaced_deployment("gen", "default", {"metadata": {"labels": {"x": "1"}}})
    assert same.metadata.generation == 1
    bumped = apps.patch_namespaced_deployment("gen", "default", {"spec": {"replicas": 2}})
    assert bumped.metadata.generation == 2
    assert int(bumped.metadata.resource_version) > int(same.metadata.resource_version)


def test_put_with_a_stale_resource_version_is_a_409_conflict(core):
    cm = core.create_namespaced_config_map("default", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="cfg"), data={"a": "1"}))
    cm.data = {"a": "2"}
    core.replace_namespaced_config_map("cfg", "default", cm)
    cm.data = {"a": "3"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("cfg", "default", cm)
    assert err.value.status == 409
    assert json.loads(err.value.body)["reason"] == "Conflict"


def test_errors_are_status_bodies(cluster):
    code, body = raw(cluster, "GET", "/api/v1/namespaces/default/pods/nope")
    assert (code, body["kind"], body["reason"]) == (404, "Status", "NotFound")
    code, body = raw(cluster, "POST", "/api/v1/namespaces/default/configmaps",
                     {"metadata": {"name": "Bad_Name"}})
    assert (code, body["reason"]) == (422, "Invalid")
    code, body = raw(cluster, "POST", "/api/v1/namespaces/missing/configmaps",
                     {"metadata": {"name": "x"}})
    assert (code, body["details"]["name"]) == (404, "missing")


def test_patch_flavours_on_a_deployment(cluster, apps):
    apps.create_namespaced_deployment("default", deployment("p", 1))
    path = "/apis/apps/v1/namespaces/default/deployments/p"
    code, body = raw(cluster, "PATCH", path, {"spec": {"replicas": 2}},
                     "application/merge-patch+json")
    assert (code, body["spec"]["replicas"]) == (200, 2)
    code, body = raw(cluster, "PATCH", path,
                     [{"op": "replace", "path": "/spec/replicas", "value": 0}],
                     "application/json-patch+json")
    assert (code, body["spec"]["replicas"]) == (200, 0)
    scaled = apps.patch_namespaced_deployment_scale("p", "default", {"spec": {"replicas": 3}})
    assert scaled.spec.replicas == 3
    assert apps.read_namespaced_deployment_scale("p", "default").status.selector == "app=p"


def test_deleting_a_node_returns_a_success_status(core):
    status = core.delete_node("node-3", body={})
    assert status.status == "Success"
    assert [n.metadata.name for n in core.list_node().items] == ["node-1", "node-2"]


def test_discovery_documents(cluster):
    assert raw(cluster, "GET", "/version")[1]["major"] == "1"
    groups = {g["name"] for g in raw(cluster, "GET", "/apis")[1]["groups"]}
    assert {"apps", "autoscaling", "policy", "coordination.k8s.io"} <= groups
    names = {r["name"] for r in raw(cluster, "GET", "/api/v1")[1]["resources"]}
    assert {"pods", "pods/eviction", "pods/log", "nodes", "events", "services"} <= names
    apps_names = {r["name"] for r in raw(cluster, "GET", "/apis/apps/v1")[1]["resources"]}
    assert {"deployments/scale", "replicasets/scale"} <= apps_names


def test_watch_delivers_added_modified_deleted_in_order(core):
    start = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "w"}, "data": {"a": "1"}})
    core.patch_namespaced_config_map("w", "default", {"data": {"a": "2"}})
    core.delete_namespaced_config_map("w", "default")
    events = []
    for ev in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                   resource_version=start, timeout_seconds=1):
        events.append((ev["type"], ev["object"].metadata.name,
                       int(ev["object"].metadata.resource_version)))
        if len(events) == 3:
            break
    assert [e[0] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    rvs = [e[2] for e in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3


def test_watch_with_a_selector_sees_objects_leave_it_as_deleted(core):
    start = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "s",
                                                               "labels": {"keep": "yes"}}})
    core.patch_namespaced_config_map("s", "default", {"metadata": {"labels": {"keep": "no"}}})
    seen = [ev["type"] for ev in watch.Watch().stream(
        core.list_namespaced_config_map, "default", label_selector="keep=yes",
        resource_version=start, timeout_seconds=1)]
    assert seen == ["ADDED", "DELETED"]


def test_watch_from_a_compacted_resource_version_is_410(cluster, core):
    old = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    cluster.store.compact()
    with pytest.raises(ApiException) as err:
        for _ in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                      resource_version=old, timeout_seconds=1):
            pass
    assert err.value.status == 410


def test_every_kind_deserializes_with_the_official_client(cluster, api, core, apps):
    """Round-trip each served kind (after controllers and kubelets wrote to it)."""
    apps.create_namespaced_deployment("default", deployment("kinds", 2))
    wait_for(running_pods(core, "app=kinds", 2), what="2 running pods")
    policy, autoscaling = client.PolicyV1Api(api), client.AutoscalingV2Api(api)
    policy.create_namespaced_pod_disruption_budget("default", {
        "metadata": {"name": "pdb"}, "spec": {"minAvailable": 1,
                                              "selector": {"matchLabels": {"app": "kinds"}}}})
    autoscaling.create_namespaced_horizontal_pod_autoscaler("default", {
        "metadata": {"name": "hpa"}, "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "kinds"},
            "minReplicas": 1, "maxReplicas": 4}})
    core.create_namespaced_service("default", {"metadata": {"name": "svc"}, "spec": {
        "selector": {"app": "kinds"}, "ports": [{"port": 80}]}})
    core.create_namespaced_secret("default", {"metadata": {"name": "sec"},
                                              "stringData": {"k": "v"}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}})
    core.create_namespaced_service_account("default", {"metadata": {"name": "sa"}})
    core.create_namespaced_persistent_volume_claim("default", {"metadata": {"name": "pvc"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    client.NetworkingV1Api(api).create_namespaced_network_policy("default", {  # ingress: no cut
        "metadata": {"name": "np"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role("default", {"metadata": {"name": "r"}, "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})
    rbac.create_namespaced_role_binding("default", {"metadata": {"name": "rb"}, "subjects": [
        {"kind": "ServiceAccount", "name": "sa", "namespace": "default"}], "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}})
    kinds = {r.kind for r in resources.RESOURCES}
    checked = set()
    for res in resources.RESOURCES:
        objs, _ = cluster.store.list(res)
        assert objs, f"no {res.kind} to check"
        model = f"V1{res.kind}" if res.version == "v1" else f"V2{res.kind}"
        if res.kind == "Event":
            model = "CoreV1Event"
        for obj in objs:
            resp = type("R", (), {"data": json.dumps(obj)})()
            api.deserialize(resp, model)
        lst = {"kind": f"{res.kind}List", "apiVersion": res.api_version,
               "metadata": {"resourceVersion": "1"}, "items": objs}
        api.deserialize(type("R", (), {"data": json.dumps(lst)})(),
                        "CoreV1EventList" if res.kind == "Event" else f"{model}List")
        checked.add(res.kind)
    assert checked == kinds


@pytest.mark.parametrize(("spec", "field"), [
    ({"minReplicas": 5, "maxReplicas": 2}, "spec.maxReplicas"),
    ({"minReplicas": 0, "maxReplicas": 2}, "spec.minReplicas"),
    ({"maxReplicas": 0}, "spec.maxReplicas"),
    ({"maxReplicas": 3, "metrics": [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}}}]},
     "spec.metrics[0].resource.target.averageUtilization"),
    ({"maxReplicas": 3, "metrics": [{"type": "Pods", "pods": {"metric": {"name": "demand"},
        "target": {"type": "AverageValue", "averageValue": "0"}}}]},
     "spec.metrics[0].pods.target.averageValue"),
    ({"maxReplicas": 3, "metrics": [{"type": "Pods", "pods": {"metric": {"name": "demand"},
        "target": {"type": "AverageValue", "averageValue": "-500m"}}}]},
     "spec.metrics[0].pods.target.averageValue"),
    ({"maxReplicas": 3, "metrics": [{"type": "Pods", "pods": {"metric": {"name": "demand"},
        "target": {"type": "AverageValue", "averageValue": "lots"}}}]},
     "spec.metrics[0].pods.target.averageValue"),
    ({"maxReplicas": 3, "metrics": [{"type": "Object", "object": {"metric": {"name": "q"},
        "describedObject": {"kind": "Service", "name": "s", "apiVersion": "v1"},
        "target": {"type": "Value", "value": "0"}}}]},
     "spec.metrics[0].object.target.value"),
    ({"maxReplicas": 3, "behavior": {"scaleUp": {"selectPolicy": "Fastest"}}},
     "spec.behavior.scaleUp.selectPolicy"),
    ({"maxReplicas": 3, "behavior": {"scaleDown": {"policies": [
        {"type": "Pods", "value": 1, "periodSeconds": 0}]}}},
     "spec.behavior.scaleDown.policies[0].periodSeconds"),
])
def test_an_hpa_the_controller_could_not_follow_is_422_invalid(cluster, api, spec, field):
    """A real apiserver refuses these; storing them left the HPA controller failing every pass."""
    hpas = client.AutoscalingV2Api(api)
    body = {"metadata": {"name": "bad"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}, **spec}}
    with pytest.raises(ApiException) as err:
        hpas.create_namespaced_horizontal_pod_autoscaler("default", body)
    status = json.loads(err.value.body)
    assert (err.value.status, status["reason"]) == (422, "Invalid")
    assert [c["field"] for c in status["details"]["causes"]] == [field]
    good = {"metadata": {"name": "good"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
        "minReplicas": 1, "maxReplicas": 3}}
    hpas.create_namespaced_horizontal_pod_autoscaler("default", good)
    with pytest.raises(ApiException) as err:  # the same rules hold on update
        hpas.patch_namespaced_horizontal_pod_autoscaler("good", "default", {"spec": spec})
    assert err.value.status == 422


def test_a_non_integer_replica_count_is_a_422_not_a_500(cluster, apps):
    apps.create_namespaced_deployment("default", deployment("typed", 0))
    code, body = raw(cluster, "PATCH", "/apis/apps/v1/namespaces/default/deployments/typed",
                     {"spec": {"replicas": "3"}}, "application/merge-patch+json")
    assert (code, body["reason"]) == (422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "spec.replicas"


def test_a_non_integer_grace_period_query_is_a_400_not_a_500(cluster, core):
    core.create_namespaced_config_map("default", {"metadata": {"name": "g"}})
    code, body = raw(cluster, "DELETE",
                     "/api/v1/namespaces/default/configmaps/g?gracePeriodSeconds=soon")
    assert (code, body["reason"]) == (400, "BadRequest")
    assert "gracePeriodSeconds" in body["message"]
    assert core.read_namespaced_config_map("g", "default").metadata.name == "g"


def test_an_hpa_on_a_positive_average_value_is_stored(cluster, api):
    """The quantity rule refuses 0 or less, not the quantities a Pods metric is written in."""
    hpas = client.AutoscalingV2Api(api)
    for name, value in (("milli", "500m"), ("whole", "2"), ("number", 1.5)):
        hpas.create_namespaced_horizontal_pod_autoscaler("default", {
            "metadata": {"name": name}, "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
                "maxReplicas": 3, "metrics": [{"type": "Pods", "pods": {
                    "metric": {"name": "demand"},
                    "target": {"type": "AverageValue", "averageValue": value}}}]}})
        got = hpas.read_namespaced_horizontal_pod_autoscaler(name, "default")
        assert got.spec.metrics[0].pods.target.average_value == str(value)


def test_422_bodies_word_their_causes_as_upstream(cluster):
    code, body = raw(cluster, "POST", "/api/v1/namespaces/default/configmaps",
                     {"metadata": {"name": "Bad_Name"}})
    assert code == 422
    assert body["message"].startswith(
        'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": ')
    assert body["details"]["kind"] == "ConfigMap" and body["details"]["group"] == ""
    cause = body["details"]["causes"][0]
    assert cause["reason"] == "FieldValueInvalid"
    assert cause["message"].startswith('Invalid value: "Bad_Name": a lowercase RFC 1123')
    code, body = raw(cluster, "POST", "/apis/apps/v1/namespaces/default/deployments",
                     {"metadata": {"name": "d"}, "spec": {
                         "selector": {"matchLabels": {"a": "b"}},
                         "template": {"metadata": {"labels": {"a": "b"}},
                                      "spec": {"containers": []}}}})
    assert code == 422
    assert body["message"] == ('Deployment.apps "d" is invalid: spec.template.spec.containers: '
                               'Required value')
    assert body["details"]["group"] == "apps"
    assert body["details"]["causes"] == [{"reason": "FieldValueRequired",
                                          "message": "Required value",
                                          "field": "spec.template.spec.containers"}]


@pytest.mark.parametrize("allow", [True, False])
def test_a_watch_sends_a_bookmark_before_its_timeout_only_when_allowed(cluster, core, allow):
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    query = f"watch=true&resourceVersion={rv}&timeoutSeconds=3"
    if allow:
        query += "&allowWatchBookmarks=true"
    with urllib.request.urlopen(f"{cluster.url}/api/v1/namespaces/default/configmaps?{query}",
                                timeout=10) as resp:
        events = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    if not allow:
        assert events == []
        return
    assert events == [{"type": "BOOKMARK", "object": {
        "kind": "ConfigMap", "apiVersion": "v1",
        "metadata": {"resourceVersion": events[0]["object"]["metadata"]["resourceVersion"]}}}]
    assert int(events[0]["object"]["metadata"]["resourceVersion"]) >= int(rv)


def test_the_python_clients_watch_takes_a_bookmark_as_its_resume_point(core):
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    w = watch.Watch()
    events = list(w.stream(core.list_namespaced_config_map, "default", resource_version=rv,
                           timeout_seconds=3, allow_watch_bookmarks=True))
    assert [e["type"] for e in events] == ["BOOKMARK"]
    assert w.resource_version == events[0]["raw_object"]["metadata"]["resourceVersion"]
    assert int(w.resource_version) >= int(rv)


def test_delete_collection_takes_grace_and_propagation_from_the_query(core):
    for name, app in (("dc-x1", "x"), ("dc-x2", "x"), ("dc-y", "y")):
        core.create_namespaced_pod("default", {"metadata": {"name": name, "labels": {"a": app}},
                                               "spec": {"containers": [{
                                                   "name": "main", "image": "local/sleep",
                                                   "command": ["sleep", "600"]}]}})
    wait_for(running_pods(core, "a in (x,y)", 3), what="3 running pods")
    core.delete_collection_namespaced_pod("default", label_selector="a=x",
                                          grace_period_seconds=0)
    assert [p.metadata.name for p in core.list_namespaced_pod("default").items] == ["dc-y"]
    assert core.read_namespaced_pod("dc-y", "default").metadata.deletion_timestamp is None

    owner = core.create_namespaced_config_map("default", {"metadata": {"name": "dc-owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "dc-owner",
           "uid": owner.metadata.uid, "controller": True}
    core.create_namespaced_config_map("default", {"metadata": {"name": "dc-child",
                                                               "ownerReferences": [ref]}})
    core.delete_collection_namespaced_config_map(
        "default", field_selector="metadata.name=dc-owner", propagation_policy="Orphan")
    assert core.read_namespaced_config_map("dc-child", "default").metadata.owner_references \
        in (None, [])


def test_delete_collection_of_an_owner_and_its_dependent_deletes_both(core):
    owner = core.create_namespaced_config_map("default", {"metadata": {"name": "dc-a"}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "dc-b", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "dc-a", "uid": owner.metadata.uid}]}})
    # dc-a's cascade removes dc-b before the collection delete reaches it: no 404 for that
    core.delete_collection_namespaced_config_map("default")
    assert core.list_namespaced_config_map("default").items == []


def test_an_hpa_metric_an_experiment_sets_must_be_finite_numbers(cluster):
    """Found by review: `{"value": NaN}` (or Infinity, which Python's JSON reader takes) was
    stored and made every later HPA pass raise, so no HPA of the cluster reconciled again; a
    body that is not an object was a 500 InternalError; `true` was stored as 1."""
    path = "/unstuck/v1/metrics/default/web"
    for body in ({"value": float("nan")}, {"value": float("inf")}, {"values": [0.5, float("nan")]},
                 {"value": True}, [0.9]):
        code, status = raw(cluster, "PUT", path, body)
        assert (code, status["reason"]) == (400, "BadRequest"), (body, status)
        assert '{"value": 0.9}' in status["message"]
    assert cluster.board.sample({"metadata": {"namespace": "default", "name": "web"}}, 2) is None
    assert raw(cluster, "PUT", path, {"values": [0.5, 1]})[0] == 200


def test_a_client_that_hangs_up_is_logged_not_printed(cluster, caplog, capfd):
    # A keep-alive connection reset while the server waits for its next request (a client
    # process that exits): socketserver printed "Exception occurred during processing of
    # request" and a ConnectionResetError traceback to stderr.
    caplog.set_level(logging.DEBUG, logger="chaos.cluster.apiserver")
    conn = http.client.HTTPConnection("127.0.0.1", int(cluster.url.rsplit(":", 1)[1]), timeout=5)
    conn.request("GET", "/version")
    answer = conn.getresponse()
    assert (answer.status, "gitVersion" in json.loads(answer.read())) == (200, True)
    # Closed with SO_LINGER 0: a reset, where the server waits for the next keep-alive request.
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    wait_for(lambda: any("hung up" in r.getMessage() for r in caplog.records), 5,
             what="the server to see the reset")
    assert "Exception occurred" not in capfd.readouterr().err
