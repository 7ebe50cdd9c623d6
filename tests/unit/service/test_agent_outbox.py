"""The agent's outbox: when the seed's agent leaves (`--on-sigterm exit`), `discard` drops what
is not yet sent, refuses what comes after, and a POST already on the wire lands without
breaking the delivery thread; the seed's agent drops a report after 4 tries but not the
execution row it carries; ours retries until delivered."""

from __future__ import annotations

import threading

import pytest

from scheduler import reports
from scheduler.agent import client as client_module
from scheduler.agent.client import Outbox


class _Answer:
    status_code = 200


class _BlockingClient:
    """Holds each POST until released, as a slow scheduler would."""

    def __init__(self) -> None:
        self.on_the_wire = threading.Event()
        self.release = threading.Event()
        self.sent: list[str] = []

    def post(self, path: str, body: dict) -> _Answer:
        self.on_the_wire.set()
        self.release.wait(5)
        self.sent.append(path)
        return _Answer()


def test_a_discard_during_a_post_lets_it_land_and_drops_the_rest(monkeypatch):
    errors: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda a: errors.append(a.exc_value))
    client = _BlockingClient()
    outbox = Outbox(client)  # type: ignore[arg-type]
    outbox.put("/agent/report", {"n": 1}, task_id=7)
    outbox.put("/agent/notice", {"n": 2}, task_id=7)
    assert client.on_the_wire.wait(5)
    outbox.discard()  # SIGTERM while the report is on the wire
    late = outbox.put("/agent/report", {"n": 3}, task_id=8)
    client.release.set()
    outbox.thread.join(5)
    assert not outbox.thread.is_alive()
    assert errors == []  # it popped the emptied queue: IndexError in the delivery thread
    assert client.sent == ["/agent/report"]  # the notice was dropped, the late one refused
    assert not late.done.is_set() and outbox.empty()


class _Down:
    """A scheduler that answers 503 to reports and notices (its store is down) and takes
    execution rows."""

    def __init__(self, up_after: int | None = None) -> None:
        self.tries: list[str] = []
        self.up_after = up_after

    def post(self, path: str, body: dict) -> _Answer:
        self.tries.append(path)
        answer = _Answer()
        up = self.up_after is not None and len(self.tries) > self.up_after
        answer.status_code = 200 if path == "/agent/exec" or up else 503
        return answer


def _deliver(policy: str, client: _Down, monkeypatch) -> tuple[list[float], Outbox]:
    waits: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", waits.append)  # count the waits, not wait
    outbox = Outbox(client, policy=policy)  # type: ignore[arg-type]
    row = {"kind": "ok", "task_id": 7}
    outbox.put("/agent/report", {"report": "apply_finished", "exec": row}, task_id=7)
    outbox.put("/agent/notice", {"task_id": 7}, task_id=7)
    assert outbox.tasks() == ({7} if policy == reports.UNTIL_DELIVERED else set())
    pause = threading.Event()
    for _ in range(1000):  # delivered before the stop: a stopping outbox gives up sooner
        if outbox.empty():
            break
        pause.wait(0.005)
    outbox.stop()
    outbox.thread.join(5)
    return waits, outbox


def test_the_seed_agent_drops_a_report_after_4_tries_and_sends_its_row_alone(monkeypatch):
    client = _Down()
    waits, outbox = _deliver(reports.RETRY_THEN_DROP, client, monkeypatch)
    assert client.tries == ["/agent/report"] * 4 + ["/agent/exec", "/agent/notice"]
    assert waits == [1.0, 2.0, 4.0]  # the seed's HTTP client; the notice gets one try
    assert outbox.empty()


def test_our_agent_retries_a_report_until_the_scheduler_takes_it(monkeypatch):
    client = _Down(up_after=6)
    waits, outbox = _deliver(reports.UNTIL_DELIVERED, client, monkeypatch)
    assert client.tries == ["/agent/report"] * 7 + ["/agent/notice"]
    assert waits == [reports.backoff(n) for n in range(1, 7)]
    assert outbox.empty()


class _Takes:
    """A scheduler that takes every request at once, and keeps what it was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []
        self.lock = threading.Lock()

    def post(self, path: str, body: dict) -> _Answer:
        with self.lock:
            self.sent.append((path, body))
        return _Answer()

    def invokes(self) -> list[dict]:
        with self.lock:
            return [b for p, b in self.sent if p == "/agent/exec" and b["kind"] == "invoke"]


@pytest.mark.parametrize(("scheduler", "runs"), [("seed", 2), ("reference", 1)])
def test_an_agent_drops_a_redelivered_message_and_the_seeds_runs_a_task_sent_again(tmp_path, scheduler, runs):
    # The seed never moves a task's fence, and its agent runs whatever it is sent: two sends
    # of one apply (F7, double dispatch) are two runs. Ours drops a second send of the same
    # (task, fence, action); both drop a message they have already seen (its seq).
    from scheduler.agent.process import Agent, AgentConfig
    from tests import waiting

    agent = Agent(AgentConfig.of(scheduler, url="http://127.0.0.1:9", token="t", pod="pod-1",
                                 agent_id="agent-pod-1", backend_dir=tmp_path / scheduler,
                                 plan_s=2.0))
    taker = _Takes()
    agent.outbox.client = taker  # type: ignore[assignment]
    plan = {"type": "run_task", "task_id": 7, "workspace_id": "ws-1", "action": "plan", "fence": 0,
            "plan_digest": None, "task_type": "plan"}
    try:
        agent._dispatch({"seq": 1, **plan})
        agent._dispatch({"seq": 1, **plan})  # redelivered: the same message
        agent._dispatch({"seq": 2, **plan})  # sent again
        waiting.wait_for(lambda: len(taker.invokes()) >= runs, 5, 0.01, what="the claims")
        threading.Event().wait(0.2)  # time for a claim that should not come
        invokes = taker.invokes()
        assert len(invokes) == runs, (scheduler, invokes)
        assert len({i["run"] for i in invokes}) == runs  # each run's rows are its own
    finally:
        with agent.lock:
            left = list(agent.runs.values())
        agent.outbox.discard()
        for run in left:
            run.abort("test over")
        agent.client.close()
