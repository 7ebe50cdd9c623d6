"""Benchmarks of the simulated world, printed as ratios from one run.

1. The full model's events per second against a bare SimPy loop with the same number of
   events (a process doing `yield env.timeout(1)`): how much the world, the scheduler core and
   the history cost on top of SimPy itself. Measured on one seed of each `--model-scenario`
   (the checker is not part of this figure), then the world's kernel alone with no-op
   callbacks, which shows that the cost is in what the events do, not in scheduling them.
2. The time compression of mixed-chaos-day: wall seconds and simulated seconds per wall
   second, per seed, for each scheduler (run + judge, exactly the per-seed job of `unstuck sim`):
   one seed at a time (the latency of one seed), then `--pool-seeds` seeds at once on all
   cores through `run_scenarios` (the wall time per seed of a multi-seed run).
3. Peak memory (RSS) of one mixed-chaos-day seed per scheduler, each in a fresh process.
4. Seeds per minute for the whole suite (every shipped scenario, its suite seed count, each
   scheduler) on all cores, through `run_scenarios`, exactly as `unstuck suite` runs it.
5. With `--calls`: the Python calls one mixed-chaos-day run makes per scheduler (cProfile,
   seed 0), the figure that does not depend on the machine: on a noisy VM, compare two
   versions of the code by it.
6. With `--by-kind`: where one mixed-chaos-day run's events and time go, per scheduler, by
   kind of event (an agent's heartbeat, a reconcile pass, an HPA sync, ...), each event timed
   on its own, its mean cost as a multiple of a bare SimPy event's, and the share of the
   day's events that already run at the 40 % target's rate: the figure that says how far the
   event-rate target is, and why.

Usage: .venv/bin/python benchmarks/bench_sim.py [--schedulers reference,seed] [--suite-seeds N]
[--day-seeds N] [--repeat K] [--calls] [--by-kind] (`--suite-seeds` overrides every scenario's seed count;
`--skip-suite` skips part 4; `--repeat` keeps the fastest of K runs of each day run one at a
time, which is what to compare two versions of the code by on a noisy machine, with `--calls`).
"""

from __future__ import annotations

import argparse
import cProfile
import math
import os
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import simpy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sim.kernel  # noqa: E402
from sim import runner  # noqa: E402
from sim.config import WorldConfig  # noqa: E402
from sim.kernel import Kernel  # noqa: E402
from unstuck import scenario  # noqa: E402
from unstuck.sim_cli import Job, run_job, run_scenarios  # noqa: E402


def bare_simpy(n: int) -> float:
    env = simpy.Environment()

    def loop(env):
        for _ in range(n):
            yield env.timeout(1)

    env.process(loop(env))
    t0 = time.perf_counter()
    env.run()
    return n / (time.perf_counter() - t0)


def kernel_rate(n: int) -> float:
    """The world's kernel alone: n callback events that do nothing, one after another."""
    k = Kernel()

    def tick(left: int) -> None:
        if left:
            k.after(1.0, tick, left - 1)

    k.after(0.0, tick, n - 1)
    t0 = time.perf_counter()
    k.run(float(n + 1))
    return n / (time.perf_counter() - t0)


def model_rate(path: Path, sched: str, seed: int) -> tuple[int, float]:
    cfg = scenario.load(path).world()
    t0 = time.perf_counter()
    out = runner.run(cfg, sched, seed)
    return out.events, out.events / (time.perf_counter() - t0)


def kind_of(fn: Callable[..., Any], args: tuple) -> str:
    """The kind of a world event, by what it runs: a wake-up by its timer's name, a delivered
    watch or connection event by its type, anything else by its callback."""
    name = getattr(fn, "__qualname__", type(fn).__name__)
    if name == "World._wake":
        return f"wake: {args[0].name}"
    if name == "World.send":
        return f"deliver: {type(args[0]).__name__}"
    return name


def by_kind(cfg: WorldConfig, sched: str, seed: int) -> tuple[runner.RunOutput, dict[str, list[float]]]:
    """Run one seed with each event timed on its own: kind -> [events, seconds]. The kernel
    runs every world event through `sim.kernel._fire`, so a timing one stands in for it for
    this run alone."""
    kinds: dict[str, list[float]] = {}
    clock, plain = time.perf_counter, sim.kernel._fire

    def timed(event: Any) -> None:
        kernel, fn, args = event._value
        kernel.events += 1
        t0 = clock()
        fn(*args)
        spent = clock() - t0
        entry = kinds.setdefault(kind_of(fn, args), [0, 0.0])
        entry[0] += 1
        entry[1] += spent

    sim.kernel._fire = timed  # type: ignore[assignment]
    try:
        out = runner.run(cfg, sched, seed)
    finally:
        sim.kernel._fire = plain
    return out, kinds


def print_by_kind(sched: str, kinds: dict[str, list[float]], bare_s: float, top: int = 8) -> None:
    events = sum(int(n) for n, _ in kinds.values())
    spent = sum(t for _, t in kinds.values())
    at_target = sum(int(n) for n, t in kinds.values() if t / n <= bare_s / 0.40)
    print(f"   {sched}: {events} events, {spent:.2f} s in them; by kind, the {top} costliest:")
    for kind, (n, t) in sorted(kinds.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"     {kind:28s} {int(n):7d} events ({n / events:5.1%})  {t / n * 1e6:7.1f} us each "
              f"({t / n / bare_s:3.0f}x bare)  {t / spent:5.1%} of the time")
    common, (n, t) = max(kinds.items(), key=lambda kv: kv[1][0])
    print(f"     the commonest, {common} ({n / events:.0%} of the events), costs {t / n / bare_s:.0f}x a "
          f"bare event; {at_target / events:.1%} of the events run at the target's rate "
          f"(<= {bare_s / 0.40 * 1e6:.2f} us)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--schedulers", default="seed,seed-proposal,seed-head,reference")
    ap.add_argument("--model-scenario", default=",".join(
        str(ROOT / f"scenarios/{n}.yaml") for n in ("pod-kill-reserved-slot", "mixed-chaos-day")))
    ap.add_argument("--suite-seeds", type=int, default=None)
    ap.add_argument("--skip-suite", action="store_true")
    ap.add_argument("--day-seeds", type=int, default=1,
                    help="mixed-chaos-day seeds per scheduler, one at a time (the first two are "
                         "printed; with more, their median, p90 and max)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each of those seeds this many times and keep the fastest: on a "
                         "shared VM one timing can be 50 %% slow, the minimum is the code's")
    ap.add_argument("--calls", action="store_true",
                    help="also count the Python calls of one mixed-chaos-day run per scheduler "
                         "(cProfile; the machine-independent figure)")
    ap.add_argument("--by-kind", action="store_true",
                    help="also time each event of one mixed-chaos-day run per scheduler, by kind")
    ap.add_argument("--pool-seeds", type=int, default=2 * (os.cpu_count() or 1),
                    help="mixed-chaos-day seeds per scheduler run at once on all cores (0: skip)")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error(f"--repeat {args.repeat}: give 1 or more (the runs of each seed to keep the fastest of)")
    scheds = args.schedulers.split(",")

    print("1. model events/s vs a bare SimPy loop with the same number of events")
    for path in args.model_scenario.split(","):
        print(f"   {Path(path).stem}")
        for s in scheds:
            events, rate = model_rate(Path(path), s, 0)
            bare = bare_simpy(events)
            print(f"   {s:14s} {events:8d} events  model {rate:9.0f}/s ({1e6 / rate:5.1f} us each)  "
                  f"bare {bare:9.0f}/s ({1e6 / bare:4.2f} us)  ratio {rate / bare:6.1%}")
    n = 100_000
    kernel, bare = kernel_rate(n), bare_simpy(n)
    print(f"   the kernel alone (no-op callbacks): {kernel:9.0f}/s against bare {bare:9.0f}/s, "
          f"ratio {kernel / bare:6.1%}: the rest of each model event is the world and the scheduler")

    print("2. mixed-chaos-day time compression (run + judge, as `unstuck sim` does it per seed)"
          + (f"; one at a time, the fastest of {args.repeat} runs of each seed" if args.repeat > 1 else ""))
    cfg = scenario.load(ROOT / "scenarios/mixed-chaos-day.yaml").world()
    for s in scheds:
        walls = []
        for seed in range(args.day_seeds):
            wall = math.inf
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                result = run_job(Job(cfg, s, seed, False, None, False, False))
                wall = min(wall, time.perf_counter() - t0)
            walls.append(wall)
            if seed < 2:
                print(f"   {s:14s} seed {seed}  {wall:7.2f} s wall ({wall / 2.0:5.0%} of the 2 s target)  "
                      f"{cfg.end_s / wall:9.0f} simulated s per wall s  ({result.rows} rows)")
        if len(walls) > 2:
            p90 = statistics.quantiles(walls, n=10, method="inclusive")[-1]
            print(f"   {s:14s} seeds 0-{len(walls) - 1}: median {statistics.median(walls):.2f} s, "
                  f"p90 {p90:.2f} s, max {max(walls):.2f} s (seed {walls.index(max(walls))}), "
                  f"{sum(w >= 2.0 for w in walls)} at or over 2 s")
    cores = os.cpu_count() or 1
    if args.pool_seeds:
        print(f"   and {args.pool_seeds} seeds at once on {cores} cores, as `unstuck sim --seeds "
              f"{args.pool_seeds}` runs them (wall time of the batch / seeds)")
        day = [(scenario.load(ROOT / "scenarios/mixed-chaos-day.yaml"), ROOT / "scenarios/mixed-chaos-day.yaml")]
        for s in scheds:
            t0 = time.perf_counter()
            run_scenarios(day, [s], {day[0][0].name: args.pool_seeds}, 0, None, cores, progress=False)
            wall = (time.perf_counter() - t0) / args.pool_seeds
            print(f"   {s:14s} {wall:7.2f} s wall per seed ({wall / 2.0:5.0%} of the 2 s target)  "
                  f"{cfg.end_s / wall:9.0f} simulated s per wall s")

    print("3. peak memory of one mixed-chaos-day seed (run + judge), each in a fresh process")
    for s in scheds:
        # VmHWM, not ru_maxrss: the latter survives exec, so a child forked from this
        # (by now large) process would report at least our size.
        code = ("import sys; sys.path.insert(0, sys.argv[1]);"
                "from unstuck import scenario; from unstuck.sim_cli import Job, run_job;"
                "cfg = scenario.load(sys.argv[1] + '/scenarios/mixed-chaos-day.yaml').world();"
                "run_job(Job(cfg, sys.argv[2], 0, False, None, False, False));"
                "import os; st = '/proc/self/status';"
                "print(next((l.split()[1] for l in open(st) if l.startswith('VmHWM')), 0)"
                " if os.path.exists(st) else 0)")
        rss_kb = int(subprocess.run([sys.executable, "-c", code, str(ROOT), s], check=True,
                                    capture_output=True, text=True).stdout.split()[-1])
        print(f"   {s:14s} {rss_kb / 1024:7.0f} MB peak RSS: size `--workers` by it" if rss_kb
              else f"   {s:14s} n/a (needs Linux's /proc/self/status)")

    if not args.skip_suite:
        suite(scheds, args.suite_seeds)
    if args.calls:
        print("5. Python calls in one mixed-chaos-day run, seed 0 (cProfile; does not depend on the machine)")
        for s in scheds:
            profile = cProfile.Profile()
            profile.enable()
            out = runner.run(cfg, s, 0)
            profile.disable()
            calls = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
            print(f"   {s:14s} {calls / 1e6:6.2f}M calls  {calls / out.events:5.1f} per event")
    if args.by_kind:
        print("6. where one mixed-chaos-day run's events and time go, seed 0, each event timed on its own")
        for s in scheds:
            out, kinds = by_kind(cfg, s, 0)
            print_by_kind(s, kinds, 1.0 / bare_simpy(out.events))


def suite(scheds: list[str], suite_seeds: int | None) -> None:
    print(f"4. the suite on {os.cpu_count()} cores (the job order and pool of `unstuck suite`)")
    loaded = [(scenario.load(p), p) for p in sorted((ROOT / "scenarios").glob("*.yaml"))]
    seeds = {sc.name: suite_seeds or sc.suite_seeds or sc.seeds for sc, _ in loaded}
    t0 = time.perf_counter()
    _, done, _ = run_scenarios(loaded, scheds, seeds, 0, None, os.cpu_count() or 1, progress=False)
    wall = time.perf_counter() - t0
    print(f"   {len(done)} seeds in {wall:.1f} s: {len(done) / wall * 60:.0f} seeds per minute")


if __name__ == "__main__":
    main()
