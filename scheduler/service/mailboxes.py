"""The Agents port over HTTP long-poll: one mailbox per registered agent.

Protocol (docs/agent-protocol.md): an agent registers, then keeps one `GET /agent/poll`
open; the service answers it as soon as its mailbox has messages, or empty after
`poll_timeout_s`. `send_run_task` appends to the mailbox and wakes the poll. It raises
`AgentSendError`, as a broken C&C socket would, when the agent is not registered or has not
polled for `stale_after_s` (it is dead, paused, or partitioned: a message left in its
mailbox might be picked up much later, by an agent the scheduler has given up on).

Delivery is at-least-once: every message has a mailbox sequence number and stays in the
mailbox until the agent acknowledges it by polling with `after=<seq>`; a poll whose answer
was lost is simply repeated. Agents drop duplicates by sequence number (and by task and
fence), so a message is executed at most once.

`watch()` reports agents that stopped polling as disconnected (the long-poll analogue of a
closed WebSocket), so the core sees `AgentDisconnected` like it would in the seed.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scheduler.ports import AgentSendError, RunTask


@dataclass
class Mailbox:
    agent_id: str
    pool_id: str
    pod: str
    pid: int | None = None
    registered_at: float = 0.0
    last_poll: float = 0.0  # when the latest poll arrived or ended
    polling: int = 0  # polls currently open
    next_seq: int = 1
    messages: list[dict[str, Any]] = field(default_factory=list)
    waiter: asyncio.Event = field(default_factory=asyncio.Event)
    connected: bool = True

    def live(self, now: float, stale_after_s: float) -> bool:
        return self.connected and (self.polling > 0 or now - self.last_poll <= stale_after_s)


class Mailboxes:
    """The `Agents` port plus the server side of the long-poll."""

    def __init__(self, now: Callable[[], float], *, poll_timeout_s: float = 20.0,
                 stale_after_s: float = 5.0) -> None:
        self._now = now
        self.poll_timeout_s = poll_timeout_s
        self.stale_after_s = stale_after_s
        self.boxes: dict[str, Mailbox] = {}
        self.held_off: dict[str, float] = {}
        """Agents whose C&C connection an injected agent-disconnect keeps down, until when."""
        self.process_alive: Callable[[Mailbox], bool] = lambda box: True
        """Set by the static cluster: a send to an agent whose process is gone fails at once,
        as a write to a socket whose peer died does, instead of waiting for the next watch."""

    # ---------------------------------------------------------------- registration
    def register(self, agent_id: str, pool_id: str, pod: str, pid: int | None) -> Mailbox:
        """A (re-)registration starts a new mailbox: messages to an earlier incarnation are
        void (their fences are stale by the time it could run them)."""
        now = self._now()
        box = Mailbox(agent_id, pool_id, pod, pid, now, now)
        old = self.boxes.get(agent_id)
        if old is not None:
            old.connected = False
            old.waiter.set()
        self.boxes[agent_id] = box
        return box

    def get(self, agent_id: str) -> Mailbox | None:
        box = self.boxes.get(agent_id)
        return box if box is not None and box.connected else None

    def disconnect(self, agent_id: str, hold_s: float | None = None) -> bool:
        """End the agent's session; with `hold_s`, refuse its registration that long (its
        connection stays down, as after a network drop its reconnects fail)."""
        if hold_s is not None:
            self.held_off[agent_id] = self._now() + hold_s
        box = self.boxes.get(agent_id)
        if box is None or not box.connected:
            return False
        box.connected = False
        box.waiter.set()
        return True

    def down_for(self, agent_id: str) -> float | None:
        """Seconds the agent's connection stays down (an injected hold-off), or None."""
        until = self.held_off.get(agent_id)
        if until is None or until <= self._now():
            self.held_off.pop(agent_id, None)
            return None
        return until - self._now()

    # ---------------------------------------------------------------- Agents port
    def send_run_task(self, agent_id: str, run: RunTask) -> None:
        self._send(agent_id, {"type": "run_task", **dataclasses.asdict(run)})

    def send_cancel(self, agent_id: str, task_id: int) -> None:
        self._send(agent_id, {"type": "cancel", "task_id": task_id})

    def _send(self, agent_id: str, message: dict[str, Any]) -> None:
        box = self.boxes.get(agent_id)
        if box is None or not box.connected:
            raise AgentSendError(f"agent {agent_id} is not connected")
        if not self.process_alive(box):
            raise AgentSendError(f"agent {agent_id}: its process (pid {box.pid}) is gone")
        if not box.live(self._now(), self.stale_after_s):
            raise AgentSendError(
                f"agent {agent_id} has not polled for {self._now() - box.last_poll:.1f} s")
        box.messages.append({"seq": box.next_seq, **message})
        box.next_seq += 1
        box.waiter.set()

    # ---------------------------------------------------------------- long-poll
    async def poll(self, box: Mailbox, after: int, timeout_s: float | None) -> list[dict[str, Any]]:
        box.messages = [m for m in box.messages if m["seq"] > after]
        box.polling += 1
        box.last_poll = self._now()
        try:
            if not box.messages and box.connected:
                box.waiter.clear()
                wait = self.poll_timeout_s if timeout_s is None else min(timeout_s, self.poll_timeout_s)
                try:
                    await asyncio.wait_for(box.waiter.wait(), wait)
                except TimeoutError:
                    pass
            return list(box.messages) if box.connected else []
        finally:
            box.polling -= 1
            box.last_poll = self._now()

    def silent(self) -> list[Mailbox]:
        """Connected agents that stopped polling: to be reported as disconnected."""
        now = self._now()
        return [b for _, b in sorted(self.boxes.items())
                if b.connected and not b.live(now, self.stale_after_s)]
