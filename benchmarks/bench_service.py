"""Benchmark the live service: confirm-to-apply latency with 3 agents and 200 tasks.

A scheduler (`reference` by default, the production timeouts: `--time-scale 1`) and 3 agent
processes on 127.0.0.1, a SQLite store with fsync on every commit. 200 plan_and_apply tasks in
200 workspaces are created up front; a confirm bot polls for tasks in apply_pending and
confirms each with its plan digest at once. Plans and applies take `--work` seconds. The
latencies are the checker's (`Metrics.confirm_to_apply_summary` over the service's history):
from the first confirmation to the apply's `exec.invoke`, by the checker's one percentile rule:
a confirmation whose apply never started is `missing` and counts as infinitely late (so a
stuck task shows as an infinite p99, not as a clean figure), one its user cancelled is left out.

Run: .venv/bin/python benchmarks/bench_service.py [--tasks 200] [--work 0.05] [--scheduler reference]
(prints one JSON object)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.unit.service.live import LiveRun, wait_for  # noqa: E402
from unstuck import checker  # noqa: E402


def latency_figures(metrics: checker.Metrics) -> dict[str, float | int | str]:
    """The confirm-to-apply summary as printed: seconds rounded to 0.1 ms; an infinite (or
    NaN) percentile as the string "inf" ("nan"), which JSON cannot hold as a number."""
    s = metrics.confirm_to_apply_summary().to_dict()
    return {k: (round(v, 4) if math.isfinite(v) else str(v)) if isinstance(v, float) else v
            for k, v in s.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--work", type=float, default=0.05, help="plan and apply duration (s)")
    ap.add_argument("--scheduler", default="reference")
    ap.add_argument("--time-scale", type=float, default=1.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workspaces = tuple(f"ws-{i:03d}" for i in range(args.tasks))
        run = LiveRun(Path(tmp), args.scheduler, time_scale=args.time_scale, workspaces=workspaces)
        try:
            run.start_scheduler()
            run.start_agents(plan_s=args.work, apply_s=args.work, lease_s=10.0)
            started = time.monotonic()
            ids = [run.create(ws) for ws in workspaces]
            confirmed: set[int] = set()

            def all_done() -> bool:
                for t in run.http.get("/tasks", params={"status": "apply_pending"}).json()["tasks"]:
                    if t["id"] not in confirmed and t["apply_confirmed_by"] is None:
                        r = run.confirm(t["id"], t["plan_digest"])
                        if r.status_code == 200:
                            confirmed.add(t["id"])
                tasks = run.http.get("/tasks").json()["tasks"]
                return all(t["status"] in ("applied", "failed", "cancelled") for t in tasks)

            wait_for(all_done, 600, interval=0.01, what="every task to end")
            wall = time.monotonic() - started
            rows = run.rows_with_end(bound_s=300.0, drain_s=60.0)
            verdict, metrics = checker.judge(rows)
            applied = sum(1 for t in run.http.get("/tasks").json()["tasks"] if t["status"] == "applied")
            print(json.dumps({
                "scheduler": args.scheduler, "agents": 3, "tasks": len(ids), "applied": applied,
                "work_s": args.work, "wall_s": round(wall, 2),
                "tasks_per_s": round(len(ids) / wall, 2),
                "confirm_to_apply_s": latency_figures(metrics),
                "checker_ok": verdict.ok, "violations": verdict.counts(), "history_rows": len(rows)}))
        finally:
            run.stop()


if __name__ == "__main__":
    main()
