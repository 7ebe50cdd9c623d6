"""Write-failure injection shared by every store: a plan of which writes fail."""

from __future__ import annotations

import random
from typing import Any

from scheduler.ports import StoreWriteError


def worst(windows: list[tuple[float, Any]]) -> tuple[float, Any]:
    """Of overlapping write-failure windows (rate, stream), the one in force: the highest
    rate, the first started on a tie. The checker attributes a failed write to the same one
    (docs/metrics.md), and the simulation and the live service both fail writes so."""
    return max(windows, key=lambda w: w[0])


class WriteFailures:
    """Decides, write by write, whether the next write fails.

    Two modes compose: `fail_next(n)` fails exactly the next n writes (for scripted tests),
    and `rate` fails each write with that probability drawn from the run's seeded RNG (for
    random fault windows). The RNG is passed in, never the global one, so a simulated run
    with write failures stays reproducible.
    """

    __slots__ = ("rate", "rng", "next_n", "failed")

    def __init__(self) -> None:
        self.rate = 0.0
        self.rng: random.Random | None = None
        self.next_n = 0
        self.failed = 0

    def check(self, what: str) -> None:
        if self.next_n > 0:
            self.next_n -= 1
            self.failed += 1
            raise StoreWriteError(f"injected write failure ({what})")
        if self.rate > 0.0 and self.rng is not None and self.rng.random() < self.rate:
            self.failed += 1
            raise StoreWriteError(f"injected write failure ({what}, rate {self.rate})")


class FailureInjection:
    """Mixin giving a store the fault-injection controls."""

    failures: WriteFailures

    def fail_writes(self, rate: float, rng: random.Random) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"write failure rate must be within [0, 1], got {rate!r}")
        self.failures.rate = rate
        self.failures.rng = rng

    def fail_next_writes(self, n: int = 1) -> None:
        self.failures.next_n = n

    def heal(self) -> None:
        self.failures.rate = 0.0
        self.failures.next_n = 0
