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

That the drawn clocks reach the run is checked with the shortcuts fuzz's
(`test_a_short_clock_comes_due_within_the_run`: both take them through `clocks.for_run`).
CI runs a fixed handful; to hunt, `UNSTUCK_FUZZ_EXAMPLES=2000 pytest
tests/unit/sim/test_reference_clocks_fuzz.py`.
"""

from __future__ import annotations

import math
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scheduler.settings import Settings
from sim.world import World
from unstuck import checker
from unstuck.scenario import ScenarioInvalid, parse

from .clocks import changed_clocks, clocks, for_run
from .test_scenario_fuzz import FILE, HARD, HUNT, valid_ish

EXAMPLES = HARD or 40  # with the fix above reverted, these 40 catch the bug (the first 20 did not)


# What a store that takes no write from some time to the end of the run leaves unrecorded:
# a report, or the commit of an apply given up before, that came after that time.
UNRECORDABLE = ("no_unrecorded_apply", "no_lost_task")


def unsafe(cfg: Any, seed: int, clocks_: Settings, *, perturb: bool) -> set[str]:
    """The safety invariants the reference breaks on `cfg`'s `seed` under `clocks_`, but for
    what no scheduler could record: an `UNRECORDABLE` one after the store stopped taking
    writes for the rest of the run (a db-write-failure at rate 1 that outlasts it)."""
    rows = World(cfg, "reference", seed, settings=for_run(clocks_, cfg), perturb_ties=perturb).run()
    verdict, _ = checker.judge(rows)
    shut = min((r["t"] for r in rows if r["kind"] == "fault" and r["data"].get("type") == "db-write-failure"
                and r["data"]["rate"] >= 1.0 and r["t"] + r["data"]["duration_s"] >= cfg.end_s),
               default=math.inf)
    return {v.invariant for v in verdict.violations if v.invariant in checker.SAFETY
            and not (v.invariant in UNRECORDABLE and v.t >= shut)}


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
