"""Properties that hold for any input, not just the spec's table rows."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sim.kube import hpa, pods, replicasets
from sim.kube.replicasets import PodView

loads = st.lists(
    st.tuples(st.floats(0.0, 5.0), st.integers(0, 3), st.integers(0, 2), st.booleans()),
    min_size=1,
    max_size=40,
)


@given(
    min_r=st.integers(1, 5),
    extra=st.integers(0, 15),
    start=st.integers(0, 30),
    ticks=loads,
    down_window=st.sampled_from([0.0, 60.0, 300.0]),
)
def test_reconcile_stays_within_min_max(min_r, extra, start, ticks, down_window) -> None:
    spec = hpa.HPASpec(
        min_replicas=min_r, max_replicas=min_r + extra, scale_down_window_s=down_window
    )
    state, current = hpa.HPAState(), max(start, 1)
    for k, (value, missing, unready, chaos) in enumerate(ticks):
        if chaos:  # someone else scaled the target (§1.4), anywhere from 1 to 30
            current = 1 + (k * 7) % 30
        d = hpa.reconcile(
            spec,
            state,
            15.0 * k,
            current,
            [value] * current,
            current + missing,
            unready_pods=unready,
        )
        assert spec.min_replicas <= d.desired <= spec.max_replicas
        if spec.min_replicas <= current <= spec.max_replicas and d.desired > current:
            # default policies with a 15 s tick: at most +4 or x2 per reconcile (§1.3)
            assert d.desired <= max(current + 4, 2 * current)
        state, current = d.state, d.desired
    assert len(state.recommendations) <= 300 / 15 + 3  # slots are reused, memory is bounded


pod_views = st.builds(
    PodView,
    name=st.text("abcdef", min_size=1, max_size=4),
    node=st.sampled_from(["", "n1", "n2"]),
    phase=st.sampled_from(["Pending", "Unknown", "Running", "Succeeded"]),
    ready=st.booleans(),
    ready_since=st.none() | st.floats(0.0, 1000.0),
    created_at=st.floats(0.0, 1000.0),
    restart_count=st.integers(0, 3),
    deletion_cost=st.integers(-2, 2),
    terminating=st.booleans(),
)


@given(pods_=st.lists(pod_views, max_size=12), count=st.integers(0, 15))
def test_ranking_is_a_permutation_and_victims_are_active(pods_, count) -> None:
    ranked = replicasets.rank_for_deletion(pods_, 1000.0)
    assert sorted(map(repr, ranked)) == sorted(map(repr, pods_))
    chosen = replicasets.victims(pods_, count, 1000.0)
    active = [p for p in pods_ if replicasets.is_active(p)]
    assert len(chosen) == min(count, len(active))
    assert all(replicasets.is_active(p) for p in chosen)


@given(
    deadline=st.floats(0.0, 1e4),
    now=st.floats(0.0, 1e4),
    requested=st.floats(-10.0, 1e3),
    started=st.none() | st.floats(0.0, 1e4),
)
def test_redelete_never_lengthens_grace(deadline, now, requested, started) -> None:
    assert pods.shorten_grace(deadline, now, requested, deleted_at=started) <= deadline
