"""A live run names the fault a pod deletion is the effect of (scheduler/service/effects.py):
the service's engine and its `POST /faults` / `POST /faults/end` API, with the reference
core behind them, and the checker reading the rows it writes."""

from __future__ import annotations

import asyncio

import pytest

from scheduler import events as ev
from scheduler.history import HistoryEvent, Kind
from scheduler.service.config import ServiceConfig
from scheduler.service.engine import Engine
from tests.unit.service.live import post_to, scrape
from unstuck.checker import judge

HPA = {"type": "hpa-scale-down", "reason": '{"hpa": "unstuck-agent", "minReplicas": 1}'}


@pytest.fixture
def engine(tmp_path):
    e = Engine(ServiceConfig(data_dir=tmp_path / "run"))
    e.handle(ev.Restart())
    for pod, node in (("agent-a", "node-1"), ("agent-b", "node-1"), ("agent-c", "node-2"),
                      ("agent-d", "node-2")):
        e.placed(pod, "pool-1", node)
    yield e
    e.history.close()


def deletions(engine: Engine) -> dict[str, list[int | None]]:
    """pod -> the `data.fault` of each of its deletion rows, in order."""
    out: dict[str, list[int | None]] = {}
    for r in engine.history.rows:
        if r["kind"] in ("pod.terminating", "pod.removed"):
            out.setdefault(r["pod"], []).append(r["data"].get("fault"))
    return out


def test_a_deletion_nobody_made_while_an_hpa_scale_down_is_in_force_is_its_effect(engine):
    engine.from_watch(ev.PodTerminating("agent-a"))  # before any fault: nobody's
    (announced,) = post_to(engine, ("/faults", HPA))
    assert announced.status_code == 201
    seq = announced.json()["seq"]
    engine.from_watch(ev.PodTerminating("agent-b"))
    engine.from_watch(ev.PodRemoved("agent-b"))  # one deletion, one hit: its removal names none
    (ended,) = post_to(engine, ("/faults/end", HPA))
    assert ended.status_code == 201 and ended.json()["ended"] == seq
    engine.from_watch(ev.PodTerminating("agent-c"))  # after the rollback: nobody's again
    assert deletions(engine) == {"agent-a": [None], "agent-b": [seq, None], "agent-c": [None]}
    (end_row,) = [r for r in engine.history.rows if r["kind"] == "fault.end"]
    (fault_row,) = [r for r in engine.history.rows if r["kind"] == "fault"]
    assert end_row["data"] == fault_row["data"] == {"type": "hpa-scale-down", "target": None}
    # Ending it again, or a fault never announced, is refused with what to send.
    again, never = post_to(engine, ("/faults/end", HPA), ("/faults/end", {"type": "pod-kill", "pod": "x"}))
    assert again.status_code == never.status_code == 409
    assert again.json()["message"].startswith("no hpa-scale-down fault with these fields is in force")


def test_the_schedulers_own_deletions_and_a_faults_own_pods_are_not_the_hpas(engine):
    post_to(engine, ("/faults", HPA), ("/faults", {"type": "pod-kill", "pod": "agent-b"}),
         ("/faults", {"type": "node-loss", "pod": "agent-c", "node": "node-2"}))
    engine.history.append(HistoryEvent(engine.clock.now(), Kind.POD_DELETE, pod="agent-a",
                                       data={"cause": "agent unhealthy: replace the pod"}))
    for pod in ("agent-a", "agent-b", "agent-c", "agent-d"):
        engine.from_watch(ev.PodTerminating(pod))
    # The scheduler's own, the pod-kill's pod, and both pods of the lost node: none the HPA's.
    assert deletions(engine) == {"agent-a": [None], "agent-b": [None], "agent-c": [None],
                                 "agent-d": [None]}


def test_alike_faults_end_oldest_first_and_the_newest_in_force_is_named(engine):
    first, second = (r.json()["seq"] for r in post_to(engine, ("/faults", HPA), ("/faults", HPA)))
    engine.from_watch(ev.PodTerminating("agent-a"))
    (ended,) = post_to(engine, ("/faults/end", HPA))
    assert ended.json()["ended"] == first
    engine.from_watch(ev.PodTerminating("agent-b"))
    assert deletions(engine) == {"agent-a": [second], "agent-b": [second]}


def test_a_restarted_service_knows_which_faults_are_in_force(tmp_path):
    config = ServiceConfig(data_dir=tmp_path / "run")
    first = Engine(config)
    first.placed("agent-a", "pool-1", "node-1")
    first.placed("agent-b", "pool-1", "node-1")
    (seq,) = (r.json()["seq"] for r in post_to(first, ("/faults", HPA)))
    first.history.append(HistoryEvent(first.clock.now(), Kind.POD_DELETE, pod="agent-a",
                                      data={"cause": "scale down to 1"}))
    asyncio.run(first.stop())
    again = Engine(config)
    again.pod_places = {"agent-a": {"node": "node-1", "pool": "pool-1"},
                        "agent-b": {"node": "node-1", "pool": "pool-1"}}
    again.from_watch(ev.PodTerminating("agent-a"))
    again.from_watch(ev.PodTerminating("agent-b"))
    assert deletions(again) == {"agent-a": [None], "agent-b": [seq]}
    assert post_to(again, ("/faults/end", HPA))[0].json()["ended"] == seq
    asyncio.run(again.stop())


def test_the_checker_measures_a_waiting_tasks_recovery_from_the_named_deletion(engine):
    # The rows a live HPA experiment leaves: a plan waits for its confirm with its slot
    # reserved on agent-a, the HPA's ReplicaSet deletes agent-a, the user confirms, the apply
    # starts on agent-c. The deletion names the fault, so the checker counts a hit on the
    # waiting task, with its clock at the confirm, as it does for a simulated day.
    t = engine.clock.now
    for row in (HistoryEvent(t(), Kind.TASK_CREATED, task=1, workspace="ws-1", to_status="pending",
                             data={"type": "plan_and_apply"}),
                HistoryEvent(t(), Kind.TASK_TRANSITION, task=1, workspace="ws-1", from_status="pending",
                             to_status="running", agent="a-a", pod="agent-a", data={"stage": "planning"}),
                HistoryEvent(t(), Kind.SLOT_RESERVED, task=1, pod="agent-a", data={"slot": 0}),
                HistoryEvent(t(), Kind.TASK_TRANSITION, task=1, workspace="ws-1", from_status="running",
                             to_status="apply_pending", pod="agent-a", data={"stage": "apply_pending"})):
        engine.history.append(row)
    (seq,) = (r.json()["seq"] for r in post_to(engine, ("/faults", HPA)))
    engine.from_watch(ev.PodTerminating("agent-a"))
    for row in (HistoryEvent(t(), Kind.TASK_CONFIRMED, task=1, workspace="ws-1", data={"user": "alice"}),
                HistoryEvent(t(), Kind.TASK_TRANSITION, task=1, workspace="ws-1", from_status="apply_pending",
                             to_status="running", agent="a-c", pod="agent-c", data={"stage": "applying"})):
        engine.history.append(row)
    _, metrics = judge(engine.history.rows, bound_s=60, drain_s=60)
    (hit,) = metrics.recovery
    assert (hit.fault_seq, hit.fault_type, hit.task, hit.status_at_fault, hit.awaiting_human,
            hit.outcome) == (seq, "hpa-scale-down", 1, "apply_pending", True, "recovered")
    (deleted,) = [r for r in engine.history.rows if r["kind"] == "pod.terminating"]
    assert hit.effect_seq == deleted["seq"]
    # The service's own histogram, which dashboards read live, counts the same hit.
    assert scrape(engine)["unstuck_recovery_seconds_count"] == 1
