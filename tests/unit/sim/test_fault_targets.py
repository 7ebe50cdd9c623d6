"""What each fault acts on, checked through the scenario file a user writes: a fault whose
option the schema accepts must act on what that option names (or be refused), and a fault that
could act must not wait or miss because it drew a target it could not act on."""

from __future__ import annotations

from sim.world import World
from unstuck.scenario import parse

HPA = {"id": "b-hpa", "manager": "deployment", "min_replicas": 1, "max_replicas": 4,
       "initial_replicas": 3, "hpa": {"target": 0.8, "load": 2.4}}


def run(data: dict, variant: str = "reference", seed: int = 0) -> list[dict]:
    base = {"duration_s": 900, "drain_s": 900, "workload": [{"count": 1, "at": [5]}]}
    return World(parse({**base, **data}, "x.yaml").world(), variant, seed).run()


def faults(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["kind"] == "fault"]


def test_an_hpa_scale_down_without_pool_acts_on_the_pool_validation_chose():
    # Validation takes the first pool with an HPA; the world took the first Deployment, and a
    # Deployment without an HPA sorting first made the fault miss in every seed.
    plain = {"id": "a-plain", "manager": "deployment", "min_replicas": 1, "max_replicas": 3,
             "initial_replicas": 2}
    rows = run({"pools": [plain, HPA], "workload": [{"count": 1, "pool": "b-hpa", "at": [5]}],
                "faults": [{"type": "hpa-scale-down", "at": 60, "load": 0.2}]})
    [fault] = faults(rows)
    assert fault["t"] == 60.0 and fault["data"]["pool"] == "b-hpa"
    scales = [r for r in rows if r["kind"] == "scale" and r["data"].get("by") == "hpa"]
    assert scales and scales[0]["data"]["pool"] == "b-hpa" and scales[0]["data"]["from"] == 3
    assert rows[-1]["data"]["faults_missed"] == 0


TWO_POOLS = {"cluster": {"nodes": 4},
             "pools": [{"id": "p1", "min_replicas": 1, "max_replicas": 1},
                       {"id": "p2", "min_replicas": 1, "max_replicas": 1}],
             "workload": [{"count": 1, "pool": "p1", "at": [5]}]}


def test_a_random_node_loss_with_a_pool_takes_a_node_of_that_pool():
    # `pool` was ignored: a Ready node of the whole cluster was drawn, often one with no pod
    # of the pool at all (or only another pool's pod).
    for seed in range(6):
        rows = run({**TWO_POOLS, "faults": [{"type": "node-loss", "at": 200, "pool": "p2",
                                             "heal_after": 300}]}, seed=seed)
        [fault] = faults(rows)
        pools = {r["pod"]: r["data"]["pool"] for r in rows if r["kind"] == "pod.added"}
        lost = fault["data"]["pods"]
        assert fault["t"] == 200.0 and "p2" in {pools[p] for p in lost}, (seed, fault)
        assert pools[fault["pod"]] == "p2" and fault["pod"] in lost


def test_a_fault_with_a_target_draws_among_the_pods_it_can_act_on():
    # Two pods on two nodes; one node is lost at 100 s, so its agent is frozen (its pod is
    # not deleted before the node goes Unknown at 155 s). An agent-disconnect at 110 s with
    # no retry (within_s 0) must take the other agent: drawing among all pods and giving up
    # on the frozen one missed it in about half the seeds, though a target existed.
    for seed in range(8):
        rows = run({"cluster": {"nodes": 2}, "agents": {"connect_s": 30},
                    "pools": [{"id": "p", "min_replicas": 2, "max_replicas": 2}],
                    "faults": [{"type": "node-loss", "at": 100},
                               {"type": "agent-disconnect", "at": 110, "within_s": 0,
                                "reconnect_after": 10}]},
                   seed=seed)
        lost, disconnect = faults(rows)
        assert disconnect["t"] == 110.0 and disconnect["data"]["type"] == "agent-disconnect"
        assert disconnect["pod"] not in lost["data"]["pods"], seed


def frozen_at(freeze_s: float, t: float) -> bool:
    """Is pool `p` in a freeze window at `t`, with a pool-scale-down of `freeze_s` at 400 s?"""
    cfg = parse({"duration_s": 900, "drain_s": 90000, "clock_origin": "23:00",
                 "pools": [{"id": "p", "min_replicas": 1, "max_replicas": 2}],
                 "workload": [{"count": 1, "pool": "p", "at": [5]}],
                 "faults": [{"type": "pool-scale-down", "at": 400, "freeze_s": freeze_s}]},
                "x.yaml").world()
    w = World(cfg, "seed", 0)
    w.kernel.at(0.0, w._boot)
    w.kernel.run(t)
    pool = w.store.get_pool("p")
    assert pool is not None
    return any(win.contains((cfg.clock_origin_s + t) % 86400.0) for win in pool.freeze_windows)


def test_a_pool_scale_down_of_a_day_or_more_freezes_the_pool_all_along():
    # The window is a time of day: 86,400 s made it [x, x), which holds no second (the fault
    # was recorded and did nothing), and 90,000 s froze one hour, then 23 hours not.
    assert frozen_at(3600, 401) and not frozen_at(3600, 4500)
    assert frozen_at(86400, 401) and frozen_at(86400, 50000) and not frozen_at(86400, 86900)
    assert frozen_at(90000, 401) and frozen_at(90000, 30000) and frozen_at(90000, 90300)
    assert not frozen_at(90000, 90500)


def test_a_graceful_pod_kill_records_the_grace_the_pod_gets():
    # The reason said "30 s grace" whatever cluster.grace_s the pods have.
    rows = run({"cluster": {"grace_s": 10},
                "faults": [{"type": "pod-kill", "at": 100, "mode": "graceful"}]})
    [fault] = faults(rows)
    [term] = [r for r in rows if r["kind"] == "pod.terminating" and r["pod"] == fault["pod"]]
    assert term["data"]["grace_s"] == 10.0
    assert fault["reason"] == "pod killed (SIGTERM, 10 s grace)"


def test_an_agent_that_reconnects_at_once_is_connected_after_the_disconnect():
    # The server hears of the dropped connection after the watch latency (0.05 s); a
    # reconnect_after shorter than that reconnected first, and the late disconnect then left
    # the server thinking a connected agent was gone.
    rows = run({"agents": {"connect_s": 30},
                "faults": [{"type": "agent-disconnect", "at": 200, "reconnect_after": 0}]})
    [fault] = faults(rows)
    seen = [(r["t"], r["kind"]) for r in rows if r["agent"] == fault["agent"]
            and r["kind"] in ("agent.connected", "agent.disconnected") and r["t"] >= 200.0]
    assert [k for _, k in seen[:2]] == ["agent.disconnected", "agent.connected"], seen
    assert seen[0][0] <= seen[1][0] <= 200.05 + 1e-9


def test_a_drawn_reconnect_lands_in_its_distribution_the_same_for_a_seed():
    # The live agent, refused for a 5 s hold-off, registers at its first retry after it (its
    # retries are 1 s apart by then): `reconnect_after: {kind: uniform, min: 5, max: 6}`.
    data = {"agents": {"connect_s": 30},
            "faults": [{"type": "agent-disconnect", "at": 200,
                        "reconnect_after": {"kind": "uniform", "min": 5, "max": 6}}]}

    def back(seed: int) -> tuple[float, float]:
        rows = run(data, seed=seed)
        [fault] = faults(rows)
        [again] = [r["t"] for r in rows if r["kind"] == "agent.connected"
                   and r["agent"] == fault["agent"] and r["t"] > 200.0]
        return fault["data"]["reconnect_after"], again

    drawn = [back(seed) for seed in range(5)]
    assert all(5.0 <= d <= 6.0 and abs(again - (200.0 + d)) < 1e-6 for d, again in drawn), drawn
    assert len({d for d, _ in drawn}) == 5 and back(3) == drawn[3]


def test_only_a_fault_with_a_target_records_one():
    # Every fault row said target "random" (FaultSpec's default), a restart's or a store
    # failure window's too, which have no target at all.
    rows = run({"faults": [{"type": "scheduler-restart", "at": 50},
                           {"type": "db-write-failure", "at": 60, "duration_s": 5},
                           {"type": "pod-kill", "at": 100, "target": "random"}]})
    data = {r["data"]["type"]: r["data"] for r in rows if r["kind"] in ("fault", "fault.end")}
    assert "target" not in data["scheduler-restart"] and "target" not in data["db-write-failure"]
    assert data["pod-kill"]["target"] == "random"


def test_a_store_outage_aimed_at_a_running_apply_waits_for_one_and_fails_its_report():
    # As the live experiment cuts the store once the agent has started the apply: aimed at a
    # state, not a time that a seed's slower plan would move before the dispatch.
    data = {"agents": {"connect_s": 30, "plan_s": 60, "apply_s": 60, "has_changes": 1.0},
            "users": {"confirm_s": 20},
            "faults": [{"type": "db-write-failure", "at": 1, "retry_s": 0.5,
                        "target": "apply-runner", "duration_s": 90}]}
    rows = run(data)
    [fault] = faults(rows)
    [invoke] = [r for r in rows if r["kind"] == "exec.invoke" and r["data"]["action"] == "apply"]
    assert invoke["t"] <= fault["t"] < invoke["t"] + 0.5
    assert fault["data"]["target"] == "apply-runner" and fault["task"] is None
    failed = [r for r in rows if r["kind"] == "store.write_failed"]
    assert failed and all(fault["t"] <= r["t"] <= fault["t"] + 90 for r in failed)
    assert [r["to_status"] for r in rows if r["kind"] == "task.transition"][-1] == "applied"
    # At its time, as before, when not aimed: the outage is over before the apply starts.
    data["faults"][0] = {"type": "db-write-failure", "at": 1, "duration_s": 90}
    [plain] = faults(run(data))
    assert plain["t"] == 1.0 and "target" not in plain["data"]


def test_a_store_outage_aimed_at_a_state_that_never_comes_misses():
    data = {"users": {"never_confirm": 1.0}, "duration_s": 300,
            "faults": [{"type": "db-write-failure", "at": 1, "within_s": 200, "target": "apply-runner"}]}
    rows = run(data)
    assert faults(rows) == [] and rows[-1]["data"]["faults_missed"] == 1
