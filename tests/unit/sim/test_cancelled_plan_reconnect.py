"""A plan cancelled while its agent is cut off runs on in the agent (the cancel could not be
sent). When the agent reconnects, the reference must not send it another plan_and_apply
before a heartbeat shows the cancelled run has ended (seed-system.md §2.2: one
plan_and_apply per agent). Found with `users.cancel_anytime` (adversarial, session 19)."""

from sim import runner
from sim.config import AgentConfig, FaultSpec, PoolConfig, UserConfig, WorkspaceGroup, fixed
from unstuck import checker

from .worlds import config


def _cancelled_while_cut_off(*faults: FaultSpec) -> list[dict]:
    """One pod. Task 1 plans 34-94; the agent is cut off 45-75; task 1 is cancelled at 60
    (unsent); task 2 (created at 50) waits. Returns the history, checked for agent capacity
    and for task 2 starting only once task 1's plan has ended."""
    cfg = config(pools=(PoolConfig("pool-1", min_replicas=1, max_replicas=1),),
                 users=UserConfig(confirm=fixed(20.0), cancel_anytime=1.0,
                                  cancel_anytime_delay=fixed(55.0)),
                 workload=(WorkspaceGroup(names=("ws-1",), at=(5.0,)),
                           WorkspaceGroup(names=("ws-2",), at=(50.0,))),
                 faults=(FaultSpec("agent-disconnect", at=45.0, reconnect_after=30.0), *faults))
    rows = runner.run(cfg, "reference", 0).rows
    assert not checker.invariants.agent_capacity(rows)
    plan_1_end = next(r["t"] for r in rows if r["kind"] == "exec.ok" and r["task"] == 1)
    start_2 = next(r["t"] for r in rows if r["kind"] == "exec.invoke" and r["task"] == 2)
    assert start_2 >= plan_1_end, (start_2, plan_1_end)
    return rows


def test_a_reconnected_agent_still_running_a_cancelled_plan_gets_no_second_plan_and_apply():
    # Task 2 used to be dispatched at the reconnect, 75.
    verdict = checker.check(_cancelled_while_cut_off())
    assert verdict.ok, {k: n for k, n in verdict.counts().items() if n}


def test_the_cancelled_plan_still_holds_the_agent_after_a_scheduler_restart():
    # A scheduler restart at 65, between the unsent cancel (60) and the reconnect (75): the
    # restart forgets what memory held, so the hold must come from the agent, whose connect
    # lists the cancelled run. Task 2 used to start at 75.
    _cancelled_while_cut_off(FaultSpec("scheduler-restart", at=65.0))


def _requeued_while_away(*restarts: float) -> list[dict]:
    """One pod. Task 1 plans 34-334; its agent is cut off 45-145; ws-a's plan_and_apply
    (task 2) comes at 50; the scheduler restarts at `restarts`. Returns the history, checked
    for agent capacity."""
    cfg = config(pools=(PoolConfig("pool-1", min_replicas=1, max_replicas=1),),
                 agents=AgentConfig(connect=fixed(30.0), plan=fixed(300.0), apply=fixed(60.0),
                                    has_changes=1.0),
                 workload=(WorkspaceGroup(names=("ws-b",), at=(5.0,)),
                           WorkspaceGroup(names=("ws-a",), at=(50.0,))),
                 faults=(FaultSpec("agent-disconnect", at=45.0, reconnect_after=100.0),
                         *(FaultSpec("scheduler-restart", at=t) for t in restarts)))
    rows = runner.run(cfg, "reference", 0).rows
    assert not checker.invariants.agent_capacity(rows)
    return rows


def test_a_plan_requeued_while_its_agent_was_away_holds_the_agent_when_it_reconnects():
    # No cancel: the scheduler restarts at 50 while the agent is cut off, in the middle of
    # task 1's plan; at 115 it requeues the plan ("agent never reconnected"). The agent
    # reconnects at 145 still planning; task 2 used to be sent to it then. A new run of
    # task 1 itself supersedes the old one.
    rows = _requeued_while_away(50.0)
    assert any(r["kind"] == "exec.invoke" and r["task"] == 1 and r["t"] == 145.0 for r in rows)


def test_a_requeued_plan_still_holds_its_agent_after_a_second_restart():
    # As above, with a second restart at 130, after the requeue (115) and before the
    # reconnect (145): the requeue cleared the task's agent, so nothing in the store says
    # the agent may still run the plan. The agent says so itself when it reconnects (its
    # connect and its heartbeats list its runs); task 2 used to be sent to it at 145, while
    # it still planned task 1.
    rows = _requeued_while_away(50.0, 130.0)
    assert any(r["kind"] == "task.transition" and r["task"] == 1 and r["t"] < 130.0
               and r["reason"].startswith("plan lost") for r in rows)
