"""A live restart of a seed variant says which slots its predecessor's memory lost, as the
simulated restart does (F5), so that the checker stops counting them as held."""

from __future__ import annotations

import signal

import pytest

from scheduler.events import HeldSlot
from scheduler.service.held_slots import HeldSlots
from scheduler.variants.seed import SLOT_MEMORY_LOST
from tests.unit.service.live import LiveRun, wait_for
from unstuck.checker import judge

Row = dict


def rows(*specs: tuple) -> list[Row]:
    return [{"kind": kind, "pod": pod, "slot": slot, "task": task}
            for kind, pod, slot, task in specs]


def test_the_ledger_keeps_what_the_rows_took_and_did_not_give_back():
    ledger = HeldSlots()
    for row in rows(("slot.assigned", "pod-1", 0, 1), ("slot.assigned", "pod-1", 1, 2),
                    ("slot.reserved", "pod-1", 0, 1), ("slot.assigned", "pod-2", 0, 3),
                    ("slot.released", "pod-1", 1, 2), ("slot.assigned", "pod-3", 0, 4),
                    ("slot.assigned", "pod-3", 1, 5), ("slot.released", "pod-3", None, None),
                    ("slot.released", None, None, None)):
        ledger.observe(row)
    assert ledger.held() == (HeldSlot("pod-1", 0, 1, "reserved"), HeldSlot("pod-2", 0, 3, "running"))


@pytest.mark.parametrize("scheduler", ["seed", "reference"])
def test_a_live_restart_releases_the_slots_only_a_seeds_memory_held(tmp_path, scheduler):
    run = LiveRun(tmp_path, scheduler, pods=("pod-1",), workspaces=("ws-1",))
    try:
        run.start_scheduler()
        run.start_agents()
        task = run.create("ws-1")
        wait_for(lambda: run.status(task) == "apply_pending", 15, what="the plan")
        # The seed marks the slot reserved at its next slot sync, after the plan's report.
        wait_for(lambda: any(r["kind"] == "slot.reserved" for r in run.history()), 15,
                 what="the slot to be reserved")
        run.signal("scheduler", signal.SIGKILL)
        run.start_scheduler()
        history = run.history()
        first, second = [r["seq"] for r in history if r["kind"] == "scheduler.restart"]
        (reserved,) = [r for r in history if r["kind"] == "slot.reserved" and r["seq"] < second]
        lost = [r for r in history if r["reason"] == SLOT_MEMORY_LOST]
        rebuilt = [r for r in history if r["kind"] == "slot.reserved" and r["seq"] > second]
        if scheduler == "seed":
            # Just before the new process's boot row, as the simulated seed writes them.
            assert [(r["kind"], r["pod"], r["slot"], r["task"], r["data"]["was"], r["seq"])
                    for r in lost] == [("slot.released", "pod-1", reserved["slot"], task,
                                        "reserved", second - 1)]
            assert rebuilt == []
        else:
            # The reference's reservation lives in the store: rebuilt, never lost.
            assert lost == []
            assert [(r["pod"], r["slot"], r["task"], r["reason"]) for r in rebuilt] == [
                ("pod-1", reserved["slot"], task, "reservation rebuilt from the store")]
        # The checker reads the same: a kill of the pod now hits the waiting task only where
        # the scheduler still holds its slot there.
        run.fault("pod-kill", pod="pod-1")
        _, metrics = judge(run.rows_with_end(bound_s=60, drain_s=0), bound_s=60, drain_s=0)
        hit = [m.task for m in metrics.recovery if m.fault_type == "pod-kill"]
        assert hit == ([] if scheduler == "seed" else [task])
    finally:
        run.stop()
