"""`unstuck sim SCENARIO...`: run scenarios in the simulated world, judge every seed, report.

Each (scenario, scheduler, seed) is one job: build the world, run it, judge the history with
`unstuck.checker`, keep a small summary (and write Parquet with `--out`). Jobs are spread over
a process pool (fork); the seeds of a scenario are `--seed-start .. --seed-start + N - 1`, so
any seed can be re-run alone and gives the same history (same digest) in any process.

Exit codes: 0 every invariant held; 1 an invariant was violated (stuck tasks are named, with
witnesses); 2 bad input (every problem of every scenario file is listed, one line each), or a
seed that wrote another history when run again (`--check-determinism`, unstuck/determinism.py);
130 interrupted by Ctrl-C, 143 by SIGTERM (`run_batches`: the seeds in hand finish first).
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scheduler import files
from scheduler import history as histories
from scheduler.gc_pause import paused
from scheduler.model import TaskStatus
from scheduler.variants import NAMES
from unstuck import checker, folders, reproduce
from unstuck.checker import INVARIANTS
from unstuck.checker.metrics import CENSORED, HitKey, percentiles
from unstuck.checker.verdicts import stuck_first
from unstuck.text import counted

if TYPE_CHECKING:  # imported where used: every `unstuck` process starts through the CLI
    from sim.config import WorldConfig
    from unstuck import scenario as scenarios

WITNESSES_PER_SEED = 1
EXAMPLES_PER_RUN = 3
APPLY_PENDING = TaskStatus.APPLY_PENDING.value  # a fault hit on a task waiting there: `_hits`


@dataclass(frozen=True)
class Job:
    cfg: WorldConfig
    scheduler: str
    seed: int
    want_digest: bool  # compute the digest (the first seed of its scenario and scheduler, or all)
    out: str | None
    keep_rows: bool
    perturb_ties: bool


@dataclass
class SeedResult:
    scenario: str
    scheduler: str
    seed: int
    counts: dict[str, int]
    stuck_tasks: tuple[int, ...]
    examples: list[dict[str, Any]]
    recovery: list[float]  # every hit owed a recovery; NaN: it never recovered
    confirm_to_apply: list[float]  # every confirmed plan epoch; NaN: its apply never started
    unrecovered: int
    events: int
    rows: int
    wall_s: float
    faults_fired: int
    faults_missed: int
    fault_types: tuple[str, ...] = ()  # the types of the faults that took effect
    # Fault hits (docs/metrics.md, "Hit"), censored ones too, by what they hit: what the seed
    # reached, counted by status in the table and matched by the scenario's goals.
    hits: dict[HitKey, int] = field(default_factory=dict)
    digest: str | None = None
    history: list[dict[str, Any]] | None = None

    @property
    def ok(self) -> bool:
        return not any(self.counts.values())


def run_job(job: Job) -> SeedResult:
    """One seed: run, judge, summarise. Runs inside a worker process."""
    with paused():  # judging walks the same long-lived rows (scheduler/gc_pause.py)
        return _run_job(job)


def _run_job(job: Job) -> SeedResult:
    from sim import runner

    t0 = time.perf_counter()
    out = runner.run(job.cfg, job.scheduler, job.seed, perturb_ties=job.perturb_ties)
    verdict, metrics = checker.judge(out.rows)
    examples = []
    for v in stuck_first(verdict.violations)[:WITNESSES_PER_SEED]:
        d = v.to_dict()
        d["rows"] = checker.witness_rows(out.rows, v)
        examples.append(d)
    if job.out:
        from unstuck import results

        results.write_seed(Path(job.out), job.cfg.name, job.scheduler, job.seed, out.rows,
                           verdict, metrics)
    return SeedResult(
        scenario=job.cfg.name, scheduler=job.scheduler, seed=job.seed,
        counts=verdict.counts(), stuck_tasks=verdict.stuck_tasks, examples=examples,
        recovery=[h.latency_s for h in metrics.recovery if h.outcome not in CENSORED],
        confirm_to_apply=[c.latency_s for c in metrics.confirm_to_apply if not c.cancelled],
        unrecovered=metrics.unrecovered, events=out.events, rows=len(out.rows),
        wall_s=time.perf_counter() - t0, faults_fired=out.faults_fired,
        faults_missed=out.faults_missed,
        fault_types=out.fault_types,
        hits=dict(Counter(h.key for h in metrics.recovery)),
        digest=histories.digest(out.rows) if job.want_digest else None,
        history=out.rows if job.keep_rows else None,
    )


@dataclass
class Batch:
    scenario: str
    scheduler: str
    results: list[SeedResult] = field(default_factory=list)
    wall_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        rs = sorted(self.results, key=lambda r: r.seed)
        violations = {name: sum(r.counts[name] for r in rs) for name in INVARIANTS}
        seeds_with = {name: sum(1 for r in rs if r.counts[name]) for name in INVARIANTS}
        rec, c2a = self.latencies()
        events = sum(r.events for r in rs)
        busy = sum(r.wall_s for r in rs)
        return {
            "scenario": self.scenario,
            "scheduler": self.scheduler,
            "seeds": len(rs),
            "seeds_failed": sum(1 for r in rs if not r.ok),
            "violations": violations,
            "seeds_with_violations": seeds_with,
            "stuck_tasks": sum(len(r.stuck_tasks) for r in rs),
            "recovery_latency_s": {k: _num(rec[k]) for k in ("p50", "p95", "p99", "max")},
            "unrecovered": sum(r.unrecovered for r in rs),
            "confirm_to_apply_s": {k: _num(c2a[k]) for k in ("p50", "p99")},
            "applies_not_started": _never(x for r in rs for x in r.confirm_to_apply),
            "events": events,
            "wall_s": round(self.wall_s, 3),
            "events_per_s": round(events / busy) if busy else 0,
            "faults_fired": sum(r.faults_fired for r in rs),
            "faults_missed": sum(r.faults_missed for r in rs),
            "fault_hits": dict(sorted(_hits_by_status(rs).items())),
            "seeds_hit_in_apply_pending": sum(1 for r in rs if any(
                hit.status == APPLY_PENDING for hit in r.hits)),
            "digest": rs[0].digest if rs else None,
        }


    def latencies(self) -> tuple[dict[str, float], dict[str, float]]:
        """Recovery and confirm-to-apply p50/p95/p99/max over every seed, as `unstuck
        report` and the gate compute them (`checker.metrics.percentiles`): a hit that never recovered,
        or a confirmation whose apply never started, counts as infinitely late."""
        out = []
        for values in ([x for r in self.results for x in r.recovery],
                       [x for r in self.results for x in r.confirm_to_apply]):
            finished = [x for x in values if not math.isnan(x)]
            out.append(percentiles(finished, len(values) - len(finished), _QS))
        return out[0], out[1]


_QS = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


def _never(values: Iterator[float]) -> int:
    return sum(1 for x in values if math.isnan(x))


def _num(x: float) -> float | None:
    """JSON has no infinity: a percentile that falls on a measurement that never finished is
    null, as is one with no measurement at all; `unrecovered` / `applies_not_started` tell
    the two apart (docs/sim.md)."""
    return None if not math.isfinite(x) else round(x, 3)


def _fmt(x: float) -> str:
    return "-" if math.isnan(x) else "never" if math.isinf(x) else f"{x:.1f}"


def expand_schedulers(names: list[str]) -> list[str]:
    out: list[str] = []
    for n in names:
        for part in n.split(","):
            part = part.strip()
            for x in (NAMES if part == "all" else (part,)):
                if x not in out:
                    out.append(x)
    return out


def run_inputs(paths: list[Path], schedulers: list[str], option: str, seeds: int | None,
               seed_start: int, workers: int | None,
               default: Callable[[scenarios.Scenario], int],
               ) -> tuple[list[tuple[scenarios.Scenario, Path]], list[str], dict[str, int], list[str]]:
    """The scenarios and schedulers that `unstuck sim` and `unstuck suite` are asked to run,
    and every problem with them and with the options the two share, all found before any
    seed runs so that one message lists them together, with the seeds to run per scenario
    name. `option` is the scheduler option's name as the command spells it; `default` gives a
    scenario's seed count without --seeds (`seeds`; `suite_seeds` or `seeds` for a suite)."""
    from unstuck import scenario as scenarios
    from unstuck.cli import scheduler_problem

    problems: list[str] = []
    loaded: list[tuple[scenarios.Scenario, Path]] = []
    for f in paths:
        try:
            loaded.append((scenarios.load(f), f))
        except scenarios.ScenarioInvalid as e:
            problems += e.problems
        else:
            for line in scenarios.advice(loaded[-1][0], str(f)):
                typer.echo(line, err=True)  # stderr: --json output stays clean
    loaded, clashes = unique_scenarios(loaded)
    problems += clashes
    names = expand_schedulers(schedulers)
    if problem := scheduler_problem(option, names, many=True):
        problems.append(problem)
    if seeds is not None and seeds < 1:
        problems.append(f"--seeds {seeds}: run at least 1 seed")
    elif seeds is not None and seeds > MAX_SEEDS:
        problems.append(f"--seeds {seeds}: at most {MAX_SEEDS:,} seeds per run (each is a job "
                        "held in memory); split the run with --seed-start")
    counts = {s.name: seeds if seeds is not None else default(s) for s, _ in loaded}
    if seed_start < 0:
        problems.append(f"--seed-start {seed_start}: seeds are integers >= 0")
    elif seed_start + (most := max([1, *counts.values()])) > SEED_LIMIT:
        # Each scenario's own count when --seeds is not given (it counted 1 then, and a
        # scenario's `seeds: 50` ran past 2**64).
        problems.append(f"--seed-start {seed_start}: seeds must stay below 2**64 "
                        f"({SEED_LIMIT}); larger ones would repeat smaller ones (the RNG keeps "
                        f"64 bits), and {most} seeds from here pass it; start at most "
                        f"{SEED_LIMIT - most}" + ("" if seeds is not None else
                                                   ", or give fewer with --seeds"))
    if workers is not None and workers < 1:
        problems.append(f"--workers {workers}: use at least 1")
    return loaded, names, counts, problems


def _own_seeds(s: scenarios.Scenario) -> int:
    return s.seeds


SEED_LIMIT = 1 << 64  # sim.rng keeps 64 bits of a seed: 2**64 would replay seed 0
MAX_SEEDS = 1_000_000  # jobs are listed up front; a million days is weeks of CPU anyway


SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C, and what `timeout`, CI and kill send


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: the same clean stop and message, but exit 143 (128 +
    15, `sigterm_interrupts`), so that CI and `timeout` see the signal they sent. A
    KeyboardInterrupt, so that every `except KeyboardInterrupt` that says what is on disk
    says it for SIGTERM too."""

    exit_code = 143


def _interrupt(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raised as `Terminated` for the block, as Ctrl-C raises KeyboardInterrupt, and
    exit 143 at its end: killed outright, a command would leave temporary files, a removed
    report with no word about it, and (before its workers died with it) a pool running on
    its own. Wraps each command that runs seeds or writes results (`register`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: Any) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    except Terminated:  # typer turns any KeyboardInterrupt into exit 130
        raise typer.Exit(Terminated.exit_code) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_batches(jobs: Sequence[Any], workers: int, progress: bool, *,
                fn: Callable[[Any], Any] = run_job, start: str = "fork",
                label: str = "simulating") -> list[Any]:
    """Run `fn` on each of `jobs` over a pool of `workers` processes; the results come back
    in job order. The pool forks (on Linux), or with `start="spawn"` starts fresh
    interpreters, which always get a pool; a forked run of one job or one worker runs here.

    At most two seeds per worker are submitted at a time, the next one as each finishes,
    so that no worker waits for this process between seeds. Ctrl-C (and SIGTERM, the same
    way) stops cleanly: Ctrl-C goes to the whole process group, the workers ignore both,
    this process raises a shared stop flag at once, and a worker that picks up a seed after
    it returns without running it (the executor hands workers+1 seeds to its queue, where
    they can no longer be cancelled, so cancelling alone started seeds after the Ctrl-C).
    The seeds in hand finish (about a second; their files are written whole), the pool is
    shut down, and the message counts the seeds that finished, so nothing is left running
    or half-written and the count matches what is on disk. A worker dies with this
    process (`_worker_init`), so a SIGKILL here leaves none running."""
    if not jobs:
        return []
    if start == "fork" and (workers <= 1 or len(jobs) <= 1):
        done: list[Any] = []
        try:
            with _signals_noted() as noted:
                for j in jobs:
                    done.append(fn(j))
                    if noted:  # pressed, but its KeyboardInterrupt was swallowed
                        raise _interrupt(noted[0])
        except KeyboardInterrupt:  # in this process: the seed in hand stops where it was
            print(_interrupted(jobs, len(done), label, in_hand="the seed in hand is dropped"),
                  file=sys.stderr)
            raise
        return done
    ctx = get_context(start) if start != "fork" or sys.platform.startswith("linux") else None
    stop = (ctx or get_context()).RawValue("b", 0)  # shared memory: safe to set in a handler
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx,
                               initializer=_worker_init, initargs=(os.getpid(), stop, SIGNALS))
    results: dict[int, Any] = {}
    queue = iter(enumerate(jobs))
    in_flight: dict[Future, int] = {}

    def top_up() -> None:
        while len(in_flight) < 2 * workers:
            nxt = next(queue, None)
            if nxt is None:
                return
            with _signals_blocked():  # a worker started here inherits the mask
                in_flight[pool.submit(_unless_stopped, fn, nxt[1])] = nxt[0]

    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), transient=True, disable=not progress)
    # Here a signal only notes itself (and raises the stop flag), from the first submit to
    # the end of the shutdown, and the loop stops at the next short wait: a
    # KeyboardInterrupt raised inside the executor or the bar could leave a future's or the
    # bar's lock held, and the shutdown would then wait on it for ever (a second Ctrl-C, as
    # `timeout -s INT` sends, did exactly that).
    with _signals_noted(raise_at_once=False, stop=stop) as noted:
        try:
            with bar:  # gone from the terminal before any message below
                task = bar.add_task(label, total=len(jobs))
                top_up()
                while in_flight and not noted:
                    finished, _ = wait(in_flight, timeout=0.2, return_when=FIRST_COMPLETED)
                    for f in finished:
                        i, r = in_flight.pop(f), f.result()
                        if not isinstance(r, NotStarted):
                            results[i] = r
                        bar.advance(task)
                    top_up()
        finally:
            # Wait for the seeds in hand; those queued return unstarted (a second Ctrl-C
            # changes nothing: Ctrl-\ ends everything at once).
            pool.shutdown(wait=True, cancel_futures=True)
            if noted:
                for f, i in in_flight.items():
                    if f.done() and not f.cancelled() and f.exception() is None \
                            and not isinstance(f.result(), NotStarted):
                        results[i] = f.result()
                if len(results) < len(jobs):
                    print(_interrupted(jobs, len(results), label, in_hand="the seeds in hand "
                                       "finished"), file=sys.stderr)
    if noted:
        raise _interrupt(noted[0])
    return [results[i] for i in range(len(jobs))]


class NotStarted:
    """What a worker returns for a seed it picked up after the stop flag was raised."""


def _unless_stopped(fn: Callable[[Any], Any], job: Any) -> Any:
    return NotStarted() if _stop is not None and _stop.value else fn(job)


_stop: Any = None  # in a worker: its parent's stop flag (run_batches)


def _worker_init(parent: int, stop: Any, ignore: tuple[signal.Signals, ...]) -> None:
    """A worker leaves the signals in `ignore` to its parent, which stops the run cleanly,
    and dies with it: a parent killed outright (SIGKILL, or SIGTERM before it was handled)
    left its workers reparented to init, running or waiting for work for ever."""
    global _stop
    _stop = stop
    for sig in ignore:
        signal.signal(sig, signal.SIG_IGN)
    die_with_parent(parent)


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux's
    PR_SET_PDEATHSIG; elsewhere a thread that watches the parent's pid). A parent that
    died before this call is caught by the pid check."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0:  # PR_SET_PDEATHSIG = 1
            if os.getppid() != parent:
                os._exit(1)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


@contextmanager
def _signals_blocked() -> Iterator[None]:
    """SIGINT and SIGTERM held back while the pool may start workers. A spawned worker
    imports for a while before its initializer ignores them; a Ctrl-C then printed its
    traceback. A process starts with its parent's signal mask (across exec too), so a
    worker started here never sees them at all; the parent gets a held-back one as soon as
    it unblocks."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, set(SIGNALS))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextmanager
def _signals_noted(*, raise_at_once: bool = True, stop: Any = None) -> Iterator[list[int]]:
    """Note every SIGINT and SIGTERM, so the loops can check, and raise `stop` (the
    workers' flag); with `raise_at_once`, raise KeyboardInterrupt (or `Terminated`) too (a
    seed running here stops where it is).

    Python raises KeyboardInterrupt wherever the main thread is, and one raised inside a
    finalizer is printed and dropped ("Exception ignored in ParquetWriter.__del__"): about
    1 Ctrl-C in 150 did nothing, and the run went on to the end. The list holds the signals
    noted; a loop that sees it non-empty raises the interrupt itself."""
    noted: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield noted  # only the main thread gets signals (and may set handlers)
        return

    def note(signum: int, frame: Any) -> None:
        noted.append(signum)
        if stop is not None:
            stop.value = 1
        if raise_at_once:
            raise _interrupt(signum)

    previous = {sig: signal.signal(sig, note) for sig in SIGNALS}
    try:
        yield noted
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupted(jobs: Sequence[Any], finished: int, label: str,
                 in_hand: str = "stopping once the seeds in hand finish") -> str:
    if label != "simulating":  # a pass over seeds that already ran (the determinism check)
        return (f"unstuck: interrupted while {label}, after {finished} of {len(jobs)} runs; "
                "the seeds' own results were complete, the check is not")
    out = getattr(jobs[0], "out", None)
    where = (f"; {out} holds only the seeds that finished and no runs.parquet: rerun "
             "the command for a complete folder") if out else ""
    return f"unstuck: interrupted after {finished} of {len(jobs)} seeds; {in_hand}{where}"


def unique_scenarios(loaded: list[tuple[scenarios.Scenario, Path]]
                     ) -> tuple[list[tuple[scenarios.Scenario, Path]], list[str]]:
    """The scenarios to run, one per name, and the problems. A scenario's name keys its
    results, so two files of one name are bad input; the same file given twice (a glob
    that overlaps a named file) runs once."""
    first: dict[str, Path] = {}
    unique, problems = [], []
    for s, path in loaded:
        if s.name not in first:
            first[s.name] = path
            unique.append((s, path))
        elif first[s.name].resolve() != path.resolve():
            problems.append(f"two scenario files are named {s.name!r} ({first[s.name]}, {path}); "
                            "rename one (its name: field)")
    return unique, problems


def run_scenarios(
    loaded: list[tuple[scenarios.Scenario, Path]], names: list[str], seeds: dict[str, int],
    seed_start: int, out: Path | None, workers: int, *, progress: bool,
    keep_history: bool = False, perturb_ties: bool = False, digest_all: bool = False,
    finish: bool = True,
) -> tuple[dict[tuple[str, str], Batch], list[SeedResult], float]:
    """Run every (scenario, scheduler, seed) job over the pool; shared by `sim` and `suite`.

    Jobs are submitted longest scenario first, so a day-long seed does not start last and
    leave one core idle at the end; results are grouped back per (scenario, scheduler).
    With `out`, first clears what an earlier run wrote there, then writes the per-seed
    tables, runs.parquet and the manifest; a write that fails (a full disk) is exit 2 with a
    message, the folder left unfinished (no runs.parquet) rather than half-written. The caller
    checks `out` first (`folders.output_problems`). With `digest_all`, every seed's history
    digest is kept, not only each batch's first. With `finish=False` the caller writes
    runs.parquet and the manifest itself (`finish_results`), after printing the verdict, so
    that a write failing then does not lose it.
    """
    jobs: list[Job] = []
    for s, _ in loaded:
        cfg = s.world()
        for sched in names:
            for k in range(seeds[s.name]):
                first = k == 0
                jobs.append(Job(cfg, sched, seed_start + k, first or digest_all,
                                str(out) if out else None,
                                keep_rows=keep_history and first and not any(
                                    j.keep_rows for j in jobs),
                                perturb_ties=perturb_ties))
    order = sorted(jobs, key=lambda j: -(j.cfg.duration_s + j.cfg.drain_s))
    try:
        if out is not None:
            folders.clear(out)
        t0 = time.perf_counter()
        done = run_batches(order, workers, progress=progress)
        elapsed = time.perf_counter() - t0
        if out is not None and finish:
            _write_finish(out, done, loaded, names, seeds, seed_start, perturb_ties)
    except OSError as e:
        if out is None:
            raise
        from unstuck.cli import fail_input

        fail_input(folders.unfinished(out, e))
    batches: dict[tuple[str, str], Batch] = {}
    for s, _ in loaded:
        for sched in names:
            batches[(s.name, sched)] = Batch(s.name, sched)
    for r in done:
        batches[(r.scenario, r.scheduler)].results.append(r)
    busy_total = sum(r.wall_s for r in done) or 1.0
    for b in batches.values():  # wall time shared out by each batch's share of the work
        b.wall_s = elapsed * sum(r.wall_s for r in b.results) / busy_total
    return batches, done, elapsed


def _write_finish(out: Path, done: list[SeedResult], loaded: list[tuple[scenarios.Scenario, Path]],
                  names: list[str], seeds: dict[str, int], seed_start: int,
                  perturb_ties: bool) -> None:
    from unstuck import results

    results.write_runs(out, [_run_row(r) for r in sorted(done, key=lambda r: (r.scenario, r.scheduler, r.seed))])
    results.write_manifest(out, {s.name: str(p) for s, p in loaded}, names,
                           {s.name: seeds[s.name] for s, _ in loaded}, seed_start,
                           perturb_ties=perturb_ties)


def finish_results(out: Path, done: list[SeedResult], loaded: list[tuple[scenarios.Scenario, Path]],
                   names: list[str], seeds: dict[str, int], seed_start: int,
                   perturb_ties: bool) -> None:
    """runs.parquet and the manifest, the marks of a finished run, written after the verdict
    was printed (`run_scenarios(finish=False)`): a write failing here is exit 2, the folder
    left unfinished, and the verdict above it stands."""
    try:
        _write_finish(out, done, loaded, names, seeds, seed_start, perturb_ties)
    except OSError as e:
        from unstuck.cli import fail_input

        fail_input(folders.unfinished(out, e) + "; the verdict above is complete")


def sim(
    scenario_files: Annotated[list[Path], typer.Argument(metavar="SCENARIO...", help="Scenario YAML files.", show_default=False)],
    scheduler: Annotated[list[str], typer.Option("--scheduler", "-s", help="seed | seed-proposal | seed-head | reference | all; repeat or comma-separate for several.")] = ["reference"],  # noqa: B006
    seeds: Annotated[int | None, typer.Option(help="Seeds per scenario (default: the scenario's `seeds`).")] = None,
    seed_start: Annotated[int, typer.Option(help="First seed.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Write histories, tasks, faults and violations as Parquet here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per scenario and scheduler on stdout.")] = False,
    history: Annotated[Path | None, typer.Option(help="Write the first seed's history (first scenario and scheduler) as JSONL.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: all cores).")] = None,
    perturb_ties: Annotated[bool, typer.Option(help="Shuffle same-time events under the seed.")] = False,
    check_determinism: Annotated[bool, typer.Option(help="Run every seed again in fresh interpreters with another str hash seed; exit 2 if any history differs.")] = False,
) -> None:
    """Run scenarios in the simulated world and judge every seed; exit 1 if any invariant breaks."""
    from unstuck.cli import fail_input, output_problem

    loaded, names, counts, problems = run_inputs(scenario_files, scheduler, "--scheduler",
                                                 seeds, seed_start, workers, _own_seeds)
    history_problem = history and output_problem("--history", history, folder=False,
                                                 example="run.jsonl")
    problems += [p for p in (out and output_problem("--out", out, folder=True), history_problem)
                 if p]
    if history and not history_problem and any(history.resolve() == p.resolve() for _, p in loaded):
        problems.append(f"--history {history}: that is one of the scenario files being run; "
                        "write the history elsewhere, e.g. --history run.jsonl")
    if history and out and not history_problem and (part := folders.results_part(history, out)):
        what = "is the --out folder" if part == out else (
            f"would replace {part}, part of the results this run writes to --out {out}")
        problems.append(f"--history {history}: {what}; write the history beside them, e.g. "
                        f"--history {out / 'run.jsonl'}")
    if out:  # a run into `out` first clears it: it may hold only what unstuck wrote
        problems += folders.output_problems("--out", out, [p for _, p in loaded])
    if problems:
        fail_input("\n".join(problems))

    # A report rendered in `out` itself (`unstuck report DIR`), or beside it when `out` is a
    # suite's results/, would describe results this run replaces.
    stale = [] if not out else [out] + (
        [out.parent] if out.resolve() == (out.parent / "results").resolve() else [])
    for folder in stale:
        if "report" in folders.wrote(folder):
            from unstuck import report

            if report.clear(folder):
                typer.echo(f"note: removed the report in {folder}, which described the results "
                           f"this run replaces; `unstuck report {folder}` renders a new one",
                           err=True)
    workers = workers or os.cpu_count() or 1
    progress = sys.stderr.isatty() and not as_json
    batches, done, elapsed = run_scenarios(
        loaded, names, counts, seed_start, out, workers, progress=progress,
        keep_history=history is not None, perturb_ties=perturb_ties, digest_all=check_determinism,
        finish=False)
    diverged = None
    if check_determinism:
        from unstuck import determinism

        value, diverged = determinism.check({s.name: s.world() for s, _ in loaded}, done,
                                            workers, progress=progress,
                                            perturb_ties=perturb_ties)

    summaries = [b.summary() for b in batches.values()]
    declared = {sc.name: sc.fault_types() for sc, _ in loaded}
    goals = {sc.name: sc.gates.sometimes for sc, _ in loaded}
    unmet = {}
    for s in summaries:  # what `unstuck gate` fails with exit 3: the run proves nothing there
        key = (s["scenario"], s["scheduler"])
        fired = {t for r in batches[key].results for t in r.fault_types}
        s["faults_never_fired"] = [t for t in declared[s["scenario"]] if t not in fired]
        unmet[key] = _goals_not_reached(goals[s["scenario"]], s["scheduler"], batches[key].results)
        s["goals_not_reached"] = {g.name: {"seeds_reached": n, "min_seeds": g.min_seeds}
                                  for g, n in unmet[key]}
    if diverged is not None:
        for s in summaries:
            s["nondeterministic_seeds"] = sorted(
                d.seed for d in diverged if (d.scenario, d.scheduler) == (s["scenario"], s["scheduler"]))
    if as_json:
        for s in summaries:
            print(json.dumps(s, sort_keys=True))
    else:
        _print(summaries, batches, elapsed, {sc.name: path for sc, path in loaded}, perturb_ties)
        if diverged == []:
            print("\n" + determinism.passed(len(done), value))
        for s in summaries:
            if s["faults_never_fired"]:
                typer.echo(f"warning: {s['scenario']} under {s['scheduler']}: "
                           f"{', '.join(s['faults_never_fired'])} declared but never took effect "
                           f"in {s['seeds']} seeds, so this run says nothing about "
                           f"{'them' if len(s['faults_never_fired']) > 1 else 'it'}; check "
                           "the fault's target and within_s, or run more seeds (`unstuck gate` "
                           "fails such a run with exit 3)", err=True)
            for g, reached in unmet[(s["scenario"], s["scheduler"])]:
                typer.echo(f"warning: {s['scenario']} under {s['scheduler']}: goal {g.name}: "
                           f"{g.what()} in {reached} of {s['seeds']} seeds, fewer than the {g.min_seeds} its gates.sometimes "
                           "asks, so this run says nothing about a task hit there; "
                           "check the faults' timing and target, or run more seeds (`unstuck gate` "
                           "fails such a run with exit 3)", err=True)
    if out is not None:  # after the verdict is out: a failed write must not lose it
        finish_results(out, done, loaded, names, counts, seed_start, perturb_ties)
    if history is not None:  # after the verdict is out: a failed write must not lose it
        _write_history(history, next(r for r in done if r.history is not None),
                       {sc.name: path for sc, path in loaded}, perturb_ties, len(done))
    if diverged:
        typer.echo("error: " + determinism.report(diverged, len(done), value, perturb_ties=perturb_ties), err=True)
        raise typer.Exit(2)
    raise typer.Exit(1 if any(s["seeds_failed"] for s in summaries) else 0)


def _hits_by_status(results: list[SeedResult]) -> Counter[str]:
    """Every hit of the seeds by the status of the task hit (`fault_hits`)."""
    out: Counter[str] = Counter()
    for r in results:
        for hit, n in r.hits.items():
            out[str(hit.status)] += n
    return out


def _goals_not_reached(goals: list[scenarios.Sometimes], scheduler: str,
                       results: list[SeedResult]) -> list[tuple[scenarios.Sometimes, int]]:
    """Each `gates.sometimes` goal of the scheduler that fewer seeds reached than it asks,
    as `unstuck gate` judges it, with the seeds that reached it."""
    out = []
    for g in goals:
        if not g.holds_for(scheduler):
            continue
        reached = sum(1 for r in results if any(g.matches(*hit) for hit in r.hits))
        if reached < g.min_seeds:
            out.append((g, reached))
    return out


def _write_history(path: Path, kept: SeedResult, paths: dict[str, Path],
                   perturb_ties: bool, runs: int) -> None:
    """`--history`, written last, so that a full disk or a bad device costs the history
    alone: the table or JSON lines above it are the run's verdict, and the message says how
    to get the history again without rerunning everything. A run of several seed runs
    (`runs`) keeps the first one's history: a note on stderr says which it is."""
    from unstuck.cli import fail_input

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        files.write_bytes(path, histories.canonical_bytes(kept.history or []))
    except OSError as e:
        again = reproduce.sim(paths[kept.scenario], kept.scheduler, kept.seed,
                              perturb_ties=perturb_ties, history="FILE")
        fail_input(f"--history {path}: could not write the history of {kept.scenario} under "
                   f"{kept.scheduler}, seed {kept.seed} ({e.strerror or e}); the results above "
                   f"are complete; free space or choose another file, and rerun that seed "
                   f"alone: {again}")
    if runs > 1:
        typer.echo(f"note: --history {path}: the history of {kept.scenario} under "
                   f"{kept.scheduler}, seed {kept.seed}, the first of {runs} seed runs; for "
                   "another, rerun it alone: "
                   + reproduce.sim("SCENARIO", "SCHEDULER", "N", perturb_ties=perturb_ties,
                                   history="FILE"), err=True)


def _run_row(r: SeedResult) -> dict[str, Any]:
    return {"scenario": r.scenario, "scheduler": r.scheduler, "seed": r.seed, "ok": r.ok,
            **{f"violations_{k}": v for k, v in r.counts.items()},
            "stuck_tasks": len(r.stuck_tasks), "events": r.events, "rows": r.rows,
            "wall_s": r.wall_s, "faults_fired": r.faults_fired, "faults_missed": r.faults_missed,
            "digest": r.digest}


def _hits(s: dict[str, Any]) -> str:
    """`120 / 14 in 9 seeds`: every fault hit, and those on a task waiting in apply_pending
    (the incident's condition) with the seeds they came in: a clean run proves something
    about that wait only if its seeds reached it."""
    seeds = s["seeds_hit_in_apply_pending"]
    waiting = s["fault_hits"].get(APPLY_PENDING, 0)
    return (f"{sum(s['fault_hits'].values())} / {waiting}"
            + (f" in {counted(seeds, 'seed')}" if waiting else ""))


def _print(summaries: list[dict[str, Any]], batches: dict[tuple[str, str], Batch], elapsed: float,
           paths: dict[str, Path], ties: bool) -> None:
    """The table, then each failing pair's examples. Nothing is cut to fit a width: off a
    terminal the table takes the width it needs (a log or a pipe reads whole names), on a
    narrow terminal a cell folds onto its next line rather than ending in "…", and the
    prose lines are not wrapped by rich (the terminal wraps them), so a command in them
    stays one line to copy."""
    table = Table(title=f"unstuck sim ({elapsed:.1f} s wall)")
    for col in ("scenario", "scheduler", "seeds", "failed seeds by invariant", "stuck tasks",
                "fault hits: all / in apply_pending", "recovery p50/p95/p99/max s", "unrecovered",
                "events", "wall s"):
        table.add_column(col, overflow="fold")
    for s in summaries:
        by = "\n".join(f"{k} {v}" for k, v in s["seeds_with_violations"].items() if v) or "none"
        r, _ = batches[(s["scenario"], s["scheduler"])].latencies()
        table.add_row(s["scenario"], s["scheduler"], str(s["seeds"]),
                      f"[red]{by}[/]" if s["seeds_failed"] else "[green]none[/]",
                      str(s["stuck_tasks"]), _hits(s),
                      "/".join(_fmt(r[k]) for k in ("p50", "p95", "p99", "max")),
                      f"[red]{s['unrecovered']}[/]" if s["unrecovered"] else "0",
                      str(s["events"]), f"{s['wall_s']:.2f}")
    width = None if sys.stdout.isatty() else Console(width=1 << 16).measure(table).maximum
    con = Console(highlight=False, width=width, soft_wrap=True)
    con.print(table, soft_wrap=False)
    for (scen, sched), b in batches.items():
        failing = [r for r in sorted(b.results, key=lambda r: r.seed) if not r.ok]
        if not failing:
            continue
        again = reproduce.sim(paths[scen], sched, "N", perturb_ties=ties, history="FILE")
        shrink = reproduce.shrink(paths[scen], sched, "N", perturb_ties=ties)
        con.print(f"\n[bold]{scen}[/] under [bold]{sched}[/]: {len(failing)} of {len(b.results)} "
                  f"seeds violated an invariant. Examples (re-run one with `{escape(again)}`; "
                  f"find the faults it needed with `{escape(shrink)}`):")
        shown = 0
        for r in failing:
            for ex in r.examples:
                if shown >= EXAMPLES_PER_RUN:
                    break
                shown += 1
                who = f"task {ex['task']}" if ex["task"] is not None else f"workspace {ex['workspace']}"
                con.print(f"  seed {r.seed}: {escape(who)} [red]{ex['invariant']}[/] at "
                          f"t={ex['t']:g}: {escape(ex['message'])}")
                con.print("    witness:")
                for row in ex["rows"]:
                    con.print(escape(f"      #{row['seq']} t={row['t']:g} {row['kind']} "
                                     f"{row_text(row)}"))
        stuck = sorted({(r.seed, t) for r in failing for t in r.stuck_tasks})
        if stuck:
            listed = ", ".join(f"seed {s} task {t}" for s, t in stuck[:10])
            more = f" and {len(stuck) - 10} more" if len(stuck) > 10 else ""
            con.print(f"  stuck tasks: {listed}{more}")


def row_text(row: dict[str, Any]) -> str:
    parts = []
    for k in ("task", "workspace", "pod", "agent"):
        if row.get(k) is not None:
            parts.append(f"{k}={row[k]}")
    frm, to = row.get("from_status"), row.get("to_status")
    if frm or to:  # a created task comes from no status: "(new)->pending", not "None->pending"
        parts.append(f"{frm or '(new)'}->{to or '(none)'}")
    if row.get("reason"):
        parts.append(repr(row["reason"]))
    return " ".join(parts)


def register(app: typer.Typer) -> None:
    app.command("sim")(sigterm_interrupts()(sim))
