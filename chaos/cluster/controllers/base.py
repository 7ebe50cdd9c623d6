"""Running controllers: each on its own thread, woken by store changes and by its period.

Level-triggered like the real controller manager: a controller recomputes what it wants from
the whole store on each pass, so a missed wake-up or a 409 conflict costs one pass, never a
wrong state. A controller's own writes wake it once more; passes that change nothing do not
write, so the loop settles.
"""

from __future__ import annotations

import abc
import logging
import threading
import time

from chaos.cluster.errors import ApiError
from chaos.cluster.storage import Store

log = logging.getLogger(__name__)


class Controller(abc.ABC):
    name = "controller"
    period_s: float = 1.0  # real seconds between passes when nothing changes
    on_change = True  # also run when the store changes

    @abc.abstractmethod
    def sync(self, now: float) -> None:
        """One level-triggered pass: recompute what is wanted from the whole store."""


class Runner:
    """Drive a set of controllers against one store until `stop()`."""

    def __init__(self, store: Store, controllers: list[Controller], *,
                 settle_s: float = 0.005) -> None:
        self.store = store
        self.controllers = controllers
        self.settle_s = settle_s
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for c in self.controllers:
            t = threading.Thread(target=self._loop, args=(c,), name=f"ctl-{c.name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        with self.store.lock:
            self.store.changed.notify_all()
        for t in self._threads:
            t.join(timeout=2)

    def _loop(self, c: Controller) -> None:
        next_due = 0.0
        while not self._stop.is_set() and not self.store.closed:
            rv = self.store.rv
            now = time.time()
            if c.on_change or now >= next_due:
                try:
                    c.sync(now)
                except ApiError as err:
                    log.debug("%s: %s", c.name, err.message)
                except Exception:
                    log.exception("controller %s failed a pass", c.name)
                next_due = now + c.period_s
            wait = max(0.0, next_due - time.time())
            if c.on_change:
                self.store.wait(rv, wait)
                self._stop.wait(self.settle_s)  # let a burst of writes land before re-reading
            else:
                self._stop.wait(wait)
