"""The one rule every store applies to a `cas_task` call before anything else."""

from __future__ import annotations

import dataclasses
from typing import Any

from scheduler.model import Task

TASK_FIELDS = frozenset(f.name for f in dataclasses.fields(Task))


def cas_changes(task_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """The changes a `cas_task` applies: `version` dropped (the store owns it), and a
    misspelt field (`TypeError`) or an id (`ValueError`, the key) refused.

    Checked on every call, before the failure plan and the version comparison: a bad
    call is a bug in the caller, and it must fail the same way in the simulation as in
    the live service, whether or not the compare-and-set would have won.
    """
    changes.pop("version", None)
    unknown = sorted(changes.keys() - TASK_FIELDS)
    if unknown:
        raise TypeError(f"cas_task: Task has no field(s) {', '.join(unknown)}")
    if "id" in changes:
        raise ValueError(f"cas_task cannot change a task's id (task {task_id}): it is the key")
    return changes
