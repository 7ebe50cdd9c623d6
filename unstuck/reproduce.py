"""The commands that run one seed again: the one place every message, page and file spells them.

Why one place: a replay is only worth printing if it gives the same history (the same
digest), so it must carry every option that changes a history: the scenario, the scheduler,
the seed and `--perturb-ties`. While four modules each wrote their own, the gate's and the
report's forgot `--perturb-ties`, and the seed they cited replayed another history.

`seed` may be a placeholder such as "N" in a hint; every part is quoted for a POSIX shell.
"""

from __future__ import annotations

import shlex
from pathlib import Path


def sim(scenario: str | Path, scheduler: str, seed: int | str, *, perturb_ties: bool = False,
        history: str | Path | None = None, check_determinism: bool = False) -> str:
    """`unstuck sim` of that one seed alone; with `history`, writing its JSONL there."""
    parts = ["unstuck", "sim", str(scenario), "-s", scheduler, "--seeds", "1",
             "--seed-start", str(seed)]
    if history is not None:
        parts += ["--history", str(history)]
    if perturb_ties:
        parts.append("--perturb-ties")
    if check_determinism:
        parts.append("--check-determinism")
    return shlex.join(parts)


def shrink(scenario: str | Path, scheduler: str, seed: int | str, *, perturb_ties: bool = False,
           out: str | Path | None = None) -> str:
    """`unstuck shrink` of that seed: the faults its first violation needed."""
    parts = ["unstuck", "shrink", str(scenario), "-s", scheduler, "--seed", str(seed)]
    if perturb_ties:
        parts.append("--perturb-ties")
    if out is not None:
        parts += ["--out", str(out)]
    return shlex.join(parts)

