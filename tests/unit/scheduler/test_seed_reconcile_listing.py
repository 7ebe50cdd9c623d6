"""The seed's ReconcilePods (seed-system.md §3.3–3.4), held to the Go code: it returns
SyncPodsFromK8s's error before syncTaskStatusToSlots, so a slot whose task has ended stays
taken until the cluster answers again; and the slot sync frees the slots of tasks whose
workspace is no longer in the pool."""

from __future__ import annotations

from dataclasses import replace

from scheduler.history import Kind
from scheduler.model import Pool, TaskStatus, TaskType
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


def test_a_slot_of_a_task_whose_workspace_moved_pool_is_freed():
    # syncTaskStatusToSlots lists the running and apply_pending tasks of the workspaces whose
    # current_pool_id is this pool: after a move, the old pool's reservation is not among them.
    s = Script("seed", other_pools=(Pool("pool-2", min_replicas=0, max_replicas=4),))
    s.create(40.0)
    s.run(120.0)  # planned at 100.2: apply_pending, its slots reserved at 105
    assert s.task(1).status is TaskStatus.APPLY_PENDING
    s.store.put_workspace(replace(s.workspace(), pool_id="pool-2"))
    s.run(130.0)  # the pass at 120 ran before the move; the next one, at 125, frees them
    assert set(slot_releases(s, 1)) == {125.0}
