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


def _dial_error(port: int, err: BaseException) -> str:
    """A connection failure as Go's net.Dial words it (the prober's output upstream)."""
    at = f"dial tcp 127.0.0.1:{port}"
    if isinstance(err, ConnectionRefusedError):
        return f"{at}: connect: connection refused"
    if isinstance(err, (TimeoutError, socket.timeout)):
        return f"{at}: i/o timeout"
    return f"{at}: {getattr(err, 'strerror', None) or err}"


def run_probe(probe: dict, container: dict, env: dict[str, str],
              timeout_s: float) -> tuple[bool, str]:
    """Run one probe: (success, output), the output worded as upstream's probers report a
    failure (`HTTP probe failed with statuscode: 503`, `dial tcp ...: connect: connection
    refused`, an exec command's own output)."""
    try:
        if "httpGet" in probe:
            get = probe["httpGet"]
            port = _port(get["port"], container)
            url = f"http://127.0.0.1:{port}{get.get('path', '/')}"
            try:
                with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310
                    status = resp.status
            except urllib.error.HTTPError as err:
                status = err.code
            except urllib.error.URLError as err:
                reason = err.reason if isinstance(err.reason, BaseException) else err
                return False, f'Get "{url}": {_dial_error(port, reason)}'
            except (TimeoutError, socket.timeout):
                return False, (f'Get "{url}": context deadline exceeded (Client.Timeout '
                               "exceeded while awaiting headers)")
            if 200 <= status < 400:
                return True, ""
            return False, f"HTTP probe failed with statuscode: {status}"
        if "tcpSocket" in probe:
            port = _port(probe["tcpSocket"]["port"], container)
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=timeout_s):
                    return True, ""
            except OSError as err:
                return False, _dial_error(port, err)
        if "exec" in probe:
            command = probe["exec"]["command"]
            try:
                done = subprocess.run(command, env=env, timeout=timeout_s,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, check=False)
            except subprocess.TimeoutExpired:
                return False, f'command "{" ".join(command)}" timed out'
            return done.returncode == 0, done.stdout.decode(errors="replace")
    except (OSError, ValueError) as err:
        return False, str(err)
    return True, ""


@dataclass
class ProbeState:
    """One container's readiness bookkeeping."""

    ready: bool = False
    successes: int = 0
    failures: int = 0
    next_at: float = 0.0
    pending: Future | None = field(default=None, repr=False)
    failures_to_report: list[str] = field(default_factory=list)
    """The outputs of failed probes since the kubelet last recorded them (as Unhealthy)."""


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
            ok, output = state.pending.result()
            state.pending = None
            if not ok:
                state.failures_to_report.append(output)
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
