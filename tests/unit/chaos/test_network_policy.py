"""NetworkPolicy egress in the local cluster: the rule (`chaos.cluster.netpol`), the resource
as the API serves it, and its enforcement in each pod's network, end to end: a pod process
that reaches a host server until chaostoolkit-kubernetes' own `deny_all_egress` selects it,
and again once `remove_deny_all_egress` lifts it, the process alive throughout."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from chaosk8s.networking.actions import deny_all_egress, remove_deny_all_egress
from kubernetes import client

from chaos.cluster.netpol import egress_allowed

from .conftest import wait_for

POD = {"metadata": {"name": "agent-1", "namespace": "unstuck", "labels": {"app": "agent"}}}


def policy(spec: dict, namespace: str = "unstuck") -> dict:
    return {"metadata": {"name": "p", "namespace": namespace},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"], **spec}}


@pytest.mark.parametrize("policies, host, port, allowed", [
    ([], "127.0.0.1", 8080, True),
    ([policy({})], "127.0.0.1", 8080, False),  # deny all egress
    ([policy({}, namespace="other")], "127.0.0.1", 8080, True),
    ([policy({"podSelector": {"matchLabels": {"app": "db"}}})], "127.0.0.1", 8080, True),
    ([policy({"podSelector": {"matchLabels": {"app": "agent"}}})], "127.0.0.1", 8080, False),
    ([policy({"policyTypes": ["Ingress"]})], "127.0.0.1", 8080, True),  # not isolated for egress
    ([policy({"egress": [{}]})], "10.1.2.3", 443, True),  # one rule that allows everything
    ([policy({"egress": [{"to": [{"ipBlock": {"cidr": "127.0.0.0/8"}}]}]})], "127.0.0.1", 8080, True),
    ([policy({"egress": [{"to": [{"ipBlock": {"cidr": "127.0.0.0/8"}}]}]})], "10.0.0.1", 8080, False),
    ([policy({"egress": [{"to": [{"ipBlock": {"cidr": "127.0.0.0/8", "except": ["127.0.0.1/32"]}}]}]})],
     "127.0.0.1", 8080, False),
    ([policy({"egress": [{"to": [{"ipBlock": {"cidr": "127.0.0.0/8"}}]}]})], "localhost", 8080, True),
    ([policy({"egress": [{"ports": [{"port": 8080}]}]})], "127.0.0.1", 8080, True),
    ([policy({"egress": [{"ports": [{"port": 8080}]}]})], "127.0.0.1", 9090, False),
    ([policy({"egress": [{"ports": [{"port": 8000, "endPort": 8100}]}]})], "127.0.0.1", 8080, True),
    # chaosk8s' allow_dns_access: DNS only, so the scheduler stays cut off.
    ([policy({"egress": [{"to": [{"namespaceSelector": {}}],
                          "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]})],
     "127.0.0.1", 8080, False),
    ([policy({"egress": [{"to": [{"podSelector": {}}]}]})], "127.0.0.1", 8080, False),  # no pod
    ([policy({"egress": [{"ports": [{"port": "http"}]}]})], "127.0.0.1", 80, False),  # named: a pod's
    # Two policies: the union of what they allow.
    ([policy({}), policy({"egress": [{"ports": [{"port": 8080}]}]})], "127.0.0.1", 8080, True),
])
def test_egress_is_allowed_as_a_cni_that_enforces_network_policy_judges_it(policies, host, port, allowed):
    assert egress_allowed(policies, POD, host, port) is allowed


def test_the_api_serves_network_policies_and_defaults_their_policy_types(api):
    net = client.NetworkingV1Api(api)
    client.CoreV1Api(api).create_namespace({"metadata": {"name": "unstuck"}})
    body = {"metadata": {"name": "only-dns"}, "spec": {
        "podSelector": {}, "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}}
    made = net.create_namespaced_network_policy("unstuck", body)
    assert made.spec.policy_types == ["Ingress", "Egress"]  # upstream's defaulting
    made = net.create_namespaced_network_policy("unstuck", {"metadata": {"name": "in"}, "spec": {
        "podSelector": {}}})
    assert made.spec.policy_types == ["Ingress"]
    assert sorted(p.metadata.name for p in net.list_namespaced_network_policy("unstuck").items) == [
        "in", "only-dns"]
    with pytest.raises(client.ApiException) as err:
        net.create_namespaced_network_policy("unstuck", {"metadata": {"name": "bad"}, "spec": {
            "podSelector": {}, "policyTypes": ["Sideways"]}})
    assert err.value.status == 422 and "spec.policyTypes[0]" in err.value.body


class _Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


PROBE = """
import sys, time, httpx
url = sys.argv[1]
while True:
    try:
        r = httpx.get(url, timeout=0.5)
        print("ok", r.status_code, flush=True)
    except httpx.HTTPError as exc:
        print("cut", type(exc).__name__, flush=True)
    time.sleep(0.1)
"""


def test_a_pod_cut_off_by_deny_all_egress_runs_on_and_reaches_the_host_again_when_it_is_lifted(
        cluster, api, tmp_path, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    secrets = {"KUBERNETES_HOST": cluster.url}
    core = client.CoreV1Api(api)
    try:
        core.create_namespace({"metadata": {"name": "unstuck"}})
        (tmp_path / "probe.py").write_text(PROBE)
        core.create_namespaced_pod("unstuck", {"metadata": {"name": "agent-1", "labels": {"app": "agent"}},
                                               "spec": {"containers": [{
                                                   "name": "probe", "image": "local/python",
                                                   "command": [sys.executable, str(tmp_path / "probe.py"),
                                                               f"http://127.0.0.1:{server.server_port}/"]}]}})
        log = tmp_path / "cluster"

        def lines() -> list[str]:
            return [ln for f in log.rglob("probe/0.log") for ln in f.read_text().splitlines()]

        wait_for(lambda: "ok 200" in lines(), 20, what="the pod reaching the host server")
        deny_all_egress(label_selectors={"app": "agent"}, ns="unstuck", secrets=secrets)
        seen = len(lines())
        wait_for(lambda: any(ln.startswith("cut") for ln in lines()[seen:]), 10,
                 what="the pod's requests to time out under the policy")
        cut_at = len(lines())
        wait_for(lambda: len(lines()) >= cut_at + 3, 10, what="more attempts while cut")
        assert not [ln for ln in lines()[cut_at:] if ln.startswith("ok")]
        pid = core.read_namespaced_pod("agent-1", "unstuck").status.container_statuses[0].restart_count
        assert pid == 0  # the process ran on: a partition, not a kill

        remove_deny_all_egress(ns="unstuck", secrets=secrets)
        healed = len(lines())
        wait_for(lambda: "ok 200" in lines()[healed:], 10, what="the pod reaching the host again")
    finally:
        server.shutdown()
        server.server_close()


def test_kubectl_applies_and_lists_network_policies(kubectl):
    manifest = """apiVersion: v1
kind: Namespace
metadata: {name: unstuck}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: cut-agent, namespace: unstuck}
spec:
  podSelector: {matchLabels: {unstuck.io/chaos-target: partitioned}}
  policyTypes: [Egress]
"""
    assert "networkpolicy.networking.k8s.io/cut-agent created" in kubectl("apply", "-f", "-", stdin=manifest)
    listed = kubectl("get", "netpol", "-n", "unstuck").splitlines()
    assert listed[0].split() == ["NAME", "POD-SELECTOR", "AGE"]
    assert listed[1].split()[:2] == ["cut-agent", "unstuck.io/chaos-target=partitioned"]
