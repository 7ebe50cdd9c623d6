"""Faults, first-class: scheduled at a time or drawn at a rate, recorded when they take effect.

A fault at `at` looks for its target then, and again every `retry_s` for up to `within_s`
(a reserved-holder exists only while some task waits in apply_pending); one drawn at
`rate_per_h` does the same from its drawn time. A fault that found no target is counted in
`missed`, never recorded as if it happened. Each fault that happens writes one `fault` row
with the `pod`, `agent`, `task` and `data.node` it hit where known, so the checker can
attribute recovery to it.

agent-partition: the target pod's agent is cut off from the scheduler, both ways, until
`heal_after` (never, without it). Unlike a node-loss its process runs on: its runs progress and
commit (the state backend stays reachable), its reports wait (ours; the seed's are dropped after
their tries), and Kubernetes sees nothing wrong. Unlike an agent-disconnect the server hears no
close; it learns of the cut only from the missing heartbeats (`sim.agents.AgentSim.cut`). Its
heal is a `fault.end` row.

Targets (pod-kill, node-loss, agent-disconnect, agent-partition):
* `random`: a pod that is not terminating (in `pool` if given), drawn with the fault RNG;
* `reserved-holder`: a pod that holds the scheduler's reservation for a task waiting in
  apply_pending, as the scheduler recorded it (`slot.reserved` rows, less the `slot.released`
  rows of that slot and task and a slot assigned to another task since;
  `Faults.reservations`), not the pod whose agent planned the task: under the seed
  variants the reserved slot is chosen apart from the agent (F10) and can be on another pod.
  Every variant records its reservations (the reference when a plan ends with changes and
  when a restart rebuilds them from the store; the seeds when their reconcile or timer
  reserves a slot). A waiting task that holds no reservation now (never
  recorded: the seeds' slot memory can lose the slot before the plan ends; or released:
  seed-head's completion notice, G1, or a slot memory lost at a restart) still depends on the
  pod whose agent planned it, which holds its workdir; that pod is its reserved-holder, the
  pod a reservation should have protected (incident 601's pod);
* `apply-runner`: the pod whose agent is running an apply.
A fault draws among the targets it can act on (a node-loss: pods on a Ready node; an
agent-disconnect: pods whose agent is connected). A random node-loss takes a Ready node, or
with `pool` the node of a random pod of that pool.

Timed faults (db-write-failure, pool-scale-down, hpa-scale-down with `duration_s`) may
overlap, with each other or with a fault of the same kind on the same target. Each lays an
override over the value it changes and takes off only its own at its own end (`Layers`); the
value in force is the composition of the active ones, and the base value comes back when the
last one ends:
* HPA metric (`mode: metric`): the lowest active load. Each fault says "the load drops to
  x"; the deepest drop in force is what the metric shows, whichever started first, so the
  value does not depend on the order in which overlapping faults began or end.
* HPA spec (`mode: patch`): the fields of the most recent active patch over the pool's own
  spec. Never a merge of several patches: one patch's min over another's max could be a spec
  the API server would reject, which validation cannot see in advance (it checks each patch
  against the pool's bounds).
* A pool's row (pool-scale-down): its own freeze windows plus every active fault's window;
  the min/max of the most recent active fault that patches them (same reason), else its own.
  A fault's window and bounds last `max(freeze_s, duration_s)`.
* Store writes (db-write-failure): the highest active failure rate, drawn from the stream of
  the window that set it.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from scheduler import events as ev
from scheduler.history import Kind, Source
from scheduler.model import FreezeWindow, TaskStatus
from scheduler.stores.failures import worst
from sim.config import Dist, FaultSpec, WorldConfig, hpa_fault_pool, names_target
from sim.kube import pods, replicasets

if TYPE_CHECKING:
    from sim.agents import AgentSim
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


_TIMING = frozenset({"at", "rate_per_h", "start_s", "end_s", "within_s", "retry_s"})
# Fields added since histories were first recorded: named in the key only when set, so that
# a field a scenario leaves out moves no draw (the attempt's key seeds its streams).
_ADDED = frozenset({"rank_first", "down_s"})


def _effect(spec: FaultSpec) -> str:
    """The fields of `spec` that say what it does, not when it is due (those differ between a
    rate-drawn fault and the same attempt written out by `at_its_time`)."""
    return ",".join(f"{f.name}={getattr(spec, f.name)!r}" for f in dataclasses.fields(spec)
                    if f.name not in _TIMING
                    and not (f.name in _ADDED and getattr(spec, f.name) == f.default))


class Layers:
    """Layered, reference-counted overrides of one value: what several timed faults of one
    kind do to one target (a Deployment's HPA metric or spec, a pool's row, the store's write
    failures) while they overlap.

    The first override saves the value it finds (the base); while overrides are active the
    value is `compose(base, active)`, `active` being their values in the order they started;
    when one ends it leaves the others' composition, and when the last ends the base comes
    back. So each fault ends at its own end and no fault restores another one's effect (a
    snapshot per fault did: the second of two overlapping metric drops "restored" the first
    one's dropped load for the rest of the run)."""

    __slots__ = ("read", "write", "compose", "base", "active", "_next")

    def __init__(self, read: Callable[[], Any], write: Callable[[Any], None],
                 compose: Callable[[Any, list[Any]], Any]) -> None:
        self.read, self.write, self.compose = read, write, compose
        self.base: Any = None
        self.active: dict[int, Any] = {}
        self._next = 0

    def push(self, value: Any) -> int:
        """Start an override; returns its key for `pop`."""
        if not self.active:
            self.base = self.read()
        key = self._next
        self._next += 1
        self.active[key] = value
        self.write(self.compose(self.base, list(self.active.values())))
        return key

    def pop(self, key: int) -> None:
        """End the override `key`: the others' composition, or the base if it was the last."""
        del self.active[key]
        self.write(self.compose(self.base, list(self.active.values())) if self.active
                   else self.base)


def lowest_load(base: float, active: list[float]) -> float:
    return min(active)


def latest_fields(base: Any, active: list[dict[str, Any]]) -> Any:
    return dataclasses.replace(base, **active[-1])


def pool_row(base: dict[str, Any], active: list[tuple[FreezeWindow, dict[str, int]]]
             ) -> dict[str, Any]:
    """A pool under pool-scale-down faults: its own freeze windows plus every active fault's
    window; the bounds of the latest active fault that patches any, over the pool's own."""
    patches = [bounds for _, bounds in active if bounds]
    return {**base, **(patches[-1] if patches else {}),
            "freeze_windows": base["freeze_windows"] + tuple(w for w, _ in active)}


def worst_window(base: tuple[float, Any], active: list[tuple[float, Any]]) -> tuple[float, Any]:
    return worst(active)


def _patched_bounds(spec: FaultSpec) -> dict[str, int]:
    """The min/max a pool-scale-down or an hpa-scale-down patch sets (the others it keeps)."""
    return {k: v for k, v in (("min_replicas", spec.min_replicas),
                              ("max_replicas", spec.max_replicas)) if v is not None}


_DAY = 86400.0


def _connected(pod: Pod) -> bool:
    """Its agent holds a C&C connection an agent-disconnect can drop."""
    a = pod.agent
    return a is not None and a.connected and not a.dead and not a.paused and not a.cut_off


def _reachable(pod: Pod) -> bool:
    """Its agent runs and is not already cut off: an agent-partition can cut it off."""
    a = pod.agent
    return a is not None and not a.dead and not a.paused and not a.cut_off


class Faults:
    def __init__(self, world: World) -> None:
        self.w = world
        self.rng = world.rng("faults")
        self.fired = 0
        self.missed = 0
        self.fired_types: set[str] = set()  # what a run proves something about
        self.layers: dict[tuple[str, str], Layers] = {}
        self.seq_of: dict[tuple[Layers, int], int] = {}  # an override in force -> its fault's seq
        self.attempt_key = ""  # the attempt being fired (`attempt`)
        self._reserved: dict[tuple[str, int | None], int] = {}  # `reservations`
        self._read = 0  # history rows read into `_reserved`

    def start(self) -> None:
        same: dict[str, int] = {}
        for spec, t, deadline in attempts(self.w.cfg, self.w.rng):
            what = f"{spec.type}@{t!r}:{_effect(spec)}"
            n = same[what] = same.get(what, -1) + 1
            self.w.kernel.at(t, self.attempt, spec, deadline, f"{what}#{n}")

    def attempt(self, spec: FaultSpec, deadline: float, key: str) -> None:
        """Fire `spec` if its target exists, else retry. `key` names the attempt by its type,
        due time and what it does (`<type>@<t>:<fields>#<n>`, n counting earlier attempts just
        like it), not by its position among the run's attempts: a shrunk run drops attempts,
        and the others must keep the draws they had (`as_scheduled`). Only attempts that are
        alike in every field share a name's stem, and those are interchangeable."""
        self.attempt_key = key
        if getattr(self, "fire_" + spec.type.replace("-", "_"))(spec):
            self.fired += 1
            self.fired_types.add(spec.type)
        elif self.w.kernel.now + spec.retry_s <= deadline:
            self.w.kernel.after(spec.retry_s, self.attempt, spec, deadline, key)
        else:
            self.missed += 1

    def record(self, spec: FaultSpec, reason: str, *, pod: str | None = None,
               agent: str | None = None, task: int | None = None, **data: Any) -> dict[str, Any]:
        """Write the `fault` row; returns its identifying fields (for the `fault.end` row)
        and its `seq` (rows are numbered in the order they are written)."""
        target = {"target": spec.target} if names_target(spec.type, spec.target) else {}
        row = {"pod": pod, "agent": agent, "task": task,
               "data": {"type": spec.type, **target, **data}}
        seq = len(self.w.history.events)
        self.w.record(Kind.FAULT, Source.FAULT, reason=reason, **row)
        return {**row, "seq": seq}

    def cause(self, *layers: tuple[str, str]) -> int | None:
        """The seq of the latest `fault` row whose override is in force on any of `layers`
        (("hpa-load", pool), ("pool", pool), ...): what a deletion there is the effect of."""
        seqs = [self.seq_of[(layer, key)] for lk in layers if (layer := self.layers.get(lk))
                for key in layer.active]
        return max(seqs) if seqs else None

    def draw(self, value: float | Dist | None, stream: str) -> float | None:
        """A fault's seconds: as written, or drawn from a stream of the attempt's own (named
        by it, as a store window's), so that a shrunk run keeps the other attempts' draws."""
        if isinstance(value, Dist):
            return value.sample(self.w.rng(f"{stream}:{self.attempt_key}"))
        return value

    # ------------------------------------------------------------------ targets
    def target_pod(self, spec: FaultSpec, usable: Callable[[Pod], bool] | None = None
                   ) -> tuple[Pod, int | None] | None:
        """A (pod, task) the fault's `target` names, drawn among those it can act on
        (`usable`: a node-loss needs the pod's node Ready, an agent-disconnect a connected
        agent). Drawing among all and giving up on an unusable draw delayed the fault by its
        retries, or missed it, while a target it could act on existed."""
        cluster = self.w.cluster
        if spec.target == "reserved-holder":
            holders: dict[int, set[str]] = {}
            for (name, _), task_id in self.reservations().items():
                holders.setdefault(task_id, set()).add(name)
            found = []
            for task in self.w.store.list_tasks(statuses=[TaskStatus.APPLY_PENDING]):
                names = sorted(holders.get(task.id, ()))
                if not names and task.id in self.w.plan_pod:
                    names = [self.w.plan_pod[task.id]]  # it holds no reservation: its plan's pod
                for name in names:
                    pod = cluster.pods.get(name)
                    if (pod is not None and not pod.terminating and spec.pool in (None, pod.pool)
                            and (usable is None or usable(pod))):
                        found.append((pod, task.id))
            return self.rng.choice(found) if found else None
        if spec.target == "apply-runner":
            found = []
            for a in self.w.agents.live():
                if (a.pod.terminating or spec.pool not in (None, a.pod.pool)
                        or (usable is not None and not usable(a.pod))):
                    continue
                for tid, x in sorted(a.runs.items()):
                    if x.run.action == "apply":
                        found.append((a.pod, tid))
            return self.rng.choice(found) if found else None
        alive = [p for p in cluster.alive(spec.pool) if usable is None or usable(p)]
        return (self.rng.choice(alive), None) if alive else None

    def reservations(self) -> dict[tuple[str, int | None], int]:
        """The slots that hold a reservation, as the scheduler recorded them: (pod, slot) ->
        task, from the `slot.reserved` rows, less the `slot.released` rows of the same slot and
        task and the slots `slot.assigned` since (read incrementally from the history)."""
        events, held = self.w.history.events, self._reserved
        reserved, assigned, released = Kind.SLOT_RESERVED, Kind.SLOT_ASSIGNED, Kind.SLOT_RELEASED
        for i in range(self._read, len(events)):
            e = events[i]
            kind = e.kind
            if kind is reserved:
                if e.pod is not None and e.task is not None:
                    held[(e.pod, e.slot)] = e.task
            elif kind is assigned or (kind is released and held.get((e.pod, e.slot)) == e.task):
                held.pop((e.pod, e.slot), None)  # type: ignore[arg-type]
        self._read = len(events)
        return held

    # ------------------------------------------------------------------ fault types
    def fire_pod_kill(self, spec: FaultSpec) -> bool:
        hit = self.target_pod(spec)
        if hit is None:
            return False
        pod, task = hit
        agent = pod.agent.agent_id if pod.agent is not None else None
        grace = None if spec.mode == "graceful" else 0.0  # None: the pod's own grace period
        # What the delete gives the pod (`ClusterSim.delete`): its grace period, 0 if unscheduled.
        g = pods.effective_grace(grace, self.w.cluster.cfg.grace_s, scheduled=bool(pod.node),
                                 phase=pod.phase)
        self.record(spec, f"pod killed ({f'SIGTERM, {g:g} s grace' if g else 'forced'})",
                    pod=pod.name, agent=agent, task=task, node=pod.node or None, mode=spec.mode)
        self.w.cluster.delete(pod, grace, f"pod-kill ({spec.mode})")
        return True

    def fire_node_loss(self, spec: FaultSpec) -> bool:
        cluster = self.w.cluster
        task = None
        pod_name = None
        if spec.target == "random" and spec.pool is None:
            ready = [n for _, n in sorted(cluster.nodes.items()) if n.ready]
            if not ready:
                return False
            node = self.rng.choice(ready)
        else:  # the node of the target pod (`random` with a pool: of a pod of that pool)
            hit = self.target_pod(spec, lambda p: bool(p.node) and cluster.nodes[p.node].ready)
            if hit is None:
                return False
            node, task, pod_name = cluster.nodes[hit[0].node], hit[1], hit[0].name
        self.record(spec, "node lost" + (f", heals after {spec.heal_after:g} s" if spec.heal_after else ""),
                    pod=pod_name, task=task, node=node.name, heal_after=spec.heal_after,
                    pods=sorted(node.pods))
        cluster.lose_node(node, spec.heal_after)
        return True

    def _on_agent(self, spec: FaultSpec, usable: Callable[[Pod], bool]
                  ) -> tuple[AgentSim, dict[str, Any]] | None:
        """The agent of the fault's target pod (`usable` takes only pods with one), and where
        the fault row says it hit: the pod, the agent, the task and the pod's node."""
        hit = self.target_pod(spec, usable)
        if hit is None:
            return None
        pod, task = hit
        a = pod.agent
        assert a is not None
        return a, {"pod": pod.name, "agent": a.agent_id, "task": task, "node": pod.node or None}

    def fire_agent_disconnect(self, spec: FaultSpec) -> bool:
        found = self._on_agent(spec, _connected)
        if found is None:
            return False
        a, where = found
        after = self.draw(spec.reconnect_after, "reconnect")
        self.record(spec, "agent C&C connection dropped", **where, reconnect_after=after)
        # The server hears of the close after the watch latency; a reconnect sooner than that
        # would be heard first, and the late close would then drop the new connection.
        self.w.notify(ev.AgentDisconnected(a.agent_id))
        latency = self.w.cfg.cluster.watch_latency_s
        a.drop(None if after is None else max(after, latency))
        return True

    def fire_agent_partition(self, spec: FaultSpec) -> bool:
        found = self._on_agent(spec, _reachable)
        if found is None:
            return False
        a, where = found
        heals = f", heals after {spec.heal_after:g} s" if spec.heal_after is not None else ""
        row = self.record(spec, "agent cut off from the scheduler" + heals, **where,
                          heal_after=spec.heal_after)
        a.cut()
        if spec.heal_after is not None:
            self.w.kernel.after(spec.heal_after, self._heal_partition, a, row)
        return True

    def _heal_partition(self, a: AgentSim, row: dict[str, Any]) -> None:
        why = "partition over; its agent had exited" if a.dead else "agent reachable again"
        self.w.record(Kind.FAULT_END, Source.FAULT, reason=why, pod=row["pod"],
                      agent=row["agent"], task=row["task"], data=dict(row["data"]))
        a.heal()

    def fire_scheduler_restart(self, spec: FaultSpec) -> bool:
        down = self.draw(spec.down_s, "restart")
        if down is None:
            self.record(spec, "scheduler process restarted")
            self.w.restart_scheduler()
            return True
        self.record(spec, f"scheduler process killed; the new one serves after {down:.3g} s",
                    down_s=down)
        self.w.restart_scheduler(down)
        return True

    def fire_db_write_failure(self, spec: FaultSpec) -> bool:
        # Aimed at a state ("once an apply runs"), it waits for it as a targeted fault does;
        # the outage still hits whatever writes fail in it (the checker's hits), not one task.
        aimed = spec.target != "random"
        if aimed and self.target_pod(spec) is None:
            return False
        duration = spec.duration_s if spec.duration_s is not None else 60.0
        row = self.record(spec, f"store writes fail with p={spec.rate:g} for {duration:g} s",
                          rate=spec.rate, duration_s=duration)
        # Each window draws from its own stream: the same one every time replayed the same
        # failing write ordinals in every window of the run.
        stream = self.w.rng("store:" + self.attempt_key)
        held = self.override("store", "writes", self._read_failures, self._write_failures,
                             worst_window, (spec.rate, stream))
        self.end_after(duration, held, row, "failing store writes")
        return True

    def _read_failures(self) -> tuple[float, Any]:
        f = self.w.store.failures
        return f.rate, f.rng

    def _write_failures(self, value: tuple[float, Any]) -> None:
        rate, rng = value
        if rate > 0.0 and rng is not None:
            self.w.store.fail_writes(rate, rng)
        else:
            self.w.store.heal()

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
        pool_id = spec.pool or self.w.cfg.pools[0].id
        if store.get_pool(pool_id) is None:
            return False
        origin = self.w.cfg.clock_origin_s
        now = self.w.kernel.now
        # A freeze window is a time of day: one of a day or more is the whole day (from now to
        # now + freeze_s it would be [x, x), no second at all), held for as long as it lasts.
        window = (FreezeWindow(0.0, _DAY) if spec.freeze_s >= _DAY else
                  FreezeWindow((origin + now) % _DAY, (origin + now + spec.freeze_s) % _DAY))
        bounds = _patched_bounds(spec)

        def read() -> dict[str, Any]:
            pool = store.get_pool(pool_id)
            assert pool is not None
            return {"freeze_windows": pool.freeze_windows, "min_replicas": pool.min_replicas,
                    "max_replicas": pool.max_replicas}

        def write(fields: dict[str, Any]) -> None:
            pool = store.get_pool(pool_id)
            assert pool is not None
            store.put_pool(dataclasses.replace(pool, **fields))

        restore_after = max(spec.freeze_s, spec.duration_s or 0.0)
        held = self.override("pool", pool_id, read, write, pool_row, (window, bounds))
        pool = store.get_pool(pool_id)
        assert pool is not None
        row = self.record(spec, f"freeze window for {spec.freeze_s:g} s (the seed deletes idle "
                          "pods)", pool=pool.id, freeze_s=spec.freeze_s,
                          min_replicas=pool.min_replicas, max_replicas=pool.max_replicas)
        self.end_after(restore_after, held, row, "freeze window" + (" and bounds" if bounds else ""))
        return True

    def fire_hpa_scale_down(self, spec: FaultSpec) -> bool:
        deps = self.w.cluster.deployments
        pool_id = hpa_fault_pool(spec.pool, (p for p, d in deps.items() if d.spec is not None))
        dep = deps.get(pool_id) if pool_id is not None else None
        if dep is None or dep.spec is None:
            return False
        assert pool_id is not None
        ranked: dict[str, Any] = {}
        if spec.rank_first is not None:
            # The pod goes first at the ReplicaSet's next scale-down, whatever cost the scheduler
            # wrote on it (as `chaos.toolkit.actions.rank_reserved_pod_first` does live). The
            # row names it in `data` only: the deletion that follows is the hit (`cause`).
            hit = self.target_pod(dataclasses.replace(spec, target=spec.rank_first, pool=pool_id))
            if hit is None:
                return False
            self.w.cluster.annotate_pod(hit[0].name, {replicasets.DELETION_COST_ANNOTATION:
                                                      replicasets.LOWEST_DELETION_COST})
            ranked = {"rank_first": spec.rank_first, "ranked": hit[0].name}
        if spec.mode == "patch":
            held = self.override("hpa-spec", pool_id, lambda: dep.spec,
                                 lambda v: setattr(dep, "spec", v), latest_fields,
                                 _patched_bounds(spec))
            new = dep.spec
            row = self.record(spec, "HPA min/max patched", pool=pool_id, mode="patch",
                              min_replicas=new.min_replicas, max_replicas=new.max_replicas, **ranked)
            self.end_after(spec.duration_s, held, row, "HPA min/max patch")
        else:
            load = spec.load if spec.load is not None else 0.0
            held = self.override("hpa-load", pool_id, lambda: dep.load,
                                 lambda v: setattr(dep, "load", v), lowest_load, load)
            row = self.record(spec, f"HPA metric drops to load {load:g}", pool=pool_id,
                              mode="metric", load=load, **ranked)
            self.end_after(spec.duration_s, held, row, "HPA metric drop")
        return True

    # ------------------------------------------------------------------ timed effects
    def override(self, what: str, target: str, read: Callable[[], Any],
                 write: Callable[[Any], None], compose: Callable[[Any, list[Any]], Any],
                 value: Any) -> tuple[Layers, int]:
        """Lay `value` over `what` of `target` (one `Layers` per pair, made on first use)."""
        layer = self.layers.get((what, target))
        if layer is None:
            layer = self.layers[(what, target)] = Layers(read, write, compose)
        return layer, layer.push(value)

    def end_after(self, duration: float | None, held: tuple[Layers, int], row: dict[str, Any],
                  effect: str) -> None:
        """Take the override off after `duration` seconds (never, if None) and record the
        `fault.end` row, with the fault row's identifying fields. Until then the override
        answers `cause` with the fault row `row`."""
        self.seq_of[held] = row["seq"]
        if duration is not None:
            self.w.kernel.after(duration, self._end, held, row, effect)

    def _end(self, held: tuple[Layers, int], row: dict[str, Any], effect: str) -> None:
        layer, key = held
        layer.pop(key)
        self.seq_of.pop(held, None)
        left = len(layer.active)
        self.w.record(Kind.FAULT_END, Source.FAULT,
                      reason=f"{effect} over" + (f"; {left} more still in force" if left else ""),
                      pod=row["pod"], agent=row["agent"], task=row["task"], data=dict(row["data"]))
