"""The seed's C&C health monitor (seed-system.md §2.2): each connection is checked every
30 s by a ticker of its own, started when that connection is made and stopped with it
(monitorHealth in agent_cc_handler_raw.go), not by one server-wide tick."""

from __future__ import annotations

from scheduler.history import Kind
from scheduler.testing import Script


def timeouts(s: Script) -> list[float]:
    return [e.t for e in s.history.events
            if e.kind is Kind.AGENT_DISCONNECTED and e.reason == "no heartbeat for 120 s"]


def test_a_silent_connection_is_dropped_on_its_own_thirty_second_tick():
    s = Script("seed", agent_connect_s=45)  # connected at 45: checked at 75, 105, ...
    s.create(61)  # a plan running on the agent keeps the unhealthy-pod check away (§3.5)
    s.pause_agent(95, "agent-pool-1-1")     # last heartbeat at 90
    s.run(400)
    # 225: the first of its ticks more than 120 s after 90 (a server-wide tick: 240).
    assert timeouts(s) == [225.0]


def test_the_ticker_of_a_closed_connection_stops_with_it():
    s = Script("seed", agent_connect_s=45)
    s.disconnect_agent(50, "agent-pool-1-1", reconnect_after=10)  # new connection at 60
    s.create(61)
    s.pause_agent(95, "agent-pool-1-1")
    s.run(400)
    # 240 (60 + 6 x 30), not 225: the first connection's ticker died at 50.
    assert timeouts(s) == [240.0]
