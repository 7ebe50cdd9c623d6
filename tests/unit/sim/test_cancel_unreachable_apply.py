"""A cancel of a running apply whose agent is cut off from the scheduler cannot stop it: the
apply runs on and commits, and a database outage holds its report back while the pod is
deleted as unhealthy. The reference asks the state backend about the cancelled apply until it
is settled, and records the commit (`applied`); before, the task stayed `cancelled`."""

from sim import runner
from sim.config import FaultSpec, UserConfig, fixed
from unstuck import checker

from .worlds import config


def test_a_cancelled_apply_that_commits_unreported_is_recorded_from_the_state():
    cfg = config(
        users=UserConfig(confirm=fixed(20.0), cancel=1.0),  # the user cancels at ~119
        faults=(
            FaultSpec("double-confirm", at=100.0, retry_s=1.0, gap_s=0.1),  # confirms first
            FaultSpec("agent-disconnect", at=105.0, target="apply-runner", reconnect_after=400.0),
            FaultSpec("db-write-failure", at=158.0, rate=1.0, duration_s=120.0),
        ),
        duration_s=600.0, drain_s=1200.0)
    rows = runner.run(cfg, "reference", 0).rows
    assert any(r["kind"] == "exec.ok" and r["data"].get("action") == "apply" for r in rows)
    assert any(r["kind"] == "user" and r["data"].get("action") == "cancel" for r in rows)
    verdict = checker.check(rows)
    assert verdict.ok, {k: n for k, n in verdict.counts().items() if n}
    final = [r["to_status"] for r in rows if r["kind"] == "task.transition" and r["task"] == 1]
    assert final[-1] == "applied", final
