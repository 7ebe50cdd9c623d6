"""What an agent's heartbeat says it runs, counted the way the seed's agent counts.

A plan_and_apply occupies `apply_running` in *either* phase: the seed keeps one
plan_and_apply per agent from the plan to the end of the apply. A plain plan adds one to
`plan_running`; a drift check counts toward neither (seed-system.md §2.2). The seed's
`IsAgentAvailable` reads nothing else, so the simulated agents, the scripted test world and
the live agent all report through this one rule: a dispatch decision sees the same numbers
in every world.

Simplified: the seed's agent keeps `apply_running` as a flag that the end of *any*
plan_and_apply clears, so with two of them running (only after a double dispatch, F7, which
the checker has already flagged) it reports false while one still runs; we count from the
runs and report true.
"""

from __future__ import annotations

from collections.abc import Iterable

from scheduler.model import TaskType

PLAN_LIMIT = 3
"""The plans an agent may run at once: the server's `PlanLimit` for a new connection
(seed-system.md §2.2). The seed reads it from the heartbeat; the reference places by it;
the checker's `agent_capacity` judges by it."""


def load(task_types: Iterable[TaskType | None]) -> tuple[int, bool]:
    """(plan_running, apply_running) for an agent running tasks of these types."""
    plan_running, apply_running = 0, False
    for t in task_types:
        if t is TaskType.PLAN:
            plan_running += 1
        elif t is TaskType.PLAN_AND_APPLY:
            apply_running = True
    return plan_running, apply_running
