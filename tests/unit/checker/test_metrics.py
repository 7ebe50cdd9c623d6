"""Metric values on small histories, asserted exactly (docs/metrics.md defines each one)."""

from __future__ import annotations

import math

import pytest

from unstuck.checker import metrics, timelines, witness

from .story import Story, fixture

NAN = float("nan")


def _same(a: object, b: object) -> bool:
    """Equality where NaN equals NaN, for whole records."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _assert_record(record: object, **expected: object) -> None:
    got = record.to_dict()
    wrong = {k: (got[k], v) for k, v in expected.items() if not _same(got[k], v)}
    assert not wrong, wrong


def test_incident_601_seed_is_one_unrecovered_hit_and_one_open_stuck_task() -> None:
    m = metrics.measure(fixture("incident-601-seed.jsonl"))
    (hit,) = m.recovery
    # The pod died while the plan waited for a human: the clock starts at the confirm (440).
    _assert_record(hit, fault_seq=11, fault_type="pod-kill", fault_t=400.0, task=601,
                   status_at_fault="apply_pending", awaiting_human=True, clock_t=440.0,
                   progress_seq=None, progress_t=NAN, progress_to=None, latency_s=NAN,
                   outcome="unrecovered")
    (c2a,) = m.confirm_to_apply
    _assert_record(c2a, task=601, epoch=1, confirm_seq=19, confirm_t=440.0, apply_seq=None,
                   apply_t=NAN, latency_s=NAN, started=False)
    (stuck,) = m.stuck
    _assert_record(stuck, task=601, since_t=440.0, stuck_s=1360.0, open=True)
    assert m.unrecovered == 1
    s = m.recovery_summary()  # the unrecovered hit is infinitely late, not left out
    assert (s.n, s.missing) == (0, 1) and s.p50 == s.max == math.inf


def test_incident_601_reference_recovers_30_s_after_the_confirm() -> None:
    m = metrics.measure(fixture("incident-601-reference.jsonl"))
    (hit,) = m.recovery
    _assert_record(hit, clock_t=440.0, progress_t=470.0, progress_to="running", latency_s=30.0,
                   outcome="recovered")
    (c2a,) = m.confirm_to_apply
    _assert_record(c2a, confirm_t=440.0, apply_t=470.5, latency_s=30.5, started=True)
    (stuck,) = m.stuck
    _assert_record(stuck, stuck_s=30.0, open=False)
    assert m.recovery_summary().to_dict() == {
        "n": 1, "missing": 0, "p50": 30.0, "p95": 30.0, "p99": 30.0, "max": 30.0}


def test_an_agent_disconnect_mid_apply_recovers_when_the_task_fails_with_a_reason() -> None:
    (hit,) = metrics.recovery_latencies(fixture("agent-disconnect-wedge-f8.jsonl"))
    _assert_record(hit, fault_seq=15, task=8, status_at_fault="running", awaiting_human=False,
                   clock_t=230.0, progress_seq=18, progress_t=350.0, progress_to="failed",
                   latency_s=120.0, outcome="recovered")


def test_a_double_confirm_hits_the_task_it_names() -> None:
    (hit,) = metrics.recovery_latencies(fixture("double-confirm-reference.jsonl"))
    _assert_record(hit, fault_type="double-confirm", task=7, latency_s=0.2, outcome="recovered")


def _planned_with_changes(s: Story) -> None:
    """Task 1 of ws-1 is created at 0, plans from 1 and ends with changes at 10."""
    s.created(0, 1)
    s.to(1, 1, "pending", "running")
    s.to(10, 1, "running", "apply_pending", reason="plan has changes")


def _holding(s: Story, task: int, pod: str) -> None:
    s.created(0, task, f"ws-{task}", typ="plan")
    s.add(1, "slot.assigned", task=task, pod=pod, slot=0)
    s.to(1, task, "pending", "running", f"ws-{task}", pod=pod)


def test_a_node_loss_hits_the_tasks_on_that_nodes_pods_only() -> None:
    s = Story()
    s.add(0, "pod.added", pod="p1", data={"node": "n1"})
    s.add(0, "pod.added", pod="p2", data={"node": "n2"})
    _holding(s, 1, "p1")
    _holding(s, 2, "p2")
    s.add(50, "fault", reason="node lost", data={"type": "node-loss", "node": "n1"})
    s.to(80, 1, "running", "failed", "ws-1", "node lost")
    s.end(500)
    hits = metrics.recovery_latencies(s.rows())
    assert [(h.task, h.latency_s, h.outcome) for h in hits] == [(1, 30.0, "recovered")]


def test_a_hit_on_a_running_task_says_whether_it_ran_its_plan_or_its_apply() -> None:
    # The gate's goals ask for it (`run: apply`): node-loss-mid-apply is about a lost apply.
    s = Story()
    s.add(0, "pod.added", pod="p1", data={"node": "n1"})
    _planned_with_changes(s)  # task 1: plan_and_apply, in apply_pending at 10
    s.add(10, "slot.reserved", task=1, pod="p1", slot=0)
    s.confirm(20, 1)
    s.to(21, 1, "apply_pending", "running", reason="dispatch apply", pod="p1")
    _holding(s, 2, "p1")  # task 2: a plan, running on the same pod
    s.created(0, 3, "ws-3")  # task 3: pending, hit by the restart below only
    s.add(50, "fault", reason="node lost", data={"type": "node-loss", "node": "n1"})
    s.add(60, "fault", data={"type": "scheduler-restart"})
    s.end(500)
    hits = metrics.recovery_latencies(s.rows())
    got = {(h.fault_type, h.task): (h.status_at_fault, h.run_at_fault) for h in hits}
    assert got[("node-loss", 1)] == ("running", "apply") and got[("node-loss", 2)] == ("running", "plan")
    assert got[("scheduler-restart", 3)] == ("pending", None)


def test_a_slot_released_before_the_fault_is_not_a_hit() -> None:
    s = Story()
    _holding(s, 1, "p1")
    s.add(5, "slot.released", task=1, pod="p1", slot=0)
    s.to(5, 1, "running", "pending", "ws-1", "requeued")
    s.add(50, "fault", pod="p1", data={"type": "pod-kill"})
    s.end(500)
    assert metrics.recovery_latencies(s.rows()) == []


def test_a_scheduler_restart_hits_every_unfinished_task() -> None:
    s = Story()
    _holding(s, 1, "p1")
    s.created(0, 2, "ws-2")  # pending, no slot: still hit, the restart lost its timers
    s.created(0, 3, "ws-3", typ="plan")
    s.to(2, 3, "pending", "running", "ws-3")
    s.to(3, 3, "running", "planned_and_finished", "ws-3")  # finished: not hit
    s.add(50, "fault", data={"type": "scheduler-restart"})
    s.to(60, 2, "pending", "running", "ws-2")
    s.end(500)
    hits = metrics.recovery_latencies(s.rows())
    assert [(h.task, h.outcome) for h in hits] == [(1, "unrecovered"), (2, "recovered")]
    assert math.isnan(hits[0].latency_s) and hits[1].latency_s == 10.0


def test_a_plan_that_ends_with_changes_after_the_fault_has_recovered_then() -> None:
    # Found on mixed-chaos-day: a restart hit a running plan that ended 16 s later; the human
    # confirmed 3.4 h after that. The scheduler recovered at the plan's end, not the confirm.
    s = Story()
    _holding(s, 1, "p1")
    s.add(50, "fault", data={"type": "scheduler-restart"})
    s.to(66, 1, "running", "apply_pending", "ws-1", "plan finished with changes")
    s.confirm(12_000, 1, "ws-1")
    s.to(12_000, 1, "apply_pending", "running", "ws-1", "dispatch apply")
    s.end(13_000)
    (hit,) = metrics.recovery_latencies(s.rows())
    _assert_record(hit, status_at_fault="running", awaiting_human=False, clock_t=50.0,
                   progress_t=66.0, latency_s=16.0, outcome="recovered")


def test_an_apply_rolled_back_to_apply_pending_is_no_progress() -> None:
    s = Story()
    _planned_with_changes(s)
    s.confirm(20, 1)
    s.add(21, "slot.assigned", task=1, pod="p1", slot=0)
    s.to(21, 1, "apply_pending", "running", reason="dispatch apply", pod="p1")
    s.add(21, "dispatch", task=1, pod="p1", data={"action": "apply"})
    s.add(30, "fault", pod="p1", data={"type": "pod-kill"})
    s.to(35, 1, "running", "apply_pending", reason="send failed: rolled back")
    s.to(60, 1, "apply_pending", "running", reason="dispatch apply")
    s.end(500)
    (hit,) = metrics.recovery_latencies(s.rows())
    _assert_record(hit, clock_t=30.0, progress_t=60.0, latency_s=30.0, outcome="recovered")



def _confirmed_then_killed(s: Story) -> None:
    """Task 1 waits confirmed on its reserved pod p1 when p1 is killed at 30."""
    _planned_with_changes(s)
    s.add(11, "slot.reserved", task=1, pod="p1", slot=0)
    s.confirm(20, 1)
    s.add(30, "fault", pod="p1", data={"type": "pod-kill"})


def test_a_send_that_fails_and_rolls_back_is_no_recovery() -> None:
    # The seed's F3 after a pod kill (found by review): the apply is saved as running before
    # the send, the send fails and the task goes back to apply_pending; nothing moved.
    s = Story()
    _confirmed_then_killed(s)
    s.to(40, 1, "apply_pending", "running", reason="dispatch apply", agent="a2")
    s.to(40, 1, "running", "apply_pending", reason="send failed: agent gone")
    s.add(40, "dispatch.failed", task=1, reason="send failed", data={"action": "apply"})
    s.end(4000)
    (hit,) = metrics.recovery_latencies(s.rows())
    _assert_record(hit, clock_t=30.0, progress_seq=None, progress_to=None, latency_s=NAN,
                   outcome="unrecovered")


def test_after_a_failed_send_the_next_real_dispatch_is_the_recovery() -> None:
    s = Story()
    _confirmed_then_killed(s)
    s.to(40, 1, "apply_pending", "running", reason="dispatch apply", agent="a2")
    s.to(40, 1, "running", "apply_pending", reason="send failed: agent gone")
    s.to(55, 1, "apply_pending", "running", reason="dispatch apply", agent="a3")
    s.add(55, "dispatch", task=1, agent="a3", data={"action": "apply"})
    s.end(4000)
    (hit,) = metrics.recovery_latencies(s.rows())
    _assert_record(hit, clock_t=30.0, progress_t=55.0, progress_to="running", latency_s=25.0,
                   outcome="recovered")


def test_a_stint_that_was_sent_counts_even_if_it_is_rolled_back_later() -> None:
    # Sent means the agent had it: that was progress, whatever happened to it next.
    s = Story()
    _confirmed_then_killed(s)
    s.to(40, 1, "apply_pending", "running", reason="dispatch apply", agent="a2")
    s.add(40, "dispatch", task=1, agent="a2", data={"action": "apply"})
    s.to(45, 1, "running", "apply_pending", reason="agent lost: rolled back")
    s.end(4000)
    (hit,) = metrics.recovery_latencies(s.rows())
    _assert_record(hit, progress_t=40.0, latency_s=10.0, outcome="recovered")

def _queued_behind(s: Story) -> None:
    """Task 1 plans, ends with changes and waits; task 2 (same workspace) queues behind it;
    a restart at 50 hits both."""
    _planned_with_changes(s)
    s.created(20, 2)
    s.add(50, "fault", data={"type": "scheduler-restart"})


@pytest.mark.parametrize(("after", "outcome"), [
    ("never confirmed", "human"),  # its turn never came because a human never acted
    ("confirmed, never applied", "unrecovered"),  # the task ahead is stuck: so is this one
    ("cancelled while queued", "human"),  # it ended before its turn: nothing was owed
    ("cancelled by its user while queued", "cancelled"),  # the user's cancel is censored
])
def test_a_queued_task_whose_turn_never_came(after: str, outcome: str) -> None:
    s = Story()
    _queued_behind(s)
    if after.startswith("confirmed"):
        s.confirm(60, 1)
    if after.startswith("cancelled"):
        s.to(70, 2, "pending", "cancelled", reason="user cancelled")
        if "by its user" in after:
            s.add(70, "task.cancel", task=2, workspace="ws-1", data={"user": "u"})
    s.end(5000)
    hit = next(h for h in metrics.recovery_latencies(s.rows()) if h.task == 2)
    _assert_record(hit, queued=True, awaiting_human=False, clock_t=NAN, latency_s=NAN,
                   outcome=outcome)


@pytest.mark.parametrize(("by_user", "outcome"), [(False, "human"), (True, "cancelled")])
def test_a_queued_task_cancelled_before_the_task_ahead_ended(by_user: bool, outcome: str) -> None:
    s = Story()
    _queued_behind(s)
    s.to(70, 2, "pending", "cancelled", reason="user cancelled")
    if by_user:
        s.add(70, "task.cancel", task=2, workspace="ws-1", data={"user": "u"})
    s.confirm(3000, 1)
    s.to(3000, 1, "apply_pending", "running", reason="dispatch apply")
    s.to(3100, 1, "running", "applied", reason="apply finished")
    s.end(5000)
    hit = next(h for h in metrics.recovery_latencies(s.rows()) if h.task == 2)
    _assert_record(hit, queued=True, clock_t=NAN, latency_s=NAN, outcome=outcome)


def test_a_queued_task_is_clocked_from_the_end_of_the_task_ahead() -> None:
    s = Story()
    _queued_behind(s)
    s.confirm(3000, 1)
    s.to(3000, 1, "apply_pending", "running", reason="dispatch apply")
    s.to(3100, 1, "running", "applied", reason="apply finished")
    s.to(3105, 2, "pending", "running", reason="dispatch plan")
    s.end(5000)
    hit = next(h for h in metrics.recovery_latencies(s.rows()) if h.task == 2)
    _assert_record(hit, queued=True, clock_t=3100.0, progress_t=3105.0, latency_s=5.0,
                   outcome="recovered")


def test_a_human_who_never_confirms_is_not_counted_as_an_unrecovered_hit() -> None:
    s = Story()
    s.created(0, 1)
    s.add(1, "slot.assigned", task=1, pod="p1", slot=0)
    s.to(1, 1, "pending", "running", pod="p1")
    s.to(10, 1, "running", "apply_pending", reason="plan has changes")
    s.add(11, "slot.reserved", task=1, pod="p1", slot=0)
    s.add(50, "fault", pod="p1", data={"type": "pod-kill"})
    s.to(90, 1, "apply_pending", "cancelled", reason="user cancelled")
    s.end(500)
    m = metrics.measure(s.rows())
    (hit,) = m.recovery
    _assert_record(hit, awaiting_human=True, clock_t=NAN, latency_s=NAN, outcome="human")
    assert m.unrecovered == 0
    assert m.recovery_summary().n == 0 and m.recovery_summary().missing == 0


def test_stuck_time_sums_every_confirmed_stay_in_apply_pending() -> None:
    s = Story()
    _planned_with_changes(s)
    s.confirm(20, 1)
    s.to(50, 1, "apply_pending", "running", reason="apply dispatch")
    s.add(50, "dispatch", task=1, data={"action": "apply"})
    s.to(51, 1, "running", "apply_pending", reason="rolled back")
    s.end(100)
    (stuck,) = metrics.stuck_durations(s.rows())
    _assert_record(stuck, since_t=20.0, stuck_s=79.0, open=True)  # 30 + 49


INF = math.inf


@pytest.mark.parametrize(("values", "expected"), [
    ([4.0, 1.0, 3.0, 2.0], (4, 0, 2.5, 3.85, 3.97, 4.0)),
    ([4.0, 1.0, 3.0, 2.0, NAN], (4, 1, 3.0, INF, INF, INF)),
    ([1.0] * 99 + [NAN], (99, 1, 1.0, 1.0, INF, INF)),  # one in a hundred stuck: p99 says so
    ([7.0], (1, 0, 7.0, 7.0, 7.0, 7.0)),
    ([NAN, NAN], (0, 2, INF, INF, INF, INF)),
    ([], (0, 0, NAN, NAN, NAN, NAN)),
])
def test_summary_interpolates_between_ranks_and_counts_nan_as_never(values, expected) -> None:
    s = metrics.summary(values)
    got = (s.n, s.missing, s.p50, s.p95, s.p99, s.max)
    assert all(_same(round(g, 9) if isinstance(g, float) else g, e)
               for g, e in zip(got, expected, strict=True)), got


@pytest.mark.parametrize("fault_type", ["pod-kill", "agent-disconnect"])
def test_a_pod_or_agent_fault_does_not_hit_the_other_pods_of_its_node(fault_type) -> None:
    # sim/faults.py records data.node on these faults only to say where the target was;
    # only a node-loss takes every pod of the node with it.
    s = Story()
    s.add(0, "pod.added", pod="p1", data={"node": "n1"})
    s.add(0, "pod.added", pod="p2", data={"node": "n1"})
    _holding(s, 1, "p1")
    _holding(s, 2, "p2")
    s.add(50, "fault", pod="p1", agent="a1", data={"type": fault_type, "node": "n1"})
    s.to(80, 1, "running", "failed", "ws-1", "pod killed")
    s.to(90, 2, "running", "planned_and_finished", "ws-2", "plan finished")
    s.end(500)
    hits = metrics.recovery_latencies(s.rows())
    assert [(h.task, h.latency_s, h.outcome) for h in hits] == [(1, 30.0, "recovered")]


def test_a_restart_hits_no_task_that_was_never_created() -> None:
    # A confirm naming an unknown id is the user's mistake (404): there is no task to lose.
    s = Story()
    s.add(10, "user", task=99, workspace="ws-1", data={"action": "confirm", "user": "u"})
    s.add(10, "confirm.rejected", task=99, workspace="ws-1", reason="no such task",
          data={"status": 404})
    s.add(20, "fault", data={"type": "scheduler-restart"})
    s.end(100)
    m = metrics.measure(s.rows())
    assert m.recovery == () and m.unrecovered == 0


def test_sends_that_fail_before_anything_went_out_are_one_stuck_stay() -> None:
    # The clock keeps running through a running stint rolled back before any send (F3).
    s = Story()
    _planned_with_changes(s)
    s.confirm(20, 1)
    s.to(50, 1, "apply_pending", "running", reason="apply dispatch")
    s.to(51, 1, "running", "apply_pending", reason="send failed: rolled back")
    s.end(100)
    (stuck,) = metrics.stuck_durations(s.rows())
    _assert_record(stuck, since_t=20.0, stuck_s=80.0, open=True)


def test_a_fault_without_a_target_hits_the_tasks_on_the_pods_its_effects_delete() -> None:
    # An hpa-scale-down names no pod: the ReplicaSet's deletions it causes name it instead
    # (data.fault = its seq), and hit the tasks on those pods at their own time.
    s = Story()
    s.add(0, "pod.added", pod="p1", data={"node": "n1"})
    s.add(0, "pod.added", pod="p2", data={"node": "n1"})
    _holding(s, 1, "p1")
    _holding(s, 2, "p2")
    seq = s.add(50, "fault", data={"type": "hpa-scale-down", "pool": "agents"})
    s.add(400, "pod.terminating", pod="p1",
          data={"node": "n1", "cause": "replicaset scale-down", "fault": seq})
    s.add(410, "pod.terminating", pod="p2", data={"node": "n1", "cause": "replicaset scale-down"})
    s.to(430, 1, "running", "failed", "ws-1", "pod deleted")
    s.end(900)
    hits = metrics.recovery_latencies(s.rows())
    deletion = seq + 1
    assert [(h.task, h.fault_seq, h.fault_type, h.fault_t, h.effect_seq, h.clock_t, h.latency_s)
            for h in hits] == [(1, seq, "hpa-scale-down", 50.0, deletion, 400.0, 30.0)]
    tl = timelines.build(s.rows())
    [link] = tl.tasks[1].faults
    assert link.fault["kind"] == "pod.terminating" and link.cause["seq"] == seq
    assert tl.tasks[2].faults == []  # a deletion that names no fault is not one
    # A witness cites the deletion and the fault behind it.
    assert {seq, link.fault["seq"]} <= set(witness.explain(tl, tl.tasks[1], link.fault["seq"] + 5))


def test_a_db_write_failure_hits_each_task_at_its_first_failed_write_in_the_window() -> None:
    # A db-write-failure has no target: a write of a task that failed while it was in force
    # (from the fault row to its fault.end) is its effect on that task, once per window.
    s = Story()
    s.add(0, "pod.added", pod="p1", data={"node": "n1"})
    _holding(s, 1, "p1")
    _holding(s, 2, "p1")
    _holding(s, 3, "p1")
    window = {"type": "db-write-failure", "target": None, "rate": 1.0, "duration_s": 60.0}
    seq = s.add(50, "fault", data=window)
    first = s.add(55, "store.write_failed", task=1, pod="p1", reason="save failed")
    s.add(58, "store.write_failed", task=1, pod="p1", reason="save failed")
    s.add(110, "fault.end", data=window)
    s.add(120, "store.write_failed", task=3, pod="p1", reason="save failed")  # after it
    s.to(130, 1, "running", "failed", "ws-1", "gave up")
    s.end(900)
    hits = metrics.recovery_latencies(s.rows())
    # Task 2 on the same pod wrote nothing: not hit, nor is task 3 after the window.
    assert [(h.task, h.fault_seq, h.fault_type, h.effect_seq, h.clock_t, h.latency_s)
            for h in hits] == [(1, seq, "db-write-failure", first, 55.0, 75.0)]


def test_a_db_write_failure_announced_without_an_end_lasts_its_duration_s() -> None:
    s = Story()
    _holding(s, 1, "p1")
    seq = s.add(50, "fault", data={"type": "db-write-failure", "duration_s": 30})
    s.add(81, "store.write_failed", task=1, reason="save failed")
    s.end(900)
    assert metrics.recovery_latencies(s.rows()) == []
    s2 = Story()
    _holding(s2, 1, "p1")
    seq = s2.add(50, "fault", data={"type": "db-write-failure"})  # no duration: open
    s2.add(81, "store.write_failed", task=1, reason="save failed")
    s2.end(900)
    assert [h.fault_seq for h in metrics.recovery_latencies(s2.rows())] == [seq]


def test_overlapping_db_windows_credit_the_one_whose_rate_is_in_force() -> None:
    # Found by review: a mild window opened inside a total outage took the outage's failures
    # (the world fails writes at the highest rate in force, sim.faults.worst_window).
    s = Story()
    _holding(s, 1, "p1")
    outage = s.add(100, "fault", data={"type": "db-write-failure", "rate": 1.0, "duration_s": 600})
    s.add(200, "fault", data={"type": "db-write-failure", "rate": 0.001, "duration_s": 300})
    s.add(250, "store.write_failed", task=1, reason="save failed")
    s.end(900)
    assert [h.fault_seq for h in metrics.recovery_latencies(s.rows())] == [outage]


@pytest.mark.parametrize("claimed_by", ["a1", "a2"])
def test_a_claim_whose_write_failed_recovers_when_the_run_begins(claimed_by: str) -> None:
    # The reference writes an apply's claim before it answers it: a claim that fails in a
    # db-write-failure is retried, and the task, already running, moves on when its run
    # begins (its exec.invoke), not when the apply ends minutes later. Only the agent the
    # stint was sent to begins it: another agent's invoke is another run's.
    s = Story()
    _confirmed_then(s, 1, "ws-1", 0)
    window = {"type": "db-write-failure", "rate": 0.5, "duration_s": 60.0}
    s.add(100, "fault", data=window)
    s.to(110, 1, "apply_pending", "running", "ws-1", "dispatch apply")
    failed = s.add(110, "store.write_failed", task=1, reason="injected", data={"op": "claim"})
    s.add(110, "dispatch", task=1, agent="a1", pod="p1", data={"action": "apply", "fence": 2})
    began = s.add(110.3, "exec.invoke", task=1, agent=claimed_by, pod="p1",
                  data={"action": "apply", "fence": 2})
    s.add(160, "fault.end", data=window)
    s.add(230, "exec.ok", task=1, agent=claimed_by, pod="p1", data={"action": "apply", "fence": 2})
    ended = s.to(230, 1, "running", "applied", "ws-1", "apply finished")
    s.end(900)
    (hit,) = metrics.recovery_latencies(s.rows())
    if claimed_by == "a1":
        _assert_record(hit, effect_seq=failed, status_at_fault="running", clock_t=110.0,
                       progress_seq=began, progress_to="began", latency_s=0.3, outcome="recovered")
    else:
        _assert_record(hit, effect_seq=failed, progress_seq=ended, progress_to="applied",
                       latency_s=120.0, outcome="recovered")


def _confirmed_then(s: Story, task: int, ws: str, t: float) -> None:
    s.created(t, task, ws)
    s.to(t + 1, task, "pending", "running", ws, "dispatched")
    s.to(t + 10, task, "running", "apply_pending", ws, "plan has changes")
    s.confirm(t + 20, task, ws)


def test_a_user_cancel_before_the_apply_censors_the_wait_a_scheduler_that_never_applies_does_not() -> None:
    # Found by review: a confirmed task its user cancelled before any apply counted as an
    # infinitely late confirm-to-apply, so a `confirm_to_apply_p99_s` gate failed on the
    # user's cancel. The cancel ended the wait, not the scheduler: the wait is censored.
    s = Story()
    _confirmed_then(s, 1, "ws-1", 0)
    s.to(50, 1, "apply_pending", "cancelled", "ws-1", "cancelled by user")
    s.add(50, "task.cancel", task=1, workspace="ws-1", data={"user": "u"})
    _confirmed_then(s, 2, "ws-2", 0)  # applied 10 s after its confirm
    s.to(30, 2, "apply_pending", "running", "ws-2", "apply dispatched", agent="a1")
    s.add(30, "exec.invoke", task=2, workspace="ws-2", agent="a1", data={"action": "apply"})
    s.end(1000)
    m = metrics.measure(s.rows())
    cancelled, applied = m.confirm_to_apply
    _assert_record(cancelled, task=1, confirm_t=20.0, apply_seq=None, apply_t=NAN,
                   latency_s=NAN, started=False, cancelled=True)
    _assert_record(applied, task=2, latency_s=10.0, started=True, cancelled=False)
    assert m.confirm_to_apply_summary().to_dict() == {
        "n": 1, "missing": 0, "p50": 10.0, "p95": 10.0, "p99": 10.0, "max": 10.0}
    from unstuck.results import metric_records  # the table the report and the gate read
    assert [r["outcome"] for r in metric_records(m) if r["metric"] == "confirm_to_apply"] == [
        "cancelled", "started"]

    # A task the scheduler never applied and that stayed confirmed to the end, a cancel
    # asked for after an apply started, and a scheduler's own failure all still count.
    s = Story()
    _confirmed_then(s, 1, "ws-1", 0)
    _confirmed_then(s, 2, "ws-2", 0)
    s.to(30, 2, "apply_pending", "running", "ws-2", "apply dispatched", agent="a1")
    s.add(30, "exec.invoke", task=2, workspace="ws-2", agent="a1", data={"action": "apply"})
    s.to(40, 2, "running", "cancelled", "ws-2", "cancelled by user")
    s.add(40, "task.cancel", task=2, workspace="ws-2", data={"user": "u"})
    _confirmed_then(s, 3, "ws-3", 0)
    s.to(60, 3, "apply_pending", "failed", "ws-3", "no agent")
    s.end(1000)
    m = metrics.measure(s.rows())
    assert [(c.task, c.started, c.cancelled) for c in m.confirm_to_apply] == [
        (1, False, False), (2, True, False), (3, False, False)]
    assert (m.confirm_to_apply_summary().n, m.confirm_to_apply_summary().missing) == (1, 2)


def test_a_users_cancel_censors_a_recovery_a_schedulers_own_end_does_not() -> None:
    # Found by review: a user's cancel counted as forward progress, so a task stuck by a
    # fault that its user cancelled an hour later read as recovered in 3600 s, and a hit the
    # scheduler never recovered escaped `unrecovered`. The cancel ended the wait, not the
    # scheduler: the hit is censored (outcome `cancelled`), as confirm-to-apply censors it.
    s = Story()
    _holding(s, 1, "p1")
    _holding(s, 2, "p2")
    _holding(s, 3, "p3")
    for pod in ("p1", "p2", "p3"):
        s.add(50, "fault", pod=pod, data={"type": "pod-kill"})
    s.to(3650, 1, "running", "cancelled", "ws-1", "cancelled by user")
    s.add(3650, "task.cancel", task=1, workspace="ws-1", data={"user": "u"})
    s.to(80, 2, "running", "failed", "ws-2", "pod lost")  # the scheduler's own end: progress
    s.to(90, 3, "running", "pending", "ws-3", "requeued")
    s.to(95, 3, "pending", "running", "ws-3", "dispatched")  # recovered, then cancelled
    s.to(200, 3, "running", "cancelled", "ws-3", "cancelled by user")
    s.add(200, "task.cancel", task=3, workspace="ws-3", data={"user": "u"})
    s.end(4000)
    m = metrics.measure(s.rows())
    by_task = {h.task: h for h in m.recovery}
    _assert_record(by_task[1], clock_t=50.0, progress_seq=None, progress_t=NAN,
                   progress_to=None, latency_s=NAN, outcome="cancelled")
    _assert_record(by_task[2], progress_to="failed", latency_s=30.0, outcome="recovered")
    _assert_record(by_task[3], progress_to="running", latency_s=45.0, outcome="recovered")
    assert m.unrecovered == 0
    assert m.recovery_summary().to_dict() == {
        "n": 2, "missing": 0, "p50": 37.5, "p95": 44.25, "p99": 44.85, "max": 45.0}
    from unstuck.results import metric_records  # the table the report and the gate read
    assert [r["outcome"] for r in metric_records(m) if r["metric"] == "recovery"] == [
        "cancelled", "recovered", "recovered"]
    import pandas as pd

    from unstuck.report import tables
    table = pd.DataFrame([{**r, "scenario": "s", "scheduler": "reference"}
                          for r in metric_records(m)])
    (row,) = tables.recovery(table).to_dict("records")  # what the report and the gate count
    assert (row["hits"], row["recovered"], row["never"], row["max"]) == (2, 2, 0, 45.0)
