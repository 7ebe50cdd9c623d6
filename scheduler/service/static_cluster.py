"""The `static` Cluster port: a fixed set of pods on this machine, one agent process each.

For tests and demos on a single machine. The operator (or a test) starts one `unstuck agent`
process per pod name given to `unstuck serve --pods`; the scheduler cannot create, delete or
scale pods, and says so (`ClusterError`), exactly as a cluster that refuses the request.

A pod's phase comes from its process, as a kubelet's would: `Pending` until an agent has
registered for it, `Running` while the process (the pid it registered with) is alive,
`Failed` once it is gone. `watch()` turns those changes into the events a Kubernetes watch
would give the core: `PodAdded` when an agent first registers for a pod (or registers again
after its process died), `PodRemoved` when the process dies. Because pids are checked with
`kill(pid, 0)`, this works only when the agents run on the scheduler's machine; that is what
"static" means.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from scheduler import events as ev
from scheduler.model import PodInfo
from scheduler.ports import ClusterError


@dataclass
class StaticPod:
    name: str
    pool_id: str
    pid: int | None = None
    phase: str = "Pending"
    created_at: float = 0.0
    annotations: dict[str, str] | None = None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


class StaticCluster:
    def __init__(self, pool_id: str, pods: list[str], now: float = 0.0) -> None:
        if not pods:
            raise ValueError("--cluster static needs at least one pod name (--pods a,b,c)")
        self.pool_id = pool_id
        self.pods = {name: StaticPod(name, pool_id, created_at=now) for name in pods}

    # ---------------------------------------------------------------- Cluster port
    def create_pod(self, pool_id: str, name: str) -> None:
        raise ClusterError("static cluster: pods are fixed (start another `unstuck agent` by hand)")

    def delete_pod(self, name: str, *, scale_down: bool = False) -> None:
        raise ClusterError(f"static cluster: cannot delete pod {name!r}; the operator owns its process")

    def list_pods(self, pool_id: str) -> list[PodInfo]:
        return [PodInfo(p.name, p.pool_id, p.phase, created_at=p.created_at,
                        deletion_cost=int((p.annotations or {}).get(
                            "controller.kubernetes.io/pod-deletion-cost", 0)))
                for _, p in sorted(self.pods.items()) if p.pool_id == pool_id]

    def scale(self, pool_id: str, replicas: int) -> None:
        raise ClusterError("static cluster: the pod count is fixed")

    def annotate_pod(self, name: str, annotations: dict[str, str]) -> None:
        pod = self.pods.get(name)
        if pod is None:
            raise ClusterError(f'pods "{name}" not found')
        pod.annotations = {**(pod.annotations or {}), **annotations}

    # ---------------------------------------------------------------- the watch
    def knows(self, name: str) -> bool:
        return name in self.pods

    def agent_started(self, name: str, pid: int | None, now: float) -> list[ev.Event]:
        """An agent registered for pod `name`: the events a watch would have shown."""
        pod = self.pods[name]
        out: list[ev.Event] = []
        if pod.phase != "Running" or pod.pid != pid:
            if pod.phase == "Running" and pod.pid is not None and pod.pid != pid:
                out.append(ev.PodRemoved(name))  # the old process is gone, a new one took over
            pod.pid, pod.phase, pod.created_at = pid, "Running", now
            out.append(ev.PodAdded(name, pod.pool_id))
        return out

    def poll(self) -> list[tuple[StaticPod, ev.Event]]:
        """Check every Running pod's process; a dead one turns Failed and is removed."""
        out = []
        for _, pod in sorted(self.pods.items()):
            if pod.phase == "Running" and pod.pid is not None and not process_alive(pod.pid):
                pod.phase = "Failed"
                out.append((pod, ev.PodRemoved(pod.name)))
        return out
