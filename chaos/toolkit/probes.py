"""Chaos Toolkit probes for a live unstuck run: the steady state an experiment holds to.

The steady state is incident 601's negation: no confirmed task stays waiting for an apply.
The full judgment (every safety and liveness invariant, recovery latency) comes after the
experiment, from `unstuck close-run` and `unstuck gate` on the service's history
(docs/chaos.md); these probes give `chaos run` its own verdict while the run is live.
"""

from __future__ import annotations

import logging
from typing import Any

from chaos.toolkit.service import TERMINAL, Service, until

__all__ = ["stuck_tasks", "task_status", "most_applies_started"]

logger = logging.getLogger("chaostoolkit")


def _unfinished_confirms(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in tasks if t.get("apply_confirmed_at") is not None
            and t["status"] not in TERMINAL]


def stuck_tasks(within: float = 30, configuration: dict | None = None) -> int:
    """How many confirmed tasks have not ended after waiting up to `within` seconds from now
    for them (tolerance 0); each one left is logged with its status. A scheduler that
    recovers answers 0; one that lost the reservation of a confirmed task (incident 601)
    does not. Give `within` the bound the run is judged by (the scenario's
    `bounds.apply_pending_s`): the probe starts after the confirm, so it never calls a task
    stuck before the checker would."""
    waiting: list[dict[str, Any]] = []

    def none_left() -> bool:
        waiting[:] = _unfinished_confirms(svc.tasks())
        return not waiting

    with Service(configuration) as svc:
        until(none_left, within)
    for t in waiting:
        logger.warning(f"task {t['id']} of {t['workspace_id']!r} was confirmed and is still "
                       f"{t['status']} after waiting {within:g} s for it")
    return len(waiting)


def task_status(workspace: str, configuration: dict | None = None) -> str:
    """The status of the newest task of `workspace`."""
    with Service(configuration) as svc:
        return svc.newest_task(workspace)["status"]


def most_applies_started(configuration: dict | None = None) -> int:
    """The most applies any one task has started (its agents' `exec.invoke` rows of action
    apply): 1 or 0 from a scheduler that applies each confirm once, 2 after a double
    dispatch (seed-system.md F7). Give it tolerance [0, 1]. A live count of what the history
    shows; `unstuck gate` judges the same rows by the checker's `at_most_one_apply`, which
    also weighs fences and commits."""
    with Service(configuration) as svc:
        rows = svc.history()
    started: dict[int, int] = {}
    for r in rows:
        if r["kind"] == "exec.invoke" and (r.get("data") or {}).get("action") == "apply":
            started[r["task"]] = started.get(r["task"], 0) + 1
    for task, n in sorted(started.items()):
        if n > 1:
            logger.warning(f"task {task} started its apply {n} times")
    return max(started.values(), default=0)
