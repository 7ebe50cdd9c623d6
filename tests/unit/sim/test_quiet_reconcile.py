"""Skipping quiet reconciles is an optimisation, not a behaviour: with it on or off, every
shipped scenario gives the same history, byte for byte, while far fewer passes run."""

from dataclasses import replace
from pathlib import Path

import pytest

from scheduler import history
from scheduler.settings import ReferencePolicy, SeedQuirks, Settings
from scheduler.variants.reference import ReferencePolicy as Reference
from sim.world import World
from unstuck.scenario import load

SCENARIOS = sorted(p for p in Path("scenarios").glob("*.yaml") if p.stem != "mixed-chaos-day")


def run(cfg, seed: int, *, skip: bool, perturb: bool = False) -> tuple[str, int]:
    settings = Settings(seed=SeedQuirks(clock_origin_s=cfg.clock_origin_s),
                        reference=ReferencePolicy(skip_quiet_reconciles=skip))
    world = World(cfg, "reference", seed, settings=settings, perturb_ties=perturb)
    policy = world.scheduler.policy
    assert isinstance(policy, Reference)
    passes = 0
    full = policy.reconcile

    def counted() -> None:
        nonlocal passes
        passes += 1
        full()

    policy.reconcile = counted  # type: ignore[method-assign]
    return history.digest(world.run()), passes


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_skipping_quiet_reconciles_changes_no_history(path):
    cfg = load(path).world()
    for seed in range(3):
        skipped, few = run(cfg, seed, skip=True, perturb=seed == 2)
        every, many = run(cfg, seed, skip=False, perturb=seed == 2)
        assert skipped == every, f"{path.stem} seed {seed}: a skipped pass would have acted"
        assert few < many


def test_on_a_chaotic_day_most_periodic_passes_are_skipped():
    cfg = load("scenarios/mixed-chaos-day.yaml").world()
    cfg = replace(cfg, duration_s=4 * 3600.0)
    skipped, few = run(cfg, 5, skip=True)
    every, many = run(cfg, 5, skip=False)
    assert skipped == every
    assert few < many / 2, (few, many)


def test_a_run_missing_from_quiet_heartbeats_is_still_noticed():
    """No event arrives when an agent silently drops a run: only its heartbeats, which stop
    listing the task, tell. Skipping must not hide that the report grace ran out."""
    from scheduler.model import TaskType
    from scheduler.testing import Script

    def requeued_at(skip: bool) -> tuple[float, str]:
        s = Script("reference", settings=Settings(reference=ReferencePolicy(skip_quiet_reconciles=skip)),
                   plan_s=600.0)
        s.create(200.0, task_type=TaskType.PLAN)  # after the pod's own start-up deadlines
        # Lost within the report grace: the next heartbeats are news, later ones are not.
        s.at(205.0, lambda: [a.runs.clear() for a in s.agents.values()])
        s.run(600.0)
        rows = s.finish()
        lost = [r["t"] for r in rows if r["kind"] == "task.transition"
                and r["reason"].startswith("plan lost")]
        assert lost, f"skip={skip}: the lost run was never noticed"
        return lost[0], history.digest(rows)

    (t_skip, d_skip), (t_all, d_all) = requeued_at(True), requeued_at(False)
    assert t_skip == t_all and d_skip == d_all
    assert t_skip == 230.0  # the first heartbeat more than 25 s after the dispatch at 200
