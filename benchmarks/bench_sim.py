"""Benchmarks of the simulated world, printed as ratios from one run.

1. The full model's events per second against a bare SimPy loop with the same number of
   events (a process doing `yield env.timeout(1)`): how much the world, the scheduler core and
   the history cost on top of SimPy itself. Measured on one seed of `--model-scenario` (the
   checker is not part of this figure).
2. The time compression of mixed-chaos-day: simulated seconds per wall second, one seed, for
   each scheduler (run + judge).
3. Seeds per minute for the whole suite (every shipped scenario, its default seed count, each
   scheduler) on all cores, through the same process pool as `unstuck sim`.

Usage: .venv/bin/python benchmarks/bench_sim.py [--schedulers reference,seed] [--suite-seeds N]
(`--suite-seeds` overrides every scenario's seed count; `--skip-suite` skips part 3).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import simpy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim import runner  # noqa: E402
from unstuck import checker, scenario  # noqa: E402
from unstuck.sim_cli import Job, run_batches  # noqa: E402


def bare_simpy(n: int) -> float:
    env = simpy.Environment()

    def loop(env):
        for _ in range(n):
            yield env.timeout(1)

    env.process(loop(env))
    t0 = time.perf_counter()
    env.run()
    return n / (time.perf_counter() - t0)


def model_rate(path: Path, sched: str, seed: int) -> tuple[int, float]:
    cfg = scenario.load(path).world()
    t0 = time.perf_counter()
    out = runner.run(cfg, sched, seed)
    return out.events, out.events / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--schedulers", default="seed,seed-proposal,seed-head,reference")
    ap.add_argument("--model-scenario", default=str(ROOT / "scenarios/pod-kill-reserved-slot.yaml"))
    ap.add_argument("--suite-seeds", type=int, default=None)
    ap.add_argument("--skip-suite", action="store_true")
    args = ap.parse_args()
    scheds = args.schedulers.split(",")

    print("1. model events/s vs a bare SimPy loop with the same number of events")
    for s in scheds:
        events, rate = model_rate(Path(args.model_scenario), s, 0)
        bare = bare_simpy(events)
        print(f"   {s:14s} {events:8d} events  model {rate:9.0f}/s  bare {bare:9.0f}/s  "
              f"ratio {rate / bare:6.1%}")

    print("2. mixed-chaos-day time compression (one seed, run + judge)")
    cfg = scenario.load(ROOT / "scenarios/mixed-chaos-day.yaml").world()
    for s in scheds:
        t0 = time.perf_counter()
        out = runner.run(cfg, s, 0)
        checker.judge(out.rows)
        wall = time.perf_counter() - t0
        print(f"   {s:14s} {wall:7.2f} s wall  {out.sim_s / wall:9.0f} simulated s per wall s  "
              f"({len(out.rows)} rows)")

    if args.skip_suite:
        return
    print(f"3. the suite on {os.cpu_count()} cores")
    jobs = []
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        sc = scenario.load(path)
        n = args.suite_seeds or sc.seeds
        for s in scheds:
            jobs += [Job(sc.world(), s, k, False, None, False, False) for k in range(n)]
    t0 = time.perf_counter()
    done = run_batches(jobs, os.cpu_count() or 1, progress=False)
    wall = time.perf_counter() - t0
    print(f"   {len(done)} seeds in {wall:.1f} s: {len(done) / wall * 60:.0f} seeds per minute")


if __name__ == "__main__":
    main()
