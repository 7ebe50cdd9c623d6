"""Results of simulated runs as Parquet tables, for reports and notebooks.

Layout of an `--out DIR` (one file per seed for the per-seed tables, so process-pool workers
write their own files and nothing large travels back to the parent):

    DIR/histories/<scenario>/<scheduler>/seed-<n>.parquet   every history row
    DIR/tasks/<scenario>/<scheduler>/seed-<n>.parquet       one row per task: its end and latencies
    DIR/faults/<scenario>/<scheduler>/seed-<n>.parquet      one row per fault x task it hit
    DIR/violations/<scenario>/<scheduler>/seed-<n>.parquet  one row per violation
    DIR/runs.parquet                                        one row per (scenario, scheduler, seed)

Every table carries `scenario`, `scheduler` and `seed`. History `data` is stored as its
canonical JSON text (a dict column does not survive Parquet's struct inference across rows).
`load(DIR)` returns each table as one DataFrame (issue 4 adds its own tables to it).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from scheduler.history import COLUMNS

TABLES = ("histories", "tasks", "faults", "violations")
_TERMINAL = {"planned_and_finished", "success", "applied", "failed", "cancelled"}


def _keys(scenario: str, scheduler: str, seed: int) -> dict[str, Any]:
    return {"scenario": scenario, "scheduler": scheduler, "seed": seed}


def history_frame(rows: list[dict[str, Any]], scenario: str, scheduler: str, seed: int) -> pd.DataFrame:
    cols: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    for r in rows:
        for c in COLUMNS:
            v = r.get(c)
            cols[c].append(json.dumps(v, sort_keys=True, separators=(",", ":")) if c == "data" else v)
    df = pd.DataFrame(cols)
    for c in ("task", "slot"):
        df[c] = df[c].astype("Int64")
    for k, v in _keys(scenario, scheduler, seed).items():
        df.insert(0, k, v)
    return df


def task_records(rows: list[dict[str, Any]], verdict: Any, metrics: Any) -> list[dict[str, Any]]:
    """One record per task: type, creation, final status, first confirm and apply, stuck."""
    tasks: dict[int, dict[str, Any]] = {}
    for r in rows:
        tid = r.get("task")
        kind = r["kind"]
        if kind == "task.created" and tid is not None:
            tasks[tid] = {"task": tid, "workspace": r["workspace"], "type": r["data"].get("type"),
                          "created_t": r["t"], "status": "pending", "end_t": math.nan,
                          "confirmed_t": math.nan, "apply_t": math.nan}
        elif tid in tasks:
            rec = tasks[tid]
            if kind == "task.transition" and r["to_status"]:
                rec["status"] = r["to_status"]
                rec["end_t"] = r["t"] if r["to_status"] in _TERMINAL else math.nan
            elif kind == "task.confirmed" and math.isnan(rec["confirmed_t"]):
                rec["confirmed_t"] = r["t"]
            elif kind == "exec.invoke" and r["data"].get("action") == "apply" and math.isnan(rec["apply_t"]):
                rec["apply_t"] = r["t"]
    stuck = set(verdict.stuck_tasks)
    c2a = {c.task: c.latency_s for c in metrics.confirm_to_apply}
    stuck_s = {s.task: s.stuck_s for s in metrics.stuck}
    for tid, rec in tasks.items():
        rec["stuck"] = tid in stuck
        rec["confirm_to_apply_s"] = c2a.get(tid, math.nan)
        rec["stuck_s"] = stuck_s.get(tid, 0.0)
    return [tasks[k] for k in sorted(tasks)]


def write_seed(out: Path, scenario: str, scheduler: str, seed: int, rows: list[dict[str, Any]],
               verdict: Any, metrics: Any) -> None:
    keys = _keys(scenario, scheduler, seed)
    frames = {
        "histories": history_frame(rows, scenario, scheduler, seed),
        "tasks": pd.DataFrame([{**keys, **r} for r in task_records(rows, verdict, metrics)]),
        "faults": pd.DataFrame([{**keys, **h.to_dict()} for h in metrics.recovery]),
        "violations": pd.DataFrame([{**keys, **_violation(v)} for v in verdict.violations]),
    }
    for name, df in frames.items():
        path = out / name / scenario / scheduler / f"seed-{seed}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(path, index=False)


def _violation(v: Any) -> dict[str, Any]:
    d = v.to_dict()
    d["witness"] = json.dumps(d["witness"])
    return d


def write_runs(out: Path, runs: list[dict[str, Any]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(runs).to_parquet(out / "runs.parquet", index=False)


def load(directory: str | Path) -> dict[str, pd.DataFrame]:
    """Every table under `directory` as one DataFrame each (empty when absent)."""
    root = Path(directory)
    out: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        files = sorted((root / name).glob("**/*.parquet"))
        frames = [f for f in (pd.read_parquet(p) for p in files) if not f.empty]
        out[name] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    runs = root / "runs.parquet"
    out["runs"] = pd.read_parquet(runs) if runs.exists() else pd.DataFrame()
    return out
