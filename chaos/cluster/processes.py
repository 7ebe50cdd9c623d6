"""Container processes: spawn in their own process group, signal the whole group.

Why a process group per container: a container command is often a shell or a supervisor
with children; SIGSTOP (node loss), SIGTERM (graceful termination) and SIGKILL must reach all
of them, as a cgroup freeze or kill would in a real runtime.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field

PLACEHOLDER = ["sleep", "infinity"]  # a container without a command idles until killed
HOST_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")


@dataclass
class Process:
    popen: subprocess.Popen
    started_at: float
    log_path: str
    exit_code: int | None = None
    finished_at: float | None = None
    signals: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        """The exit code once the process has ended (negative signal numbers become 128+n)."""
        if self.exit_code is None:
            code = self.popen.poll()
            if code is not None:
                self.exit_code = 128 - code if code < 0 else code
                self.finished_at = time.time()
        return self.exit_code

    def signal(self, sig: signal.Signals) -> None:
        if self.poll() is not None:
            return
        self.signals.append(sig.name)
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def spawn(argv: list[str], env: dict[str, str], log_path: str, cwd: str | None) -> Process:
    """Start `argv` with exactly `env` (plus the host's PATH-like basics), output to a file."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    full_env = {k: os.environ[k] for k in HOST_ENV if k in os.environ}
    full_env.update(env)
    with open(log_path, "ab") as out:
        popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
                                 start_new_session=True, close_fds=True)
    return Process(popen, time.time(), log_path)
