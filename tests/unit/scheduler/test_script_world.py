"""The scripted world's agents behave as the agents of §2.2 where a script depends on it."""

from __future__ import annotations

from scheduler.history import Kind
from scheduler.model import TaskStatus
from scheduler.testing import Script


def test_an_agent_whose_connect_is_refused_retries_with_backoff():
    # The replacement pod's agent connects at 230, while the store fails one write: the
    # registration is refused (503). A real agent reconnects (2 s, doubling to 60 s); the
    # scripted one used to give up for good, so the reference waited for the pod to be
    # replaced as unhealthy and the confirmed apply looked stuck.
    s = Script("reference")
    s.create(5)
    s.run(150)
    s.kill_pod(200, s.pod_of_task(1))
    s.confirm(215, 1)
    s.fail_writes(229, 1)
    s.run(1000)
    connected = [e.t for e in s.history.events if e.kind is Kind.AGENT_CONNECTED and e.t > 200]
    assert connected == [232.0]
    dispatched = [e.t for e in s.history.events if e.kind is Kind.DISPATCH and e.task == 1 and e.t > 200]
    assert dispatched == [232.0]
    assert s.task(1).status is TaskStatus.APPLIED
