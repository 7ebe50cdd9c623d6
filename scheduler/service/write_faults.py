"""Store-write failures a harness asks the live service to inject: the `db-write-failure`
fault, live.

A database that refuses writes for a while cannot be made to order on a real cluster, and
the simulation's fault is a window in which each store write fails with some probability.
The live service runs the same injection on its own store (`scheduler.stores.failures`,
which every store has), so the scheduler under test meets the failures at the same place,
its writes, and writes the same `store.write_failed` rows. Only a service started with
`--fault-injection` does it: a production scheduler must not fail its writes because a
request asked.

Windows may overlap; the one in force is the worst (`failures.worst`), as in the simulation.
Each draws from its own stream, seeded by the run's seed and the fault's `seq`."""

from __future__ import annotations

import random
from typing import Any

from scheduler.stores.failures import worst

TYPE = "db-write-failure"


class WriteFaultWindows:
    def __init__(self, store: Any, seed: int) -> None:
        self.store = store
        self.seed = seed
        self.open: dict[int, tuple[float, random.Random]] = {}  # fault seq -> (rate, stream)

    def start(self, seq: int, rate: float) -> None:
        self.open[seq] = (rate, random.Random(f"{self.seed}:{TYPE}:{seq}"))
        self._apply()

    def end(self, seq: int) -> None:
        if self.open.pop(seq, None) is not None:
            self._apply()

    def _apply(self) -> None:
        if self.open:
            self.store.fail_writes(*worst(list(self.open.values())))
        else:
            self.store.heal()
