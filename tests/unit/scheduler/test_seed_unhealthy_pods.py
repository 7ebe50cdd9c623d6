"""The seed's checkAndRestartUnhealthyPods (seed-system.md §3.5), held to the Go code: it
reads the pods' age from the Kubernetes listing (CreationTimestamp), not from the pod
manager's memory, which a restart rebuilds with every pod "created" at boot."""

from __future__ import annotations

from scheduler.history import Kind
from scheduler.testing import Script

CAUSE = "unhealthy pod: no online agent"


def unhealthy_deletions(s: Script) -> list[tuple[float, str]]:
    return [(e.t, e.pod) for e in s.history.events
            if e.kind is Kind.POD_DELETE and e.data.get("cause") == CAUSE]


def test_an_agentless_pod_is_deleted_two_minutes_after_its_creation():
    s = Script("seed", agent_connect_s=None)  # the pod's agent never connects
    s.run(200)
    [(t, pod)] = unhealthy_deletions(s)[:1]
    assert t == 120.0 and pod.endswith("-1762617600")


def test_a_restart_does_not_restart_the_grace_of_an_old_pod():
    # Found by review: the model measured the 2-minute grace from when its pod map (re)learnt
    # the pod, so after a restart at 60 s the pod created at 0 looked 0 s old and lived
    # until 180 s; the Go code reads k8sPod.CreationTimestamp and deletes it at 120 s.
    s = Script("seed", agent_connect_s=None)
    s.restart_scheduler(60)
    s.run(200)
    assert unhealthy_deletions(s)[0] == (120.0, "iac-agent-pool-1-1762617600")
