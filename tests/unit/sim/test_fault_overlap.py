"""Overlapping timed faults: each takes off only its own effect, at its own end, and the
value in force is the composition of the active ones (sim/faults.py, `Layers`). A snapshot
per fault used to restore the wrong state: the second of two overlapping metric drops kept
the load dropped for the rest of the run, the first of two db windows healed the store in the
middle of the second, and the first freeze window's end removed the second."""

from __future__ import annotations

from typing import Any

import pytest

from sim.config import FaultSpec, HPAConfig, PoolConfig
from sim.faults import Layers
from sim.kube.hpa import HPASpec

from .worlds import booted, config

POOLS = (PoolConfig("pool-1", min_replicas=1, max_replicas=4),
         PoolConfig("pool-2", manager="deployment", min_replicas=1, max_replicas=4,
                    hpa=HPAConfig(HPASpec(min_replicas=1, max_replicas=4), 1.6),
                    initial_replicas=2))


def probe(faults: tuple[FaultSpec, ...], times: list[float], read) -> dict[float, Any]:
    """Run a world with `faults` and read its state at each of `times`."""
    w = booted(config(pools=POOLS, faults=faults, duration_s=1500.0, drain_s=0.0))
    seen: dict[float, Any] = {}
    for t in times:
        w.kernel.at(t, lambda t=t: seen.__setitem__(t, read(w)))
    w.kernel.run(1500.0)
    return seen


def test_overlapping_metric_drops_end_when_the_last_one_ends():
    faults = (FaultSpec("hpa-scale-down", at=60.0, pool="pool-2", load=0.4, duration_s=300.0),
              FaultSpec("hpa-scale-down", at=120.0, pool="pool-2", load=0.6, duration_s=600.0))
    seen = probe(faults, [50, 100, 200, 400, 800, 1400],
                 lambda w: w.cluster.deployments["pool-2"].load)
    # the lowest active load; the second outlasts the first; then the base, for good
    assert seen == {50: 1.6, 100: 0.4, 200: 0.4, 400: 0.6, 800: 1.6, 1400: 1.6}


def test_overlapping_patches_show_the_latest_and_restore_the_base():
    faults = (FaultSpec("hpa-scale-down", at=60.0, pool="pool-2", mode="patch", min_replicas=3,
                        duration_s=600.0),
              FaultSpec("hpa-scale-down", at=120.0, pool="pool-2", mode="patch", max_replicas=2,
                        duration_s=180.0))
    seen = probe(faults, [50, 100, 200, 400, 700],
                 lambda w: (w.cluster.deployments["pool-2"].spec.min_replicas,
                            w.cluster.deployments["pool-2"].spec.max_replicas))
    # Never min 3 with max 2 (a merge of both patches): the latest patch over the base spec.
    assert seen == {50: (1, 4), 100: (3, 4), 200: (1, 2), 400: (3, 4), 700: (1, 4)}


def test_overlapping_db_windows_fail_until_the_last_one_ends_at_the_highest_rate():
    faults = (FaultSpec("db-write-failure", at=100.0, rate=0.5, duration_s=60.0),
              FaultSpec("db-write-failure", at=130.0, rate=1.0, duration_s=60.0),
              FaultSpec("db-write-failure", at=300.0, rate=0.3, duration_s=60.0))
    seen = probe(faults, [90, 120, 150, 170, 200, 330, 400],
                 lambda w: w.store.failures.rate)
    assert seen == {90: 0.0, 120: 0.5, 150: 1.0, 170: 1.0, 200: 0.0, 330: 0.3, 400: 0.0}


def frozen(w) -> bool:
    sod = w.kernel.now % 86400
    return any(fw.contains(sod) for fw in w.store.get_pool("pool-1").freeze_windows)


def test_overlapping_freeze_windows_each_end_at_their_own_end():
    faults = (FaultSpec("pool-scale-down", at=200.0, pool="pool-1", freeze_s=600.0),
              FaultSpec("pool-scale-down", at=500.0, pool="pool-1", freeze_s=600.0))
    seen = probe(faults, [150, 300, 790, 850, 1050, 1150],
                 lambda w: (frozen(w), len(w.store.get_pool("pool-1").freeze_windows)))
    assert seen == {150: (False, 0), 300: (True, 1), 790: (True, 2), 850: (True, 1),
                    1050: (True, 1), 1150: (False, 0)}


def test_overlapping_pool_bounds_show_the_latest_patch_and_restore_the_pools_own():
    faults = (FaultSpec("pool-scale-down", at=100.0, pool="pool-1", freeze_s=60.0,
                        min_replicas=0, duration_s=500.0),
              FaultSpec("pool-scale-down", at=200.0, pool="pool-1", freeze_s=60.0),
              FaultSpec("pool-scale-down", at=300.0, pool="pool-1", freeze_s=60.0,
                        max_replicas=2, duration_s=100.0))
    seen = probe(faults, [50, 150, 250, 350, 450, 650],
                 lambda w: (w.store.get_pool("pool-1").min_replicas,
                            w.store.get_pool("pool-1").max_replicas))
    # the middle fault patches no bounds, so it leaves the first one's in force
    assert seen == {50: (1, 4), 150: (0, 4), 250: (0, 4), 350: (1, 2), 450: (0, 4),
                    650: (1, 4)}


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 0, 2), (1, 2, 0)])
def test_layers_come_back_to_the_base_in_any_order(order):
    box = {"v": 10}
    layer = Layers(lambda: box["v"], lambda v: box.__setitem__("v", v),
                   lambda base, active: min(active))
    keys = [layer.push(v) for v in (5, 3, 7)]
    assert box["v"] == 3
    for n, i in enumerate(order):
        layer.pop(keys[i])
        left = [v for j, v in enumerate((5, 3, 7)) if j not in order[:n + 1]]
        assert box["v"] == (min(left) if left else 10)
    # a later override starts from the base as it is then
    box["v"] = 11
    layer.push(4)
    assert box["v"] == 4
