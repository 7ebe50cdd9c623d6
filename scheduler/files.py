"""Files written whole or not at all.

A reader must never see half a file: the agent rereading its state lock after a crash,
the service its run clock, `unstuck report` a results folder after a Ctrl-C, kubectl its
kubeconfig. Each write goes to a temporary file beside the target and then replaces the
target in one rename, which POSIX makes atomic within a filesystem. `fsync` also flushes
the data to disk before the rename, for state that must survive a power cut; reports and
results skip it (thousands of files a run, and a rerun rebuilds them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: Path, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write; when the block ends without an error,
    that file replaces `path`. On an error (or Ctrl-C) the temporary file is removed and
    `path` is left as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes, *, fsync: bool = False) -> None:
    with replacing(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str, *, fsync: bool = False) -> None:
    write_bytes(path, text.encode("utf-8"), fsync=fsync)
