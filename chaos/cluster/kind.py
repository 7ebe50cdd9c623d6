"""`unstuck cluster up --kind`: a real kind cluster with the same node count and metrics-server.

Driven through the kind and kubectl CLIs; where Docker or kind is missing (as on our CI
machines) it stops with a clear message and exit code 2 instead of a traceback.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

METRICS_SERVER = ("https://github.com/kubernetes-sigs/metrics-server/releases/download/"
                  "v0.8.0/components.yaml")


class KindUnavailable(Exception):
    pass


def config(nodes: int) -> str:
    lines = ["kind: Cluster", "apiVersion: kind.x-k8s.io/v1alpha4", "nodes:",
             "  - role: control-plane"]
    lines += ["  - role: worker"] * max(0, nodes - 1)
    return "\n".join(lines) + "\n"


def up(nodes: int, kubeconfig: Path, name: str = "unstuck") -> None:
    missing = [tool for tool in ("docker", "kind", "kubectl") if shutil.which(tool) is None]
    if missing:
        raise KindUnavailable(
            f"--kind needs {', '.join(missing)} on PATH, and this machine lacks "
            f"{'it' if len(missing) == 1 else 'them'}; install Docker and kind "
            "(https://kind.sigs.k8s.io), or use `unstuck cluster up --local`, which needs "
            "neither")
    subprocess.run(["kind", "create", "cluster", "--name", name, "--kubeconfig", str(kubeconfig),
                    "--wait", "120s", "--config", "-"], input=config(nodes), text=True,
                   check=True)
    kubectl = ["kubectl", "--kubeconfig", str(kubeconfig)]
    subprocess.run([*kubectl, "apply", "-f", METRICS_SERVER], check=True)
    subprocess.run([*kubectl, "-n", "kube-system", "patch", "deployment", "metrics-server",
                    "--type", "json", "-p", '[{"op":"add","path":"/spec/template/spec/'
                    'containers/0/args/-","value":"--kubelet-insecure-tls"}]'], check=True)
