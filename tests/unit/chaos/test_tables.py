"""Server-side printing: the Table answers kubectl asks for, the columns it then prints."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from chaos.cluster import printers, resources, tables

from .conftest import deployment, running_pods, wait_for

TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
T0 = 1_700_000_000.0
STAMP = "2023-11-14T22:13:20Z"  # T0


def columns(output: str) -> list[dict[str, str]]:
    """kubectl's aligned text table as one dict per row (headers split on 2+ spaces)."""
    lines = output.rstrip("\n").splitlines()
    header = lines[0]
    found = list(re.finditer(r"\S+(?: \S+)*", header))  # "NOMINATED NODE" is one header
    starts, names = [m.start() for m in found], [m.group() for m in found]
    return [{n: line[a:b].strip() for n, a, b in zip(names, starts, [*starts[1:], None],
                                                      strict=True)} for line in lines[1:]]


def pod(statuses, *, phase="Running", deleted=False, conditions=()):
    md = {"name": "p", "namespace": "default", "creationTimestamp": STAMP}
    if deleted:
        md["deletionTimestamp"] = STAMP
    return {"metadata": md, "spec": {"containers": [{"name": f"c{i}"} for i in range(len(statuses))]},
            "status": {"phase": phase, "containerStatuses": list(statuses),
                       "conditions": list(conditions)}}


RUNNING = {"ready": True, "restartCount": 0, "state": {"running": {"startedAt": STAMP}}}


@pytest.mark.parametrize(("statuses", "kw", "want"), [
    ([RUNNING, RUNNING], {}, ("Running", 2, 0)),
    ([RUNNING, {"ready": False, "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}}}], {}, ("CrashLoopBackOff", 1, 3)),
    ([{"ready": False, "restartCount": 0, "state": {"terminated": {"exitCode": 3}}}],
     {"phase": "Failed"}, ("ExitCode:3", 0, 0)),
    ([{"ready": False, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "signal": 9}}}],
     {"phase": "Failed"}, ("Signal:9", 0, 0)),
    ([{"ready": False, "restartCount": 0,
       "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
     {"phase": "Succeeded"}, ("Completed", 0, 0)),
    ([RUNNING], {"deleted": True}, ("Terminating", 1, 0)),
    ([], {"phase": "Pending"}, ("Pending", 0, 0)),
])
def test_pod_status_column_follows_the_printer_precedence(statuses, kw, want):
    reason, ready, restarts, _ = printers.pod_status_reason(pod(statuses, **kw))
    assert (reason, ready, restarts) == want


def test_restarts_column_says_when_the_last_restart_was():
    cs = {**RUNNING, "restartCount": 2,
          "lastState": {"terminated": {"exitCode": 1, "finishedAt": STAMP}}}
    cells = printers.PODS.cells(pod([cs]), T0 + 75)
    assert cells[1:5] == ["1/1", "Running", "2 (75s ago)", "75s"]


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (125, "2m5s"),
    (600, "10m"), (3 * 3600 + 60, "3h1m"), (9 * 3600, "9h"), (50 * 3600, "2d2h"),
    (10 * 86400, "10d"), (800 * 86400, "2y70d"), (3000 * 86400, "8y"),
])
def test_age_uses_kubernetes_human_duration(seconds, text):
    assert printers.human_duration(seconds) == text


def test_hpa_targets_and_pdb_columns():
    hpa = {"metadata": {"name": "h", "creationTimestamp": STAMP},
           "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5,
                    "metrics": [{"type": "Resource", "resource": {
                        "name": "cpu", "target": {"type": "Utilization",
                                                  "averageUtilization": 50}}},
                                {"type": "External", "external": {
                                    "metric": {"name": "q"},
                                    "target": {"type": "AverageValue", "averageValue": "30"}}}]},
           "status": {"currentReplicas": 2, "currentMetrics": [
               {"type": "Resource", "resource": {"name": "cpu",
                                                 "current": {"averageUtilization": 45}}}]}}
    assert printers.HPAS.cells(hpa, T0 + 1) == [
        "h", "Deployment/web", "cpu: 45%/50%, <unknown>/30 (avg)", 1, 5, 2, "1s"]
    pdb = {"metadata": {"name": "b", "creationTimestamp": STAMP},
           "spec": {"minAvailable": 2}, "status": {"disruptionsAllowed": 1}}
    assert printers.PDBS.cells(pdb, T0) == ["b", "2", "N/A", 1, "0s"]


def test_accept_header_negotiation():
    assert tables.table_version(TABLE_ACCEPT) == "v1"
    assert tables.table_version("application/json;as=Table;v=v1beta1;g=meta.k8s.io") == "v1beta1"
    assert tables.table_version("application/json, */*") is None
    assert tables.table_version(None) is None
    with pytest.raises(Exception, match="includeObject 'Everything'"):
        tables.include_mode({"includeObject": "Everything"})


def test_table_rows_embed_metadata_object_or_nothing():
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"},
           "metadata": {"name": "c", "namespace": "default", "creationTimestamp": STAMP,
                        "resourceVersion": "7"}}
    cm = resources.by_kind("ConfigMap")
    partial = tables.of_object(cm, obj, now=T0)
    assert partial["kind"] == "Table" and partial["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in partial["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert partial["rows"][0]["cells"] == ["c", 1, "0s"]
    assert partial["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert partial["rows"][0]["object"]["metadata"]["name"] == "c"
    assert tables.of_object(cm, obj, now=T0, mode="Object")["rows"][0]["object"] is obj
    assert "object" not in tables.of_object(cm, obj, now=T0, mode="None")["rows"][0]
    lease = tables.of_object(resources.LEASES, {**obj, "kind": "Lease"}, now=T0)
    assert [c["name"] for c in lease["columnDefinitions"]] == ["Name", "Age"]


def _get(url: str, accept: str = TABLE_ACCEPT) -> bytes:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.read()


def test_kubectl_get_prints_server_columns(cluster, kubectl, core, apps):
    apps.create_namespaced_deployment("default", deployment("tab", 2))
    wait_for(running_pods(core, "app=tab", 2))
    wait_for(lambda: apps.read_namespaced_deployment("tab", "default").status.ready_replicas == 2)

    pods = columns(kubectl("get", "pods", "-l", "app=tab"))
    assert len(pods) == 2 and list(pods[0]) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert {(p["READY"], p["STATUS"], p["RESTARTS"]) for p in pods} == {("1/1", "Running", "0")}
    wide = columns(kubectl("get", "pods", "-l", "app=tab", "-o", "wide"))
    assert list(wide[0])[5:7] == ["IP", "NODE"]
    assert {p["NODE"] for p in wide} <= {"node-1", "node-2", "node-3"}

    nodes = columns(kubectl("get", "nodes"))
    assert [n["NAME"] for n in nodes] == ["node-1", "node-2", "node-3"]
    assert list(nodes[0]) == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert {n["STATUS"] for n in nodes} == {"Ready"}
    kubectl("cordon", "node-3")
    assert columns(kubectl("get", "node", "node-3"))[0]["STATUS"] == "Ready,SchedulingDisabled"

    deploy = columns(kubectl("get", "deploy", "tab"))
    assert deploy == [{"NAME": "tab", "READY": "2/2", "UP-TO-DATE": "2", "AVAILABLE": "2",
                       "AGE": deploy[0]["AGE"]}]

    # a watch streams Tables: columns on the first event only, then rows
    pod_name = pods[0]["NAME"]
    url = f"{cluster.url}/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1"
    events = [json.loads(line) for line in _get(url + "&labelSelector=app%3Dtab").splitlines()]
    assert [e["object"]["kind"] for e in events] == ["Table", "Table"]
    assert "columnDefinitions" in events[0]["object"]
    assert "columnDefinitions" not in events[1]["object"]
    assert {e["object"]["rows"][0]["cells"][2] for e in events} == {"Running"}
    one = json.loads(_get(f"{cluster.url}/api/v1/namespaces/default/pods/{pod_name}"))
    assert one["kind"] == "Table" and one["rows"][0]["cells"][0] == pod_name
    plain = json.loads(_get(f"{cluster.url}/api/v1/namespaces/default/pods/{pod_name}",
                            accept="application/json"))
    assert plain["kind"] == "Pod"


def test_kubectl_get_events_prints_the_event_columns(cluster, kubectl, core, apps):
    """Upstream's event printer: LAST SEEN TYPE REASON OBJECT MESSAGE, and with -o wide
    SUBOBJECT SOURCE FIRST SEEN COUNT NAME (it printed NAME and AGE only)."""
    apps.create_namespaced_deployment("default", deployment("evt", 1))
    wait_for(running_pods(core, "app=evt", 1))
    rows = columns(kubectl("get", "events"))
    assert list(rows[0]) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    scaled = [r for r in rows if r["OBJECT"] == "deployment/evt"]
    assert scaled and scaled[0]["TYPE"] == "Normal" and scaled[0]["REASON"] == "ScalingReplicaSet"
    assert scaled[0]["MESSAGE"].startswith("Scaled up replica set evt-")
    assert any(r["REASON"] == "Started" and r["OBJECT"].startswith("pod/evt-") for r in rows)
    wide = columns(kubectl("get", "events", "-o", "wide"))
    assert list(wide[0]) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE",
                             "MESSAGE", "FIRST SEEN", "COUNT", "NAME"]
    row = next(r for r in wide if r["OBJECT"] == "deployment/evt")
    assert row["COUNT"] == "1" and row["NAME"].startswith("evt.")


def test_event_cells_follow_the_upstream_printer():
    event = {"metadata": {"name": "e1", "namespace": "default", "creationTimestamp": STAMP},
             "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{c}"},
             "reason": "Killing", "message": " Stopping container c \n", "type": "Normal",
             "source": {"component": "kubelet", "host": "node-1"},
             "firstTimestamp": STAMP, "lastTimestamp": None, "count": 0}
    table = tables.of_object(resources.EVENTS, event, now=T0 + 90)
    assert table["rows"][0]["cells"] == ["90s", "Normal", "Killing", "pod/p", "spec.containers{c}",
                                         "kubelet, node-1", "Stopping container c", "90s", 1, "e1"]


def test_kubectl_get_all_lists_the_kinds_of_the_all_category(cluster, kubectl, core, apps):
    """`kubectl get all` expands the `all` category from discovery (upstream: pods, services,
    deployments, replicasets, HPAs among the kinds served here); it answered 'the server
    doesn't have a resource type "all"'."""
    apps.create_namespaced_deployment("default", deployment("every", 1))
    wait_for(running_pods(core, "app=every", 1))
    core.create_namespaced_service("default", {"metadata": {"name": "every"}, "spec": {
        "selector": {"app": "every"}, "ports": [{"port": 80}]}})
    out = kubectl("get", "all")
    for prefix in ("pod/every-", "service/every", "deployment.apps/every",
                   "replicaset.apps/every-"):
        assert prefix in out, out
    assert "configmap" not in out and "secret" not in out
