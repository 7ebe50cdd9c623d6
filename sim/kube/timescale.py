"""Shorter Kubernetes timings for CI: one factor divides every duration.

Why: the local control plane runs the real rules in wall-clock time, and a 300 s toleration
is too slow for a test. `TimeScale(10)` makes it 30 s, the 15 s HPA sync 1.5 s and the 0.1
node/s eviction rate 1 node/s, so every rule keeps its proportions. The simulation runs at
factor 1 (simulated time is free).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TypeVar

from sim.kube._validate import require

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class TimeScale:
    factor: float = 1.0

    def __post_init__(self) -> None:
        require(
            math.isfinite(self.factor) and self.factor > 0,
            "TimeScale.factor",
            self.factor,
            "must be a finite number > 0 (10 runs Kubernetes timings 10x faster)",
        )

    def scaled(self, seconds: float) -> float:
        """A duration on the scaled clock."""
        return seconds / self.factor

    def rate(self, per_second: float) -> float:
        """An event rate on the scaled clock."""
        return per_second * self.factor

    def apply(self, settings: T) -> T:
        """A copy of a frozen settings dataclass (HPASpec, NodeTimings, StartupDelay, ...) with
        every `*_per_s` field sped up and every other `*_s` field shortened, recursing into
        nested dataclasses and tuples of them (HPA scaling policies)."""
        if isinstance(settings, tuple):
            return type(settings)(self.apply(x) for x in settings)  # type: ignore[return-value]
        if not dataclasses.is_dataclass(settings) or isinstance(settings, type):
            return settings
        changes = {}
        for f in dataclasses.fields(settings):
            value = getattr(settings, f.name)
            if f.name.endswith("_per_s") and isinstance(value, int | float):
                changes[f.name] = self.rate(value)
            elif f.name.endswith("_s") and isinstance(value, int | float):
                changes[f.name] = self.scaled(value)
            elif isinstance(value, tuple) or dataclasses.is_dataclass(value):
                changes[f.name] = self.apply(value)
        return dataclasses.replace(settings, **changes)
