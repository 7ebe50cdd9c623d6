"""Benchmark the local control plane: the issue's three targets.

1. 100 pods scheduled and Running (a real process each) after one Deployment create: < 1 s.
2. Watch events delivered to one kubernetes-client watch: >= 1000 events/s.
3. Resident memory of the control plane with 200 Running pods: < 200 MB.

Run: .venv/bin/python benchmarks/bench_cluster.py  (prints one JSON line per figure)
"""

from __future__ import annotations

import json
import threading
import time

from kubernetes import client, watch

from chaos.cluster import resources
from chaos.cluster.cluster import LocalCluster


def _deployment(name: str, replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {
                         "containers": [{"name": "m", "image": "x",
                                         "command": ["sleep", "3600"]}]}}}}


def _running(cluster: LocalCluster, app: str) -> int:
    pods, _ = cluster.store.list(resources.PODS, "default")
    return sum(1 for p in pods if p["metadata"].get("labels", {}).get("app") == app
               and p.get("status", {}).get("phase") == "Running"
               and all(cs.get("ready") for cs in p["status"].get("containerStatuses") or [{}]))


def rss_mb() -> float | None:
    """This process's resident memory now (VmRSS); None without Linux's /proc. Not
    ru_maxrss: that is the peak, not the current size, and in bytes on macOS."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def main() -> None:
    with LocalCluster(nodes=3, time_scale=1.0) as cluster:
        cfg = client.Configuration()
        cfg.host = cluster.url
        api = client.ApiClient(cfg)
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)

        t0 = time.perf_counter()
        apps.create_namespaced_deployment("default", _deployment("bench", 100))
        while _running(cluster, "bench") < 100:
            time.sleep(0.005)
        startup = time.perf_counter() - t0
        print(json.dumps({"metric": "100 pods scheduled+Running", "seconds": round(startup, 3),
                          "target_s": 1.0}))

        n = 3000
        start_rv = core.list_namespaced_config_map("default").metadata.resource_version
        received = []

        def consume():
            for ev in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                           resource_version=start_rv, timeout_seconds=60):
                received.append(ev["type"])
                if len(received) >= n:
                    return
        reader = threading.Thread(target=consume)
        reader.start()
        t0 = time.perf_counter()
        for i in range(n):  # written straight into the store, as controllers do
            cluster.registry.create(resources.by_kind("ConfigMap"), "default",
                                    {"metadata": {"name": f"cm-{i}"}, "data": {"i": str(i)}})
        reader.join()
        rate = n / (time.perf_counter() - t0)
        # The stream ends when the server closes it (timeout_seconds: no retry) or on an
        # error in the reader thread: then fewer than n arrived, and n / time would be a
        # rate for events that were never delivered.
        if len(received) < n or set(received) != {"ADDED"}:
            raise SystemExit(f"the watch delivered {len(received)} of {n} events "
                             f"({sorted(set(received))}): no rate")
        print(json.dumps({"metric": "watch events/s to one client", "events_per_s": round(rate),
                          "target": 1000}))

        apps.patch_namespaced_deployment("bench", "default", {"spec": {"replicas": 200}})
        while _running(cluster, "bench") < 200:
            time.sleep(0.01)
        time.sleep(1.0)
        mb = rss_mb()
        print(json.dumps({"metric": "control-plane RSS with 200 pods",
                          "mb": round(mb, 1) if mb is not None else None,
                          "target_mb": 200}))
        api.close()


if __name__ == "__main__":
    main()
