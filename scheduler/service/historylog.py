"""The durable history of a live run: append-only canonical JSONL, the simulation's schema.

Every `HistoryEvent` the core, the agents or the service's observers append becomes one row
(`HistoryEvent.to_row(seq)`, docs/history.md) with `t` converted from the core's `now` to
seconds since the run started (`RunClock.t`). Rows are written to the file as they are
appended (a `kill -9` loses nothing the kernel has), and `flush()` fsyncs once per batch:
the engine calls it after every event it handed to the core, so a power cut loses at most
the batch in flight.

On open, an existing file is continued: `seq` restarts after the last whole row, and a torn
last line (the process died mid-write) is cut off, so the file stays valid JSONL that
`scheduler.history.read_jsonl` and the checker read as they are.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scheduler.history import HistoryEvent, canonical_line


class HistoryLog:
    """A `HistorySink` backed by a file (or memory only, when `path` is None)."""

    def __init__(self, path: Path | None, to_t: Callable[[float], float]) -> None:
        self.path = path
        self.to_t = to_t
        self.rows: list[dict[str, Any]] = []
        self.observers: list[Callable[[dict[str, Any]], None]] = []
        self._fd: int | None = None
        self._dirty = False
        if path is not None:
            self.rows = _recover(path)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, event: HistoryEvent) -> dict[str, Any]:
        row = dataclasses.replace(event, t=self.to_t(event.t)).to_row(len(self.rows))
        self.rows.append(row)
        if self._fd is not None:
            os.write(self._fd, (canonical_line(row) + "\n").encode())
            self._dirty = True
        for observe in self.observers:
            observe(row)
        return row

    def flush(self) -> None:
        if self._fd is not None and self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    def since(self, offset: int, limit: int | None = None) -> list[dict[str, Any]]:
        end = len(self.rows) if limit is None else offset + limit
        return self.rows[max(offset, 0):end]

    def __len__(self) -> int:
        return len(self.rows)

    def close(self) -> None:
        if self._fd is not None:
            self.flush()
            os.close(self._fd)
            self._fd = None


def _recover(path: Path) -> list[dict[str, Any]]:
    """Read the whole rows of an existing file and cut a torn tail."""
    if not path.exists():
        return []
    rows, good, size = whole_rows(path, fix="move it away to start a new run")
    if good != size:
        with open(path, "r+b") as f:
            f.truncate(good)
            f.flush()
            os.fsync(f.fileno())
    return rows


def whole_rows(path: Path, *, fix: str) -> tuple[list[dict[str, Any]], int, int]:
    """The whole rows of a history file, the bytes they take and the file's size (more when
    its last line is torn: the process died mid-write). Reads only: the service cuts the torn
    tail when it continues the run, `unstuck close-run` leaves it. A row out of `seq` order,
    or a line that is not JSON with lines after it (damaged, not torn: cutting it would cut
    every row after it), is a ValueError naming it, ending with `fix`."""
    data = path.read_bytes()
    rows: list[dict[str, Any]] = []
    good = 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            row = json.loads(line)
        except ValueError:
            if b"\n" in data[good + len(line):]:
                raise ValueError(
                    f"{path}: line {len(rows) + 1} is not a JSON history row, and lines follow "
                    f"it (only a torn last line is left out): the history file was damaged or "
                    f"edited; {fix}"
                ) from None
            break
        if not isinstance(row, dict) or row.get("seq") != len(rows):
            seq = row.get("seq") if isinstance(row, dict) else row
            raise ValueError(
                f"{path}: row {len(rows) + 1} has seq {seq!r}, expected {len(rows)}: "
                f"the history file was edited or belongs to another run; {fix}"
            )
        rows.append(row)
        good += len(line)
    return rows, good, len(data)
