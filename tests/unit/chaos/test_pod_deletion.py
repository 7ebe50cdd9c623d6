"""Graceful pod deletion in the registry, on an explicit clock and without kubelets."""

from __future__ import annotations

import pytest

from chaos.cluster import meta, resources
from chaos.cluster.registry import Registry
from chaos.cluster.storage import Store
from sim.kube.timescale import TimeScale


@pytest.mark.parametrize("start", [100.5, 100.9, 100.0])
def test_a_re_delete_with_a_shorter_grace_shortens_it_at_any_sub_second_start(start):
    """Found by review: deletionTimestamp was stored to the second, and the re-delete rebuilt
    the first delete's time from it; at time scale 20 the truncation (up to 20 cluster seconds)
    made `kubectl delete --grace-period=1` after a 5 s delete a silent no-op whenever the
    truncated deadline was already past."""
    clock = [start]
    store = Store(clock=lambda: clock[0])
    registry = Registry(store, TimeScale(20.0))
    registry.create(resources.NAMESPACES, None, {"metadata": {"name": "default"}})
    registry.create(resources.PODS, "default", {"metadata": {"name": "p"}, "spec": {
        "nodeName": "node-1", "containers": [{"name": "main", "image": "x"}]}})
    first = registry.delete(resources.PODS, "default", "p", {"gracePeriodSeconds": 5})
    assert first["metadata"]["deletionGracePeriodSeconds"] == 5
    clock[0] += 0.01  # 0.2 s of cluster time later: the 1 s grace from the first delete is ahead
    again = registry.delete(resources.PODS, "default", "p", {"gracePeriodSeconds": 1})
    assert again["metadata"]["deletionGracePeriodSeconds"] == 1
    deadline = meta.parse_time(again["metadata"]["deletionTimestamp"])
    assert deadline == pytest.approx(start + 1 / 20.0)
