"""The agent's side of the protocol: requests, and an ordered outbox of reports.

Reports (and the execution rows they carry) must reach the scheduler in the order they
happened and at least once, even across a scheduler restart. The outbox delivers them one at a
time, in order, retrying a connection error or a 5xx with capped exponential backoff; a 2xx
or a 4xx (the scheduler refused it, e.g. a stale fence: retrying cannot help) ends an item.
The tasks with an item still in the outbox are reported as current in heartbeats, so the
scheduler does not presume a finished-but-unreported run lost while it was down.

The seed's agent (`policy=reports.RETRY_THEN_DROP`) does what its HTTP client does: a report
is tried 4 times (`reports.retry_after`: 1, 2, 4 s apart) and then dropped, and a completion
notice, a C&C message, is tried once. Execution rows are our instrumentation, not the seed's
protocol, so a dropped report's row still goes out alone (`/agent/exec`), until delivered:
the history keeps the commit the scheduler never heard of.

`Client.heard` is when the scheduler last answered anything (a 5xx too): a run waiting for
its claim's answer keeps its state lock only while the scheduler is heard (runs.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx

from scheduler import reports

log = logging.getLogger("unstuck.agent")


class NotRegistered(Exception):
    """The scheduler does not know this agent (it restarted, or disconnected us)."""


class BadAnswer(Exception):
    """A poll answered 200 with something that is not the protocol's `{messages: [...]}` (a
    proxy's page, another service on the port): the agent says so and polls again, keeping
    its runs."""


@dataclass
class Item:
    path: str
    body: dict[str, Any]
    task_id: int | None = None
    attempts: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    status: int | None = None


class Client:
    def __init__(self, url: str, token: str, *, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)
        self.poll_http = httpx.Client(base_url=self.url, headers=headers, timeout=None)
        self.heard = time.monotonic()  # the last answer of any status (a float: one store)

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        r = self.http.post(path, json=body)
        self.heard = time.monotonic()
        return r

    def poll(self, agent_id: str, after: int, timeout_s: float) -> list[dict[str, Any]]:
        r = self.poll_http.get("/agent/poll", params={"agent_id": agent_id, "after": after,
                                                       "timeout": timeout_s},
                               timeout=httpx.Timeout(10.0, read=timeout_s + 10.0))
        self.heard = time.monotonic()
        if r.status_code == 404:
            raise NotRegistered(r.text)
        r.raise_for_status()
        try:
            messages = r.json()["messages"]
        except (ValueError, KeyError, TypeError) as exc:
            raise BadAnswer(f"not {{messages: [...]}} ({type(exc).__name__}): "
                            f"{r.text.strip()[:120]!r}") from None
        if not isinstance(messages, list):
            raise BadAnswer(f"messages is not a list: {r.text.strip()[:120]!r}")
        return messages

    def close(self) -> None:
        self.http.close()
        self.poll_http.close()


class Outbox:
    """Ordered, at-least-once delivery of reports on its own thread."""

    def __init__(self, client: Client, *, max_backoff_s: float = reports.MAX_BACKOFF_S,
                 policy: str = reports.UNTIL_DELIVERED) -> None:
        self.client = client
        self.max_backoff_s = max_backoff_s
        self.policy = policy
        self.items: deque[Item] = deque()
        self.cond = threading.Condition()
        self.stopping = False
        self.closed = False  # `discard`
        self.thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self.thread.start()

    def put(self, path: str, body: dict[str, Any], task_id: int | None = None) -> Item:
        item = Item(path, body, task_id)
        with self.cond:
            if self.closed:
                return item  # never delivered: its `done` stays unset
            self.items.append(item)
            self.cond.notify()
        return item

    def tasks(self) -> set[int]:
        """The tasks with a report on its way, for the heartbeat. None (an empty set) for the
        seed's agent, which lists only what it runs."""
        if self.policy != reports.UNTIL_DELIVERED:
            return set()
        with self.cond:
            return {i.task_id for i in self.items if i.task_id is not None}

    def empty(self) -> bool:
        with self.cond:
            return not self.items

    def drain(self, deadline: float) -> bool:
        """Wait until everything is delivered or `deadline` (monotonic) passes."""
        while time.monotonic() < deadline:
            if self.empty():
                return True
            time.sleep(0.02)
        return self.empty()

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify()

    def discard(self) -> None:
        """Drop every report not yet delivered and refuse new ones: an agent that exits
        without reporting (the seed's, on SIGTERM). A POST already on the wire may land."""
        with self.cond:
            self.items.clear()
            self.closed = True
            self.stopping = True
            self.cond.notify()

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.items and not self.stopping:
                    self.cond.wait()
                if not self.items:
                    return
                item = self.items[0]
            if self._deliver(item):
                with self.cond:
                    if self.items and self.items[0] is item:  # `discard` may have emptied it
                        self.items.popleft()
                item.done.set()

    def _deliver(self, item: Item) -> bool:
        try:
            r = self.client.post(item.path, item.body)
        except RuntimeError:  # httpx: the client is closed, the agent is exiting
            return True
        except httpx.HTTPError as exc:
            log.info("report %s not delivered (%s); retrying", item.path, exc)
        else:
            if r.status_code < 500:
                item.status = r.status_code
                return True
            log.info("report %s got %s; retrying", item.path, r.status_code)
        item.attempts += 1
        if self.policy != reports.UNTIL_DELIVERED and item.path != "/agent/exec":
            wait = reports.retry_after(self.policy, item.attempts - 1) \
                if item.path == "/agent/report" else None  # a notice: one try
            if wait is None:
                log.warning("%s of task %s dropped after %d tries (the seed's agent)",
                            item.path, item.task_id, item.attempts)
                return self._drop(item)
            time.sleep(wait)
            return False
        with self.cond:
            if self.stopping and item.attempts > 3:
                log.warning("%s of task %s not delivered: the agent is stopping", item.path,
                            item.task_id)
                return True  # given up (it spun on it, untimed, until the process exited)
        time.sleep(reports.backoff(item.attempts, self.max_backoff_s))
        return False

    def _drop(self, item: Item) -> bool:
        """Give `item` up (it is done, with no status); a report's execution row stays, as an
        item of its own at the head of the queue."""
        row = item.body.get("exec")
        if row is not None:
            with self.cond:
                if self.items and self.items[0] is item:
                    self.items.insert(1, Item("/agent/exec", row, item.task_id))
        return True
