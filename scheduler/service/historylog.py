"""The durable history of a live run: append-only canonical JSONL, the simulation's schema.

Every `HistoryEvent` the core, the agents or the service's observers append becomes one row
(`HistoryEvent.to_row(seq)`, docs/history.md) with `t` converted from the core's `now` to
seconds since the run started (`RunClock.t`). Rows are written to the file as they are
appended (a `kill -9` loses nothing the kernel has), and `flush()` fsyncs once per batch:
the engine calls it after every event it handed to the core, so a power cut loses at most
the batch in flight.

The file is the history: the service keeps only where each row starts in it (8 bytes a row),
not the rows, so a service that runs for days holds no growing list of them; `since` reads
the rows `GET /history` asks for back from the file, and a restart replays the file row by
row (`replay`). Without a file (a test's in-memory service) the rows are kept in memory.

On open, an existing file is continued: `seq` restarts after the last whole row, and a torn
last line (the process died mid-write) is cut off, so the file stays valid JSONL that
`scheduler.history.read_jsonl` and the checker read as they are.
"""

from __future__ import annotations

import dataclasses
import json
import os
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from scheduler.history import HistoryEvent, canonical_line


class HistoryLog:
    """A `HistorySink` backed by a file (or memory only, when `path` is None)."""

    def __init__(self, path: Path | None, to_t: Callable[[float], float]) -> None:
        self.path = path
        self.to_t = to_t
        self.observers: list[Callable[[dict[str, Any]], None]] = []
        self.last: dict[str, Any] | None = None  # the last row, as appended or read back
        self._kept: list[dict[str, Any]] | None = [] if path is None else None
        self._starts = array("q")  # each row's first byte in the file
        self._end = 0  # the bytes of whole rows
        self._fd: int | None = None
        self._dirty = False
        if path is not None:
            self._recover(path)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, event: HistoryEvent) -> dict[str, Any]:
        row = dataclasses.replace(event, t=self.to_t(event.t)).to_row(len(self))
        if self._kept is not None:
            self._kept.append(row)
        if self._fd is not None:
            line = (canonical_line(row) + "\n").encode()
            os.write(self._fd, line)
            self._starts.append(self._end)
            self._end += len(line)
            self._dirty = True
        self.last = row
        for observe in self.observers:
            observe(row)
        return row

    def flush(self) -> None:
        if self._fd is not None and self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    def since(self, offset: int, limit: int | None = None) -> list[dict[str, Any]]:
        """Rows `offset` up to `offset + limit` (all the rest without a limit)."""
        n = len(self)
        start = max(offset, 0)
        end = n if limit is None else min(n, start + limit)
        if start >= end:
            return []
        if self._kept is not None:
            return self._kept[start:end]
        assert self.path is not None
        stop = self._starts[end] if end < n else self._end
        with open(self.path, "rb") as f:
            f.seek(self._starts[start])
            data = f.read(stop - self._starts[start])
        return [json.loads(line) for line in data.splitlines()]

    def replay(self) -> Iterator[dict[str, Any]]:
        """Every row so far, one at a time (a restarted service rebuilds its state from them)."""
        if self._kept is not None:
            yield from list(self._kept)
            return
        assert self.path is not None
        with open(self.path, "rb") as f:
            for _ in range(len(self)):
                yield json.loads(f.readline())

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every row, read back whole: for tests and small runs (the service itself reads
        `since` and `replay`)."""
        return self.since(0)

    def __len__(self) -> int:
        return len(self._kept) if self._kept is not None else len(self._starts)

    def close(self) -> None:
        if self._fd is not None:
            self.flush()
            os.close(self._fd)
            self._fd = None

    def _recover(self, path: Path) -> None:
        """Index the whole rows of an existing file and cut a torn tail."""
        if not path.exists():
            return
        size = path.stat().st_size
        for row, start, end in scan_rows(path, fix="move it away to start a new run"):
            self._starts.append(start)
            self._end = end
            self.last = row
        if self._end != size:
            with open(path, "r+b") as f:
                f.truncate(self._end)
                f.flush()
                os.fsync(f.fileno())


def scan_rows(path: Path, *, fix: str) -> Iterator[tuple[dict[str, Any], int, int]]:
    """The whole rows of a history file, one at a time, with the bytes each spans. Stops
    before a torn last line (the process died mid-write). A row out of `seq` order, or a line
    that is not JSON with lines after it (damaged, not torn: cutting it would cut every row
    after it), is a ValueError naming it, ending with `fix`."""
    seq = 0
    end = 0
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                return
            try:
                row = json.loads(line)
            except ValueError:
                if f.read(1):
                    raise ValueError(
                        f"{path}: line {seq + 1} is not a JSON history row, and lines follow "
                        f"it (only a torn last line is left out): the history file was damaged "
                        f"or edited; {fix}"
                    ) from None
                return
            if not isinstance(row, dict) or row.get("seq") != seq:
                got = row.get("seq") if isinstance(row, dict) else row
                raise ValueError(
                    f"{path}: row {seq + 1} has seq {got!r}, expected {seq}: "
                    f"the history file was edited or belongs to another run; {fix}"
                )
            yield row, end, end + len(line)
            end += len(line)
            seq += 1


def whole_rows(path: Path, *, fix: str) -> tuple[list[dict[str, Any]], int, int]:
    """The whole rows of a history file, the bytes they take and the file's size (more when
    its last line is torn). Reads only: the service cuts the torn tail when it continues the
    run, `unstuck close-run` leaves it. Refuses as `scan_rows` does."""
    size = path.stat().st_size
    rows: list[dict[str, Any]] = []
    good = 0
    for row, _, end in scan_rows(path, fix=fix):
        rows.append(row)
        good = end
    return rows, good, size
