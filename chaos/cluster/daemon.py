"""Run the control plane in the background and find it again through its kubeconfig.

`up` starts `python -m chaos.cluster` as a detached child and waits for its ready file; the
kubeconfig's server URL is the only handle `status` and `down` need, so several clusters can
run side by side with different kubeconfigs.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from chaos.cluster import kubeconfig
from scheduler.service.static_cluster import process_alive


class ClusterError(Exception):
    """A clear, user-facing reason why a cluster command cannot do its job."""


def _call(server: str, method: str, path: str, timeout: float = 3.0) -> dict:
    req = urllib.request.Request(server + path, method=method, data=b"" if method == "POST"
                                 else None)
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - 127.0.0.1 only
        return json.loads(resp.read())


def status(path: Path) -> dict:
    server = kubeconfig.server_of(path)
    if server is None:
        raise ClusterError(f"{path}: no '{kubeconfig.NAME}' cluster in this kubeconfig; "
                           "start one with `unstuck cluster up --local --kubeconfig PATH`")
    try:
        return _call(server, "GET", "/unstuck/v1/info")
    except (urllib.error.URLError, OSError) as err:
        raise ClusterError(f"{path}: the cluster at {server} does not answer ({err}); "
                           "it has stopped: run `unstuck cluster down` to clean up the "
                           "kubeconfig, then `unstuck cluster up --local`") from None


def up(path: Path, *, nodes: int = 3, time_scale: float = 1.0, port: int = 0,
       timeout_s: float = 20.0) -> dict:
    if nodes < 1:
        raise ClusterError(f"--nodes {nodes}: a cluster needs at least 1 node")
    if not (math.isfinite(time_scale) and time_scale > 0):
        raise ClusterError(f"--time-scale {time_scale}: must be a finite number > 0 (10 runs "
                           "timings 10x faster)")
    if not 0 <= port < 65536:
        raise ClusterError(f"--port {port}: expected 0-65535 (0 picks a free port)")
    if kubeconfig.server_of(path):
        try:
            info = status(path)
        except ClusterError:
            kubeconfig.remove(path)
        else:
            raise ClusterError(f"{path}: a local cluster already runs at {info['server']}; "
                               "use it, or `unstuck cluster down` first")
    workdir = Path(tempfile.mkdtemp(prefix="unstuck-up-"))
    ready, log = workdir / "ready.json", workdir / "cluster.log"
    argv = [sys.executable, "-m", "chaos.cluster", "--nodes", str(nodes), "--port", str(port),
            "--time-scale", str(time_scale), "--kubeconfig", str(path),
            "--ready-file", str(ready)]
    # posix_spawn, not Popen: the child outlives this process, so there is no handle to keep
    pid = os.posix_spawn(sys.executable, argv, dict(os.environ), setsid=True, file_actions=[
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2)])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready.exists():
            return {**json.loads(ready.read_text()), "log": str(log)}
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            raise ClusterError(f"the control plane exited with code {code >> 8}:\n"
                               + log.read_text()[-2000:])
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise ClusterError(f"the control plane did not become ready in {timeout_s:g}s; see {log}")


def down(path: Path, timeout_s: float = 10.0) -> dict | None:
    """Stop the cluster the kubeconfig names (if it still runs) and remove its entry."""
    try:
        info = status(path)
    except ClusterError:
        kubeconfig.remove(path)
        return None
    try:
        _call(info["server"], "POST", "/unstuck/v1/shutdown")
    except (urllib.error.URLError, OSError):
        pass
    pid = info["pid"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    kubeconfig.remove(path)
    return info


def _alive(pid: int) -> bool:
    try:  # our own child would linger as a zombie until reaped
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not ours: process_alive reads its state
    return process_alive(pid)
