"""The report's tables: the numbers behind every figure, and the failures to reproduce.

Each function takes `unstuck.load` tables (and the gate's verdict) and returns a DataFrame with
fixed columns and a fixed row order, so a table can be diffed between runs and checked
against a golden CSV. Percentiles interpolate like the checker's and count a measurement that
never finished as infinitely late (`unstuck.checker.metrics.percentiles`), so a p99 cannot hide a stuck task.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from scheduler.model import TaskStatus
from unstuck.checker.metrics import CENSORED, percentiles
from unstuck.checker.verdicts import INVARIANTS, stuck_first
from unstuck.gate import GateResult, GoalCheck
from unstuck.plots import _order, stuck_bins
from unstuck.results import Results
from unstuck.scenario.schema import HIT_STATUSES

REPRODUCE_PER_PAIR = 3  # in summary.md; the CSV and the HTML list every failing seed


def verdict_matrix(gate: GateResult, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario x scheduler: the gate status and what went wrong."""
    rows = []
    for p in gate.pairs:
        r = runs[(runs["scenario"] == p.scenario) & (runs["scheduler"] == p.scheduler)]
        failed = int((~r["ok"].astype(bool)).sum()) if "ok" in r else 0
        violations = sum(int(r[f"violations_{i}"].sum()) for i in INVARIANTS if f"violations_{i}" in r)
        rows.append({"scenario": p.scenario, "scheduler": p.scheduler, "status": p.status,
                     "seeds": p.seeds, "seeds_failed": failed, "stuck_tasks": p.stuck,
                     "violations": violations, "invariants_violated": ", ".join(p.violated)})
    return pd.DataFrame(rows, columns=["scenario", "scheduler", "status", "seeds", "seeds_failed",
                                       "stuck_tasks", "violations", "invariants_violated"])


def matrix_wide(matrix: pd.DataFrame) -> pd.DataFrame:
    """Scheduler rows x scenario columns, each cell 'FAIL: 3 stuck; apply_pending_bound, ...'."""
    def cell(r: pd.Series) -> str:
        text = {"pass": "pass", "fail": "FAIL", "error": "NO EFFECT"}[r["status"]]
        if r["status"] != "pass" or r["stuck_tasks"]:
            text += f": {r['stuck_tasks']} stuck"
            if r["invariants_violated"]:
                text += f"; {r['invariants_violated']}"
        return text

    wide = matrix.assign(cell=matrix.apply(cell, axis=1)).pivot(
        index="scheduler", columns="scenario", values="cell")
    wide = wide.reindex(index=_order(matrix["scheduler"]), columns=list(dict.fromkeys(matrix["scenario"])))
    wide.index.name = "scheduler"
    return wide


def _quantiles(values: list[float], never: int) -> dict[str, float]:
    """p50/p90/p99/max over all owed measurements; a never-finished one counts as infinite."""
    out = percentiles(values, never)
    return {k: (round(v, 3) if math.isfinite(v) else v) for k, v in out.items()}


def recovery(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per fault type and scheduler: hits owed a recovery, recovered, never, percentiles."""
    m = metrics[(metrics["metric"] == "recovery") & ~metrics["outcome"].isin(CENSORED)]
    rows = []
    for ftype in sorted(str(t) for t in m["fault_type"].dropna().unique()):
        sub = m[m["fault_type"] == ftype]
        for sched in _order(sub["scheduler"]):
            s = sub[sub["scheduler"] == sched]
            ok = s["value_s"][s["outcome"] == "recovered"].astype(float).tolist()
            never = int((s["outcome"] == "unrecovered").sum())
            rows.append({"fault_type": ftype, "scheduler": sched, "hits": len(s),
                         "recovered": len(ok), "never": never, **_quantiles(ok, never)})
    return pd.DataFrame(rows, columns=["fault_type", "scheduler", "hits", "recovered", "never",
                                       "p50", "p90", "p99", "max"])


def confirm_to_apply(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per scheduler and scenario: confirmations, applies started, never started, percentiles."""
    m = metrics[(metrics["metric"] == "confirm_to_apply") & ~metrics["outcome"].isin(CENSORED)]
    rows = []
    for sched in _order(m["scheduler"]):
        for scen in ["(all)"] + sorted(set(m["scenario"][m["scheduler"] == sched])):
            s = m[(m["scheduler"] == sched) & ((m["scenario"] == scen) if scen != "(all)" else True)]
            ok = s["value_s"][s["outcome"] == "started"].astype(float).tolist()
            never = int((s["outcome"] != "started").sum())
            rows.append({"scheduler": sched, "scenario": scen, "confirms": len(s), "started": len(ok),
                         "never": never, **_quantiles(ok, never)})
    return pd.DataFrame(rows, columns=["scheduler", "scenario", "confirms", "started", "never",
                                       "p50", "p90", "p99", "max"])


def fault_hits(faults: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Per scenario and scheduler: every fault hit (docs/metrics.md, "Hit"; the ones waiting
    on a human too, which the recovery table leaves out) by the status of the task hit, and
    the seeds with a hit on a task waiting in apply_pending: what the seeds reached, as
    `unstuck sim`'s table shows it. A pair whose seeds no fault hit has its row of zeros."""
    rows = []
    for scen in dict.fromkeys(runs["scenario"]):
        for sched in _order(runs["scheduler"][runs["scenario"] == scen]):
            mine = faults[(faults["scenario"] == scen) & (faults["scheduler"] == sched)]
            by = mine["status_at_fault"].value_counts()
            waiting = mine[mine["status_at_fault"] == TaskStatus.APPLY_PENDING.value]
            rows.append({"scenario": scen, "scheduler": sched,
                         "seeds": int(((runs["scenario"] == scen) & (runs["scheduler"] == sched)).sum()),
                         "hits": len(mine), **{st: int(by.get(st, 0)) for st in HIT_STATUSES},
                         "seeds_hit_in_apply_pending": waiting["seed"].nunique()})
    return pd.DataFrame(rows, columns=["scenario", "scheduler", "seeds", "hits", *HIT_STATUSES,
                                       "seeds_hit_in_apply_pending"])


def goals(gate: GateResult) -> pd.DataFrame:
    """Each `gates.sometimes` goal the gate judged, per scenario and scheduler, as it counted
    it: the seeds that reached it against its `min_seeds`, its hits, and its status (error:
    the run proves nothing about that state; skip: a live run cannot see it)."""
    rows = []
    for p in gate.pairs:
        for c in p.checks:
            if isinstance(c, GoalCheck):
                rows.append({"scenario": c.scenario, "scheduler": c.scheduler, "goal": c.goal.what(),
                             "status": c.status, "seeds": p.seeds, "seeds_reached": c.seeds_reached,
                             "min_seeds": c.goal.min_seeds, "hits": c.hits})
    return pd.DataFrame(rows, columns=["scenario", "scheduler", "goal", "status", "seeds",
                                       "seeds_reached", "min_seeds", "hits"])


NEVER_WAITED = "0 (never waited)"


def stuck_histogram(metrics: pd.DataFrame) -> pd.DataFrame:
    """The histogram's bins and counts per scheduler: the seconds each task spent in
    apply_pending after a confirm (the `stuck` metric), in the figure's bins. A task that
    left apply_pending at the instant of its confirm (0 s) has its own row, `NEVER_WAITED`
    (a log axis has no 0, and the first bin must not claim it); the first bin holds every
    value above 0 and below its upper edge, as the figure draws it."""
    m = metrics[metrics["metric"] == "stuck"]
    edges = stuck_bins(m["value_s"])
    rows = []
    for sched in _order(m["scheduler"]):
        v = m["value_s"][m["scheduler"] == sched].to_numpy(dtype=float)
        if (v == 0).any():
            rows.append({"scheduler": sched, "bin": NEVER_WAITED, "from_s": 0.0, "to_s": 0.0,
                         "tasks": int((v == 0).sum())})
        counts, _ = np.histogram(np.clip(v[v > 0], edges[0], None), bins=edges)
        for k, (lo, hi, c) in enumerate(zip(edges[:-1], edges[1:], counts, strict=True)):
            if c:
                lo, hi = (0.0 if k == 0 else round(float(lo), 3)), round(float(hi), 3)
                rows.append({"scheduler": sched, "bin": f"above 0, below {hi:g} s" if k == 0
                             else f"{lo:g}-{hi:g} s", "from_s": lo, "to_s": hi, "tasks": int(c)})
    return pd.DataFrame(rows, columns=["scheduler", "bin", "from_s", "to_s", "tasks"])


FAILURE_COLUMNS = ["scenario", "scheduler", "seed", "stuck_tasks", "invariants", "first_violation",
                   "command", "shrink"]


def failures(res: Results, relative_to: str | Path | None = None) -> pd.DataFrame:
    """Every failing seed: what broke first, the exact command that replays it alone, and the
    one that finds which of its faults the first violation needed (docs/shrink.md). The
    commands cite the scenario copy saved with the results, as a path from `relative_to`
    (the folder they are to run from; default the current one, `Results.scenario_path`)."""
    runs, v = res.runs, res.violations
    if runs.empty or "ok" not in runs:
        return pd.DataFrame(columns=FAILURE_COLUMNS)
    bad = runs[~runs["ok"].astype(bool)]
    # Schedulers in the order of every other table (seed, seed-proposal, seed-head, reference).
    rank = {name: k for k, name in enumerate(_order(runs["scheduler"]))}
    bad = bad.assign(_rank=bad["scheduler"].map(rank)).sort_values(
        ["scenario", "_rank", "seed"], kind="stable").drop(columns="_rank")
    # One pass over the violations, not a filter of all of them per failing seed.
    by_seed = {k: g for k, g in v.groupby(["scenario", "scheduler", "seed"], sort=False)}
    none = v.iloc[0:0]
    rows = []
    for r in bad.itertuples():
        mine = stuck_first(by_seed.get((r.scenario, r.scheduler, r.seed), none).to_dict("records"))
        first = mine[0] if mine else None
        invs = [i for i in INVARIANTS if getattr(r, f"violations_{i}", 0)]
        first_text = ""
        if first is not None:
            who = f"task {int(first['task'])}" if pd.notna(first["task"]) else f"workspace {first['workspace']}"
            first_text = f"{first['invariant']}: {who} at t={first['t']:g}: {first['message']}"
        rows.append({"scenario": r.scenario, "scheduler": r.scheduler, "seed": int(r.seed),
                     "stuck_tasks": int(getattr(r, "stuck_tasks", 0)), "invariants": ", ".join(invs),
                     "first_violation": first_text,
                     # A live run's seed has neither command: "" (a CSV's empty cell).
                     "command": res.replay_command(r.scenario, r.scheduler, int(r.seed),
                                                   relative_to) or "",
                     "shrink": res.shrink_command(r.scenario, r.scheduler, int(r.seed),
                                                  relative_to) or ""})
    return pd.DataFrame(rows, columns=FAILURE_COLUMNS)


def example_seed(fails: pd.DataFrame, scenario: str, scheduler: str) -> int | None:
    """The seed a timeline shows: the lowest failing seed with a stuck task, else the lowest."""
    f = fails[(fails["scenario"] == scenario) & (fails["scheduler"] == scheduler)]
    if f.empty:
        return None
    stuck = f[f["stuck_tasks"] > 0]
    return int((stuck if len(stuck) else f)["seed"].min())


def violations_of(res: Results, scenario: str, scheduler: str, seed: int) -> list[dict]:
    """One seed's violations as dicts (`witness` a list of seq numbers), the first violation
    first (`checker.verdicts.stuck_first`): the one its failures row names and its shrink
    command targets."""
    v = res.violations
    mine = v[(v["scenario"] == scenario) & (v["scheduler"] == scheduler) & (v["seed"] == seed)]
    out = []
    for r in mine.to_dict("records"):
        r["witness"] = json.loads(r["witness"]) if isinstance(r["witness"], str) else list(r["witness"])
        r["task"] = None if pd.isna(r["task"]) else int(r["task"])
        out.append(r)
    return stuck_first(out)
