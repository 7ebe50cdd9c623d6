"""`reserved-holder` is the pod that holds the scheduler's reservation for a task waiting in
apply_pending, as the history records it (`slot.reserved` / `slot.released`), not the pod
whose agent planned the task: under the seed the reserved slot is chosen apart from the
agent (F10), and kills used to hit a pod that held no reservation for the task. The plan pod
stands in only for a task that holds no reservation (never recorded, or released)."""

from __future__ import annotations

import pytest

from sim.world import World
from unstuck.scenario import load


def kills(scheduler: str, seed: int) -> list[tuple[str, set[str], bool, str | None]]:
    """Each reserved-holder kill: (pod killed, pods holding the task's reservation then,
    whether the task ever had one, the pod whose agent planned it)."""
    cfg = load("scenarios/pod-kill-reserved-slot.yaml").world()
    w = World(cfg, scheduler, seed)
    planned: dict[int, str] = {}
    rows = w.run()
    held: dict[tuple[str, int | None], int] = {}
    ever: set[int] = set()
    out = []
    for r in rows:
        key = (r["pod"], r["slot"])
        if r["kind"] == "slot.reserved":
            held[key] = r["task"]
            ever.add(r["task"])
        elif r["kind"] == "slot.assigned" or (r["kind"] == "slot.released"
                                             and held.get(key) == r["task"]):
            held.pop(key, None)
        elif r["kind"] == "exec.ok" and r["data"].get("has_changes"):
            planned[r["task"]] = r["pod"]
        elif r["kind"] == "fault" and r["data"]["target"] == "reserved-holder":
            holders = {p for (p, _), t in held.items() if t == r["task"]}
            out.append((r["pod"], holders, r["task"] in ever, planned.get(r["task"])))
    return out


@pytest.mark.parametrize("scheduler", ["seed", "seed-head", "reference"])
def test_a_reserved_holder_kill_hits_the_pod_holding_the_reservation(scheduler):
    hits = [k for seed in range(10) for k in kills(scheduler, seed)]
    assert hits
    for pod, holders, _, plan_pod in hits:
        if holders:
            assert pod in holders, (pod, holders)
        else:  # it holds none: the pod that planned the task (its workdir)
            assert pod == plan_pod
    assert any(holders for _, holders, _, _ in hits)
    if scheduler == "seed-head":  # G1 released it on the completion notice: the plan's pod
        assert any(ever and not holders for _, holders, ever, _ in hits)
    if scheduler == "seed":  # F10: some reservations sit on another pod than the plan's
        assert any(holders and plan_pod not in holders for _, holders, _, plan_pod in hits)
