"""The checker stays linear in the history's length.

No wall-clock bound: the two sizes are judged side by side in one run and only their ratio
is asserted, so a slow or loaded machine slows both alike. Five times the rows take about
5–7 times as long when judging is linear, and 25 times when something is O(n^2), which is
what this test catches. The absolute figure is printed by
`python -m tests.unit.checker.synthetic`.
"""

from __future__ import annotations

import time

from unstuck import checker

from .synthetic import history


def best_of(rows: list[dict], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        checker.judge(rows)
        times.append(time.perf_counter() - t0)
    return min(times)


def test_judging_five_times_the_rows_takes_about_five_times_as_long() -> None:
    small, large = history(20_000), history(100_000)
    ratio = best_of(large) / best_of(small)
    assert ratio < 12, f"5x the rows took {ratio:.1f}x as long: judging is no longer linear"


def test_a_100k_row_history_finds_every_stuck_task() -> None:
    rows = history(100_000)
    assert len(rows) >= 100_000
    verdict, metrics = checker.judge(rows)
    # The synthetic run leaves about 2 % of its tasks stuck; the checker must find them all.
    stuck = verdict.of("apply_pending_bound")
    assert len(stuck) == len(verdict.of("no_wedged_workspace")) == metrics.unrecovered > 50
