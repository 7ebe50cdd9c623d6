"""The inputs of the scheduler core: one small frozen dataclass per thing that can happen.

Contract: plain data, no behaviour. Each event is handed to `Scheduler.handle(event, now)`;
`now` travels beside the event, never inside it, so the same event value can be replayed at
another time. The world (SimPy model, live service, test script) decides *when* an event
happens; the core decides *what it means*.

Reports from agents carry the `fence` of the dispatch they belong to. The seed ignores it;
the reference refuses a report whose fence is stale, which is how an agent that was paused
on a lost node and wakes up later is kept from applying twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scheduler.model import TaskType


@dataclass(frozen=True)
class TaskCreated:
    workspace_id: str
    task_type: TaskType
    user: str | None = "user"
    description: str = ""


@dataclass(frozen=True)
class ConfirmApply:
    task_id: int
    user: str | None  # None reproduces the seed's F6: a confirm without a user id
    plan_digest: str | None = None  # the digest the user saw; the reference binds to it
    description: str = ""


@dataclass(frozen=True)
class CancelTask:
    task_id: int
    user: str | None = "user"


@dataclass(frozen=True)
class RunClaimed:
    """Our agent's claim to start a run (its `exec.invoke`), sent before the run does
    anything (an apply: once it holds the state lock). Refused (409) when the run is no
    longer the task's current dispatch. The reference also notes it: an apply whose agent
    went silent before claiming it never began, so it can be sent again (docs/design.md)."""

    task_id: int
    agent_id: str
    fence: int


@dataclass(frozen=True)
class PlanFinished:
    """The agent's HTTP status report at the end of a plan (UpdateTaskStatus)."""

    task_id: int
    agent_id: str
    has_changes: bool
    digest: str
    fence: int = 0


@dataclass(frozen=True)
class ApplyFinished:
    task_id: int
    agent_id: str
    ok: bool = True
    fence: int = 0
    error: str = ""


@dataclass(frozen=True)
class TaskFailed:
    task_id: int
    agent_id: str
    reason: str = "task failed"
    fence: int = 0


@dataclass(frozen=True)
class CompletionNotice:
    """The agent's C&C `task_completed` / `task_failed` message.

    It follows the HTTP report of the same phase; in seed-head it triggers an unconditional
    slot release, which is the G1 reservation race.
    """

    task_id: int
    agent_id: str
    ok: bool = True


@dataclass(frozen=True)
class PodAdded:
    pod: str
    pool_id: str
    node: str = ""


@dataclass(frozen=True)
class PodTerminating:
    pod: str


@dataclass(frozen=True)
class PodRemoved:
    pod: str


@dataclass(frozen=True)
class AgentConnected:
    agent_id: str
    pool_id: str
    pod: str
    token_ok: bool = True
    # The runs the agent holds as it (re)connects, as its heartbeats list them: the
    # scheduler may have let go of some of them (a restart forgets what it knew).
    current_tasks: tuple[int, ...] = ()


@dataclass(frozen=True)
class AgentHeartbeat:
    agent_id: str
    plan_running: int = 0
    plan_limit: int = 3
    apply_running: bool = False
    current_tasks: tuple[int, ...] = ()


@dataclass(frozen=True)
class AgentDisconnected:
    agent_id: str


@dataclass(frozen=True)
class TimerTag:
    """What a wake-up is for: a handler name and plain-data arguments."""

    name: str
    args: tuple = ()


@dataclass(frozen=True)
class TimerFired:
    tag: TimerTag


@dataclass(frozen=True)
class HeldSlot:
    """A slot the history shows a task holding: what a slot.assigned or slot.reserved row
    said, not yet undone by a slot.released row."""

    pod: str
    slot: int | None
    task: int | None
    was: str  # "running" (assigned) or "reserved"


@dataclass(frozen=True)
class Restart:
    """The scheduler process (re)started: volatile memory and in-flight timers are gone.

    `held_slots` is what the history shows the processes before this one holding, as a live
    service reads it back from its log (scheduler/service/held_slots.py). A fresh process has
    no memory to say which slots its predecessor's memory lost; a variant whose slots live
    only in memory records them as lost from this instead (the simulation keeps the policy
    object, and its memory, across a restart, so it passes nothing)."""

    held_slots: tuple[HeldSlot, ...] = ()


@dataclass(frozen=True)
class RebuildPods:
    """An operator changed the pool's K8s config (seed §3.5 RebuildIdlePods)."""

    pool_id: str


@dataclass(frozen=True)
class Outcome:
    """What the core answers to an event: an API result, for the callers that need one."""

    ok: bool = True
    status: int = 200  # the HTTP status a service would answer
    task_id: int | None = None
    message: str = ""
    data: dict = field(default_factory=dict)


# The plain "200 OK": one shared value for the handlers that answer nothing more (every
# wake-up, every heartbeat). Callers only read an Outcome.
OK = Outcome()


Event = (
    TaskCreated
    | ConfirmApply
    | CancelTask
    | RunClaimed
    | PlanFinished
    | ApplyFinished
    | TaskFailed
    | CompletionNotice
    | PodAdded
    | PodTerminating
    | PodRemoved
    | AgentConnected
    | AgentHeartbeat
    | AgentDisconnected
    | TimerFired
    | Restart
    | RebuildPods
)
