"""A confirmed apply sent to an agent that froze before it could claim the run (its node
lost between the plan and the confirm, the run unread in its socket). The apply never began,
so the reference sends it again, still confirmed, instead of failing it "did not commit:
re-plan and confirm" (until session 34). The frozen agent's claim, when it wakes, is refused:
the plan is applied once. An apply's claim is written into the task's row before it is
answered (`Task.claimed_fence`), so a restart knows which runs began."""

from __future__ import annotations

import pytest

from scheduler import events as ev
from scheduler.model import Pool, TaskStatus
from scheduler.testing import Script
from scheduler.variants.reference import UNKNOWN_OUTCOME
from unstuck import checker


def frozen_before_the_claim(*, restart_at: float | None = None) -> Script:
    s = Script("reference", pool=Pool("pool-1", min_replicas=1, max_replicas=2),
               plan_s=10.0, apply_s=30.0)
    s.create(1.0)  # its plan runs on the first pod's agent from 31 to 41
    s.pause_agent(50.0, lambda s: s.agent_of_task(1))  # its node is lost
    s.confirm(55.0, 1)  # dispatched to the frozen agent, which cannot read it
    if restart_at is not None:
        s.restart_scheduler(restart_at)
    return s


def transitions(rows: list[dict], task: int) -> list[tuple[str, str, str]]:
    return [(r["from_status"], r["to_status"], r["reason"]) for r in rows
            if r["kind"] == "task.transition" and r["task"] == task]


def apply_invokes(rows: list[dict], task: int) -> list[dict]:
    return [r for r in rows if r["kind"] == "exec.invoke" and r["task"] == task
            and r["data"]["action"] == "apply"]


def test_an_apply_its_frozen_agent_never_claimed_runs_on_another_pod():
    s = frozen_before_the_claim()
    # Sent back at 105 (60 s after its agent's last heartbeat); the frozen pod is deleted
    # then, its replacement connects at 130. A claim of the old dispatch, as the frozen
    # agent would send if it woke, is refused from then on.
    s.at(110.0, ev.RunClaimed(1, "agent-pool-1-1", 2))
    s.run(900.0)
    rows = s.finish()
    steps = transitions(rows, 1)
    back = [x for x in steps if x[2].startswith("apply never started")]
    assert [x[:2] for x in back] == [("running", "apply_pending")], steps
    assert s.task(1).status is TaskStatus.APPLIED, (s.task(1).status, s.task(1).error_message)
    assert s.task(1).confirmed
    # Applied once, by the agent of the new pod; the old dispatch's claim was refused.
    refused = [(e, o.status) for _, e, o in s.outcomes
               if isinstance(e, ev.RunClaimed) and not o.ok]
    assert [(e.task_id, status) for e, status in refused] == [(1, 409)], refused
    invokes = apply_invokes(rows, 1)
    assert len(invokes) == 1 and invokes[0]["pod"] != first_apply_pod(rows), invokes
    verdict = checker.check(rows)
    assert verdict.ok, [(v.invariant, v.message) for v in verdict.violations]


def first_apply_pod(rows: list[dict]) -> str:
    """The pod the first apply was sent to (the frozen one)."""
    return next(r["pod"] for r in rows if r["kind"] == "dispatch" and r["data"]["action"] == "apply")


def test_an_apply_dispatched_before_a_restart_and_never_claimed_is_sent_again():
    # The restarted process reads the claim from the task's row: none, so the apply never
    # began. (Until session 35 the claim was kept in memory, and after a restart every
    # earlier dispatch counted as claimed: the task failed "outcome unknown".)
    s = frozen_before_the_claim(restart_at=70.0)
    s.run(900.0)
    rows = s.finish()
    steps = transitions(rows, 1)
    assert [x[:2] for x in steps if x[2].startswith("apply never started")] == [
        ("running", "apply_pending")], steps
    assert s.task(1).status is TaskStatus.APPLIED, (s.task(1).status, s.task(1).error_message)
    assert len(apply_invokes(rows, 1)) == 1
    verdict = checker.check(rows)
    assert verdict.ok, [(v.invariant, v.message) for v in verdict.violations]


def test_a_claim_the_store_cannot_record_is_refused_503_and_asked_again():
    # The claim must be in the row before the agent may start: an outage at the claim
    # answers 503 (the run does not start), and the agent's next try is taken.
    s = Script("reference", pool=Pool("pool-1", min_replicas=1, max_replicas=2),
               plan_s=10.0, apply_s=30.0)
    s.create(1.0)
    s.pause_agent(45.0, lambda s: s.agent_of_task(1), resume_after=10.0)
    s.confirm(50.0, 1)  # the run waits unread in the frozen agent's socket
    s.at(55.0, lambda: s.store.fail_next_writes(1))  # the next write is the claim, at the wake
    s.run(900.0)
    rows = s.finish()
    claims = [(e.task_id, o.status) for _, e, o in s.outcomes if isinstance(e, ev.RunClaimed)]
    assert claims[-2:] == [(1, 503), (1, 200)], claims
    failed = [r for r in rows if r["kind"] == "store.write_failed"]
    assert [r["data"]["op"] for r in failed] == ["claim"], failed
    assert s.task(1).status is TaskStatus.APPLIED and s.task(1).claimed
    assert len(apply_invokes(rows, 1)) == 1


@pytest.mark.parametrize("restart", [False, True], ids=["", "after-a-restart"])
def test_a_claimed_apply_whose_agent_freezes_is_not_sent_again(restart):
    s = Script("reference", pool=Pool("pool-1", min_replicas=1, max_replicas=2),
               plan_s=10.0, apply_s=30.0)
    s.create(1.0)
    s.confirm(50.0, 1)  # claimed and started at once
    if restart:
        s.restart_scheduler(55.0)  # the claim is in the row: still claimed
    s.pause_agent(60.0, lambda s: s.agent_of_task(1))
    s.run(900.0)
    rows = s.finish()
    assert len(apply_invokes(rows, 1)) == 1
    assert s.task(1).status is TaskStatus.FAILED, transitions(rows, 1)
    assert s.task(1).error_message.startswith(UNKNOWN_OUTCOME), s.task(1).error_message


def test_an_apply_refused_before_its_claim_waits_again_instead_of_failing():
    # What our agent reports when the workspace's state lock is held under another run's
    # live lease: the apply failed, with no claim before it. It never began.
    s = frozen_before_the_claim()
    refusal = "state of ws-mb7m9ii5ey is locked by task 9 (fence 1) under a live lease"
    s.at(60.0, ev.ApplyFinished(1, "agent-pool-1-1", False, 2, refusal))
    s.run(900.0)
    rows = s.finish()
    steps = transitions(rows, 1)
    assert ("running", "apply_pending", f"apply refused before it began: {refusal}") in steps, steps
    assert s.task(1).status is TaskStatus.APPLIED, (s.task(1).status, s.task(1).error_message)
    assert len(apply_invokes(rows, 1)) == 1
    verdict = checker.check(rows)
    assert verdict.ok, [(v.invariant, v.message) for v in verdict.violations]
