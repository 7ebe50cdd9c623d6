"""A scenario's `time_scale` and `cluster.deployments_first`: the simulation of a live run on
unstuck's local recipe (docs/conformance.md), which runs every clock ten times fast and
starts the scheduler beside an agent Deployment that is already there."""

from __future__ import annotations

import yaml

from scheduler.settings import Settings
from sim.config import compressed
from sim.world import World
from unstuck import scenario as scenarios

LIVE = """\
name: live
duration_s: 60
drain_s: 30
time_scale: 0.1
bounds: {apply_pending_s: 30}
agents: {connect_s: 8, plan_s: 2, apply_s: 2, has_changes: 1.0}
users: {confirm_s: 3}
pools:
  - {id: pool-1, manager: deployment, min_replicas: 2, max_replicas: 10, hpa: {target: 0.7}}
workload:
  - {count: 1, at: [0.7]}
faults:
  - {type: pod-kill, at: 1.25, retry_s: 0.5, target: reserved-holder, mode: forced}
"""


def load(tmp_path, text: str, **changes) -> scenarios.Scenario:
    data = {**yaml.safe_load(text), **changes}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return scenarios.load(path)


def test_kubernetes_and_protocol_clocks_scale_and_the_run_itself_does_not(tmp_path):
    real, fast = load(tmp_path, LIVE, time_scale=1).world(), load(tmp_path, LIVE).world()
    assert (fast.time_scale, real.time_scale) == (0.1, 1.0)
    # Kubernetes: node lifecycle, pod start-up and grace, the HPA's sync and window.
    assert fast.cluster.node_timings.grace_s == real.cluster.node_timings.grace_s / 10 == 5.0
    assert fast.cluster.node_timings.toleration_s == 30.0
    assert fast.cluster.grace_s == 3.0 and fast.cluster.pod_startup.median_s == real.cluster.pod_startup.median_s / 10
    (pool,) = fast.pools
    assert (pool.hpa.spec.sync_period_s, pool.hpa.spec.scale_down_window_s) == (1.5, 30.0)
    # The agents' protocol: heartbeats and reconnects.
    assert (fast.agents.heartbeat_s, fast.agents.reconnect_base_s) == (1.0, 0.2)
    # What the file writes of the run stays as written.
    assert (fast.agents.connect, fast.agents.plan, fast.users.confirm) == (
        real.agents.connect, real.agents.plan, real.users.confirm)
    assert (fast.duration_s, fast.drain_s, fast.bound_s, fast.faults, fast.workload) == (
        real.duration_s, real.drain_s, real.bound_s, real.faults, real.workload)
    assert compressed(real, 1.0) is real


def test_the_scheduler_runs_its_settings_at_the_same_scale(tmp_path):
    fast = World(load(tmp_path, LIVE).world(), "seed", 0).scheduler.ctx.settings
    real = Settings()
    assert fast.loops.reconcile_period_s == real.loops.reconcile_period_s * 0.1 == 0.5
    assert fast.retries.no_free_slot_s == real.retries.no_free_slot_s * 0.1
    assert fast.seed.clock_origin_s == real.seed.clock_origin_s  # a calendar anchor, not a duration
    assert World(load(tmp_path, LIVE, time_scale=1).world(), "seed", 0).scheduler.ctx.settings == real


def pods_created(rows) -> list[tuple[str, str]]:
    return [(r["pod"], r["data"].get("cause")) for r in rows if r["kind"] == "pod.create"]


def test_deployments_first_lets_the_seeds_first_look_find_their_pods(tmp_path):
    # By default the cluster starts with the scheduler: the seed's first pass finds no pod and
    # creates a bare one of its own, beside the Deployment's, which a live run never shows.
    # With the Deployment applied first, as live, it finds the Deployment's pods.
    default = World(load(tmp_path, LIVE).world(), "seed", 0).run()
    assert [cause for _, cause in pods_created(default)] == ["ensure min_replicas"]
    first = load(tmp_path, LIVE, cluster={"deployments_first": True})
    rows = World(first.world(), "seed", 0).run()
    assert pods_created(rows) == []
    added = [r for r in rows if r["kind"] == "pod.added"]
    boot = next(r for r in rows if r["kind"] == "scheduler.restart")
    assert len(added) >= 2 and all(r["seq"] < boot["seq"] for r in added[:2])
    assert World(first.world(), "seed", 0).run() == rows  # deterministic all the same
