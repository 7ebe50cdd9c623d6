"""`unstuck replay incident-601`: the incident's timeline under a chosen scheduler.

The script is the one the tests use (tests/quality/paths.py keeps the full family); this
module carries the incident alone so the command works from an installed package.
"""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.model import TaskStatus
from scheduler.testing import Script

INCIDENTS = ("incident-601",)

TIMELINE = (
    (5.0, "user creates plan_and_apply task 1 in ws-mb7m9ii5ey"),
    (30.0, "the agent on the first pod connects; the plan is dispatched"),
    (90.0, "the plan ends with changes: apply_pending, workspace locked, slot reserved"),
    (200.0, "the pod holding the reservation is killed (scale-down, eviction or crash)"),
    (215.0, "the user clicks Confirm Apply while the replacement pod's agent is still starting"),
    (230.0, "the replacement agent connects"),
    (4000.0, "end of replay"),
)


@dataclass(frozen=True)
class ReplayResult:
    scheduler: str
    stuck: bool
    wedged: bool
    task: dict
    workspace_locked: bool
    history_events: int


def incident_601_script(variant: str) -> Script:
    """F1-4b: the reserved pod dies, a new pod appears within 5 s, and the user confirms
    while its agent is still starting (30 s)."""
    s = Script(variant)
    s.create(5)
    s.run(150)
    s.kill_pod(200, s.pod_of_task(1))
    s.confirm(215, 1)
    return s.run(4000)


def incident_601(variant: str) -> ReplayResult:
    s = incident_601_script(variant)
    t = s.task(1)
    ws = s.workspace()
    owner = s.store.get_task(ws.lock_task_id) if ws.lock_task_id is not None else None
    stuck = t.status in (TaskStatus.APPLY_PENDING, TaskStatus.PENDING, TaskStatus.RUNNING) and t.confirmed
    wedged = ws.is_locked and (owner is None or owner.terminal or stuck)
    row = {
        "id": t.id, "workspace_id": t.workspace_id, "task_type": t.task_type.value,
        "status": t.status.value, "stage": t.stage, "execution_mode": t.execution_mode.value,
        "agent_id": t.agent_id, "k8s_pod_name": t.k8s_pod_name, "plan_task_id": t.plan_task_id,
        "apply_confirmed_by": t.apply_confirmed_by, "retry_count": t.retry_count,
        "error_message": t.error_message,
    }
    return ReplayResult(variant, stuck, wedged, row, ws.is_locked, len(s.history))
