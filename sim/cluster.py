"""The simulated Kubernetes cluster: nodes, pods, Deployments with their ReplicaSet and HPA.

This module only *schedules* the rules of `sim.kube` in simulated time; it never decides a
Kubernetes behaviour itself. What it adds is bookkeeping (which pod is where, what the
scheduler sees when it lists) and the history rows of what really happened (`pod.added`,
`pod.terminating`, `pod.removed`, `node`).

* Pods: created Pending on the least-loaded node the control plane sees Ready (one whose
  kubelet just died still counts until it is marked Unknown: the pod then stays Pending there),
  Running after a start-up delay (`kube.pods.StartupDelay`), then their agent starts. A delete
  marks the pod terminating at once (watchers see it, a ReplicaSet creates the replacement),
  sends SIGTERM to the agent and SIGKILL at `kube.pods.kill_deadline`; the pod object goes when
  the agent has exited. A grace-0 delete removes the object at once (`kube.pods.removed_at_once`).
  A same-name create raises `ClusterError` (the seed's same-second name collisions).
* Nodes (`kube.nodes`): a lost node freezes its pods' agents at once (`Node.ready`, the
  kubelet's side), but the control plane learns of it only when the controller marks it
  Unknown after the lease grace (`Node.unknown`): then its pods are NotReady (still Running)
  and it is tainted through the zone's eviction token bucket, re-evaluated whenever the set of
  Unknown nodes changes; its pods are evicted after the toleration and stay Terminating until
  the node heals, when they get SIGTERM and their whole grace.
* Deployments (`kube.replicasets`, `kube.hpa`): spec.replicas is set by the HPA every sync
  period and by `Cluster.scale`; the ReplicaSet creates or deletes (victims ranked with
  pod-deletion-cost) shortly after every change it watches.

The scheduler hears about pods through watch events (`PodAdded`, `PodTerminating`,
`PodRemoved`), delivered `watch_latency_s` after the change, never inside its own call.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scheduler import events as ev
from scheduler.history import Kind
from scheduler.model import PodInfo
from scheduler.ports import ClusterError
from sim.config import PoolConfig
from sim.kube import hpa, nodes, pods, replicasets

if TYPE_CHECKING:
    from sim.agents import AgentSim
    from sim.world import World

_ALNUM = string.ascii_lowercase + string.digits
SAMPLE_WINDOW_S = 15.0  # a synthetic sample ends at the HPA tick and covers this (metrics-server)


@dataclass(slots=True, eq=False)
class Pod:
    name: str
    pool: str
    owner: str  # "bare" or the Deployment's pool id
    created_at: float
    node: str = ""
    phase: str = "Pending"
    ready_since: float | None = None
    started_at: float | None = None  # status.startTime: when it first ran (kept across heals)
    terminating: bool = False
    deleted_at: float | None = None
    kill_at: float | None = None
    grace: float = 0.0  # the deletion grace stamped on the object (deletionGracePeriodSeconds)
    cost: int = 0
    agent: AgentSim | None = None
    gen: int = 0  # bumped to cancel a scheduled removal

    def info(self) -> PodInfo:
        return PodInfo(self.name, self.pool, self.phase, self.terminating, self.node,
                       self.created_at, self.cost)


@dataclass(slots=True, eq=False)
class Node:
    """Two views of one node. `ready` is the kubelet's side: false from the loss, so nothing
    on the node starts, stops or reports. `unknown` is the control plane's: true once the node
    lifecycle controller has marked Ready=Unknown (about 50 s after the last lease renewal);
    until then the API still shows the node Ready and its pods Ready, so the kube-scheduler,
    the ReplicaSet and the zone state must read `unknown`, never `ready`.

    `orphans`: agents whose pod object was force-deleted while the kubelet was gone; their
    containers stay frozen with the node and the kubelet kills them when it comes back."""

    name: str
    ready: bool = True
    unknown: bool = False
    lost_at: float | None = None
    started_at: float = 0.0
    tainted_at: float | None = None
    gen: int = 0
    pods: set[str] = field(default_factory=set)
    orphans: list[AgentSim] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Deployment:
    pool: PoolConfig
    replicas: int
    rs_hash: str
    spec: hpa.HPASpec | None
    state: hpa.HPAState = field(default_factory=hpa.HPAState)
    load: float = 0.0
    sync_due: bool = False


class ClusterSim:
    """The `Cluster` port plus the world's view of pods and nodes."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.cfg = world.cfg.cluster
        self.rng = world.rng("cluster")
        self.pods: dict[str, Pod] = {}
        self.nodes = {f"node-{i}": Node(f"node-{i}") for i in range(1, self.cfg.nodes + 1)}
        self.deployments: dict[str, Deployment] = {}
        self._listing: dict[str, list[PodInfo]] = {}
        # Bumped by every change a listing would show: a reader that saw revision r and sees
        # r again knows the pods are as it left them.
        self.revision = 0
        self._pool_revisions: dict[str, int] = {}
        self.unscheduled: list[str] = []
        # The node lifecycle controller's zone (the whole cluster is one zone): the nodes it
        # has marked Unknown, in that order (the ones not yet tainted are its taint queue),
        # the zone state it last computed, and the NoExecute token bucket.
        self._unknown: list[Node] = []
        self._zone = nodes.NORMAL
        self._limiter = nodes.TaintLimiter(self.cfg.node_timings.eviction_rate_per_s)
        self._taint_due: float | None = None  # when the armed `_taint_next` runs
        self._taint_gen = 0

    # ------------------------------------------------------------------ boot
    def start(self, *, at_once: bool = False) -> None:
        """Create the pools' Deployments. Their ReplicaSets create the first pods after the
        watch latency, or now with `at_once` (`ClusterConfig.deployments_first`)."""
        for pc in self.w.cfg.pools:
            if pc.manager != "deployment":
                continue
            replicas = pc.initial_replicas if pc.initial_replicas is not None else pc.min_replicas
            rs_hash = "".join(self.rng.choice(_ALNUM) for _ in range(9))
            dep = Deployment(pc, replicas, rs_hash, pc.hpa.spec if pc.hpa else None,
                             load=pc.hpa.load if pc.hpa else 0.0)
            self.deployments[pc.id] = dep
            if at_once:
                self._rs_sync(dep)
            else:
                self.sync_replicaset(pc.id)
            if dep.spec is not None:
                self.w.kernel.after(dep.spec.sync_period_s, self._hpa_tick, pc.id)

    # ------------------------------------------------------------------ Cluster port
    def create_pod(self, pool_id: str, name: str) -> None:
        if name in self.pods:
            raise ClusterError(f'pods "{name}" already exists')
        self._add(Pod(name, pool_id, "bare", self.w.kernel.now), "scheduler")

    def delete_pod(self, name: str, *, scale_down: bool = False) -> None:
        pod = self.pods.get(name)
        if pod is None:
            raise ClusterError(f'pods "{name}" not found')
        # A scale-down the scheduler asks for while a pool-scale-down fault holds the pool's
        # freeze window or bounds is that fault's effect (the seed deletes idle pods then); a
        # repair (an unhealthy pod replaced) in the same minutes is not.
        fault = self.w.faults.cause(("pool", pod.pool)) if scale_down else None
        self.delete(pod, None, "deleted by scheduler", fault=fault)

    def list_pods(self, pool_id: str) -> list[PodInfo]:
        cached = self._listing.get(pool_id)
        if cached is None:
            cached = [p.info() for _, p in sorted(self.pods.items()) if p.pool == pool_id]
            self._listing[pool_id] = cached
        return list(cached)

    def scale(self, pool_id: str, replicas: int) -> None:
        dep = self.deployments.get(pool_id)
        if dep is None:
            raise ClusterError(f"pool {pool_id!r} has no Deployment (manager: bare)")
        if replicas < 0:
            raise ClusterError(f"replicas must be >= 0, got {replicas}")
        dep.replicas = replicas
        self.sync_replicaset(pool_id)

    def annotate_pod(self, name: str, annotations: dict[str, str]) -> None:
        pod = self.pods.get(name)
        if pod is None:
            raise ClusterError(f'pods "{name}" not found')
        if replicasets.DELETION_COST_ANNOTATION in annotations:
            pod.cost = replicasets.deletion_cost(annotations)
            self._changed(pod)

    # ------------------------------------------------------------------ pods
    def _changed(self, pod: Pod) -> None:
        self._listing.pop(pod.pool, None)
        self.revision += 1
        self._pool_revisions[pod.pool] = self._pool_revisions.get(pod.pool, 0) + 1

    def revision_of(self, pool_id: str) -> int:
        """The revision of one pool's listing (see `revision`)."""
        return self._pool_revisions.get(pool_id, 0)

    def _add(self, pod: Pod, cause: str) -> None:
        self.pods[pod.name] = pod
        self._place(pod)
        self._changed(pod)
        self.w.record(Kind.POD_ADDED, pod=pod.name,
                      data={"node": pod.node or None, "pool": pod.pool, "cause": cause})
        self.w.notify(ev.PodAdded(pod.name, pod.pool, pod.node))
        if pod.node:
            self._schedule_start(pod)

    def _place(self, pod: Pod) -> None:
        """The kube-scheduler: the least-loaded node without the `unreachable:NoSchedule`
        taint, which upstream adds when the node goes Unknown. A node whose kubelet died but
        is not Unknown yet still takes pods; they stay Pending there (`_started`)."""
        ready = [n for _, n in sorted(self.nodes.items()) if not n.unknown]
        if not ready:
            self.unscheduled.append(pod.name)
            return
        node = min(ready, key=lambda n: len(n.pods))
        node.pods.add(pod.name)
        pod.node = node.name

    def _schedule_start(self, pod: Pod) -> None:
        self.w.kernel.after(self.cfg.pod_startup.sample(self.rng), self._started, pod, pod.gen)

    def _started(self, pod: Pod, gen: int) -> None:
        if (pod.gen != gen or pod.terminating or pod.phase != "Pending"
                or self.pods.get(pod.name) is not pod):
            return  # one start per pod: a heal may have scheduled another one meanwhile
        if not self.nodes[pod.node].ready:
            return  # the kubelet is gone; the container starts when the node heals
        pod.phase, pod.ready_since = "Running", self.w.kernel.now
        pod.started_at = self.w.kernel.now
        self._changed(pod)
        pod.agent = self.w.agents.start(pod)

    def delete(self, pod: Pod, grace: float | None, cause: str, *, fault: int | None = None) -> None:
        """A DELETE of the pod with DeleteOptions.gracePeriodSeconds = `grace` (None: the
        pod's own terminationGracePeriodSeconds). Grace 0 removes the object at once, even
        from a lost node (the API server does not wait for the kubelet); any other grace
        leaves it Terminating until the kubelet has stopped the container. `fault`: the seq
        of the `fault` row this deletion is the effect of, recorded as `data.fault`."""
        now = self.w.kernel.now
        if pod.terminating:
            if grace is not None and pods.removed_at_once(grace):
                self._remove(pod, cause)  # force delete of a Terminating pod
                return
            if grace is not None and pod.kill_at is not None and pod.deleted_at is not None:
                new = pods.shorten_grace(pod.kill_at, now, grace, deleted_at=pod.deleted_at)
                if new < pod.kill_at:
                    pod.kill_at = new
                    past = pods.grace_already_over(pod.deleted_at, now, grace)
                    pod.grace = new - (now if past else pod.deleted_at)
                    self._arm_kill(pod)
            return
        g = pods.effective_grace(grace, self.cfg.grace_s, scheduled=bool(pod.node),
                                 phase=pod.phase)
        pod.terminating, pod.deleted_at, pod.grace = True, now, g
        pod.kill_at = pods.kill_deadline(now, g)
        self._changed(pod)
        data = {"node": pod.node or None, "pool": pod.pool, "cause": cause, "grace_s": g}
        if fault is not None:
            data["fault"] = fault
        self.w.record(Kind.POD_TERMINATING, pod=pod.name, data=data)
        self.w.notify(ev.PodTerminating(pod.name))
        if pod.owner != "bare":
            self.sync_replicaset(pod.owner)
        if pods.removed_at_once(g):
            self._remove(pod, cause)
            return
        if not self.nodes[pod.node].ready:
            return  # nobody runs the kubelet: Terminating until the node heals
        self._terminate(pod, cause)

    def _terminate(self, pod: Pod, cause: str) -> None:
        """The kubelet's side: SIGTERM now, SIGKILL at the deadline."""
        now = self.w.kernel.now
        if pod.agent is None or pod.kill_at is None or pod.kill_at <= now:
            self._remove(pod, cause)
            return
        self._arm_kill(pod)
        pod.agent.sigterm()

    def _arm_kill(self, pod: Pod) -> None:
        pod.gen += 1
        self.w.kernel.at(pod.kill_at, self._kill, pod, pod.gen)

    def _kill(self, pod: Pod, gen: int) -> None:
        if pod.gen == gen and self.pods.get(pod.name) is pod and self.nodes[pod.node].ready:
            self._remove(pod, "SIGKILL at the end of the grace period")

    def agent_exited(self, pod: Pod) -> None:
        """The agent process ended after SIGTERM: the containers are gone, so is the pod."""
        if self.pods.get(pod.name) is pod:
            self._remove(pod, "agent exited after SIGTERM")

    def _remove(self, pod: Pod, cause: str) -> None:
        """The pod object goes. Its container goes with it only if the kubelet is alive: a
        pod force-deleted while its node is lost leaves its agent frozen on the node (no
        heartbeat, no report, its C&C connection silent but not closed) until the node heals
        and the kubelet, finding no pod for it, kills it (`heal_node`)."""
        if self.pods.get(pod.name) is not pod:
            return
        pod.gen += 1
        node = self.nodes.get(pod.node)
        if pod.agent is not None:
            if node is not None and not node.ready:
                node.orphans.append(pod.agent)
            else:
                pod.agent.kill("agent killed")
        del self.pods[pod.name]
        if pod.node:
            self.nodes[pod.node].pods.discard(pod.name)
        self._changed(pod)
        self.w.record(Kind.POD_REMOVED, pod=pod.name,
                      data={"node": pod.node or None, "pool": pod.pool, "cause": cause})
        self.w.notify(ev.PodRemoved(pod.name))
        if pod.owner != "bare":
            self.sync_replicaset(pod.owner)

    def alive(self, pool: str | None = None) -> list[Pod]:
        """Pods that are not terminating, by name."""
        return [p for _, p in sorted(self.pods.items())
                if not p.terminating and (pool is None or p.pool == pool)]

    # ------------------------------------------------------------------ nodes
    def lose_node(self, node: Node, heal_after: float | None) -> None:
        """The node dies: its kubelet stops at once (agents freeze, pending start-ups and
        SIGKILLs wait), but nothing changes in the API until the controller's monitor pass
        marks it Unknown, after the lease grace (`_node_unknown`)."""
        w, t = self.w, self.cfg.node_timings
        now = w.kernel.now
        node.ready, node.lost_at = False, now
        node.gen += 1
        for name in sorted(node.pods):
            pod = self.pods[name]
            pod.gen += 1  # a pending SIGKILL or start-up is frozen with the kubelet
            if pod.agent is not None:
                pod.agent.pause()
        w.record(Kind.NODE, data={"node": node.name, "condition": "Ready", "event": "lost"})
        renewed = nodes.last_renewal(now, node.started_at, t)
        w.kernel.at(nodes.unknown_at(renewed, t), self._node_unknown, node, node.gen)
        if heal_after is not None:
            w.kernel.after(heal_after, self.heal_node, node, node.gen)

    def _node_unknown(self, node: Node, gen: int) -> None:
        """The monitor pass that finds the lease too old: Ready=Unknown, so its pods are
        NotReady from now on (`_view`), it gets the NoSchedule taint (`_place`) and joins the
        zone's taint queue; the zone state is re-evaluated in the same pass."""
        if node.gen != gen:
            return
        node.unknown = True
        self._unknown.append(node)
        self.w.record(Kind.NODE, data={"node": node.name, "condition": "Unknown",
                                       "event": "unknown"})
        self._zone_pass()

    def _zone_pass(self) -> None:
        """Upstream `handleDisruption`, run on a monitor pass where the count of Unknown nodes
        may have changed (a node went Unknown, or one healed before this pass). Upstream runs
        it on every 5 s pass, but its result only depends on that count, so running it when
        the count changes gives the same taints without a periodic event. Entering full
        disruption lifts every NoExecute taint (their evictions are cancelled; the nodes wait
        in the queue again); every change of state swaps the token bucket."""
        now, t = self.w.kernel.now, self.cfg.node_timings
        state = nodes.zone_state(len(self._unknown), len(self.nodes), t)
        if state != self._zone:
            if state == nodes.FULL_DISRUPTION:
                for _, node in sorted(self.nodes.items()):
                    if node.tainted_at is not None:
                        node.tainted_at = None
                        self.w.record(Kind.NODE, data={"node": node.name, "condition": "Unknown",
                                                       "event": "untainted"})
            rate = nodes.zone_rate(state, len(self.nodes), t)
            self._limiter = nodes.swap_limiter(self._limiter, rate, now)
            self._zone = state
        self._arm_tainter()

    def _arm_tainter(self) -> None:
        """Schedule the NoExecute taint of the first queued node for when the bucket allows
        it (never while the rate is 0); re-arm only if that time changed."""
        queued = any(n.tainted_at is None for n in self._unknown)
        at = nodes.next_taint_at(self._limiter, self.w.kernel.now) if queued else math.inf
        due = None if at == math.inf else at
        if due == self._taint_due:
            return
        self._taint_gen += 1
        self._taint_due = due
        if due is not None:
            self.w.kernel.at(due, self._taint_next, self._taint_gen)

    def _taint_next(self, gen: int) -> None:
        if gen != self._taint_gen:
            return
        self._taint_due = None
        node = next((n for n in self._unknown if n.tainted_at is None), None)
        if node is None:
            return
        now = self.w.kernel.now
        self._limiter = nodes.after_taint(self._limiter, now)
        node.tainted_at = now
        self.w.record(Kind.NODE, data={"node": node.name, "condition": "Unknown",
                                       "event": "tainted"})
        evict = nodes.eviction_at(now, self.cfg.node_timings.toleration_s)
        self.w.kernel.at(evict, self._node_evict, node, node.gen, now)
        self._arm_tainter()

    def _node_evict(self, node: Node, gen: int, tainted_at: float) -> None:
        if node.gen != gen or node.tainted_at != tainted_at:
            return  # healed, or the taint was lifted
        self.w.record(Kind.NODE, data={"node": node.name, "condition": "Unknown",
                                       "event": "evicted"})
        for name in sorted(node.pods):
            pod = self.pods.get(name)
            if pod is not None and not pod.terminating:
                self.delete(pod, None, f"evicted: {nodes.UNREACHABLE_TAINT}")

    def heal_node(self, node: Node, gen: int) -> None:
        """The kubelet is back: it posts Ready at once (pods Ready again, since now if the
        controller had set them NotReady; taints gone), kills
        the containers of pods deleted meanwhile without letting them run or report, resumes
        the others, and terminates the pods that were deleted gracefully: SIGTERM now and
        SIGKILL their whole grace later (the kubelet counts the grace from when it starts the
        kill, however old the deletionTimestamp). The controller sees the zone change on its
        next monitor pass."""
        if node.gen != gen or node.ready:
            return
        w, t = self.w, self.cfg.node_timings
        now = w.kernel.now
        was_unknown = node.unknown
        node.ready, node.unknown, node.lost_at, node.tainted_at = True, False, None, None
        node.started_at = now
        node.gen += 1
        w.record(Kind.NODE, data={"node": node.name, "condition": "Ready", "event": "healed"})
        orphans, node.orphans = node.orphans, []
        for agent in orphans:
            agent.kill("killed at node heal: its pod was force-deleted while the node was lost")
        for name in sorted(node.pods):
            pod = self.pods.get(name)
            if pod is None:
                continue
            if was_unknown and pod.phase == "Running":
                # The controller set it NotReady with the node; the kubelet's Ready comes
                # with a new transition time, so the ReplicaSet now ranks it newest-ready.
                pod.ready_since = now
            if pod.agent is not None:
                pod.agent.resume()
            if pod.terminating:
                # The kubelet gives StopContainer the stamped grace as a duration from now,
                # not what is left of it since the deletionTimestamp (§3).
                pod.kill_at = pods.kill_deadline(now, pod.grace)
                self._terminate(pod, "deleted while its node was lost")
            elif pod.phase == "Pending":
                self._schedule_start(pod)
        if was_unknown:
            self._unknown.remove(node)
            self._arm_tainter()
            if nodes.zone_state(len(self._unknown), len(self.nodes), t) != self._zone:
                w.kernel.at(nodes.next_monitor_time(now, t), self._zone_pass)
        waiting, self.unscheduled = self.unscheduled, []
        for name in waiting:
            pod = self.pods.get(name)
            if pod is not None and not pod.node and not pod.terminating:
                self._place(pod)
                if pod.node:
                    self._changed(pod)
                    self._schedule_start(pod)

    # ------------------------------------------------------------------ deployments
    def sync_replicaset(self, pool_id: str) -> None:
        """Ask the ReplicaSet controller to look again, after the watch latency (coalesced)."""
        dep = self.deployments[pool_id]
        if not dep.sync_due:
            dep.sync_due = True
            self.w.kernel.after(self.cfg.watch_latency_s, self._rs_sync, dep)

    def _rs_sync(self, dep: Deployment) -> None:
        dep.sync_due = False
        now = self.w.kernel.now
        mine = [p for _, p in sorted(self.pods.items()) if p.owner == dep.pool.id]
        views = [self._view(p) for p in mine]
        create = replicasets.replicas_to_create(views, dep.replicas)
        for _ in range(create):
            suffix = "".join(self.rng.choice(_ALNUM) for _ in range(5))
            name = f"{dep.pool.id}-{dep.rs_hash}-{suffix}"
            if name not in self.pods:
                self._add(Pod(name, dep.pool.id, dep.pool.id, now), "replicaset")
        active = sum(1 for v in views if replicasets.is_active(v))
        if active > dep.replicas:
            by_name = {p.name: p for p in mine}
            # While an hpa-scale-down fault holds the HPA's metric or bounds down, a
            # scale-down is its effect: the deletions name it (`fault`), so the checker can
            # tell which tasks it hit.
            fault = self.w.faults.cause(("hpa-load", dep.pool.id), ("hpa-spec", dep.pool.id))
            for v in replicasets.victims(views, active - dep.replicas, now):
                self.delete(by_name[v.name], None, "replicaset scale-down", fault=fault)

    def _metric_view(self, p: Pod, now: float) -> hpa.PodMetricView:
        """The pod as the HPA reads it: a Running pod on a ready node has a sample ending
        now; its Ready condition went True at `ready_since` (False once its node is Unknown,
        but such a pod has no sample anyway)."""
        node = self.nodes.get(p.node)
        sampled = p.phase == "Running" and node is not None and node.ready
        return hpa.PodMetricView(
            phase=p.phase, deleting=p.terminating, start_time=p.started_at,
            ready=None if p.ready_since is None else "True",
            ready_transition=p.ready_since,
            sample_time=now if sampled else None, sample_window_s=SAMPLE_WINDOW_S,
        )

    def _view(self, p: Pod) -> replicasets.PodView:
        """The pod as the ReplicaSet controller reads it from the API: its phase as is (a pod
        on an unreachable node stays Running), Ready=False once its node is marked Unknown
        and not before (the kubelet's death alone changes nothing the API shows)."""
        node = self.nodes.get(p.node)
        unknown = node is not None and node.unknown
        return replicasets.PodView(
            name=p.name, node=p.node, phase=p.phase,
            ready=p.phase == "Running" and not unknown, ready_since=p.ready_since,
            created_at=p.created_at, deletion_cost=p.cost, terminating=p.terminating,
        )

    def _hpa_tick(self, pool_id: str) -> None:
        dep = self.deployments[pool_id]
        spec = dep.spec
        assert spec is not None
        # Upstream `groupPods` (§1.2, `hpa.pod_groups`): terminating pods are ignored, Pending
        # ones are unready, and a Running pod without a sample is missing. Samples come from
        # the kubelets, so a Running pod on a lost node has none (Unknown yet or not): the load
        # is served and sampled by the others, and `hpa.reconcile` treats the missing ones
        # conservatively. A sample is taken at the tick and covers the last
        # `SAMPLE_WINDOW_S` (metrics-server's 15 s resolution), so for CPU a pod Ready for
        # less than that within 5 min of its start is unready (its sample would include its
        # start-up).
        now = self.w.kernel.now
        active = [p for p in self.pods.values() if p.owner == pool_id and not p.terminating]
        views = [self._metric_view(p, now) for p in active]
        cpu = hpa.pod_groups(views, now, hpa.CPU)
        pods_metric = hpa.pod_groups(views, now, None)
        sampled = pods_metric.ready  # every pod with a sample serves the load
        # Two metrics, the HPA takes the larger proposal: the world's load (CPU utilization,
        # with the CPU readiness rules) and the demand the scheduler exports (a Pods metric
        # with a target of one pod per unit of demand, expressed as load against the same
        # target).
        demand = self.w.scheduler.metrics(pool_id).get("demand_pods", 0.0)
        per_pod = dep.load / sampled if sampled else 0.0
        demand_per_pod = demand * spec.target / sampled if sampled else 0.0
        d = hpa.reconcile(spec, dep.state, now, dep.replicas, [per_pod] * cpu.ready,
                          cpu.counted, unready_pods=cpu.unready,
                          more_metrics=(hpa.MetricInput((demand_per_pod,) * sampled,
                                                        pods_metric.counted,
                                                        pods_metric.unready),))
        dep.state = d.state
        if d.desired != dep.replicas:
            self.w.record(Kind.SCALE, reason="HPA rescale",
                          data={"pool": pool_id, "replicas": d.desired, "from": dep.replicas,
                                "by": "hpa"})
            dep.replicas = d.desired
            self.sync_replicaset(pool_id)
        self.w.kernel.after(spec.sync_period_s, self._hpa_tick, pool_id)
