"""A given-up apply (cancelled while it ran, or failed "apply outcome unknown" at the run
timeout) may still run on its agent: the task has ended in the store, but the agent's
heartbeat lists the run until it ends. While the state has not settled it, its pod holds a
plan_and_apply as a running task's pod does: no second plan_and_apply goes to that agent
(seed-system.md §2.2: `plan_and_apply needs !apply_running`), the pod is not replaced as
unhealthy (killing the apply mid-way), and on a Deployment it keeps its deletion cost."""

from sim import runner
from sim.config import AgentConfig, FaultSpec, PoolConfig, UserConfig, WorkspaceGroup, fixed
from unstuck import checker

from .worlds import config

COST = "controller.kubernetes.io/pod-deletion-cost"
# Task 1's apply runs from ~114 for 3,700 s: given up at the run timeout (~3715), it commits
# at ~3814 while its agent still lists it.
TIMED_OUT = AgentConfig(connect=fixed(30.0), plan=fixed(60.0), apply=fixed(3700.0), has_changes=1.0)


def apply_window(rows: list[dict], task: int) -> tuple[str, float, float]:
    """(pod, start, end) of the task's apply run, as the agent saw it."""
    start = next(r for r in rows if r["kind"] == "exec.invoke" and r["task"] == task
                 and r["data"]["action"] == "apply")
    end = next(r for r in rows if r["kind"] in ("exec.ok", "exec.fail", "exec.info")
               and r["task"] == task and r["t"] >= start["t"] and r["data"].get("action") == "apply")
    return start["pod"], start["t"], end["t"]


def test_no_second_plan_and_apply_goes_to_an_agent_running_a_given_up_apply():
    cfg = config(
        pools=(PoolConfig("pool-1", min_replicas=1, max_replicas=2),),
        agents=TIMED_OUT,
        workload=(WorkspaceGroup(names=("ws-1",), at=(5.0,)),
                  WorkspaceGroup(names=("ws-2",), at=(3750.0,))),  # ws-2 plans while it runs
        duration_s=3800.0, drain_s=600.0, bound_s=3800.0)
    rows = runner.run(cfg, "reference", 0).rows
    pod, start, end = apply_window(rows, 1)
    assert any(r["kind"] == "task.transition" and r["task"] == 1
               and r["reason"].startswith("apply outcome unknown") and r["t"] < end for r in rows)
    overlapping = [(r["t"], r["task"]) for r in rows if r["kind"] == "exec.invoke"
                   and r["pod"] == pod and r["task"] != 1 and start < r["t"] < end]
    assert not overlapping, f"plan_and_apply runs sent to {pod} while it ran task 1's apply"
    assert any(r["kind"] == "exec.invoke" and r["workspace"] == "ws-2" for r in rows)


def test_the_pod_of_a_given_up_apply_keeps_its_deletion_cost():
    cfg = config(
        pools=(PoolConfig("pool-1", manager="deployment", min_replicas=1, max_replicas=2),),
        agents=TIMED_OUT, workload=(WorkspaceGroup(names=("ws-1",), at=(5.0,)),),
        duration_s=3800.0, drain_s=600.0, bound_s=3800.0)
    rows = runner.run(cfg, "reference", 0).rows
    pod, start, end = apply_window(rows, 1)
    zeroed = [r["t"] for r in rows if r["kind"] == "pod.annotate" and r["pod"] == pod
              and r["data"]["annotations"][COST] == "0" and start < r["t"] < end]
    assert not zeroed, f"{pod} lost its deletion cost while it ran task 1's given-up apply"


def test_the_pod_of_a_cut_off_cancelled_apply_is_not_replaced_while_it_may_commit():
    # The apply is sent at 100; its agent is cut off at 105 (its heartbeat of 104 lists the
    # run) or at 101 (its last heartbeat, of 94, does not: the pod was replaced at 155 and
    # the apply killed until the agent that was sent the run counted till its next heartbeat).
    for cut_at in (105.0, 101.0):
        cfg = config(
            agents=AgentConfig(connect=fixed(30.0), plan=fixed(60.0), apply=fixed(600.0), has_changes=1.0),
            users=UserConfig(confirm=fixed(20.0), cancel=1.0),  # the user cancels at ~114
            faults=(FaultSpec("double-confirm", at=100.0, retry_s=1.0, gap_s=0.1),  # confirms first
                    FaultSpec("agent-disconnect", at=cut_at, target="apply-runner", reconnect_after=1000.0)),
            duration_s=600.0, drain_s=1200.0)
        rows = runner.run(cfg, "reference", 0).rows
        pod, start, end = apply_window(rows, 1)
        kinds = {r["kind"] for r in rows if r["task"] == 1 and r["t"] == end}
        assert "exec.ok" in kinds, (cut_at, f"task 1's apply did not commit: {kinds}")  # not killed with its pod
        deleted = [r["t"] for r in rows if r["kind"] == "pod.delete" and r["pod"] == pod]
        assert deleted and deleted[0] >= end, (cut_at, deleted)
        final = [r["to_status"] for r in rows if r["kind"] == "task.transition" and r["task"] == 1]
        assert final[-1] == "applied", (cut_at, final)
        verdict = checker.check(rows)
        assert verdict.ok, {k: n for k, n in verdict.counts().items() if n}


def _kept_pod_on_a_deployment() -> list[dict]:
    """Task 1's agent is cut off during its apply and the user cancels: its pod is kept while
    the apply may commit (to ~714). It is the Deployment's only replica when ws-2's task is
    created at 150."""
    cfg = config(
        pools=(PoolConfig("pool-1", manager="deployment", min_replicas=1, max_replicas=3),),
        agents=AgentConfig(connect=fixed(30.0), plan=fixed(60.0), apply=fixed(600.0), has_changes=1.0),
        users=UserConfig(confirm=fixed(20.0), cancel=1.0),  # task 1's user cancels at ~114
        workload=(WorkspaceGroup(names=("ws-1",), at=(5.0,)),
                  WorkspaceGroup(names=("ws-2",), at=(150.0,))),
        faults=(FaultSpec("double-confirm", at=100.0, retry_s=1.0, gap_s=0.1),  # confirms first
                FaultSpec("agent-disconnect", at=105.0, target="apply-runner", reconnect_after=1000.0)),
        duration_s=600.0, drain_s=1200.0)
    return runner.run(cfg, "reference", 0).rows


def test_a_kept_cut_off_pod_of_a_given_up_apply_does_not_hold_a_deployments_only_replica():
    # ws-2's task needs a second replica, or it waits for task 1's apply to end.
    rows = _kept_pod_on_a_deployment()
    pod, _, end = apply_window(rows, 1)
    plan = next(r for r in rows if r["kind"] == "exec.invoke" and r["workspace"] == "ws-2")
    assert plan["pod"] != pod and plan["t"] < 250.0, (plan["pod"], plan["t"], end)
    verdict = checker.check(rows)
    assert verdict.ok, {k: n for k, n in verdict.counts().items() if n}


def test_a_kept_pod_does_not_rescale_the_deployment_on_every_pass():
    # The kept pod is a replica but no capacity, so demand and capacity differ on every pass
    # while it stays (to ~714): the count is set when it or the pods change (a PATCH live),
    # not again on each pass. Before, 24 rows set 2 between 150 and 700.
    rows = _kept_pod_on_a_deployment()
    scales = [(r["t"], r["data"]["replicas"]) for r in rows if r["kind"] == "scale"]
    added = next(r["t"] for r in rows if r["kind"] == "pod.added" and 150.0 <= r["t"])
    assert [n for _, n in scales] == [1, 2, 2, 1], scales
    assert scales[1][0] == 150.0 and added < scales[2][0] < added + 30.0, (scales, added)


def test_a_reconnect_or_restart_does_not_free_the_agent_of_a_given_up_apply():
    # Task 1's apply is given up at ~3715 and runs to ~3814 on the only pod. Its agent
    # reconnects (or the scheduler restarts) at ~3740: until its next heartbeat, 10 s later,
    # the scheduler has not heard what it runs. ws-2's plan_and_apply, waiting since 3730,
    # must not go to that agent then (it used to, at once: the new view listed no run).
    # The next plan_and_apply runs there once the apply has ended.
    for fault in (FaultSpec("agent-disconnect", at=3740.0, target="random", reconnect_after=3.0),
                  FaultSpec("scheduler-restart", at=3740.0)):
        cfg = config(
            pools=(PoolConfig("pool-1", min_replicas=1, max_replicas=1),), agents=TIMED_OUT,
            workload=(WorkspaceGroup(names=("ws-1",), at=(5.0,)),
                      WorkspaceGroup(names=("ws-2",), at=(3730.0,))),
            faults=(fault,), duration_s=3800.0, drain_s=600.0, bound_s=3800.0)
        rows = runner.run(cfg, "reference", 0).rows
        pod, start, end = apply_window(rows, 1)
        overlapping = [(r["t"], r["task"]) for r in rows if r["kind"] == "exec.invoke"
                       and r["pod"] == pod and r["task"] != 1 and start < r["t"] < end]
        assert not overlapping, f"{fault.type}: runs sent to {pod} while it ran task 1's apply"
        assert any(r["kind"] == "exec.invoke" and r["task"] != 1 and r["t"] >= end for r in rows)
