"""Files are written whole or not at all: a reader never sees half a file, and a write
that fails (or is interrupted) leaves the old file as it was and no temporary file."""

import os

import pytest

from scheduler import files


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
