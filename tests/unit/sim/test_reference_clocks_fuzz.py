"""The reference stays safe whatever its clocks are set to.

Its clocks (the run timeout, the agent timeout, the reservation hold, the periods of its
loops) are tunables: an operator sets them, and the live service scales them all with
`--time-scale`. They bound how soon it gives up on a run or an agent, so they move what is
live; they must never make it unsafe. Hypothesis draws a valid scenario (the scenario fuzz's
strategy) and the clocks (each as shipped or short, `clocks.py`), and every safety invariant
the reference breaks under the drawn clocks must be one it breaks under the shipped clocks
too: the configuration's fault (docs/scenarios.md, "Configurations no scheduler passes"),
not the clocks'. Half the examples perturb the order of simultaneous events
(`--perturb-ties`). A store that takes no write from some time to the end of the run (a
db-write-failure at rate 1 that outlasts it) leaves what comes after unrecorded under any
scheduler and any clocks, so those violations are not counted (`UNRECORDABLE`): a 49 s run
timeout gave up an apply just before such an outage, and its commit came during it.

It found one bug, in two hunts: a plan requeued at its run timeout was held only from its
agent's next heartbeat, so the same pass could send that agent another plan_and_apply
(agent_capacity), first while the agent's last heartbeat still listed the plan, then (ties
perturbed) while the agent, reconnected after our restart, had sent no heartbeat yet. Two
stories in test_reference_stray_demand.py pin it.

CI runs a fixed handful; to hunt, `UNSTUCK_FUZZ_EXAMPLES=2000 pytest
tests/unit/sim/test_reference_clocks_fuzz.py`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scheduler.settings import Settings
from sim.world import World
from unstuck import checker
from unstuck.scenario import ScenarioInvalid, parse

from .clocks import changed_clocks, clocks
from .test_scenario_fuzz import FILE, HARD, HUNT, valid_ish

EXAMPLES = HARD or 40  # with the fix above reverted, these 40 catch the bug (the first 20 did not)


# What a store that takes no write from some time to the end of the run leaves unrecorded:
# a report, or the commit of an apply given up before, that came after that time.
UNRECORDABLE = ("no_unrecorded_apply", "no_lost_task")


def unsafe(cfg: Any, seed: int, clocks_: Settings, *, perturb: bool) -> set[str]:
    """The safety invariants the reference breaks on `cfg`'s `seed` under `clocks_`, but for
    what no scheduler could record: an `UNRECORDABLE` one after the store stopped taking
    writes for the rest of the run (a db-write-failure at rate 1 that outlasts it)."""
    run = replace(clocks_, seed=replace(clocks_.seed, clock_origin_s=cfg.clock_origin_s))
    rows = World(cfg, "reference", seed, settings=run, perturb_ties=perturb).run()
    verdict, _ = checker.judge(rows)
    shut = min((r["t"] for r in rows if r["kind"] == "fault" and r["data"].get("type") == "db-write-failure"
                and r["data"]["rate"] >= 1.0 and r["t"] + r["data"]["duration_s"] >= cfg.end_s),
               default=math.inf)
    return {v.invariant for v in verdict.violations if v.invariant in checker.SAFETY
            and not (v.invariant in UNRECORDABLE and v.t >= shut)}


def test_the_drawn_clocks_are_the_ones_the_reference_runs_with():
    """A short run timeout (30 s) under a plan of about a minute requeues the plan, which the
    shipped hour does not: the comparison below compares two clocks, not one twice."""
    cfg = parse({"name": "fuzz", "seeds": 1, "duration_s": 600,
                 "workload": [{"names": ["alpha0"], "at": [0]}]}, FILE).world()
    short = Settings(reference=replace(Settings().reference, run_timeout_s=30.0))

    def requeued(clocks_: Settings) -> bool:
        rows = World(cfg, "reference", 0, settings=clocks_).run()
        return any(r["reason"] == "plan lost: run timed out" for r in rows)

    assert requeued(short) and not requeued(Settings())


@HUNT
@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not HARD,
          print_blob=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                  HealthCheck.filter_too_much])
@given(data=valid_ish(), seed=st.integers(0, 2**16), clocks_=clocks(), perturb=st.booleans())
def test_no_clock_makes_the_reference_unsafe(data, seed, clocks_, perturb):
    data = {**data, "duration_s": min(data["duration_s"], 1800)}
    try:
        cfg = parse(data, FILE).world()
    except ScenarioInvalid:
        assume(False)
        return
    drawn = unsafe(cfg, seed, clocks_, perturb=perturb)
    if not drawn:
        return
    new = drawn - unsafe(cfg, seed, Settings(), perturb=perturb)
    assert not new, (
        f"seed {seed}{', ties perturbed' if perturb else ''}: the reference broke {sorted(new)} under these clocks only: "
        f"{changed_clocks(clocks_)}. The scenario:\n{yaml.safe_dump(data, sort_keys=False)}")
