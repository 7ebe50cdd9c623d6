"""Every failure path of the spec (F1–F11) under `seed` ends stuck where the spec says;
the same script under `reference` ends applied, or explicitly failed or discarded with the
workspace unlocked. See tests/quality/paths.py for the scripts."""

from __future__ import annotations

import paths
import pytest

from scheduler.history import Kind
from scheduler.model import TaskStatus
from unstuck.checker import timelines

UNLOCKED_ENDS = {TaskStatus.APPLIED, TaskStatus.FAILED, TaskStatus.CANCELLED}


def reasons(s, kind: Kind, task: int = 1) -> list[str]:
    return [e.reason for e in s.history.events if e.kind is kind and e.task == task]


def applies(s, task: int = 1) -> int:
    return sum(1 for e in s.history.events
               if e.kind is Kind.EXEC_INVOKE and e.task == task and e.data.get("action") == "apply")


# (script, seed's final status, seed's final stage, the mechanism seen in the history)
SEED_STUCK = [
    ("incident_601", "apply_pending", "apply_pending", "no connected agents"),
    ("f1_no_pods", "apply_pending", "apply_pending", "no free slot"),
    ("f1_no_available_agent", "apply_pending", "apply_pending", "no available agent in pool"),
    ("f1_every_pod_busy", "apply_pending", "apply_pending", "no free slot"),
    ("f2_agent_gap", "apply_pending", "apply_pending", "no connected agents"),
    ("f3_send_failure", "apply_pending", "", "send failed: write: broken pipe"),
    ("f3_rollback_save_fails", "running", "applying", "send failed: write: broken pipe"),
    ("f3_presend_save_fails", "apply_pending", "apply_pending", "DB save failed"),
    ("f3_presend_save_fails_once", "running", "applying", "DB save failed"),
    ("f5_restart", "apply_pending", "apply_pending", "no connected agents"),
    ("f9_expiry_and_freeze", "apply_pending", "apply_pending", "no free slot"),
]


@pytest.mark.parametrize("name,status,stage,mechanism", SEED_STUCK, ids=[r[0] for r in SEED_STUCK])
def test_seed_is_stuck_where_the_spec_says(name, status, stage, mechanism):
    s = getattr(paths, name)("seed")
    task = s.task(1)
    assert (task.status.value, task.stage) == (status, stage)
    assert task.apply_confirmed_by == "alice"
    assert s.workspace().is_locked, "the plan's lock is never released: every later task is blocked"
    assert mechanism in reasons(s, Kind.DISPATCH_FAILED)
    # The dead end: a retry was scheduled, and nothing ever dispatched the apply.
    assert reasons(s, Kind.RETRY_SCHEDULED)
    assert applies(s) == 0


@pytest.mark.parametrize("name", [r[0] for r in SEED_STUCK] + [
    "f1_happy_fallback", "f4_doc_variant_reset", "f8_agent_killed_mid_apply", "f10_decoupled_slot",
])
def test_reference_ends_every_path_explicitly(name):
    s = getattr(paths, name)("reference")
    task = s.task(1)
    assert task.status in UNLOCKED_ENDS, (task.status, task.error_message)
    assert not s.workspace().is_locked
    assert applies(s) <= 1


@pytest.mark.parametrize("name", ["incident_601", "f1_no_pods", "f1_no_available_agent",
                                  "f1_every_pod_busy", "f2_agent_gap", "f3_send_failure",
                                  "f3_rollback_save_fails", "f3_presend_save_fails",
                                  "f3_presend_save_fails_once", "f5_restart",
                                  "f1_happy_fallback", "f4_doc_variant_reset"])
def test_reference_applies_once_capacity_exists(name):
    s = getattr(paths, name)("reference")
    assert s.task(1).status is TaskStatus.APPLIED
    assert applies(s) == 1


def test_f1_happy_fallback_seed_applies_on_the_new_pod():
    # 4d: a free slot and an available agent exist at confirm time; the apply restores the
    # plan from the DB on another pod. The seed survives this one.
    s = paths.f1_happy_fallback("seed")
    assert s.task(1).status is TaskStatus.APPLIED
    assert not s.workspace().is_locked


def test_f4_doc_variant_reset_waits_behind_its_own_lock():
    s = paths.f4_doc_variant_reset("seed")
    task = s.task(1)
    assert (task.status, task.stage) == (TaskStatus.PENDING, "pending")
    assert s.workspace().is_locked and s.workspace().lock_task_id == 1
    assert "reserved pod deleted: reset to pending (doc variant)" in reasons(s, Kind.TASK_TRANSITION)
    assert applies(s) == 0


def test_f6_confirm_without_user_is_accepted_and_never_applied_by_the_seed():
    s = paths.f6_confirm_without_user("seed")
    confirm = [o for _, e, o in s.outcomes if type(e).__name__ == "ConfirmApply"][0]
    assert (confirm.ok, confirm.status, confirm.message) == (True, 200, "Apply queued")
    task = s.task(1)
    assert task.status is TaskStatus.APPLY_PENDING and task.apply_confirmed_by is None
    # ExecuteConfirmedApply errored four times (0, 1, 2, 4 s) and gave up.
    fails = [e.t for e in s.history.events if e.kind is Kind.DISPATCH_FAILED and e.t >= 210]
    assert fails == [210.0, 211.0, 213.0, 217.0]
    assert s.workspace().is_locked


def test_f6_reference_refuses_a_confirm_without_identity_and_changes_nothing():
    s = paths.planned("reference")
    before = s.task(1)
    s.confirm(210, 1, user=None)
    s.run(300)
    out = [o for _, e, o in s.outcomes if type(e).__name__ == "ConfirmApply"][0]
    assert (out.ok, out.status) == (False, 401)
    assert s.task(1) == before
    s.confirm(310, 1)  # the same user, now authenticated
    s.run(600)
    assert s.task(1).status is TaskStatus.APPLIED


def test_f7_double_click_dispatches_two_applies_in_the_seed():
    s = paths.f7_double_confirm("seed")
    assert applies(s) == 2
    dispatches = [e for e in s.history.events if e.kind is Kind.DISPATCH and e.data["action"] == "apply"]
    # Both read apply_pending before either saved `running` (dispatch latency 0.2 s).
    assert [e.t for e in dispatches] == pytest.approx([210.2, 210.3])


def test_f7_reference_refuses_the_second_click():
    s = paths.f7_double_confirm("reference")
    assert applies(s) == 1
    outs = [o for _, e, o in s.outcomes if type(e).__name__ == "ConfirmApply"]
    assert [o.status for o in outs] == [200, 409]


def test_f7_stale_agent_state_sends_a_fourth_plan_to_a_full_agent_in_the_seed():
    s = paths.f7_stale_availability("seed")
    dispatched = [e.agent for e in s.history.events if e.kind is Kind.DISPATCH]
    assert dispatched == ["agent-pool-1-1"] * 4  # plan_limit is 3
    assert [x.run.task_id for x in s.agents["agent-pool-1-1"].runs.values()] == [1, 2, 3, 4]


def test_f7_lost_update_resurrects_a_cancelled_task_in_the_seed():
    s = paths.f7_lost_update("seed")
    statuses = [(e.from_status, e.to_status) for e in s.history.events
                if e.kind is Kind.TASK_TRANSITION and e.task == 1]
    assert ("pending", "cancelled") in statuses  # the cancel was written...
    assert s.task(1).status is TaskStatus.SUCCESS  # ...then overwritten by the stale Save
    r = paths.f7_lost_update("reference")
    assert r.task(1).status is TaskStatus.CANCELLED


def test_f8_seed_fails_the_task_and_keeps_the_workspace_wedged():
    s = paths.f8_agent_killed_mid_apply("seed")
    task = s.task(1)
    assert task.status is TaskStatus.FAILED
    assert task.error_message.startswith("Agent agent-pool-1-1 disconnected unexpectedly")
    ws = s.workspace()
    assert ws.is_locked and ws.lock_task_id == 1  # owner is terminal: wedged
    r = paths.f8_agent_killed_mid_apply("reference")
    assert r.task(1).status is TaskStatus.FAILED
    assert "apply outcome unknown" in r.task(1).error_message
    assert not r.workspace().is_locked


def test_f9_reference_discards_the_unconfirmed_plan_after_its_ttl():
    r = paths.f9_expiry_and_freeze("reference")
    task = r.task(1)
    assert (task.status, task.stage) == (TaskStatus.CANCELLED, "discarded")
    assert not r.workspace().is_locked
    s = paths.f9_expiry_and_freeze("seed")
    assert "reservation expired (24 h)" in reasons(s, Kind.SLOT_RELEASED)
    assert any(e.kind is Kind.POD_DELETE and e.data.get("cause") == "freeze window: delete idle pod"
               for e in s.history.events)


def test_f10_seed_runs_the_apply_on_a_pod_its_accounting_calls_idle():
    s = paths.f10_decoupled_slot("seed")
    slot_pod = [e.pod for e in s.history.events if e.kind is Kind.SLOT_ASSIGNED and e.task == 1][-1]
    exec_pod = s.pod_of_task(1)
    assert slot_pod != exec_pod
    deleted = [e.pod for e in s.history.events
               if e.kind is Kind.POD_DELETE and e.data.get("cause") == "freeze window: delete idle pod"]
    assert exec_pod in deleted  # the pod really running the apply was "idle"
    assert s.task(1).status is TaskStatus.FAILED and s.workspace().is_locked  # F8 follows


def test_f5_the_seed_says_its_slot_memory_died_with_the_process():
    # Found by review: nothing recorded the loss, so the checker took the new process to hold
    # the reservation still, and a later kill of that pod "hit" the task a second time.
    s = paths.f5_restart("seed")
    lost = [(e.t, e.pod, e.data["was"]) for e in s.history.events
            if e.kind is Kind.SLOT_RELEASED and e.task == 1
            and e.reason == "slot memory lost with the scheduler process"]
    assert len(lost) == 1 and lost[0][0] == 200.0 and lost[0][2] == "reserved", lost
    held = timelines.build(s.history.rows()).tasks[1].slots
    assert lost[0][1] not in {pod for pod, _ in held}


def test_f3_a_failed_presend_save_then_a_saved_retry_count_leaves_the_task_running():
    # Found by review: the model put the row back to apply_pending before saving the retry
    # count, which the Go code does not do (pushTaskToAgent's save-failure exit only adds
    # one to retry_count and saves the same object), so this stuck-in-running path was
    # hidden behind a dead-end retry.
    s = paths.f3_presend_save_fails_once("seed")
    task = s.task(1)
    assert (task.status, task.stage, task.retry_count) == (TaskStatus.RUNNING, "applying", 1)
    assert task.agent_id == "agent-pool-1-1" and task.started_at == 213.0
    assert not any(e.kind is Kind.DISPATCH and e.task == 1 and e.t > 200 for e in s.history.events)
    assert applies(s) == 0  # the agent never got it


def test_f11_a_reservation_starves_another_workspaces_plan_and_apply_in_the_seed():
    s = paths.f11_cross_workspace_starvation("seed")
    assert s.task(1).status is TaskStatus.APPLY_PENDING
    task = s.task(2)
    assert (task.status, task.stage) == (TaskStatus.PENDING, "pending")
    # The only pod holds task 1's reserved plan_and_apply slot: "no free slot" every retry...
    assert set(reasons(s, Kind.DISPATCH_FAILED, task=2)) == {"no free slot"}
    reserved = [e for e in s.history.events if e.kind is Kind.SLOT_RESERVED and e.task == 1]
    assert reserved and s.scheduler.policy.mem.slots.find_by_task(1) is not None
    # ...and the autoscaler keeps the count: D's required = 0 running pods + 1 is not > 1,
    # and E1 (reserved > 0) keeps current. No pod is ever created for task 2.
    assert len(s.pods) == 1
    assert not any(e.kind is Kind.POD_CREATE and e.t > 150 for e in s.history.events)
    r = paths.f11_cross_workspace_starvation("reference")
    assert r.task(2).status is TaskStatus.APPLY_PENDING  # planned on a pod created for it
