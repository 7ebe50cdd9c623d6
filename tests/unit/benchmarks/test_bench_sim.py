"""bench_sim's events-by-kind breakdown: it times the very run, and leaves the kernel as it was."""

from __future__ import annotations

from pathlib import Path

import sim.kernel
from scheduler import events as ev
from sim import runner
from tests.unit.benchmarks.bench import ROOT, load
from unstuck import scenario


class World:  # the callbacks the world's events carry, by their `__qualname__`
    def _wake(self) -> None: ...
    def send(self) -> None: ...


def test_an_event_is_named_by_its_timer_its_delivered_event_or_its_callback() -> None:
    bench = load("bench_sim")
    assert bench.kind_of(World()._wake, (ev.TimerTag("reconcile", (True,)),)) == "wake: reconcile"
    assert bench.kind_of(World().send, (ev.PodRemoved("pod-1"),)) == "deliver: PodRemoved"
    assert bench.kind_of(test_an_event_is_named_by_its_timer_its_delivered_event_or_its_callback,
                         ()) == "test_an_event_is_named_by_its_timer_its_delivered_event_or_its_callback"


def test_the_breakdown_counts_every_event_of_the_same_history() -> None:
    bench = load("bench_sim")
    cfg = scenario.load(Path(ROOT) / "scenarios/incident-601.yaml").world()
    plain = sim.kernel._fire
    out, kinds = bench.by_kind(cfg, "seed", 3)
    assert sim.kernel._fire is plain  # the timing stand-in is gone
    assert sum(n for n, _ in kinds.values()) == out.events > 0
    assert all(t >= 0.0 for _, t in kinds.values())
    assert {"AgentSim.heartbeat", "wake: autoscaler_cycle"} <= set(kinds)
    assert out.rows == runner.run(cfg, "seed", 3).rows  # timing changes nothing in the run
