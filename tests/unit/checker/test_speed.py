"""The checker stays linear: a 100k-row history is judged in well under a second.

The bound asserted here is loose (3 s on a loaded 2-core CI machine) on purpose: it catches
an accidental O(n^2), which on 100k rows takes minutes, not a slow machine. The measured
figure is printed by `python -m tests.unit.checker.synthetic`.
"""

from __future__ import annotations

import time

from unstuck import checker

from .synthetic import history


def test_a_100k_row_history_is_judged_in_linear_time() -> None:
    rows = history(100_000)
    assert len(rows) >= 100_000
    t0 = time.perf_counter()
    verdict, metrics = checker.judge(rows)
    elapsed = time.perf_counter() - t0
    assert elapsed < 3.0, f"judging 100k rows took {elapsed:.2f} s"
    # The synthetic run leaves about 2 % of its tasks stuck; the checker must find them all.
    stuck = verdict.of("apply_pending_bound")
    assert len(stuck) == len(verdict.of("no_wedged_workspace")) == metrics.unrecovered > 50
