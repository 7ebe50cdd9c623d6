"""What the checker returns: violations with witnesses, and the verdict over one history.

Records are frozen so a verdict can be cached, compared across runs and shipped to a process
pool. A `Violation` names the invariant, the task and workspace it is about, the time it
became a violation, and its witness: the `seq` numbers of the shortest chain of history rows
that explains it, in history order (docs/checker.md gives the algorithm). Keeping only seq
numbers keeps a verdict small; `Verdict.witness_rows` turns them back into rows for a report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

SAFETY = (
    "no_apply_without_confirmation",
    "at_most_one_apply_per_confirmation",
    "per_workspace_serialization",
    "no_lost_task",
    "no_unrecorded_apply",
    "no_stale_plan_apply",
    "agent_capacity",
)
LIVENESS = (
    "apply_pending_bound",
    "drained",
    "no_wedged_workspace",
)
INVARIANTS = SAFETY + LIVENESS

# A task counts as "stuck" when one of these names it: it sat confirmed in apply_pending past
# the bound, it was neither finished nor awaiting a human after the drain, or it was lost in
# `running`. A wedged workspace names its owner task but is reported per workspace.
STUCK_INVARIANTS = ("apply_pending_bound", "drained", "no_lost_task")

V = TypeVar("V")


def stuck_first(violations: Iterable[V]) -> list[V]:
    """`violations` (`Violation`s, or their dicts as in the `violations` table) in the order
    unstuck names them: the ones that make a task stuck first, then by time (the checker's
    order, kept on a tie). The first of them is "the first violation" everywhere: `unstuck
    sim`'s witnesses, the default target of `unstuck shrink`, the report's failures table and
    timeline captions, `report.tables.violations_of`."""
    def key(v: Any) -> tuple[bool, float]:
        inv, t = (v["invariant"], v["t"]) if isinstance(v, dict) else (v.invariant, v.t)
        return inv not in STUCK_INVARIANTS, float(t)

    return sorted(violations, key=key)


class HistoryInvalid(ValueError):
    """The history cannot be judged as given (a missing bound, a duplicated seq, a bad row).

    The message names the row or field, the value, the rule and the fix, like every input
    error in unstuck; callers at the CLI edge print it and exit 2.
    """


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: str
    task: int | None
    workspace: str | None
    t: float
    message: str
    witness: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["witness"] = list(self.witness)
        return d


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgement of one history: every violation, plus the run facts it was judged with."""

    violations: tuple[Violation, ...]
    end_t: float
    bound_s: float
    drain_s: float
    rows: int
    tasks: int

    @property
    def ok(self) -> bool:
        return not self.violations

    def counts(self) -> dict[str, int]:
        """Invariant -> number of violations, with every invariant present (0 when it held)."""
        c = Counter(v.invariant for v in self.violations)
        return {name: c.get(name, 0) for name in INVARIANTS}

    def of(self, invariant: str) -> tuple[Violation, ...]:
        if invariant not in INVARIANTS:
            raise ValueError(
                f"unknown invariant {invariant!r}; expected one of: {', '.join(INVARIANTS)}"
            )
        return tuple(v for v in self.violations if v.invariant == invariant)

    @property
    def stuck_tasks(self) -> tuple[int, ...]:
        return tuple(sorted({
            v.task for v in self.violations
            if v.invariant in STUCK_INVARIANTS and v.task is not None
        }))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "end_t": self.end_t,
            "bound_s": self.bound_s,
            "drain_s": self.drain_s,
            "rows": self.rows,
            "tasks": self.tasks,
            "counts": self.counts(),
            "stuck_tasks": list(self.stuck_tasks),
            "violations": [v.to_dict() for v in self.violations],
        }


def witness_rows(rows: list[dict[str, Any]], violation: Violation) -> list[dict[str, Any]]:
    """The witness rows of `violation`, for printing. `rows` is the judged history."""
    wanted = set(violation.witness)
    return [r for r in rows if r["seq"] in wanted]
