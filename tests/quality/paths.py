"""The failure paths of shared/specs/seed-system.md §6 and §7 as scripts.

Each function builds a `Script` for a variant, runs it, and returns it. The tests in this
folder assert where each variant ends. Times are seconds; the rows read as the spec's event
sequences. Unless a script says otherwise: one workspace, one bare-pod pool with
min_replicas 1, agents connect 30 s after their pod starts, plans and applies take 60 s.
"""

from __future__ import annotations

import dataclasses

from scheduler import events as ev
from scheduler.model import FreezeWindow, Pool, TaskType
from scheduler.settings import SeedQuirks, Settings
from scheduler.testing import Script
from unstuck import replay

PLAN_ENDS = 90.2  # created at 5; the agent connects at 30; dispatched 30.2 (+0.2 s latency); 60 s plan


def planned(variant: str, **kw) -> Script:
    """A plan_and_apply task that planned with changes: apply_pending, workspace locked."""
    s = Script(variant, **kw)
    s.create(5)
    s.run(150)
    return s


incident_601 = replay.incident_601_script


def f1_no_pods(variant: str) -> Script:
    """F1-4a: the operator sets min_replicas to 0 while the task waits, then the only pod
    dies; nothing will ever create another (the cold-start path only reaches min)."""
    s = planned(variant)
    s.at(190, lambda: s.store.put_pool(Pool("pool-1", min_replicas=0, max_replicas=4)))
    s.kill_pod(200, s.pod_of_task(1))
    s.confirm(300, 1)
    return s.run(4000)


def f1_no_available_agent(variant: str) -> Script:
    """F1-4c: the reserved pod dies; at the confirm the only connected agent belongs to
    another pool, so the generic search finds no available agent in this one."""
    s = Script(variant, workspaces={"ws-a": "pool-1"},
               other_pools=(Pool("pool-2", min_replicas=1, max_replicas=1),))
    s.create(5, "ws-a")
    s.run(150)
    s.kill_pod(200, s.pod_of_task(1))  # pod B comes at once; its agent connects at 230
    s.confirm(215, 1)  # pool-2's agent is connected (since 30), pool-1 has none
    return s.run(4000)


def f1_happy_fallback(variant: str) -> Script:
    """F1-4d: the reserved pod is gone but a free slot and an available agent exist by the
    time the user confirms: the apply runs on the new pod from the stored plan."""
    s = planned(variant)
    s.kill_pod(200, s.pod_of_task(1))
    s.confirm(403, 1)  # off the seed-head monitor's 10 s grid (G5 is its own script)
    return s.run(4000)


def f1_every_pod_busy(variant: str) -> Script:
    """F1-4e: the only pod holds another workspace's reserved plan_and_apply slot, so no pod
    can take this apply; the seed autoscaler keeps the count (rule E1)."""
    s = Script(variant, workspaces=("ws-a", "ws-b"), pool=Pool("pool-1", min_replicas=1, max_replicas=1))
    s.create(5, "ws-a")
    s.run(150)  # task 1 apply_pending on pod A
    s.kill_pod(200, s.pod_of_task(1))  # pod B replaces it (max 1)
    s.create(240, "ws-b")  # task 2 plans on pod B and reserves it
    s.confirm(403, 1)
    return s.run(4000)


def f2_agent_gap(variant: str) -> Script:
    """F2: the pod is still listed, but the confirm lands during a C&C blip: the reserved
    slot is released and the retry is a dead end."""
    s = planned(variant)
    s.disconnect_agent(200, s.agent_of_task(1), reconnect_after=20.0)
    s.confirm(205, 1)
    return s.run(4000)


def f3_send_failure(variant: str) -> Script:
    """F3: SendTaskToAgent fails at the apply dispatch: rolled back to apply_pending with
    stage "", and the retry is a dead end."""
    s = planned(variant)
    s.fail_next_sends(209, 1)
    s.confirm(210, 1)
    return s.run(4000)


def f3_rollback_save_fails(variant: str) -> Script:
    """F3: the send fails and the rollback Save fails too: the task is stuck in `running`
    with an agent that never received it."""
    s = planned(variant)
    s.fail_next_sends(209, 1, then_fail_writes=2)
    s.confirm(210, 1)
    return s.run(4000)


def f3_presend_save_fails(variant: str) -> Script:
    """F3: the Save of `running` before the send fails, and so does the Save of the retry
    count that follows it: the row still says apply_pending (confirmed); dead-end retry."""
    s = planned(variant)
    s.confirm(213, 1)  # off the 10 s heartbeat grid, so the next writes are the dispatch's
    s.fail_writes(213, 2)  # right after the confirm is stored
    return s.run(4000)


def f3_presend_save_fails_once(variant: str) -> Script:
    """F3: the Save of `running` before the send fails, but the Save of the retry count
    right after it goes through. That Save writes the whole in-memory object, which
    already says running, stage applying, agent_id set (pushTaskToAgent changes nothing
    back on this exit): the task is stuck in `running` with an agent that never got it."""
    s = planned(variant)
    s.confirm(213, 1)
    s.fail_writes(213, 1)
    return s.run(4000)


def f4_doc_variant_reset(variant: str) -> Script:
    """F4: the task-601 doc variant resets a reservation miss to pending; the retrigger
    meets the task's own workspace lock, so it waits in pending for ever."""
    settings = Settings(seed=SeedQuirks(doc_variant_reset=True))
    s = planned(variant, settings=settings)
    s.kill_pod(200, s.pod_of_task(1))
    s.confirm(400, 1)
    return s.run(4000)


def f5_restart(variant: str) -> Script:
    """F5: the server restarts while the task waits; reservations vanish and the confirm
    lands before any agent has reconnected: the only retry was an in-memory timer."""
    s = planned(variant)
    s.restart_scheduler(200)
    s.confirm(201, 1)  # agents reconnect 2 s after the restart
    return s.run(4000)


def f6_confirm_without_user(variant: str) -> Script:
    """F6: the confirm request carries no user id. The seed answers 200 and never applies."""
    s = planned(variant)
    s.confirm(210, 1, user=None)
    return s.run(4000)


def f7_double_confirm(variant: str) -> Script:
    """F7 / G5: a double click. Both ExecuteConfirmedApply goroutines read apply_pending
    before either saves `running`: two applies are dispatched."""
    s = planned(variant)
    s.confirm(210, 1)
    s.confirm(210.1, 1)
    return s.run(4000)


def f7_stale_availability(variant: str) -> Script:
    """F7: IsAgentAvailable reads heartbeat-fed state, up to 10 s stale. Four plans created
    a second apart, between two heartbeats of a one-agent pool, each see `plan_running = 0`
    (< plan_limit 3) and are all sent to that agent, which runs them all (it enforces nothing)."""
    s = Script(variant, workspaces=("ws-1", "ws-2", "ws-3", "ws-4"))
    s.run(40)  # the agent is connected; its last heartbeat (t=40) said it runs nothing
    for i, ws in enumerate(("ws-1", "ws-2", "ws-3", "ws-4")):
        s.create(41 + i, workspace=ws, task_type=TaskType.PLAN)
    return s.run(49)


def f7_lost_update(variant: str) -> Script:
    """F7: a cancel written while pushTaskToAgent holds a stale copy is overwritten by its
    whole-row Save: the cancelled task runs anyway."""
    s = Script(variant)
    s.run(40)  # the agent is connected
    s.create(50, task_type=TaskType.PLAN)
    s.at(50.1, ev.CancelTask(1, "alice"))  # inside the 0.2 s dispatch latency
    return s.run(400)


def f8_agent_killed_mid_apply(variant: str) -> Script:
    """F8: the pod running the apply is killed. The task fails; the workspace lock stays."""
    s = planned(variant)
    s.confirm(215, 1)
    s.kill_pod(240, lambda w: w.pod_of_task(1))
    return s.run(4000)


def f9_expiry_and_freeze(variant: str) -> Script:
    """F9: after 24 h in apply_pending the reservation expires; a freeze window then deletes
    the now idle pod and never scales up; the confirm inside the freeze is a dead end."""
    day = 86400.0
    # Freeze every day from 01:00 to 03:00 of the run's clock; t = 0 is midnight.
    pool = Pool("pool-1", min_replicas=1, max_replicas=4, freeze_windows=(FreezeWindow(3600.0, 10800.0),))
    s = planned(variant, pool=pool)
    s.confirm(day + 3600.0 + 600.0, 1)  # 01:10 on day 2
    return s.run(day + 4 * 3600.0)


def f10_decoupled_slot(variant: str) -> Script:
    """F10: two pods. The apply's slot is on one pod while the agent that runs it is on the
    other, so a freeze window deletes the pod that really runs it (accounting says idle)."""
    pool = Pool("pool-1", min_replicas=2, max_replicas=4, freeze_windows=(FreezeWindow(3600.0, 10800.0),))
    s = Script(variant, pool=pool, seed=F10_SEED, apply_s=1800.0)
    s.create(5)
    s.run(150)
    s.confirm(3000.0, 1)  # apply runs 3000..4800; the freeze starts at 3600
    return s.run(8000.0)


F10_SEED = 3  # a seed under which the slot's pod and the agent's pod differ


def g1_reservation_race(variant: str) -> Script:
    """G1: at plan end the HTTP report reserves, then the C&C task_completed releases
    unconditionally: right after the plan the task holds no slot."""
    return planned(variant)


def g2_no_demand_from_zero(variant: str) -> Script:
    """G2: min_replicas 0; the reserved pod dies and the confirmed task is never counted as
    demand, so the HEAD monitor retries for ever against zero pods."""
    return f1_no_pods(variant)


def with_settings(settings: Settings, **changes) -> Settings:
    return dataclasses.replace(settings, **changes)


def g3_rebuild_mid_apply(variant: str) -> Script:
    """G3: an operator changes the pool's config while the apply runs. RebuildIdlePods uses
    a fresh pod manager, so every slot looks idle and the pod running the apply is deleted."""
    s = planned(variant)
    s.confirm(213, 1)  # off the 10 s grid (G5 is its own script); the apply runs 213.2..273.2
    s.at(240, ev.RebuildPods("pool-1"))
    return s.run(4000)


def g3_freeze_deletes_the_plans_pod(variant: str) -> Script:
    """G3: a freeze window (01:00-03:00) starts while the task waits for its confirm. The
    freeze branch deletes idle pods without the pool-wide apply_pending guard; the confirm
    inside the freeze then waits for its end (no pod, no scale-up)."""
    pool = Pool("pool-1", min_replicas=1, max_replicas=4, freeze_windows=(FreezeWindow(3600.0, 10800.0),))
    s = planned(variant, pool=pool)
    s.confirm(3703, 1)
    return s.run(14000)


def g4_restart_loses_the_reservation(variant: str) -> Script:
    """G4: a C&C blip right at the plan end keeps the agent's task_completed from being
    sent (its HTTP report went through), so G1 does not wipe the reservation; the server
    restarts at 200 and the slot memory, reservation included, is gone for good."""
    s = Script(variant)
    s.create(5)
    s.disconnect_agent(PLAN_ENDS + 0.01, lambda w: w.agent_of_task(1), reconnect_after=5.0)
    s.run(150)
    s.restart_scheduler(200)
    return s.run(1000)


def g9_sends_fail_for_ever(variant: str) -> Script:
    """G9: every send of the confirmed apply fails (a broken C&C socket that stays broken)."""
    s = planned(variant)
    s.fail_next_sends(209, 10**6)
    s.confirm(213, 1)
    return s.run(4000)


def g9_never_confirmed(variant: str) -> Script:
    """G9: nobody confirms the plan for two days."""
    return planned(variant).run(2 * 86400.0)


def g11_late_plan_report_after_a_blip(variant: str) -> Script:
    """G11: the agent's C&C connection drops for 10 s during task 1's plan; the user then
    creates task 2. The agent keeps planning and reports task 1's plan over HTTP at the end."""
    s = Script(variant)
    s.create(5)
    s.disconnect_agent(50, lambda w: w.agent_of_task(1), reconnect_after=10.0)
    s.create(55)
    return s.run(1000)


def f11_cross_workspace_starvation(variant: str) -> Script:
    """F11: ws-a's plan waits for its confirm on the only pod, reserving its plan_and_apply
    slot; ws-b's plan_and_apply, created at 200, finds no pod that may take it."""
    s = Script(variant, workspaces=("ws-a", "ws-b"))
    s.create(5, "ws-a")
    s.run(150)
    s.create(200, "ws-b")
    return s.run(4000)
