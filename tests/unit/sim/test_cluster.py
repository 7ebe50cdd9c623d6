"""Pods, nodes and Deployments in simulated time: exact times from the sim.kube rules."""

import pytest

from scheduler.history import Kind
from scheduler.ports import ClusterError
from sim.config import HPAConfig, PoolConfig, WorkspaceGroup, fixed
from sim.kube.hpa import HPASpec
from sim.world import World

from .worlds import AGENTS, booted, config, replace


def rows_of(w, kind):
    return [e for e in w.history.events if e.kind is kind]


def test_a_same_name_create_is_refused():
    w = booted(config(workload=()))
    w.kernel.run(1)
    w.cluster.create_pod("pool-1", "p")
    with pytest.raises(ClusterError, match='"p" already exists'):
        w.cluster.create_pod("pool-1", "p")


def test_pod_runs_after_start_up_and_its_agent_connects_then_heartbeats():
    w = booted(config(workload=()), "seed")
    w.kernel.run(100)
    [added] = rows_of(w, Kind.POD_ADDED)
    [conn] = rows_of(w, Kind.AGENT_CONNECTED)
    # created at 0 by the seed's EnsurePods; Running at 4 s; the agent connects 30 s later
    # (+0.05 s: the PodAdded watch event is delivered after the create, not inside it).
    assert added.t == 0.0 and conn.t == pytest.approx(34.0)
    agent = w.agents.by_id[conn.agent]
    assert agent.connected and agent.hb_gen == 1


def test_graceful_kill_lets_a_short_phase_finish_and_a_long_one_die_at_sigkill():
    w = booted(config())  # the plan runs from 34 (the agent connects) to 94
    w.kernel.run(80)
    [pod] = w.cluster.alive()
    w.cluster.delete(pod, None, "test")  # SIGTERM at 80: the plan ends at 94 < 80 + 30
    w.kernel.run(200)
    [removed] = rows_of(w, Kind.POD_REMOVED)
    assert removed.t == pytest.approx(94.0)
    assert rows_of(w, Kind.EXEC_INFO) == []
    w2 = booted(config())
    w2.kernel.run(40)
    [pod2] = w2.cluster.alive()
    w2.cluster.delete(pod2, None, "test")  # SIGTERM at 40: the plan would end at 94 > 70
    w2.kernel.run(200)
    assert rows_of(w2, Kind.POD_REMOVED)[0].t == pytest.approx(70.0)
    assert [e.reason for e in rows_of(w2, Kind.EXEC_INFO)] == ["agent killed"]


def test_node_loss_follows_the_lease_grace_taint_and_toleration_then_heals():
    w = booted(config(workload=()))
    w.kernel.run(100)
    node = w.cluster.nodes["node-1"]
    w.cluster.lose_node(node, None)
    w.kernel.run(1000)
    events = [(e.t, e.data["event"]) for e in rows_of(w, Kind.NODE)]
    # last lease renewal at 100; Unknown at the first 5 s monitor pass after 150; tainted at
    # once (one node down); evicted 300 s later. Its pods stay Terminating: nobody kills them.
    assert events == [(100.0, "lost"), (155.0, "unknown"), (155.0, "tainted"), (455.0, "evicted")]
    w.cluster.heal_node(node, node.gen)
    assert rows_of(w, Kind.NODE)[-1].data["event"] == "healed"


def test_hpa_scales_down_only_after_the_stabilization_window_and_spares_costly_pods():
    spec = HPASpec(min_replicas=1, max_replicas=4, target=0.8)
    pool = PoolConfig("dep", manager="deployment", min_replicas=1, max_replicas=4,
                      hpa=HPAConfig(spec, load=2.4), initial_replicas=3)
    cfg = config(pools=(pool,), workload=(WorkspaceGroup(names=("ws-1",), pool="dep"),),
                 agents=replace(AGENTS, connect=fixed(1e9)))
    w = World(cfg, "seed", 0)  # the scheduler stays down: only the Deployment acts
    w.kernel.at(0.0, w.cluster.start)
    w.kernel.run(60)
    pods = w.cluster.alive("dep")
    assert len([p for p in pods if p.owner == "dep"]) == 3
    keep = [p for p in pods if p.owner == "dep"][0]
    keep.cost = 1000
    w.cluster.deployments["dep"].load = 0.2
    w.kernel.run(340)
    assert w.cluster.deployments["dep"].replicas == 3  # the 300 s window still holds 3
    w.kernel.run(400)
    dep_pods = [p for p in w.cluster.alive("dep") if p.owner == "dep"]
    assert w.cluster.deployments["dep"].replicas == 1 and dep_pods == [keep]
