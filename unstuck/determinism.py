"""The determinism self-check of `unstuck sim --check-determinism`.

A seed is the whole reproduction of a simulated run (docs/sim.md, "Determinism"). A model
or scheduler change that reads the wall clock, draws from global randomness, or lets the
order of a set of strings decide something breaks that without a sound: the run still
passes or fails, but its seed no longer replays it. So every seed runs a second time and the
two histories' digests are compared, as madsim's CHECK_DETERMINISM does.

The second runs go to freshly spawned interpreters with another `PYTHONHASHSEED`: a forked
worker shares its parent's str hash seed, so a leak through the order of a set or a
str-keyed dict would replay the same there and stay hidden. A seed whose second history
differs is run once more in this process, to show the first row where the two part.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from scheduler import history as histories
from sim import runner
from sim.config import WorldConfig
from unstuck import reproduce
from unstuck.sim_cli import Job, SeedResult, run_batches

SHOWN = 3  # divergences explained row by row; the rest are listed


@dataclass(frozen=True)
class Divergence:
    """One seed whose two runs wrote different histories."""

    scenario: str
    scheduler: str
    seed: int
    first_digest: str
    second_digest: str
    row: int | None = None  # index of the first row that differs, where it was located
    first_row: dict[str, Any] | None = None  # None: the history ended before that row
    second_row: dict[str, Any] | None = None
    unstable_here: bool = False  # a run with the first's hash seed differed from the first


@dataclass(frozen=True)
class Again:
    """A seed to run again; `rows`: send its history back too, not only the digest."""

    job: Job
    rows: bool = False


def rerun(again: Again) -> tuple[str, list[dict[str, Any]] | None]:
    """In a worker: the seed's history digest (and rows, when asked)."""
    rows = _history(again.job)
    return histories.digest(rows), (rows if again.rows else None)


def _history(job: Job) -> list[dict[str, Any]]:
    return runner.run(job.cfg, job.scheduler, job.seed, perturb_ties=job.perturb_ties).rows


def other_hash_seed(env: Mapping[str, str]) -> str:
    """A `PYTHONHASHSEED` for the second runs that differs from this process's: the next
    value when one is set, else 0 (this process then hashes with a random seed)."""
    current = env.get("PYTHONHASHSEED", "random")
    if current.isdigit():
        return str((int(current) + 1) % 4294967296)
    return "0"


@contextmanager
def hash_seed(value: str) -> Iterator[None]:
    """Interpreters started inside this block hash str with seed `value`."""
    before = os.environ.get("PYTHONHASHSEED")
    os.environ["PYTHONHASHSEED"] = value
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYTHONHASHSEED"]
        else:
            os.environ["PYTHONHASHSEED"] = before


def check(cfgs: Mapping[str, WorldConfig], done: list[SeedResult], workers: int, *,
          progress: bool, perturb_ties: bool = False) -> tuple[str, list[Divergence]]:
    """Run every seed of `done` (each with its digest) again in spawned interpreters; return
    the hash seed they used and the seeds whose histories differed."""
    if any(r.digest is None for r in done):
        raise ValueError("check() needs every seed's digest: run them with digest_all=True")
    value = other_hash_seed(os.environ)
    jobs = [Job(cfgs[r.scenario], r.scheduler, r.seed, True, None, False, perturb_ties)
            for r in done]
    with hash_seed(value):
        second_runs = run_batches([Again(j) for j in jobs], workers, progress, fn=rerun,
                                  start="spawn", label="checking determinism")
        out = [(job, Divergence(r.scenario, r.scheduler, r.seed, r.digest or "", digest))
               for job, r, (digest, _) in zip(jobs, done, second_runs, strict=True)
               if digest != r.digest]
        # Only the few shown are located: their rows come back from one more spawned run
        # each, so that a leak hitting every seed does not ship every history back at once.
        shown = run_batches([Again(job, rows=True) for job, _ in out[:SHOWN]], workers, False,
                            fn=rerun, start="spawn", label="locating") if out else []
    located = [_locate(d, job, rows) if digest == d.second_digest and rows is not None else d
               for (job, d), (digest, rows) in zip(out, shown, strict=False)]
    return value, located + [d for _, d in out[len(located):]]


def _locate(d: Divergence, job: Job, second: list[dict[str, Any]]) -> Divergence:
    """Where the second history parts from a run of the seed in this process (which stands for
    the first run: the pool forked from this process, with its hash seed)."""
    here = _history(job)
    line = histories.canonical_line
    i = next((k for k, (a, b) in enumerate(zip(here, second, strict=False)) if line(a) != line(b)),
             min(len(here), len(second)))
    return replace(d, row=i, first_row=here[i] if i < len(here) else None,
                   second_row=second[i] if i < len(second) else None,
                   unstable_here=histories.digest(here) != d.first_digest)


def passed(checked: int, value: str) -> str:
    """The line for a check that found nothing."""
    return (f"deterministic: all {checked} runs (scenario, scheduler, seed) wrote the same "
            f"history again in a fresh interpreter (PYTHONHASHSEED={value})")


def report(divergences: list[Divergence], checked: int, value: str, *,
           perturb_ties: bool = False) -> str:
    """The message for a failed check: what differed, where, and what to look for."""
    lines = [f"not deterministic: {len(divergences)} of {checked} runs (scenario, scheduler, seed) "
             f"wrote a different history when run again in a fresh interpreter "
             f"(PYTHONHASHSEED={value}):"]
    for d in divergences[:SHOWN]:
        lines.append(f"  {d.scenario} under {d.scheduler}, seed {d.seed}: digest "
                     f"{d.first_digest[:12]} then {d.second_digest[:12]}")
        if d.row is not None:
            lines.append(f"    first difference at row {d.row}:")
            lines.append(f"      first run:  {_show(d.first_row)}")
            lines.append(f"      second run: {_show(d.second_row)}")
        if d.unstable_here:
            lines.append("    it differs even between two runs with the same hash seed: look for "
                         "the wall clock, global randomness or object ids")
    rest = divergences[SHOWN:]
    if rest:
        more = ", ".join(f"{d.scenario}/{d.scheduler}/{d.seed}" for d in rest[:10])
        lines.append(f"  also: {more}" + (f" and {len(rest) - 10} more" if len(rest) > 10 else ""))
    lines.append("Simulation and scheduler code must take time from `now` and randomness from its "
                 "seeded RNG, and must not let the order of a set, or of a dict keyed by strings, "
                 "decide anything (str hashes change between interpreters). Re-run one seed with "
                 + reproduce.sim("SCENARIO", "SCHEDULER", "N", perturb_ties=perturb_ties,
                                 check_determinism=True) + ".")
    return "\n".join(lines)


def _show(row: dict[str, Any] | None) -> str:
    return "(the history had ended)" if row is None else histories.canonical_line(row)
