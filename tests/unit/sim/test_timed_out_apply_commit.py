"""An apply that runs past the run timeout fails "apply outcome unknown" while its agent
works on; it commits, a database outage holds its report back, and the pod is killed. The
reference asks the state about an apply it gave up on until it is settled, and records the
commit (`applied`); before, the task stayed `failed` with its change made."""

from sim import runner
from sim.config import AgentConfig, FaultSpec, PoolConfig, fixed
from unstuck import checker

from .worlds import config


def test_an_apply_past_the_run_timeout_that_commits_unreported_is_recorded_from_the_state():
    cfg = config(
        pools=(PoolConfig("pool-1", min_replicas=1, max_replicas=1),),
        agents=AgentConfig(connect=fixed(30.0), plan=fixed(60.0), apply=fixed(3700.0), has_changes=1.0),
        faults=(  # the apply runs from ~114, fails at the timeout ~3715, commits at ~3814
            FaultSpec("db-write-failure", at=3800.0, rate=1.0, duration_s=200.0),
            FaultSpec("pod-kill", at=3900.0, target="random", mode="forced"),
        ),
        duration_s=4000.0, drain_s=600.0, bound_s=3800.0)
    rows = runner.run(cfg, "reference", 0).rows
    reasons = [r["reason"] for r in rows if r["kind"] == "task.transition" and r["task"] == 1]
    assert any(x.startswith("apply outcome unknown") for x in reasons), reasons
    assert any(r["kind"] == "exec.ok" and r["data"].get("action") == "apply" for r in rows)
    verdict = checker.check(rows)
    assert verdict.ok, {k: n for k, n in verdict.counts().items() if n}
    final = [r["to_status"] for r in rows if r["kind"] == "task.transition" and r["task"] == 1]
    assert final[-1] == "applied", final
