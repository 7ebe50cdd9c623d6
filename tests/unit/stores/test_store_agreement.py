"""Differential test: random write sequences leave MemoryStore and SqliteStore identical.

MemoryStore is the reference semantics. Every rule runs the same call on both stores and
requires the same outcome (the same return value, or the same exception type); after
every step the whole readable state must be equal. Injected failures are included: each
store gets its own `random.Random` with the same seed, so both fail the same writes.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from scheduler.model import (
    AgentRow,
    ExecutionMode,
    FreezeWindow,
    PlanArtifact,
    Pool,
    Task,
    TaskStatus,
    TaskType,
    Workspace,
)
from scheduler.ports import StoreWriteError
from scheduler.stores.memory import MemoryStore
from scheduler.stores.sqlite import SqliteStore

from .records import snapshot

ids = st.integers(min_value=1, max_value=6)
workspace_ids = st.sampled_from(["ws-a", "ws-b", "ws-\u00e9"])
times = st.floats(allow_nan=False, width=64)
small_text = st.text(max_size=6)
optional_text = st.none() | small_text

tasks = st.builds(
    Task,
    id=ids,
    workspace_id=workspace_ids,
    task_type=st.sampled_from(TaskType),
    status=st.sampled_from(TaskStatus),
    stage=small_text,
    execution_mode=st.sampled_from(ExecutionMode),
    created_at=times,
    started_at=st.none() | times,
    agent_id=optional_text,
    slot_id=st.none() | st.integers(0, 3),
    retry_count=st.integers(0, 5),
    has_changes=st.none() | st.booleans(),
    apply_confirmed_by=optional_text,
    version=st.integers(0, 5),
    fence=st.integers(0, 5),
)

task_changes = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(TaskStatus),
        "stage": small_text,
        "agent_id": optional_text,
        "k8s_pod_name": small_text,
        "slot_id": st.none() | st.integers(0, 3),
        "has_changes": st.none() | st.booleans(),
        "completed_at": st.none() | times,
        "fence": st.integers(0, 9),
        "attempts": st.integers(0, 9),
        "version": st.integers(0, 9),  # ignored by both: the store owns version
    },
)

workspaces = st.builds(
    Workspace,
    id=workspace_ids,
    pool_id=st.none() | st.just("pool-1"),
    is_locked=st.booleans(),
    locked_by=optional_text,
    locked_at=st.none() | times,
    lock_task_id=st.none() | ids,
)

pools = st.builds(
    Pool,
    id=st.sampled_from(["pool-1", "pool-2"]),
    min_replicas=st.integers(0, 3),
    freeze_windows=st.lists(st.builds(FreezeWindow, times, times), max_size=2).map(tuple),
    one_time_unfreeze_until=st.none() | times,
    manager=st.sampled_from(["bare", "deployment"]),
)

agents = st.builds(
    AgentRow,
    id=st.sampled_from(["a-1", "a-2", "a-3"]),
    pool_id=st.sampled_from(["pool-1", "pool-2"]),
    name=small_text,
    status=st.sampled_from(["online", "offline"]),
    last_ping_at=times,
)

plans = st.builds(PlanArtifact, task_id=ids, digest=small_text, created_at=times)


def outcome(call):
    try:
        return ("ok", call())
    except (StoreWriteError, ValueError, TypeError) as exc:
        return ("raised", type(exc).__name__)


class StoresAgree(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="unstuck-store-"))
        self.memory = MemoryStore()
        self.sqlite = SqliteStore(self.dir / "state.db")
        self.copies: list[Task] = []  # tasks read earlier: saving one is a stale write

    def teardown(self) -> None:
        self.sqlite.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def both(self, call):
        expected = outcome(lambda: call(self.memory))
        assert outcome(lambda: call(self.sqlite)) == expected
        return expected

    @rule(task=tasks)
    def insert_task(self, task):
        self.both(lambda s: s.insert_task(task))

    @rule(task=tasks)
    def save_task(self, task):
        self.both(lambda s: s.save_task(task))

    @rule(task_id=ids)
    def read_task(self, task_id):
        kind, task = self.both(lambda s: s.get_task(task_id))
        if task is not None:
            self.copies.append(task)

    @precondition(lambda self: self.copies)
    @rule(data=st.data(), changes=task_changes)
    def save_an_earlier_copy(self, data, changes):
        copy = data.draw(st.sampled_from(self.copies))
        for name, value in changes.items():
            setattr(copy, name, value)
        self.both(lambda s: s.save_task(copy))

    @rule(task_id=ids, expected_version=st.integers(0, 6), changes=task_changes)
    def cas_task(self, task_id, expected_version, changes):
        self.both(lambda s: s.cas_task(task_id, expected_version, **changes))

    @rule(task_id=ids, changes=task_changes)
    def cas_task_at_the_current_version(self, task_id, changes):
        current = self.memory.get_task(task_id)
        version = current.version if current is not None else 0
        self.both(lambda s: s.cas_task(task_id, version, **changes))

    @rule(
        workspace_id=st.none() | workspace_ids,
        statuses=st.none() | st.sets(st.sampled_from(TaskStatus)),
    )
    def list_tasks(self, workspace_id, statuses):
        self.both(lambda s: s.list_tasks(workspace_id=workspace_id, statuses=statuses))

    @rule(workspace=workspaces, checked=st.booleans())
    def write_workspace(self, workspace, checked):
        self.both(lambda s: (s.save_workspace if checked else s.put_workspace)(workspace))

    @rule(pool=pools)
    def put_pool(self, pool):
        self.both(lambda s: s.put_pool(pool))

    @rule(agent=agents)
    def put_agent(self, agent):
        self.both(lambda s: s.put_agent(agent))

    @rule(agent_id=st.sampled_from(["a-1", "a-2", "a-3"]), status=st.sampled_from(["online", "offline"]),
          at=times)
    def ping_agent(self, agent_id, status, at):
        self.both(lambda s: s.ping_agent(agent_id, status, at))

    @rule(agent_id=st.sampled_from(["a-1", "a-2", "a-3"]))
    def delete_agent(self, agent_id):
        self.both(lambda s: s.delete_agent(agent_id))

    @rule(artifact=plans)
    def put_plan(self, artifact):
        self.both(lambda s: s.put_plan(artifact))

    @rule(n=st.integers(0, 3))
    def fail_next_writes(self, n):
        self.both(lambda s: s.fail_next_writes(n))

    @rule(rate=st.sampled_from([0.3, 1.0]), seed=st.integers(0, 2**32))
    def fail_writes(self, rate, seed):
        self.both(lambda s: s.fail_writes(rate, random.Random(seed)))

    @rule()
    def heal(self):
        self.both(lambda s: s.heal())

    @invariant()
    def same_state(self):
        assert snapshot(self.sqlite) == snapshot(self.memory)
        assert self.sqlite.failures.failed == self.memory.failures.failed


StoresAgree.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,  # an fsync per commit: latency is the disk's, not the code's
    suppress_health_check=[HealthCheck.too_slow],
)
test_stores_agree = StoresAgree.TestCase
