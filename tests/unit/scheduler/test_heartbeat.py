"""The heartbeat's counters, one rule for the simulated, scripted and live agents."""

from __future__ import annotations

import pytest

from scheduler.agent.runs import RunMessage
from scheduler.heartbeat import load
from scheduler.model import TaskType as T


@pytest.mark.parametrize("types, expected", [
    ((), (0, False)),
    ((T.PLAN, T.PLAN), (2, False)),
    ((T.PLAN_AND_APPLY,), (0, True)),  # in either phase
    ((T.DRIFT_CHECK, T.DRIFT_CHECK), (0, False)),  # counts toward neither
    ((T.PLAN, T.PLAN_AND_APPLY, T.DRIFT_CHECK, None), (1, True)),
])
def test_what_a_heartbeat_reports(types, expected):
    assert load(types) == expected


@pytest.mark.parametrize("message, expected", [
    ({"action": "plan", "task_type": "plan_and_apply"}, T.PLAN_AND_APPLY),
    ({"action": "plan", "task_type": "drift_check"}, T.DRIFT_CHECK),
    ({"action": "apply"}, T.PLAN_AND_APPLY),  # an older scheduler that sends no type
    ({"action": "plan", "task_type": "no-such-type"}, T.PLAN),
])
def test_the_live_agent_reads_the_type_from_the_run_message(message, expected):
    assert RunMessage.parse({"task_id": 1, "workspace_id": "ws-1", **message}).task_type is expected
