"""scenarios/adversarial/: scenarios that once broke the reference (sessions 17-20), each run on
seeds that broke it then. They are not part of the suite (`unstuck suite` reads
scenarios/*.yaml only); this keeps them valid, and the reference holding on them."""

from pathlib import Path

import pytest

from sim import runner
from unstuck import checker, scenario

HERE = Path(__file__).resolve().parents[3] / "scenarios" / "adversarial"

# (file, perturb_ties, seeds on which the reference of c6eac80 violated no_unrecorded_apply;
# for timed-out-apply-stale-plan, the reference of 096f5ab no_stale_plan_apply; for the second
# cancel-unreachable-apply-hpa row, the reference of 8ff77e3 apply_pending_bound: a kept
# cut-off pod of a given-up apply held the pool's only replica; for given-up-apply-reconnect,
# the reference of 1e903c1 agent_capacity; for stray-plan-blocks-apply, the reference of 17a5cd4
# apply_pending_bound: a stray plan's pod counted as capacity, so no pod was created)
BROKE = [
    ("cancel-unreachable-apply", False, (1, 2)),
    ("cancel-unreachable-apply-hpa", False, (3, 4)),
    ("cancel-unreachable-apply-hpa", True, (74,)),
    ("db-storm", True, (18,)),
    ("given-up-apply-reconnect", False, (0, 1)),
    ("stray-plan-blocks-apply", False, (0, 6)),
    ("timed-out-apply-commit", False, (0, 1)),
    ("timed-out-apply-stale-plan", False, (0, 2)),
]


def test_every_adversarial_scenario_is_covered_here():
    assert sorted(p.stem for p in HERE.glob("*.yaml")) == sorted({name for name, _, _ in BROKE})


@pytest.mark.parametrize(("name", "perturb_ties", "seeds"), BROKE)
def test_the_reference_holds_on_the_seeds_that_broke_it(name, perturb_ties, seeds):
    s = scenario.load(HERE / f"{name}.yaml")
    assert not scenario.advice(s, name), scenario.advice(s, name)
    cfg = s.world()
    for seed in seeds:
        rows = runner.run(cfg, "reference", seed, perturb_ties=perturb_ties).rows
        verdict, metrics = checker.judge(rows)
        assert verdict.ok, (seed, {k: n for k, n in verdict.counts().items() if n})
        # The seed still reaches the state the scenario is about (its `gates.sometimes`), so
        # its pass is not a model change that moved the faults away from it.
        hits = {h.key for h in metrics.recovery}
        missed = [g.name for g in s.gates.sometimes if not any(g.matches(*hit) for hit in hits)]
        assert not missed, (seed, missed, sorted(hits, key=str))


# The three given-up-apply scenarios are about an apply the scheduler gave up on at the run
# timeout:
# the faults that follow hit a task already ended, which no goal can name.
NO_GOAL = {"given-up-apply-reconnect", "timed-out-apply-commit", "timed-out-apply-stale-plan"}


def test_each_adversarial_scenario_names_what_its_faults_must_reach_where_a_goal_can():
    for name in sorted({name for name, _, _ in BROKE}):
        goals = scenario.load(HERE / f"{name}.yaml").gates.sometimes
        assert bool(goals) == (name not in NO_GOAL), name
