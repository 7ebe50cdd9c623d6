"""The SimPy kernel as the world uses it: callbacks at simulated times, counted, with an
optional shuffle of same-time events.

Why callbacks and not one generator process per actor: a process costs a generator resume
and a Timeout per step; a callback event costs one heap push and one call. The world has
tens of thousands of short, independent steps (heartbeats, reports, wake-ups), so each is a
plain SimPy event whose callback does the work. SimPy still owns time and ordering.

Same-time order: SimPy orders by (time, priority, insertion id). By default every event has
the same priority, so same-time events run in insertion order (FIFO), like the scheduler's
`go f()` wake-ups expect. `perturb_ties=True` draws each event's priority from the run's
seeded RNG instead: same-time events run in a seeded random order, which flushes out hidden
ordering assumptions while keeping the run reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any

import simpy
from simpy.events import NORMAL, URGENT, Event


def _fire(event: Event) -> None:
    kernel, fn, args = event._value
    kernel.events += 1
    fn(*args)


class _Call(Event):
    """A SimPy event that runs `fn(*args)` when processed. The call rides in the event's
    value and one module-level callback runs it: no closure per event (nothing waits on
    these events, so nobody else reads the value)."""

    __slots__ = ()

    def __init__(self, env: simpy.Environment, kernel: Kernel, fn: Callable[..., Any], args: tuple) -> None:
        self.env = env
        self._ok = True
        self._value = (kernel, fn, args)
        self.callbacks = [_fire]


class Kernel:
    def __init__(self, perturb: random.Random | None = None) -> None:
        self.env = simpy.Environment()
        self.events = 0
        self._perturb = perturb

    @property
    def now(self) -> float:
        return self.env._now

    def after(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` `delay` seconds from now (0: after everything already due now)."""
        # `env.schedule`, inlined: the same queue entry, one call fewer per event.
        env = self.env
        prio = NORMAL if self._perturb is None else 1 + self._perturb.getrandbits(30)
        heappush(env._queue, (env._now + (delay if delay > 0.0 else 0.0), prio, next(env._eid),
                              _Call(env, self, fn, args)))

    def at(self, t: float, fn: Callable[..., Any], *args: Any) -> None:
        self.after(t - self.env._now, fn, *args)

    def run(self, until: float) -> None:
        """`env.run(until)` with SimPy's `step` inlined for the world's own events: the same
        queue, the same order (the stop event SimPy schedules at `until` is URGENT, so it goes
        before the other events of that instant), one method call and exception frame fewer
        per event. Any other SimPy event is left to `env.step`."""
        env = self.env
        if until <= env._now:
            raise ValueError(f"until ({until}) must be greater than the current simulation time")
        stop = Event(env)
        stop._ok, stop._value = True, None
        env.schedule(stop, URGENT, until - env._now)
        queue = env._queue
        while True:
            event = queue[0][3]
            if type(event) is not _Call:
                if event is stop:
                    env._now = heappop(queue)[0]
                    stop.callbacks = None
                    return
                env.step()
                continue
            env._now = heappop(queue)[0]
            event.callbacks = None
            _fire(event)
