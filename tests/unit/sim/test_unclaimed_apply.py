"""The SimPy world's case of an apply its agent never claimed: node-loss-mid-apply seed 19.
Task 17's node is lost at t=3544.6, after its plan; the user confirms at 3560.6 and the
apply is sent to the frozen agent, where it waits unread. Until session 34 the reference
failed it at 3605 "apply did not commit: re-plan and confirm"; it never began, so it is now
sent again and applied on another pod, once."""

from __future__ import annotations

from sim.world import World
from unstuck import checker
from unstuck.scenario import load


def test_an_apply_sent_to_a_frozen_agent_is_applied_on_another_pod_once():
    world = World(load("scenarios/node-loss-mid-apply.yaml").world(), "reference", 19)
    rows = world.run()
    steps = [r for r in rows if r["kind"] == "task.transition" and r["task"] == 17]
    back = [r for r in steps if r["reason"].startswith("apply never started")]
    assert [(r["from_status"], r["to_status"], r["t"]) for r in back] == [
        ("running", "apply_pending", 3605.0)], [(r["to_status"], r["reason"]) for r in steps]
    assert steps[-1]["to_status"] == "applied", steps[-1]
    dispatched = [r["pod"] for r in rows if r["kind"] == "dispatch" and r["task"] == 17
                  and r["data"]["action"] == "apply"]
    invoked = [r["pod"] for r in rows if r["kind"] == "exec.invoke" and r["task"] == 17
               and r["data"]["action"] == "apply"]
    assert len(dispatched) == 2 and invoked == dispatched[1:], (dispatched, invoked)
    verdict = checker.check(rows)
    assert verdict.ok, [(v.invariant, v.message) for v in verdict.violations]
    # The claim is in the row: the apply that ran is recorded claimed with the fence it ran
    # under, and the dispatch its frozen agent never read is not.
    task = world.store.get_task(17)
    invokes = [r["data"]["fence"] for r in rows if r["kind"] == "exec.invoke" and r["task"] == 17
               and r["data"]["action"] == "apply"]
    assert task.claimed_fence == invokes[0] and task.claimed_fence != 0, task
