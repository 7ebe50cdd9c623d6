"""The seed model skips passes that would change nothing. That is an optimisation, not a
behaviour: with the skips disabled, every shipped short scenario gives the same history,
byte for byte. The skips:

- AutoScalePods' own reconcile, right after the cycle's pass left a fixed point
  (`SeedPolicy.reconcile_inputs`);
- syncPodsFromK8s over an unchanged listing and pod map (`pod_sync_inputs`);
- syncTaskStatusToSlots that changed nothing, over unchanged slots and rows (`slot_sync_inputs`);
- AutoScalePods' count after a decision to keep the pool as it is (`scale_inputs`);
- a whole autoscaler cycle over a pool, after one that did nothing, over the same inputs
  (`cycle_inputs`), until a freeze window opens, a reservation comes due or, in a pool
  without work in hand, an agent may have gone offline.

One thing is a choice about the history, not a skip: a skipped scale-down is recorded when
it starts, not again every 5 s cycle it repeats (tested below).
"""

import random
from pathlib import Path

import pytest

from scheduler import events as ev
from scheduler import history
from scheduler.core import Context
from scheduler.history import History
from scheduler.model import (
    ExecutionMode,
    FreezeWindow,
    PodInfo,
    Pool,
    SlotStatus,
    Task,
    TaskStatus,
    TaskType,
    Workspace,
)
from scheduler.settings import SeedQuirks, Settings
from scheduler.slots import PodSlots, SlotRef
from scheduler.stores.memory import MemoryStore
from scheduler.variants.seed import SeedPolicy
from sim.world import World
from unstuck.scenario import load

from .shortcuts import without_seed_skips

SCENARIOS = sorted(p for p in Path("scenarios").glob("*.yaml") if p.stem != "mixed-chaos-day")


def run_quiet(cfg, variant: str, seed: int, *, skip: bool) -> tuple[str, dict[str, int], int]:
    """The history digest with every quiet-pass skip on or off, how often the skipped work
    ran (cluster listings, slot counts, task scans), and how many of AutoScalePods' own
    reconcile passes were skipped."""
    world = World(cfg, variant, seed, settings=Settings(seed=SeedQuirks(clock_origin_s=cfg.clock_origin_s)))
    policy = world.scheduler.policy
    assert isinstance(policy, SeedPolicy)
    calls = {"list_pods": 0, "stats": 0, "active_tasks": 0}
    second_passes_skipped = 0
    list_pods, stats = world.cluster.list_pods, PodSlots.stats
    active_tasks, auto_scale_pods = policy.active_tasks, policy.auto_scale_pods

    def counted_list(pool_id):
        calls["list_pods"] += 1
        return list_pods(pool_id)

    def counted_stats(self, pool_id):
        calls["stats"] += 1
        return stats(self, pool_id)

    def counted_tasks():
        calls["active_tasks"] += 1
        return active_tasks()

    def counted_scale(pool, *, reconciled: bool = False) -> None:
        nonlocal second_passes_skipped
        second_passes_skipped += reconciled
        auto_scale_pods(pool, reconciled=reconciled)

    world.cluster.list_pods = counted_list  # type: ignore[method-assign]
    policy.active_tasks = counted_tasks  # type: ignore[method-assign]
    policy.auto_scale_pods = counted_scale  # type: ignore[method-assign]
    if not skip:
        without_seed_skips(policy)
    original = PodSlots.stats
    PodSlots.stats = counted_stats  # type: ignore[method-assign]
    try:
        return history.digest(world.run()), calls, second_passes_skipped
    finally:
        PodSlots.stats = original  # type: ignore[method-assign]


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
@pytest.mark.parametrize("variant", ["seed", "seed-proposal", "seed-head"])
def test_skipping_quiet_passes_changes_no_history(path, variant):
    cfg = load(path).world()
    for seed in (0, 1):
        with_skips, fewer, skipped = run_quiet(cfg, variant, seed, skip=True)
        without, full, none = run_quiet(cfg, variant, seed, skip=False)
        assert with_skips == without
        for work in full:  # and the skips did skip work
            assert fewer[work] < full[work], work
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

    def delete_pod(self, name: str, *, scale_down: bool = False) -> None:
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
    assert policy.reconcile_pods("pool-1") == policy.reconcile_inputs("pool-1") is not None


class ListedCluster:
    """Running pods that stay as they are, with a version like the simulated cluster's."""

    def __init__(self, *names: str) -> None:
        self.revision = 0
        self.pods = {n: PodInfo(n, "pool-1") for n in names}

    def list_pods(self, pool_id: str) -> list[PodInfo]:
        return [p for _, p in sorted(self.pods.items()) if p.pool_id == pool_id]

    def add(self, name: str) -> None:
        self.pods[name] = PodInfo(name, "pool-1")
        self.revision += 1

    def remove(self, name: str) -> None:
        del self.pods[name]
        self.revision += 1

    def delete_pod(self, name: str, *, scale_down: bool = False) -> None:
        self.remove(name)

    def create_pod(self, pool_id: str, name: str) -> None:
        self.pods[name] = PodInfo(name, pool_id, phase="Pending")  # it stays so
        self.revision += 1


def awaiting_confirmation(pool: Pool) -> tuple[SeedPolicy, ListedCluster, Context, History]:
    """Two idle pods and a plan awaiting confirmation: E3 wants one pod fewer and the
    apply_pending rule skips it, every 5 s cycle for as long as the plan waits."""
    store, cluster, log = MemoryStore(), ListedCluster("pod-a", "pod-b"), History()
    store.put_pool(pool)
    store.put_workspace(Workspace("ws-1", pool_id="pool-1", execution_mode=ExecutionMode.K8S))
    store.insert_task(Task(id=1, workspace_id="ws-1", task_type=TaskType.PLAN_AND_APPLY,
                           status=TaskStatus.APPLY_PENDING, agent_id="agent-x"))
    ctx = Context(store=store, cluster=cluster, agents=None, timer=Wakeups(), history=log,
                  rng=random.Random(0), settings=Settings())
    policy = SeedPolicy(ctx)
    policy.on_restart(ev.Restart())
    return policy, cluster, ctx, log


def skips(log: History) -> list[dict]:
    return [r for r in log.rows() if r["kind"] == "decision" and "skipped" in r["reason"]]


def test_a_skipped_scale_down_is_recorded_when_it_starts_not_every_cycle():
    """The history says so once; when the decision changes and comes back, it says so
    again."""
    policy, cluster, ctx, log = awaiting_confirmation(Pool("pool-1", min_replicas=1, max_replicas=4))
    for _ in range(4):
        policy.timer_autoscaler_cycle()
        ctx.now += 5.0
    assert [(r["data"]["current"], r["data"]["desired"]) for r in skips(log)] == [(2, 2)]
    cluster.remove("pod-b")  # one pod: E3 keeps it (min_replicas), nothing to skip
    policy.timer_autoscaler_cycle()
    ctx.now += 5.0
    assert len(skips(log)) == 1
    cluster.add("pod-c")  # two again: the skip starts again and is recorded again
    for _ in range(3):
        policy.timer_autoscaler_cycle()
        ctx.now += 5.0
    assert [(r["t"], r["data"]["current"]) for r in skips(log)] == [(0.0, 2), (25.0, 2)]


def test_a_freeze_pass_breaks_a_run_of_skipped_scale_downs():
    """Even a freeze pass over a pool with no pods: the skip that comes after it starts a new
    run, and the history says so."""
    start = (Settings().seed.clock_origin_s + 100.0) % 86400.0
    pool = Pool("pool-1", min_replicas=1, max_replicas=4,
                freeze_windows=(FreezeWindow(start, start + 50.0),))
    policy, cluster, ctx, log = awaiting_confirmation(pool)
    policy.timer_autoscaler_cycle()  # t=0: the skip starts
    ctx.now = 100.0  # in the freeze window, the pods are gone
    cluster.remove("pod-a")
    cluster.remove("pod-b")
    policy.timer_autoscaler_cycle()
    ctx.now = 160.0  # after it, two pods again: the same decision as at t=0
    cluster.add("pod-c")
    cluster.add("pod-d")
    policy.timer_autoscaler_cycle()
    ctx.now = 165.0
    policy.timer_autoscaler_cycle()
    assert [(r["t"], r["data"]["current"]) for r in skips(log)] == [(0.0, 2), (160.0, 2)]


def test_a_reservation_expires_on_time_although_the_passes_before_skipped_their_scan():
    policy, cluster, ctx, log = awaiting_confirmation(Pool("pool-1", min_replicas=1, max_replicas=4))
    policy.reconcile_pods("pool-1")  # the pods are known
    slots = policy.mem.slots
    limit = ctx.settings.slots.reservation_expiry_s
    assert slots.reserve(SlotRef("pod-a", 0), 1, 0.0)
    for now in (1.0, limit / 2, limit):  # not expired yet: nothing released
        ctx.now = now
        policy.cleanup_expired_reservations("pool-1")
    assert slots.slot(SlotRef("pod-a", 0)).status is SlotStatus.RESERVED
    ctx.now = limit + 1.0
    policy.cleanup_expired_reservations("pool-1")
    assert slots.slot(SlotRef("pod-a", 0)).status is SlotStatus.IDLE
    [released] = [r for r in log.rows() if r["kind"] == "slot.released"]
    assert released["reason"] == "reservation expired (24 h)" and released["t"] == limit + 1.0


def cycles_run(policy: SeedPolicy) -> list[float]:
    """The times at which a cycle's pod sync ran (a cycle skipped whole runs none)."""
    ran: list[float] = []
    reconcile_pods = policy.reconcile_pods

    def counted(pool_id):
        ran.append(policy.ctx.now)
        return reconcile_pods(pool_id)

    policy.reconcile_pods = counted  # type: ignore[method-assign]
    return ran


def test_a_quiet_cycle_is_skipped_whole_until_a_reservation_comes_due():
    """A plan awaits confirmation in a reserved slot: nothing moves, so every cycle after the
    first two is skipped whole, yet the reservation still expires at the first cycle past
    its expiry, as it would with every cycle run."""
    policy, cluster, ctx, log = awaiting_confirmation(Pool("pool-1", min_replicas=1, max_replicas=4))
    policy.reconcile_pods("pool-1")
    assert policy.mem.slots.reserve(SlotRef("pod-a", 0), 1, 0.0)
    ran = cycles_run(policy)
    limit = ctx.settings.slots.reservation_expiry_s
    times = [5.0 * i for i in range(1, 6)] + [limit, limit + 5.0, limit + 10.0]
    for now in times:
        ctx.now = now
        policy.timer_autoscaler_cycle()
    assert ran[:1] == [5.0] and 25.0 not in ran and limit not in ran
    assert limit + 5.0 in ran  # due: the cycle runs, and its cleanup releases the slot
    [released] = [r for r in log.rows() if r["kind"] == "slot.released"]
    assert released["t"] == limit + 5.0 and released["reason"] == "reservation expired (24 h)"


def test_a_freeze_window_ends_the_skipping_of_quiet_cycles():
    """Inside its freeze window the seed deletes idle pods, so the first cycle in it runs
    although nothing it reads has moved."""
    start = (Settings().seed.clock_origin_s + 100.0) % 86400.0
    pool = Pool("pool-1", min_replicas=1, max_replicas=4,
                freeze_windows=(FreezeWindow(start, start + 50.0),))
    policy, cluster, ctx, log = awaiting_confirmation(pool)
    ran = cycles_run(policy)
    for now in (0.0, 5.0, 10.0, 15.0, 100.0):
        ctx.now = now
        policy.timer_autoscaler_cycle()
    assert 15.0 not in ran and 100.0 in ran
    deleted = [(r["t"], r["pod"]) for r in log.rows() if r["kind"] == "pod.delete"]
    assert deleted == [(100.0, "pod-a"), (100.0, "pod-b")]


def idle_pool(*pods: PodInfo) -> tuple[SeedPolicy, ListedCluster, Context, History]:
    """A pool with no task, whose pods are listed as given."""
    store, cluster, log = MemoryStore(), ListedCluster(), History()
    for pod in pods:
        cluster.pods[pod.name] = pod
    for pool_id in sorted({p.pool_id for p in pods}):
        store.put_pool(Pool(pool_id, min_replicas=1, max_replicas=2))
    ctx = Context(store=store, cluster=cluster, agents=None, timer=Wakeups(), history=log,
                  rng=random.Random(0), settings=Settings())
    policy = SeedPolicy(ctx)
    policy.on_restart(ev.Restart())
    return policy, cluster, ctx, log


def deletions(log: History) -> list[tuple[float, str]]:
    return [(r["t"], r["pod"]) for r in log.rows() if r["kind"] == "pod.delete"]


def test_a_pool_without_work_is_skipped_until_an_agent_may_have_gone_offline():
    """Its health check counts the agents online, and an agent goes offline by the clock
    alone: the cycles are skipped only until then, and the pod whose agent fell silent is
    replaced at the first cycle after, as it is with every cycle run."""
    policy, cluster, ctx, log = idle_pool(PodInfo("pod-a", "pool-1", created_at=-1000.0))
    assert policy.on_agent_connected(ev.AgentConnected("agent-a", "pool-1", "pod-a")).ok  # t=0, then silent
    ran = cycles_run(policy)
    offline_after = ctx.settings.agents.offline_after_s
    times = [5.0 * i for i in range(int(offline_after / 5.0) + 2)]
    for now in times:
        ctx.now = now
        policy.timer_autoscaler_cycle()
    assert ran[:2] == [0.0, 5.0]  # the first cycle meets the pod, the second is quiet
    assert offline_after - 5.0 not in ran and offline_after in ran
    assert deletions(log) == [(offline_after, "pod-a")]


def test_an_agent_that_connects_again_ends_the_skipping_of_idle_cycles():
    """A connect may move an agent's row to another pool, whose online count then falls
    at once, not by the clock: the next cycle runs and replaces the pod."""
    policy, cluster, ctx, log = idle_pool(PodInfo("pod-a", "pool-1", created_at=-1000.0))
    policy.ctx.store.put_pool(Pool("pool-2", min_replicas=0, max_replicas=2))
    assert policy.on_agent_connected(ev.AgentConnected("agent-a", "pool-1", "pod-a")).ok
    for now in (0.0, 5.0, 10.0):
        ctx.now = now
        policy.timer_autoscaler_cycle()
    assert policy.mem.quiet_cycles["pool-1"][1:] == (pytest.approx(120.0), True)  # until the agent may age
    ctx.now = 12.0
    assert policy.on_agent_connected(ev.AgentConnected("agent-a", "pool-2", "pod-a")).ok
    ctx.now = 15.0
    policy.timer_autoscaler_cycle()
    assert deletions(log) == [(15.0, "pod-a")]


class StickyCluster(ListedCluster):
    """Deletes are accepted and the pods stay listed, as while their grace period runs."""

    def delete_pod(self, name: str, *, scale_down: bool = False) -> None:
        pass


@pytest.mark.parametrize("pool_1", ["a healthy pod", "no pod"])
def test_an_idle_cycle_is_not_skipped_while_its_check_would_clear_another_pools_restarts(pool_1):
    """The seed keeps one map of restart records for every pool, and a check that finds its
    own pool healthy clears it whole (seed-system.md §4). pool-1 is idle and healthy (its
    pod's agent is online, or it has no pod to be unhealthy); pool-2's pod has no agent, so
    its check deletes it, and each cycle pool-1's check wipes the record that would hold the
    next delete back for the backoff: a skipped pool-1 cycle must not spare it."""
    pods = [PodInfo("pod-b", "pool-2", created_at=-1000.0)]
    if pool_1 == "a healthy pod":
        pods.append(PodInfo("pod-a", "pool-1", created_at=-1000.0))
    policy, cluster, ctx, log = idle_pool(*pods)
    sticky = StickyCluster()
    sticky.pods = cluster.pods
    policy.ctx.cluster = sticky
    if pool_1 == "a healthy pod":
        assert policy.on_agent_connected(ev.AgentConnected("agent-a", "pool-1", "pod-a")).ok
    else:
        policy.ctx.store.put_pool(Pool("pool-1", min_replicas=0, max_replicas=2))
    for now in (0.0, 5.0, 10.0, 15.0, 20.0):
        ctx.now = now
        policy.timer_autoscaler_cycle()
    assert deletions(log) == [(t, "pod-b") for t in (0.0, 5.0, 10.0, 15.0, 20.0)]


def test_new_pool_bounds_end_the_skipping_of_quiet_cycles():
    """A patch of the pool's bounds (a pool-scale-down fault's, or an operator's) is a write
    to the pool row, which every quiet cycle and AutoScalePods' own decision key on: the
    next cycle scales to the new bounds, as it would with every cycle run."""
    policy, cluster, ctx, log = idle_pool(PodInfo("pod-a", "pool-1", created_at=-1000.0),
                                          PodInfo("pod-b", "pool-1", created_at=-1000.0))
    store = policy.ctx.store
    store.put_pool(Pool("pool-1", min_replicas=2, max_replicas=2))
    for pod in ("pod-a", "pod-b"):
        assert policy.on_agent_connected(ev.AgentConnected(f"agent-{pod}", "pool-1", pod)).ok
    ran = cycles_run(policy)
    for now in (0.0, 5.0, 10.0):
        ctx.now = now
        policy.timer_autoscaler_cycle()
    assert 10.0 not in ran and deletions(log) == []  # two pods at min 2: quiet
    store.put_pool(Pool("pool-1", min_replicas=1, max_replicas=2))
    ctx.now = 15.0
    policy.timer_autoscaler_cycle()
    assert 15.0 in ran and len(deletions(log)) == 1  # E3: one idle pod above the new min goes


def test_a_workspace_that_moves_pool_ends_the_skipping_of_its_old_pools_cycles():
    """A workspace row that changes pool (and no task row with it) takes its pending task's
    demand away from its old pool, whose quiet cycles must see it: the idle pod that the
    task kept goes at the next cycle (E3 idle)."""
    policy, cluster, ctx, log = idle_pool(PodInfo("pod-a", "pool-1", created_at=-1000.0))
    store = policy.ctx.store
    store.put_pool(Pool("pool-1", min_replicas=0, max_replicas=2))
    store.put_pool(Pool("pool-2", min_replicas=0, max_replicas=2))
    store.put_workspace(Workspace("ws-1", pool_id="pool-1", execution_mode=ExecutionMode.K8S))
    store.insert_task(Task(id=1, workspace_id="ws-1", task_type=TaskType.PLAN_AND_APPLY,
                           status=TaskStatus.PENDING))
    assert policy.on_agent_connected(ev.AgentConnected("agent-a", "pool-1", "pod-a")).ok
    ran = cycles_run(policy)
    for now in (0.0, 5.0, 10.0):
        ctx.now = now
        policy.timer_autoscaler_cycle()
    assert 10.0 not in ran and deletions(log) == []  # kept for the pending task: quiet
    store.put_workspace(Workspace("ws-1", pool_id="pool-2", execution_mode=ExecutionMode.K8S))
    ctx.now = 15.0
    policy.timer_autoscaler_cycle()
    assert deletions(log) == [(15.0, "pod-a")]
