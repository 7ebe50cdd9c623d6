"""The process kubelet's events, with upstream's reasons and messages (pkg/kubelet/events,
kuberuntime, images, prober), merged as upstream's event correlator merges repeats."""

from __future__ import annotations

import socket

from .conftest import wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _events(core, pod_name: str) -> list:
    return core.list_namespaced_event(
        "default", field_selector=f"involvedObject.name={pod_name}").items


def _one(core, pod_name: str, reason: str, fieldpath: str | None = None):
    def check():
        found = [e for e in _events(core, pod_name) if e.reason == reason
                 and (fieldpath is None or e.involved_object.field_path == fieldpath)]
        return found[0] if found else None
    return wait_for(check, timeout=10, what=f"a {reason} event of {pod_name}")


def _pod(core, name: str, port: int) -> object:
    return core.create_namespaced_pod("default", {"metadata": {"name": name}, "spec": {
        "terminationGracePeriodSeconds": 30,
        "containers": [
            {"name": "main", "image": "local/sleep", "command": ["sleep", "600"],
             "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1}},
            {"name": "crash", "image": "local/crash:1", "command": ["sh", "-c", "exit 3"]}]}})


def test_the_kubelet_records_its_container_lifecycle_as_upstream(core):
    port = _free_port()
    pod = _pod(core, "evp", port)
    uid = pod.metadata.uid
    scheduled = _one(core, "evp", "Scheduled")
    assert scheduled.source.component == "default-scheduler"
    node = core.read_namespaced_pod("evp", "default").spec.node_name
    assert scheduled.message == f"Successfully assigned default/evp to {node}"

    # No image is pulled: the command runs from this machine, as an image already present.
    pulled = _one(core, "evp", "Pulled", "spec.containers{main}")
    assert (pulled.type, pulled.message) == (
        "Normal", 'Container image "local/sleep" already present on machine')
    assert (pulled.source.component, pulled.source.host) == ("kubelet", node)
    assert pulled.reporting_component == "kubelet" and pulled.reporting_instance == node
    assert pulled.involved_object.uid == uid and pulled.involved_object.kind == "Pod"
    created = _one(core, "evp", "Created", "spec.containers{main}")
    assert (created.type, created.message) == ("Normal", "Created container: main")
    started = _one(core, "evp", "Started", "spec.containers{crash}")
    assert (started.type, started.message) == ("Normal", "Started container crash")

    backoff = _one(core, "evp", "BackOff", "spec.containers{crash}")
    assert (backoff.type, backoff.message) == (
        "Warning", f"Back-off restarting failed container crash in pod evp_default({uid})")

    # Every failed probe is an event; the correlator folds the repeats into one, counting.
    def unhealthy_counted():
        found = [e for e in _events(core, "evp") if e.reason == "Unhealthy"]
        return found if found and found[0].count >= 3 else None
    unhealthy = wait_for(unhealthy_counted, timeout=10, what="repeated Unhealthy events")
    assert len(unhealthy) == 1
    event = unhealthy[0]
    assert (event.type, event.involved_object.field_path) == ("Warning", "spec.containers{main}")
    assert event.message == (f"Readiness probe failed: dial tcp 127.0.0.1:{port}: connect: "
                             "connection refused")
    assert event.first_timestamp <= event.last_timestamp

    core.delete_namespaced_pod("evp", "default")
    killing = _one(core, "evp", "Killing", "spec.containers{main}")
    assert (killing.type, killing.message) == ("Normal", "Stopping container main")


def test_repeated_restarts_are_one_counted_event(core):
    core.create_namespaced_pod("default", {"metadata": {"name": "crashy"}, "spec": {
        "containers": [{"name": "c", "image": "local/crash",
                        "command": ["sh", "-c", "exit 1"]}]}})

    def restarted_twice():
        started = [e for e in _events(core, "crashy") if e.reason == "Started"]
        return started if started and started[0].count >= 3 else None
    started = wait_for(restarted_twice, timeout=15, what="three starts of crashy")
    assert len(started) == 1 and started[0].message == "Started container c"


def test_kubectl_shows_the_kubelet_events(cluster, kubectl, core):
    _pod(core, "kev", _free_port())
    _one(core, "kev", "Unhealthy")
    _one(core, "kev", "BackOff")
    listed = kubectl("get", "events", "--field-selector", "involvedObject.name=kev")
    for reason in ("Scheduled", "Pulled", "Created", "Started", "BackOff", "Unhealthy"):
        assert reason in listed, listed
    described = kubectl("describe", "pod", "kev")
    events = described[described.index("Events:"):]
    assert "Normal   Pulled" in events and "kubelet" in events
    assert "Created container: main" in events
    assert "Warning  BackOff" in events and "Back-off restarting failed container crash" in events
    assert "Warning  Unhealthy" in events
