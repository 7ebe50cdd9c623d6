"""End to end: a scheduler and 3 agent processes on 127.0.0.1, SIGKILL / SIGSTOP / kill -9.

Under `reference` the checker finds no violation and every task ends; under `seed` the same
script leaves task 1 stuck in apply_pending (incident 601). The recovery latencies measured
by the checker are printed (run with -s to see them).
"""

from __future__ import annotations

import json
import math

import pytest

from scheduler.agent.backend import Backend
from tests.slow.service.chaos_script import TERMINAL, script
from tests.unit.service.live import LiveRun, wait_for
from unstuck import checker

pytestmark = pytest.mark.slow
BOUND_S = 8.0  # the apply_pending bound at time scale 0.05 (the task waits for an apply of 1.5 s)
DRAIN_S = 4.0


@pytest.fixture
def live(tmp_path, request):
    runs = []

    def make(variant: str) -> LiveRun:
        run = LiveRun(tmp_path, variant)
        runs.append(run)
        return run

    yield make
    for run in runs:
        run.stop()


def test_reference_recovers_from_every_fault(live):
    run = live("reference")
    seen = script(run)
    t = seen.tasks
    assert seen.notes["a_victim"] == seen.notes["a_reserved_on"]
    # After the restart, task 6's apply report reaches the new process: applied, once.
    wait_for(lambda: run.status(t["t6"]) in TERMINAL, 20, what="task 6 to end after the restart")
    wait_for(lambda: run.status(t["t1"]) in TERMINAL, 20, what="task 1 to end")
    statuses = {k: run.status(v) for k, v in t.items()}
    assert statuses == {"t1": "applied", "t2": "applied", "t3": "applied", "t4": "failed",
                        "t5": "applied", "t6": "applied"}, statuses
    # Frozen past its lease, it could not commit, and the scheduler read that in the state:
    assert "the apply did not commit" in run.task(t["t4"])["error_message"]
    # The frozen agent woke up after its lease had expired: its apply never committed.
    backend = Backend(run.backend)
    ws2 = [a["task"] for a in backend.state("ws-2")["applies"]]
    assert ws2 == [t["t2"], t["t5"]], ws2
    stale = run.exec_rows(t["t4"], "exec.fail", "apply")
    assert stale and "state lock" in stale[-1]["reason"], stale
    for ws, task in (("ws-1", t["t1"]), ("ws-3", t["t3"])):
        assert [a["task"] for a in backend.state(ws)["applies"]][:1] == [task]
    assert [a["task"] for a in backend.state("ws-3")["applies"]] == [t["t3"], t["t6"]]
    rows = run.rows_with_end(BOUND_S, DRAIN_S)
    verdict, metrics = checker.judge(rows)
    assert verdict.ok, [(v.invariant, v.task, v.message) for v in verdict.violations]
    hits = [h for h in metrics.recovery if h.outcome != "human"]
    assert hits and all(h.outcome == "recovered" for h in hits), hits
    print(json.dumps({"recovery": [{"fault": h.fault_type, "task": h.task,
                                    "latency_s": h.latency_s} for h in hits]}, indent=1))
    kill = [h for h in hits if h.fault_type == "pod-kill" and h.task == t["t1"]]
    assert kill and kill[0].latency_s < BOUND_S
    # The checker counts the dispatch that found the agent dead (running, then rolled back)
    # as progress; the user waits until the apply starts on another agent:
    c2a = {c.task: c.latency_s for c in metrics.confirm_to_apply}
    print(json.dumps({"kill_agent_confirm_to_apply_s": c2a[t["t1"]]}))
    assert c2a[t["t1"]] < BOUND_S
    metrics_text = run.http.get("/metrics").text
    assert 'unstuck_tasks{status="applied"} 5.0' in metrics_text
    assert "unstuck_stuck_tasks 0.0" in metrics_text
    assert "unstuck_state_read_errors_total 0.0" in metrics_text  # the backend was read fine


def test_seed_leaves_the_task_stuck(live):
    run = live("seed")
    seen = script(run)
    t1 = seen.tasks["t1"]
    assert seen.notes["a_confirm"] == 200
    assert seen.notes["a_busy_at_confirm"], "tasks 2 and 3 ended before task 1's confirm; stage A needs longer applies"
    rows = run.rows_with_end(BOUND_S, DRAIN_S)
    confirmed_t = next(r["t"] for r in rows if r["kind"] == "task.confirmed" and r["task"] == t1)
    # Let the bound pass with the scheduler alive; nothing will ever move task 1.
    wait_for(lambda: run.history()[-1]["t"] > confirmed_t + BOUND_S + 1
             or run.http.post("/faults", json={"type": "tick"}, headers=run.auth()).status_code != 201,
             30, what="the bound to pass")
    task = run.task(t1)
    assert task["status"] == "apply_pending" and task["apply_confirmed_by"] == "alice"
    verdict = checker.check(run.rows_with_end(BOUND_S, DRAIN_S))
    stuck = {v.task for v in verdict.violations if v.invariant == "apply_pending_bound"}
    assert t1 in stuck, verdict.violations
    assert not math.isnan(confirmed_t)
