"""The `kubernetes` Cluster port, on the official client.

- **Watch, not poll.** `start(emit)` runs one thread that lists the agent pods by label and
  then watches them from that resourceVersion: ADDED -> `PodAdded`, a deletion timestamp or
  phase Failed/Succeeded -> `PodTerminating` / `PodRemoved`, DELETED -> `PodRemoved`. When
  the watch ends or expires (410 Gone) it lists again and diffs against what it knew, so no
  change is lost across a reconnect. Events go to the engine's loop (`emit`), which hands them
  to the core one at a time.
- **Pods to slots.** Every pod matching `selector` in `namespace` belongs to the pool named by
  its `unstuck.io/pool` label (default: the service's pool); the core maps pods to slots.
- **Protection.** `annotate_pod` patches `controller.kubernetes.io/pod-deletion-cost` (the
  reference writes it on pods that hold a reservation or a running task), so a ReplicaSet
  scale-down picks idle pods first.
- **Scaling.** `scaling="scheduler"`: `scale()` patches the agent Deployment's scale
  subresource. `scaling="hpa"`: the count belongs to an HPA, and `scale()` is refused with
  `ClusterError` (the core then leaves it). `create_pod` makes a bare pod from the
  Deployment's pod template (for pools managed "bare"); `delete_pod` deletes by name.

Times: pod creation timestamps are converted to the core's clock by their age.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from scheduler import events as ev
from scheduler.model import PodInfo
from scheduler.ports import ClusterError

log = logging.getLogger("unstuck.kubernetes")
POOL_LABEL = "unstuck.io/pool"
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


def load_api_client(kubeconfig: str | None) -> client.ApiClient:
    """In-cluster service account first, then the kubeconfig (explicit path or default)."""
    if kubeconfig is None:
        try:
            config.load_incluster_config()
            return client.ApiClient()
        except config.ConfigException:
            pass
    try:
        return config.new_client_from_config(config_file=kubeconfig)
    except (config.ConfigException, OSError) as exc:
        raise ValueError(
            f"--cluster kubernetes: no cluster configuration ({exc}); run in a pod with a service "
            "account, or pass --kubeconfig PATH") from None


class KubernetesCluster:
    def __init__(self, *, namespace: str, selector: str, deployment: str | None = None,
                 scaling: str = "scheduler", kubeconfig: str | None = None,
                 now: Callable[[], float] = time.monotonic, pool_id: str = "pool-1",
                 api_client: client.ApiClient | None = None, watch_timeout_s: int = 30) -> None:
        if scaling not in ("scheduler", "hpa"):
            raise ValueError(f"scaling {scaling!r}: choose scheduler or hpa")
        self.api_client = api_client or load_api_client(kubeconfig)
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.namespace = namespace
        self.selector = selector
        self.deployment = deployment
        self.scaling = scaling
        self.pool_id = pool_id
        self._now = now
        self.watch_timeout_s = watch_timeout_s
        self.known: dict[str, str] = {}  # pod -> "alive" | "terminating"
        self.bound: set[str] = set()  # pods seen on a node (each `placed` once)
        self._placed: Callable[[str, str, str], None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch: watch.Watch | None = None

    # ---------------------------------------------------------------- Cluster port
    def _pool_of(self, pod) -> str:
        return (pod.metadata.labels or {}).get(POOL_LABEL, self.pool_id)

    def _age_s(self, ts: datetime | None) -> float:
        if ts is None:
            return 0.0
        return max(0.0, (datetime.now(timezone.utc) - ts).total_seconds())

    def list_pods(self, pool_id: str) -> list[PodInfo]:
        try:
            pods = self.core.list_namespaced_pod(self.namespace, label_selector=self.selector).items
        except ApiException as exc:
            raise ClusterError(f"list pods ({self.selector}): {exc.status} {exc.reason}") from None
        out = []
        for p in sorted(pods, key=lambda p: p.metadata.name):
            if self._pool_of(p) != pool_id:
                continue
            cost = (p.metadata.annotations or {}).get(DELETION_COST, "0")
            out.append(PodInfo(
                name=p.metadata.name, pool_id=pool_id, phase=p.status.phase or "Pending",
                terminating=p.metadata.deletion_timestamp is not None,
                node=p.spec.node_name or "", created_at=self._now() - self._age_s(p.metadata.creation_timestamp),
                deletion_cost=int(cost) if cost.lstrip("-").isdigit() else 0))
        return out

    def create_pod(self, pool_id: str, name: str) -> None:
        if self.deployment is None:
            raise ClusterError("kubernetes: no --deployment to take a pod template from")
        try:
            dep = self.apps.read_namespaced_deployment(self.deployment, self.namespace)
            template = dep.spec.template
            labels = {**(template.metadata.labels or {}), POOL_LABEL: pool_id}
            body = client.V1Pod(metadata=client.V1ObjectMeta(name=name, labels=labels),
                                spec=template.spec)
            self.core.create_namespaced_pod(self.namespace, body)
        except ApiException as exc:
            raise ClusterError(f"create pod {name}: {exc.status} {exc.reason}") from None

    def delete_pod(self, name: str, *, scale_down: bool = False) -> None:
        try:
            self.core.delete_namespaced_pod(name, self.namespace)
        except ApiException as exc:
            raise ClusterError(f"delete pod {name}: {exc.status} {exc.reason}") from None

    def scale(self, pool_id: str, replicas: int) -> None:
        if self.scaling == "hpa":
            raise ClusterError("kubernetes: the agent count is left to the HPA (--scaling hpa)")
        if self.deployment is None:
            raise ClusterError("kubernetes: no --deployment to scale")
        try:
            self.apps.patch_namespaced_deployment_scale(
                self.deployment, self.namespace, {"spec": {"replicas": replicas}})
        except ApiException as exc:
            raise ClusterError(f"scale {self.deployment} to {replicas}: {exc.status} {exc.reason}") from None

    def annotate_pod(self, name: str, annotations: dict[str, str]) -> None:
        try:
            self.core.patch_namespaced_pod(name, self.namespace, {"metadata": {"annotations": annotations}})
        except ApiException as exc:
            raise ClusterError(f"annotate pod {name}: {exc.status} {exc.reason}") from None

    # ---------------------------------------------------------------- the watch
    def start(self, emit: Callable[[ev.Event], None],
              placed: Callable[[str, str, str], None] | None = None) -> None:
        """Watch from a thread: `emit(event)` for each change the core hears of, and
        `placed(pod, pool, node)` once a pod is first seen bound to a node (the service's
        `pod.added` row, which says where the pod runs)."""
        self._placed = placed
        self._thread = threading.Thread(target=self._run, args=(emit,), name="kube-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()
        if self._thread is not None:
            self._thread.join(timeout=self.watch_timeout_s + 5)

    def _state(self, pod) -> str:
        if pod.metadata.deletion_timestamp is not None:
            return "terminating"
        if pod.status.phase in ("Failed", "Succeeded"):
            return "gone"
        return "alive"

    def _observe(self, pod, deleted: bool, emit: Callable[[ev.Event], None]) -> None:
        name = pod.metadata.name
        if pod.spec.node_name and name not in self.bound and not deleted:
            self.bound.add(name)
            if self._placed is not None:
                self._placed(name, self._pool_of(pod), pod.spec.node_name)
        before = self.known.get(name)
        state = "gone" if deleted else self._state(pod)
        if state == before:
            return
        if state == "alive":
            self.known[name] = state
            emit(ev.PodAdded(name, self._pool_of(pod), pod.spec.node_name or ""))
        elif state == "terminating":
            self.known[name] = state
            if before is None:
                emit(ev.PodAdded(name, self._pool_of(pod), pod.spec.node_name or ""))
            emit(ev.PodTerminating(name))
        else:
            self.known.pop(name, None)
            self.bound.discard(name)
            if before is not None:
                emit(ev.PodRemoved(name))

    def _relist(self, emit: Callable[[ev.Event], None]) -> str:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=self.selector)
        names = set()
        for p in pods.items:
            names.add(p.metadata.name)
            self._observe(p, False, emit)
        for name in [n for n in self.known if n not in names]:
            self.known.pop(name)
            self.bound.discard(name)
            emit(ev.PodRemoved(name))
        return pods.metadata.resource_version

    def _run(self, emit: Callable[[ev.Event], None]) -> None:
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._relist(emit)
                self._watch = watch.Watch()
                for event in self._watch.stream(self.core.list_namespaced_pod, self.namespace,
                                                label_selector=self.selector, resource_version=version,
                                                timeout_seconds=self.watch_timeout_s):
                    if self._stop.is_set():
                        break
                    pod = event["object"]
                    version = pod.metadata.resource_version
                    self._observe(pod, event["type"] == "DELETED", emit)
            except ApiException as exc:
                if exc.status == 410:
                    version = None  # expired: list again
                    continue
                log.warning("pod watch failed (%s %s); listing again", exc.status, exc.reason)
                version = None
                self._stop.wait(1.0)
            except Exception as exc:  # noqa: BLE001 - the watch must outlive a dropped connection
                if self._stop.is_set():
                    break
                log.warning("pod watch dropped (%s); listing again", exc)
                version = None
                self._stop.wait(1.0)
