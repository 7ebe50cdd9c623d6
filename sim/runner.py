"""One seed of one scenario under one scheduler: the unit of work a process pool runs.

Returns plain data (rows and counters) so the caller can judge, summarise or write it. Wall
time is the caller's business: nothing in `sim/` reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scheduler.gc_pause import paused
from sim.config import WorldConfig
from sim.world import World


@dataclass(frozen=True)
class RunOutput:
    scenario: str
    scheduler: str
    seed: int
    rows: list[dict[str, Any]]
    events: int  # SimPy events processed
    sim_s: float
    faults_fired: int
    faults_missed: int
    fault_types: tuple[str, ...] = ()  # the types of the faults that took effect, sorted


def run(cfg: WorldConfig, scheduler: str, seed: int, *, perturb_ties: bool = False) -> RunOutput:
    with paused():
        world = World(cfg, scheduler, seed, perturb_ties=perturb_ties)
        # Releasing the events as they are serialised also matters after the run: the world
        # is a cycle of objects, so only the collector could free it, and with it every
        # event; left behind, a seed-variant day's ~1 GB of garbage slowed the next run in
        # this process (a reference day after a seed-head day took 2.3 s instead of 1.2 s).
        rows = world.run(release=True)
    return RunOutput(cfg.name, scheduler, seed, rows, world.kernel.events, cfg.end_s,
                     world.faults.fired, world.faults.missed, tuple(sorted(world.faults.fired_types)))
