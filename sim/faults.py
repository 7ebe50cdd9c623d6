"""Faults, first-class: scheduled at a time or drawn at a rate, recorded when they take effect.

A fault at `at` looks for its target then, and again every `retry_s` for up to `within_s`
(a reserved-holder exists only while some task waits in apply_pending); one drawn at
`rate_per_h` does the same from its drawn time. A fault that found no target is counted in
`missed`, never recorded as if it happened. Each fault that happens writes one `fault` row
with the `pod`, `agent`, `task` and `data.node` it hit where known, so the checker can
attribute recovery to it.

Targets (pod-kill, node-loss, agent-disconnect):
* `random`: a pod that is not terminating (in `pool` if given), drawn with the fault RNG;
* `reserved-holder`: the pod whose agent planned a plan_and_apply task that still waits in
  apply_pending (that pod holds the task's reservation and workdir);
* `apply-runner`: the pod whose agent is running an apply.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from scheduler import events as ev
from scheduler.history import Kind, Source
from scheduler.model import FreezeWindow, TaskStatus
from sim.config import FaultSpec, WorldConfig

if TYPE_CHECKING:
    from sim.cluster import Pod
    from sim.world import World


def attempts(cfg: WorldConfig, rng: Callable[[str], random.Random]
             ) -> list[tuple[FaultSpec, float, float]]:
    """Every fault of a run as it is queued: (spec, first attempt time, deadline). A fault at
    `at` is one attempt; one at `rate_per_h` is one per time drawn from its own stream
    (`rng("fault-<index>")`), so the draws of one fault never move another's times."""
    end = cfg.duration_s
    out = []
    for i, spec in enumerate(cfg.faults):
        if spec.at is not None:
            if spec.at <= end:
                out.append((spec, spec.at, spec.at + spec.within_s))
        elif spec.rate_per_h:
            draws = rng(f"fault-{i}")
            stop = min(end, spec.end_s if spec.end_s is not None else end)
            t = spec.start_s
            while True:
                t += draws.expovariate(spec.rate_per_h / 3600.0)
                if t > stop:
                    break
                out.append((spec, t, min(t + spec.within_s, cfg.end_s)))
    return out


def at_its_time(spec: FaultSpec, t: float, deadline: float) -> FaultSpec:
    """One attempt of `spec` as a fault due at `t`, with the same deadline."""
    return dataclasses.replace(spec, at=t, rate_per_h=None, start_s=0.0, end_s=None,
                               within_s=deadline - t)


def as_scheduled(cfg: WorldConfig, rng: Callable[[str], random.Random]) -> tuple[FaultSpec, ...]:
    """The run's faults, each attempt as a fault at its own time. A world with these in
    place of `cfg.faults` queues the same attempts in the same order, so it runs the same
    history; dropping some of them leaves the others' times as they were."""
    return tuple(at_its_time(*a) for a in attempts(cfg, rng))


class Faults:
    def __init__(self, world: World) -> None:
        self.w = world
        self.rng = world.rng("faults")
        self.fired = 0
        self.missed = 0
        self.fired_types: set[str] = set()  # what a run proves something about

    def start(self) -> None:
        for spec, t, deadline in attempts(self.w.cfg, self.w.rng):
            self.w.kernel.at(t, self.attempt, spec, deadline)

    def attempt(self, spec: FaultSpec, deadline: float) -> None:
        if getattr(self, "fire_" + spec.type.replace("-", "_"))(spec):
            self.fired += 1
            self.fired_types.add(spec.type)
        elif self.w.kernel.now + spec.retry_s <= deadline:
            self.w.kernel.after(spec.retry_s, self.attempt, spec, deadline)
        else:
            self.missed += 1

    def record(self, spec: FaultSpec, reason: str, *, pod: str | None = None,
               agent: str | None = None, task: int | None = None, **data: Any) -> None:
        self.w.record(Kind.FAULT, Source.FAULT, pod=pod, agent=agent, task=task, reason=reason,
                      data={"type": spec.type, "target": spec.target, **data})

    # ------------------------------------------------------------------ targets
    def target_pod(self, spec: FaultSpec) -> tuple[Pod, int | None] | None:
        cluster = self.w.cluster
        if spec.target == "reserved-holder":
            found = []
            for task in self.w.store.list_tasks(statuses=[TaskStatus.APPLY_PENDING]):
                name = self.w.plan_pod.get(task.id)
                pod = cluster.pods.get(name) if name else None
                if pod is not None and not pod.terminating and (spec.pool in (None, pod.pool)):
                    found.append((pod, task.id))
            return self.rng.choice(found) if found else None
        if spec.target == "apply-runner":
            found = []
            for a in self.w.agents.live():
                if a.pod.terminating or spec.pool not in (None, a.pod.pool):
                    continue
                for tid, x in sorted(a.runs.items()):
                    if x.run.action == "apply":
                        found.append((a.pod, tid))
            return self.rng.choice(found) if found else None
        pods = cluster.alive(spec.pool)
        return (self.rng.choice(pods), None) if pods else None

    # ------------------------------------------------------------------ fault types
    def fire_pod_kill(self, spec: FaultSpec) -> bool:
        hit = self.target_pod(spec)
        if hit is None:
            return False
        pod, task = hit
        agent = pod.agent.agent_id if pod.agent is not None else None
        graceful = spec.mode == "graceful"
        self.record(spec, f"pod killed ({'SIGTERM, 30 s grace' if graceful else 'forced'})",
                    pod=pod.name, agent=agent, task=task, node=pod.node or None, mode=spec.mode)
        self.w.cluster.delete(pod, None if graceful else 0.0, f"pod-kill ({spec.mode})")
        return True

    def fire_node_loss(self, spec: FaultSpec) -> bool:
        cluster = self.w.cluster
        task = None
        pod_name = None
        if spec.target == "random":
            ready = [n for _, n in sorted(cluster.nodes.items()) if n.ready]
            if not ready:
                return False
            node = self.rng.choice(ready)
        else:
            hit = self.target_pod(spec)
            if hit is None or not hit[0].node or not cluster.nodes[hit[0].node].ready:
                return False
            node, task, pod_name = cluster.nodes[hit[0].node], hit[1], hit[0].name
        self.record(spec, "node lost" + (f", heals after {spec.heal_after:g} s" if spec.heal_after else ""),
                    pod=pod_name, task=task, node=node.name, heal_after=spec.heal_after,
                    pods=sorted(node.pods))
        cluster.lose_node(node, spec.heal_after)
        return True

    def fire_agent_disconnect(self, spec: FaultSpec) -> bool:
        hit = self.target_pod(spec)
        if hit is None:
            return False
        pod, task = hit
        a = pod.agent
        if a is None or not a.connected or a.dead or a.paused:
            return False
        self.record(spec, "agent C&C connection dropped", pod=pod.name, agent=a.agent_id,
                    task=task, node=pod.node or None, reconnect_after=spec.reconnect_after)
        a.drop(spec.reconnect_after)
        self.w.notify(ev.AgentDisconnected(a.agent_id))
        return True

    def fire_scheduler_restart(self, spec: FaultSpec) -> bool:
        self.record(spec, "scheduler process restarted")
        self.w.restart_scheduler()
        return True

    def fire_db_write_failure(self, spec: FaultSpec) -> bool:
        duration = spec.duration_s if spec.duration_s is not None else 60.0
        self.record(spec, f"store writes fail with p={spec.rate:g} for {duration:g} s",
                    rate=spec.rate, duration_s=duration)
        self.w.store.fail_writes(spec.rate, self.w.rng("store"))
        self.w.kernel.after(duration, self.w.store.heal)
        return True

    def fire_double_confirm(self, spec: FaultSpec) -> bool:
        waiting = [t for t in self.w.store.list_tasks(statuses=[TaskStatus.APPLY_PENDING])
                   if not t.confirmed]
        if not waiting:
            return False
        task = self.rng.choice(waiting)
        self.record(spec, f"user double-clicks Confirm ({spec.gap_s:g} s apart)", task=task.id,
                    gap_s=spec.gap_s)
        self.w.users.double_click(task.id, spec.gap_s)
        return True

    def fire_pool_scale_down(self, spec: FaultSpec) -> bool:
        store = self.w.store
        pool = store.get_pool(spec.pool or self.w.cfg.pools[0].id)
        if pool is None:
            return False
        original = pool.copy()
        origin = self.w.cfg.clock_origin_s
        now = self.w.kernel.now
        window = FreezeWindow((origin + now) % 86400.0, (origin + now + spec.freeze_s) % 86400.0)
        pool.freeze_windows = pool.freeze_windows + (window,)
        if spec.min_replicas is not None:
            pool.min_replicas = spec.min_replicas
        if spec.max_replicas is not None:
            pool.max_replicas = spec.max_replicas
        store.put_pool(pool)
        self.record(spec, f"freeze window for {spec.freeze_s:g} s (the seed deletes idle pods)",
                    pool=pool.id, freeze_s=spec.freeze_s, min_replicas=pool.min_replicas,
                    max_replicas=pool.max_replicas)
        restore_after = max(spec.freeze_s, spec.duration_s or 0.0)
        self.w.kernel.after(restore_after, store.put_pool, original)
        return True

    def fire_hpa_scale_down(self, spec: FaultSpec) -> bool:
        deps = self.w.cluster.deployments
        pool_id = spec.pool or next(iter(sorted(deps)), None)
        dep = deps.get(pool_id) if pool_id else None
        if dep is None or dep.spec is None:
            return False
        duration = spec.duration_s
        if spec.mode == "patch":
            old = dep.spec
            kw = {}
            if spec.min_replicas is not None:
                kw["min_replicas"] = spec.min_replicas
            if spec.max_replicas is not None:
                kw["max_replicas"] = spec.max_replicas
            new = dataclasses.replace(old, **kw)
            dep.spec = new
            self.record(spec, "HPA min/max patched", pool=pool_id, mode="patch",
                        min_replicas=new.min_replicas, max_replicas=new.max_replicas)
            if duration is not None:
                self.w.kernel.after(duration, setattr, dep, "spec", old)
        else:
            old_load = dep.load
            dep.load = spec.load if spec.load is not None else 0.0
            self.record(spec, f"HPA metric drops to load {dep.load:g}", pool=pool_id,
                        mode="metric", load=dep.load)
            if duration is not None:
                self.w.kernel.after(duration, setattr, dep, "load", old_load)
        return True
