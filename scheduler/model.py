"""Task, workspace, pool, pod and agent records: the nouns of the seed system.

Contract: plain data only. No I/O, no clock, no randomness. Status and stage values are
exactly the strings the real system stores (shared/specs/seed-system.md §1), so a row
printed from our store reads like a row from the incident report.

Records are mutable dataclasses because the seed code mutates in-memory task objects and
saves them whole (that is one of its bugs, F7 "lost update"); stores hand out copies, so a
caller can never change stored state without going through the Store port.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum


def _shallow_copy(obj):
    """A field-for-field copy, like `dataclasses.replace(obj)` without re-running `__init__`.

    Stores copy every record they hand out, thousands of times per simulated minute;
    `replace` costs ~3 us per call, this ~0.25 us (giving the copy a copy of the instance
    dict is twice as fast as filling its own). Equivalent for these records: their fields
    are immutable values (str, numbers, enums, tuples) and none has `__post_init__`.
    """
    new = object.__new__(type(obj))
    new.__dict__ = obj.__dict__.copy()
    return new


class TaskType(str, Enum):
    PLAN = "plan"
    PLAN_AND_APPLY = "plan_and_apply"
    DRIFT_CHECK = "drift_check"


class TaskStatus(str, Enum):
    PENDING = "pending"
    WAITING = "waiting"
    RUNNING = "running"
    APPLY_PENDING = "apply_pending"
    PLANNED_AND_FINISHED = "planned_and_finished"
    SUCCESS = "success"
    APPLIED = "applied"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        TaskStatus.PLANNED_AND_FINISHED,
        TaskStatus.SUCCESS,
        TaskStatus.APPLIED,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
    }
)
# A task in one of these holds, or is about to take, its workspace's turn; `waiting` is not
# here because it has not been let in yet. A tuple: stores take it as an ordered filter.
ACTIVE_STATUSES = (TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.APPLY_PENDING)


class Stage:
    """Values of the free-text `stage` column (seed-system.md §1.3)."""

    PENDING = "pending"
    PLANNING = "planning"
    APPLY_PENDING = "apply_pending"
    PLANNED_AND_FINISHED = "planned_and_finished"
    COMPLETED = "completed"
    APPLYING = "applying"
    APPLIED = "applied"
    ROLLED_BACK = ""  # a failed send is rolled back with an empty stage
    DISCARDED = "discarded"  # reference only: an unconfirmed plan expired


class SlotStatus(str, Enum):
    IDLE = "idle"
    RUNNING = "running"
    RESERVED = "reserved"


class ExecutionMode(str, Enum):
    LOCAL = "local"
    AGENT = "agent"
    K8S = "k8s"


SLOTS_PER_POD = 4

# How a run trigger's task description starts ("Triggered by workspace <ws> (task #<id>)",
# RunTriggerService.createTriggeredTask); the seed's startup recovery cancels such pending
# tasks (seed-system.md §5).
RUN_TRIGGER_PREFIX = "Triggered by workspace"


@dataclass
class Task:
    id: int
    workspace_id: str
    task_type: TaskType
    status: TaskStatus = TaskStatus.PENDING
    stage: str = Stage.PENDING
    execution_mode: ExecutionMode = ExecutionMode.K8S
    created_by: str | None = None
    description: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    started_at: float | None = None
    completed_at: float | None = None
    agent_id: str | None = None
    k8s_pod_name: str = ""  # never written by the seed's push scheduler (incident 601)
    slot_id: int | None = None  # reference only: the slot recorded with the pod, for rebuilds
    retry_count: int = 0
    max_retries: int = 3
    plan_task_id: int | None = None
    plan_digest: str | None = None
    has_changes: bool | None = None
    apply_confirmed_by: str | None = None
    apply_confirmed_at: float | None = None
    confirmed_digest: str | None = None
    apply_description: str = ""
    error_message: str = ""
    # Reference-only bookkeeping; the seed never reads these.
    version: int = 0  # bumped by every compare-and-set write
    fence: int = 0  # epoch of the current dispatch; stale agent reports are refused
    attempts: int = 0  # dispatch attempts charged to the retry budget
    # The fence of the last apply run its agent claimed (`RunClaimed`), written before the
    # claim is answered: a running apply whose `claimed_fence` is not its `fence` never
    # began. Kept in the row, not in memory, so a restart or another replica knows it.
    claimed_fence: int | None = None

    def copy(self) -> Task:
        return _shallow_copy(self)

    def runs_on(self, agent_id: str, fence: int) -> bool:
        """Whether (agent, fence) is this task's current dispatch: the claim rule
        (`Context.claim`, which the service's `POST /agent/exec` invoke and the simulated
        agents ask through the core's `RunClaimed`). A run of any other waited too long (the
        task moved on: re-dispatched, cancelled, settled) and must not start."""
        return self.status is TaskStatus.RUNNING and self.fence == fence and self.agent_id == agent_id

    @property
    def confirmed(self) -> bool:
        return self.apply_confirmed_by is not None

    @property
    def claimed(self) -> bool:
        """Whether the agent of the current apply run has claimed it (the reference's
        record; see `claimed_fence`)."""
        return self.claimed_fence == self.fence

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass
class Workspace:
    id: str
    pool_id: str | None = "pool-1"
    execution_mode: ExecutionMode = ExecutionMode.K8S
    is_locked: bool = False
    locked_by: str | None = None
    lock_reason: str = ""
    locked_at: float | None = None
    lock_task_id: int | None = None  # the owner task of the lock, when a task took it

    def copy(self) -> Workspace:
        return _shallow_copy(self)


@dataclass(frozen=True)
class FreezeWindow:
    """A daily freeze window in seconds of the day; it may cross midnight."""

    start_s: float
    end_s: float

    def contains(self, second_of_day: float) -> bool:
        if self.start_s <= self.end_s:
            return self.start_s <= second_of_day < self.end_s
        return second_of_day >= self.start_s or second_of_day < self.end_s


@dataclass
class Pool:
    id: str
    min_replicas: int = 1
    max_replicas: int = 4
    freeze_windows: tuple[FreezeWindow, ...] = ()
    one_time_unfreeze_until: float | None = None
    pool_type: str = "k8s"
    manager: str = "bare"
    """Who owns the pod count: "bare" (the scheduler creates and deletes pods itself, as the
    seed does), "deployment" (a Deployment the scheduler scales with `Cluster.scale`), or
    "hpa" (a Deployment whose replica count a HorizontalPodAutoscaler owns: the scheduler never
    scales it, it exports its demand as a metric the HPA scales on, `Scheduler.metrics`)."""

    def copy(self) -> Pool:
        return _shallow_copy(self)


@dataclass
class AgentRow:
    """The `agents` table row: what the DB believes about an agent."""

    id: str
    pool_id: str
    name: str  # the pod name (IAC_AGENT_NAME)
    status: str = "online"
    last_ping_at: float = 0.0

    def copy(self) -> AgentRow:
        return _shallow_copy(self)


@dataclass(frozen=True)
class PlanArtifact:
    """The saved plan: what an apply on any pod needs, bound to its digest."""

    task_id: int
    digest: str
    created_at: float
    workspace_id: str = ""


@dataclass
class Slot:
    slot_id: int
    status: SlotStatus = SlotStatus.IDLE
    task_id: int | None = None
    task_type: TaskType | None = None
    updated_at: float = 0.0

    def copy(self) -> Slot:
        return _shallow_copy(self)


@dataclass
class ManagedPod:
    """A pod as the scheduler's slot manager sees it (seed: `K8sPodManager.pods[name]`)."""

    name: str
    pool_id: str
    agent_id: str = ""  # always "" in the seed (F10)
    created_at: float = 0.0
    last_heartbeat: float = 0.0
    slots: list[Slot] = field(default_factory=lambda: [Slot(i) for i in range(SLOTS_PER_POD)])

    def copy(self) -> ManagedPod:
        return dataclasses.replace(self, slots=[s.copy() for s in self.slots])

    @property
    def fully_idle(self) -> bool:
        idle = SlotStatus.IDLE
        for s in self.slots:
            if s.status is not idle:
                return False
        return True


@dataclass(frozen=True)
class PodInfo:
    """What the cluster reports about one pod when listed."""

    name: str
    pool_id: str
    phase: str = "Running"  # Pending | Running | Succeeded | Failed
    terminating: bool = False
    node: str = ""
    created_at: float = 0.0
    deletion_cost: int = 0
