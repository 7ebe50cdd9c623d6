"""The seed's ReconcilePods when listing pods fails (seed-system.md §3.4, held to the Go
code): it returns SyncPodsFromK8s's error before syncTaskStatusToSlots, so a slot whose task
has ended stays taken until the cluster answers again."""

from __future__ import annotations

from scheduler.history import Kind
from scheduler.model import TaskStatus, TaskType
from scheduler.testing import Script


def slot_releases(s: Script, task: int) -> list[float]:
    return [e.t for e in s.history.events if e.kind is Kind.SLOT_RELEASED and e.task == task]


def plan_world(fail_listing: bool) -> Script:
    s = Script("seed", has_changes=False)  # a plan: pod up at 0, agent at 30, plan 60 s
    s.create(40.0, task_type=TaskType.PLAN)
    if fail_listing:
        s.fail_listing(100.0, for_s=60.0)
    return s.run(300.0)


def test_a_slot_is_freed_by_the_reconcile_pass_after_the_task_ends():
    # The plan ends at 100.2 (two slots: the seed's double dispatch, F7); the 5 s pass at
    # 105 frees them.
    s = plan_world(fail_listing=False)
    assert set(slot_releases(s, 1)) == {105.0}


def test_a_failed_listing_leaves_the_slot_taken_until_the_cluster_answers():
    s = plan_world(fail_listing=True)  # listing fails from 100 to 160
    assert set(slot_releases(s, 1)) == {160.0}
    assert s.task(1).status is TaskStatus.SUCCESS
