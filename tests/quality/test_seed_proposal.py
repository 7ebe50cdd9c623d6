"""Does the incident report's own proposal unstick the task? (issue 2: "whatever the answer
is, the tests must show it"). It does not: both proposals meet the workspace lock the plan
took, because GetNextExecutableTask returns nothing for a locked workspace and never
returns apply_pending."""

from __future__ import annotations

import paths

from scheduler.history import Kind
from scheduler.model import TaskStatus
from scheduler.testing import Script


def test_incident_601_proposal_resets_the_task_into_a_pending_state_it_cannot_leave():
    s = paths.incident_601("seed-proposal")
    task = s.task(1)
    # Proposal 1 fired on the reservation miss: reset to pending with a retry count...
    assert (task.status, task.stage, task.retry_count) == (TaskStatus.PENDING, "pending", 1)
    assert task.error_message == "Pod deleted, resetting to pending (retry 1/3)"
    # ...but the workspace is still locked by the task itself, so GetNext returns nothing:
    ws = s.workspace()
    assert ws.is_locked and ws.lock_task_id == 1
    # Proposal 2's monitor pokes the workspace every 10 s, for ever, to no effect.
    assert not any(e.kind is Kind.DISPATCH and e.t > 200 for e in s.history.events)
    # And the 3-try limit never triggers: no further reservation miss can happen.
    assert task.retry_count < 3


def test_f1_no_pods_proposal_is_stuck_the_same_way():
    s = paths.f1_no_pods("seed-proposal")
    task = s.task(1)
    assert task.status is TaskStatus.PENDING and s.workspace().is_locked


def test_proposal_turns_the_seeds_happy_fallback_into_a_stuck_task():
    # F1-4d: the seed applies on the new pod from the stored plan; the proposal resets to
    # re-plan instead, and its own lock blocks the re-plan.
    assert paths.f1_happy_fallback("seed").task(1).status is TaskStatus.APPLIED
    s = paths.f1_happy_fallback("seed-proposal")
    assert s.task(1).status is TaskStatus.PENDING and s.workspace().is_locked


def test_proposal_monitor_alone_cannot_pick_up_apply_pending():
    # F2 has no reservation miss (the pod is still listed): only proposal 2 could help.
    s = paths.f2_agent_gap("seed-proposal")
    assert s.task(1).status is TaskStatus.APPLY_PENDING
    assert s.workspace().is_locked


def test_the_proposed_monitor_visits_workspaces_in_go_map_order():
    # The report's monitor ranges over a Go map (`for ws := range uniqueWorkspaces`), so the
    # order its goroutines start in, and which workspace wins a contended slot, differs from
    # tick to tick; the model visited them sorted, always favouring the same workspace.
    names = tuple(f"ws-{i}" for i in range(5))
    orders = set()
    for seed in range(8):
        s = Script("seed-proposal", workspaces=names, agent_connect_s=None, seed=seed)
        for i in range(len(names)):
            s.create(1.0, names[i])  # pending for ever: no agent ever connects
        s.run(5.0)
        policy = s.scheduler.policy
        first = policy.monitor_workspaces()
        assert sorted(first) == list(names)
        orders.add(tuple(first))
        orders.add(tuple(policy.monitor_workspaces()))
    assert len(orders) > 4
