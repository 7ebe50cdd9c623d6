"""Readiness probes (httpGet, tcpSocket, exec), run off the kubelet's loop on a small pool.

A probe result only counts after `successThreshold` successes or `failureThreshold` failures
in a row, as upstream; periods, delays and timeouts are time-scaled like every other timing.
"""

from __future__ import annotations

import socket
import subprocess
import urllib.error
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from sim.kube.timescale import TimeScale


def _port(value, container: dict) -> int:
    if isinstance(value, int):
        return value
    for p in container.get("ports") or []:
        if p.get("name") == value:
            return int(p["containerPort"])
    return int(value)


def run_probe(probe: dict, container: dict, env: dict[str, str], timeout_s: float) -> bool:
    try:
        if "httpGet" in probe:
            get = probe["httpGet"]
            url = f"http://127.0.0.1:{_port(get['port'], container)}{get.get('path', '/')}"
            with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310
                return 200 <= resp.status < 400
        if "tcpSocket" in probe:
            port = _port(probe["tcpSocket"]["port"], container)
            with socket.create_connection(("127.0.0.1", port), timeout=timeout_s):
                return True
        if "exec" in probe:
            done = subprocess.run(probe["exec"]["command"], env=env, timeout=timeout_s,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, check=False)
            return done.returncode == 0
    except (OSError, urllib.error.URLError, subprocess.TimeoutExpired, ValueError):
        return False
    return True


@dataclass
class ProbeState:
    """One container's readiness bookkeeping."""

    ready: bool = False
    successes: int = 0
    failures: int = 0
    next_at: float = 0.0
    pending: Future | None = field(default=None, repr=False)


class Prober:
    def __init__(self, scale: TimeScale, workers: int = 4) -> None:
        self.scale = scale
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe")

    def start(self, state: ProbeState, probe: dict, now: float) -> None:
        state.next_at = now + self.scale.scaled(probe.get("initialDelaySeconds", 0))

    def step(self, state: ProbeState, probe: dict, container: dict, env: dict[str, str],
             now: float) -> bool:
        """Advance the probe; return the container's readiness."""
        if state.pending is not None and state.pending.done():
            ok = state.pending.result()
            state.pending = None
            if ok:
                state.successes, state.failures = state.successes + 1, 0
                if state.successes >= probe.get("successThreshold", 1):
                    state.ready = True
            else:
                state.failures, state.successes = state.failures + 1, 0
                if state.failures >= probe.get("failureThreshold", 3):
                    state.ready = False
        if state.pending is None and now >= state.next_at:
            timeout = self.scale.scaled(probe.get("timeoutSeconds", 1))
            state.pending = self.pool.submit(run_probe, probe, container, env, max(timeout, 0.05))
            state.next_at = now + self.scale.scaled(probe.get("periodSeconds", 10))
        return state.ready

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
