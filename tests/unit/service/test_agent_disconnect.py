"""The agent-disconnect fault, live: a harness asks the service (started with
--fault-injection) to drop an agent's C&C session, its long-poll. The engine, its API, the
reference core and a real agent process run; the agent connects again by itself."""

from __future__ import annotations

import httpx
import pytest

from scheduler import events as ev
from scheduler.service.config import ServiceConfig
from scheduler.service.engine import Engine
from tests.unit.service.live import InProcessService, post_to, wait_for


@pytest.mark.parametrize("injection, body, status, message", [
    (False, {"type": "agent-disconnect", "pod": "pod-1"}, 403,
     "an agent-disconnect asks this service to drop the agent's C&C session, which it does only "
     "when started with --fault-injection"),
    (True, {"type": "agent-disconnect"}, 422,
     "body.pod: an agent-disconnect names the pod (or body.agent) whose agent to disconnect"),
    (True, {"type": "agent-disconnect", "pod": "pod-1"}, 409,
     "no agent with pod pod-1 is connected, so none can be disconnected: GET /pools lists"),
    (True, {"type": "agent-disconnect", "agent": "a-9", "rate": 0.5}, 422,
     "body.rate: only a db-write-failure fault takes a rate"),
    (True, {"type": "pod-kill", "pod": "pod-1", "reconnect_after": 5}, 422,
     "body.reconnect_after: only an agent-disconnect takes it"),
    (True, {"type": "agent-disconnect", "pod": "pod-1", "reconnect_after": 0}, 400, "body.reconnect_after"),
])
def test_a_disconnect_the_service_was_not_started_for_or_cannot_make_is_refused(
        tmp_path, injection, body, status, message):
    engine = Engine(ServiceConfig(data_dir=tmp_path / "run", fault_injection=injection))
    engine.handle(ev.Restart())
    (r,) = post_to(engine, ("/faults", body))
    assert r.status_code == status and message in r.json()["message"], r.text
    assert not [row for row in engine.history.rows if row["kind"] == "fault"]  # nothing recorded
    engine.history.close()


def test_a_dropped_agent_is_disconnected_at_once_and_connects_again(tmp_path):
    service = InProcessService(tmp_path, fault_injection=True)
    try:
        service.start_agent()
        wait_for(lambda: service.engine.connected_agents("pod-1", None), 20, what="the agent to connect")
        (agent,) = service.engine.connected_agents("pod-1", None)
        r = httpx.post(f"{service.url}/faults", json={"type": "agent-disconnect", "pod": "pod-1"},
                       headers=service.auth())
        assert r.status_code == 201, r.text
        rows = service.engine.history.rows
        fault = next(row for row in rows if row["kind"] == "fault")
        # The row names the agent it dropped, so the checker's hits find its tasks.
        assert (fault["pod"], fault["agent"], fault["data"]["type"]) == ("pod-1", agent, "agent-disconnect")
        (gone,) = [row for row in rows if row["kind"] == "agent.disconnected"]
        assert gone["seq"] == fault["seq"] + 1 and gone["agent"] == agent  # heard at once
        wait_for(lambda: any(row["kind"] == "agent.connected" and row["seq"] > gone["seq"]
                             for row in service.engine.history.rows), 20, what="the agent to connect again")
        assert service.engine.connected_agents("pod-1", None) == [agent]  # the same agent, its process kept
        assert service.procs[0].poll() is None
    finally:
        service.stop()


def test_a_connection_kept_down_refuses_the_agents_registrations_until_it_is_up(tmp_path):
    service = InProcessService(tmp_path, fault_injection=True)
    try:
        service.start_agent()
        wait_for(lambda: service.engine.connected_agents("pod-1", None), 20, what="the agent to connect")
        r = httpx.post(f"{service.url}/faults", json={"type": "agent-disconnect", "pod": "pod-1",
                                                      "reconnect_after": 1.5},
                       headers=service.auth())
        assert r.status_code == 201, r.text
        (fault,) = [row for row in service.engine.history.rows if row["kind"] == "fault"]
        assert fault["data"]["reconnect_after"] == 1.5
        wait_for(lambda: any(row["kind"] == "agent.connected" and row["seq"] > fault["seq"]
                             for row in service.engine.history.rows), 20, what="the agent to connect again")
        (back,) = [row for row in service.engine.history.rows
                   if row["kind"] == "agent.connected" and row["seq"] > fault["seq"]]
        # Not before (without a hold-off it is back within 0.1 s), and soon after: the agent
        # kept trying, its backoff capped at 1 s.
        assert 1.5 <= back["t"] - fault["t"] < 4
    finally:
        service.stop()
