"""`fault.end`: the end of a timed fault's effect is in the history, with the identifying
fields of its `fault` row, at its own end (docs/history.md). It is not another fault."""

from __future__ import annotations

from sim.config import FaultSpec, HPAConfig, PoolConfig
from sim.kube.hpa import HPASpec
from sim.world import World

from .worlds import config

POOLS = (PoolConfig("pool-1", min_replicas=1, max_replicas=4),
         PoolConfig("pool-2", manager="deployment", min_replicas=1, max_replicas=4,
                    hpa=HPAConfig(HPASpec(min_replicas=1, max_replicas=4), 1.6),
                    initial_replicas=2))
FAULTS = (
    FaultSpec("hpa-scale-down", at=60.0, pool="pool-2", load=0.2, duration_s=600.0),
    FaultSpec("hpa-scale-down", at=120.0, pool="pool-2", load=0.2, duration_s=600.0),
    FaultSpec("hpa-scale-down", at=130.0, pool="pool-2", mode="patch", max_replicas=3,
              duration_s=50.0),
    FaultSpec("hpa-scale-down", at=140.0, pool="pool-2", load=0.1),  # no end
    FaultSpec("db-write-failure", at=100.0, rate=1.0, duration_s=60.0),
    FaultSpec("db-write-failure", at=130.0, rate=0.5, duration_s=60.0),
    FaultSpec("pool-scale-down", at=200.0, pool="pool-1", freeze_s=600.0),
    FaultSpec("pool-scale-down", at=500.0, pool="pool-1", freeze_s=600.0, min_replicas=0,
              duration_s=700.0),
    FaultSpec("scheduler-restart", at=300.0),  # no end
    FaultSpec("db-write-failure", at=1450.0, duration_s=60.0),  # ends after the run
)


def rows():
    return World(config(pools=POOLS, faults=FAULTS, duration_s=1500.0, drain_s=0.0),
                 "reference", 0).run()


def test_each_timed_fault_ends_at_its_own_end_with_its_fault_rows_fields():
    rs = rows()
    starts = [r for r in rs if r["kind"] == "fault"]
    ends = [r for r in rs if r["kind"] == "fault.end"]
    assert len(starts) == len(FAULTS)
    assert [(r["t"], r["data"]["type"]) for r in ends] == [
        (160.0, "db-write-failure"), (180.0, "hpa-scale-down"), (190.0, "db-write-failure"),
        (660.0, "hpa-scale-down"), (720.0, "hpa-scale-down"), (800.0, "pool-scale-down"),
        (1200.0, "pool-scale-down")]
    for end, began in zip(ends, [100, 130, 130, 60, 120, 200, 500], strict=True):
        [start] = [r for r in starts if r["t"] == began and r["data"] == end["data"]]
        assert end["source"] == "fault"
        assert (end["pod"], end["agent"], end["task"]) == (start["pod"], start["agent"],
                                                             start["task"])


def test_the_reason_says_whether_others_still_hold_the_target():
    reasons = {(r["t"], r["data"]["type"]): r["reason"] for r in rows()
               if r["kind"] == "fault.end"}
    assert reasons[(160.0, "db-write-failure")] == "failing store writes over; 1 more still in force"
    assert reasons[(190.0, "db-write-failure")] == "failing store writes over"
    assert reasons[(660.0, "hpa-scale-down")] == "HPA metric drop over; 2 more still in force"
    assert reasons[(180.0, "hpa-scale-down")] == "HPA min/max patch over"
    assert reasons[(1200.0, "pool-scale-down")] == "freeze window and bounds over"
