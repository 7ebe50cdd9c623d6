"""The seed's AutoScalePods decision (seed-system.md §4), rule by rule."""

from __future__ import annotations

import pytest

from scheduler.autoscaler import Decision, PoolSnapshot, decide


def snap(**kw) -> PoolSnapshot:
    base = dict(current=2, total=8, used=0, reserved=0, min_replicas=1, max_replicas=4,
                pending_tasks=0, unblocked_pending_pa=0, unblocked_pending_any=0,
                pods_with_running=0, any_apply_pending=False)
    base.update(kw)
    return PoolSnapshot(**base)


@pytest.mark.parametrize("kw,desired,rule", [
    # C is overwritten by E3: from zero pods the pool only reaches min_replicas...
    (dict(current=0, total=0, min_replicas=1, pending_tasks=3), 1, "E3 idle"),
    # ...and with min 0 it never scales up, whatever is pending.
    (dict(current=0, total=0, min_replicas=0, pending_tasks=3, unblocked_pending_any=3), 0, "E3 idle"),
    # D: unblocked pending plan_and_apply beyond the pods running something.
    (dict(current=2, pods_with_running=2, unblocked_pending_pa=1), 3, "D unblocked pending plan_and_apply"),
    (dict(current=2, pods_with_running=2, unblocked_pending_pa=5), 4, "D unblocked pending plan_and_apply"),
    # E1: reserved slots keep the count (ceil(reserved / 3), the stale 3-slot math)...
    (dict(current=1, total=4, reserved=1), 1, "E1 reserved"),
    # ...and a confirmed apply_pending task without a slot is no demand (G2).
    (dict(current=1, total=4, reserved=0, used=0, any_apply_pending=True), 1, "E3 idle"),
    # E2: utilization above 0.8 adds one pod per cycle.
    (dict(current=2, total=8, used=7), 3, "E2 utilization > 0.8"),
    # E3: idle and nothing unblocked pending: one pod down per cycle, no cooldown.
    (dict(current=3, total=12), 2, "E3 idle"),
    (dict(current=3, total=12, unblocked_pending_any=1), 3, "E3 idle"),
    # E4: otherwise keep.
    (dict(current=2, total=8, used=3), 2, "E4 keep"),
])
def test_rules(kw, desired, rule):
    d = decide(snap(**kw))
    assert (d.desired, d.rule) == (desired, rule)


def test_pool_wide_apply_pending_guard_blocks_any_scale_down():
    d = decide(snap(current=3, total=12, any_apply_pending=True))
    assert d == Decision(3, "E3 idle; scale-down skipped: apply_pending in pool", True)
