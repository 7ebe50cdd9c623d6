"""The Store contract, run against every implementation (see the `store` fixture).

MemoryStore is the reference; a test here that fails for one store only is a divergence.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from scheduler.model import AgentRow, Task, TaskStatus, TaskType, Workspace
from scheduler.ports import StoreWriteError

from .records import (
    agent,
    full_pool,
    full_task,
    full_workspace,
    plan,
    snapshot,
    typed,
)


def task(task_id: int, workspace_id: str = "ws-1", status=TaskStatus.PENDING) -> Task:
    return Task(id=task_id, workspace_id=workspace_id, task_type=TaskType.PLAN, status=status)


# Tasks: insert, get, list.


def test_a_task_round_trips_with_every_field(store):
    store.insert_task(full_task())
    assert typed(store.get_task(7)) == typed(full_task())


def test_reads_and_writes_are_copies(store):
    original = task(1)
    store.insert_task(original)
    original.status = TaskStatus.FAILED
    read = store.get_task(1)
    read.status = TaskStatus.RUNNING
    store.list_tasks()[0].stage = "mutated"
    assert store.get_task(1) == task(1)


def test_get_of_a_missing_task_is_none(store):
    assert store.get_task(42) is None


def test_next_task_id_follows_the_highest_inserted_id(store):
    assert store.next_task_id() == 1
    store.insert_task(task(5))
    assert store.next_task_id() == 6
    store.insert_task(task(2))  # a lower id never moves the counter back
    assert store.next_task_id() == 6


def test_inserting_an_existing_id_is_refused_and_changes_nothing(store):
    store.insert_task(task(1))
    before = snapshot(store)
    with pytest.raises(ValueError, match="task 1 already exists"):
        store.insert_task(task(1, workspace_id="ws-other"))
    assert snapshot(store) == before


def test_tasks_are_listed_by_id_and_filtered(store):
    for t in [
        task(3, "ws-b", TaskStatus.RUNNING),
        task(1, "ws-a", TaskStatus.PENDING),
        task(2, "ws-a", TaskStatus.APPLY_PENDING),
        task(4, "ws-a", TaskStatus.RUNNING),
    ]:
        store.insert_task(t)

    def ids(**kw) -> list[int]:
        return [t.id for t in store.list_tasks(**kw)]

    assert ids() == [1, 2, 3, 4]
    assert ids(workspace_id="ws-a") == [1, 2, 4]
    assert ids(statuses=[TaskStatus.RUNNING]) == [3, 4]
    assert ids(statuses=(s for s in [TaskStatus.RUNNING, TaskStatus.PENDING])) == [1, 3, 4]
    assert ids(workspace_id="ws-a", statuses={TaskStatus.RUNNING}) == [4]
    assert ids(statuses=[]) == []
    assert ids(workspace_id="ws-none") == []


# save_task: the seed's whole-row Save.


def test_save_task_overwrites_the_whole_row_and_bumps_the_stored_version(store):
    store.insert_task(task(1))
    changed = dataclasses.replace(full_task(1), version=0)
    store.save_task(changed)
    assert changed.version == 0  # the caller's object is not touched
    assert store.get_task(1) == dataclasses.replace(full_task(1), version=1)


def test_save_task_is_last_writer_wins_so_a_lost_update_is_possible(store):
    """The seed's F7: two readers of version 0 both save; the first change is lost."""
    store.insert_task(task(1))
    confirmer, dispatcher = store.get_task(1), store.get_task(1)
    confirmer.apply_confirmed_by = "alice"
    dispatcher.status = TaskStatus.RUNNING
    store.save_task(confirmer)
    store.save_task(dispatcher)  # stale copy (version 0): saved all the same
    final = store.get_task(1)
    assert final.status is TaskStatus.RUNNING
    assert final.apply_confirmed_by is None  # the confirmation was lost
    assert final.version == 2  # bumped from the stored version, not the stale copy's


def test_save_task_of_an_unknown_id_creates_it_without_moving_next_task_id(store):
    store.save_task(dataclasses.replace(task(9), version=4))
    assert store.get_task(9) == dataclasses.replace(task(9), version=5)
    assert store.next_task_id() == 1


# cas_task: compare-and-set on version.


def test_cas_task_succeeds_once_and_the_stale_second_returns_none(store):
    store.insert_task(task(1))
    first = store.cas_task(1, 0, status=TaskStatus.RUNNING, fence=1, started_at=10.0)
    assert first == dataclasses.replace(
        task(1), status=TaskStatus.RUNNING, fence=1, started_at=10.0, version=1
    )
    assert store.cas_task(1, 0, status=TaskStatus.FAILED, fence=2) is None
    assert store.get_task(1) == first


def test_cas_task_changes_persist_and_its_result_is_a_copy(store):
    store.insert_task(full_task(1))
    result = store.cas_task(1, 3, has_changes=True, slot_id=None, error_message="")
    result.stage = "mutated"
    stored = store.get_task(1)
    assert stored == dataclasses.replace(
        full_task(1), has_changes=True, slot_id=None, error_message="", version=4
    )
    assert store.cas_task(1, 4) == dataclasses.replace(stored, version=5)  # no changes: a bump


def test_cas_task_on_a_missing_task_is_none(store):
    assert store.cas_task(99, 0, status=TaskStatus.RUNNING) is None
    assert store.get_task(99) is None


def test_cas_task_owns_the_version(store):
    store.insert_task(task(1))
    assert store.cas_task(1, 0, version=40).version == 1


def test_cas_task_refuses_an_unknown_field(store):
    store.insert_task(task(1))
    with pytest.raises(TypeError):
        store.cas_task(1, 0, no_such_field=1)
    assert store.get_task(1) == task(1)


def test_cas_task_refuses_a_bad_change_whatever_the_version_and_before_any_write(store):
    """A misspelt field or an id change is a bug in the caller, refused by every store on
    every call: not only when the compare-and-set would have won (the simulation hid a typo
    behind a stale version that the live service would crash on), and without using up an
    injected write failure (the call is not a write)."""
    store.insert_task(task(1))
    for task_id, version in ((1, 0), (1, 7), (99, 0)):
        with pytest.raises(TypeError, match="no_such_field"):
            store.cas_task(task_id, version, no_such_field=1)
        with pytest.raises(ValueError, match="id"):
            store.cas_task(task_id, version, id=2)
    store.fail_next_writes(1)
    with pytest.raises(TypeError):
        store.cas_task(1, 0, no_such_field=1)
    with pytest.raises(ValueError):
        store.cas_task(1, 0, id=2)
    with pytest.raises(StoreWriteError):  # the armed failure is still there
        store.cas_task(1, 0, stage="x")
    assert store.get_task(1) == task(1)


# Injected write failures.

CHECKED_WRITES = {
    "insert_task": lambda s: s.insert_task(task(2)),
    "save_task": lambda s: s.save_task(dataclasses.replace(task(1), stage="x")),
    "cas_task": lambda s: s.cas_task(1, 0, stage="x"),
    "save_workspace": lambda s: s.save_workspace(full_workspace("ws-9")),
    "put_agent": lambda s: s.put_agent(agent("a-9")),
    "ping_agent": lambda s: s.ping_agent("a-1", "offline", 5.0),
    "put_plan": lambda s: s.put_plan(plan(1)),
}


def seeded(store) -> None:
    store.insert_task(task(1))
    store.put_workspace(Workspace("ws-1"))
    store.put_agent(agent("a-1"))


@pytest.mark.parametrize("write", sorted(CHECKED_WRITES))
def test_fail_next_writes_fails_exactly_that_many_and_changes_nothing(store, write):
    seeded(store)
    before = snapshot(store)
    store.fail_next_writes(2)
    for _ in range(2):
        with pytest.raises(StoreWriteError, match="injected write failure"):
            CHECKED_WRITES[write](store)
        assert snapshot(store) == before
    CHECKED_WRITES[write](store)  # the third goes through
    assert snapshot(store) != before
    assert store.failures.failed == 2


@pytest.mark.parametrize("write", sorted(CHECKED_WRITES))
def test_fail_writes_at_rate_one_fails_every_write_until_healed(store, write):
    seeded(store)
    before = snapshot(store)
    store.fail_writes(1.0, random.Random(7))
    for _ in range(3):
        with pytest.raises(StoreWriteError, match=r"rate 1\.0"):
            CHECKED_WRITES[write](store)
    assert snapshot(store) == before
    store.heal()
    CHECKED_WRITES[write](store)
    assert snapshot(store) != before


def test_a_failure_rate_is_drawn_from_the_given_rng(store):
    """Same seed, same failing writes: fault windows stay reproducible."""
    store.fail_writes(0.5, random.Random(3))
    outcomes = []
    for i in range(1, 21):
        try:
            store.insert_task(task(i))
            outcomes.append(True)
        except StoreWriteError:
            outcomes.append(False)
    rng = random.Random(3)
    assert outcomes == [not rng.random() < 0.5 for _ in range(20)]
    assert [t.id for t in store.list_tasks()] == [i for i, ok in enumerate(outcomes, 1) if ok]


def test_a_failure_rate_outside_zero_to_one_is_refused(store):
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        store.fail_writes(1.5, random.Random(0))


def test_setup_writes_and_agent_deletes_are_not_fault_injected(store):
    """As in MemoryStore: put_workspace, put_pool and delete_agent skip the failure plan."""
    store.put_agent(agent("a-1"))
    store.fail_writes(1.0, random.Random(0))
    store.put_workspace(full_workspace())
    store.put_pool(full_pool())
    store.delete_agent("a-1")
    assert store.get_workspace("ws-1") == full_workspace()
    assert store.get_pool("pool-1") == full_pool()
    assert store.list_agents() == []
    assert store.failures.failed == 0


# Workspaces, pools, agents, plans.


def test_workspaces_round_trip_are_listed_by_id_and_saved_whole(store):
    store.put_workspace(Workspace("ws-b"))
    store.put_workspace(full_workspace("ws-a"))
    assert typed(store.get_workspace("ws-a")) == typed(full_workspace("ws-a"))
    assert [w.id for w in store.list_workspaces()] == ["ws-a", "ws-b"]
    unlocked = dataclasses.replace(
        full_workspace("ws-a"), is_locked=False, locked_by=None, locked_at=None
    )
    store.save_workspace(unlocked)
    assert store.get_workspace("ws-a") == unlocked
    store.get_workspace("ws-a").is_locked = True  # a copy
    assert store.get_workspace("ws-a") == unlocked
    assert store.get_workspace("ws-none") is None


def test_pools_round_trip_with_their_freeze_windows(store):
    store.put_pool(full_pool("pool-b"))
    store.put_pool(dataclasses.replace(full_pool("pool-a"), freeze_windows=()))
    got = store.get_pool("pool-b")
    assert typed(got) == typed(full_pool("pool-b"))
    assert got.freeze_windows[1].contains(0.0)  # crosses midnight, still a FreezeWindow
    assert [p.id for p in store.list_pools()] == ["pool-a", "pool-b"]
    assert store.get_pool("pool-a").freeze_windows == ()
    assert store.get_pool("pool-none") is None


def test_agents_round_trip_filter_by_pool_and_delete(store):
    store.put_agent(agent("a-2", "pool-1"))
    store.put_agent(agent("a-1", "pool-2"))
    store.put_agent(agent("a-3", "pool-1"))
    assert store.get_agent("a-2") == agent("a-2", "pool-1")
    assert [a.id for a in store.list_agents()] == ["a-1", "a-2", "a-3"]
    assert [a.id for a in store.list_agents("pool-1")] == ["a-2", "a-3"]
    store.put_agent(AgentRow("a-2", "pool-1", "pod-x", status="offline", last_ping_at=9.0))
    assert store.get_agent("a-2").status == "offline"
    store.delete_agent("a-2")
    store.delete_agent("a-never")  # deleting a missing agent is not an error
    assert [a.id for a in store.list_agents()] == ["a-1", "a-3"]
    assert store.get_agent("a-2") is None


def test_a_ping_writes_status_and_last_ping_only_and_needs_the_row(store):
    store.put_agent(AgentRow("a-1", "pool-1", "pod-a", status="offline", last_ping_at=1.0))
    assert store.ping_agent("a-1", "online", 12.5) is True
    assert store.get_agent("a-1") == AgentRow("a-1", "pool-1", "pod-a", "online", 12.5)
    store.fail_next_writes(1)
    assert store.ping_agent("a-gone", "online", 13.0) is False  # no row: no write, no failure drawn
    assert [a.id for a in store.list_agents()] == ["a-1"]
    with pytest.raises(StoreWriteError):
        store.ping_agent("a-1", "offline", 14.0)  # the planned failure is still due
    assert store.get_agent("a-1").last_ping_at == 12.5


def test_plans_round_trip_and_are_replaced_per_task(store):
    store.put_plan(plan(4, "sha256:one"))
    store.put_plan(plan(4, "sha256:two"))
    assert store.get_plan(4) == plan(4, "sha256:two")
    assert store.get_plan(5) is None


def test_text_keys_are_listed_in_code_point_order_whatever_the_database_collation(store):
    """Key order is Python's `sorted`, MemoryStore's, never a linguistic collation's (a
    PostgreSQL database created under en-US puts "ws_a" before "WS-a" before "ws-b")."""
    ids = ["ws-b", "WS-a", "ws_a", "ws-a", "Ws-c", "ws-ä", "ws-z"]
    for i in ids:
        store.put_workspace(Workspace(i))
        store.put_pool(dataclasses.replace(full_pool(i), freeze_windows=()))
        store.put_agent(agent(i, "pool-1"))
    assert [w.id for w in store.list_workspaces()] == sorted(ids)
    assert [p.id for p in store.list_pools()] == sorted(ids)
    assert [a.id for a in store.list_agents()] == sorted(ids)
    assert [a.id for a in store.list_agents("pool-1")] == sorted(ids)
