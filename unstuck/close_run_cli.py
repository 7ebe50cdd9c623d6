"""`unstuck close-run DATA_DIR --scenario FILE [--scheduler S] --out DIR`: a live run's history
closed with its `run.end` row and laid out as a results folder that `unstuck report` and
`unstuck gate` take as they are (docs/report.md, "Reporting a live run").

`unstuck serve` never writes `run.end` (docs/service.md): the harness that ends a run does.
This command is that harness step. It refuses a folder whose service still runs (it holds
`DATA_DIR/serve.lock`, scheduler/service/folderlock.py): the run is not over, and its clock
file is not yet saved at its stop. It reads `DATA_DIR/history.jsonl` (and `clock.json`) and
writes nothing there, not even a lock file; it writes OUT whole or not at all (built in a
temporary folder beside OUT, then renamed into place).

The `run.end` row is the simulation's (sim/world.py), from source `harness`: `data.bound_s`
and `data.drain_s` are the scenario's `bounds.apply_pending_s` and `drain_s`, plus `scenario`
and `scheduler`. Its `t` is the later of the history's last row and the clock file's last
saved reading (`scheduler.service.clock.last_t`): the service saves one when it stops, so
the run ends when its scheduler stopped, not when this command happens to run (a task left
in apply_pending would otherwise be stuck or not by how long CI waited before closing the
run). Without a clock file (a data folder copied without it), the last row's `t`.

The scheduler that labels the run (its folders, `run.end`'s `scheduler`, the gate's name for
it) is the one the clock file records (`unstuck serve` records it at the run's first start,
scheduler/service/clock.py): the history's rows do not name it, and a label passed by hand
could judge a seed run as the reference. `--scheduler` may repeat it, never contradict it; it
is needed only for a folder that records none (no clock file, or one from before the field).

Exit codes: 0 written; 2 bad input (one line each: the file, what is wrong, the fix) or a
write that failed (OUT left as it was).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

HISTORY = "history.jsonl"
CLOCK = "clock.json"
SEED = 0  # a live run is one seed of its scenario


class CloseInvalid(ValueError):
    """Input `close-run` refuses: the message names the file, the problem and the fix."""


def read_live_history(data_dir: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The rows of `data_dir`'s history as the service would continue them (a torn last line
    left out, `historylog.whole_rows`), and a note when one was. Refused while the folder's
    service still runs (`folderlock.holder`): its run is not over. Reads only."""
    from scheduler.service import folderlock
    from scheduler.service.historylog import whole_rows

    path = data_dir / HISTORY
    if not data_dir.is_dir():
        raise CloseInvalid(f"{data_dir}: no such folder; give the --data-dir of `unstuck serve`")
    try:
        holder = folderlock.holder(data_dir)
    except OSError as e:
        raise CloseInvalid(f"{data_dir / folderlock.LOCK}: cannot read it ({e.strerror or e}), so "
                           "cannot tell whether its service still runs; run close-run as the "
                           "user that ran `unstuck serve`") from None
    if holder is not None:
        stop = f" (kill {holder.pid})" if holder.pid is not None else ""
        raise CloseInvalid(f"{holder} still runs on {data_dir}: stop it first{stop}, then close "
                           "the run")
    if not path.is_file():
        raise CloseInvalid(f"{path}: no such file; give the --data-dir `unstuck serve` wrote its "
                           "history into")
    fix = "close the history `unstuck serve` wrote, unedited"
    try:
        rows, good, size = whole_rows(path, fix=fix)
    except ValueError as e:
        raise CloseInvalid(str(e)) from None
    except OSError as e:
        raise CloseInvalid(f"{path}: cannot read it ({e.strerror or e})") from None
    note = None
    if good != size:
        note = (f"{path}: its last line is torn ({size - good} bytes, the service stopped "
                "mid-write) and is left out, as the service does when it continues the run")
    if not rows:
        raise CloseInvalid(f"{path}: holds no rows; start `unstuck serve` with this --data-dir "
                           "and run the experiment before closing it")
    closed = next((r for r in rows if r.get("kind") == "run.end"), None)
    if closed is not None:
        raise CloseInvalid(f"{path}: row {closed.get('seq')} is already a run.end: the run is "
                           "closed; lay it out as docs/report.md says, or close the service's "
                           "own history.jsonl")
    return rows, note


def read_clock(data_dir: Path, rows: list[dict[str, Any]]) -> tuple[float, str | None]:
    """The `t` of `run.end`, the clock file's last saved reading never before the last row,
    and the scheduler the file records (None: no clock file, or one from before the service
    recorded it). A last row without a number for `t` counts as 0: the checker then names it
    (`closed_rows`)."""
    from scheduler.service.clock import last_t, read_state

    last = rows[-1].get("t")
    if isinstance(last, bool) or not isinstance(last, int | float):
        last = 0.0
    clock = data_dir / CLOCK
    if not clock.exists():
        return last, None
    try:
        state = read_state(clock, fix=f"move it away to close the run at its last row (t={last:g})")
    except ValueError as e:
        raise CloseInvalid(str(e)) from None
    return max(last, round(last_t(state), 6)), state.get("scheduler")


def served_by(data_dir: Path, given: str | None, recorded: str | None) -> str:
    """The scheduler the run is labelled with: the one `unstuck serve` recorded in its clock
    file, which --scheduler may repeat but not contradict (the gate would judge the history
    under the other's name); --scheduler when the folder records none."""
    from scheduler.service.clock import other_scheduler

    clock = data_dir / CLOCK
    if given is not None and (why := other_scheduler(
            clock, recorded, given, fix=f"pass --scheduler {recorded}, or leave it out")):
        raise CloseInvalid(why)
    if scheduler := given or recorded:
        return scheduler
    held = ("records no scheduler (written before `unstuck serve` recorded it)"
            if clock.exists() else "no such file, so nothing records the scheduler that ran")
    raise CloseInvalid(f"--scheduler: missing; {clock}: {held}: pass the --scheduler given to "
                       "`unstuck serve`, e.g. -s reference")


def closed_rows(rows: list[dict[str, Any]], t: float, scenario: Any, scheduler: str) -> list[dict[str, Any]]:
    """`rows` and their `run.end` row, checked by the checker (`HistoryInvalid` names the rows)."""
    from scheduler.history import HistoryEvent, Kind, Source
    from unstuck import checker

    end = HistoryEvent(t, Kind.RUN_END, Source.HARNESS, data={
        "bound_s": scenario.bounds.apply_pending_s, "drain_s": scenario.drain_s,
        "scenario": scenario.name, "scheduler": scheduler}).to_row(len(rows))
    out = [*rows, end]
    checker.check(out)
    return out


def write_folder(out: Path, rows: list[dict[str, Any]], scenario_name: str, scenario_file: Path,
                 scheduler: str) -> Path:
    """OUT as a results folder (results.write_manifest, folders.mark): the history as one
    seed's canonical JSONL, the scenario's copy where the gate reads it. Built beside OUT (a
    symlink's folder: beside the one it names) and renamed into place, over OUT when it is an
    empty folder (one rename: OUT is never missing), so on any error OUT is as it was.
    Returns the history's path."""
    from scheduler import files
    from scheduler.history import canonical_bytes
    from unstuck import folders, results

    target = Path(os.path.realpath(out)) if out.is_symlink() else out
    made: list[Path] = []
    tmp = target.parent / f".{target.name}.{os.getpid()}.tmp"
    try:
        folders.make_missing(target.parent, made)
        shutil.rmtree(tmp, ignore_errors=True)
        folders.mark(tmp, "results")
        history = tmp / "histories" / scenario_name / scheduler / f"seed-{SEED}.jsonl"
        history.parent.mkdir(parents=True)
        files.write_bytes(history, canonical_bytes(rows))
        results.write_manifest(tmp, {scenario_name: str(scenario_file)}, [scheduler],
                               {scenario_name: 1}, SEED, world="live")
        os.rename(tmp, target)  # replaces an empty folder (checked before) atomically
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        folders.unmake(made)
        raise
    return out / "histories" / scenario_name / scheduler / f"seed-{SEED}.jsonl"


def _overlap_problem(out: Path, data_dir: Path) -> str | None:
    """Why OUT must not be where it is: DATA_DIR itself, inside it, or a folder holding it
    (checked before OUT is probed or its emptiness named: its fix must not be to delete the run)."""
    o, d = out.resolve(), data_dir.resolve()
    relation = ("is" if o == d else "is inside" if o.is_relative_to(d)
                else "holds" if d.is_relative_to(o) else None)
    if relation is None:
        return None
    example = d.parent / ("live" if d.name != "live" else "live-closed")
    return (f"--out {out}: {relation} DATA_DIR {data_dir}, which close-run never writes; choose "
            f"a new folder outside it, e.g. {example}")


def close_run(
    data_dir: Annotated[Path, typer.Argument(metavar="DATA_DIR", help="The --data-dir of `unstuck serve` (read, never written).", show_default=False)],
    scenario_file: Annotated[Path | None, typer.Option("--scenario", help="The scenario the run is judged as: its bounds give run.end's bound_s and drain_s, its gates and faults the gate's checks.", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(help="A new or empty folder for the results (histories/, scenarios/).", show_default=False)] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", "-s", help="The --scheduler `unstuck serve` ran. Default: the one DATA_DIR/clock.json records; needed only for a folder that records none (no clock file, or one written before serve recorded it).", show_default=False)] = None,
) -> None:
    """Close a live run's history with its run.end row, as a results folder for `unstuck report` and `unstuck gate`."""
    from unstuck import checker, folders
    from unstuck import scenario as scenarios
    from unstuck.cli import fail_input, output_problem, scheduler_problem

    problems: list[str] = []
    scenario = None
    if scenario_file is None:
        problems.append("--scenario: missing; give the scenario file the run is judged as (its "
                        "bounds, gates and faults), e.g. --scenario live.yaml")
    else:
        try:
            scenario = scenarios.load(scenario_file)
        except scenarios.ScenarioInvalid as e:
            problems += e.problems
    if scheduler is not None and (problem := scheduler_problem("--scheduler", [scheduler])):
        problems.append(problem)
    if out is None:
        problems.append("--out: missing; give a new folder for the results, e.g. --out live")
    elif problem := _overlap_problem(out, data_dir):
        problems.append(problem)
    elif problem := output_problem("--out", out, folder=True, example="live"):
        problems.append(problem)
    elif not folders.is_empty(out):
        problems.append(f"--out {out}: not empty; close-run writes a new results folder: choose a "
                        f"new or empty folder (e.g. {out / 'live'}), or delete {out} first")
    if problems:
        fail_input("\n".join(problems))
    assert scenario is not None and scenario_file is not None and out is not None
    try:
        rows, note = read_live_history(data_dir)
        t, recorded = read_clock(data_dir, rows)
        scheduler = served_by(data_dir, scheduler, recorded)
        rows = closed_rows(rows, t, scenario, scheduler)
    except CloseInvalid as e:
        fail_input(str(e))
    except checker.HistoryInvalid as e:
        fail_input(f"{data_dir / HISTORY}: cannot be judged: {e}")
    if note:
        typer.echo(f"note: {note}", err=True)
    try:
        history = write_folder(out, rows, scenario.name, scenario_file, scheduler)
    except OSError as e:
        fail_input(f"could not write {e.filename or out} ({e.strerror or e}); {out} is as it was: fix "
              "the cause (free space, permissions) and rerun")
    typer.echo(f"closed: {len(rows) - 1} rows and run.end at t={t:g} (bound_s "
               f"{scenario.bounds.apply_pending_s:g}, drain_s {scenario.drain_s:g}) in {history}")
    typer.echo(f"next: unstuck report {out}; unstuck gate {out} -s {scheduler}")


def register(app: typer.Typer) -> None:
    from unstuck.sim_cli import sigterm_interrupts

    app.command("close-run")(sigterm_interrupts()(close_run))
