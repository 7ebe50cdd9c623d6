"""The seed's AutoScalePods reconciles a pool again right after the cycle's own pass. The
model skips that second pass when the first left a fixed point and nothing it reads moved
(`SeedPolicy.reconcile_inputs`). That is an optimisation, not a behaviour: with the skip
disabled, every shipped short scenario gives the same history, byte for byte."""

import random
from pathlib import Path

import pytest

from scheduler import events as ev
from scheduler import history
from scheduler.core import Context
from scheduler.history import History
from scheduler.model import PodInfo, Pool
from scheduler.settings import SeedQuirks, Settings
from scheduler.stores.memory import MemoryStore
from scheduler.variants.seed import SeedPolicy
from sim.world import World
from unstuck.scenario import load

SCENARIOS = sorted(p for p in Path("scenarios").glob("*.yaml") if p.stem != "mixed-chaos-day")


def run(cfg, variant: str, seed: int, *, skip: bool) -> tuple[str, int]:
    world = World(cfg, variant, seed, settings=Settings(seed=SeedQuirks(clock_origin_s=cfg.clock_origin_s)))
    policy = world.scheduler.policy
    assert isinstance(policy, SeedPolicy)
    skipped = 0
    full = policy.auto_scale_pods

    def counted(pool, *, reconciled: bool = False) -> None:
        nonlocal skipped
        skipped += reconciled
        full(pool, reconciled=reconciled)

    policy.auto_scale_pods = counted  # type: ignore[method-assign]
    if not skip:
        policy.reconcile_inputs = lambda: None  # type: ignore[method-assign]
    return history.digest(world.run()), skipped


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
@pytest.mark.parametrize("variant", ["seed", "seed-head"])
def test_skipping_the_second_pass_changes_no_history(path, variant):
    cfg = load(path).world()
    for seed in (0, 1):
        with_skip, skipped = run(cfg, variant, seed, skip=True)
        without, none = run(cfg, variant, seed, skip=False)
        assert with_skip == without
        assert none == 0 and skipped > 0


class GracefulCluster:
    """A cluster that keeps listing a Failed pod while its deletion runs, as Kubernetes does
    during the grace period. (The simulated world never has Failed pods.)"""

    def __init__(self) -> None:
        self.revision = 0
        self.pods = {"pod-ok": PodInfo("pod-ok", "pool-1"),
                     "pod-crashed": PodInfo("pod-crashed", "pool-1", phase="Failed")}
        self.deletes: list[str] = []

    def list_pods(self, pool_id: str) -> list[PodInfo]:
        return [p for _, p in sorted(self.pods.items()) if p.pool_id == pool_id]

    def delete_pod(self, name: str) -> None:
        self.deletes.append(name)  # the pod stays listed until its grace period ends


class Wakeups:
    def wake_at(self, when: float, tag) -> None:
        pass


def test_a_pass_that_deleted_a_failed_pod_is_not_a_fixed_point():
    """The Go code lists the Failed pod again in AutoScalePods' own pass and deletes it
    again: the second pass must run."""
    store, cluster = MemoryStore(), GracefulCluster()
    store.put_pool(Pool("pool-1", min_replicas=1, max_replicas=2))
    ctx = Context(store=store, cluster=cluster, agents=None, timer=Wakeups(), history=History(),
                  rng=random.Random(0), settings=Settings())
    policy = SeedPolicy(ctx)
    policy.on_restart(ev.Restart())
    policy.timer_autoscaler_cycle()
    assert cluster.deletes == ["pod-crashed", "pod-crashed"]
    del cluster.pods["pod-crashed"]
    cluster.revision += 1
    policy.timer_autoscaler_cycle()  # now a fixed point: AutoScalePods' pass is skipped
    assert cluster.deletes == ["pod-crashed", "pod-crashed"]
    assert policy.reconcile_pods("pool-1") == policy.reconcile_inputs() is not None
