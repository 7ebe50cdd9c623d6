"""End to end, with a scheduler and an agent process on 127.0.0.1: a plan longer than the
reference's run timeout (`unstuck serve --run-timeout`). Its agent lists it in every heartbeat,
so it is too long, not lost: the task fails with what to do, the agent is told to stop and
does, and the next task runs on that agent once a heartbeat no longer lists the plan."""

from __future__ import annotations

import pytest

from tests.unit.service.live import wait_for
from unstuck import checker

pytestmark = pytest.mark.slow


def test_a_plan_past_the_run_timeout_fails_and_its_agent_stops_it(run):
    # Time scale 0.05: a run timeout of 40 s is 2 s here; the plan takes 6 s.
    run.start_scheduler(run_timeout="40")
    run.start_agent("pod-1", plan_s=6.0)
    wait_for(lambda: run.connected() == 1, 20, what="the agent to connect")
    long = run.create("ws-1")
    wait_for(lambda: run.exec_rows(long, action="plan"), 20, what="the plan to start")
    nxt = run.create("ws-2")  # waits: the only agent's plan_and_apply capacity is taken
    wait_for(lambda: run.status(long) == "failed", 20, what="the plan to time out")
    task = run.task(long)
    assert task["error_message"] == (
        "the plan ran past the run timeout (2 s) and was stopped; a plan this long will not "
        "finish in one run: raise the run timeout, or split the workspace"), task
    # The agent stops the plan: it never reports it done, and runs it only once.
    wait_for(lambda: run.exec_rows(nxt, action="plan"), 20, what="the next task to start")
    assert len(run.exec_rows(long, action="plan")) == 1
    assert not run.exec_rows(long, "exec.ok", "plan")
    started = run.exec_rows(nxt, action="plan")[0]["t"]
    failed = next(r["t"] for r in run.history() if r["kind"] == "task.transition"
                  and r["task"] == long and r["to_status"] == "failed")
    assert started > failed
    # Its plan takes as long (the agent's --plan-seconds): stopped at the timeout in its turn.
    wait_for(lambda: run.status(nxt) == "failed", 20, what="the next plan to time out")
    rows = run.rows_with_end(8.0, 4.0)
    assert not checker.invariants.agent_capacity(rows)
    verdict = checker.check(rows)
    assert verdict.ok, [(v.invariant, v.message) for v in verdict.violations]
