"""bench_service's confirm-to-apply figures follow the checker's percentile rule."""

from __future__ import annotations

import json
import math

from tests.unit.benchmarks.bench import load
from unstuck.checker.metrics import ConfirmToApply, Metrics


def _c(task: int, latency: float, *, cancelled: bool = False) -> ConfirmToApply:
    started = not math.isnan(latency)
    return ConfirmToApply(task=task, workspace=f"ws-{task}", epoch=1, confirm_seq=task, confirm_t=0.0,
                          apply_seq=task + 100 if started else None,
                          apply_t=latency if started else math.nan, latency_s=latency,
                          started=started, cancelled=cancelled)


def test_an_apply_that_never_started_is_missing_and_infinitely_late() -> None:
    bench = load("bench_service")
    lat = [0.01 * (i + 1) for i in range(9)]
    metrics = Metrics(recovery=(), confirm_to_apply=(*(_c(i, v) for i, v in enumerate(lat)),
                                                     _c(9, math.nan)), stuck=())
    got = bench.latency_figures(metrics)
    # Left out, the stuck confirmation would give a clean p99 of 0.09 s and missing 0.
    assert got["n"] == 9 and got["missing"] == 1
    assert got["p99"] == "inf" and got["max"] == "inf"
    assert got["p50"] == round(0.5 * 0.05 + 0.5 * 0.06, 4)
    json.loads(json.dumps(got, allow_nan=False))


def test_a_cancelled_wait_is_in_no_percentile() -> None:
    bench = load("bench_service")
    metrics = Metrics(recovery=(), confirm_to_apply=(_c(0, 0.02), _c(1, math.nan, cancelled=True)),
                      stuck=())
    got = bench.latency_figures(metrics)
    assert (got["n"], got["missing"], got["p50"], got["max"]) == (1, 0, 0.02, 0.02)
