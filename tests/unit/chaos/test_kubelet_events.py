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


def test_repeated_restarts_are_one_counted_event(core):
    core.create_namespaced_pod("default", {"metadata": {"name": "crashy"}, "spec": {
        "containers": [{"name": "c", "image": "local/crash",
                        "command": ["sh", "-c", "exit 1"]}]}})

    def restarted_twice():
        started = [e for e in _events(core, "crashy") if e.reason == "Started"]
        return started if started and started[0].count >= 3 else None
    started = wait_for(restarted_twice, timeout=15, what="three starts of crashy")
    assert len(started) == 1 and started[0].message == "Started container c"
