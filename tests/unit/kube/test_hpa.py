"""HPA v2 reconcile, one table row per rule of shared/specs/k8s-semantics.md §1."""

from __future__ import annotations

import pytest

from sim.kube import hpa

P = hpa.ScalingPolicy


def drive(
    spec: hpa.HPASpec, start: int, ticks: list[tuple[float, float]]
) -> list[tuple[float, int]]:
    """Reconcile at each (t, per-pod value); every current pod reports that value."""
    state, current, out = hpa.HPAState(), start, []
    for t, value in ticks:
        decision = hpa.reconcile(spec, state, t, current, [value] * current)
        state, current = decision.state, decision.desired
        out.append((t, current))
    return out


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # §1.2: no scaling while 1-t <= ratio <= 1+t, both bounds inclusive (target 0.8).
        # Upstream computes in integer percent (88/80 is exactly 1.1); our float mean lands a
        # hair off the edge (0.72/0.8 gives 0.8999999999999998), which the rule must absorb.
        (0.88, 10),  # ratio 1.1: upper edge, inside
        (0.72, 10),  # ratio 0.9: lower edge, inside
        (0.90, 12),  # ratio 1.125: ceil(11.25)
        (0.70, 9),  # ratio 0.875: ceil(8.75)
    ],
)
def test_tolerance_band_is_inclusive(value: float, expected: int) -> None:
    # Down window 0: a fresh HPA's initial record (10) would otherwise hold the scale-down.
    spec = hpa.HPASpec(max_replicas=20, scale_down_window_s=0.0)
    d = hpa.reconcile(spec, hpa.HPAState(), 0.0, 10, [value] * 10)
    assert d.desired == expected
    assert d.active


def test_proposal_ceiling_absorbs_float_noise() -> None:
    # 90 % against a 60 % target is exactly 1.5 upstream, so 2 pods -> 3; in floats
    # 0.9 / 0.6 * 2 = 3.0000000000000004, which a bare ceil would turn into 4.
    spec = hpa.HPASpec(target=0.6)
    assert hpa.reconcile(spec, hpa.HPAState(), 0.0, 2, [0.9, 0.9]).desired == 3


@pytest.mark.parametrize(
    ("target", "current", "value", "expected"),
    [
        # Upstream `GetResourceUtilizationRatio` takes int32(total * 100 / requests): the
        # utilization is truncated to a whole percent before it is divided by the target.
        (0.8, 1, 0.885, 1),  # 88 % / 80 % = 1.1: on the inclusive edge, no scaling
        (0.5, 2, 0.755, 3),  # 75 % / 50 % = 1.5: ceil(3.0), not ceil(3.02) = 4
        (0.75, 10, 0.675, 9),  # 67 % / 75 % = 0.893 < 0.9: out of the band, ceil(8.93)
    ],
)
def test_utilization_is_truncated_to_a_whole_percent(
    target: float, current: int, value: float, expected: int
) -> None:
    spec = hpa.HPASpec(target=target, scale_down_window_s=0.0)
    assert hpa.reconcile(spec, hpa.HPAState(), 0.0, current, [value] * current).desired == expected


def test_average_values_are_not_truncated_to_a_percent() -> None:
    # A Pods or AverageValue metric is a plain value, not a percent of a request.
    spec = hpa.HPASpec(target=1.0, target_type="AverageValue")
    assert hpa.reconcile(spec, hpa.HPAState(), 0.0, 1, [1.105]).desired == 2


def test_scale_down_is_held_for_the_300s_window_then_taken_in_one_step() -> None:
    # §1.3 step 1 + §1.4 "a load drop": nothing happens for 300 s, then the HPA drops to the
    # highest proposal of the window, in one step under the default Percent 100/15 s policy.
    ticks = [(0.0, 0.8)] + [(15.0 * k, 0.2) for k in range(1, 22)]
    result = dict(drive(hpa.HPASpec(), 10, ticks))
    assert all(result[15.0 * k] == 10 for k in range(1, 20))  # 15 .. 285 s: held
    # 300 s, not 285: the t=0 record is exactly 300 s old and a record must be strictly
    # younger than the window to vote.
    assert result[300.0] == 3  # ceil(0.2 / 0.8 * 10) = ceil(2.5)


def test_held_scale_down_reports_stabilized() -> None:
    d0 = hpa.reconcile(hpa.HPASpec(), hpa.HPAState(), 0.0, 10, [0.8] * 10)
    d1 = hpa.reconcile(hpa.HPASpec(), d0.state, 15.0, 10, [0.2] * 10)
    assert (d1.desired, d1.reason, d1.limited) == (10, "ScaleDownStabilized", False)


def test_first_reconcile_records_current_so_a_restart_holds_scale_down() -> None:
    # §1.3: "On its first reconcile after start the controller records the current replica count".
    d = hpa.reconcile(hpa.HPASpec(), hpa.HPAState(), 1000.0, 10, [0.1] * 10)
    assert d.desired == 10
    assert (1000.0, 10) in d.state.recommendations


@pytest.mark.parametrize(
    ("current", "select", "expected", "reason"),
    [
        # §0.1 default scale-up: Pods 4/15 s and Percent 100/15 s; Max takes the larger.
        (3, "Max", 7, "ScaleUpLimit"),  # +4 beats x2 (6)
        (10, "Max", 20, "ScaleUpLimit"),  # x2 beats +4 (14)
        (3, "Min", 6, "ScaleUpLimit"),
        (10, "Min", 14, "ScaleUpLimit"),
        (10, "Disabled", 10, "ScaleUpLimit"),  # Disabled forbids scaling up
    ],
)
def test_scale_up_policies(current: int, select: str, expected: int, reason: str) -> None:
    spec = hpa.HPASpec(max_replicas=100, scale_up_select=select)
    d = hpa.reconcile(spec, hpa.HPAState(), 0.0, current, [8.0] * current)  # ratio 10
    assert (d.desired, d.reason, d.limited) == (expected, reason, True)


def test_scale_up_rate_counts_own_events_within_the_period() -> None:
    # §1.3 step 2: periodStart = current - added in the last P s. At +10 s the +4 of t=0 is
    # still inside the 15 s period; at +15 s it is not (strictly younger than the period).
    spec = hpa.HPASpec(max_replicas=100)
    d0 = hpa.reconcile(spec, hpa.HPAState(), 0.0, 3, [8.0] * 3)
    assert d0.desired == 7
    d1 = hpa.reconcile(spec, d0.state, 10.0, 7, [8.0] * 7)
    assert (d1.desired, d1.reason) == (7, "ScaleUpLimit")
    d2 = hpa.reconcile(spec, d0.state, 15.0, 7, [8.0] * 7)
    assert d2.desired == 14


def test_scale_up_to_max_reports_too_many_replicas() -> None:
    d = hpa.reconcile(hpa.HPASpec(max_replicas=12), hpa.HPAState(), 0.0, 10, [8.0] * 10)
    assert (d.desired, d.reason, d.limited) == (12, "TooManyReplicas", True)


def test_scale_down_pods_policy_over_a_period() -> None:
    # A one-pod-per-60-s policy: 10 -> 9 at 0 s, no further step until 60 s.
    spec = hpa.HPASpec(scale_down_window_s=0.0, scale_down_policies=(P("Pods", 1, 60.0),))
    result = drive(spec, 10, [(0.0, 0.1), (15.0, 0.1), (45.0, 0.1), (60.0, 0.1)])
    assert result == [(0.0, 9), (15.0, 9), (45.0, 9), (60.0, 8)]


def test_scale_down_percent_rounding_matches_the_worked_example() -> None:
    # §1.3 worked example: policies Pods 4/60 s and Percent 10/60 s with Max: 80 -> 72.
    spec = hpa.HPASpec(
        max_replicas=100,
        scale_down_window_s=0.0,
        scale_down_policies=(P("Pods", 4, 60.0), P("Percent", 10, 60.0)),
    )
    d = hpa.reconcile(spec, hpa.HPAState(), 0.0, 80, [0.08] * 80)
    assert (d.desired, d.reason) == (72, "ScaleDownLimit")


@pytest.mark.parametrize(
    ("current", "expected", "reason"),
    [
        (12, 10, "TooManyReplicas"),  # §1.1 step 3: above max -> max at once
        (1, 3, "TooFewReplicas"),  # below min -> min at once
    ],
)
def test_out_of_range_is_clamped_at_once(current: int, expected: int, reason: str) -> None:
    spec = hpa.HPASpec(min_replicas=3, max_replicas=10)
    d0 = hpa.reconcile(spec, hpa.HPAState(), 0.0, 10, [0.8] * 10)  # a high record in the window
    d = hpa.reconcile(spec, d0.state, 15.0, current, [])  # no metrics needed either
    assert (d.desired, d.reason, d.active) == (expected, reason, True)


def test_lowering_max_ignores_stabilization_and_policies() -> None:
    # §1.4 "patching the HPA": lower maxReplicas -> desired = max at the next tick.
    spec = hpa.HPASpec(max_replicas=20, scale_down_policies=(P("Pods", 1, 60.0),))
    d0 = hpa.reconcile(spec, hpa.HPAState(), 0.0, 20, [0.8] * 20)
    d1 = hpa.reconcile(
        hpa.HPASpec(max_replicas=5, scale_down_policies=spec.scale_down_policies),
        d0.state,
        15.0,
        20,
        [0.8] * 20,
    )
    assert d1.desired == 5


def test_zero_replicas_disables_scaling() -> None:
    # §1.1 step 2: current 0 with min != 0 -> ScalingDisabled; the HPA stays off.
    d = hpa.reconcile(hpa.HPASpec(), hpa.HPAState(), 0.0, 0, [])
    assert (d.desired, d.reason, d.active) == (0, "ScalingDisabled", False)


def test_no_samples_is_an_error_and_no_scaling() -> None:
    d = hpa.reconcile(hpa.HPASpec(), hpa.HPAState(), 0.0, 4, [])
    assert (d.desired, d.reason, d.active) == (4, "FailedGetMetrics", False)


@pytest.mark.parametrize(
    ("values", "ready", "unready", "expected"),
    [
        # §1.2 step 3, target 0.8, window 0. Scale-down with one missing sample: the missing
        # pod counts as 100 %: ratio (0.6 + 1.0) / 4 / 0.8 = 0.5 -> ceil(2.0) = 2, not 1.
        ([0.2, 0.2, 0.2], 4, 0, 2),
        # Scale-up with one missing sample: it counts 0: (4.8 / 4) / 0.8 = 1.5 -> 6, not 6 of 3.
        ([1.6, 1.6, 1.6], 4, 0, 6),
        # Scale-up with unready pods: they count 0, ratio falls to 1.0 -> keep current.
        ([1.6, 1.6], 2, 2, 4),
        # Unready pods do not matter on a scale-down: ceil(0.25 * 2) = 1.
        ([0.2, 0.2], 2, 2, 1),
        # Scale-down whose missing pods at 100 % flip the direction: (0.7 + 3) / 4 / 0.8 =
        # 1.16 > 1 -> keep current (§1.2 step 3).
        ([0.7], 4, 0, 4),
        # Scale-up with one missing pod at 0: 3.6 / 4 / 0.8 = 1.125, still up -> ceil(4.5) = 5;
        # with two missing, 3.0 / 4 / 0.8 = 0.94 flips the direction -> keep current.
        ([1.0, 1.0, 1.6], 4, 0, 5),
        ([1.5, 1.5], 4, 0, 4),
    ],
)
def test_missing_and_unready_pods_are_conservative(values, ready, unready, expected) -> None:
    spec = hpa.HPASpec(scale_down_window_s=0.0, max_replicas=20)
    d = hpa.reconcile(spec, hpa.HPAState(), 0.0, 4, values, ready, unready_pods=unready)
    assert d.desired == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_replicas": 0}, r"^HPASpec.max_replicas = 0: must be >= 1"),
        (
            {"min_replicas": 5, "max_replicas": 3},
            r"^HPASpec.max_replicas = 3: .*min_replicas \(5\)",
        ),
        ({"scale_up_select": "Most"}, r"^HPASpec.scale_up_select = 'Most': use one of"),
        ({"scale_down_policies": ()}, r"^HPASpec.scale_down_policies = \(\): needs at least one"),
        ({"target": 0}, r"^HPASpec.target = 0: must be > 0"),
    ],
)
def test_bad_spec_names_the_field(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        hpa.HPASpec(**kwargs)


def test_bad_policy_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"^ScalingPolicy.type = 'Pod': use 'Pods' or 'Percent'"):
        hpa.ScalingPolicy("Pod", 4, 15.0)


def test_rate_policies_count_events_of_both_directions() -> None:
    # §1.3 step 2: periodStart = current - added + removed within the policy period.
    spec = hpa.HPASpec(
        max_replicas=50,
        scale_down_window_s=0.0,
        scale_up_policies=(P("Pods", 4, 60.0),),
        scale_down_policies=(P("Pods", 1, 15.0),),
    )
    d0 = hpa.reconcile(spec, hpa.HPAState(), 0.0, 2, [8.0] * 2)  # 2 -> 6 (+4 at 0 s)
    d1 = hpa.reconcile(spec, d0.state, 15.0, 6, [0.1] * 6)  # 6 -> 5 (-1 at 15 s)
    d2 = hpa.reconcile(spec, d1.state, 30.0, 5, [8.0] * 5)
    # The period started at 5 - 4 + 1 = 2 replicas, so the Pods 4/60 s policy allows 6.
    assert [d0.desired, d1.desired, d2.desired] == [6, 5, 6]


def test_missing_and_unready_together_on_a_scale_down() -> None:
    # Unready pods are filled with 0 only on a scale-up; here the missing pod (100 %) brings
    # the ratio to (19 * 0.74 + 1.0) / 20 / 0.8 = 0.941, inside the band: keep 20.
    spec = hpa.HPASpec(max_replicas=30, scale_down_window_s=0.0)
    d = hpa.reconcile(spec, hpa.HPAState(), 0.0, 20, [0.74] * 19, 20, unready_pods=2)
    assert d.desired == 20


def test_recommendation_memory_is_bounded() -> None:
    # Upstream reuses the slot of a record older than both windows; a day of 15 s ticks keeps
    # about one window of records, not 5760.
    state, current = hpa.HPAState(), 5
    for k in range(5760):
        d = hpa.reconcile(
            hpa.HPASpec(), state, 15.0 * k, current, [0.8 if k % 40 < 20 else 0.3] * current
        )
        state, current = d.state, d.desired
    assert len(state.recommendations) <= 300 / 15 + 2


V = hpa.PodMetricView


def _running(start=0.0, ready="True", since=0.0, sample=None, window=15.0) -> hpa.PodMetricView:
    return V("Running", start_time=start, ready=ready, ready_transition=since,
             sample_time=sample, sample_window_s=window)


@pytest.mark.parametrize(
    ("pod", "now", "resource", "group"),
    [
        # The order (§1.2): ignored, Pending, missing metric, then the CPU rules.
        (V("Running", deleting=True, sample_time=0.0), 10.0, "cpu", "ignored"),
        (V("Failed", sample_time=0.0), 10.0, "cpu", "ignored"),
        (V("Pending", sample_time=0.0), 10.0, "memory", "unready"),
        # Running and NotReady without a sample is missing, not unready.
        (_running(ready="False", since=5.0), 10.0, "cpu", "missing"),
        # CPU: no Ready condition, or no start time.
        (V("Running", start_time=0.0, sample_time=500.0), 600.0, "cpu", "unready"),
        (V("Running", ready="True", ready_transition=0.0, sample_time=500.0), 600.0, "cpu",
         "unready"),
        # Inside the 5 min window: NotReady, or a sample ending before ready + one window.
        (_running(ready="False", since=10.0, sample=100.0), 100.0, "cpu", "unready"),
        (_running(since=90.0, sample=100.0), 100.0, "cpu", "unready"),  # 100 < 90 + 15
        (_running(since=85.0, sample=100.0), 100.0, "cpu", "ready"),  # 100 = 85 + 15: not before
        (_running(start=0.0, since=290.0, sample=299.0), 299.0, "cpu", "unready"),
        # Past the window (start + 300 = now is not after now): only NotReady that never was.
        (_running(start=0.0, since=290.0, sample=300.0), 300.0, "cpu", "ready"),
        (_running(ready="False", since=29.0, sample=400.0), 400.0, "cpu", "unready"),
        (_running(ready="False", since=30.0, sample=400.0), 400.0, "cpu", "ready"),
        # "Unknown" is not NotReady upstream (`condition.Status == ConditionFalse`).
        (_running(ready="Unknown", since=10.0, sample=100.0), 100.0, "cpu", "ready"),
        (_running(ready="Unknown", since=10.0, sample=400.0), 400.0, "cpu", "ready"),
        # Memory and Pods metrics: a Running pod with a sample is ready, Ready or not.
        (_running(ready="False", since=90.0, sample=100.0), 100.0, "memory", "ready"),
        (V("Running", sample_time=100.0), 100.0, None, "ready"),
    ],
)
def test_pod_group_follows_upstream_group_pods(pod, now, resource, group) -> None:
    assert hpa.pod_group(pod, now, resource) == group


def test_pod_groups_counts_what_reconcile_takes() -> None:
    pods = [
        _running(since=0.0, sample=400.0),  # ready
        _running(since=395.0, start=390.0, sample=400.0),  # CPU-unready, has a sample
        V("Pending"),  # unready
        _running(),  # missing
        V("Succeeded", deleting=True),  # ignored
    ]
    cpu = hpa.pod_groups(pods, 400.0, "cpu")
    assert cpu == hpa.PodGroups(ready=1, missing=1, unready=2, sampled_unready=1)
    assert cpu.counted == 2
    assert hpa.pod_groups(pods, 400.0, "memory") == hpa.PodGroups(2, 1, 1, 0)


def test_settings_change_the_cpu_periods() -> None:
    pod = _running(start=0.0, since=50.0, sample=60.0)
    assert hpa.pod_group(pod, 60.0, "cpu") == "unready"
    short = hpa.ReadinessSettings(cpu_initialization_period_s=30.0)
    assert hpa.pod_group(pod, 60.0, "cpu", short) == "ready"


def test_a_cpu_unready_pod_counts_zero_on_a_scale_up() -> None:
    # 4 pods at 160 % of an 80 % target; one became Ready 5 s ago: its sample is dropped and
    # it counts as 0: (3 * 1.6 + 0) / 4 / 0.8 = 1.5, so 6 replicas, not ceil(2 * 4) = 8.
    pods = [_running(since=0.0, sample=100.0)] * 3 + [_running(since=95.0, sample=100.0)]
    g = hpa.pod_groups(pods, 100.0, "cpu")
    d = hpa.reconcile(hpa.HPASpec(max_replicas=20), hpa.HPAState(), 100.0, 4, [1.6] * g.ready,
                      g.counted, unready_pods=g.unready)
    assert d.desired == 6


def test_the_largest_proposal_of_several_metrics_wins() -> None:
    spec = hpa.HPASpec(max_replicas=20, scale_down_window_s=0.0)
    more = (hpa.MetricInput((1.6,) * 4, 4),)  # ratio 2: 8
    d = hpa.reconcile(spec, hpa.HPAState(), 0.0, 4, [0.4] * 4, more_metrics=more)
    assert (d.desired, d.reason) == (8, "DesiredWithinRange")


def test_a_failed_metric_blocks_a_scale_down_but_not_a_scale_up() -> None:
    spec = hpa.HPASpec(max_replicas=20, scale_down_window_s=0.0)
    failed = (hpa.MetricInput((), 4),)
    down = hpa.reconcile(spec, hpa.HPAState(), 0.0, 4, [0.2] * 4, more_metrics=failed)
    assert (down.desired, down.reason) == (4, "FailedGetMetrics")
    up = hpa.reconcile(spec, hpa.HPAState(), 0.0, 4, [1.6] * 4, more_metrics=failed)
    assert up.desired == 8

def test_scale_events_are_pruned_by_their_own_directions_longest_period() -> None:
    # Upstream keeps scale-up and scale-down events apart (`scaleUpEvents`, `scaleDownEvents`)
    # and a new event reuses the slot of one older than its own direction's longest policy
    # period (`storeScaleEvent`). The scale-down period is 15 s here, so the -1 of t=0 is
    # outdated when the -1 of t=30 s is stored and is overwritten by it, although the 600 s
    # scale-up policy would still have counted it.
    spec = hpa.HPASpec(
        max_replicas=50,
        scale_down_window_s=0.0,
        scale_up_policies=(P("Pods", 2, 600.0),),
        scale_down_policies=(P("Pods", 1, 15.0),),
    )
    d0 = hpa.reconcile(spec, hpa.HPAState(), 0.0, 10, [0.1] * 10)  # 10 -> 9
    d1 = hpa.reconcile(spec, d0.state, 30.0, 9, [0.1] * 9)  # 9 -> 8, overwrites t=0
    d2 = hpa.reconcile(spec, d1.state, 60.0, 8, [8.0] * 8)
    # Period start 8 - 0 + 1 = 9 (not 10): the Pods 2/600 s policy allows 11, not 12.
    assert [d0.desired, d1.desired, d2.desired] == [9, 8, 11]
    assert d2.state.scale_down_events == ((30.0, 1),)
    assert d2.state.scale_up_events == ((60.0, 3),)


def test_an_outdated_event_not_reused_still_counts_for_the_other_direction() -> None:
    # Upstream reuses one outdated slot per new event (the last one found), and counts every
    # stored event younger than a policy's period, outdated or not.
    spec = hpa.HPASpec(
        max_replicas=50,
        scale_down_window_s=0.0,
        scale_up_policies=(P("Pods", 2, 600.0),),
        scale_down_policies=(P("Pods", 1, 15.0),),
    )
    state = hpa.HPAState(scale_down_events=((0.0, 1), (10.0, 1)))
    d = hpa.reconcile(spec, state, 60.0, 8, [0.1] * 8)  # 8 -> 7 overwrites the t=10 slot
    assert d.state.scale_down_events == ((0.0, 1), (60.0, 1))
    up = hpa.reconcile(spec, d.state, 75.0, 7, [8.0] * 7)
    # Period start 7 + 2 removed = 9: the limit is 11.
    assert up.desired == 11
