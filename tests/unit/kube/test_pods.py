"""Termination grace and start-up delays, rules from k8s-semantics.md §0.3 and §3."""

from __future__ import annotations

import random
import statistics

import pytest

from sim.kube import pods


@pytest.mark.parametrize(
    ("requested", "spec_grace", "scheduled", "phase", "expected"),
    [
        (None, None, True, "Running", 30.0),  # API default terminationGracePeriodSeconds
        (None, 60.0, True, "Running", 60.0),  # the pod's own value
        (5.0, 60.0, True, "Running", 5.0),  # DeleteOptions wins
        (0.0, None, True, "Running", 0.0),  # force delete
        (-3.0, None, True, "Running", 1.0),  # negative becomes 1 s
        (None, None, False, "Pending", 0.0),  # unscheduled: removed at once
        (30.0, None, True, "Succeeded", 0.0),  # already terminal: removed at once
        (30.0, None, True, "Failed", 0.0),
    ],
)
def test_effective_grace(requested, spec_grace, scheduled, phase, expected) -> None:
    assert pods.effective_grace(requested, spec_grace, scheduled=scheduled, phase=phase) == expected


@pytest.mark.parametrize(
    ("deadline", "now", "requested", "deleted_at", "expected"),
    [
        # Re-delete may only shorten (§0.3 `BeforeDelete`).
        (130.0, 110.0, 5.0, None, 115.0),
        (130.0, 110.0, 60.0, None, 130.0),  # longer: no-op
        (130.0, 110.0, 0.0, None, 110.0),  # 0: now
        (130.0, 110.0, -1.0, None, 111.0),  # negative: 1 s
        # With the first delete's time, upstream arithmetic: deletion start + new grace.
        (130.0, 110.0, 5.0, 100.0, 111.0),  # already past: still graceful, with 1 s (§3)
        (111.5, 110.0, 5.0, 100.0, 111.0),
        (110.5, 110.0, 5.0, 100.0, 110.5),  # never later
        (130.0, 110.0, 10.0, 100.0, 110.0),  # due now: not past
        (130.0, 110.0, 30.0, 100.0, 130.0),  # equal: no-op
        (130.0, 110.0, 20.0, 100.0, 120.0),
    ],
)
def test_shorten_grace(deadline, now, requested, deleted_at, expected) -> None:
    assert pods.shorten_grace(deadline, now, requested, deleted_at=deleted_at) == expected


def test_kill_deadline_adds_two_seconds_once_for_an_overrunning_prestop() -> None:
    assert pods.kill_deadline(100.0, 30.0) == 130.0
    assert pods.kill_deadline(100.0, 30.0, prestop_overran=True) == 132.0
    assert pods.kill_deadline(100.0, 0.0, prestop_overran=True) == 100.0  # no hook at grace 0


def test_lognormal_startup_has_the_requested_median_and_p99() -> None:
    rng = random.Random(7)
    delay = pods.StartupDelay(median_s=4.0, p99_s=10.0, minimum_s=0.0)
    samples = sorted(delay.sample(rng) for _ in range(20_000))
    assert statistics.median(samples) == pytest.approx(4.0, rel=0.03)
    assert samples[int(0.99 * len(samples))] == pytest.approx(10.0, rel=0.06)


def test_startup_is_floored_and_reproducible() -> None:
    delay = pods.StartupDelay(median_s=1.5, p99_s=10.0, minimum_s=1.0)
    a = [delay.sample(random.Random(3)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    assert min(delay.sample(random.Random(s)) for s in range(500)) == 1.0


def test_fixed_and_uniform_startup() -> None:
    rng = random.Random(1)
    assert pods.StartupDelay(kind="fixed", median_s=3.0).sample(rng) == 3.0
    uniform = pods.StartupDelay(kind="uniform", median_s=4.0, minimum_s=2.0)
    samples = [uniform.sample(rng) for _ in range(2000)]
    assert 2.0 <= min(samples) and max(samples) <= 6.0
    assert statistics.median(samples) == pytest.approx(4.0, rel=0.05)


@pytest.mark.parametrize("delay", [
    pods.StartupDelay(median_s=4.0, p99_s=10.0, minimum_s=1.0),
    pods.StartupDelay(kind="uniform", median_s=4.0, minimum_s=2.0),
    pods.StartupDelay(kind="fixed", median_s=3.0),
], ids=["lognormal", "uniform", "fixed"])
def test_the_startup_p99_is_that_of_its_draws(delay) -> None:
    # What scenario advice compares a bound with: it must be the draws' own percentile.
    rng = random.Random(11)
    samples = sorted(delay.sample(rng) for _ in range(20_000))
    assert samples[int(0.99 * len(samples))] == pytest.approx(delay.p99(), rel=0.06)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "gamma"}, r"^StartupDelay.kind = 'gamma': use one of"),
        ({"median_s": 0.5}, r"^StartupDelay.median_s = 0.5: must be >= minimum_s \(1.0\)"),
        ({"p99_s": 2.0}, r"^StartupDelay.p99_s = 2.0: must be >= median_s \(4.0\)"),
    ],
)
def test_bad_startup_names_the_field(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        pods.StartupDelay(**kwargs)


@pytest.mark.parametrize(("grace", "expected"), [(0.0, True), (1.0, False), (30.0, False)])
def test_only_grace_zero_removes_the_object_at_once(grace, expected) -> None:
    # §3: a force delete (or an unscheduled pod's delete) does not wait for the kubelet.
    assert pods.removed_at_once(grace) is expected
