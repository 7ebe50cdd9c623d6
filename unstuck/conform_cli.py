"""`unstuck conform RUN... [--scenario FILE | --sim DIR]`: does the model predict the run?

Each RUN is a results folder (a live run closed by `unstuck close-run`, or a simulated one);
each of its (scenario, scheduler) pairs is compared with many simulated seeds of the same
scenario under the same scheduler (unstuck/conformance.py, docs/conformance.md). The model
is simulated here (`--seeds`, from `--seed-start`) from `--scenario`, or from the scenario
file the run's folder names; or read from a results folder that holds it already (`--sim`).

Exit codes: 0 every run's outcome and latencies are ones the model gives; 1 drift (a run
ended in a way the model gives in fewer than `--min-share` of its seeds, or a latency lies
outside the model's band); 2 bad input (a folder that holds no results, a scenario file that
does not load or is not the run's, a model without the run's pair); 130 interrupted.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from unstuck import conformance
from unstuck.sim_cli import SEED_LIMIT

if TYPE_CHECKING:  # imported where used: every `unstuck` process starts through the CLI,
    # and results imports pandas (`conformance`)
    from unstuck import results
    from unstuck import scenario as scenarios


def conform(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN...", help="Results folders of the runs to check (`unstuck close-run --out`).", show_default=False)],
    scenario: Annotated[Path | None, typer.Option(help="The scenario to simulate (default: the one each run's folder names).")] = None,
    sim: Annotated[Path | None, typer.Option(help="Read the model from this results folder (`unstuck sim --out`) instead of simulating it.")] = None,
    seeds: Annotated[int, typer.Option(help="Simulated seeds of the model.")] = 200,
    seed_start: Annotated[int, typer.Option(help="First simulated seed.")] = 0,
    min_share: Annotated[float, typer.Option(help="A run's outcome must be the model's in at least this share of its seeds.")] = conformance.MIN_SHARE,
    alpha: Annotated[float, typer.Option(help="A latency must lie in the model's central 1 - alpha band ...")] = conformance.ALPHA,
    slack: Annotated[float, typer.Option(help="... widened by this many seconds on each side.")] = conformance.SLACK_S,
    perturb_ties: Annotated[bool, typer.Option(help="Simulate with same-time events in random order (`unstuck sim --perturb-ties`): a live run's timers never fire at the same instant.")] = True,
    workers: Annotated[int | None, typer.Option(help="Worker processes for the simulation (default: all cores).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per scenario and scheduler on stdout.")] = False,
) -> None:
    """Compare runs with simulated seeds of their scenario; exit 1 if the model drifted."""
    from unstuck.cli import fail_input

    problems = []
    if scenario is not None and sim is not None:
        problems.append("--scenario and --sim: give one (the model to simulate, or one simulated already)")
    if seeds < 1:
        problems.append(f"--seeds {seeds}: simulate at least 1 seed (200 by default)")
    if seed_start < 0:
        problems.append(f"--seed-start {seed_start}: seeds are integers >= 0")
    elif seed_start + seeds > SEED_LIMIT:
        problems.append(f"--seed-start {seed_start}: the seeds must stay below 2**64 ({SEED_LIMIT}); "
                        "larger ones would repeat smaller ones (the RNG keeps 64 bits)")
    if not 0.0 <= min_share <= 1.0:
        problems.append(f"--min-share {min_share:g}: a share between 0 and 1, e.g. 0.05")
    if not 0.0 <= alpha < 1.0:
        problems.append(f"--alpha {alpha:g}: between 0 and 1 (0.02 keeps the model's 1st to 99th percentile)")
    if not (math.isfinite(slack) and slack >= 0.0):
        problems.append(f"--slack {slack:g}: seconds >= 0")
    if workers is not None and workers < 1:
        problems.append(f"--workers {workers}: use at least 1")
    from unstuck import results

    observed: list[results.Results] = []
    for run in runs:
        try:
            observed.append(results.load(run))
        except results.ResultsInvalid as e:
            problems.append(f"RUN {e}")
    if problems:
        fail_input("\n".join(problems))
    try:
        checks = [c for res in observed for c in _check(res, scenario, sim, seeds, seed_start,
                                                         workers, min_share, alpha, slack, as_json,
                                                         perturb_ties)]
    except (conformance.ConformInvalid, results.ResultsInvalid) as e:
        fail_input(str(e))
        return
    if as_json:
        for c in checks:
            print(json.dumps(c.to_dict(), sort_keys=True))
    else:
        for c in checks:
            _print(c)
    raise typer.Exit(0 if all(c.ok for c in checks) else 1)


def _check(res: results.Results, scenario: Path | None, sim: Path | None, seeds: int,
           seed_start: int, workers: int | None, min_share: float, alpha: float, slack: float,
           quiet: bool, perturb_ties: bool) -> list[conformance.Conformance]:
    from unstuck import results

    kw = {"min_share": min_share, "alpha": alpha, "slack_s": slack}
    if sim is not None:
        return conformance.compare(res, results.load(sim), **kw)
    out = []
    for name, scheduler in conformance.pairs(res):
        path = scenario or Path(res.scenario_path(name))
        loaded = _scenario(path, name, res, named_by_run=scenario is None)
        # The model's histories are read again (each cut where the run ended), so its
        # folder lives until the comparison is done.
        with tempfile.TemporaryDirectory(prefix="unstuck-conform-") as tmp:
            from unstuck.sim_cli import run_scenarios

            folder = Path(tmp) / "model"
            run_scenarios([(loaded, path)], [scheduler], {name: seeds}, seed_start, folder,
                          workers or os.cpu_count() or 1, progress=sys.stderr.isatty() and not quiet,
                          perturb_ties=perturb_ties)
            out += [c for c in conformance.compare(res, results.load(folder), **kw)
                    if (c.scenario, c.scheduler) == (name, scheduler)]
    return out


def _scenario(path: Path, name: str, res: results.Results, *, named_by_run: bool) -> scenarios.Scenario:
    """The scenario to simulate: it must load, and be the one the run was judged by."""
    from unstuck import scenario as scenarios

    try:
        loaded = scenarios.load(path)
    except scenarios.ScenarioInvalid as e:
        how = (f" (the scenario {res.root} names for {name}; give it with --scenario FILE)"
               if named_by_run and not path.is_file() else "")
        raise conformance.ConformInvalid("\n".join(e.problems) + how) from None
    if loaded.name != name:
        raise conformance.ConformInvalid(
            f"--scenario {path}: is scenario {loaded.name!r}, and {res.root} ran {name!r}; "
            f"give the scenario the run was judged by (its name: field is {name!r})")
    return loaded


def _print(c: conformance.Conformance) -> None:
    con = Console(highlight=False, soft_wrap=True)
    head = "[green]conforms[/]" if c.ok else "[red]drift[/]"
    con.print(f"[bold]{escape(c.scenario)}[/] under [bold]{c.scheduler}[/]: {head} "
              f"(model: {c.model_seeds} simulated seeds)")
    observed = {r.outcome for r in c.runs}
    table = Table("seeds", "share", "outcome (invariants broken; task ends; fault hits)", "run")
    shown = [o for o, _ in c.model_outcomes[:5]]
    for o, n in c.model_outcomes:
        if o in shown or o in observed:
            table.add_row(str(n), f"{n / c.model_seeds:.0%}", escape(str(o)),
                          "◀ the run" if o in observed else "")
    for o in sorted(observed - {o for o, _ in c.model_outcomes}):
        table.add_row("0", "0%", escape(str(o)), "◀ the run")
    rest = len(c.model_outcomes) - len([o for o, _ in c.model_outcomes if o in shown or o in observed])
    if rest:
        table.add_row("", "", f"… {rest} other outcomes", "")
    con.print(table)
    for r in c.runs:
        if r.outcome_drift:
            con.print(f"  seed {r.seed}: [red]its outcome is the model's in {r.share:.1%} of seeds[/], "
                      f"under the {c.min_share:.0%} asked (--min-share): the model, or the "
                      "scenario's description of the run, is wrong")
        if r.latencies:
            lat = Table("metric", "run s", "model low", "median", "high", "rank", "")
            for x in r.latencies:
                lat.add_row(x.metric, f"{x.observed:.2f}", *(f"{v:.2f}" if math.isfinite(v) else "-"
                                                            for v in (x.low, x.median, x.high)),
                            "-" if math.isnan(x.rank) else f"{x.rank:.0%}",
                            "[red]drift[/]" if x.drift else "ok")
            con.print(lat)
            con.print(f"  (band: the model's {c.alpha / 2:.0%} to {1 - c.alpha / 2:.0%} quantiles, "
                      f"widened by {c.slack_s:g} s; a metric the model never measured is drift)")


def register(app: typer.Typer) -> None:
    from unstuck.sim_cli import sigterm_interrupts

    app.command("conform")(sigterm_interrupts()(conform))
