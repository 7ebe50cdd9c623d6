"""The agents' Terraform backend (`unstuck serve --backend-dir`) as the live core reads it,
with its read failures made visible.

Why: the reference waits on a backend it cannot read until the run timeout (the backend may
hold the commit, and a guess could fail an apply that changed the infrastructure). A
mistyped or unmounted `--backend-dir` would then show only as silent applies that take an
hour to settle. Each failed read is counted (`unstuck_state_read_errors_total`), and logged
when its message changes, and once more when reads work again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from scheduler.agent.backend import Backend
from scheduler.ports import ApplyOutcome, StateReadError

log = logging.getLogger("unstuck.service")


class StateReader:
    def __init__(self, backend: Backend, on_error: Callable[[], None] = lambda: None) -> None:
        self.backend = backend
        self.on_error = on_error
        self.failing: str | None = None  # the last failure's message, until a read works

    def apply_outcome(self, workspace_id: str, task_id: int, fence: int) -> ApplyOutcome:
        try:
            outcome = self.backend.apply_outcome(workspace_id, task_id, fence)
        except StateReadError as err:
            self.on_error()
            if str(err) != self.failing:
                log.warning("cannot read the state backend (silent applies wait for it until "
                            "their run timeout): %s", err)
                self.failing = str(err)
            raise
        if self.failing is not None:
            log.warning("the state backend at %s can be read again", self.backend.root)
            self.failing = None
        return outcome
