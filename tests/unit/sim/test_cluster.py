"""Pods, nodes and Deployments in simulated time: exact times from the sim.kube rules."""

import pytest

from scheduler.history import Kind
from scheduler.ports import ClusterError
from sim.config import HPAConfig, PoolConfig, WorkspaceGroup, fixed
from sim.kube import hpa
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


@pytest.mark.parametrize("variant", ["seed", "seed-proposal", "seed-head"])
def test_the_seed_agent_exits_at_sigterm_and_the_server_sees_the_disconnect_at_once(variant):
    """The seed's agent cancels its runs and closes its socket on SIGTERM (cc_manager.go's
    WaitForShutdown): nothing is reported, the pod goes at once, and the server's disconnect
    cleanup (F8) runs then, not 30 s later at SIGKILL."""
    w = booted(config(), variant)  # the plan runs from about 34 to about 94
    w.kernel.run(80)
    [pod] = w.cluster.alive()
    agent = pod.agent
    w.cluster.delete(pod, None, "test")  # SIGTERM at 80, with 14 s of plan left
    w.kernel.run(200)
    assert rows_of(w, Kind.POD_REMOVED)[0].t == pytest.approx(80.0)
    [info] = rows_of(w, Kind.EXEC_INFO)
    assert info.t == pytest.approx(80.0) and "exited on SIGTERM" in info.reason
    assert not [e for e in rows_of(w, Kind.EXEC_OK) if e.agent == agent.agent_id]
    assert [e.t for e in rows_of(w, Kind.AGENT_DISCONNECTED)][0] == pytest.approx(80.0, abs=0.1)
    assert agent.dead and w.agent_on_sigterm == "exit"


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


def quiet_world(cfg):
    """A world whose scheduler never boots: only the cluster's controllers act."""
    w = World(cfg, "seed", 0)
    w.kernel.at(0.0, w.cluster.start)
    return w


def deployment(replicas, load=0.0, **spec_kw):
    spec = HPASpec(min_replicas=1, max_replicas=10, target=0.8, **spec_kw)
    pool = PoolConfig("dep", manager="deployment", min_replicas=1, max_replicas=10,
                      hpa=HPAConfig(spec, load=load), initial_replicas=replicas)
    return config(pools=(pool,), workload=(WorkspaceGroup(names=("ws-1",), pool="dep"),),
                  agents=replace(AGENTS, connect=fixed(1e9)))


def node_events(w):
    return [(e.t, e.data["node"], e.data["event"]) for e in rows_of(w, Kind.NODE)]


@pytest.mark.parametrize(("scale_at", "victim_on_lost_node"), [(120.0, False), (160.0, True)])
def test_a_lost_nodes_pods_look_ready_until_the_node_is_marked_unknown(scale_at,
                                                                       victim_on_lost_node):
    # Two replicas, one per node; the one on node-1 has a high deletion cost. node-1 dies at
    # 100 and is marked Unknown at 155 (last renewal 100 + 50 s, next 5 s pass). Before that
    # the API shows nothing: a scale-down spares the costly pod. After it, that pod is Ready=False
    # (still phase Running) and goes first, whatever its cost.
    w = quiet_world(deployment(2))
    w.kernel.run(100)
    [on_lost] = [p for p in w.cluster.alive("dep") if p.node == "node-1"]
    on_lost.cost = 1000
    w.cluster.lose_node(w.cluster.nodes["node-1"], None)
    w.kernel.run(scale_at)
    w.cluster.scale("dep", 1)
    w.kernel.run(scale_at + 1)
    [deleted] = [e.pod for e in rows_of(w, Kind.POD_TERMINATING)]
    assert (deleted == on_lost.name) is victim_on_lost_node
    assert on_lost.phase == "Running"


def test_pods_go_to_a_dead_node_until_it_is_marked_unknown_and_wait_there():
    # upstream adds unreachable:NoSchedule only at Unknown (155 here): a pod created at 120 may
    # land on the dead node-1 (least loaded, first by name) and stays Pending until the heal;
    # a pod created at 160 avoids it.
    w = quiet_world(config(workload=(), agents=replace(AGENTS, connect=fixed(1e9))))
    w.kernel.run(100)
    node = w.cluster.nodes["node-1"]
    w.cluster.lose_node(node, 100.0)
    w.kernel.run(120)
    w.cluster.create_pod("pool-1", "early")
    w.kernel.run(160)
    w.cluster.create_pod("pool-1", "late")
    w.kernel.run(199)
    early, late = w.cluster.pods["early"], w.cluster.pods["late"]
    assert (early.node, early.phase) == ("node-1", "Pending")
    assert (late.node, late.phase) == ("node-2", "Running")
    w.kernel.run(210)  # healed at 200: the kubelet starts it 4 s later
    assert early.phase == "Running" and early.ready_since == pytest.approx(204.0)


def test_hpa_counts_pods_on_a_lost_node_as_missing_not_as_gone():
    # 4 replicas, 2 per node, load 3.44 = 4.3 pods' worth at 80 %: ratio 1.075, inside the
    # band. node-1 dies at 100: its 2 pods have no sample. They are "missing" (§1.2), so on a
    # scale-up they count 0 and the ratio stays 1.075: no change. Dropping them instead would
    # give 1.72 / 0.8 = 2.15 on 2 pods and a scale-up to ceil(4.3) = 5.
    w = quiet_world(deployment(4, load=3.44))
    w.kernel.run(90)
    assert sorted(p.node for p in w.cluster.alive("dep")) == ["node-1"] * 2 + ["node-2"] * 2
    w.cluster.lose_node(w.cluster.nodes["node-1"], None)
    w.kernel.run(400)
    assert w.cluster.deployments["dep"].replicas == 4


def test_hpa_scale_down_assumes_missing_pods_busy():
    # 4 replicas, load 0.8 (ratio 0.25): a scale-down to 1 at the first tick (window 0). With
    # node-1 lost at 10, its 2 pods are missing and count 100 % on a scale-down:
    # (0.4 + 0.4 + 1 + 1) / 4 / 0.8 = 0.875 -> ceil(3.5) = 4: the HPA keeps 4. Dropping them
    # would give 0.4 / 0.8 = 0.5 on 2 pods and a scale-down to 1.
    w = quiet_world(deployment(4, load=0.8, scale_down_window_s=0.0))
    w.kernel.run(10)
    w.cluster.lose_node(w.cluster.nodes["node-1"], None)
    w.kernel.run(100)
    assert w.cluster.deployments["dep"].replicas == 4
    w2 = quiet_world(deployment(4, load=0.8, scale_down_window_s=0.0))
    w2.kernel.run(100)
    assert w2.cluster.deployments["dep"].replicas == 1


def deleted_on_a_lost_node(lost_at: float, heal_after: float, deleted_at: float):
    """The only pod's node is lost at `lost_at` and the pod gracefully deleted at
    `deleted_at`: the world, the pod and its agent."""
    w = booted(config())
    w.kernel.run(lost_at)
    [pod] = w.cluster.alive()
    agent = pod.agent
    w.cluster.lose_node(w.cluster.nodes[pod.node], heal_after)
    w.kernel.run(deleted_at)
    w.cluster.delete(pod, None, "test")
    return w, pod, agent


def test_force_delete_on_a_lost_node_removes_the_pod_and_the_kubelet_kills_it_at_heal():
    # The plan runs from 34 to 94 on the only pod. Its node dies at 50 and heals at 150. A
    # graceful delete at 55 leaves it Terminating (no kubelet); a force delete at 60 removes
    # the object at once and frees the name. The container is not stopped by that: its agent
    # stays frozen, reports nothing, and is killed by the kubelet when the node comes back.
    w, pod, agent = deleted_on_a_lost_node(lost_at=50.0, heal_after=100.0, deleted_at=55.0)
    w.kernel.run(60)
    assert w.cluster.pods.get(pod.name) is pod and pod.terminating
    w.cluster.delete(pod, 0.0, "test (force)")
    [removed] = [e for e in rows_of(w, Kind.POD_REMOVED) if e.pod == pod.name]
    assert removed.t == 60.0 and pod.name not in w.cluster.pods
    w.cluster.create_pod(pod.pool, pod.name)  # the name is free
    w.kernel.run(149)
    assert agent.paused and not agent.dead
    assert [e for e in w.history.events if e.agent == agent.agent_id
            and e.kind in (Kind.EXEC_OK, Kind.EXEC_INFO, Kind.EXEC_FAIL)] == []
    w.kernel.run(300)
    runs = [e for e in w.history.events if e.agent == agent.agent_id and e.t > 100]
    assert agent.dead
    assert [(e.t, e.kind, e.reason) for e in runs if e.kind.value.startswith("exec")] == [
        (150.0, Kind.EXEC_INFO,
         "killed at node heal: its pod was force-deleted while the node was lost")]


def test_a_first_force_delete_on_a_lost_node_removes_the_pod_at_once():
    w = booted(config())
    w.kernel.run(50)
    [pod] = w.cluster.alive()
    w.cluster.lose_node(w.cluster.nodes[pod.node], None)
    w.kernel.run(60)
    w.cluster.delete(pod, 0.0, "pod-kill (forced)")
    assert pod.name not in w.cluster.pods
    assert pod.agent is not None and pod.agent.paused and not pod.agent.dead


def test_zone_counts_only_unknown_nodes_and_is_re_evaluated_when_a_node_heals():
    # Two nodes. node-1 dies at 100 (Unknown at 155), node-2 at 140 (Unknown at 195). At 155
    # only node-1 is Unknown: 1 of 2, normal zone, tainted at once. At 195 no node is Ready:
    # full disruption, tainting stops and node-1's taint is lifted (its eviction is cancelled).
    # node-2 heals at 300; the pass at 305 sees a normal zone again and swaps the bucket back
    # to 0.1/s, drained, so node-1 is tainted 10 s later and evicted 300 s after that.
    w = booted(config(workload=()))
    w.kernel.run(100)
    w.cluster.lose_node(w.cluster.nodes["node-1"], None)
    w.kernel.run(140)
    w.cluster.lose_node(w.cluster.nodes["node-2"], 160.0)
    w.kernel.run(1000)
    assert node_events(w) == [
        (100.0, "node-1", "lost"), (140.0, "node-2", "lost"),
        (155.0, "node-1", "unknown"), (155.0, "node-1", "tainted"),
        (195.0, "node-2", "unknown"), (195.0, "node-1", "untainted"),
        (300.0, "node-2", "healed"),
        (315.0, "node-1", "tainted"), (615.0, "node-1", "evicted"),
    ]


def test_lifted_taints_come_back_in_queue_order_after_full_disruption():
    # Three nodes. node-1 and node-2 die at 100 (Unknown at 155: tainted at 155 and 165, one
    # token per 10 s); node-3 dies at 120 (Unknown at 175: full disruption, both taints lifted)
    # and heals at 200. The pass at 205 sees a normal zone: node-1 and node-2 are tainted again
    # from a drained bucket, 10 s apart, and evicted 300 s after their new taints.
    w = booted(config(workload=(), cluster=replace(config().cluster, nodes=3)))
    w.kernel.run(100)
    w.cluster.lose_node(w.cluster.nodes["node-1"], None)
    w.cluster.lose_node(w.cluster.nodes["node-2"], None)
    w.kernel.run(120)
    w.cluster.lose_node(w.cluster.nodes["node-3"], 80.0)
    w.kernel.run(1000)
    assert [e for e in node_events(w) if e[2] != "lost"] == [
        (155.0, "node-1", "unknown"), (155.0, "node-2", "unknown"),
        (155.0, "node-1", "tainted"), (165.0, "node-2", "tainted"),
        (175.0, "node-3", "unknown"),
        (175.0, "node-1", "untainted"), (175.0, "node-2", "untainted"),
        (200.0, "node-3", "healed"),
        (215.0, "node-1", "tainted"), (225.0, "node-2", "tainted"),
        (515.0, "node-1", "evicted"), (525.0, "node-2", "evicted"),
    ]


def test_a_pod_placed_on_a_dead_node_starts_once_when_the_node_heals_before_its_start_up():
    # Found by review: the pod kept its own start-up event and the heal scheduled another;
    # both started an agent, and the first one leaked.
    w = quiet_world(config(workload=(), agents=replace(AGENTS, connect=fixed(1e9))))
    w.kernel.run(100)
    w.cluster.lose_node(w.cluster.nodes["node-1"], 22.0)  # heals at 122
    w.kernel.run(120)
    w.cluster.create_pod("pool-1", "early")  # lands on the dead node-1, starts up at 124
    w.kernel.run(200)
    early = w.cluster.pods["early"]
    assert (early.node, early.phase) == ("node-1", "Running")
    assert [a for a in w.agents.by_id.values() if a.pod is early] == [early.agent]


@pytest.mark.parametrize("heal_after,fresh", [(200.0, True), (30.0, False)])
def test_pods_of_a_node_that_went_unknown_are_ready_again_from_its_heal(heal_after, fresh):
    """The controller sets a lost node's pods NotReady when it marks the node Unknown; the
    kubelet's Ready at heal is a new transition, so the ReplicaSet ranks those pods
    newest-ready (upstream podReadyTime). A node back before it went Unknown changed nothing."""
    w = booted(config(workload=()))
    w.kernel.run(100)
    [pod] = w.cluster.alive()
    first = pod.ready_since
    node = w.cluster.nodes[pod.node]
    w.cluster.lose_node(node, heal_after)  # Unknown at 155
    w.kernel.run(100 + heal_after + 1)
    assert node.ready
    assert w.cluster._view(pod).ready_since == (100 + heal_after if fresh else first)


def test_a_pool_revision_moves_with_that_pools_listing_only():
    w = booted(config(workload=()))
    w.kernel.run(1)
    other = w.cluster.revision_of("pool-9")
    before = w.cluster.revision_of("pool-1")
    w.cluster.create_pod("pool-1", "p")
    assert w.cluster.revision_of("pool-1") > before and w.cluster.revision_of("pool-9") == other
    before = w.cluster.revision_of("pool-1")
    w.cluster.delete_pod("p")
    assert w.cluster.revision_of("pool-1") > before


def test_a_pod_deleted_while_its_node_was_lost_gets_its_whole_grace_when_the_node_heals():
    # The kubelet hands the grace period to StopContainer as a duration, counted from when it
    # starts the kill, not from the deletionTimestamp: a pod evicted (or deleted) while its
    # node was lost gets SIGTERM and its full 30 s when the node comes back. The plan runs
    # from 34 to 94; the node dies at 80 (14 s of plan left) and heals at 180; the delete at
    # 85 set a deadline of 115, long past by then. SIGTERM at 180: the plan ends at 194 < 210.
    w, pod, agent = deleted_on_a_lost_node(lost_at=80.0, heal_after=100.0, deleted_at=85.0)
    w.kernel.run(300)
    [removed] = [e for e in rows_of(w, Kind.POD_REMOVED) if e.pod == pod.name]
    assert removed.t == pytest.approx(194.0)
    assert [e.kind for e in w.history.events if e.agent == agent.agent_id
            and e.kind in (Kind.EXEC_OK, Kind.EXEC_INFO)] == [Kind.EXEC_OK]


def test_hpa_drops_the_cpu_sample_of_a_pod_ready_for_less_than_one_sample_window():
    # One replica at 160 % of an 80 % target (ratio 2). The pod is created at 0.05 (the
    # cluster's start) and is Running and Ready at 4.05 (a fixed 4 s start-up); the tick at
    # 15.05 takes a sample ending then, before 4.05 + 15, inside the 5 min CPU initialization
    # period: the pod is unready for CPU (§1.2). With no CPU sample and the demand metric (0)
    # asking for a scale-down, the HPA does not scale (before, it doubled at 15.05); at
    # 30.05 the sample counts and it doubles.
    w = quiet_world(deployment(1, load=1.6))
    w.kernel.run(30)
    assert w.cluster.deployments["dep"].replicas == 1
    w.kernel.run(31)
    assert w.cluster.deployments["dep"].replicas == 2


def test_hpa_cpu_readiness_applies_to_the_load_metric_only():
    # The same pod, just Ready: unready for CPU, but a ready sample for the Pods metric.
    w = quiet_world(deployment(1, load=1.6))
    w.kernel.run(10)
    [pod] = w.cluster.alive("dep")
    view = w.cluster._metric_view(pod, 10.0)
    assert view.start_time == view.ready_transition == pytest.approx(4.05)
    assert view.sample_time == 10.0
    assert hpa.pod_group(view, 10.0, hpa.CPU) == hpa.UNREADY
    assert hpa.pod_group(view, 10.0, None) == hpa.READY
