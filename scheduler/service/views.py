"""JSON views of store records for the API: plain dicts, times on the history's axis.

Stored times are the core's `now` (a monotonic clock plus a large offset, see `clock`);
the API shows them as seconds since the run started, the same axis as the history's `t`,
so a task's `created_at` can be read against `GET /history` directly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from enum import Enum
from typing import Any

from scheduler.model import Task, TaskStatus

TIME_FIELDS = {"created_at", "updated_at", "started_at", "completed_at", "apply_confirmed_at",
               "locked_at", "last_ping_at", "one_time_unfreeze_until"}


def record(obj: Any, to_t: Callable[[float], float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, Enum):
            value = value.value
        elif f.name in TIME_FIELDS and isinstance(value, (int, float)) and value:
            value = round(to_t(value), 6)
        elif isinstance(value, tuple):
            value = [dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for v in value]
        out[f.name] = value
    return out


def slots_from_store(tasks: list[Task]) -> dict[str, list[dict[str, Any]]]:
    """Which task holds which slot of which pod, as the store records it (the reference
    writes `k8s_pod_name` and `slot_id`; the seed never does, F10)."""
    held: dict[str, list[dict[str, Any]]] = {}
    for t in tasks:
        if t.k8s_pod_name and t.status in (TaskStatus.RUNNING, TaskStatus.APPLY_PENDING):
            held.setdefault(t.k8s_pod_name, []).append({
                "slot": t.slot_id, "task": t.id, "workspace": t.workspace_id,
                "state": "running" if t.status is TaskStatus.RUNNING else "reserved",
            })
    return held


def slots_from_memory(policy: Any) -> dict[str, list[dict[str, Any]]] | None:
    """The seed variants' in-memory slot table (`K8sPodManager`), when the policy has one."""
    mem = getattr(policy, "memory", None)
    slots = getattr(mem, "slots", None)
    pods = getattr(slots, "pods", None)
    if not isinstance(pods, dict):
        return None
    return {name: [{"slot": s.slot_id, "state": s.status.value, "task": s.task_id}
                   for s in pod.slots] for name, pod in sorted(pods.items())}


def agents_from_memory(policy: Any, to_t: Callable[[float], float]) -> dict[str, dict[str, Any]] | None:
    """The seed variants' C&C map: what the server *believes* each agent is running.

    It is fed by heartbeats and can be stale (a heartbeat sent just before a dispatch arrives
    after it and clears `apply_running`), which is how the seed sends two applies to one agent
    (F7). Operators and live tests read it to know which path a confirm will take.
    """
    mem = getattr(policy, "memory", None)
    cc = getattr(mem, "cc", None)
    if not isinstance(cc, dict):
        return None
    return {agent: {"plan_running": c.plan_running, "plan_limit": c.plan_limit,
                    "apply_running": c.apply_running,
                    "last_heartbeat": round(to_t(c.last_heartbeat), 6) if c.last_heartbeat else None}
            for agent, c in sorted(cc.items())}
