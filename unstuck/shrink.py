"""A minimal set of faults under which a failing seed still fails (`unstuck shrink`).

A failing seed says that a task got stuck, and its witness says which rows led there;
neither says which of the run's faults it took. Hypothesis shrinks a failing example to a
minimal one; here the example is the seed's list of fault attempts. Every attempt becomes a
fault at its own time (`sim.faults.as_scheduled`, which runs the same history exactly), and
ddmin (Zeller and Hildebrandt, "Simplifying and Isolating Failure-Inducing Input", 2002)
removes attempts while the same invariant still breaks for the same task. Users, agents
and start-up delays draw from their own streams, so they stay as they were: only what the
removed faults did, and what followed from it, goes.

The result is 1-minimal: without any one of the faults left, the violation goes away. It
is written out as a scenario whose faults are exactly those, which `unstuck sim` replays
with the same seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from scheduler import files
from sim import faults as sim_faults
from sim import rng as rngs
from sim import runner
from sim.config import FaultSpec, WorldConfig
from unstuck import checker, reproduce
from unstuck.checker.verdicts import Violation, stuck_first
from unstuck.scenario import NAME_MAX, read_yaml


@dataclass(frozen=True)
class Target:
    """The violation to keep: its invariant, for the same task (or workspace).

    A task is known by its creation, not its id: ids are handed out in creation order, and
    a create on a locked workspace is refused, so without some fault a create may pass or
    fail and every later id shifts. The user's requests come at the same times in every
    trial (their own random stream), so the task created in the same workspace, at the same
    instant, of the same type is the same task."""

    invariant: str
    workspace: str | None
    created: tuple[float, str, int] | None  # the task's creation: t, type, k-th such at t
    task: int | None = None  # its id in the seed's own run, for messages

    @classmethod
    def of(cls, v: Violation, rows: Sequence[dict[str, Any]]) -> Target:
        if v.task is None:
            return cls(v.invariant, v.workspace, None)
        for key, task in creations(rows).items():
            if task == v.task:
                return cls(v.invariant, key[0], key[1:], v.task)
        raise ValueError(f"task {v.task} has no task.created row")

    def find(self, violations: Sequence[Violation], rows: Sequence[dict[str, Any]]) -> Violation | None:
        """This violation among a run's, or None."""
        if self.created is None:
            return next((v for v in violations if v.invariant == self.invariant
                         and v.task is None and v.workspace == self.workspace), None)
        task = creations(rows).get((self.workspace, *self.created))
        return next((v for v in violations if v.invariant == self.invariant and v.task == task
                     and task is not None), None)

    def __str__(self) -> str:
        if self.created is None:
            return f"{self.invariant} for workspace {self.workspace}"
        return (f"{self.invariant} for task {self.task} (the {self.created[1]} created in "
                f"{self.workspace} at t={self.created[0]:g})")


def creations(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, float, str, int], int]:
    """Task ids by creation: (workspace, t, type, k) -> id, k counting same-instant twins."""
    out: dict[tuple[str, float, str, int], int] = {}
    for r in rows:
        if r["kind"] == "task.created":
            base = (r["workspace"], r["t"], r["data"].get("type", ""))
            k = 0
            while (*base, k) in out:
                k += 1
            out[(*base, k)] = r["task"]
    return out


@dataclass(frozen=True)
class Trial:
    """One run with some of the seed's fault attempts."""

    cfg: WorldConfig
    scheduler: str
    seed: int
    perturb_ties: bool
    faults: tuple[FaultSpec, ...]
    target: Target


@dataclass(frozen=True)
class Attempt:
    """One fault attempt of the seed: the scheduled fault, and the scenario fault it came from."""

    fault: FaultSpec
    source: int  # index in the scenario's faults


@dataclass(frozen=True)
class Shrunk:
    scenario: str
    scheduler: str
    seed: int
    target: Target
    attempts: tuple[Attempt, ...]  # every attempt of the original run
    keep: tuple[int, ...]  # the 1-minimal subset, by index into `attempts`
    runs: int  # trial runs made (cached repeats not counted)
    wall_s: float
    violation: Violation  # the target, as the minimal run breaks it
    rows: list[dict[str, Any]]  # the minimal run's history
    perturb_ties: bool = False

    @property
    def faults(self) -> tuple[FaultSpec, ...]:
        return tuple(self.attempts[i].fault for i in self.keep)


class NothingToShrink(ValueError):
    """The seed breaks no invariant (or not the one asked for)."""


class ShrinkFailed(RuntimeError):
    """The shrunk faults did not break the target again: a run that did not replay."""


def attempts(cfg: WorldConfig, seed: int) -> tuple[Attempt, ...]:
    """The seed's fault attempts, each a fault at its own time (`sim.faults.as_scheduled`)."""
    source = {id(spec): i for i, spec in enumerate(cfg.faults)}
    return tuple(Attempt(sim_faults.at_its_time(spec, t, deadline), source[id(spec)])
                 for spec, t, deadline in sim_faults.attempts(cfg, lambda n: rngs.child(seed, n)))


def run_with(cfg: WorldConfig, faults: Sequence[FaultSpec], scheduler: str, seed: int,
             perturb_ties: bool = False) -> list[dict[str, Any]]:
    return runner.run(replace(cfg, faults=tuple(faults)), scheduler, seed,
                      perturb_ties=perturb_ties).rows


def still_fails(trial: Trial) -> bool:
    """In a worker: does the run with only the trial's faults break the target?"""
    rows = run_with(trial.cfg, trial.faults, trial.scheduler, trial.seed, trial.perturb_ties)
    return trial.target.find(checker.check(rows).violations, rows) is not None


def ddmin(n_items: int, fails: Callable[[list[tuple[int, ...]]], list[bool]], *,
          width: int = 1) -> tuple[int, ...]:
    """A 1-minimal subset of range(n_items) that `fails`, given that the whole set fails.

    `fails` judges a batch of candidates at once (`width` of them, in parallel). Each round
    takes the first failing candidate in a fixed order (the parts, then their complements),
    judging batch after batch only until one fails, so the result is the same for any
    `width` and whichever trial finished first."""
    items = tuple(range(n_items))
    if fails([()])[0]:
        return ()
    n = 2
    while len(items) >= 2:
        size = -(-len(items) // n)
        chunks = [items[k:k + size] for k in range(0, len(items), size)]
        complements = [tuple(x for x in items if x not in part)
                       for part in map(set, chunks)] if n > 2 else []
        candidates = chunks + complements
        hit = None
        for k in range(0, len(candidates), width):
            verdicts = fails(candidates[k:k + width])
            hit = next((k + j for j, v in enumerate(verdicts) if v), None)
            if hit is not None:
                break
        if hit is not None and hit < len(chunks):
            items, n = chunks[hit], 2
        elif hit is not None:
            items, n = complements[hit - len(chunks)], max(n - 1, 2)
        elif n >= len(items):
            break
        else:
            n = min(2 * n, len(items))
    return items


def shrink(cfg: WorldConfig, scheduler: str, seed: int, *, invariant: str | None = None,
           perturb_ties: bool = False,
           run_batch: Callable[[list[Trial]], list[bool]] | None = None, width: int = 1) -> Shrunk:
    """Shrink the seed's faults to a 1-minimal set that still breaks the target: the
    violation of `invariant` (default: the first, stuck tasks first) of the seed's own run.
    `run_batch` judges up to `width` trials at once (default: one after another here)."""
    t0 = time.perf_counter()
    every = attempts(cfg, seed)
    rows = run_with(cfg, [a.fault for a in every], scheduler, seed, perturb_ties)
    violations = stuck_first(checker.check(rows).violations)
    chosen = [v for v in violations if invariant in (None, v.invariant)]
    if not chosen:
        what = f"no {invariant} violation" if invariant else "no violation"
        raise NothingToShrink(f"seed {seed} of {cfg.name} under {scheduler} has {what}: "
                              f"choose a failing seed (`unstuck sim` lists them"
                              f"{'' if invariant is None else ', by invariant'})")
    target = Target.of(chosen[0], rows)
    judge = run_batch or (lambda trials: [still_fails(t) for t in trials])
    cache: dict[tuple[int, ...], bool] = {tuple(range(len(every))): True}
    runs = 0

    def fails(candidates: list[tuple[int, ...]]) -> list[bool]:
        nonlocal runs
        todo = [c for c in dict.fromkeys(candidates) if c not in cache]
        if todo:
            runs += len(todo)
            trials = [Trial(cfg, scheduler, seed, perturb_ties,
                            tuple(every[i].fault for i in c), target) for c in todo]
            cache.update(zip(todo, judge(trials), strict=True))
        return [cache[c] for c in candidates]

    keep = ddmin(len(every), fails, width=width)
    minimal = run_with(cfg, [every[i].fault for i in keep], scheduler, seed, perturb_ties)
    found = target.find(checker.check(minimal).violations, minimal)
    if found is None:  # would mean a run that does not replay: the determinism check's job
        check = reproduce.sim(f"{cfg.name}.yaml", scheduler, seed, perturb_ties=perturb_ties,
                              check_determinism=True)
        raise ShrinkFailed(f"the shrunk faults of seed {seed} no longer break {target} when run "
                           f"again: the runs do not replay; check with {check}")
    return Shrunk(cfg.name, scheduler, seed, target, every, keep, runs + 2,
                  time.perf_counter() - t0, found, minimal, perturb_ties)


def replay_command(path: Path | str, shrunk: Shrunk) -> str:
    return reproduce.sim(path, shrunk.scheduler, shrunk.seed, perturb_ties=shrunk.perturb_ties)


def scenario_yaml(source: str, text: str, shrunk: Shrunk, path: Path | str) -> bytes:
    """The scenario `text` (of the file `source`, as read when the shrink began) with only
    the shrunk faults, each at its time, to be written at `path`: a file that
    `replay_command(path, shrunk)` replays."""
    data = read_yaml(text)
    raw = data.get("faults") or []
    out = []
    for i in shrunk.keep:
        a = shrunk.attempts[i]
        fault = {k: v for k, v in raw[a.source].items()
                 if k not in ("at", "rate_per_h", "start_s", "end_s", "within_s")}
        fault["at"] = a.fault.at
        fault["within_s"] = a.fault.within_s
        out.append(fault)
    suffix = f"-shrunk-{shrunk.scheduler}-seed{shrunk.seed}"
    name = shrunk.scenario[:NAME_MAX - len(suffix)] + suffix  # still a valid scenario name
    data = {"name": name, **{k: v for k, v in data.items() if k not in ("name", "suite_seeds")},
            "seeds": 1, "faults": out}
    # The file replays one violation: its gate verdict is that violation's (exit 1), not the
    # original run's coverage goals, which a fault removed could no longer reach (exit 3).
    gates = data.get("gates")
    goals = gates.pop("sometimes", None) if isinstance(gates, dict) else None
    if goals is not None and not gates:
        del data["gates"]
    head = (f"# {len(out)} of the {len(shrunk.attempts)} fault attempts of {source} seed "
            f"{shrunk.seed}, shrunk by `unstuck shrink`: under {shrunk.scheduler} they still "
            f"break {shrunk.target}.\n"
            + ("# Its gates.sometimes goals are left out: the file replays one violation.\n"
               if goals else "")
            + f"# Replay: {replay_command(path, shrunk)}\n")
    return (head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)).encode()


def write_scenario(path: Path, source: str, text: str, shrunk: Shrunk) -> None:
    files.write_bytes(path, scenario_yaml(source, text, shrunk, path))
