"""The agent's outbox when the seed's agent leaves (`--on-sigterm exit`): `discard` drops what
is not yet sent, refuses what comes after, and a POST already on the wire lands without
breaking the delivery thread."""

from __future__ import annotations

import threading

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
