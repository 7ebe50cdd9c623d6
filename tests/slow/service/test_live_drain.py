"""End to end, with a scheduler and an agent process on 127.0.0.1: our agent draining on
SIGTERM stays connected, as the simulated one does (sim/agents.py: `sigterm()` only sets
`draining`; the agent exits once it holds no runs and no unreported reports).

Found by review: the draining agent stopped polling and heartbeating at once, so a run that
outlived the service's `--agent-stale` was declared lost (`exec.info` "agent silent: outcome
unknown", `agent.disconnected`) while it was alive, and its `exec.ok` came after.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.unit.service.live import LiveRun, wait_for
from unstuck import checker

pytestmark = pytest.mark.slow


def applying(run: LiveRun, apply_s: float, grace_s: float) -> int:
    run.start_scheduler()
    run.start_agent("pod-1", plan_s=0.3, apply_s=apply_s, grace_s=grace_s)
    wait_for(lambda: run.connected() == 1, 20, what="the agent to connect")
    task = run.create("ws-1")
    wait_for(lambda: run.status(task) == "apply_pending", 20, what="the plan")
    assert run.confirm(task).status_code == 200
    wait_for(lambda: run.exec_rows(task, "exec.invoke", "apply"), 10, what="the apply to start")
    return task


def no_silence(run: LiveRun, task: int) -> None:
    """Nothing in the history says the agent or its run was lost before the run ended."""
    rows = run.history()
    ok = [r["seq"] for r in rows if r["task"] == task and r["kind"] == "exec.ok"
          and r["data"].get("action") == "apply"]
    assert ok, "the apply did not commit"
    assert not [r for r in rows if r["task"] == task and r["kind"] == "exec.info"]
    assert not [r for r in rows if r["kind"] == "agent.disconnected" and r["seq"] < ok[0]]
    verdict = checker.check(run.rows_with_end(8.0, 4.0))
    assert verdict.ok, [(v.invariant, v.message) for v in verdict.violations]


def test_a_draining_agent_keeps_polling_until_its_run_ends_then_exits(run):
    task = applying(run, apply_s=5.0, grace_s=10.0)
    sent = time.monotonic()
    run.signal("pod-1", signal.SIGTERM)
    agent = run.procs["pod-1"]
    # Well past --agent-stale (1 s) and the service's poll timeout (2 s), the run still
    # going: the agent is still polling.
    while time.monotonic() - sent < 4.0:
        assert agent.poll() is None, "the agent left before its run ended"
        assert run.connected() == 1, "the draining agent looks silent"
        time.sleep(0.2)
    assert agent.wait(10) == 0
    took = time.monotonic() - sent
    assert took < 5.0 + 2.0, f"it waited {took:.1f} s: for its grace (10 s), not for its run"
    assert run.status(task) == "applied"
    no_silence(run, task)


def test_a_run_sent_to_a_draining_agent_is_run(run):
    # As the simulated agent: the scheduler does not know the pod is going, and a draining
    # agent runs what it is sent (it ends within the grace or is aborted before its commit).
    task = applying(run, apply_s=3.0, grace_s=10.0)
    run.signal("pod-1", signal.SIGTERM)
    time.sleep(0.5)
    plan = run.create("ws-2", task_type="plan")
    wait_for(lambda: run.status(plan) not in ("pending", "running"), 10, what="the plan to end")
    assert run.status(plan) == "success"
    assert [r["pod"] for r in run.exec_rows(plan, "exec.ok", "plan")] == ["pod-1"]
    assert run.procs["pod-1"].wait(10) == 0
    assert run.status(task) == "applied"
    no_silence(run, task)
