"""The gaps the project's later fix still leaves (seed-system.md §7): G1-G5, G7-G9 and G11
under `seed-head`, and `reference` not showing them. G6 and G10 need several replicas (PG
NOTIFY, pooled advisory-lock sessions), which the single-replica model does not have."""

from __future__ import annotations

import paths

from scheduler import events as ev
from scheduler.history import Kind
from scheduler.model import TaskStatus
from unstuck import checker


def slot_of(s, task_id: int):
    return s.scheduler.policy.mem.slots.find_by_task(task_id)


def found(s) -> set[str]:
    """The invariants the checker finds violated in the script's history."""
    v = checker.check(s.finish(), bound_s=600.0, drain_s=0.0)
    return {x.invariant for x in v.violations}


def transitions(s, task: int = 1) -> list[tuple[float, str, str, str]]:
    return [(e.t, e.from_status, e.to_status, e.reason) for e in s.history.events
            if e.kind is Kind.TASK_TRANSITION and e.task == task]


def applies(s, task: int = 1) -> list:
    return [e for e in s.history.events
            if e.kind is Kind.EXEC_INVOKE and e.task == task and e.data.get("action") == "apply"]


def test_g1_the_cc_notice_wipes_the_reservation_right_after_the_plan():
    s = paths.g1_reservation_race("seed-head")
    assert s.task(1).status is TaskStatus.APPLY_PENDING
    assert slot_of(s, 1) is None  # gone, although the pod lives
    kinds = [(e.kind, e.reason) for e in s.history.events
             if e.task == 1 and e.t >= paths.PLAN_ENDS
             and e.kind in (Kind.SLOT_RESERVED, Kind.SLOT_RELEASED)]
    # The HTTP report reserves, then the C&C task_completed releases unconditionally.
    assert kinds[:2] == [(Kind.SLOT_RESERVED, "ReserveSlotForApplyPending"),
                         (Kind.SLOT_RELEASED, "ReleaseTaskSlot: C&C task_completed")]
    # The seed's own 5 s reconcile keeps it (its bug is elsewhere).
    seed = paths.g1_reservation_race("seed")
    assert slot_of(seed, 1) is not None
    assert seed.scheduler.policy.mem.slots.slot(slot_of(seed, 1)).status.value == "reserved"


def test_g1_reference_keeps_the_reservation_in_the_store():
    r = paths.g1_reservation_race("reference")
    task = r.task(1)
    assert task.status is TaskStatus.APPLY_PENDING
    assert task.k8s_pod_name and task.slot_id is not None
    assert task.k8s_pod_name in r.pods


def test_g2_no_scale_up_demand_for_a_confirmed_apply_from_zero_pods():
    s = paths.g2_no_demand_from_zero("seed-head")
    task = s.task(1)
    assert (task.status, task.apply_confirmed_by) == (TaskStatus.APPLY_PENDING, "alice")
    assert s.pods == {}
    # The HEAD monitor retries every 10 s for ever: a livelock, not a recovery.
    retries = [e for e in s.history.events
               if e.kind is Kind.DISPATCH_FAILED and e.task == 1 and e.t >= 300]
    assert len(retries) > 300 and retries[-1].t > 3900
    assert {e.reason for e in retries} == {"no free slot"}


def test_g2_reference_counts_the_confirmed_apply_as_demand():
    r = paths.g2_no_demand_from_zero("reference")
    assert r.task(1).status is TaskStatus.APPLIED
    created = [e for e in r.history.events if e.kind is Kind.POD_CREATE and e.t >= 300]
    assert created and created[0].t == 300.0  # at the confirm, from zero pods


def test_g5_double_confirm_dispatches_the_apply_twice():
    s = paths.f7_double_confirm("seed-head")
    applies = [e for e in s.history.events
               if e.kind is Kind.EXEC_INVOKE and e.data.get("action") == "apply"]
    assert len(applies) >= 2
    assert len({e.agent for e in applies}) == 1  # the same agent runs two concurrent applies


def test_g5_monitor_tick_plus_confirm_goroutine_also_double_dispatches():
    # The confirm lands at t=210, the same instant as a 10 s monitor tick: the monitor's
    # ExecuteConfirmedApply and the confirm's goroutine both read apply_pending.
    s = paths.planned("seed-head")
    s.confirm(210, 1)
    s.run(1000)
    dispatches = [e.t for e in s.history.events
                  if e.kind is Kind.DISPATCH and e.task == 1 and e.data["action"] == "apply"]
    assert dispatches == [210.2, 210.2]


def test_g5_reference_dispatches_once():
    r = paths.f7_double_confirm("reference")
    assert sum(1 for e in r.history.events
               if e.kind is Kind.EXEC_INVOKE and e.data.get("action") == "apply") == 1


def test_g3_a_config_rebuild_deletes_the_pod_running_the_apply():
    s = paths.g3_rebuild_mid_apply("seed-head")
    pod = applies(s)[0].pod
    deletes = [(e.t, e.pod, e.data["cause"]) for e in s.history.events if e.kind is Kind.POD_DELETE]
    # DeletePod would refuse a pod with a running slot; the rebuild's fresh pod manager sees
    # every slot idle.
    assert deletes[0] == (240.0, pod, "rebuild (config update)")
    assert not any(e.kind is Kind.EXEC_OK and e.task == 1 and e.data["action"] == "apply"
                   for e in s.history.events)  # the apply never committed
    task = s.task(1)
    assert (task.status, task.stage) == (TaskStatus.FAILED, "applying")
    assert task.error_message == "Agent agent-pool-1-1 disconnected unexpectedly"
    ws = s.workspace()
    assert ws.is_locked and ws.lock_task_id == 1  # G8 follows: wedged behind a failed task
    assert "no_wedged_workspace" in found(s)


def test_g3_a_freeze_window_deletes_the_pod_of_a_plan_awaiting_its_confirm():
    s = paths.g3_freeze_deletes_the_plans_pod("seed-head")
    plan_pod = s.history.events[[e.kind for e in s.history.events].index(Kind.EXEC_INVOKE)].pod
    deletes = [(e.t, e.pod, e.data["cause"]) for e in s.history.events if e.kind is Kind.POD_DELETE]
    assert deletes[0] == (3600.0, plan_pod, "freeze window: delete idle pod")
    assert s.task(1).status is TaskStatus.APPLIED  # in the end, but only after the freeze:
    dispatched = [e.t for e in s.history.events
                  if e.kind is Kind.DISPATCH and e.task == 1 and e.data["action"] == "apply"]
    assert dispatched and dispatched[0] > 10800.0  # confirmed at 3703, two hours earlier
    assert {"apply_pending_bound", "no_wedged_workspace"} <= found(s)


def test_g3_reference_keeps_a_busy_pod_through_rebuild_and_freeze():
    r = paths.g3_rebuild_mid_apply("reference")
    assert r.task(1).status is TaskStatus.APPLIED and len(applies(r)) == 1
    assert applies(r)[0].pod not in {e.pod for e in r.history.events
                                     if e.kind is Kind.POD_DELETE and e.t < 273.0}
    assert not r.workspace().is_locked
    assert found(r) == set()
    f = paths.g3_freeze_deletes_the_plans_pod("reference")
    assert [e.t for e in applies(f)] == [3703.0]
    assert found(f) == set()


def test_g4_a_restart_loses_the_reservation_and_nothing_rebuilds_it():
    s = paths.g4_restart_loses_the_reservation("seed-head")
    rows = [(e.t, e.kind, e.reason, (e.data or {}).get("was")) for e in s.history.events
            if e.task == 1 and e.t >= paths.PLAN_ENDS
            and e.kind in (Kind.SLOT_RESERVED, Kind.SLOT_RELEASED)]
    assert rows == [
        (paths.PLAN_ENDS, Kind.SLOT_RESERVED, "ReserveSlotForApplyPending", None),
        (200.0, Kind.SLOT_RELEASED, "slot memory lost with the scheduler process", "reserved"),
    ]  # the reservation held until the restart, and no row reserves it again
    task = s.task(1)
    assert task.status is TaskStatus.APPLY_PENDING
    assert slot_of(s, 1) is None
    pod = s.pod_of_task(1)
    assert pod in s.pods  # the pod holding the plan lives on...
    assert s.scheduler.policy.mem.slots.pods[pod].fully_idle  # ...and counts as idle


def test_g4_reference_rebuilds_the_reservation_from_the_store():
    r = paths.g4_restart_loses_the_reservation("reference")
    task = r.task(1)
    assert task.status is TaskStatus.APPLY_PENDING and task.k8s_pod_name in r.pods
    rebuilt = [(e.t, e.pod) for e in r.history.events
               if e.kind is Kind.SLOT_RESERVED and e.reason == "reservation rebuilt from the store"]
    assert rebuilt == [(200.0, task.k8s_pod_name)]


def test_g7_a_confirm_without_user_is_never_retried_by_the_head_monitor():
    s = paths.f6_confirm_without_user("seed-head")
    confirm = [o for _, e, o in s.outcomes if isinstance(e, ev.ConfirmApply)][0]
    assert (confirm.ok, confirm.status, confirm.message) == (True, 200, "Apply queued")
    task = s.task(1)
    assert (task.status, task.apply_confirmed_by) == (TaskStatus.APPLY_PENDING, None)
    # ConfirmApply's loop errors four times and gives up; the monitor, which now rescans
    # apply_pending every 10 s, skips it (it filters on apply_confirmed_by) for 3800 s.
    fails = [e.t for e in s.history.events
             if e.kind is Kind.DISPATCH_FAILED and e.task == 1 and e.t >= 210]
    assert fails == [210.0, 211.0, 213.0, 217.0]
    assert not applies(s)
    assert s.workspace().is_locked
    assert {"apply_pending_bound", "no_wedged_workspace"} <= found(s)


def test_g7_reference_refuses_the_confirm_instead_of_dropping_it():
    r = paths.f6_confirm_without_user("reference")
    confirm = [o for _, e, o in r.outcomes if isinstance(e, ev.ConfirmApply)][0]
    assert (confirm.ok, confirm.status) == (False, 401)
    assert r.task(1).status is TaskStatus.APPLY_PENDING  # still the human's to confirm
    assert found(r) == set()


def test_g8_agent_lost_mid_apply_leaves_the_workspace_locked_by_a_failed_task():
    s = paths.f8_agent_killed_mid_apply("seed-head")
    s.create(4010)  # the next change to this workspace
    s.run(4100)
    task = s.task(1)
    assert task.status is TaskStatus.FAILED
    assert task.error_message == "Agent agent-pool-1-1 disconnected unexpectedly"
    ws = s.workspace()
    assert ws.is_locked and ws.lock_task_id == 1
    assert not any(e.kind is Kind.LOCK_RELEASED for e in s.history.events)
    created = [o for _, e, o in s.outcomes if isinstance(e, ev.TaskCreated)]
    assert [o.status for o in created] == [201, 423]
    assert "no_wedged_workspace" in found(s)


def test_g8_reference_unlocks_when_the_apply_is_lost():
    r = paths.f8_agent_killed_mid_apply("reference")
    r.create(4010)
    r.run(4100)
    assert r.task(1).status is TaskStatus.FAILED and not r.task(1).error_message.startswith("Agent")
    created = [o for _, e, o in r.outcomes if isinstance(e, ev.TaskCreated)]
    assert [o.status for o in created] == [201, 201]
    assert found(r) == set()


def test_g9_a_confirmed_apply_whose_sends_always_fail_is_retried_without_bound():
    s = paths.g9_sends_fail_for_ever("seed-head")
    task = s.task(1)
    assert (task.status, task.stage) == (TaskStatus.APPLY_PENDING, "")
    # retry_count grows on each send failure, far past max_retries, which nothing reads.
    assert task.retry_count > 300 and task.max_retries == 3
    assert not any(to in ("failed", "cancelled") for _, _, to, _ in transitions(s))
    assert s.workspace().is_locked
    assert {"apply_pending_bound", "no_wedged_workspace"} <= found(s)
    # Other dispatch failures do not even count: the G2 livelock ends with retry_count 0.
    g2 = paths.g2_no_demand_from_zero("seed-head")
    assert g2.task(1).retry_count == 0 and g2.task(1).status is TaskStatus.APPLY_PENDING


def test_g9_an_unconfirmed_plan_holds_the_workspace_for_ever():
    s = paths.g9_never_confirmed("seed-head")
    assert s.task(1).status is TaskStatus.APPLY_PENDING
    assert [to for _, _, to, _ in transitions(s)][-1] == "apply_pending"
    ws = s.workspace()
    assert ws.is_locked and ws.lock_task_id == 1  # two days on, no TTL released it


def test_g9_reference_bounds_both():
    r = paths.g9_sends_fail_for_ever("reference")
    task = r.task(1)
    assert task.status is TaskStatus.FAILED and task.error_message.startswith("gave up after 5 attempts")
    assert not r.workspace().is_locked
    assert found(r) == set()
    u = paths.g9_never_confirmed("reference")
    assert (u.task(1).status, u.task(1).stage) == (TaskStatus.CANCELLED, "discarded")
    assert not u.workspace().is_locked


def test_g11_a_late_plan_report_revives_a_failed_task_beside_a_running_one():
    s = paths.g11_late_plan_report_after_a_blip("seed-head")
    # The blip fails task 1 (cleanupAgentTasks); its agent plans on and reports over HTTP,
    # which writes failed -> apply_pending unguarded and takes the lock while task 2 runs.
    assert [(t, a, b) for t, a, b, _ in transitions(s)] == [
        (30.2, "pending", "running"), (50.0, "running", "failed"),
        (paths.PLAN_ENDS, "failed", "apply_pending")]
    assert transitions(s, 2)[0][:3] == (60.2, "pending", "running")
    locks = [(e.t, e.task) for e in s.history.events if e.kind is Kind.LOCK_ACQUIRED]
    assert locks == [(paths.PLAN_ENDS, 1), (120.2, 2)]  # task 2's plan end takes it over
    assert s.task(1).status is s.task(2).status is TaskStatus.APPLY_PENDING
    assert "per_workspace_serialization" in found(s)


def test_g11_reference_refuses_a_report_for_a_task_that_moved_on():
    r = paths.g11_late_plan_report_after_a_blip("reference")
    assert r.task(2).status is TaskStatus.PENDING  # waits behind task 1
    assert found(r) == set()
    # A terminal task stays terminal: cancel during the blip, the late report is refused.
    c = paths.Script("reference")
    c.create(5)
    c.disconnect_agent(50, lambda w: w.agent_of_task(1), reconnect_after=10.0)
    c.at(52, ev.CancelTask(1, "alice"))
    c.run(1000)
    assert c.task(1).status is TaskStatus.CANCELLED and not c.workspace().is_locked
    assert [e.task for e in c.history.events if e.kind is Kind.REPORT_REFUSED] == [1]
