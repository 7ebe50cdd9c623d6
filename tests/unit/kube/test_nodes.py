"""Node lifecycle timings, rules from k8s-semantics.md §0.4 and §4.1-4.2."""

from __future__ import annotations

import math

import pytest

from sim.kube import nodes

T = nodes.NodeTimings()


@pytest.mark.parametrize(
    ("last", "now", "expected"),
    [
        (0.0, 10.0, "Ready"),
        (0.0, 50.0, "Ready"),  # exactly the grace: not yet "older than" 50 s
        (0.0, 50.5, "Unknown"),
        (100.0, 140.0, "Ready"),
    ],
)
def test_node_condition(last, now, expected) -> None:
    assert nodes.node_condition(last, now, T) == expected


@pytest.mark.parametrize(
    ("died_at", "expected_unknown"),
    [
        # Renewals at 0, 10, 20...; monitor passes every 5 s from 0. A node dying at 25 s last
        # renewed at 20 s; the first pass strictly after 70 s is 75 s.
        (25.0, 75.0),
        (29.9, 75.0),
        (20.0, 75.0),  # renewed at its death
        (33.0, 85.0),  # last renewal 30 s
    ],
)
def test_unknown_after_grace_on_the_monitor_grid(died_at, expected_unknown) -> None:
    last = nodes.last_renewal(died_at, 0.0, T)
    at = nodes.unknown_at(last, T)
    assert at == expected_unknown
    assert nodes.node_condition(last, at, T) == "Unknown"
    assert nodes.node_condition(last, at - T.monitor_period_s, T) == "Ready"
    # §4.2: Unknown lands 40-65 s after the death (50 s grace + up to 10 s lease + up to 5 s pass).
    assert 40.0 <= at - died_at <= 65.0


def test_monitor_phase_shifts_the_grid() -> None:
    assert nodes.unknown_at(20.0, T, phase_s=2.0) == 72.0


def test_taints() -> None:
    assert nodes.taints_for("Unknown") == (
        "node.kubernetes.io/unreachable:NoExecute",
        "node.kubernetes.io/unreachable:NoSchedule",
    )
    assert nodes.taints_for("NotReady") == (
        "node.kubernetes.io/not-ready:NoExecute",
        "node.kubernetes.io/not-ready:NoSchedule",
    )
    assert nodes.taints_for("Ready") == ()


@pytest.mark.parametrize(
    ("toleration", "expected"),
    [(300.0, 375.0), (30.0, 105.0), (0.0, 75.0), (-5.0, 75.0), (None, math.inf)],
)
def test_eviction_after_toleration(toleration, expected) -> None:
    # §4.1: default tolerationSeconds 300 for unreachable:NoExecute; None tolerates forever.
    assert nodes.eviction_at(75.0, toleration) == expected


def test_full_node_loss_timeline_with_defaults() -> None:
    # §4.2: death at 25 s -> Unknown + taint at 75 s -> eviction (and replacement) at 375 s.
    unknown = nodes.unknown_at(nodes.last_renewal(25.0, 0.0, T), T)
    tainted = nodes.taint_times([unknown], nodes.eviction_rate(1, 3, T))[0]
    assert nodes.eviction_at(tainted, T.toleration_s) == 375.0


@pytest.mark.parametrize(
    ("not_ready", "total", "expected"),
    [
        (1, 3, 0.1),
        (
            2,
            3,
            0.1,
        ),  # 67 % down but not more than 2 nodes: still normal (upstream ComputeZoneState)
        (3, 3, 0.0),  # no Ready node: full disruption, tainting stops
        (3, 5, 0.0),  # partial disruption in a small cluster
        (30, 51, 0.01),  # partial disruption in a large cluster
        (20, 51, 0.1),  # 39 %: normal
    ],
)
def test_eviction_rate_by_zone_state(not_ready, total, expected) -> None:
    assert nodes.eviction_rate(not_ready, total, T) == expected


def test_taints_are_rate_limited_one_node_per_ten_seconds() -> None:
    assert nodes.taint_times([75.0, 75.0, 80.0, 200.0], 0.1) == [75.0, 85.0, 95.0, 200.0]
    assert nodes.taint_times([75.0], 0.0) == [math.inf]


def test_bad_timings_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"^NodeTimings.grace_s = 0: must be > 0"):
        nodes.NodeTimings(grace_s=0)


@pytest.mark.parametrize(
    ("not_ready", "total", "expected"),
    [
        (0, 2, nodes.NORMAL),
        (1, 2, nodes.NORMAL),
        (2, 2, nodes.FULL_DISRUPTION),
        (2, 3, nodes.NORMAL),  # upstream needs more than 2 unhealthy nodes
        (3, 5, nodes.PARTIAL_DISRUPTION),
    ],
)
def test_zone_state(not_ready, total, expected) -> None:
    assert nodes.zone_state(not_ready, total, T) == expected


def test_swapping_the_bucket_follows_upstream_swap_limiter() -> None:
    # §4.1 / `SwapLimiter`: leaving a 0 rate (full disruption) gives a drained bucket, so the
    # first waiting node is tainted 1/rate later; a bucket that held a token starts full; an
    # equal rate keeps the bucket as it is.
    stopped = nodes.swap_limiter(nodes.TaintLimiter(0.1), 0.0, 100.0)
    assert nodes.next_taint_at(stopped, 100.0) == math.inf
    resumed = nodes.swap_limiter(stopped, 0.1, 200.0)
    assert nodes.next_taint_at(resumed, 200.0) == 210.0
    full = nodes.swap_limiter(nodes.TaintLimiter(0.01), 0.1, 200.0)
    assert nodes.next_taint_at(full, 200.0) == 200.0
    used = nodes.after_taint(nodes.TaintLimiter(0.1), 195.0)
    assert nodes.swap_limiter(used, 0.1, 200.0) is used
    assert nodes.next_taint_at(nodes.swap_limiter(used, 0.01, 200.0), 200.0) == 300.0
