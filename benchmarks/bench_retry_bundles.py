"""The seed's bundled retry goroutines against the literal model, side by side in one run.

The seed variants model each `scheduleRetry` goroutine; a stuck day piles up hundreds per
workspace. By default the goroutines of a workspace that wake at the same instant share a
timer, and an exit they would all take alike is taken once for all of them
(`SeedQuirks.bundle_retry_goroutines`, docs/sim.md). This prints, for every shipped scenario
and seed variant over the same seeds, what each model finds (seeds with a violation, by
invariant), its time, and the speed ratio: the bundling must buy speed without
hiding a bug. The times are each seed's own wall time (run + judge, in its worker) summed
over the seeds, not the elapsed time of the run: with W workers the run takes about 1/W of
the two models' sums together.

Usage: .venv/bin/python benchmarks/bench_retry_bundles.py [--seeds 20] [--day-seeds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scheduler.gc_pause import paused  # noqa: E402
from scheduler.settings import SeedQuirks, Settings  # noqa: E402
from sim.world import World  # noqa: E402
from unstuck import checker, scenario  # noqa: E402

VARIANTS = ("seed", "seed-proposal", "seed-head")


def one(job: tuple[str, str, int, bool]) -> tuple[tuple[str, str, bool], list[str], float]:
    path, variant, seed, bundle = job
    cfg = scenario.load(path).world()
    settings = Settings(seed=SeedQuirks(clock_origin_s=cfg.clock_origin_s,
                                        bundle_retry_goroutines=bundle))
    with paused():
        t0 = time.perf_counter()
        rows = World(cfg, variant, seed, settings=settings).run(release=True)
        verdict, _ = checker.judge(rows)
        wall = time.perf_counter() - t0
    return (cfg.name, variant, bundle), [k for k, n in verdict.counts().items() if n], wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20, help="seeds per short scenario")
    ap.add_argument("--day-seeds", type=int, default=3, help="seeds of mixed-chaos-day")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    jobs = []
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        n = args.day_seeds if path.stem == "mixed-chaos-day" else args.seeds
        jobs += [(str(path), v, s, b) for v in VARIANTS for s in range(n) for b in (False, True)]
    found: dict[tuple, Counter] = defaultdict(Counter)
    wall: Counter = Counter()
    with ProcessPoolExecutor(args.workers) as ex:
        for key, violated, secs in ex.map(one, jobs):
            found[key].update(violated)
            wall[key] += secs
    same = True
    print(f"{'scenario':38} {'scheduler':14} {'model':8} {'seed s':>7}  seeds with a violation, by invariant")
    for name, variant in sorted({(k[0], k[1]) for k in wall}):
        lit, bun = found[(name, variant, False)], found[(name, variant, True)]
        for label, bundle, counts in (("literal", False, lit), ("bundled", True, bun)):
            print(f"{name:38} {variant:14} {label:8} {wall[(name, variant, bundle)]:7.1f}  "
                  f"{dict(sorted(counts.items()))}")
        ratio = wall[(name, variant, False)] / max(wall[(name, variant, True)], 1e-9)
        agree = set(lit) == set(bun)
        same &= agree
        print(f"{'':38} {'':14} {'':8} {'':7}  speed-up x{ratio:.1f}; same invariants: {agree}")
    total = [sum(v for k, v in wall.items() if k[2] is b) for b in (False, True)]
    print(f"\nall (seed wall times summed): literal {total[0]:.1f} s, bundled {total[1]:.1f} s (x{total[0] / total[1]:.1f}); "
          f"every pair finds the same invariants: {same}")


if __name__ == "__main__":
    main()
