import os
from pathlib import Path

import pytest

from scheduler import files


def written_to_a_fifo(fifo: Path, data: bytes) -> bytes:
    """Write `data` through `scheduler.files` into the FIFO `fifo` and return what its
    reader got. The read end is opened first, without blocking, so the write cannot wait
    for a reader, and a write that never reaches the FIFO reads as b"" instead of hanging."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        files.write_bytes(fifo, data)
        try:
            return os.read(fd, 1 << 16)
        except BlockingIOError:
            return b""
    finally:
        os.close(fd)


@pytest.fixture
def devices_written_in_place(tmp_path, monkeypatch):
    """Proof, on a FIFO of our own, that the code under test writes special files in place,
    before a test writes to /dev: the old code replaced /dev/null itself with a regular
    file (as root). Any rename onto /dev fails the test instead of happening."""
    fifo = tmp_path / "probe.pipe"
    os.mkfifo(fifo)
    assert written_to_a_fifo(fifo, b"x") == b"x", "special files are still replaced"
    fifo.unlink()
    real = os.replace

    def guarded(src, dst, *a, **k):
        assert not str(dst).startswith("/dev/"), f"would replace {dst}"
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", guarded)
