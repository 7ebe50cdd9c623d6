"""The in-memory store of the simulation: dicts of copies, with compare-and-set."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from scheduler.model import AgentRow, PlanArtifact, Pool, Task, TaskStatus, Workspace
from scheduler.stores.cas import cas_changes
from scheduler.stores.failures import FailureInjection, WriteFailures


class MemoryStore(FailureInjection):
    def __init__(self) -> None:
        self.failures = WriteFailures()
        self._tasks: dict[int, Task] = {}
        # Non-terminal task ids by status: the schedulers scan active tasks every few
        # seconds, and a day of history holds thousands of finished ones.
        self._by_status: dict[TaskStatus, set[int]] = {}
        self._by_workspace: dict[str, set[int]] = {}
        self._workspaces: dict[str, Workspace] = {}
        self._pools: dict[str, Pool] = {}
        self._agents: dict[str, AgentRow] = {}
        self._plans: dict[int, PlanArtifact] = {}
        self._next_id = 1
        # Bumped by every write: a reader that saw revision r and sees r again knows
        # nothing changed in between (the reference skips reconciles that would be no-ops).
        self.revision = 0
        # The same, per table: a scan of tasks need not be redone because a heartbeat
        # wrote an agent row (see `Context.cached`).
        self._revisions = dict.fromkeys(("tasks", "workspaces", "pools", "agents", "plans"), 0)

    def revision_of(self, *tables: str) -> int:
        """A version of `tables` ("tasks", "workspaces", "pools", "agents", "plans"): the sum
        of their write counters, which only grow, so it moves with any write to any of them.
        A plain loop: the caches of a simulated day ask this some 400,000 times."""
        revisions, n = self._revisions, 0
        for table in tables:
            n += revisions[table]
        return n

    def _wrote(self, table: str) -> None:
        self.revision += 1
        self._revisions[table] += 1

    # Tasks.
    def next_task_id(self) -> int:
        return self._next_id

    def insert_task(self, task: Task) -> None:
        self.failures.check("insert task")
        if task.id in self._tasks:
            raise ValueError(f"task {task.id} already exists")
        self._tasks[task.id] = task.copy()
        self._index(None, self._tasks[task.id])
        self._next_id = max(self._next_id, task.id + 1)
        self._wrote("tasks")

    def get_task(self, task_id: int) -> Task | None:
        t = self._tasks.get(task_id)
        return t.copy() if t is not None else None

    def list_tasks(
        self,
        *,
        workspace_id: str | None = None,
        statuses: Iterable[TaskStatus] | None = None,
    ) -> list[Task]:
        tasks = self._tasks
        if workspace_id is not None:
            ids = self._by_workspace.get(workspace_id, ())
            if statuses is not None:
                wanted = frozenset(statuses)
                ids = [i for i in ids if tasks[i].status in wanted]
        elif statuses is not None:
            ids = [i for st in frozenset(statuses) for i in self._by_status.get(st, ())]
        else:
            ids = tasks
        return [tasks[i].copy() for i in sorted(ids)]

    def _index(self, old: Task | None, new: Task) -> None:
        if old is not None:
            self._by_status.get(old.status, set()).discard(old.id)
            self._by_workspace.get(old.workspace_id, set()).discard(old.id)
        self._by_status.setdefault(new.status, set()).add(new.id)
        self._by_workspace.setdefault(new.workspace_id, set()).add(new.id)

    def save_task(self, task: Task) -> None:
        self.failures.check("save task")
        stored = task.copy()
        old = self._tasks.get(task.id)
        stored.version = (old.version if old is not None else task.version) + 1
        self._tasks[task.id] = stored
        self._index(old, stored)
        self._wrote("tasks")

    def cas_task(self, task_id: int, expected_version: int, **changes) -> Task | None:
        cas_changes(task_id, changes)
        self.failures.check("cas task")
        old = self._tasks.get(task_id)
        if old is None or old.version != expected_version:
            return None
        new = dataclasses.replace(old, **changes, version=old.version + 1)
        self._tasks[task_id] = new
        self._index(old, new)
        self._wrote("tasks")
        return new.copy()

    # Workspaces.
    def put_workspace(self, workspace: Workspace) -> None:
        self._workspaces[workspace.id] = workspace.copy()
        self._wrote("workspaces")

    def get_workspace(self, workspace_id: str) -> Workspace | None:
        w = self._workspaces.get(workspace_id)
        return w.copy() if w is not None else None

    def list_workspaces(self) -> list[Workspace]:
        return [w.copy() for _, w in sorted(self._workspaces.items())]

    def save_workspace(self, workspace: Workspace) -> None:
        self.failures.check("save workspace")
        self._workspaces[workspace.id] = workspace.copy()
        self._wrote("workspaces")

    # Pools, agents, plans.
    def put_pool(self, pool: Pool) -> None:
        self._pools[pool.id] = pool.copy()
        self._wrote("pools")

    def get_pool(self, pool_id: str) -> Pool | None:
        p = self._pools.get(pool_id)
        return p.copy() if p is not None else None

    def list_pools(self) -> list[Pool]:
        return [p.copy() for _, p in sorted(self._pools.items())]

    def put_agent(self, agent: AgentRow) -> None:
        self.failures.check("put agent")
        self._agents[agent.id] = agent.copy()
        self._wrote("agents")

    def get_agent(self, agent_id: str) -> AgentRow | None:
        a = self._agents.get(agent_id)
        return a.copy() if a is not None else None

    def ping_agent(self, agent_id: str, status: str, at: float) -> bool:
        """`put_agent` of the row with these two fields changed, without the copies a read
        and a write make (a simulated day has some 80,000 heartbeats): the stored row is
        this store's own object, never handed out, so it is changed in place."""
        row = self._agents.get(agent_id)
        if row is None:
            return False
        self.failures.check("put agent")
        row.status, row.last_ping_at = status, at
        self._wrote("agents")
        return True

    def list_agents(self, pool_id: str | None = None) -> list[AgentRow]:
        return [
            a.copy()
            for _, a in sorted(self._agents.items())
            if pool_id is None or a.pool_id == pool_id
        ]

    def delete_agent(self, agent_id: str) -> None:
        self._agents.pop(agent_id, None)
        self._wrote("agents")

    def put_plan(self, artifact: PlanArtifact) -> None:
        self.failures.check("put plan")
        self._plans[artifact.task_id] = artifact
        self._wrote("plans")

    def get_plan(self, task_id: int) -> PlanArtifact | None:
        return self._plans.get(task_id)
