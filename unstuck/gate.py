"""The CI chaos gate: judge a results folder against each scenario's thresholds.

A gate is a list of checks per scenario x scheduler, each one JUnit test case: one per
invariant (violations summed over the seeds, at most `max_violations`), the stuck tasks (at
most `max_stuck`), the recovery and confirm-to-apply p99 when the scenario sets a bound, and
`faults_took_effect`: every fault type the scenario declares left at least one `fault` row,
and one per `gates.sometimes` goal: its faults hit a task in the status it names in enough
seeds. Those are *errors*, not failures: a chaos run whose faults never fired, or never
reached what the scenario is about, proves nothing, whatever its invariants say.
docs/gate.md defines every rule.

Exit codes (`GateResult.exit_code`): 0 pass, 1 deviated, 3 the run proved nothing (a fault
never took effect, a goal was never reached); input problems raise `GateInputError` (the
CLI's exit 2). 3 wins over 1 because a deviation found by a broken chaos setup still needs
the setup fixed before anyone can trust the gate.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from scheduler.variants import NAMES
from unstuck import scenario as scenarios
from unstuck.checker.metrics import CENSORED, quantile
from unstuck.checker.verdicts import INVARIANTS, STUCK_INVARIANTS
from unstuck.results import Results

PASS, FAIL, ERROR, SKIP = "pass", "fail", "error", "skip"
# Faults that hit nobody in a live run: a pool-scale-down's deletions are the seed
# autoscaler's own in its freeze window, which only the simulation tells from its other
# deletions. (A live hpa-scale-down hits through the deletions the service names for it:
# docs/metrics.md, "Effects".)
UNATTRIBUTED_LIVE = frozenset({"pool-scale-down"})


class GateInputError(ValueError):
    """The gate cannot judge this input (no results, an unreadable scenario, a bad threshold)."""


@dataclass(frozen=True)
class Thresholds:
    max_violations: int = 0
    max_stuck: int = 0
    recovery_p99_s: float | None = None
    confirm_to_apply_p99_s: float | None = None

    @classmethod
    def of(cls, s: scenarios.Scenario | None) -> Thresholds:
        if s is None:
            return cls()
        g = s.gates
        return cls(g.max_violations, g.max_stuck, g.recovery_p99_s, g.confirm_to_apply_p99_s)

    def override(self, **kw: Any) -> Thresholds:
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


@dataclass(frozen=True)
class Check:
    """One test case: `name` is an invariant, `stuck_tasks`, a p99 bound, `faults_took_effect`
    or a `sometimes_hit_...` goal."""

    scenario: str
    scheduler: str
    name: str
    status: str  # pass | fail | error | skip (a goal a live run cannot observe)
    message: str

    @property
    def why_error(self) -> str:
        """What an error says the run did not prove (the JUnit error's type)."""
        return "fault-never-took-effect"


@dataclass(frozen=True)
class GoalCheck(Check):
    """A `gates.sometimes` goal's case, with what the gate counted: the report's goals table
    reads it here rather than counting again."""

    goal: scenarios.Sometimes
    seeds_reached: int
    hits: int

    @property
    def why_error(self) -> str:
        return "goal-never-reached"


@dataclass(frozen=True)
class PairVerdict:
    scenario: str
    scheduler: str
    seeds: int
    stuck: int
    violated: tuple[str, ...]  # invariants with at least one violation
    checks: tuple[Check, ...]

    @property
    def status(self) -> str:
        states = {c.status for c in self.checks}
        return ERROR if ERROR in states else FAIL if FAIL in states else PASS


@dataclass(frozen=True)
class GateResult:
    pairs: tuple[PairVerdict, ...]

    @property
    def exit_code(self) -> int:
        states = {p.status for p in self.pairs}
        return 3 if ERROR in states else 1 if FAIL in states else 0

    @property
    def verdict(self) -> str:
        if self.exit_code != 3:
            return {0: "pass", 1: "deviated"}[self.exit_code]
        why = {c.why_error for c in self.checks() if c.status == ERROR}
        return "; ".join(text for key, text in (("fault-never-took-effect", "a fault never took effect"),
                                               ("goal-never-reached", "a goal was never reached"))
                         if key in why)

    def checks(self) -> list[Check]:
        return [c for p in self.pairs for c in p.checks]

    def lines(self) -> list[str]:
        """One line per scenario: its worst status, then each scheduler's."""
        out = []
        for scen in dict.fromkeys(p.scenario for p in self.pairs):
            pairs = [p for p in self.pairs if p.scenario == scen]
            worst = ERROR if any(p.status == ERROR for p in pairs) else (
                FAIL if any(p.status == FAIL for p in pairs) else PASS)
            parts = [f"{p.scheduler}: {_pair_text(p)}" for p in pairs]
            out.append(f"{worst.upper():5s} {scen}  " + " | ".join(parts))
        return out


def _pair_text(p: PairVerdict) -> str:
    if p.status == PASS:
        return "pass"
    bad = [c for c in p.checks if c.status in (FAIL, ERROR)]
    return ", ".join(f"{c.name} ({c.message.split(';')[0]})" if c.status == ERROR else c.name
                     for c in bad[:4]) + (f" +{len(bad) - 4} more" if len(bad) > 4 else "")


# ---------------------------------------------------------------------- inputs
def find_scenarios(res: Results, names: list[str], search: list[Path], *, strict: bool,
                   problems: list[str] | None = None) -> dict[str, scenarios.Scenario | None]:
    """Each scenario's file: the copy in the results folder, then `search` folders, then the
    path the manifest recorded. With `strict`, a missing or invalid file is a GateInputError;
    otherwise it maps to None (a report still renders; the gate uses default thresholds) and
    what the error would have said is appended to `problems`, for the report to state."""
    out: dict[str, scenarios.Scenario | None] = {}
    for name in names:
        candidates = [res.root / "scenarios" / f"{name}.yaml"] + [d / f"{name}.yaml" for d in search]
        candidates.append(Path(res.scenario_path(name)))
        candidates = list(dict.fromkeys(candidates))  # each once: scenarios/ is often two of them
        path = next((c for c in candidates if c.is_file()), None)
        out[name] = None
        if path is None:
            problem = (f"scenario {name!r}: no scenario file found (looked in "
                       f"{', '.join(str(c) for c in candidates)}); the gate reads its thresholds "
                       "and declared faults from it: pass --scenarios DIR")
        else:
            try:
                out[name] = scenarios.load(path)
                continue
            except scenarios.ScenarioInvalid as e:
                problem = "\n".join(e.problems)
        if strict:
            raise GateInputError(problem)
        if problems is not None:
            problems.append(problem)
    return out


def _latency_check(scen: str, sched: str, name: str, m: pd.DataFrame, done: str, bound: float | None
                   ) -> Check | None:
    if bound is None:
        return None
    finished = m["value_s"][m["outcome"] == done]
    open_count = int((m["outcome"] != done).sum())
    p99 = quantile(finished, open_count, 0.99)
    if math.isnan(p99):
        return Check(scen, sched, name, PASS, f"no measurements (bound {bound:g} s)")
    ok = p99 <= bound
    # As the report's tables and page show it (to the ms, `:g`), unless that reads as the
    # bound it exceeds: then in full.
    text = f"{round(p99, 3):g}"
    if not ok and text == f"{bound:g}":
        text = repr(p99)
    detail = f"p99 {text} s (bound {bound:g} s) over {len(finished) + open_count} measurements"
    if open_count:
        detail += f", {open_count} never finished (counted as infinite)"
    return Check(scen, sched, name, PASS if ok else FAIL, detail)


def evaluate(res: Results, found: dict[str, scenarios.Scenario | None], *,
             schedulers: list[str] | None = None, relative_to: str | Path | None = None,
             **overrides: Any) -> GateResult:
    """Judge every scenario x scheduler of `res`; `overrides` replace the scenario thresholds.
    A failure's message ends with the command that replays its first seed, citing the
    scenario as a path from `relative_to` (the report folder; default: the folder as named
    to `load`)."""
    where = os.fspath(relative_to) if relative_to is not None else None
    runs = res.runs
    if runs.empty:
        raise GateInputError(f"{res.root}: runs.parquet is empty and no history was found; "
                             "run `unstuck suite` or `unstuck sim --out` first")
    pairs = []
    for (scen, sched), seeds in runs.groupby(["scenario", "scheduler"], sort=False):
        if schedulers and sched not in schedulers:
            continue
        s = found.get(scen)
        th = Thresholds.of(s).override(**overrides)
        pairs.append(_judge_pair(res, str(scen), str(sched), seeds, s, th, where))
    rank = {n: i for i, n in enumerate(NAMES)}
    pairs.sort(key=lambda p: (p.scenario, rank.get(p.scheduler, len(rank)), p.scheduler))
    if not pairs:
        raise GateInputError(f"--schedulers {','.join(schedulers or [])}: none of them is in "
                             f"{res.root} (it holds {', '.join(sorted(set(runs['scheduler'])))})")
    # A named scheduler with no seed of a scenario would be judged on nothing, and its
    # absence would pass: every scheduler asked for must have run every scenario.
    for scen, ran in runs.groupby("scenario", sort=True)["scheduler"]:
        absent = [n for n in schedulers or [] if n not in set(ran)]
        if absent:
            held = sorted(set(ran), key=lambda n: (rank.get(n, len(rank)), n))
            raise GateInputError(
                f"--schedulers: {', '.join(absent)} has no seeds in {res.root} "
                f"({scen} holds {', '.join(held)}); run it first, or gate only what ran")
    return GateResult(tuple(pairs))


def _judge_pair(res: Results, scen: str, sched: str, seeds: pd.DataFrame,
                s: scenarios.Scenario | None, th: Thresholds, relative_to: str | None
                ) -> PairVerdict:
    checks: list[Check] = []
    v = res.violations
    v = v[(v["scenario"] == scen) & (v["scheduler"] == sched)].sort_values(["seed", "t"],
                                                                           kind="stable")

    def first_of(mine: pd.DataFrame, named: bool) -> str:
        """The first of `mine` (lowest seed, earliest), and the command that replays its seed."""
        if mine.empty:
            return ""
        first = mine.iloc[0]
        inv = f"{first['invariant']}: " if named else ""
        seed = int(first["seed"])
        command = res.replay_command(scen, sched, seed, relative_to)
        if command is not None:
            then = f"replay from the report folder: {command}"
        else:  # a live run: nothing replays it, its history is the evidence
            history = res.history_files().get((scen, sched, seed))
            then = ("a live run; its history: "
                    + (os.path.relpath(history, relative_to) if history and relative_to is not None
                       else str(history)))
        return (f"; first: seed {first['seed']} {_who(first)} at t={first['t']:g}: {inv}"
                f"{first['message']}; {then}")

    violated = []
    for inv in INVARIANTS:
        col = f"violations_{inv}"
        n = int(seeds[col].sum()) if col in seeds else 0
        mine = v[v["invariant"] == inv]
        if n:
            violated.append(inv)
            msg = (f"{n} violations in {mine['seed'].nunique()} of {len(seeds)} seeds "
                   f"(allowed {th.max_violations})" + first_of(mine, named=False))
        else:
            msg = f"held in all {len(seeds)} seeds"
        checks.append(Check(scen, sched, inv, FAIL if n > th.max_violations else PASS, msg))
    stuck = int(seeds["stuck_tasks"].sum()) if "stuck_tasks" in seeds else 0
    msg = f"{stuck} stuck tasks (allowed {th.max_stuck})"
    if stuck:  # a task is stuck when a STUCK_INVARIANTS violation names it (checker.verdicts)
        mine = v[v["invariant"].isin(STUCK_INVARIANTS) & v["task"].notna()]
        stuck_seeds = int((seeds["stuck_tasks"] > 0).sum())
        msg = (f"{stuck} stuck tasks in {stuck_seeds} of {len(seeds)} seeds (allowed "
               f"{th.max_stuck})" + first_of(mine, named=True))
    checks.append(Check(scen, sched, "stuck_tasks", FAIL if stuck > th.max_stuck else PASS, msg))
    m = res.metrics
    m = m[(m["scenario"] == scen) & (m["scheduler"] == sched)]
    owed = m[~m["outcome"].isin(CENSORED)]
    for c in (_latency_check(scen, sched, "recovery_p99", owed[owed["metric"] == "recovery"],
                             "recovered", th.recovery_p99_s),
              _latency_check(scen, sched, "confirm_to_apply_p99",
                             owed[owed["metric"] == "confirm_to_apply"], "started",
                             th.confirm_to_apply_p99_s)):
        if c is not None:
            checks.append(c)
    if s is not None:
        fe = res.fault_events
        seen = set(fe["type"][(fe["scenario"] == scen) & (fe["scheduler"] == sched)])
        declared = s.fault_types()
        missing = [t for t in declared if t not in seen]
        if missing:
            msg = (f"{', '.join(missing)}: declared but no fault of that type took effect in "
                   f"{len(seeds)} seeds; the run proves nothing about it: check the fault's "
                   "target and within_s, or run more seeds")
            checks.append(Check(scen, sched, "faults_took_effect", ERROR, msg))
        else:
            checks.append(Check(scen, sched, "faults_took_effect", PASS,
                                f"every declared fault type took effect ({', '.join(declared) or 'none declared'})"))
        checks += [_goal_check(res, scen, sched, len(seeds), s, g)
                   for g in s.gates.sometimes if g.holds_for(sched)]
    return PairVerdict(scen, sched, len(seeds), stuck, tuple(violated), tuple(checks))


def _goal_reached(res: Results, scen: str, sched: str, goal: scenarios.Sometimes) -> tuple[int, int]:
    """The seeds that reached a `gates.sometimes` goal, and its hits (censored ones too: a hit
    on a task waiting for its human reached the state as surely)."""
    f = res.faults
    f = f[(f["scenario"] == scen) & (f["scheduler"] == sched)]
    if goal.run is not None and ((f["status_at_fault"] == "running") & f["run_at_fault"].isna()).any():
        # Every running hit says what it ran since 6db4071: these tables are older.
        raise GateInputError(
            f"{res.root}: its faults tables of {scen} under {sched} do not say what a running "
            f"task ran (run_at_fault), which the goal {goal.name} asks; rerun the `unstuck suite` "
            "or `unstuck sim --out` command that wrote them")
    columns = ("fault_type", "status_at_fault", "run_at_fault", "awaiting_human")  # a HitKey
    matched = [goal.matches(*hit) for hit in zip(*(f[c] for c in columns), strict=True)]
    hits = f[pd.Series(matched, index=f.index, dtype=bool)]
    return int(hits["seed"].nunique()), len(hits)


def _goal_check(res: Results, scen: str, sched: str, seeds: int, s: scenarios.Scenario,
                goal: scenarios.Sometimes) -> GoalCheck:
    """A goal holds when at least `min_seeds` seeds reached it."""
    reached, hits = _goal_reached(res, scen, sched, goal)
    told = f"{goal.what()} in {reached} of {seeds} seeds ({hits} hits), at least {goal.min_seeds} asked"
    by = [goal.by] if goal.by is not None else s.fault_types()
    if reached >= goal.min_seeds:
        status, message = PASS, told
    elif res.live and set(by) <= UNATTRIBUTED_LIVE:
        status, message = SKIP, (f"not judged on a live run: {', '.join(by)} hits nobody there "
                                 "(the live service cannot tell its deletions from the scheduler's "
                                 "other ones); gate the scenario's simulated runs for it")
    else:
        status, message = ERROR, (f"{told}; the run proves nothing about a task hit there: check "
                                   "the faults' timing and target, or run more seeds")
    return GoalCheck(scen, sched, goal.name, status, message, goal, reached, hits)


def _who(row: pd.Series) -> str:
    if pd.notna(row["task"]):
        return f"task {int(row['task'])}"
    return f"workspace {row['workspace']}"
