"""One service per data folder: an exclusive `flock` on `DATA_DIR/serve.lock`.

Why a lock
----------
Two `unstuck serve` on one --data-dir (two ports, or a restarted scheduler whose old
process has not exited yet: Kubernetes may start a Deployment's new pod before the old one
has terminated) each continue the history from the `seq` they read at start and each save
clock.json. The history then reads `seq` 0, 0, 1, 2, 3, 1, 2, 3; the next start and
`unstuck close-run` refuse it ("row 2 has seq 0, expected 1") and the run is lost. So
`unstuck serve` holds this lock for its whole life (`take`), and `unstuck close-run`, which
must not snapshot a run still in progress, asks whether anyone does (`holder`). One rule,
this module, for both.

Why flock
---------
The kernel drops a flock when the process holding it dies, even by SIGKILL, so a crashed
service never leaves a stale lock and nothing needs cleaning before a restart. The lock
belongs to the open file description, which Python opens non-inheritable: an agent or a
child process never keeps it. The lock file is never removed: unlinking it while another
process waits on it would let two processes lock two different files. While held it records
the holder's pid, port and host (JSON), for the message of whoever is refused.

The waiting process polls (`LOCK_NB` every `POLL_S`) rather than blocking in `flock`, so its
wait is bounded and a SIGTERM still ends it at once.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import socket
import time
from pathlib import Path

LOCK = "serve.lock"
POLL_S = 0.1


@dataclasses.dataclass(frozen=True)
class Holder:
    """The process holding a data folder: what its lock file records (None: not recorded
    yet, the holder has just taken it)."""

    pid: int | None
    port: int | None
    host: str | None

    def __str__(self) -> str:
        if self.pid is None:
            return "the service (pid and port not recorded yet)"
        elsewhere = "" if self.host in (None, socket.gethostname()) else f" on host {self.host}"
        return f"the service (pid {self.pid}, port {self.port}{elsewhere})"


class FolderHeld(Exception):
    """`take` gave up: another process still holds the folder."""

    def __init__(self, folder: Path, holder: Holder) -> None:
        super().__init__(f"{folder}: held by {holder}")
        self.folder = folder
        self.holder = holder


def _locked(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _recorded(fd: int) -> Holder:
    try:
        info = json.loads(os.pread(fd, 4096, 0))
        return Holder(int(info["pid"]), int(info["port"]), str(info["host"]))
    except (OSError, ValueError, TypeError, KeyError):
        return Holder(None, None, None)


def holder(folder: Path) -> Holder | None:
    """Who holds `folder` now, or None: nobody. Reads only: a folder without a lock file
    (never served, or copied without it) has no holder, and no lock file is created.
    An OSError when the lock file exists but cannot be opened."""
    try:
        fd = os.open(folder / LOCK, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        if _locked(fd, fcntl.LOCK_SH):  # released when closed below
            return None
        return _recorded(fd)
    finally:
        os.close(fd)


def take(folder: Path, *, port: int, wait_s: float) -> int:
    """Hold `folder` exclusively for the life of this process: create it and its lock file
    if missing (the first thing written there), wait up to `wait_s` for a holder to let go,
    then record this process in the lock file. Returns the lock's descriptor: keep it open
    (closing it, or exiting, lets go). `FolderHeld` naming the holder when it did not let
    go in time; an OSError when the folder or the file cannot be made or opened."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    deadline = time.monotonic() + wait_s
    try:
        while not _locked(fd, fcntl.LOCK_EX):
            if time.monotonic() >= deadline:
                raise FolderHeld(folder, _recorded(fd))
            time.sleep(POLL_S)
        record = json.dumps({"pid": os.getpid(), "port": port, "host": socket.gethostname()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, (record + "\n").encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return fd
