"""Does the model predict what the real system did? A run (a live one, closed by `unstuck
close-run`) against many simulated seeds of its own scenario, under the same scheduler.

A simulator is worth what its predictions are worth, and nothing else checks them: every
experiment under chaos/experiments ships a scenario that describes the same run to the
simulation, so the two worlds can be compared on what the one checker measures of each
(docs/conformance.md):

* **The outcome** of a run: the invariants it broke, how each task ended (and whether it was
  stuck), and each fault's hit (the fault, the state it found the task in, what became of
  it). The observed run's outcome must be one the model gives in at least `min_share` of its
  seeds. An outcome the model never gives, or gives rarely, is drift: the model, or the
  scenario's description of the run, is wrong.
* **The latencies**: each measurement of the observed run (recovery, by fault type; confirm
  to apply) against the model's values of the same measurement. Outside the model's central
  `1 - alpha` band, widened by `slack_s` on each side for what a live world adds (process
  start-up, HTTP polls, a loaded machine), it is drift.

Pure over two results folders' tables (`unstuck.results`); the command is `unstuck conform`
(unstuck/conform_cli.py).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported where it is used: the CLI imports this module for its
    # defaults, and every `unstuck` process (an agent pod, a restarted scheduler) starts
    # through the CLI, so importing pandas here delayed each start by a second
    import pandas as pd

    from unstuck.results import Results

MIN_SHARE = 0.05
ALPHA = 0.02
SLACK_S = 1.0


class ConformInvalid(ValueError):
    """The two folders cannot be compared (the model holds no seed of the run's scenario and
    scheduler); the message says which and how to fix it."""


@dataclass(frozen=True, order=True)
class Outcome:
    """What one run came to, in the terms both worlds share (the checker's)."""

    verdict: tuple[str, ...]  # the invariants it violated, sorted; empty: it passed
    tasks: tuple[str, ...]  # each task's end, in creation order: "applied", "pending (stuck)"
    hits: tuple[str, ...]  # each fault hit, sorted: "pod-kill on apply_pending: recovered"

    def __str__(self) -> str:
        return (f"{', '.join(self.verdict) or 'pass'}; tasks: {', '.join(self.tasks) or 'none'}; "
                f"hits: {', '.join(self.hits) or 'none'}")

    def to_dict(self) -> dict[str, list[str]]:
        return {"verdict": list(self.verdict), "tasks": list(self.tasks), "hits": list(self.hits)}


@dataclass(frozen=True)
class LatencyCheck:
    metric: str  # "recovery (pod-kill)" or "confirm_to_apply"
    observed: float
    model_n: int  # the model's measurements of it, over all its seeds
    low: float  # the model's alpha/2 quantile (NaN when it never measured it)
    median: float
    high: float  # its 1 - alpha/2 quantile
    rank: float  # the share of the model's values below the observed one (ties count half)
    drift: bool

    def to_dict(self) -> dict[str, Any]:
        return {k: _num(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class RunCheck:
    seed: int  # the observed run's seed (a live run is seed 0)
    outcome: Outcome
    share: float  # of the model's seeds that ended with the same outcome
    outcome_drift: bool
    latencies: tuple[LatencyCheck, ...]

    @property
    def drift(self) -> bool:
        return self.outcome_drift or any(c.drift for c in self.latencies)

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "outcome": self.outcome.to_dict(), "share": self.share,
                "outcome_drift": self.outcome_drift, "drift": self.drift,
                "latencies": [c.to_dict() for c in self.latencies]}


@dataclass(frozen=True)
class Conformance:
    """One scenario under one scheduler: the model's outcomes and each observed run's check."""

    scenario: str
    scheduler: str
    model_seeds: int
    model_outcomes: tuple[tuple[Outcome, int], ...]  # most frequent first
    runs: tuple[RunCheck, ...]
    min_share: float
    alpha: float
    slack_s: float

    @property
    def ok(self) -> bool:
        return not any(r.drift for r in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "scheduler": self.scheduler, "ok": self.ok,
                "model_seeds": self.model_seeds,
                "model_outcomes": [{"outcome": o.to_dict(), "seeds": n} for o, n in self.model_outcomes],
                "runs": [r.to_dict() for r in self.runs], "min_share": self.min_share,
                "alpha": self.alpha, "slack_s": self.slack_s}


def pairs(res: Results) -> list[tuple[str, str]]:
    """The (scenario, scheduler) pairs a folder holds runs of."""
    runs = res.runs
    return sorted({(str(a), str(b)) for a, b in zip(runs.scenario, runs.scheduler, strict=True)})


def _of(tables: dict[str, pd.DataFrame], name: str, scenario: str, scheduler: str) -> pd.DataFrame:
    t = tables[name]
    return t[(t.scenario == scenario) & (t.scheduler == scheduler)]


def outcomes(tables: Any, scenario: str, scheduler: str) -> dict[int, Outcome]:
    """Each seed's outcome, for every seed the tables (a `Results`, or one seed's tables)
    hold of `scenario` under `scheduler`."""
    seeds = sorted(int(s) for s in _of(tables, "runs", scenario, scheduler).seed)
    verdict: dict[int, set[str]] = {s: set() for s in seeds}
    v = _of(tables, "violations", scenario, scheduler)
    for seed, inv in zip(v.seed, v.invariant, strict=True):
        verdict[int(seed)].add(str(inv))
    tasks: dict[int, list[tuple[float, int, str]]] = {s: [] for s in seeds}
    t = _of(tables, "tasks", scenario, scheduler)
    for seed, task, created, status, stuck in zip(t.seed, t.task, t.created_t, t.status, t.stuck,
                                                  strict=True):
        tasks[int(seed)].append((float(created), int(task), f"{status} (stuck)" if stuck else str(status)))
    hits: dict[int, list[str]] = {s: [] for s in seeds}
    f = _of(tables, "faults", scenario, scheduler)
    for seed, kind, status, waiting, outcome in zip(f.seed, f.fault_type, f.status_at_fault,
                                                    f.awaiting_human, f.outcome, strict=True):
        where = f"{status}, unconfirmed" if waiting and status == "apply_pending" else str(status)
        hits[int(seed)].append(f"{kind} on {where}: {outcome}")
    return {s: Outcome(tuple(sorted(verdict[s])), tuple(e for *_, e in sorted(tasks[s])),
                       tuple(sorted(hits[s]))) for s in seeds}


def measurements(tables: Any, scenario: str, scheduler: str) -> dict[int, dict[str, list[float]]]:
    """Each seed's latencies by metric ("recovery (pod-kill)", "confirm_to_apply"): the
    finite ones. One that never ended (an unrecovered hit) is the outcome's to judge."""
    m = _of(tables, "metrics", scenario, scheduler)
    out: dict[int, dict[str, list[float]]] = {}
    for seed, metric, kind, value in zip(m.seed, m.metric, m.fault_type, m.value_s, strict=True):
        if metric == "stuck" or value is None or not math.isfinite(value):
            continue
        name = f"{metric} ({kind})" if metric == "recovery" else str(metric)
        out.setdefault(int(seed), {}).setdefault(name, []).append(float(value))
    return out


def horizon(res: Results, scenario: str, scheduler: str, seed: int) -> tuple[float, dict[str, Any]] | None:
    """When the run's history ends (its `run.end` row's `t`), and that row's `data` (the
    bound and drain it was judged by). None for a history without one."""
    ends = res.history(scenario, scheduler, seed, kinds=["run.end"])
    return (float(ends[-1]["t"]), dict(ends[-1].get("data") or {})) if ends else None


def judged_until(model: Results, scenario: str, scheduler: str, end_t: float,
                 end_data: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The model's seeds judged as the observed run was: each history cut at the observed
    run's end, and closed there with its `run.end` (the same bound and drain). A live run is
    watched only until its experiment ends; a task the model shows wedged 30 s later, after
    the live run stopped looking, is no difference between the two worlds."""
    import pandas as pd

    from scheduler.history import HistoryEvent, Kind, Source
    from unstuck import checker, results

    per: dict[str, list[pd.DataFrame]] = {}
    for seed in sorted(int(s) for s in _of(model, "runs", scenario, scheduler).seed):
        rows = [r for r in model.history(scenario, scheduler, seed)
                if r["kind"] != Kind.RUN_END and float(r["t"]) <= end_t]
        rows.append(HistoryEvent(end_t, Kind.RUN_END, Source.HARNESS, data=end_data).to_row(
            rows[-1]["seq"] + 1 if rows else 0))
        verdict, metrics = checker.judge(rows)
        for name, table in results.seed_tables(rows, scenario, scheduler, seed, verdict, metrics).items():
            per.setdefault(name, []).append(table.to_pandas())
        per.setdefault("runs", []).append(pd.DataFrame(
            [{"scenario": scenario, "scheduler": scheduler, "seed": seed}]))
    return {name: pd.concat(frames, ignore_index=True) for name, frames in per.items()}


def check_latency(metric: str, observed: float, model: list[float], alpha: float,
                  slack_s: float) -> LatencyCheck:
    """The observed value against the model's: drift outside its central band, widened."""
    if not model:
        nan = math.nan
        return LatencyCheck(metric, observed, 0, nan, nan, nan, nan, True)
    import pandas as pd

    s = pd.Series(model, dtype=float)
    low, median, high = (float(s.quantile(q)) for q in (alpha / 2, 0.5, 1 - alpha / 2))
    rank = (float((s < observed).sum()) + 0.5 * float((s == observed).sum())) / len(s)
    drift = not (low - slack_s <= observed <= high + slack_s)
    return LatencyCheck(metric, observed, len(s), low, median, high, rank, drift)


def compare(observed: Results, model: Results, *, min_share: float = MIN_SHARE,
            alpha: float = ALPHA, slack_s: float = SLACK_S) -> list[Conformance]:
    """Every observed (scenario, scheduler) pair against the model's seeds of the same pair,
    each observed run against the model judged over the same span (`judged_until`)."""
    have = set(pairs(model))
    out = []
    for scenario, scheduler in pairs(observed):
        if (scenario, scheduler) not in have:
            held = ", ".join(f"{a} / {b}" for a, b in sorted(have)) or "nothing"
            raise ConformInvalid(
                f"{model.root}: holds no seed of {scenario} under {scheduler} (it holds {held}); "
                f"simulate that scenario under that scheduler (`unstuck sim FILE --scheduler "
                f"{scheduler} --out DIR`), or leave --sim out and let conform run it")
        seen = measurements(observed, scenario, scheduler)
        spans: dict[str, dict[str, pd.DataFrame]] = {}
        checks, shown = [], Counter()
        for seed, outcome in sorted(outcomes(observed, scenario, scheduler).items()):
            end = horizon(observed, scenario, scheduler, seed)
            key = repr(end)
            if key not in spans:
                # Over the run's span and the slack: a task the model ends a moment after
                # the live run stopped looking ended all the same.
                spans[key] = (model if end is None else
                              judged_until(model, scenario, scheduler, end[0] + slack_s, end[1]))
            modelled = outcomes(spans[key], scenario, scheduler)
            counts = Counter(modelled.values())
            if not shown:  # the table shown: the model over the first run's span
                shown = counts
            values: dict[str, list[float]] = {}
            for per_metric in measurements(spans[key], scenario, scheduler).values():
                for name, vs in per_metric.items():
                    values.setdefault(name, []).extend(vs)
            share = counts.get(outcome, 0) / len(modelled) if modelled else 0.0
            lat = tuple(check_latency(name, v, values.get(name, []), alpha, slack_s)
                        for name, vs in sorted(seen.get(seed, {}).items()) for v in vs)
            checks.append(RunCheck(seed, outcome, share, share < min_share or share == 0.0, lat))
        ranked = tuple(sorted(shown.items(), key=lambda kv: (-kv[1], kv[0])))
        out.append(Conformance(scenario, scheduler, sum(shown.values()), ranked, tuple(checks),
                               min_share, alpha, slack_s))
    return out


def _num(x: Any) -> Any:
    return None if isinstance(x, float) and math.isnan(x) else x
