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
not be: no one rereads a pipe.
"""

from __future__ import annotations

import errno
import os
import stat
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
    target = Path(os.path.realpath(path))
    if target.is_symlink():  # a loop: realpath gives up and returns a link
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path))
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        yield target
        return
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


def write_bytes(path: Path, data: bytes, *, fsync: bool = False) -> None:
    with replacing(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str, *, fsync: bool = False) -> None:
    write_bytes(path, text.encode("utf-8"), fsync=fsync)
