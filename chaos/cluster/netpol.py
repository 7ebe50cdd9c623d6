"""NetworkPolicy egress, as a CNI that enforces it judges a pod's outbound connection.

Why only egress, and only to addresses outside the cluster: the local cluster's pods are
processes whose one conversation is with the scheduler, a process of the host, and the fault
an experiment makes of a policy is "this agent can no longer reach the scheduler" (the
simulation's `agent-partition`). The rules (networking.k8s.io/v1): a pod is isolated for
egress when some policy of its namespace selects it (`podSelector`) and lists `Egress` in its
`policyTypes`; an isolated pod may reach a destination that one rule of one such policy
allows, a rule allowing when its `to` peers (none: any destination) and its `ports` (none:
any port) both do. Of the peers, an `ipBlock` matches by CIDR less its `except`; `podSelector`
and `namespaceSelector` peers select pods, and a host address is no pod, so they match none
of these destinations. Named ports name a pod's container ports and match none either.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from chaos.cluster.selectors import compile_label_selector


def isolating(policies: Iterable[dict], pod: dict) -> list[dict]:
    """The policies that isolate `pod` for egress."""
    md = pod.get("metadata") or {}
    labels = md.get("labels") or {}
    return [p for p in policies
            if (p.get("metadata") or {}).get("namespace") == md.get("namespace")
            and "Egress" in ((p.get("spec") or {}).get("policyTypes") or ())
            and compile_label_selector((p.get("spec") or {}).get("podSelector"))(labels)]


def egress_allowed(policies: Iterable[dict], pod: dict, host: str, port: int,
                   protocol: str = "TCP") -> bool:
    """Whether `pod` may open a connection to host:port now."""
    isolated = isolating(policies, pod)
    if not isolated:
        return True
    ip = _address(host)
    return any(_ports_allow(rule.get("ports"), port, protocol) and _peers_allow(rule.get("to"), ip)
               for p in isolated for rule in (p["spec"].get("egress") or []))


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        try:
            return ipaddress.ip_address(socket.gethostbyname(host))
        except (OSError, ValueError):
            return None


def _peers_allow(peers: list[dict] | None, ip) -> bool:
    if not peers:
        return True
    for peer in peers:
        block = peer.get("ipBlock")
        if block is None or ip is None:
            continue  # a pod or namespace selector: no host address is a pod
        try:
            inside = ip in ipaddress.ip_network(block.get("cidr", ""), strict=False)
            excepted = any(ip in ipaddress.ip_network(e, strict=False) for e in block.get("except") or [])
        except ValueError:
            continue
        if inside and not excepted:
            return True
    return False


def _ports_allow(ports: list[dict] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for p in ports:
        if (p.get("protocol") or "TCP") != protocol:
            continue
        if p.get("port") is None:
            return True  # every port of the protocol
        if isinstance(p["port"], int) and p["port"] <= port <= (p.get("endPort") or p["port"]):
            return True
    return False
