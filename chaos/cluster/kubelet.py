"""The process kubelet: one per node, running that node's pods as local process groups.

It owns the node's liveness as the cluster sees it: it renews the node's Lease, reports the
pods' phase, containerStatuses and Ready condition, restarts exited containers per
restartPolicy (with the crash-loop back-off), runs readiness probes, and terminates deleted
pods with SIGTERM then SIGKILL at the grace deadline before removing them. It records what
it does as upstream's kubelet does (Pulled, Created, Started, Failed, BackOff, Unhealthy,
Killing), on the pod's container (`spec.containers{name}`).

Node faults act here: `freeze()` SIGSTOPs every process and stops the kubelet (no lease
renewals, no status), `kill()` SIGKILLs them instead, and `heal()` resumes (SIGCONT) so the
node lifecycle controller sees renewals again.
"""

from __future__ import annotations

import base64
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chaos.cluster import meta, netpol, podnet, probes, processes, resources
from chaos.cluster.errors import ApiError
from chaos.cluster.events import Recorder
from chaos.cluster.registry import Registry
from chaos.cluster.selectors import field_value
from sim.kube.timescale import TimeScale

log = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
LEASE_RENEW_S = 10.0
LEASE_DURATION_S = 40
BACKOFF_START_S, BACKOFF_MAX_S = 10.0, 300.0
RUNNING, FROZEN, DEAD, STOPPED = "running", "frozen", "dead", "stopped"


@dataclass
class ContainerRun:
    spec: dict
    env: dict[str, str]
    proc: processes.Process | None = None
    restarts: int = 0
    last_exit: dict | None = None  # the `terminated` state of the previous instance
    restart_at: float | None = None
    done: bool = False  # exited and will not restart
    probe: probes.ProbeState = field(default_factory=probes.ProbeState)


@dataclass
class PodRun:
    uid: str
    namespace: str
    name: str
    dir: str
    started_at: float
    containers: dict[str, ContainerRun]
    kill_at: float | None = None
    grace: float | None = None
    net: podnet.PodNetwork | None = None  # the pod's egress (HTTP_PROXY), where policy applies


def node_object(name: str, now: float) -> dict:
    stamp = meta.timestamp(now)

    def cond(type_, status, reason, message):
        return {"type": type_, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}

    capacity = {"cpu": "2", "memory": "8Gi", "pods": "110", "ephemeral-storage": "50Gi"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", "unstuck.io/process-kubelet": "true"}},
        "spec": {},
        "status": {
            "capacity": capacity, "allocatable": dict(capacity),
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory",
                     "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure",
                     "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID",
                     "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status")],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {"architecture": "amd64", "bootID": meta.new_uid(),
                         "containerRuntimeVersion": "unstuck-process://1",
                         "kernelVersion": os.uname().release, "kubeProxyVersion": "",
                         "kubeletVersion": "v1.33.0-unstuck.local", "machineID": name,
                         "operatingSystem": "linux", "osImage": "local processes",
                         "systemUUID": meta.new_uid()},
        },
    }


class Kubelet:
    def __init__(self, node: str, registry: Registry, recorder: Recorder, scale: TimeScale,
                 workdir: str, *, tick_s: float = 0.05) -> None:
        self.node = node
        self.registry = registry
        self.store = registry.store
        self.recorder = recorder
        self.scale = scale
        self.workdir = os.path.join(workdir, node)
        self.tick_s = tick_s
        self.state = RUNNING
        self.runs: dict[str, PodRun] = {}
        self.prober = probes.Prober(scale)
        self._lock = threading.RLock()
        self._next_lease = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def register(self) -> None:
        now = time.time()
        if self.store.get(resources.NODES, "", self.node) is None:
            self.registry.create(resources.NODES, None, node_object(self.node, now))
        self._renew(now)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"kubelet-{self.node}",
                                        daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        """Stop the loop and kill every process (control-plane shutdown)."""
        self._stop.set()
        with self._lock:
            self.state = STOPPED
            for run in self.runs.values():
                self._kill_all(run)
        if self._thread:
            self._thread.join(timeout=2)
        self.prober.close()

    def _each_process(self):
        for run in self.runs.values():
            for c in run.containers.values():
                if c.proc and c.proc.poll() is None:
                    yield c.proc

    def freeze(self) -> None:
        with self._lock:
            self.state = FROZEN
            for p in self._each_process():
                p.signal(signal.SIGSTOP)

    def kill(self) -> None:
        with self._lock:
            self.state = DEAD
            for p in self._each_process():
                p.signal(signal.SIGKILL)

    def heal(self) -> None:
        with self._lock:
            for p in self._each_process():
                p.signal(signal.SIGCONT)
            self.state = RUNNING
            self._next_lease = 0.0

    def pids(self) -> dict[str, list[int]]:
        with self._lock:
            return {f"{r.namespace}/{r.name}": [c.proc.pid for c in r.containers.values()
                                                if c.proc and c.proc.poll() is None]
                    for r in self.runs.values()}

    # --- the loop --------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set() and not self.store.closed:
            rv = self.store.rv
            with self._lock:
                if self.state == RUNNING:
                    try:
                        self.sync(time.time())
                    except ApiError as err:
                        log.debug("kubelet %s: %s", self.node, err.message)
                    except Exception:
                        log.exception("kubelet %s failed a pass", self.node)
            self.store.wait(rv, self.tick_s)
            self._stop.wait(0.005)

    def _renew(self, now: float) -> None:
        lease = self.store.get(resources.LEASES, LEASE_NAMESPACE, self.node)
        spec = {"holderIdentity": self.node, "leaseDurationSeconds": LEASE_DURATION_S,
                "renewTime": meta.micro_timestamp(now)}
        if lease is None:
            body = {"metadata": {"name": self.node, "namespace": LEASE_NAMESPACE}, "spec": spec}
            self.registry.create(resources.LEASES, LEASE_NAMESPACE, body)
        else:
            new = meta.thaw(lease)
            new["spec"].update(spec)
            self.store.replace(resources.LEASES, new)
        self._next_lease = now + self.scale.scaled(LEASE_RENEW_S)

    def sync(self, now: float) -> None:
        if now >= self._next_lease:
            self._renew(now)
            self._report_ready(now)
        mine = {p["metadata"]["uid"]: p for p in self.store.list(resources.PODS)[0]
                if p["spec"].get("nodeName") == self.node}
        for uid in [u for u in self.runs if u not in mine]:  # force-deleted elsewhere
            self._kill_all(self.runs.pop(uid))
        for pod in mine.values():
            self._sync_pod(pod, now)

    def _report_ready(self, now: float) -> None:
        """After a heal, the kubelet posts Ready=True again (the controller set Unknown)."""
        node = self.store.get(resources.NODES, "", self.node)
        if node is None:
            return
        conds = node.get("status", {}).get("conditions") or []
        if all(c.get("status") == ("True" if c["type"] == "Ready" else "False") for c in conds):
            return
        fresh = node_object(self.node, now)["status"]["conditions"]
        new = meta.thaw(node)
        new["status"]["conditions"] = fresh
        self.store.replace(resources.NODES, new)
        self.recorder.record(node, "NodeReady", f"Node {self.node} status is now: NodeReady",
                             component="kubelet", host=self.node)

    # --- pods ------------------------------------------------------------------------------
    def _sync_pod(self, pod: dict, now: float) -> None:
        md = pod["metadata"]
        run = self.runs.get(md["uid"])
        phase = pod.get("status", {}).get("phase")
        if run is None:
            if md.get("deletionTimestamp") or phase in ("Succeeded", "Failed"):
                if md.get("deletionTimestamp"):
                    self.registry.finalize_pod(md["namespace"], md["name"], md["uid"])
                return
            run = self._admit(pod, now)
        if md.get("deletionTimestamp"):
            self._terminate(pod, run, now)
            if all(c.proc is None or c.proc.poll() is not None
                   for c in run.containers.values()):
                self._kill_all(self.runs.pop(md["uid"]))  # all exited: this closes its network
                self.registry.finalize_pod(md["namespace"], md["name"], md["uid"])
                return
        else:
            self._supervise(pod, run, now)
        self._write_status(pod, run, now)

    def _admit(self, pod: dict, now: float) -> PodRun:
        md = pod["metadata"]
        run = PodRun(md["uid"], md["namespace"], md["name"],
                     os.path.join(self.workdir, f"{md['namespace']}_{md['name']}_{md['uid'][:8]}"),
                     now, {})
        run.net = podnet.PodNetwork(self._egress(md["namespace"], md["name"])).start()
        for c in pod["spec"]["containers"]:
            run.containers[c["name"]] = ContainerRun(c, self._env(pod, c, run.net.url))
        self.runs[md["uid"]] = run
        for c in run.containers.values():
            self._start(pod, run, c, now)
        return run

    def _egress(self, namespace: str, name: str) -> Callable[[str, int], bool]:
        """Whether the pod may reach host:port now, by the NetworkPolicies of its namespace as
        they and its labels stand (a label a chaos step adds takes effect at once)."""
        def allowed(host: str, port: int) -> bool:
            pod = self.store.get(resources.PODS, namespace, name)
            if pod is None:
                return True
            return netpol.egress_allowed(self.store.list(resources.NETWORK_POLICIES, namespace)[0],
                                         pod, host, port)
        return allowed

    def _env(self, pod: dict, container: dict, proxy: str) -> dict[str, str]:
        md = pod["metadata"]
        # The pod's network: its HTTP goes through its own relay (HTTP_PROXY, which the
        # agents' client honors), where an egress NetworkPolicy cuts it (docs/local-cluster.md).
        env = {"POD_NAME": md["name"], "POD_NAMESPACE": md["namespace"],
               "NODE_NAME": self.node, "POD_IP": "127.0.0.1", "POD_UID": md["uid"],
               "HTTP_PROXY": proxy, "http_proxy": proxy}
        for e in container.get("env") or []:
            if "value" in e:
                env[e["name"]] = str(e["value"])
            elif "valueFrom" in e:
                value = self._env_from(pod, e["valueFrom"])
                if value is not None:
                    env[e["name"]] = value
        return env

    def _env_from(self, pod: dict, source: dict) -> str | None:
        ns = pod["metadata"]["namespace"]
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            if path.startswith("metadata.labels['") or path.startswith("metadata.annotations['"):
                where, key = path.split("['", 1)
                return (pod["metadata"].get(where.split(".")[1]) or {}).get(key[:-2])
            return field_value({**pod, "spec": {**pod["spec"], "nodeName": self.node},
                                "status": {**pod.get("status", {}), "podIP": "127.0.0.1"}},
                               path)
        for kind, res in (("configMapKeyRef", resources.by_kind("ConfigMap")),
                          ("secretKeyRef", resources.by_kind("Secret"))):
            if kind in source:
                ref = source[kind]
                obj = self.store.get(res, ns, ref["name"]) or {}
                value = (obj.get("data") or {}).get(ref["key"])
                if value is not None and kind == "secretKeyRef":
                    value = base64.b64decode(value).decode()
                return value
        return None

    def _event(self, pod: dict, c: ContainerRun, reason: str, message: str,
                type_: str = "Normal") -> None:
        """An event on one container of `pod`, as upstream's kubelet records it: on the pod,
        field path `spec.containers{name}`, from `kubelet` on this node."""
        self.recorder.record(pod, reason, message, type_=type_, component="kubelet",
                             host=self.node, field_path=f"spec.containers{{{c.spec['name']}}}")

    def _start(self, pod: dict, run: PodRun, c: ContainerRun, now: float) -> None:
        # There is no image to pull: the command runs from this machine, which upstream's
        # image manager reports as an image already present (whatever the pull policy).
        self._event(pod, c, "Pulled",
                    f'Container image "{c.spec.get("image", "")}" already present on machine')
        self._event(pod, c, "Created", f"Created container: {c.spec['name']}")
        argv = list(c.spec.get("command") or []) + list(c.spec.get("args") or [])
        if not c.spec.get("command"):
            argv = list(processes.PLACEHOLDER) if not argv else argv
        log_path = os.path.join(run.dir, c.spec["name"], f"{c.restarts}.log")
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        cwd = c.spec.get("workingDir") or os.path.dirname(log_path)
        c.restart_at = None
        try:
            c.proc = processes.spawn(argv, c.env, log_path, cwd)
        except OSError as err:
            with open(log_path, "a") as f:
                f.write(f"unstuck kubelet: cannot start {argv!r}: {err}\n")
            c.proc = None
            c.last_exit = {"exitCode": 128, "reason": "StartError", "message": str(err),
                           "startedAt": meta.timestamp(now), "finishedAt": meta.timestamp(now)}
            self._event(pod, c, "Failed", f"Error: {err}", "Warning")
            self._after_exit(pod, c, 128, now)
            return
        probe = c.spec.get("readinessProbe")
        c.probe = probes.ProbeState(ready=probe is None)
        if probe:
            self.prober.start(c.probe, probe, now)
        self._event(pod, c, "Started", f"Started container {c.spec['name']}")

    def _after_exit(self, pod: dict, c: ContainerRun, code: int, now: float) -> None:
        policy = pod["spec"].get("restartPolicy", "Always")
        if policy == "Always" or (policy == "OnFailure" and code != 0):
            backoff = min(BACKOFF_START_S * 2 ** c.restarts, BACKOFF_MAX_S)
            c.restart_at = now + self.scale.scaled(backoff)
            md = pod["metadata"]  # format.Pod: name_namespace(uid)
            self._event(pod, c, "BackOff", f"Back-off restarting failed container "
                        f"{c.spec['name']} in pod {md['name']}_{md['namespace']}({md['uid']})",
                        "Warning")
        else:
            c.done = True

    def _supervise(self, pod: dict, run: PodRun, now: float) -> None:
        for c in run.containers.values():
            if c.proc is not None and c.restart_at is None and not c.done:
                code = c.proc.poll()
                if code is not None:
                    c.last_exit = {"exitCode": code, "reason": "Completed" if code == 0
                                   else "Error", "startedAt": meta.timestamp(c.proc.started_at),
                                   "finishedAt": meta.timestamp(c.proc.finished_at or now),
                                   "containerID": f"process://{c.proc.pid}"}
                    c.probe.ready = False
                    self._after_exit(pod, c, code, now)
            if c.restart_at is not None and now >= c.restart_at:
                c.restarts += 1
                self._start(pod, run, c, now)
            probe = c.spec.get("readinessProbe")
            if probe and c.proc is not None and c.proc.poll() is None:
                self.prober.step(c.probe, probe, c.spec, {**os.environ, **c.env}
                                 if "exec" in probe else c.env, now)
                for output in c.probe.failures_to_report:
                    self._event(pod, c, "Unhealthy", f"Readiness probe failed: {output}",
                                "Warning")
                c.probe.failures_to_report.clear()

    def _terminate(self, pod: dict, run: PodRun, now: float) -> None:
        grace = float(pod["metadata"].get("deletionGracePeriodSeconds") or 0)
        if run.grace is None or grace < run.grace:
            first = run.grace is None
            deadline = now + self.scale.scaled(grace)
            run.kill_at = deadline if run.kill_at is None else min(run.kill_at, deadline)
            run.grace = grace
            if first:
                for c in run.containers.values():
                    c.restart_at, c.done = None, True
                    if c.proc is not None and c.proc.poll() is None:
                        self._event(pod, c, "Killing", f"Stopping container {c.spec['name']}")
                    if c.proc is not None:
                        c.proc.signal(signal.SIGTERM)
        if now >= (run.kill_at or now):
            for c in run.containers.values():
                if c.proc is not None and c.proc.poll() is None:
                    c.proc.signal(signal.SIGKILL)

    def _kill_all(self, run: PodRun) -> None:
        """SIGKILL (after SIGCONT, so a frozen group dies too) and reap every container; the
        pod's network goes with it."""
        for c in run.containers.values():
            if c.proc is not None:
                c.proc.signal(signal.SIGCONT)
                c.proc.signal(signal.SIGKILL)
                c.proc.popen.wait(timeout=5)
                c.proc.poll()
        if run.net is not None:
            run.net.close()

    # --- status ----------------------------------------------------------------------------
    def _container_status(self, c: ContainerRun) -> dict:
        name = c.spec["name"]
        image = c.spec.get("image", "")
        status = {"name": name, "image": image, "imageID": f"process://{image}",
                  "restartCount": c.restarts, "ready": False, "started": False}
        running = c.proc is not None and c.proc.poll() is None and c.restart_at is None
        if running:
            status["state"] = {"running": {"startedAt": meta.timestamp(c.proc.started_at)}}
            status["ready"] = c.probe.ready
            status["started"] = True
            status["containerID"] = f"process://{c.proc.pid}"
        elif c.restart_at is not None:
            status["state"] = {"waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off restarting failed container {name}"}}
        elif c.last_exit is not None:
            status["state"] = {"terminated": dict(c.last_exit)}
        else:
            status["state"] = {"waiting": {"reason": "ContainerCreating"}}
        if c.last_exit is not None and (running or c.restart_at is not None):
            status["lastState"] = {"terminated": dict(c.last_exit)}
        return status

    def _write_status(self, pod: dict, run: PodRun, now: float) -> None:
        old = pod.get("status") or {}
        statuses = [self._container_status(c) for c in run.containers.values()]
        all_done = all(c.done and (c.proc is None or c.proc.poll() is not None)
                       for c in run.containers.values())
        if all_done and not pod["metadata"].get("deletionTimestamp"):
            codes = [(c.last_exit or {}).get("exitCode", 0) for c in run.containers.values()]
            phase = "Succeeded" if all(code == 0 for code in codes) else "Failed"
        else:
            phase = "Running"
        ready = phase == "Running" and all(s["ready"] for s in statuses)
        previous = {c["type"]: c for c in old.get("conditions") or []}

        def cond(type_, ok):
            flag = "True" if ok else "False"
            prior = previous.get(type_)
            since = prior["lastTransitionTime"] if prior and prior.get("status") == flag \
                else meta.timestamp(now)
            return {"type": type_, "status": flag, "lastProbeTime": None,
                    "lastTransitionTime": since}

        status = {
            "phase": phase, "qosClass": old.get("qosClass", "BestEffort"),
            "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": meta.timestamp(run.started_at),
            "conditions": [cond("PodReadyToStartContainers", True), cond("Initialized", True),
                           cond("Ready", ready), cond("ContainersReady", ready),
                           cond("PodScheduled", True)],
            "containerStatuses": statuses,
        }
        if status != old:
            new = meta.thaw(pod)
            new["status"] = status
            try:
                self.store.replace(resources.PODS, new,
                                   expect_rv=pod["metadata"]["resourceVersion"])
            except ApiError:
                pass  # changed under us; the next pass recomputes

    # --- logs ------------------------------------------------------------------------------
    def read_log(self, pod: dict, query: dict) -> str:
        run = self.runs.get(pod["metadata"]["uid"])
        if run is None:
            return ""
        name = query.get("container") or next(iter(run.containers))
        c = run.containers.get(name)
        if c is None:
            raise ApiError(400, f"container {name} is not valid for pod {pod['metadata']['name']}")
        index = c.restarts - 1 if query.get("previous") in ("true", "1", "True") else c.restarts
        path = os.path.join(run.dir, name, f"{index}.log")
        try:
            with open(path, errors="replace") as f:
                lines = f.read().splitlines(keepends=True)
        except FileNotFoundError:
            return ""
        if query.get("tailLines"):
            lines = lines[-int(query["tailLines"]):] if int(query["tailLines"]) else []
        if query.get("timestamps") in ("true", "1", "True"):
            stamp = meta.timestamp(os.path.getmtime(path)).replace("Z", ".000000000Z")
            lines = [f"{stamp} {line}" for line in lines]
        text = "".join(lines)
        if query.get("limitBytes"):
            text = text[: int(query["limitBytes"])]
        return text
