"""`LocalCluster`: the store, the API server, the controllers and one kubelet per node, wired.

This is the object tests and `python -m chaos.cluster` start. It also answers the control
plane's own admin API under /unstuck/v1 (cluster info, node freeze/kill/heal, HPA metric
values, shutdown), which is how chaos experiments cause node loss without Docker.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time

from chaos.cluster import resources
from chaos.cluster.apiserver import ApiServer
from chaos.cluster.controllers.base import Runner
from chaos.cluster.controllers.deployments import DeploymentController
from chaos.cluster.controllers.disruption import DisruptionController
from chaos.cluster.controllers.hpa import HPAController
from chaos.cluster.controllers.nodelifecycle import NodeLifecycleController
from chaos.cluster.controllers.podgc import PodGC
from chaos.cluster.controllers.replicasets import ReplicaSetController
from chaos.cluster.controllers.scheduling import Scheduler
from chaos.cluster.errors import ApiError, bad_request, not_found
from chaos.cluster.events import Recorder
from chaos.cluster.kubelet import Kubelet
from chaos.cluster.metrics import MetricBoard, MetricSource, Sources
from chaos.cluster.registry import Registry
from chaos.cluster.storage import Store
from sim.kube import nodes as node_rules
from sim.kube.timescale import TimeScale

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class LocalCluster:
    def __init__(self, *, nodes: int = 3, port: int = 0, time_scale: float = 1.0,
                 workdir: str | None = None, history: int = 4000,
                 metric_source: MetricSource | None = None,
                 node_timings: node_rules.NodeTimings | None = None) -> None:
        if nodes < 1:
            raise ValueError(f"nodes = {nodes}: a cluster needs at least 1 node")
        self.scale = TimeScale(time_scale)
        self.store = Store(history=history)
        self.registry = Registry(self.store, self.scale)
        self.recorder = Recorder(self.store)
        self.board = MetricBoard()
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="unstuck-cluster-")
        self.node_names = [f"node-{i + 1}" for i in range(nodes)]
        self.kubelets = {n: Kubelet(n, self.registry, self.recorder, self.scale, self.workdir)
                         for n in self.node_names}
        self.registry.log_reader = self._read_log
        self.controllers = [
            DeploymentController(self.registry, self.recorder),
            ReplicaSetController(self.registry, self.recorder),
            Scheduler(self.registry, self.recorder),
            NodeLifecycleController(self.registry, self.recorder, self.scale, node_timings),
            PodGC(self.registry, self.recorder, self.scale),
            DisruptionController(self.store),
            HPAController(self.registry, self.recorder, self.scale,
                          metric_source or Sources(self.board)),
        ]
        self.runner = Runner(self.store, self.controllers)
        self.api = ApiServer(self.registry, port=port, admin=self._admin)
        self.stopped = threading.Event()
        self.started_at = time.time()

    @property
    def url(self) -> str:
        return self.api.url

    def start(self) -> LocalCluster:
        for ns in SYSTEM_NAMESPACES:
            self.registry.create(resources.NAMESPACES, None, {"metadata": {"name": ns}})
        for k in self.kubelets.values():
            k.register()
        self.api.start()
        self.runner.start()
        for k in self.kubelets.values():
            k.start()
        return self

    def stop(self) -> None:
        if self.stopped.is_set():
            return
        self.stopped.set()
        for k in self.kubelets.values():
            k.shutdown()
        self.store.close()  # wakes every waiting controller and watch
        self.runner.stop()
        self.api.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- faults ----------------------------------------------------------------------------
    def kubelet(self, node: str) -> Kubelet:
        if node not in self.kubelets:
            raise not_found("nodes", node)
        return self.kubelets[node]

    def _read_log(self, pod: dict, query: dict) -> str:
        kubelet = self.kubelets.get(pod["spec"].get("nodeName") or "")
        return kubelet.read_log(pod, query) if kubelet else ""

    def info(self) -> dict:
        return {
            "pid": os.getpid(), "server": self.url, "timeScale": self.scale.factor,
            "nodes": {n: k.state for n, k in self.kubelets.items()},
            "pods": self.store.count(resources.PODS),
            "resourceVersion": self.store.rv, "uptimeSeconds": round(time.time() -
                                                                      self.started_at, 3),
            "workdir": self.workdir,
        }

    def _admin(self, method: str, parts: list[str], body) -> tuple[int, object]:
        """/unstuck/v1/{info | shutdown | nodes/NAME/(freeze|kill|heal) | metrics/NS/HPA}."""
        if not parts or parts[0] != "v1":
            raise ApiError(404, "the admin API lives under /unstuck/v1")
        parts = parts[1:]
        if parts == ["info"] and method == "GET":
            return 200, self.info()
        if parts == ["shutdown"] and method == "POST":
            threading.Thread(target=self.stop, daemon=True).start()
            return 202, {"status": "stopping"}
        if len(parts) == 3 and parts[0] == "nodes" and method == "POST":
            kubelet = self.kubelet(parts[1])
            action = {"freeze": kubelet.freeze, "kill": kubelet.kill, "heal": kubelet.heal}
            if parts[2] not in action:
                raise bad_request(f"node action {parts[2]!r} is not one of freeze, kill, heal")
            action[parts[2]]()
            return 200, {"node": parts[1], "state": kubelet.state}
        if len(parts) == 3 and parts[0] == "metrics":
            if method == "DELETE":
                self.board.clear(parts[1], parts[2])
                return 200, {}
            if method == "PUT":
                if not isinstance(body, dict):
                    raise bad_request(f"{MetricBoard.USAGE}, not {body!r}")
                value = body.get("value", body.get("values"))
                try:
                    self.board.set(parts[1], parts[2], value)
                except ValueError as err:
                    raise bad_request(str(err)) from None
                return 200, {"namespace": parts[1], "hpa": parts[2], "value": value}
        raise ApiError(404, f"no admin endpoint {method} /unstuck/v1/{'/'.join(parts)}")
