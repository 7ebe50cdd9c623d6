"""The Timer port on an asyncio event loop: `wake_at(when, tag)` becomes a `TimerFired(tag)`.

Wake-ups are kept in one heap ordered by (when, insertion order), so wake-ups due at the same
instant fire in the order they were asked for, as the core's design requires for zero-delay
spawns (a Go `go f()`). One loop callback is armed for the earliest entry; when it runs it
fires every due entry, each as its own event through the engine. Nothing is persisted: a new
process starts with an empty heap, exactly as the seed loses its `scheduleRetry` goroutines.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

from scheduler import events as ev


class LoopTimer:
    def __init__(self, now: Callable[[], float], fire: Callable[[ev.TimerFired], None]) -> None:
        self._now = now
        self._fire = fire
        self._heap: list[tuple[float, int, ev.TimerTag]] = []
        self._seq = itertools.count()
        self._armed: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._arm()

    def wake_at(self, when: float, tag: ev.TimerTag) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), tag))
        self._arm()

    def pending(self) -> int:
        return len(self._heap)

    def close(self) -> None:
        self.closed = True
        if self._armed is not None:
            self._armed.cancel()
        self._heap.clear()

    def _arm(self) -> None:
        if self._loop is None or self.closed or not self._heap:
            return
        first = self._heap[0][0]
        if self._armed is not None and self._armed_for is not None and self._armed_for <= first:
            return
        if self._armed is not None:
            self._armed.cancel()
        self._armed_for = first
        self._armed = self._loop.call_later(max(0.0, first - self._now()), self._run_due)

    def _run_due(self) -> None:
        self._armed = self._armed_for = None
        # Only what was due when this callback started: a wake-up spawned by one of these
        # (a zero delay is due at the handler's `now`) waits for the next turn of the loop,
        # so HTTP requests and agent polls are served between wake-ups.
        due = self._now()
        while self._heap and not self.closed and self._heap[0][0] <= due:
            _, _, tag = heapq.heappop(self._heap)
            self._fire(ev.TimerFired(tag))
        self._arm()
