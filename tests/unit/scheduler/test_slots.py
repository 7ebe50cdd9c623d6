"""The seed's pod slot manager: its version moves with every change that an autoscaler
pass counts, since the model skips passes over an unchanged version (a change that forgot
to bump it would leave a stale decision standing)."""

import random

from scheduler.model import SlotStatus, TaskType
from scheduler.slots import PodSlots, SlotRef


def test_every_change_moves_the_version_and_reads_do_not():
    slots = PodSlots(random.Random(0))
    seen = [slots.version]

    def moved() -> bool:
        seen.append(slots.version)
        return seen[-1] != seen[-2]

    slots.add("pod-a", "pool-1", 0.0)
    assert moved()
    slots.add("pod-b", "pool-1", 0.0)
    assert moved()
    ref = SlotRef("pod-a", 0)
    assert slots.assign(ref, 7, TaskType.PLAN_AND_APPLY, 1.0)
    assert moved()
    slot = slots.slot(ref)
    assert slot is not None
    assert slots.reserve(ref, 7, 2.0)  # the running plan_and_apply's slot turns into its reservation
    assert moved() and slot.status is SlotStatus.RESERVED and slot.task_id == 7
    assert slots.reserve(SlotRef("pod-b", 1), 8, 3.0)
    assert moved()
    assert slots.release(ref, 4.0) is not None
    assert moved()
    assert slots.remove("pod-b") is not None
    assert moved()

    # Reads, and calls that find nothing to change, leave it alone.
    slots.stats("pool-1"), slots.of_pool("pool-1"), slots.idle_pods("pool-1")
    slots.find_by_task(7), slots.find_pod_with_free_slot("pool-1", TaskType.PLAN, 4.0, 60.0)
    assert slots.remove("pod-gone") is None
    assert slots.assign(SlotRef("pod-gone", 0), 9, TaskType.PLAN, 5.0) is False
    assert slots.reserve(SlotRef("pod-gone", 0), 9, 5.0) is False
    assert slots.release(SlotRef("pod-gone", 0), 5.0) is None
    assert not moved()


def test_a_pool_version_moves_with_changes_to_that_pool_only():
    slots = PodSlots(random.Random(0))
    slots.add("pod-a", "pool-1", 0.0)
    slots.add("pod-b", "pool-2", 0.0)
    one, two = slots.version_of("pool-1"), slots.version_of("pool-2")
    assert slots.assign(SlotRef("pod-b", 0), 7, TaskType.PLAN, 1.0)
    assert slots.reserve(SlotRef("pod-b", 1), 8, 1.0)
    assert slots.release(SlotRef("pod-b", 0), 2.0) is not None
    slots.add("pod-c", "pool-2", 2.0)
    assert slots.remove("pod-c") is not None
    assert slots.version_of("pool-1") == one and slots.version_of("pool-2") > two
    assert slots.release(SlotRef("pod-a", 0), 3.0) is not None
    assert slots.version_of("pool-1") > one
