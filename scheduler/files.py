"""Files written whole or not at all.

A reader must never see half a file: the agent rereading its state lock after a crash,
the service its run clock, `unstuck report` a results folder after a Ctrl-C, kubectl its
kubeconfig. Each write goes to a temporary file beside the target and then replaces the
target in one rename, which POSIX makes atomic within a filesystem. `fsync` also flushes
the data to disk before the rename, for state that must survive a power cut; reports and
results skip it (thousands of files a run, and a rerun rebuilds them).

Only a regular file can be replaced that way. A symlink is followed, so the file it names
is replaced and the link stays a link (a user's `run.jsonl -> runs/today.jsonl`); a
FIFO or a device (`/dev/stdout`, `/dev/null`, a named pipe another program reads) is
written in place, since a rename would put a regular file where it was (as root, even
in /dev) and its reader would never see a byte. Such a write is not atomic, and needs
not be: no one rereads a pipe. A path naming one of this process's own descriptors
(`/dev/stdout`, `/dev/fd/3`) is written through that descriptor, after what the process
printed: it may be a redirected regular file (`> out.jsonl`), which must be neither
replaced nor truncated.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import select
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: Path, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write; when the block ends without an error,
    that file replaces `path`. On an error (or Ctrl-C) the temporary file is removed and
    `path` is left as it was. A symlink is followed to the file it names; an existing FIFO
    or device is yielded itself, to be written in place (module docstring)."""
    path = Path(path)
    fd = fd_alias(path)
    if fd is not None:
        with _through(fd) as tmp:
            yield tmp
        return
    try:
        mode = os.stat(path).st_mode  # follows links
    except FileNotFoundError:
        mode = None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path)) from None
        raise
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        yield path
        return
    target = Path(os.path.realpath(path))
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


_FD_PATH = re.compile(r"/dev/std(in|out|err)|/dev/fd/(\d+)|/proc/(self|thread-self|\d+)/fd/(\d+)")


def fd_number(path: Path) -> int | None:
    """The descriptor a path spells (/dev/stdout, /dev/fd/N, /proc/self/fd/N, and the
    like), read from its text alone; else None. See `fd_alias`."""
    m = _FD_PATH.fullmatch(re.sub(r"/+", "/", os.path.abspath(path)))
    if m is None or (m.group(3) and m.group(3).isdigit() and int(m.group(3)) != os.getpid()):
        return None
    if m.group(1):
        return ("in", "out", "err").index(m.group(1))
    return int(m.group(2) or m.group(4))


def fd_alias(path: Path) -> int | None:
    """The descriptor `path` names, when it is one of this process's own open descriptors
    (/dev/stdout, /dev/fd/N, /proc/self/fd/N); else None. Such a path is the caller's own
    open file: replacing what it resolves to would swap the file a shell redirected stdout
    to (`> out.jsonl`) for a new one while this process still writes to the old, and
    reopening it would truncate it or write at an offset the descriptor does not share. The
    text must match and the path must lead to the descriptor's own file (/dev/fd/01 or
    /dev/fd/../stdout spell fd 1 but lead elsewhere)."""
    fd = fd_number(path)
    if fd is None:
        return None
    try:
        return fd if os.path.samestat(os.stat(path), os.fstat(fd)) else None
    except OSError:
        return None


@contextmanager
def _through(fd: int) -> Iterator[Path]:
    """A temporary file to write, then copied into descriptor `fd` after whatever this
    process has printed, at the descriptor's own position."""
    handle, name = tempfile.mkstemp(prefix=".unstuck-", suffix=".tmp")
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed or replaced stream
                stream.flush()
        with open(tmp, "rb") as src:
            while chunk := src.read(1 << 20):
                view = memoryview(chunk)
                while view:
                    try:
                        view = view[os.write(fd, view):]
                    except BlockingIOError:  # a non-blocking pipe that is full: wait for room
                        select.select([], [fd], [])
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes, *, fsync: bool = False) -> None:
    with replacing(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str, *, fsync: bool = False) -> None:
    write_bytes(path, text.encode("utf-8"), fsync=fsync)
