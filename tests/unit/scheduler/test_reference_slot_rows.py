"""A `slot.released` row says the scheduler freed a slot. It must follow the write that freed
it: the row is what the checker's witnesses and the simulated `reserved-holder` fault target
read, so one written before a write that then fails tells of a release that did not happen,
and is written again at every pass until the write lands."""

from scheduler.model import Pool, TaskStatus
from scheduler.testing import Script


def _released_and_moved(rows: list[dict], task: int, why: str) -> tuple[list[float], list[float]]:
    released = [r["t"] for r in rows if r["kind"] == "slot.released" and r["task"] == task]
    moved = [r["t"] for r in rows if r["kind"] == "task.transition" and r["task"] == task
             and r["reason"].startswith(why)]
    return released, moved


def test_a_lost_plan_releases_its_slot_once_its_requeue_is_stored():
    s = Script("reference", pool=Pool("pool-1", min_replicas=1, max_replicas=2), plan_s=100.0)
    s.create(1.0)
    s.kill_pod(40.0, lambda s: s.pod_of_task(1))
    s.fail_writes(40.0, 40)  # the requeue fails for several passes
    s.run(600.0)
    released, moved = _released_and_moved(s.finish(), 1, "plan lost")
    assert len(moved) == 1, moved
    assert released[:1] == moved, (released, moved)


def test_a_given_up_apply_releases_its_slot_once_its_failure_is_stored():
    s = Script("reference", pool=Pool("pool-1", min_replicas=1, max_replicas=2),
               plan_s=10.0, apply_s=300.0)
    s.create(1.0)
    s.confirm(61.0, 1)
    s.kill_pod(120.0, lambda s: s.pod_of_task(1))
    s.fail_writes(120.0, 40)
    s.run(900.0)
    assert s.task(1).status is TaskStatus.FAILED, s.task(1).status
    released, moved = _released_and_moved(s.finish(), 1, "apply outcome unknown")
    assert len(moved) == 1, moved
    assert released == moved, (released, moved)
