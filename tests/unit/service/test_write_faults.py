"""The db-write-failure fault, live (scheduler/service/write_faults.py): a harness asks the
service to fail its own store writes, only when it was started with --fault-injection. The
engine, its API and its SQLite store are real; the scheduler core writes through them."""

from __future__ import annotations

import asyncio

import pytest

from scheduler import events as ev
from scheduler.history import HistoryEvent, Kind
from scheduler.model import TaskType
from scheduler.service.config import ServiceConfig
from scheduler.service.engine import Engine
from tests.unit.service.live import InProcessService, post_to, scrape, wait_for
from unstuck.checker import judge

HALF = {"type": "db-write-failure", "rate": 0.5}
ALL = {"type": "db-write-failure", "rate": 1.0}


def engine_with(tmp_path, injection: bool) -> Engine:
    engine = Engine(ServiceConfig(data_dir=tmp_path / "run", fault_injection=injection))
    engine.handle(ev.Restart())
    return engine


def create(engine: Engine) -> ev.Outcome:
    return engine.handle(ev.TaskCreated("ws-1", TaskType.PLAN_AND_APPLY, "alice"))


@pytest.mark.parametrize("injection, body, status, message", [
    (False, ALL, 403, "a db-write-failure with a rate asks this service to fail its own store "
                      "writes, which it does only when started with --fault-injection"),
    (True, {"type": "pod-kill", "pod": "p", "rate": 0.5}, 422,
     "body.rate: only a db-write-failure fault takes a rate"),
    (True, {"type": "db-write-failure", "duration_s": 5}, 422,
     "body.duration_s: the window of an injected write failure; send body.rate with it"),
    (True, {"type": "db-write-failure", "rate": 1.5}, 400, "body.rate"),
    (True, {"type": "db-write-failure", "rate": 0}, 400, "body.rate"),
])
def test_an_injection_the_service_was_not_started_for_or_cannot_do_is_refused(
        tmp_path, injection, body, status, message):
    engine = engine_with(tmp_path, injection)
    (r,) = post_to(engine, ("/faults", body))
    assert r.status_code == status and message in r.json()["message"], r.text
    assert not [row for row in engine.history.rows if row["kind"] == "fault"]  # nothing recorded
    assert create(engine).ok  # nor injected
    engine.history.close()


def test_a_write_failure_window_fails_the_cores_writes_until_it_ends(tmp_path):
    engine = engine_with(tmp_path, injection=True)
    (r,) = post_to(engine, ("/faults", ALL))
    assert r.status_code == 201, r.text
    refused = create(engine)
    assert not refused.ok and refused.status >= 500  # the insert failed: nothing was created
    assert engine.store.list_tasks() == []
    (ended,) = post_to(engine, ("/faults/end", ALL))
    assert ended.status_code == 201 and ended.json()["ended"] == r.json()["seq"]
    assert create(engine).ok
    (fault,) = [row for row in engine.history.rows if row["kind"] == "fault"]
    (end,) = [row for row in engine.history.rows if row["kind"] == "fault.end"]
    assert fault["data"] == end["data"] == {"type": "db-write-failure", "target": None, "rate": 1.0}
    engine.history.close()


def test_overlapping_windows_fail_at_the_worst_rate_in_force(tmp_path):
    engine = engine_with(tmp_path, injection=True)
    post_to(engine, ("/faults", HALF), ("/faults", ALL))
    assert engine.store.failures.rate == 1.0
    post_to(engine, ("/faults/end", ALL))
    assert engine.store.failures.rate == 0.5  # the other window still holds
    post_to(engine, ("/faults/end", HALF))
    assert engine.store.failures.rate == 0.0
    engine.history.close()


def test_a_restart_ends_the_windows_the_last_process_held(tmp_path):
    # The injection lived in the process; the history must not say it still holds.
    first = engine_with(tmp_path, injection=True)
    (r,) = post_to(first, ("/faults", ALL))
    asyncio.run(first.stop())
    again = engine_with(tmp_path, injection=True)

    async def boot() -> None:
        await again.start()
        await again.stop()

    asyncio.run(boot())
    (end,) = [row for row in again.history.rows if row["kind"] == "fault.end"]
    assert end["reason"].startswith("service restarted") and end["data"]["rate"] == 1.0
    assert again.store.failures.rate == 0.0 and again.effects.in_force.get(r.json()["seq"]) is None


def test_a_window_with_a_duration_ends_by_itself(tmp_path):
    svc = InProcessService(tmp_path, fault_injection=True)
    try:
        r = svc.http.post("/faults", json={**ALL, "duration_s": 0.5}, headers=svc.auth())
        assert r.status_code == 201, r.text
        assert svc.engine.store.failures.rate == 1.0
        refused = svc.http.post("/tasks", json={"workspace_id": "ws-1"}, headers=svc.auth())
        assert refused.status_code >= 500, refused.text
        wait_for(lambda: [row for row in svc.engine.history.rows if row["kind"] == "fault.end"], 5,
                 what="the window's end")
        assert svc.engine.store.failures.rate == 0.0
        assert svc.http.post("/tasks", json={"workspace_id": "ws-1"}, headers=svc.auth()).status_code == 201
        assert [t.id for t in svc.engine.store.list_tasks()] == [1]  # the refused one left nothing
    finally:
        svc.stop()


def test_the_services_recovery_histogram_counts_a_window_once_per_task_as_the_checker_does(tmp_path):
    # Task 1 is planning when its writes fail; its plan's end is its progress. Task 2 was
    # dispatched for its apply and its claim failed; its run beginning (the invoke of the agent
    # it was sent to) is its progress. The service's histogram, read live by dashboards,
    # must agree with the checker's records afterwards: count and latencies.
    engine = engine_with(tmp_path, injection=True)
    t = engine.clock.now

    def append(kind: Kind, task: int, **fields) -> None:
        engine.history.append(HistoryEvent(t(), kind, task=task, workspace=f"ws-{task}", **fields))

    for task in (1, 2):
        append(Kind.TASK_CREATED, task, to_status="pending", data={"type": "plan_and_apply"})
    append(Kind.TASK_TRANSITION, 1, from_status="pending", to_status="running", agent="a-1", pod="pod-1",
           data={"stage": "planning"})
    append(Kind.TASK_TRANSITION, 2, from_status="pending", to_status="running", agent="a-2", pod="pod-2",
           data={"stage": "applying"})
    append(Kind.DISPATCH, 2, agent="a-2", pod="pod-2", data={"action": "apply", "fence": 1})
    post_to(engine, ("/faults", ALL))
    for task in (1, 1, 2):  # two failed writes of task 1 in one window: one hit
        append(Kind.STORE_WRITE_FAILED, task, reason="injected write failure (rate 1.0)")
    post_to(engine, ("/faults/end", ALL))
    append(Kind.STORE_WRITE_FAILED, 1, reason="a failure after the window: nobody's")
    append(Kind.EXEC_INVOKE, 2, agent="a-2", pod="pod-2", data={"action": "apply", "fence": 1})
    append(Kind.TASK_TRANSITION, 1, from_status="running", to_status="apply_pending",
           data={"stage": "apply_pending"})
    live = scrape(engine)
    _, metrics = judge(engine.history.rows, bound_s=60, drain_s=60)
    assert sorted((h.task, h.outcome) for h in metrics.recovery) == [(1, "recovered"), (2, "recovered")]
    assert live["unstuck_recovery_seconds_count"] == 2
    assert live["unstuck_recovery_seconds_sum"] == pytest.approx(sum(h.latency_s for h in metrics.recovery))
    engine.history.close()
