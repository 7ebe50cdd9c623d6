"""`unstuck shrink SCENARIO --scheduler S --seed N`: a 1-minimal set of a failing seed's faults
that still breaks the same invariant for the same task (unstuck/shrink.py), printed with the
minimal run's witness, and written as a scenario that `unstuck sim` replays.

Exit codes: 0 shrunk; 2 bad input, or a seed with nothing to shrink (it breaks no invariant,
or not the one asked for), or an --out that could not be written (after the result); 130 interrupted by Ctrl-C, 143 by SIGTERM (the trials stop at
once, the message says so, and nothing is written).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from unstuck import checker
from unstuck.checker import INVARIANTS
from unstuck.sim_cli import (
    SEED_LIMIT,
    SIGNALS,
    _signals_blocked,
    _worker_init,
    row_text,
    sigterm_interrupts,
)

if TYPE_CHECKING:  # imported where used: every `unstuck` process starts through the CLI
    from unstuck import shrink as shrinking


def shrink(
    scenario_file: Annotated[Path, typer.Argument(metavar="SCENARIO", help="The scenario YAML file of the failing run.", show_default=False)],
    scheduler: Annotated[str, typer.Option("--scheduler", "-s", help="seed | seed-proposal | seed-head | reference")] = "seed",
    seed: Annotated[int, typer.Option(help="The failing seed.")] = 0,
    invariant: Annotated[str | None, typer.Option(help="Keep this invariant's violation (default: the seed's first, stuck tasks first).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the shrunk scenario here (YAML).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    workers: Annotated[int | None, typer.Option(help="Worker processes for the trial runs (default: all cores).")] = None,
    perturb_ties: Annotated[bool, typer.Option(help="The failing run shuffled same-time events (as `unstuck sim --perturb-ties`).")] = False,
) -> None:
    """Shrink a failing seed's faults to a minimal set that still breaks the same invariant."""
    from unstuck import scenario as scenarios
    from unstuck import shrink as shrinking
    from unstuck.cli import fail_input, output_problem, scheduler_problem

    problems: list[str] = []
    loaded = None
    try:
        # Read once: the --out file is built from this text, and SCENARIO may be a pipe.
        loaded, text = scenarios.load_with_text(scenario_file)
    except scenarios.ScenarioInvalid as e:
        problems += e.problems
    if problem := scheduler_problem("--scheduler", [scheduler]):
        problems.append(problem)
    if seed < 0:
        problems.append(f"--seed {seed}: seeds are integers >= 0")
    elif seed >= SEED_LIMIT:
        problems.append(f"--seed {seed}: seeds must stay below 2**64 ({SEED_LIMIT}); larger ones "
                        "would repeat smaller ones (the RNG keeps 64 bits)")
    if invariant is not None and invariant not in INVARIANTS:
        problems.append(f"--invariant {invariant!r} is not an invariant: choose one of {', '.join(INVARIANTS)}")
    if workers is not None and workers < 1:
        problems.append(f"--workers {workers}: use at least 1")
    if out is not None:
        problem = output_problem("--out", out, folder=False, example="shrunk.yaml")
        if problem:
            problems.append(problem)
        elif out.exists() and out.resolve() == scenario_file.resolve():
            problems.append(f"--out {out}: is the scenario being shrunk; write the shrunk one "
                            "beside it, e.g. --out shrunk.yaml")
    if problems or loaded is None:
        fail_input("\n".join(problems))
        return

    cfg = loaded.world()
    n = workers or os.cpu_count() or 1
    progress = sys.stderr.isatty() and not as_json
    try:
        with _pool(n) as pool, Progress(console=Console(stderr=True), transient=True,
                                         disable=not progress) as bar:
            task = bar.add_task("shrinking (trial runs)", total=None)

            def run_batch(trials: list[shrinking.Trial]) -> list[bool]:
                if pool is None:
                    verdicts = [shrinking.still_fails(t) for t in trials]
                else:
                    with _signals_blocked():  # a worker forked here never sees them
                        futures = [pool.submit(shrinking.still_fails, t) for t in trials]
                    verdicts = [f.result() for f in futures]
                bar.advance(task, len(trials))
                return verdicts

            result = shrinking.shrink(cfg, scheduler, seed, invariant=invariant,
                                      perturb_ties=perturb_ties, run_batch=run_batch, width=n)
    except (shrinking.NothingToShrink, shrinking.ShrinkFailed) as e:
        fail_input(str(e))
        return
    except KeyboardInterrupt:
        typer.echo("unstuck shrink: interrupted; the trials stopped and nothing was written",
                   err=True)  # SIGTERM too: `Terminated` is a KeyboardInterrupt
        raise
    # The result first: a write that fails (a full disk) then costs the file alone, not
    # the trials' answer (a day's shrink takes minutes).
    if as_json:
        print(json.dumps(_summary(result, out), sort_keys=True))
    else:
        _print(result, out)
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            shrinking.write_scenario(out, str(scenario_file), text, result)
        except OSError as e:
            fail_input(f"--out {out}: could not write the shrunk scenario "
                       f"({e.strerror or e.__class__.__name__}); the result above is complete; "
                       "free space or choose another file, and shrink again with --out FILE")


@contextmanager
def _pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """One pool for every trial of the shrink, forked, so each worker already holds the
    code. The workers ignore Ctrl-C and SIGTERM, which a terminal or CI sends to the whole
    process group, and die with this process (`sim_cli._worker_init`). On an interrupt here
    (Ctrl-C, or SIGTERM as `sigterm_interrupts` raises it) they are killed, so it does not
    wait for a trial in hand (one can take a minute), and nothing is written before the
    shrink ends. An executor, not a `multiprocessing.Pool`: a Pool whose worker died while it
    waited for work hangs in its terminate (the worker held the queue's lock); an executor
    sees each worker's exit. None with one worker: the trials run here."""
    if workers <= 1:
        yield None
        return
    ctx = get_context("fork" if sys.platform.startswith("linux") else "spawn")
    stop = ctx.RawValue("b", 0)  # _worker_init's flag; the trials do not read it
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                               initargs=(os.getpid(), stop, SIGNALS))
    try:
        yield pool
    except BaseException:
        for proc in list(pool._processes.values()):  # no public way to end the workers
            proc.kill()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _fault_rows(result: shrinking.Shrunk) -> list[dict]:
    return [r for r in result.rows if r["kind"] == "fault"]


def _summary(result: shrinking.Shrunk, out: Path | None) -> dict:
    return {
        "scenario": result.scenario, "scheduler": result.scheduler, "seed": result.seed,
        "invariant": result.target.invariant, "task": result.target.task,
        "workspace": result.target.workspace,
        "created": ({"t": result.target.created[0], "type": result.target.created[1]}
                    if result.target.created else None),
        "attempts": len(result.attempts),
        "faults": [{"type": f.type, "at": f.at, "within_s": f.within_s, "target": f.target}
                   for f in result.faults],
        "fired": [{"t": r["t"], "reason": r["reason"], "pod": r["pod"], "agent": r["agent"],
                   "task": r["task"]} for r in _fault_rows(result)],
        "violation": result.violation.to_dict(), "runs": result.runs,
        "wall_s": round(result.wall_s, 3), "out": str(out) if out else None,
    }


def _print(result: shrinking.Shrunk, out: Path | None) -> None:
    # As `unstuck sim` prints: prose is not wrapped by rich (the terminal wraps it), so the
    # replay command stays one line to copy, and what the run wrote is escaped, not markup.
    from sim.config import names_target
    from unstuck import shrink as shrinking

    con = Console(highlight=False, soft_wrap=True)
    kept, total = len(result.keep), len(result.attempts)
    con.print(f"[bold]{result.scenario}[/] seed {result.seed} under [bold]{result.scheduler}[/]: "
              f"[red]{result.target}[/] needs {kept} of its {total} fault attempts "
              f"({result.runs} runs, {result.wall_s:.1f} s).")
    if not kept:
        con.print("  It breaks without any fault: the workload alone does it.")
    else:
        con.print("  Without any one of these, it does not happen:")
        for f in result.faults:
            how = ", ".join(x for x in (f.target if names_target(f.type, f.target) else "",
                                        f.mode if f.type in ("pod-kill", "hpa-scale-down") else "") if x)
            con.print(f"    due t={f.at:g} {f.type}{f' ({how})' if how else ''}")
        con.print("  What they did in the shrunk run:")
        for r in _fault_rows(result):
            hit = " ".join(f"{k}={r[k]}" for k in ("pod", "agent", "task") if r.get(k) is not None)
            con.print(escape(f"    t={r['t']:g} {r['data'].get('type')}: {r['reason']}"
                             f"{'  ' + hit if hit else ''}"))
        idle = kept - len(_fault_rows(result))
        if idle > 0:  # only under --perturb-ties (docs/shrink.md)
            con.print(f"    ({idle} of them found no target; with --perturb-ties a fault that "
                      "never fires still moves later tie-breaks)")
    v = result.violation
    con.print(f"  In the shrunk run, at t={v.t:g}: {escape(v.message)}")
    con.print("    witness:")
    for row in checker.witness_rows(result.rows, v):
        con.print(escape(f"      #{row['seq']} t={row['t']:g} {row['kind']} {row_text(row)}"))
    if out is not None:
        con.print(escape(f"  shrunk scenario: {out}; replay: {shrinking.replay_command(out, result)}"))
    else:
        con.print("  (--out FILE writes it as a scenario that `unstuck sim` replays)")


def register(app: typer.Typer) -> None:
    app.command("shrink")(sigterm_interrupts()(shrink))
