"""The ports through which the scheduler core acts on the world.

Contract: protocols and the errors they may raise; nothing here does I/O. The SimPy world,
the live service and test scripts each provide implementations. The core calls them
synchronously and treats every failure as a value it must handle (or, in the seed
variants, ignore exactly as the Go code does).

- `Store`: tasks, workspaces and their locks, pools, agent rows and plan artifacts. Reads
  return copies. `save_task` is the seed's whole-row GORM `Save` (last writer wins);
  `cas_task` is the reference's compare-and-set keyed by `Task.version`. Any write may raise
  `StoreWriteError` when the store has been told to fail writes.
- `Cluster`: create, delete, list, scale and annotate agent pods.
- `Agents`: deliver a `run_task` to an agent; raises `AgentSendError` when it cannot.
- `Timer`: ask for a `TimerFired(tag)` event at a given time. Wake-ups are volatile: a
  scheduler restart loses them, as it loses the seed's `scheduleRetry` goroutines.
- `HistorySink`: append a history event.
- `StateBackend`: read what the Terraform state says of one apply run (the reference asks it
  when the run's agent is lost, instead of guessing). Reads may raise `StateReadError`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from scheduler.events import TimerTag
from scheduler.history import HistoryEvent
from scheduler.model import (
    AgentRow,
    PlanArtifact,
    PodInfo,
    Pool,
    Task,
    TaskStatus,
    TaskType,
    Workspace,
)


class PortError(Exception):
    """Root of the errors a port may raise into the core."""


class StoreWriteError(PortError):
    """A write did not reach the store (injected fault, lost connection, constraint)."""


class StoreReadError(PortError):
    """A read could not reach the store (lost connection that would not come back, a
    damaged database file); the message names the database and what to do."""


class ClusterError(PortError):
    """The cluster refused or failed a request."""


class AgentSendError(PortError):
    """A run_task could not be delivered (agent not connected, broken socket, timeout)."""


class StateReadError(PortError):
    """The state backend could not be read (unreachable, unreadable, corrupt)."""


@dataclass(frozen=True)
class RunTask:
    """The `run_task` message: what an agent needs to run one phase of one task."""

    task_id: int
    workspace_id: str
    action: str  # "plan" | "apply"
    fence: int = 0
    plan_digest: str | None = None
    pod: str | None = None
    slot: int | None = None
    # What the agent would learn by loading the task: its heartbeat counts by type
    # (scheduler/heartbeat.py). A str Enum, so it goes on the wire as its value.
    task_type: TaskType | None = None


class Store(Protocol):
    """Durable state. A store may also offer `revision: int`, a counter that changes with
    every write it commits (MemoryStore does): a policy that saw the same revision twice
    knows nothing was written in between. A store without one (the SQL stores, where other
    replicas write too) makes such policies look every time."""

    # Tasks.
    def next_task_id(self) -> int: ...
    def insert_task(self, task: Task) -> None: ...
    def get_task(self, task_id: int) -> Task | None: ...
    def list_tasks(
        self,
        *,
        workspace_id: str | None = None,
        statuses: Iterable[TaskStatus] | None = None,
    ) -> list[Task]: ...
    def save_task(self, task: Task) -> None: ...
    def cas_task(self, task_id: int, expected_version: int, **changes) -> Task | None: ...

    # Workspaces and their locks.
    def put_workspace(self, workspace: Workspace) -> None: ...
    def get_workspace(self, workspace_id: str) -> Workspace | None: ...
    def list_workspaces(self) -> list[Workspace]: ...
    def save_workspace(self, workspace: Workspace) -> None: ...

    # Pools, agents, plans.
    def put_pool(self, pool: Pool) -> None: ...
    def get_pool(self, pool_id: str) -> Pool | None: ...
    def list_pools(self) -> list[Pool]: ...
    def put_agent(self, agent: AgentRow) -> None: ...
    def get_agent(self, agent_id: str) -> AgentRow | None: ...
    # UPDATE agents SET status, last_ping_at WHERE id: what a heartbeat or a disconnect
    # writes. False (and nothing written, no failure drawn) when the row does not exist.
    def ping_agent(self, agent_id: str, status: str, at: float) -> bool: ...
    def list_agents(self, pool_id: str | None = None) -> list[AgentRow]: ...
    def delete_agent(self, agent_id: str) -> None: ...
    def put_plan(self, artifact: PlanArtifact) -> None: ...
    def get_plan(self, task_id: int) -> PlanArtifact | None: ...


class Cluster(Protocol):
    def create_pod(self, pool_id: str, name: str) -> None: ...
    # `scale_down`: the pool's size rule asks for it (a scale-down, a freeze window), not a
    # repair; the simulation credits only such deletions to a pool-scale-down in force.
    def delete_pod(self, name: str, *, scale_down: bool = False) -> None: ...
    def list_pods(self, pool_id: str) -> list[PodInfo]: ...
    def scale(self, pool_id: str, replicas: int) -> None: ...
    def annotate_pod(self, name: str, annotations: dict[str, str]) -> None: ...


class Agents(Protocol):
    def send_run_task(self, agent_id: str, run: RunTask) -> None: ...
    def send_cancel(self, agent_id: str, task_id: int) -> None: ...


class Timer(Protocol):
    def wake_at(self, when: float, tag: TimerTag) -> None: ...


class HistorySink(Protocol):
    def append(self, event: HistoryEvent) -> None: ...


class ApplyOutcome(enum.Enum):
    """What the state backend says of the apply run `(task, fence)`: the backend, not the
    scheduler, is where an apply becomes a fact, so only it can say whether a run whose
    agent went silent changed anything."""

    COMMITTED = "committed"  # the state records the run's apply
    # The run holds the workspace's state lock under a lease that has not expired: it is
    # working (or frozen for less than the lease) and may still commit.
    IN_DOUBT = "in doubt"
    # No commit recorded and no live lease: the run did not commit, and fenced by the lease
    # it cannot any more. (Our agent takes the lock before it claims the run, so a run not
    # seen holding it claims after this read, and is refused: the task has moved on.)
    NOT_COMMITTED = "not committed"


class StateBackend(Protocol):
    def apply_outcome(self, workspace_id: str, task_id: int, fence: int) -> ApplyOutcome: ...
