"""The seed's C&C disconnect writes the agent row offline *and* last_ping_at = now
(handleConnection's deferred cleanup in agent_cc_handler_raw.go; seed-system.md §2.2 names
only the status). The unhealthy-pod check counts online agents by last_ping_at alone (§3.5),
so a just-disconnected agent still counts for 2 minutes after its disconnect."""

from __future__ import annotations

from scheduler.history import Kind
from scheduler.testing import Script


def test_the_unhealthy_pod_check_counts_a_disconnected_agent_from_its_disconnect():
    s = Script("seed")  # agent connected at 30, heartbeats at 40, 50, ..., 100
    s.disconnect_agent(105, "agent-pool-1-1")  # it never comes back; the pool is idle
    s.run(300)
    deleted = [e.t for e in s.history.events
               if e.kind is Kind.POD_DELETE and e.data.get("cause") == "unhealthy pod: no online agent"]
    # 225 (105 + 120), not 220 (the last heartbeat at 100 + 120).
    assert deleted[:1] == [225.0]
