"""The live run's clock: a monotonic clock plus a large random offset, durable across restarts.

Why an offset
-------------
The core compares `now` with times it stored earlier (`updated_at`, `apply_confirmed_at`,
the plan TTL). A clock read from `time.time()` would work by accident; adding a random
offset of 10^4 to 2*10^5 s (STYLE.md §2, as trio's `SystemClock` does) makes any code that
mixes `now` with wall time fail fast: a Unix time is ~1.7e9, while `now` stays below ~1e6
on a machine that has been up for days.

Why durable
-----------
A `kill -9` and a restart must not move `now` backwards or by the offset, or every stored
time would be wrong after the restart. The first start of a run writes `clock.json` (the
offset, the run start and this machine's boot id); later starts reuse the offset. After a
reboot `time.monotonic()` restarts from zero, so the offset is re-anchored on wall time
elapsed since the last recorded reading (the one place wall time is used, and only to
bridge the gap), and never below the history's last row (`not_before`).

History times: `t = now - run_start`, seconds since the first start of the run, so a
history that spans restarts keeps one time axis (docs/service.md).
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

from scheduler import files

OFFSET_MIN_S = 1.0e4  # trio's SystemClock range: far from any Unix time, exact to the ns
OFFSET_SPAN_S = 1.9e5


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def read_state(path: Path, *, fix: str) -> dict:
    """A clock file's state: `offset`, `run_start` and the last saved reading (`now_at`, on
    the run's axis, and the wall time `wall_at` it was taken at). A file that is not one is a
    ValueError naming it, ending with `fix`."""
    try:
        state = json.loads(path.read_text())
        for key in ("offset", "run_start", "now_at", "wall_at"):
            float(state[key])
    except (OSError, ValueError, TypeError, KeyError) as exc:
        why = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ValueError(
            f"{path}: not a clock file ({why}); it is written by `unstuck serve` in its "
            f"--data-dir: {fix}"
        ) from None
    return state


def last_t(path: Path, *, fix: str) -> float:
    """History time of the clock file's last saved reading: the service saves one when it
    starts, every 50 watch ticks and when it stops, so for a stopped service it is the
    instant the run's clock stopped (`unstuck close-run` ends the run there)."""
    state = read_state(path, fix=fix)
    return float(state["now_at"]) - float(state["run_start"])


class RunClock:
    """`now()` for the core, `t(now)` for history rows. One per service process."""

    def __init__(self, path: Path | None, *, rng: random.Random | None = None) -> None:
        self.path = path
        state = self._load()
        if state is None:
            r = rng or random.Random(int.from_bytes(os.urandom(8), "big"))
            self.offset = OFFSET_MIN_S + r.random() * OFFSET_SPAN_S
            self.run_start = self.now()
        else:
            self.offset = float(state["offset"])
            self.run_start = float(state["run_start"])
            if state.get("boot_id") != _boot_id():
                # monotonic() restarted with the machine: continue from the last reading,
                # plus the wall time that passed since (never backwards).
                gap = max(0.0, time.time() - float(state["wall_at"]))
                self.offset = float(state["now_at"]) + gap - time.monotonic()
        self.restarted = state is not None
        self.save()

    def _load(self) -> dict | None:
        if self.path is None or not self.path.exists():
            return None
        return read_state(self.path, fix="delete it to start a new run (history times restart at 0)")

    def save(self) -> None:
        """Record the offset and a (now, wall) reading; called at start and now and then."""
        if self.path is None:
            return
        state = {"offset": self.offset, "run_start": self.run_start, "boot_id": _boot_id(),
                 "now_at": self.now(), "wall_at": time.time()}
        files.write_text(self.path, json.dumps(state), fsync=True)

    def now(self) -> float:
        return time.monotonic() + self.offset

    def not_before(self, t: float) -> None:
        """Move the clock on to history time `t` if it is behind it. After a reboot the clock
        is bridged from its last saved reading by wall time, which may have stepped back
        (NTP, a wrong RTC) or be shorter than the rows written after that reading; the
        history's last row is a floor that time must not go below (the checker refuses a
        history whose time goes back)."""
        behind = t - self.t()
        if behind > 0:
            self.offset += behind
            self.save()

    def t(self, now: float | None = None) -> float:
        """Seconds since the run's first start: the history's time axis."""
        return (self.now() if now is None else now) - self.run_start
