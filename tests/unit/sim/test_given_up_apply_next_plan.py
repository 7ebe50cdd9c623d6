"""An apply past the run timeout fails "apply outcome unknown" while its agent works on, and
the workspace is unlocked. The workspace's next plan_and_apply must not plan until the state
has settled the old run: planned before its commit, it would be confirmed and applied over a
state that changed after the plan (session 17, round 3: 16 of 20 seeds)."""

from sim import runner
from sim.config import AgentConfig, PoolConfig, WorkspaceGroup, fixed
from unstuck import checker

from .worlds import config


def test_the_next_plan_waits_for_the_given_up_apply_to_settle():
    cfg = config(
        pools=(PoolConfig("pool-1", min_replicas=1, max_replicas=2),),
        agents=AgentConfig(connect=fixed(30.0), plan=fixed(60.0), apply=fixed(3700.0), has_changes=1.0),
        # task 1's apply runs from ~114, is given up at the timeout ~3715 and commits at ~3814;
        # task 2 is created in between, and its plan would end before that commit.
        workload=(WorkspaceGroup(names=("ws-1",), at=(5.0, 3750.0)),),
        duration_s=3800.0, drain_s=4200.0, bound_s=3800.0)
    rows = runner.run(cfg, "reference", 0).rows
    reasons = [r["reason"] for r in rows if r["kind"] == "task.transition" and r["task"] == 1]
    assert any(x.startswith("apply outcome unknown") for x in reasons), reasons
    ok = {(r["task"], r["data"]["action"]): r["t"] for r in rows if r["kind"] == "exec.ok"}
    assert (1, "apply") in ok and (2, "plan") in ok, ok
    assert ok[(2, "plan")] > ok[(1, "apply")], "task 2 planned before task 1's apply committed"
    verdict = checker.check(rows)
    assert verdict.ok, {k: n for k, n in verdict.counts().items() if n}


def test_a_state_that_cannot_be_read_holds_no_plan_back():
    """The hold lasts while the state says the old run may yet commit (a live lease). A
    backend that cannot be read says nothing: holding the workspace's plans until it answers
    would keep them pending for ever if it never does, so the next plan goes ahead (on the
    second pod: the first one's agent still runs the given-up apply, `given_up_pods`)."""
    from scheduler.ports import StateReadError
    from sim.world import World

    cfg = config(
        pools=(PoolConfig("pool-1", min_replicas=2, max_replicas=2),),
        agents=AgentConfig(connect=fixed(30.0), plan=fixed(60.0), apply=fixed(3700.0), has_changes=1.0),
        workload=(WorkspaceGroup(names=("ws-1",), at=(5.0, 3750.0)),),
        duration_s=3800.0, drain_s=4200.0, bound_s=3800.0)
    world = World(cfg, "reference", 0)

    def unreadable(workspace_id: str, task_id: int, fence: int):
        raise StateReadError("connection refused")

    world.state.apply_outcome = unreadable  # injected: the simulated backend never fails
    rows = world.run()
    ok = {(r["task"], r["data"]["action"]): r["t"] for r in rows if r["kind"] == "exec.ok"}
    assert (1, "apply") in ok and (2, "plan") in ok, ok
    assert ok[(2, "plan")] < ok[(1, "apply")], "task 2's plan waited on a state nobody can read"
