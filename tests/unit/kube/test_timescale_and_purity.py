"""TimeScale, and the package contract: no I/O, clock, simpy or kubernetes imports."""

from __future__ import annotations

import ast
import pathlib

import pytest

import sim.kube
from sim.kube import hpa, nodes, pods
from sim.kube.timescale import TimeScale


def test_factor_ten_makes_the_toleration_thirty_seconds() -> None:
    scale = TimeScale(10)
    assert scale.scaled(300.0) == 30.0
    timings = scale.apply(nodes.NodeTimings())
    assert (timings.toleration_s, timings.grace_s, timings.monitor_period_s) == (30.0, 5.0, 0.5)
    assert timings.eviction_rate_per_s == pytest.approx(1.0)  # rates speed up, not slow down
    assert timings.large_cluster_size == 50  # not a duration


def test_scaled_hpa_keeps_its_proportions() -> None:
    spec = TimeScale(10).apply(hpa.HPASpec())
    assert (spec.sync_period_s, spec.scale_down_window_s) == (1.5, 30.0)
    assert {p.period_s for p in spec.scale_up_policies + spec.scale_down_policies} == {1.5}
    assert (spec.max_replicas, spec.target) == (10, 0.8)
    startup = TimeScale(2).apply(pods.StartupDelay())
    assert (startup.median_s, startup.p99_s, startup.minimum_s) == (2.0, 5.0, 0.5)


@pytest.mark.parametrize("factor", [0, -1, float("inf"), float("nan")])
def test_bad_factor(factor) -> None:
    with pytest.raises(ValueError, match=r"^TimeScale.factor = .*: must be a finite number > 0"):
        TimeScale(factor)


FORBIDDEN = {
    "simpy",
    "kubernetes",
    "time",
    "datetime",
    "socket",
    "os",
    "subprocess",
    "threading",
    "asyncio",
}


def test_the_package_imports_nothing_impure() -> None:
    root = pathlib.Path(sim.kube.__file__).parent
    seen = set()
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                seen |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                seen.add(node.module.split(".")[0])
    assert seen & FORBIDDEN == set()
    assert "sim" in seen  # the scan did read the imports
