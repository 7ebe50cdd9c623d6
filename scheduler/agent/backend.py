"""A simulated Terraform backend in a shared directory: saved plans, state, a fenced state lock.

Layout under the backend directory (every agent of a run points at the same one, as every
Terraform run points at the same S3 bucket):

- `plans/<task>.json`: the saved plan of a task, with its digest;
- `state/<workspace>.json`: the workspace's state: a serial and every apply committed;
- `locks/<workspace>.json`: the state lock: holder (task, fence, agent) and a lease expiry.

The lock refuses a second concurrent apply of the same workspace while its holder's lease
runs (`StateLocked`). The holder renews the lease while it works. An apply commits only if it
still holds the lock with an unexpired lease; otherwise it fails with `LockLost` and changes
nothing. So an agent that was frozen (SIGSTOP, a lost node) past its lease cannot commit when
it wakes, even if nobody took the lock meanwhile: it cannot know, so it must not write. That
is the fencing that makes "no apply executed twice" hold at the state, not only in the
scheduler. The seed's agent (`unstuck agent --scheduler seed`) holds the lock without a
lease (`lease_s=None`): it refuses nobody, a newer apply takes it over, and the older holder
can then no longer commit. Every read-modify-write runs under an `flock` of the workspace's
lock file.
Lease times are wall-clock (`time.time()`): they are compared across processes.

The reference scheduler reads the same directory (`unstuck serve --backend-dir`) through
`apply_outcome` when the agent of an apply goes silent: the state is where an apply becomes a
fact, so it, not a guess, says whether the change was made.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scheduler import files
from scheduler.ports import ApplyOutcome, StateReadError


class StateLocked(Exception):
    """Another apply holds the workspace's state lock (its lease has not expired)."""


class LockLost(Exception):
    """This apply no longer holds the state lock (lease expired or taken over): no commit."""


class PlanFenced(Exception):
    """A newer plan of the task (a higher fence) is saved: this plan run is stale, and must not
    replace the plan the scheduler now shows the user (and the apply will check)."""


@dataclass(frozen=True)
class Token:
    task: int
    fence: int
    agent: str


def _write_json(path: Path, data: Any) -> None:
    files.write_text(path, json.dumps(data, sort_keys=True), fsync=True)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


LAYOUT = ("plans", "state", "locks")


def _unexpired(held: dict[str, Any], now: float) -> bool:
    """Whether the holder may still commit: its lease runs, or it has none (the seed's)."""
    return held["expires"] is None or held["expires"] > now


def _live(held: dict[str, Any], now: float) -> bool:
    """Whether a lock refuses other tokens: under a lease that runs. The seed's lock (no
    lease, `expires` None) refuses nobody: it is taken over."""
    return held["expires"] is not None and _unexpired(held, now)


class Backend:
    def __init__(self, root: Path, lease_s: float | None = 30.0, *, create: bool = True) -> None:
        """`lease_s=None` is the seed's lock, which has no lease: an acquire always takes it
        over, and the holder it took it from can no longer commit. `create=False` for a
        reader (the scheduler): it makes nothing, so a mistyped path reads as no backend
        (`StateReadError`), not as an empty one that never committed."""
        self.root = Path(root)
        self.lease_s = lease_s
        if create:
            for sub in LAYOUT:
                (self.root / sub).mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------- plans
    def save_plan(self, task: int, fence: int, workspace: str, agent: str, has_changes: bool) -> str:
        """Save the task's plan for run `fence`; `PlanFenced` if a plan of a higher fence is
        saved: a stale run (its agent frozen while the scheduler planned again elsewhere) must
        not replace the plan the user is shown, or the confirmed apply fails on its digest.
        An equal fence writes (the seed's scheduler never moves a fence)."""
        body = json.dumps({"task": task, "fence": fence, "workspace": workspace, "agent": agent,
                           "has_changes": has_changes, "at": time.time()}, sort_keys=True)
        digest = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
        path = self.root / "plans" / f"{task}.json"
        with open(self.root / "plans" / f"{task}.lk", "a+") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                saved = _read_json(path)
                newer = json.loads(saved["plan"])["fence"] if saved else None
                if newer is not None and newer > fence:
                    raise PlanFenced(f"plan fenced: stale token (task {task}, fence {fence}); "
                                     "a newer plan of the task is saved")
                _write_json(path, {"digest": digest, "plan": body})
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return digest

    def plan_digest(self, task: int) -> str | None:
        saved = _read_json(self.root / "plans" / f"{task}.json")
        return saved["digest"] if saved else None

    # ---------------------------------------------------------------- state
    def state(self, workspace: str) -> dict[str, Any]:
        return _read_json(self.root / "state" / f"{workspace}.json") or {"serial": 0, "applies": []}

    @contextlib.contextmanager
    def _locked(self, workspace: str):
        with open(self.root / "locks" / f"{workspace}.lk", "a+") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield self.root / "locks" / f"{workspace}.json"
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def acquire(self, workspace: str, token: Token) -> tuple[int, int] | None:
        """Take the lock for `token`; returns the (task, fence) it took over from, if any."""
        with self._locked(workspace) as path:
            held = _read_json(path)
            now = time.time()
            other = bool(held) and (held["task"], held["fence"]) != (token.task, token.fence)
            if other and _live(held, now):
                raise StateLocked(
                    f"state of {workspace} is locked by task {held['task']} (fence {held['fence']}, "
                    f"agent {held['agent']}) for {held['expires'] - now:.1f} s more")
            _write_json(path, {"task": token.task, "fence": token.fence, "agent": token.agent,
                               "expires": None if self.lease_s is None else now + self.lease_s})
            return (held["task"], held["fence"]) if other else None

    def _mine(self, held: Any, token: Token) -> bool:
        return bool(held) and (held["task"], held["fence"], held["agent"]) == (
            token.task, token.fence, token.agent) and _unexpired(held, time.time())

    def renew(self, workspace: str, token: Token) -> None:
        with self._locked(workspace) as path:
            held = _read_json(path)
            if not self._mine(held, token):
                raise LockLost(f"state lock of {workspace} lost (lease expired or taken over)")
            if self.lease_s is not None:
                held["expires"] = time.time() + self.lease_s
                _write_json(path, held)

    def commit(self, workspace: str, token: Token, digest: str) -> int:
        """Write the apply into the state and release the lock; returns the new serial."""
        with self._locked(workspace) as path:
            held = _read_json(path)
            if not self._mine(held, token):
                raise LockLost(f"state lock fenced: stale token (task {token.task}, fence "
                               f"{token.fence}); the apply was not committed")
            state = self.state(workspace)
            state["serial"] += 1
            state["applies"].append({"task": token.task, "fence": token.fence, "agent": token.agent,
                                     "digest": digest, "at": time.time()})
            _write_json(self.root / "state" / f"{workspace}.json", state)
            path.unlink()
            return state["serial"]

    def release(self, workspace: str, token: Token) -> None:
        with self._locked(workspace) as path:
            held = _read_json(path)
            if held and (held["task"], held["fence"], held["agent"]) == (token.task, token.fence, token.agent):
                path.unlink()

    # ---------------------------------------------------------------- the scheduler's read
    def apply_outcome(self, workspace: str, task: int, fence: int) -> ApplyOutcome:
        """What the state says of the apply run `(task, fence)` (the `StateBackend` port).

        Read without the flock, so a reader needs no write access: the lock first, then the
        state. A commit writes the state before it removes the lock, so a run seen holding
        the lock that commits before the state is read is seen committed; and a run not
        seen holding a live lease cannot commit after (`commit` checks the lease; time only
        grows), unless it had not yet started (see `ApplyOutcome.NOT_COMMITTED`)."""
        try:
            missing = [sub for sub in LAYOUT[1:] if not (self.root / sub).is_dir()]
        except OSError as err:  # is_dir raises what is not "no such file" (EACCES, EIO)
            raise StateReadError(f"cannot read the backend at {self.root}: {err}") from err
        if missing:
            raise StateReadError(
                f"no backend at {self.root} ({'/, '.join(missing)}/ missing): no agent has "
                "used it; give the scheduler the agents' --backend-dir")
        try:
            # `now` first: a lease read as running out before `now` was taken cannot have been
            # renewed after it (`renew` refuses an expired lease, and time only grows).
            now = time.time()
            held = _read_json(self.root / "locks" / f"{workspace}.json")
            state = self.state(workspace)
            if any((a["task"], a["fence"]) == (task, fence) for a in state["applies"]):
                return ApplyOutcome.COMMITTED
            if held and (held["task"], held["fence"]) == (task, fence) and _unexpired(held, now):
                return ApplyOutcome.IN_DOUBT  # without a lease, the holder may commit any time
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise StateReadError(f"cannot read the state of {workspace} in {self.root}: {err}") from err
        return ApplyOutcome.NOT_COMMITTED
