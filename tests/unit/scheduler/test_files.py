"""Files are written whole or not at all: a reader never sees half a file, and a write
that fails (or is interrupted) leaves the old file as it was and no temporary file."""

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler import files
from tests.unit.conftest import written_to_a_fifo

ROOT = Path(__file__).resolve().parents[3]


def test_a_write_replaces_the_file_whole_and_leaves_nothing_beside_it(tmp_path):
    target = tmp_path / "manifest.json"
    target.write_text("old")
    files.write_text(target, "new ünïcode")
    assert target.read_text(encoding="utf-8") == "new ünïcode"
    files.write_bytes(target, b"\x00bytes", fsync=True)
    assert target.read_bytes() == b"\x00bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


def test_a_write_that_fails_midway_keeps_the_old_file(tmp_path):
    target = tmp_path / "seed-0.parquet"
    target.write_bytes(b"the whole old file")

    class Interrupted(KeyboardInterrupt):
        pass

    with pytest.raises(Interrupted), files.replacing(target) as tmp:
        tmp.write_bytes(b"half of the new")
        raise Interrupted  # Ctrl-C in the middle of a write
    assert target.read_bytes() == b"the whole old file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed-0.parquet"]


def test_the_temporary_file_is_hidden_beside_the_target(tmp_path):
    """Beside it, so that the rename stays within one filesystem; hidden and not ending in
    the target's suffix, so that readers globbing `*.parquet` never pick it up."""
    with files.replacing(tmp_path / "seed-0.parquet") as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".") and tmp.suffix == ".tmp"
        assert str(os.getpid()) in tmp.name
        tmp.write_bytes(b"x")


def test_a_symlink_is_followed_and_stays_a_link(tmp_path):
    """`--history link.jsonl` used to put a regular file where the link was and leave the
    file it names unchanged."""
    (tmp_path / "runs").mkdir()
    target = tmp_path / "runs" / "today.jsonl"
    target.write_text("old")
    link = tmp_path / "link.jsonl"
    link.symlink_to(Path("runs") / "today.jsonl")
    files.write_text(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(Path("runs") / "today.jsonl")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["link.jsonl", "runs", "today.jsonl"]


def test_a_dangling_symlink_creates_the_file_it_names(tmp_path):
    link = tmp_path / "link.jsonl"
    link.symlink_to("made.jsonl")
    files.write_text(link, "new")
    assert link.is_symlink() and (tmp_path / "made.jsonl").read_text() == "new"


def test_a_symlink_loop_is_an_error_that_leaves_the_links(tmp_path):
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(OSError) as e:
        files.write_text(tmp_path / "a", "new")
    assert e.value.errno == errno.ELOOP and e.value.filename == str(tmp_path / "a")
    assert (tmp_path / "a").is_symlink() and (tmp_path / "b").is_symlink()


def test_a_fifo_is_written_in_place(tmp_path):
    fifo = tmp_path / "history.pipe"
    os.mkfifo(fifo)
    assert written_to_a_fifo(fifo, b'{"seq": 1}\n') == b'{"seq": 1}\n'
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.pipe"]


def test_a_device_is_written_in_place(devices_written_in_place):
    files.write_text(Path("/dev/null"), "discarded")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_full_device_raises_enospc_and_stays_a_device(devices_written_in_place):
    with pytest.raises(OSError) as e:
        files.write_bytes(Path("/dev/full"), b"x" * 10)
    assert e.value.errno == errno.ENOSPC
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


_PRINTS_AROUND_A_WRITE = (
    "import sys; from pathlib import Path; from scheduler import files\n"
    "print('before'); files.write_text(Path(sys.argv[1]), 'history\\n'); print('after')\n")


def _run_with_stdout(stdout, target: str = "/dev/stdout") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _PRINTS_AROUND_A_WRITE, target], stdout=stdout,
                          cwd=ROOT, check=True)


@pytest.mark.parametrize("target", ["/dev/stdout", "//dev/stdout", "/proc/thread-self/fd/1"])
@pytest.mark.parametrize("mode,earlier", [("wb", b""), ("ab", b"earlier\n")])
def test_dev_stdout_redirected_to_a_file_is_written_through_stdout(tmp_path, mode, earlier, target):
    # `--history /dev/stdout > out.jsonl`: the file is stdout itself. Replaced, it lost what
    # was printed before and after (both went to the unlinked old file); reopened, it would
    # be truncated or overwritten at stdout's own offset.
    out = tmp_path / "out.jsonl"
    out.write_bytes(earlier)
    with open(out, mode) as f:
        _run_with_stdout(f, target)
    assert out.read_bytes() == earlier + b"before\nhistory\nafter\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


@pytest.mark.parametrize("target", ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1",
                                    "//dev/stdout", "/proc/thread-self/fd/1"])
def test_a_descriptor_path_on_a_pipe_is_written_through_it(target):
    # `--history /dev/stdout | jq`: it resolved to /proc/PID/fd/pipe:[N], which does not exist.
    done = _run_with_stdout(subprocess.PIPE, target)
    assert done.stdout == b"before\nhistory\nafter\n"


@pytest.mark.parametrize("path", ["/dev/fd/01", "/dev/fd/../stdout", "/tmp/stdout"])
def test_only_a_path_that_leads_to_the_descriptor_is_its_alias(path):
    # /dev/fd/.. is /proc/self: the text spells fd 1, the path leads nowhere.
    assert files.fd_alias(Path(path)) is None


def test_a_full_non_blocking_pipe_is_waited_for_not_cut_short():
    # A caller (Node's child_process, say) may hand over stdout as an O_NONBLOCK pipe: a
    # write into a full one raised BlockingIOError after 64 KiB.
    code = ("import os, sys; from pathlib import Path; from scheduler import files\n"
            "os.set_blocking(1, False)\n"
            "files.write_bytes(Path('/dev/stdout'), b'x' * 1_000_000)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=ROOT)
    import time

    time.sleep(0.5)  # let the pipe fill while nobody reads
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and len(out) == 1_000_000
