"""`unstuck suite`, `unstuck report` and `unstuck gate`: the main job and what CI runs.

* `suite` runs every scenario under every scheduler over the same process pool as `unstuck
  sim` (`sim_cli.run_scenarios`), writes the results as Parquet under OUT/results and the
  report next to them, prints the gate's one-line verdicts and exits 0 once the report is
  written: measuring is its job, judging is the gate's (exit 2 on bad input, or with
  `--check-determinism` a seed that wrote another history when run again).
* `report` re-renders a report from a saved results folder (simulated or live).
* `gate` judges a results folder against the scenarios' gates sections (or the flags), writes
  JUnit XML and exits 0 pass, 1 deviated, 2 bad input or harness error, 3 the run proved
  nothing (a fault never took effect, a goal was never reached). docs/report.md and
  docs/gate.md describe them.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from scheduler import files
from scheduler.variants import NAMES
from unstuck import folders
from unstuck.text import counted

if TYPE_CHECKING:
    from unstuck.report.build import Report
    from unstuck.results import Results
    from unstuck.scenario import Scenario

DEFAULT_OUT = Path("reports/latest")


def _fail(message: str) -> NoReturn:
    from unstuck.cli import fail_input

    fail_input(message)
    raise AssertionError("fail_input raises")


def scenario_files(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """Expand folders to their *.yaml and *.yml files (sorted), as `unstuck sim` takes
    either; report paths that do not exist."""
    yaml_files, problems = [], []
    for p in paths:
        if p.is_dir():
            found = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
            if not found:
                problems.append(f"{p}: a folder with no *.yaml or *.yml scenario files")
            yaml_files += found
        elif p.exists():
            yaml_files.append(p)
        else:
            problems.append(f"{p}: no such file or folder; give scenario files or a folder of them, "
                            "e.g. scenarios/")
    return yaml_files, problems


def scenario_dir_problems(dirs: list[Path] | None) -> list[str]:
    """`--scenarios` folders named on the command line that are not folders (the default,
    scenarios/, may be absent): a typo would otherwise be skipped silently, the report then
    judging with default thresholds."""
    return [f"--scenarios {d}: " + ("is a file, not a folder" if d.exists() else "no such folder")
            + "; give the folder holding the scenario files, e.g. scenarios/"
            for d in dirs or [] if not d.is_dir()]


def _suite_seeds(s: Scenario) -> int:
    return s.suite_seeds or s.seeds


def suite(
    paths: Annotated[list[Path] | None, typer.Argument(metavar="[SCENARIO_DIR|FILES...]", help="Scenario files or folders (default: scenarios/).", show_default=False)] = None,
    schedulers: Annotated[list[str], typer.Option("--schedulers", "-s", help="seed, seed-proposal, seed-head, reference, or all; repeat or comma-separate for several.")] = ["all"],  # noqa: B006
    seeds: Annotated[int | None, typer.Option(help="Seeds per scenario (default: each scenario's suite_seeds, else its seeds).")] = None,
    seed_start: Annotated[int, typer.Option(help="First seed.")] = 0,
    out: Annotated[Path, typer.Option(help="Report folder; results go to OUT/results (replaced).")] = DEFAULT_OUT,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: all cores).")] = None,
    check_determinism: Annotated[bool, typer.Option(help="Run every seed again in fresh interpreters with another str hash seed; exit 2 if any history differs.")] = False,
) -> None:
    """Run every scenario under every scheduler, write results and the report; exit 0 when written."""
    from unstuck import folders, report, results
    from unstuck.cli import output_problem
    from unstuck.sim_cli import run_inputs

    found, problems = scenario_files(paths or [Path("scenarios")])
    loaded, scheds, counts, more = run_inputs(found, schedulers, "--schedulers", seeds,
                                              seed_start, workers, _suite_seeds)
    problems += more
    res_dir = out / "results"  # cleared of an earlier run's seeds by run_scenarios
    problem = output_problem("--out", out, folder=True)
    if problem:
        problems.append(problem)
    else:
        problems += report.output_problems("--out", out, res_dir)
        problems += folders.output_problems("--out", res_dir, [p for _, p in loaded])
    if problems:
        _fail("\n".join(problems))

    from unstuck.sim_cli import run_scenarios

    t0 = time.perf_counter()
    jobs = sum(counts.values()) * len(scheds)
    typer.echo(f"unstuck suite: {counted(len(loaded), 'scenario')} x {counted(len(scheds), 'scheduler')}, "
               f"{counted(jobs, 'seed')} on {counted(workers or os.cpu_count() or 1, 'worker')}", err=True)
    n, progress = workers or os.cpu_count() or 1, sys.stderr.isatty()
    had_report = report.clear(out)  # before any seed: a suite stopped half-way leaves no verdict
    try:
        _, done, sim_s = run_scenarios(loaded, scheds, counts, seed_start, res_dir, n,
                                       progress=progress, digest_all=check_determinism)
    except KeyboardInterrupt:
        typer.echo("unstuck: no report written" + (f"; the previous one in {out} was removed so "
                   "that it cannot pass for this run's" if had_report else ""), err=True)
        raise
    t1 = time.perf_counter()
    rep = _render(results.load(res_dir), out, [], f"{res_dir} holds this run's complete results",
                  f"unstuck report {out}")
    t2 = time.perf_counter()
    for line in rep.gate.lines():
        typer.echo(line)
    typer.echo(f"\nsimulated and judged {counted(len(done), 'seed')} in {sim_s:.1f} s; report in {t2 - t1:.1f} s; "
               f"total {t2 - t0:.1f} s")
    typer.echo(f"report: {rep.index}  (also summary.md, junit.xml, figures/, tables/, results/)")
    typer.echo(f"gate verdict: {rep.gate.verdict} (`unstuck gate {out}` exits {rep.gate.exit_code})")
    if check_determinism:  # after the report, which an interrupted check leaves whole
        from unstuck import determinism

        value, diverged = determinism.check({s.name: s.world() for s, _ in loaded}, done, n,
                                            progress=progress)
        if diverged:
            typer.echo("error: " + determinism.report(diverged, len(done), value), err=True)
            raise typer.Exit(2)
        typer.echo(determinism.passed(len(done), value))


def _render(res: Results, out: Path, scenario_dirs: list[Path], results_state: str,
            rerun: str) -> Report:
    """`report.render`, its failures turned into messages: bad input and write errors exit
    2 naming the cause, and Ctrl-C (exit 130) says what is and is not on disk, since the
    earlier report was removed first (`report.clear`)."""
    from unstuck import gate as gates
    from unstuck import report, results

    again = f"render it with `{rerun}`"
    try:
        return report.render(res, out, scenario_dirs=scenario_dirs)
    except KeyboardInterrupt:
        typer.echo(f"unstuck: interrupted while rendering the report: {results_state}; the report "
                   f"in {out} is missing or incomplete (no earlier one is left there); {again}",
                   err=True)
        raise
    except (gates.GateInputError, results.ResultsInvalid) as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"could not write the report into {out} ({e}); {results_state}: fix the cause "
              f"(free space, permissions) and {again}")


def report_cmd(
    directory: Annotated[Path, typer.Argument(metavar="RESULTS_DIR", help="A results folder, or a report folder holding results/.")],
    out: Annotated[Path | None, typer.Option(help="Where to write the report (default: the folder that holds results/, else RESULTS_DIR).")] = None,
    scenarios_dir: Annotated[list[Path] | None, typer.Option("--scenarios", help="Folder of scenario files, when the results hold no copies.")] = None,
) -> None:
    """Re-render the report (index.html, summary.md, figures, tables, junit.xml) from saved results."""
    from unstuck import report, results
    from unstuck.cli import output_problem

    if problems := scenario_dir_problems(scenarios_dir):
        _fail("\n".join(problems))
    try:
        res = results.load(directory)
    except results.ResultsInvalid as e:
        _fail(str(e))
    # The report goes beside results/ only when the user named the report folder; a results
    # folder they named gets its report inside (whatever it is called: its parent is theirs).
    named_parent = Path(directory).resolve() != res.root.resolve()
    default = res.root.parent if named_parent else res.root
    target = out or default
    problem = output_problem("--out", target, folder=True)
    if problem is None:
        problem = next(iter(report.output_problems("--out", target, res.root, default=default)), None)
    if problem:
        _fail(problem)
    rerun = f"unstuck report {directory}" + (f" --out {out}" if out else "")
    rep = _render(res, target, scenarios_dir or [Path("scenarios")],
                  f"the results in {res.root} are unchanged", rerun)
    for line in rep.gate.lines():
        typer.echo(line)
    for note in rep.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"report: {rep.index}")


def gate_cmd(
    directory: Annotated[Path, typer.Argument(metavar="RESULTS_DIR", help="A results folder, or a report folder holding results/.")],
    max_stuck: Annotated[int | None, typer.Option(help="Stuck tasks allowed per scenario and scheduler (default: the scenario's gates.max_stuck).")] = None,
    recovery_p99: Annotated[float | None, typer.Option(help="Bound on the recovery latency p99, seconds (default: gates.recovery_p99_s).")] = None,
    max_violations: Annotated[int | None, typer.Option(help="Violations of each invariant allowed (default: gates.max_violations).")] = None,
    confirm_to_apply_p99: Annotated[float | None, typer.Option(help="Bound on the confirm-to-apply p99, seconds (default: gates.confirm_to_apply_p99_s).")] = None,
    schedulers: Annotated[list[str] | None, typer.Option("--schedulers", "-s", help="Gate only these schedulers (repeat or comma-separate).")] = None,
    scenarios_dir: Annotated[list[Path] | None, typer.Option("--scenarios", help="Folder of scenario files, when the results hold no copies.")] = None,
    junit_path: Annotated[Path | None, typer.Option("--junit", help="JUnit XML file (default: in RESULTS_DIR's report folder: junit.xml, the report's own, when this gate judges what the report did; junit-<schedulers>.xml or junit-[<schedulers>-]overrides.xml for a narrower selection or other thresholds).")] = None,
) -> None:
    """Judge saved results: exit 0 pass, 1 deviated, 2 bad input or harness error, 3 the run proved nothing (a fault never took effect, a goal was never reached)."""
    from unstuck import gate as gates
    from unstuck import results
    from unstuck.cli import output_problem, scheduler_problem
    from unstuck.report import junit
    from unstuck.sim_cli import expand_schedulers

    problems = []
    for flag, v in (("max-stuck", max_stuck), ("recovery-p99", recovery_p99),
                    ("max-violations", max_violations), ("confirm-to-apply-p99", confirm_to_apply_p99)):
        if v is not None and not math.isfinite(v):  # nan fails every pair, inf passes any
            problems.append(f"--{flag} {v}: not a bound; give a number of seconds >= 0, or leave "
                            "the flag out for the scenario's own")
        elif v is not None and v < 0:
            problems.append(f"--{flag} {v}: must be >= 0")
    only = expand_schedulers(schedulers) if schedulers else None
    if problem := scheduler_problem("--schedulers", only or [], many=True):
        problems.append(problem)
    if junit_path is not None and (problem := output_problem("--junit", junit_path, folder=False,
                                                                  example="junit.xml")):
        problems.append(problem)
    problems += scenario_dir_problems(scenarios_dir)
    if problems:
        _fail("\n".join(problems))
    try:
        res = results.load(directory)
        found = gates.find_scenarios(res, list(dict.fromkeys(res.runs["scenario"])),
                                     scenarios_dir or [Path("scenarios")], strict=True)
        # Beside results/ only when the user named the report folder (see `report_cmd`).
        folder = res.root.parent if Path(directory).resolve() != res.root.resolve() else res.root
        result = gates.evaluate(res, found, schedulers=only, relative_to=folder,
                                max_stuck=max_stuck, recovery_p99_s=recovery_p99,
                                max_violations=max_violations,
                                confirm_to_apply_p99_s=confirm_to_apply_p99)
    except (results.ResultsInvalid, gates.GateInputError) as e:
        _fail(str(e))
    except Exception as e:  # noqa: BLE001 - the gate's contract: a harness error is exit 2, named
        _fail(f"harness error while judging {directory}: {e.__class__.__name__}: {e}")
    overridden = any(v is not None for v in (max_stuck, recovery_p99, max_violations,
                                              confirm_to_apply_p99))
    default = folder / junit_name(only, list(res.runs["scheduler"]), overridden)
    target = junit_path or default
    if part := folders.results_part(target, res.root):
        _fail(f"--junit {target}: would replace {part}, part of the results this gate judges; "
              f"write the JUnit XML beside them, e.g. --junit {folder / 'junit.xml'}")
    if target.resolve() == (folder / "junit.xml").resolve() and default.name != "junit.xml":
        what = " and ".join(p for p in ("only " + ", ".join(only or []) if only else "",
                                        "other thresholds" if overridden else "") if p)
        typer.echo(f"note: {target} now holds this gate's verdict ({what}), while index.html and "
                   f"summary.md in {folder}, if any, still state the report's (every scheduler, "
                   f"the scenarios' thresholds); the default for this gate is {default.name}",
                   err=True)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        files.write_text(target, junit.to_xml(result))
    except OSError as e:
        _fail(f"could not write the JUnit XML to {target} ({e}); fix the cause (free space, "
              "permissions) or pass --junit FILE elsewhere, and rerun")
    for line in result.lines():
        typer.echo(line)
    for c in result.checks():
        if c.status == gates.ERROR:
            typer.echo(f"  {c.scenario} / {c.scheduler}: {c.message}", err=True)
    typer.echo(f"gate: {result.verdict} (exit {result.exit_code}); JUnit: {target}")
    raise typer.Exit(result.exit_code)


def junit_name(only: list[str] | None, ran: list[str], overridden: bool) -> str:
    """The gate's default JUnit file name. `junit.xml` is the report's: the gate over every
    scheduler that ran with the scenarios' own thresholds, the verdict index.html and
    summary.md state. A gate of fewer schedulers or other thresholds writes a file named for
    what it judged (`junit-reference.xml`, `junit-reference-overrides.xml`,
    `junit-overrides.xml`), so that it never contradicts the report beside it."""
    parts = []
    if only is not None and set(ran) - set(only):
        rank = {n: i for i, n in enumerate(NAMES)}
        parts.append("+".join(sorted(set(only) & set(ran), key=lambda n: rank.get(n, len(rank)))))
    if overridden:
        parts.append("overrides")
    return "-".join(["junit", *parts]) + ".xml"


def register(app: typer.Typer) -> None:
    from unstuck.sim_cli import sigterm_interrupts

    for name, command in (("suite", suite), ("report", report_cmd), ("gate", gate_cmd)):
        app.command(name)(sigterm_interrupts()(command))
