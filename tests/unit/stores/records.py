"""Sample records and a whole-store snapshot shared by the store tests."""

from __future__ import annotations

import dataclasses

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


def full_task(task_id: int = 7, workspace_id: str = "ws-1") -> Task:
    """A task with every field away from its default, so a dropped column cannot hide."""
    return Task(
        id=task_id,
        workspace_id=workspace_id,
        task_type=TaskType.PLAN_AND_APPLY,
        status=TaskStatus.APPLY_PENDING,
        stage="apply_pending",
        execution_mode=ExecutionMode.AGENT,
        created_by="alice",
        description="change the vpc",
        created_at=1.5,
        updated_at=2.25,
        started_at=3.0,
        completed_at=4.125,
        agent_id="agent-9",
        k8s_pod_name="iac-agent-pool-1-abc",
        slot_id=2,
        retry_count=1,
        max_retries=5,
        plan_task_id=6,
        plan_digest="sha256:aa",
        has_changes=False,
        apply_confirmed_by="bob",
        apply_confirmed_at=5.5,
        confirmed_digest="sha256:aa",
        apply_description="go",
        error_message="boom",
        version=3,
        fence=2,
        attempts=1,
    )


def full_workspace(workspace_id: str = "ws-1") -> Workspace:
    return Workspace(
        id=workspace_id,
        pool_id=None,
        execution_mode=ExecutionMode.LOCAL,
        is_locked=True,
        locked_by="task-7",
        lock_reason="apply",
        locked_at=9.75,
        lock_task_id=7,
    )


def full_pool(pool_id: str = "pool-1") -> Pool:
    return Pool(
        id=pool_id,
        min_replicas=2,
        max_replicas=8,
        freeze_windows=(FreezeWindow(3600.0, 7200.5), FreezeWindow(82800, 1800)),
        one_time_unfreeze_until=123.25,
        pool_type="static",
        manager="deployment",
    )


def agent(agent_id: str, pool_id: str = "pool-1") -> AgentRow:
    return AgentRow(id=agent_id, pool_id=pool_id, name=f"pod-{agent_id}", last_ping_at=4.5)


def plan(task_id: int, digest: str = "sha256:aa") -> PlanArtifact:
    return PlanArtifact(task_id=task_id, digest=digest, created_at=8.0, workspace_id="ws-1")


def typed(record) -> list[tuple[str, type, object]]:
    """Field name, type and value: stricter than ==, where 1 == True and 0 == 0.0."""
    return [
        (f.name, type(v), v) for f in dataclasses.fields(record) for v in [getattr(record, f.name)]
    ]


def snapshot(store) -> tuple:
    """Everything a store holds that a caller can read, for "nothing changed" checks."""
    tasks = store.list_tasks()
    return (
        store.next_task_id(),
        tasks,
        store.list_workspaces(),
        store.list_pools(),
        store.list_agents(),
        [store.get_plan(i) for i in range(16)],  # tests keep plan task ids below 16
    )
