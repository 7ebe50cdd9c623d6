"""Results of runs as Parquet tables, for reports, the gate and notebooks.

Layout of a results folder (`unstuck sim --out DIR`, or `results/` inside a suite's report).
Per-seed tables get one file per seed, so process-pool workers write their own files and
nothing large travels back to the parent:

    DIR/histories/<scenario>/<scheduler>/seed-<n>.parquet     every history row (or .jsonl)
    DIR/tasks/<scenario>/<scheduler>/seed-<n>.parquet         one row per task: its end and latencies
    DIR/faults/<scenario>/<scheduler>/seed-<n>.parquet        one row per fault x task it hit (recovery)
    DIR/fault_events/<scenario>/<scheduler>/seed-<n>.parquet  one row per fault that took effect
    DIR/violations/<scenario>/<scheduler>/seed-<n>.parquet    one row per violation
    DIR/metrics/<scenario>/<scheduler>/seed-<n>.parquet       one row per measurement (long form)
    DIR/runs.parquet                                          one row per (scenario, scheduler, seed)
    DIR/manifest.json, DIR/scenarios/<name>.yaml              what ran: scenario files, schedulers
    DIR/.unstuck                                              the marker: unstuck wrote this folder

A run into DIR replaces those parts and nothing else, and only in a folder unstuck wrote
(`wrote`, `output_problems`): a folder someone else filled is never cleared.

Every table carries `scenario`, `scheduler` and `seed`. History `data` is stored as its
canonical JSON text (a dict column does not survive Parquet's struct inference across rows).

Only `histories/` is required: every other table is a pure function of a history (the
checker judges it), so `load` derives whatever a seed lacks. That is what lets a live run's
folder, which holds histories only, be reported and gated like a simulated one.
`load(DIR)` returns a `Results`: the small tables eagerly, the histories (`events`) on first
use, because a full suite holds millions of rows.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from scheduler import files
from scheduler.history import COLUMNS
from unstuck import reproduce
from unstuck.checker.metrics import CANCELLED
from unstuck.checker.timelines import EXEC_DONE, apply_starts
from unstuck.checker.verdicts import INVARIANTS

DERIVED = ("tasks", "faults", "fault_events", "violations", "metrics")
KEYS = ("scenario", "scheduler", "seed")
_TERMINAL = {"planned_and_finished", "success", "applied", "failed", "cancelled"}
_SEED_FILE = re.compile(r"seed-(\d+)\.(parquet|jsonl)$")

# The columns of the tables and their types: each seed's tables are built with them
# (`seed_tables`), and `load` casts what it reads to them too (a folder written before they
# existed typed each file by what it held), so an empty table keeps its dtypes, and two
# folders concatenate and join without a column turning object or an id float.
_S, _I, _F, _B = pa.large_string(), pa.int64(), pa.float64(), pa.bool_()
SCHEMAS: dict[str, pa.Schema] = {name: pa.schema([("scenario", _S), ("scheduler", _S), ("seed", _I), *cols])
                                 for name, cols in {
    "tasks": [("task", _I), ("workspace", _S), ("type", _S), ("created_t", _F), ("status", _S), ("end_t", _F),
              ("confirmed_t", _F), ("apply_t", _F), ("stuck", _B), ("confirm_to_apply_s", _F), ("stuck_s", _F)],
    "faults": [("fault_seq", _I), ("fault_type", _S), ("fault_t", _F), ("effect_seq", _I), ("task", _I),
               ("workspace", _S), ("status_at_fault", _S), ("run_at_fault", _S), ("awaiting_human", _B),
               ("queued", _B), ("clock_t", _F), ("progress_seq", _I), ("progress_t", _F), ("progress_to", _S),
               ("latency_s", _F), ("outcome", _S)],
    "fault_events": [("seq", _I), ("t", _F), ("type", _S), ("pod", _S), ("agent", _S), ("task", _I),
                     ("workspace", _S), ("node", _S), ("reason", _S)],
    "violations": [("invariant", _S), ("task", _I), ("workspace", _S), ("t", _F), ("message", _S),
                   ("witness", _S)],
    "metrics": [("metric", _S), ("task", _I), ("workspace", _S), ("fault_type", _S), ("value_s", _F),
                ("outcome", _S)],
}.items()}
# `runs` (one row per seed, in runs.parquet) has its columns and types too: a seed judged by
# `load` from its history alone (a live run's) has no kernel `events`, `wall_s`,
# `faults_missed` or `digest`, which are null, not absent, so a live and a simulated folder
# concatenate without a count turning float.
RUNS_SCHEMA = pa.schema([("scenario", _S), ("scheduler", _S), ("seed", _I), ("ok", _B),
                         *[(f"violations_{i}", _I) for i in INVARIANTS], ("stuck_tasks", _I),
                         ("events", _I), ("rows", _I), ("wall_s", _F), ("faults_fired", _I),
                         ("faults_missed", _I), ("digest", _S)])
# The histories (`events`) too, so an empty one (a folder whose histories/ were deleted, its
# tables kept) has its columns, and a column no row filled is not object.
_HISTORY_TYPES = {"seq": _I, "t": _F, "task": _I, "slot": _I}
HISTORY_SCHEMA = pa.schema([("scenario", _S), ("scheduler", _S), ("seed", _I),
                            *[(c, _HISTORY_TYPES.get(c, _S)) for c in COLUMNS]])
# Ids that may be null (a hit never recovered, a fault that names no task): pandas' nullable
# Int64, as the histories' `task` and `slot`, never float with NaN; so are the counts a live
# run does not have.
NULLABLE_IDS = {"faults": ("effect_seq", "progress_seq"), "fault_events": ("task",), "violations": ("task",),
                "runs": ("events", "faults_missed"), "events": ("task", "slot")}


def _keys(scenario: str, scheduler: str, seed: int) -> dict[str, Any]:
    return {"scenario": scenario, "scheduler": scheduler, "seed": seed}


def history_frame(rows: list[dict[str, Any]], scenario: str, scheduler: str, seed: int) -> pd.DataFrame:
    # Column by column: a simulated day holds tens of thousands of rows.
    cols: dict[str, list[Any]] = {c: [r.get(c) for r in rows] for c in COLUMNS if c != "data"}
    dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
    cols["data"] = [dumps(r.get("data")) for r in rows]
    df = pd.DataFrame({c: cols[c] for c in COLUMNS})
    for c in ("task", "slot"):
        df[c] = df[c].astype("Int64")
    for i, (k, v) in enumerate(_keys(scenario, scheduler, seed).items()):
        df.insert(i, k, v)  # scenario, scheduler, seed first, as in every other table
    return df


def task_records(rows: list[dict[str, Any]], verdict: Any, metrics: Any) -> list[dict[str, Any]]:
    """One record per task: type, creation, final status, first confirm and apply, stuck.
    A time or duration that never happened is NaN (docs/metrics.md): `confirmed_t` of a task
    never confirmed, `stuck_s` of one that never had a confirmed stay in apply_pending."""
    tasks: dict[int, dict[str, Any]] = {}
    # The times of each task's exec.invoke and dispatch applies, and the tasks with exec.*
    # rows: `apply_starts` says which starts its apply, as the checker measures it.
    invokes: dict[int, list[float]] = {}
    dispatches: dict[int, list[float]] = {}
    has_exec: set[int] = set()
    for r in rows:
        tid = r.get("task")
        kind = r["kind"]
        data = r.get("data") or {}  # null data (docs/history.md) holds no type, no action
        if kind == "task.created" and tid is not None:
            tasks[tid] = {"task": tid, "workspace": r["workspace"], "type": data.get("type"),
                          "created_t": r["t"], "status": "pending", "end_t": math.nan,
                          "confirmed_t": math.nan, "apply_t": math.nan}
            invokes[tid], dispatches[tid] = [], []
        elif tid in tasks:
            rec = tasks[tid]
            if kind == "task.transition" and r["to_status"]:
                rec["status"] = r["to_status"]
                rec["end_t"] = r["t"] if r["to_status"] in _TERMINAL else math.nan
            elif kind == "task.confirmed" and math.isnan(rec["confirmed_t"]):
                rec["confirmed_t"] = r["t"]
            elif kind == "dispatch" and data.get("action") == "apply":
                dispatches[tid].append(r["t"])
            elif kind == "exec.invoke" or kind in EXEC_DONE:
                has_exec.add(tid)
                if kind == "exec.invoke" and data.get("action") == "apply":
                    invokes[tid].append(r["t"])
    for tid, rec in tasks.items():
        starts = apply_starts(invokes[tid], dispatches[tid], tid in has_exec)
        rec["apply_t"] = starts[0] if starts else math.nan
    stuck = set(verdict.stuck_tasks)
    c2a: dict[int, float] = {}  # of the task's first confirmation, the one `confirmed_t` is
    for c in metrics.confirm_to_apply:
        c2a.setdefault(c.task, c.latency_s)
    stuck_s = {s.task: s.stuck_s for s in metrics.stuck}
    for tid, rec in tasks.items():
        rec["stuck"] = tid in stuck
        rec["confirm_to_apply_s"] = c2a.get(tid, math.nan)
        rec["stuck_s"] = stuck_s.get(tid, math.nan)  # NaN: never waited confirmed in apply_pending
    return [tasks[k] for k in sorted(tasks)]


def fault_event_records(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every `fault` row: the faults that took effect (a missed fault leaves no row). A fault
    row names a task, not its workspace (a double confirm, a harness's `POST /faults`), so the
    workspace is the task's, from its `task.created` row: a table that joins on it."""
    out, workspace_of = [], {}
    for r in rows:
        if r["kind"] == "task.created":
            workspace_of[r.get("task")] = r.get("workspace")
        if r["kind"] != "fault":
            continue
        data = r.get("data") or {}
        out.append({"seq": r["seq"], "t": r["t"], "type": data.get("type"), "pod": r.get("pod"),
                    "agent": r.get("agent"), "task": r.get("task"),
                    "workspace": r.get("workspace") or workspace_of.get(r.get("task")),
                    "node": data.get("node"), "reason": r.get("reason")})
    return out


def metric_records(metrics: Any) -> list[dict[str, Any]]:
    """The checker's three measurements in one long table (docs/metrics.md defines them).

    A measurement that never completed keeps its row with `value_s` NaN and an outcome that
    says why, so a CDF over this table plateaus below 1 instead of hiding the failures.
    """
    out = []
    for h in metrics.recovery:
        out.append({"metric": "recovery", "task": h.task, "workspace": h.workspace,
                    "fault_type": h.fault_type, "value_s": h.latency_s, "outcome": h.outcome})
    for c in metrics.confirm_to_apply:
        out.append({"metric": "confirm_to_apply", "task": c.task, "workspace": c.workspace,
                    "fault_type": None, "value_s": c.latency_s,
                    "outcome": ("started" if c.started else CANCELLED if c.cancelled
                                else "not_started")})
    for s in metrics.stuck:
        out.append({"metric": "stuck", "task": s.task, "workspace": s.workspace, "fault_type": None,
                    "value_s": s.stuck_s, "outcome": "open" if s.open else "closed"})
    return out


def seed_tables(rows: list[dict[str, Any]], scenario: str, scheduler: str, seed: int,
                verdict: Any, metrics: Any) -> dict[str, pa.Table]:
    """The derived tables of one judged seed (everything but the history itself), built with
    their schema (SCHEMAS), not typed by what the seed happened to hold (a seed without
    violations would give null columns, one unrecovered hit a float id): written by a run,
    or derived from a history by `load`, every seed's table agrees, and a reader of a whole
    table folder (pyarrow.dataset, DuckDB, Polars) sees one schema."""
    keys = _keys(scenario, scheduler, seed)
    records = {
        "tasks": task_records(rows, verdict, metrics),
        "faults": [h.to_dict() for h in metrics.recovery],
        "fault_events": fault_event_records(rows),
        "violations": [_violation(v) for v in verdict.violations],
        "metrics": metric_records(metrics),
    }
    return {name: pa.Table.from_pylist([{**keys, **r} for r in recs], schema=SCHEMAS[name])
            for name, recs in records.items()}


def run_record(scenario: str, scheduler: str, seed: int, verdict: Any, rows: list[dict[str, Any]],
               **extra: Any) -> dict[str, Any]:
    """One `runs` row for a judged seed; `extra` adds what only the runner knows (events, wall_s)."""
    faults = sum(1 for r in rows if r["kind"] == "fault")
    return {**_keys(scenario, scheduler, seed), "ok": verdict.ok,
            **{f"violations_{k}": v for k, v in verdict.counts().items()},
            "stuck_tasks": len(verdict.stuck_tasks), "rows": len(rows),
            "faults_fired": faults, **extra}


def write_seed(out: Path, scenario: str, scheduler: str, seed: int, rows: list[dict[str, Any]],
               verdict: Any, metrics: Any) -> None:
    """One seed's tables, each a Parquet file (the derived ones with their schema: `seed_tables`)."""
    import pyarrow.parquet as pq

    tables = {"histories": history_frame(rows, scenario, scheduler, seed),
              **seed_tables(rows, scenario, scheduler, seed, verdict, metrics)}
    for name, table in tables.items():
        path = out / name / scenario / scheduler / f"seed-{seed}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        with files.replacing(path) as tmp:
            if isinstance(table, pa.Table):
                pq.write_table(table, tmp)
            else:
                table.to_parquet(tmp, index=False)


def _violation(v: Any) -> dict[str, Any]:
    d = v.to_dict()
    d["witness"] = json.dumps(d["witness"])
    return d


def write_runs(out: Path, runs: list[dict[str, Any]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with files.replacing(out / "runs.parquet") as tmp:
        pd.DataFrame(runs).to_parquet(tmp, index=False)


def write_manifest(out: Path, scenario_files: dict[str, str], schedulers: list[str],
                   seeds: dict[str, int], seed_start: int, *, perturb_ties: bool = False,
                   world: str = "sim") -> None:
    """Record what ran, and copy each scenario file, so the gate and the report's reproduce
    commands work on the folder alone (after the scenario files moved or changed). Every
    option that changes a history is recorded (`perturb_ties`), or a replay would not give
    the history judged; `world` "live" marks a live run, which no command replays."""
    (out / "scenarios").mkdir(parents=True, exist_ok=True)
    for name, path in scenario_files.items():
        with files.replacing(out / "scenarios" / f"{name}.yaml") as tmp:
            shutil.copyfile(path, tmp)
    manifest = {"scenarios": {n: {"path": p, "seeds": seeds[n]} for n, p in scenario_files.items()},
                "schedulers": schedulers, "seed_start": seed_start,
                "perturb_ties": perturb_ties, "world": world}
    files.write_text(out / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------------- reading
# What a corrupt, truncated or foreign file raises when read (pyarrow's errors are ValueError
# or OSError subclasses, json's ValueError; a row without a column, KeyError).
_UNREADABLE = (OSError, ValueError, KeyError, TypeError, pa.ArrowException)
_REWRITE = "rerun the `unstuck suite` or `unstuck sim --out` command that wrote it"


class ResultsInvalid(ValueError):
    """A folder that holds no results, or a table that cannot be read: the message names it."""


class Results(dict):
    """The tables of one results folder: `res.tasks` or `res["tasks"]`, each a DataFrame.

    `events` (alias `histories`) loads every history row on first use; `history(...)` reads
    one seed's rows, which is what a timeline needs.
    """

    def __init__(self, root: Path, tables: dict[str, pd.DataFrame], manifest: dict[str, Any],
                 history_index: dict[tuple[str, str, int], Path] | None = None) -> None:
        super().__init__(tables)
        self.root = root
        self.manifest = manifest
        self._history_index = history_index

    def history_files(self) -> dict[tuple[str, str, int], Path]:
        """(scenario, scheduler, seed) -> its history file, listed once (a report reads
        a history per failing pair, and a suite's folder holds about a thousand)."""
        if self._history_index is None:
            self._history_index = _history_files(self.root)
        return self._history_index

    def __getattr__(self, name: str) -> pd.DataFrame:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __missing__(self, key: str) -> pd.DataFrame:
        if key in ("histories", "events"):
            tables = [_read_history_table(p) for p in self.history_files().values()]
            df = _frame("events", [t for t in tables if t.num_rows], self.root / "histories")
            self["histories"] = self["events"] = df
            return df
        raise KeyError(key)

    def history(self, scenario: str, scheduler: str, seed: int, *, kinds: Iterable[str] | None = None,
                seqs: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """One seed's history as rows (the checker's input), `data` decoded; `kinds` and
        `seqs` keep only rows of those kinds or seq numbers (much faster on a long run)."""
        index = self.history_files()
        path = index.get((scenario, scheduler, int(seed)))
        if path is None:
            asked = f"{self.root}: no history for {scenario} / {scheduler} / seed {seed}"
            if not index:
                raise ResultsInvalid(f"{asked}; the folder holds no history (histories/ deleted?): "
                                     f"{_REWRITE}")
            scens, scheds, seeds = (sorted({k[i] for k in index}) for i in range(3))
            span = f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else f"{seeds[0]}"
            raise ResultsInvalid(f"{asked}; it holds scenarios {', '.join(scens)}, schedulers "
                                 f"{', '.join(scheds)}, seeds {span}: ask for one of those")
        return _read_history_rows(path, kinds, seqs)

    def scenario_path(self, name: str, relative_to: str | Path | None = None) -> str:
        """The scenario file to cite in a reproduce command: the copy this folder holds
        (`scenarios/<name>.yaml`, the file the run used, whatever became of the original
        since), as a path from `relative_to`, the folder the command is to run from (by
        default the current one: the folder as it was named to `load`). Without a copy (a
        live run's folder), the path the manifest recorded, else `scenarios/<name>.yaml`."""
        copy = self.root / "scenarios" / f"{name}.yaml"
        if copy.is_file():
            return str(copy) if relative_to is None else os.path.relpath(copy, relative_to)
        entry = self.manifest.get("scenarios", {}).get(name)
        return entry["path"] if entry else f"scenarios/{name}.yaml"

    @property
    def perturb_ties(self) -> bool:
        """The run shuffled same-time events (`--perturb-ties`): its replays must too."""
        return bool(self.manifest.get("perturb_ties", False))

    @property
    def live(self) -> bool:
        """A live run's folder (`unstuck close-run`): its seed is no simulation to replay."""
        return self.manifest.get("world") == "live"

    def replay_command(self, scenario: str, scheduler: str, seed: int,
                       relative_to: str | Path | None = None) -> str | None:
        """The command that runs this seed again alone and writes its history, with the same
        digest: it cites the saved scenario copy as a path from `relative_to` (see
        `scenario_path`) and carries the run's `--perturb-ties`. None for a live run."""
        if self.live:
            return None
        return reproduce.sim(self.scenario_path(scenario, relative_to), scheduler, seed,
                             perturb_ties=self.perturb_ties,
                             history=f"{scenario}-{scheduler}-{seed}.jsonl")

    def shrink_command(self, scenario: str, scheduler: str, seed: int,
                       relative_to: str | Path | None = None) -> str | None:
        """The `unstuck shrink` of this seed (docs/shrink.md), writing the shrunk scenario
        beside the command's folder. None for a live run."""
        if self.live:
            return None
        return reproduce.shrink(self.scenario_path(scenario, relative_to), scheduler, seed,
                                perturb_ties=self.perturb_ties,
                                out=f"{scenario}-shrunk-{scheduler}-seed{seed}.yaml")


def _history_files(root: Path) -> dict[tuple[str, str, int], Path]:
    found: dict[tuple[str, str, int], Path] = {}
    base = root / "histories"
    for p in sorted(base.glob("*/*/seed-*")):
        m = _SEED_FILE.search(p.name)
        if m:
            found.setdefault((p.parent.parent.name, p.parent.name, int(m.group(1))), p)
    return found


def _read_history_rows(path: Path, kinds: Iterable[str] | None = None,
                       seqs: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """One history's rows, `data` decoded; with `kinds`/`seqs`, only rows of those kinds or
    seq numbers (filtered in Arrow: a simulated day holds half a million rows)."""
    try:
        return _history_rows(path, kinds, seqs)
    except _UNREADABLE as e:
        raise ResultsInvalid(f"{path}: not a readable history ({e.__class__.__name__}: {e}); "
                             f"{_REWRITE}") from None


def _history_rows(path: Path, kinds: Iterable[str] | None,
                  seqs: Iterable[int] | None) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        from scheduler.history import read_jsonl

        rows = read_jsonl(path)
        if kinds is None and seqs is None:
            return rows
        ks, ss = set(kinds or ()), set(seqs or ())
        return [r for r in rows if r["kind"] in ks or r["seq"] in ss]
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path).read(columns=list(COLUMNS))
    if kinds is not None or seqs is not None:
        mask = pc.or_(pc.is_in(table["kind"], pa.array(sorted(set(kinds or ())), pa.string())),
                      pc.is_in(table["seq"], pa.array(sorted(set(seqs or ())), table["seq"].type)))
        table = table.filter(mask)
    rows = table.to_pylist()
    for r in rows:
        r["data"] = json.loads(r["data"]) if r["data"] else {}
    return rows


def _read_history_table(path: Path) -> pa.Table:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).read()
        except _UNREADABLE as e:
            raise ResultsInvalid(f"{path}: not a readable Parquet table ({e.__class__.__name__}: "
                                 f"{e}); {_REWRITE}") from None
    scenario, scheduler = path.parent.parent.name, path.parent.name
    seed = int(_SEED_FILE.search(path.name).group(1))  # type: ignore[union-attr]
    return pa.Table.from_pandas(history_frame(_read_history_rows(path), scenario, scheduler, seed),
                                preserve_index=False)


def _schema(name: str) -> pa.Schema:
    return {"runs": RUNS_SCHEMA, "events": HISTORY_SCHEMA}.get(name) or SCHEMAS[name]


def _conform(name: str, table: pa.Table) -> pa.Table:
    """`table` cast to the table's schema (SCHEMAS, RUNS_SCHEMA): a column it lacks is null; a column the
    schema does not name is kept, after those it names."""
    schema = _schema(name)
    cols = [table[f.name].cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
            for f in schema]
    extra = [c for c in table.column_names if c not in schema.names]
    return pa.table(cols + [table[c] for c in extra], names=schema.names + extra)


def _frame(name: str, tables: list[pa.Table], folder: Path) -> pd.DataFrame:
    """One table from its seeds' Arrow tables, with the dtypes of its schema (cast once, after
    the concatenation: casting each of a suite's thousands of files costs a second)."""
    if not tables:
        return _frame(name, [_schema(name).empty_table()], folder)
    try:
        table = _conform(name, pa.concat_tables(tables, promote_options="permissive"))
    except pa.ArrowException as e:
        raise ResultsInvalid(f"{folder}: the seeds' tables do not agree on their columns' types "
                             f"({e.__class__.__name__}: {e}); {_REWRITE}") from None
    df = table.to_pandas()
    for c in NULLABLE_IDS.get(name, ()):
        df[c] = df[c].astype("Int64")
    return df


def _read_table(root: Path, name: str) -> tuple[list[pa.Table], set[tuple[str, str, int]]]:
    import pyarrow.parquet as pq

    tables, seen = [], set()
    for p in sorted((root / name).glob("*/*/seed-*.parquet")):
        m = _SEED_FILE.search(p.name)
        if not m:
            continue
        seen.add((p.parent.parent.name, p.parent.name, int(m.group(1))))
        try:
            # ParquetFile.read, not read_table: a run leaves thousands of small files, and
            # read_table's dataset set-up costs twice the read itself (3.1 s against 1.1 s
            # for a suite's 4,600 files).
            t = pq.ParquetFile(p).read()
        except Exception as e:  # noqa: BLE001 - any unreadable file is bad input, named
            raise ResultsInvalid(f"{p}: not a readable Parquet table ({e.__class__.__name__}: {e}); "
                                 f"delete it (`unstuck.load` derives it again from the seed's history) "
                                 f"or {_REWRITE}") from None
        if t.num_rows:
            tables.append(t)
    return tables, seen


def _derive(root: Path, key: tuple[str, str, int], path: Path) -> tuple[dict[str, pa.Table], dict[str, Any]]:
    from unstuck import checker

    rows = _read_history_rows(path)
    try:
        verdict, metrics = checker.judge(rows)
    except checker.HistoryInvalid as e:
        raise ResultsInvalid(f"{path}: cannot be judged: {e}") from None
    return seed_tables(rows, *key, verdict, metrics), run_record(*key, verdict, rows)


def load(directory: str | Path) -> Results:
    """Every table under `directory` (a results folder, or a report folder holding `results/`).

    Seeds that have a history but no derived tables (a live run's folder) are judged here.
    Raises `ResultsInvalid` when the folder holds no results, or the tables of a run that
    did not finish (no `runs.parquet`, which a run writes last).
    """
    root = resolve(directory)
    tables: dict[str, list[pa.Table]] = {}
    seen: dict[str, set[tuple[str, str, int]]] = {}
    for name in DERIVED:
        tables[name], seen[name] = _read_table(root, name)
    runs_path = root / "runs.parquet"
    if not runs_path.exists() and seen["tasks"]:
        raise ResultsInvalid(
            f"{root}: holds the tables of {len(seen['tasks'])} seeds but no runs.parquet, which a "
            "run writes when every seed is done: the run did not finish (interrupted?). Rerun "
            "the `unstuck suite` or `unstuck sim --out` command that wrote it")
    runs = [pa.Table.from_pandas(_read_runs(runs_path), preserve_index=False)] if runs_path.exists() else []
    history_index = _history_files(root)
    # A seed lacking any derived table (a live run's, or one whose file was deleted) has it
    # derived from its history; the tables it has are kept.
    missing = {k: p for k, p in history_index.items() if any(k not in seen[n] for n in DERIVED)}
    if missing:
        extra_runs = []
        for key, path in sorted(missing.items()):
            derived, run = _derive(root, key, path)
            for n in DERIVED:
                if key not in seen[n] and derived[n].num_rows:
                    tables[n].append(derived[n])
            extra_runs.append(run)
        have = {tuple(k.values()) for t in runs for k in t.select(list(KEYS)).to_pylist()}
        new = [r for r in extra_runs if (r["scenario"], r["scheduler"], r["seed"]) not in have]
        if new:
            runs.append(pa.Table.from_pylist(new))
    loaded = {n: _frame(n, tables[n], root / n) for n in DERIVED}
    loaded["runs"] = _frame("runs", runs, runs_path).sort_values(list(KEYS), ignore_index=True)
    manifest_path = root / "manifest.json"
    manifest = _read_manifest(manifest_path) if manifest_path.exists() else {}
    return Results(root, loaded, manifest, history_index)


def _read_runs(path: Path) -> pd.DataFrame:
    try:
        runs = pd.read_parquet(path)
    except _UNREADABLE as e:
        raise ResultsInvalid(f"{path}: not a readable Parquet table ({e.__class__.__name__}: "
                             f"{e}); {_REWRITE}") from None
    # The gate sums the counts: a missing column, or a NaN, would add up to 0 and pass a
    # damaged folder (or one written before an invariant existed).
    counts = [f"violations_{i}" for i in INVARIANTS] + ["stuck_tasks"]
    missing = [k for k in (*KEYS, "ok", *counts) if k not in runs.columns]
    if missing:
        raise ResultsInvalid(f"{path}: has no {', '.join(missing)} column; {_REWRITE}")
    for col in counts:
        values = runs[col]
        if not pd.api.types.is_numeric_dtype(values) or values.isna().any() or (values < 0).any():
            raise ResultsInvalid(f"{path}: column {col} holds something other than counts >= 0 "
                                 f"(dtype {values.dtype}, {int(values.isna().sum())} missing); "
                                 f"{_REWRITE}")
    return runs


def _read_manifest(path: Path) -> dict[str, Any]:
    """The manifest, checked for the shape `Results.scenario_path` reads: a bad one is bad
    input named here, not a KeyError deep in a report."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ResultsInvalid(f"{path}: not readable JSON ({e}); {_REWRITE}, or delete the "
                             "file (the report then cites scenarios/<name>.yaml)") from None
    scen = data.get("scenarios", {}) if isinstance(data, dict) else None
    if not isinstance(scen, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("path"), str) for v in scen.values()):
        raise ResultsInvalid(f"{path}: not an unstuck manifest (expected an object whose "
                             "scenarios map each name to {\"path\": ..., \"seeds\": ...}); "
                             f"{_REWRITE}, or delete the file")
    return data


def resolve(directory: str | Path) -> Path:
    """The results folder itself: `directory`, or its `results/` when it is a report folder."""
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise ResultsInvalid(f"{root}: is a file, not a folder; give the folder written by "
                             "`unstuck suite --out` (e.g. reports/latest) or `unstuck sim --out`")
    if not root.is_dir():
        raise ResultsInvalid(f"{root}: no such directory; give the folder written by "
                             "`unstuck suite --out` or `unstuck sim --out`")
    if (root / "results").is_dir() and not (root / "histories").is_dir():
        root = root / "results"
    if not (root / "histories").is_dir() and not (root / "runs.parquet").exists():
        raise ResultsInvalid(f"{root}: holds no results (no histories/ folder and no runs.parquet); "
                             "give the folder written by `unstuck suite --out` or `unstuck sim --out`")
    return root
