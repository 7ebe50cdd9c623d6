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

Why it records the scheduler
----------------------------
A history is judged as the run of one scheduler variant, but its rows do not name it (they
are the simulation's, whose digests must not change). The first start of a run records its
`--scheduler` here, once: a later start with another variant is refused (`other_scheduler`),
and `unstuck close-run` labels the run with it. A clock file written before the field
existed records none and stays so (a restart cannot know which variant served the rows
before it): such a run is closed with `--scheduler`.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

from scheduler import files
from scheduler.variants import NAMES

OFFSET_MIN_S = 1.0e4  # trio's SystemClock range: far from any Unix time, exact to the ns
OFFSET_SPAN_S = 1.9e5


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def read_state(path: Path, *, fix: str) -> dict:
    """A clock file's state: `offset`, `run_start`, the last saved reading (`now_at`, on
    the run's axis, and the wall time `wall_at` it was taken at) and, when recorded, the
    `scheduler` the run is served by. A file that is not one is a ValueError naming it,
    ending with `fix`."""
    try:
        state = json.loads(path.read_text())
        for key in ("offset", "run_start", "now_at", "wall_at"):
            float(state[key])
        if state.get("scheduler", NAMES[0]) not in NAMES:
            raise ValueError(f"scheduler {state['scheduler']!r} is not one of {', '.join(NAMES)}")
    except (OSError, ValueError, TypeError, KeyError) as exc:
        why = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ValueError(
            f"{path}: not a clock file ({why}); it is written by `unstuck serve` in its "
            f"--data-dir: {fix}"
        ) from None
    return state


def last_t(state: dict) -> float:
    """History time of a clock file's (`read_state`) last saved reading: the service saves
    one when it starts, every 50 watch ticks and when it stops, so for a stopped service it
    is the instant the run's clock stopped (`unstuck close-run` ends the run there)."""
    return float(state["now_at"]) - float(state["run_start"])


def other_scheduler(path: Path, recorded: str | None, scheduler: str, *, fix: str) -> str | None:
    """Why `scheduler` must not serve or label the run whose clock file records `recorded`,
    or None. One history judges one scheduler: its rows under two would be judged as one's."""
    if recorded is None or recorded == scheduler:
        return None
    return (f"{path}: records that this run is served by --scheduler {recorded} (since its "
            f"first start), not --scheduler {scheduler}: one history judges one scheduler; {fix}")


class RunClock:
    """`now()` for the core, `t(now)` for history rows. One per service process."""

    def __init__(self, path: Path | None, *, scheduler: str | None = None,
                 rng: random.Random | None = None) -> None:
        self.path = path
        state = self._load()
        recorded = None if state is None else state.get("scheduler")
        if path is not None and scheduler is not None and (why := other_scheduler(
                path, recorded, scheduler, fix=f"give a new --data-dir, or --scheduler {recorded}")):
            raise ValueError(why)  # before save(): the refused start writes nothing here
        # Recorded at the run's first start only: see "Why it records the scheduler".
        self.scheduler = scheduler if state is None else recorded
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
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler
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
