"""The in-memory store of the simulation: dicts of copies, with compare-and-set."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from scheduler.model import AgentRow, PlanArtifact, Pool, Task, TaskStatus, Workspace
from scheduler.stores.failures import FailureInjection, WriteFailures


class MemoryStore(FailureInjection):
    def __init__(self) -> None:
        self.failures = WriteFailures()
        self._tasks: dict[int, Task] = {}
        self._workspaces: dict[str, Workspace] = {}
        self._pools: dict[str, Pool] = {}
        self._agents: dict[str, AgentRow] = {}
        self._plans: dict[int, PlanArtifact] = {}
        self._next_id = 1

    # Tasks.
    def next_task_id(self) -> int:
        return self._next_id

    def insert_task(self, task: Task) -> None:
        self.failures.check("insert task")
        if task.id in self._tasks:
            raise ValueError(f"task {task.id} already exists")
        self._tasks[task.id] = task.copy()
        self._next_id = max(self._next_id, task.id + 1)

    def get_task(self, task_id: int) -> Task | None:
        t = self._tasks.get(task_id)
        return t.copy() if t is not None else None

    def list_tasks(
        self,
        *,
        workspace_id: str | None = None,
        statuses: Iterable[TaskStatus] | None = None,
    ) -> list[Task]:
        wanted = set(statuses) if statuses is not None else None
        return [
            t.copy()
            for _, t in sorted(self._tasks.items())
            if (workspace_id is None or t.workspace_id == workspace_id)
            and (wanted is None or t.status in wanted)
        ]

    def save_task(self, task: Task) -> None:
        self.failures.check("save task")
        stored = task.copy()
        old = self._tasks.get(task.id)
        stored.version = (old.version if old is not None else task.version) + 1
        self._tasks[task.id] = stored

    def cas_task(self, task_id: int, expected_version: int, **changes) -> Task | None:
        self.failures.check("cas task")
        old = self._tasks.get(task_id)
        if old is None or old.version != expected_version:
            return None
        new = dataclasses.replace(old, **changes)
        new.version = old.version + 1
        self._tasks[task_id] = new
        return new.copy()

    # Workspaces.
    def put_workspace(self, workspace: Workspace) -> None:
        self._workspaces[workspace.id] = workspace.copy()

    def get_workspace(self, workspace_id: str) -> Workspace | None:
        w = self._workspaces.get(workspace_id)
        return w.copy() if w is not None else None

    def list_workspaces(self) -> list[Workspace]:
        return [w.copy() for _, w in sorted(self._workspaces.items())]

    def save_workspace(self, workspace: Workspace) -> None:
        self.failures.check("save workspace")
        self._workspaces[workspace.id] = workspace.copy()

    # Pools, agents, plans.
    def put_pool(self, pool: Pool) -> None:
        self._pools[pool.id] = pool.copy()

    def get_pool(self, pool_id: str) -> Pool | None:
        p = self._pools.get(pool_id)
        return p.copy() if p is not None else None

    def list_pools(self) -> list[Pool]:
        return [p.copy() for _, p in sorted(self._pools.items())]

    def put_agent(self, agent: AgentRow) -> None:
        self.failures.check("put agent")
        self._agents[agent.id] = agent.copy()

    def get_agent(self, agent_id: str) -> AgentRow | None:
        a = self._agents.get(agent_id)
        return a.copy() if a is not None else None

    def list_agents(self, pool_id: str | None = None) -> list[AgentRow]:
        return [
            a.copy()
            for _, a in sorted(self._agents.items())
            if pool_id is None or a.pool_id == pool_id
        ]

    def delete_agent(self, agent_id: str) -> None:
        self._agents.pop(agent_id, None)

    def put_plan(self, artifact: PlanArtifact) -> None:
        self.failures.check("put plan")
        self._plans[artifact.task_id] = artifact

    def get_plan(self, task_id: int) -> PlanArtifact | None:
        return self._plans.get(task_id)
