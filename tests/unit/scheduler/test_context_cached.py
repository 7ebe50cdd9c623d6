"""`Context.cached`: one read per store revision, or per revision of the tables named."""

from __future__ import annotations

import random

from scheduler.core import Context
from scheduler.model import AgentRow, Task, TaskType, Workspace
from scheduler.settings import Settings
from scheduler.stores.memory import MemoryStore
from scheduler.stores.sqlite import SqliteStore


def context(store) -> Context:
    return Context(store=store, cluster=None, agents=None, timer=None, history=None,
                   rng=random.Random(0), settings=Settings())


def counting(store):
    reads = []

    def read():
        reads.append(1)
        return [t.id for t in store.list_tasks()]
    return read, reads


def add_task(store, task_id: int) -> None:
    store.insert_task(Task(id=task_id, workspace_id="ws-1", task_type=TaskType.PLAN))


def test_a_scan_of_named_tables_survives_writes_to_other_tables():
    store = MemoryStore()
    store.put_workspace(Workspace("ws-1", pool_id="pool-1"))
    add_task(store, 1)
    ctx = context(store)
    read, reads = counting(store)
    assert ctx.cached("tasks", read, tables=("tasks",)) == [1]
    store.put_agent(AgentRow("agent-1", "pool-1", "pod-1"))  # a heartbeat's write
    assert ctx.cached("tasks", read, tables=("tasks",)) == [1]
    assert len(reads) == 1
    add_task(store, 2)
    assert ctx.cached("tasks", read, tables=("tasks",)) == [1, 2]
    assert len(reads) == 2


def test_a_scan_without_tables_is_redone_after_any_write():
    store = MemoryStore()
    add_task(store, 1)
    ctx = context(store)
    read, reads = counting(store)
    ctx.cached("all", read)
    ctx.cached("all", read)
    store.put_agent(AgentRow("agent-1", "pool-1", "pod-1"))
    ctx.cached("all", read)
    assert len(reads) == 2


def test_a_store_without_revisions_is_read_every_time(tmp_path):
    with SqliteStore(tmp_path / "store.db") as store:  # other replicas may write it
        add_task(store, 1)
        ctx = context(store)
        read, reads = counting(store)
        for _ in range(3):
            assert ctx.cached("tasks", read, tables=("tasks",)) == [1]
        assert len(reads) == 3


def test_a_table_version_moves_with_every_write_to_any_of_its_tables():
    store = MemoryStore()
    seen = {store.revision_of("tasks", "workspaces")}
    store.put_workspace(Workspace("ws-1", pool_id="pool-1"))
    seen.add(store.revision_of("tasks", "workspaces"))
    add_task(store, 1)
    seen.add(store.revision_of("tasks", "workspaces"))
    store.put_agent(AgentRow("agent-1", "pool-1", "pod-1"))
    seen.add(store.revision_of("tasks", "workspaces"))
    assert len(seen) == 3
