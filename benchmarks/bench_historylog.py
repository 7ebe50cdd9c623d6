"""Benchmark the live service's history log: the memory a long run holds, and the cost of an
append and of a `GET /history` window. The log `unstuck serve --data-dir` runs keeps only where
each row starts in its file; the baseline is the same log keeping every row in memory as well,
as every service before session 37 did (`KeepingRows`).

Each log gets the same rows, the mix of a live run's history (task transitions, dispatches,
execution rows, slot and lock rows), and writes them to a file of its own. Memory is
tracemalloc's peak while the rows are appended (what the log holds; the rows the caller
builds are dropped as it goes); the times come from a second pass without tracemalloc.

Run: .venv/bin/python benchmarks/bench_historylog.py [--rows 200000] [--window 10000]
(prints one JSON object)
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scheduler.history import HistoryEvent, Kind, Source  # noqa: E402
from scheduler.service.historylog import HistoryLog  # noqa: E402

KINDS = [(Kind.TASK_TRANSITION, Source.SCHEDULER), (Kind.DISPATCH, Source.SCHEDULER),
         (Kind.EXEC_INVOKE, Source.AGENT), (Kind.EXEC_OK, Source.AGENT),
         (Kind.SLOT_ASSIGNED, Source.SCHEDULER), (Kind.LOCK_ACQUIRED, Source.SCHEDULER)]


def event(i: int) -> HistoryEvent:
    kind, source = KINDS[i % len(KINDS)]
    return HistoryEvent(1000.0 + i * 0.01, kind, source, task=i // 6, workspace=f"ws-{i // 6 % 200}",
                        agent=f"agent-{i % 3}", pod=f"unstuck-agent-{i % 3}",
                        reason="dispatch apply" if kind is Kind.DISPATCH else "",
                        data={"action": "apply", "fence": i // 6 % 5 + 1})


class KeepingRows(HistoryLog):
    """The baseline: the same file, and every row kept in memory too (served from there)."""

    def __init__(self, path: Path, to_t) -> None:
        super().__init__(path, to_t)
        self._kept = []


def fill(cls: type[HistoryLog], path: Path, rows: int) -> tuple[HistoryLog, float]:
    log = cls(path, lambda now: now - 1000.0)
    start = time.perf_counter()
    for i in range(rows):
        log.append(event(i))
    return log, time.perf_counter() - start


def measure(cls: type[HistoryLog], folder: Path, rows: int, window: int) -> dict[str, float]:
    gc.collect()
    tracemalloc.start()
    log, _ = fill(cls, folder / f"{cls.__name__}-traced.jsonl", rows)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    log.close()
    del log
    gc.collect()
    log, append_s = fill(cls, folder / f"{cls.__name__}.jsonl", rows)
    start = time.perf_counter()
    got = log.since(rows - window, window)
    since_s = time.perf_counter() - start
    assert len(got) == window and got[-1]["seq"] == rows - 1
    log.close()
    return {"peak_mb": round(peak / 2**20, 2), "bytes_per_row": round(peak / rows, 1),
            "append_us": round(append_s / rows * 1e6, 2), "window_ms": round(since_s * 1e3, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--window", type=int, default=10_000, help="rows in one GET /history read")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        offsets = measure(HistoryLog, Path(d), args.rows, args.window)
        kept = measure(KeepingRows, Path(d), args.rows, args.window)
    print(json.dumps({
        "rows": args.rows, "window": args.window, "offsets_only": offsets, "rows_kept": kept,
        "memory_ratio": round(offsets["peak_mb"] / kept["peak_mb"], 4),
        "append_ratio": round(offsets["append_us"] / kept["append_us"], 2),
        "window_ratio": round(offsets["window_ms"] / kept["window_ms"], 1),
    }, indent=2))


if __name__ == "__main__":
    main()
