"""Faults with no target of their own (hpa-scale-down, pool-scale-down) take effect through
deletions made by others: the ReplicaSet after the HPA's rescale, the seed's autoscaler in a
freeze window. Those deletions name the fault (`pod.terminating` `data.fault`, its row's seq)
while it is in force, and only then, so the checker can tell which tasks it hit."""

from __future__ import annotations

from sim.config import FaultSpec, HPAConfig, PoolConfig, WorkspaceGroup
from sim.kube.hpa import HPASpec
from sim.world import World

from .worlds import config

DEP = PoolConfig("dep", manager="deployment", min_replicas=1, max_replicas=4,
                 hpa=HPAConfig(HPASpec(min_replicas=1, max_replicas=4), 2.4), initial_replicas=3)


def run(variant: str, faults: tuple[FaultSpec, ...], pools=(DEP,), **kw) -> list[dict]:
    return World(config(pools=pools, faults=faults, workload=(), **kw), variant, 0).run()


def test_the_hpa_rescale_is_recorded_and_its_deletions_name_the_fault_in_force():
    rows = run("reference", (FaultSpec("hpa-scale-down", at=60.0, pool="dep", load=0.2,
                                       duration_s=400.0),),
               duration_s=900.0, drain_s=0.0)
    [fault] = [r for r in rows if r["kind"] == "fault"]
    [end] = [r for r in rows if r["kind"] == "fault.end"]
    scales = [r for r in rows if r["kind"] == "scale" and r["source"] == "world"]
    assert scales and all(r["data"]["by"] == "hpa" for r in scales)
    assert scales[0]["data"]["from"] == 3 and scales[0]["data"]["replicas"] < 3
    # The 300 s stabilization window: the last high recommendation before the drop was at
    # 45 s (15 s syncs), and one exactly 300 s old no longer counts.
    assert scales[0]["t"] == 345.0
    deleted = [r for r in rows if r["kind"] == "pod.terminating"]
    assert deleted and all(r["data"]["cause"] == "replicaset scale-down" for r in deleted)
    during = [r for r in deleted if r["t"] < end["t"]]
    assert during and all(r["data"]["fault"] == fault["seq"] for r in during)
    assert all("fault" not in r["data"] for r in deleted if r["t"] > end["t"])


def test_a_scale_down_with_no_fault_in_force_names_none():
    low = PoolConfig("dep", manager="deployment", min_replicas=1, max_replicas=4,
                     hpa=HPAConfig(HPASpec(min_replicas=1, max_replicas=4), 0.2), initial_replicas=3)
    rows = run("reference", (), pools=(low,),
               duration_s=900.0, drain_s=0.0)
    deleted = [r for r in rows if r["kind"] == "pod.terminating"]
    assert deleted and all("fault" not in r["data"] for r in deleted)


def test_the_seeds_freeze_window_deletions_name_the_pool_scale_down():
    pools = (PoolConfig("pool-1", min_replicas=2, max_replicas=4),)
    faults = (FaultSpec("pool-scale-down", at=100.0, pool="pool-1", freeze_s=300.0),)
    rows = World(config(pools=pools, faults=faults, duration_s=900.0, drain_s=0.0,
                        workload=(WorkspaceGroup(names=("ws-1",), at=(5.0,)),)), "seed", 0).run()
    [fault] = [r for r in rows if r["kind"] == "fault"]
    freeze = [r for r in rows if r["kind"] == "pod.terminating" and 100.0 <= r["t"] < 400.0]
    assert freeze and all(r["data"].get("fault") == fault["seq"] for r in freeze)
    assert all("fault" not in r["data"] for r in rows
               if r["kind"] == "pod.terminating" and r["t"] >= 400.0)


def test_a_repair_in_a_pool_scale_down_window_does_not_name_it():
    # Only what the pool's size rule deletes is the fault's effect: an unhealthy pod replaced
    # in the same minutes is the scheduler's own repair (scale_down=False at the port).
    pools = (PoolConfig("pool-1", min_replicas=2, max_replicas=4),)
    faults = (FaultSpec("pool-scale-down", at=100.0, pool="pool-1", freeze_s=300.0),)
    w = World(config(pools=pools, faults=faults, duration_s=900.0, drain_s=0.0, workload=()),
              "reference", 0)

    def delete_two() -> None:
        repair, shrink = sorted(n for n, p in w.cluster.pods.items() if p.pool == "pool-1")[:2]
        w.cluster.delete_pod(repair)
        w.cluster.delete_pod(shrink, scale_down=True)

    w.kernel.at(200.0, delete_two)
    rows = w.run()
    [fault] = [r for r in rows if r["kind"] == "fault"]
    named = [r["data"].get("fault") for r in rows
             if r["kind"] == "pod.terminating" and r["t"] == 200.0]
    assert named == [None, fault["seq"]]


WS = WorkspaceGroup(names=("ws-1",), at=(5.0,), pool="dep")


def _took(rank_first: str | None, variant: str = "reference") -> tuple[list[dict], str, dict]:
    """One task waits in apply_pending (its human confirms at 400 s) on a 3-pod Deployment
    pool when the HPA's max is patched to 2 at 200 s: the rows, the pod that held the task's
    reservation, and the fault row."""
    from unstuck.checker import check

    from .worlds import UserConfig, fixed

    cfg = config(pools=(DEP,), users=UserConfig(confirm=fixed(300.0)), duration_s=900.0, drain_s=900.0,
                 workload=(WS,), faults=(FaultSpec("hpa-scale-down", at=200.0, pool="dep", mode="patch",
                                   max_replicas=2, rank_first=rank_first),))
    w = World(cfg, variant, 0)
    rows = w.run()
    [held] = {r["pod"] for r in rows if r["kind"] == "slot.reserved" and r["task"] == 1}
    [fault] = [r for r in rows if r["kind"] == "fault"]
    assert check(rows, bound_s=cfg.bound_s).ok
    return rows, held, fault


def test_rank_first_makes_the_hpa_take_the_reserved_pod_and_the_reference_still_applies():
    # The reference marks the waiting task's pod with a deletion cost, so the HPA's patch
    # takes an idle pod; rank_first overrides that mark, as the live experiment's step does
    # (hpa-scale-down-reserved-pod), and the ReplicaSet takes the reservation's pod instead.
    kept_rows, kept, plain = _took(None)
    gone = [r["pod"] for r in kept_rows if r["kind"] == "pod.terminating"]
    assert gone and kept not in gone and "ranked" not in plain["data"]

    rows, held, fault = _took("reserved-holder")
    assert (fault["data"]["rank_first"], fault["data"]["ranked"]) == ("reserved-holder", held)
    assert fault["pod"] is None and fault["task"] is None  # the deletion is the hit, not the row
    [deleted] = [r for r in rows if r["kind"] == "pod.terminating"]
    assert (deleted["pod"], deleted["data"]["fault"]) == (held, fault["seq"])
    [apply] = [r for r in rows if r["kind"] == "exec.invoke" and r["data"]["action"] == "apply"]
    assert apply["pod"] != held and apply["t"] > deleted["t"]
    assert [r for r in rows if r["kind"] == "task.transition"][-1]["to_status"] == "applied"


def test_rank_first_waits_for_a_target_as_a_targeted_fault_does():
    # No task waits in apply_pending before 90 s (30 s connect, 60 s plan): a fault at 10 s
    # retries every 5 s and fires once one does.
    faults = (FaultSpec("hpa-scale-down", at=10.0, pool="dep", mode="patch", max_replicas=2,
                        rank_first="reserved-holder"),)
    rows = World(config(pools=(DEP,), faults=faults, workload=(WS,)), "reference", 0).run()
    [fault] = [r for r in rows if r["kind"] == "fault"]
    [planned] = [r for r in rows if r["kind"] == "task.transition" and r["to_status"] == "apply_pending"]
    assert planned["t"] <= fault["t"] < planned["t"] + 5.0 + 1e-9


def test_a_fault_field_left_unset_moves_no_draw():
    # Found by this session's history comparison: adding `rank_first` to FaultSpec changed
    # every attempt's key (`<type>@<t>:<fields>#<n>`), which seeds the streams of its draws, so
    # db-write-failures and mixed-chaos-day no longer replayed as before. A field added since
    # is named in the key only when set; this list is the key's fields as histories recorded them.
    import dataclasses

    from sim.faults import _ADDED, _TIMING, _effect

    keyed = [f.name for f in dataclasses.fields(FaultSpec) if f.name not in _TIMING | _ADDED]
    assert keyed == ["type", "target", "mode", "pool", "heal_after", "duration_s", "rate",
                     "reconnect_after", "load", "min_replicas", "max_replicas", "gap_s",
                     "freeze_s"], ("a field added to FaultSpec goes in sim.faults._ADDED, or every "
                                   "recorded run's draws move")
    plain = FaultSpec("hpa-scale-down", at=5.0, mode="patch", max_replicas=1)
    assert "rank_first" not in _effect(plain)
    assert _effect(plain).startswith("type='hpa-scale-down',target='random',mode='patch'")
    assert "rank_first='reserved-holder'" in _effect(
        dataclasses.replace(plain, rank_first="reserved-holder"))
