"""The agent process: register, heartbeat, long-poll for runs, execute them, report.

Threads: the main thread registers and long-polls; a heartbeat thread posts every
`heartbeat_s`; each run has its own thread; the outbox thread delivers reports in order.
When the scheduler answers 404 to a poll or a heartbeat (it restarted, or it disconnected
this agent after a silence), the agent registers again with the same id and pod.

SIGTERM (a pod deletion), `on_sigterm="drain"` (ours): the agent drains, as the simulated
one does (sim/agents.py `sigterm`): it stays connected, polling and heartbeating (its
heartbeats list what it still holds), and runs what it is still sent, until it holds no
runs and no undelivered reports; then it exits 0. Near the end of `grace_s` it stops taking
runs and aborts what is left (an abort before the commit is an explicit failure: nothing was
written), delivers the reports, and exits 0 at `grace_s` at the latest. A second SIGTERM or
SIGINT exits at once. `on_sigterm="exit"` is the seed's agent (`WaitForShutdown`, seed-system.md §8):
cancel every run, report nothing, close the connection and exit 0 at once; the scheduler
learns of it only from the pod's end or the silence (F8), as the seed's did from the
closed socket.

`unstuck agent --scheduler NAME` runs the agent that scheduler ships with (`AgentConfig.of`):
for the seed variants, the seed's agent in all four of the ways the simulation models it
(their `agent_*` attributes): it exits at once on SIGTERM, drops a report after 4 tries,
holds its state lock without a lease, and runs whatever it is sent without a claim.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from scheduler import heartbeat, reports
from scheduler.agent.backend import Backend
from scheduler.agent.client import BadAnswer, Client, NotRegistered, Outbox
from scheduler.agent.runs import Run, RunMessage
from scheduler.variants import agent_of

log = logging.getLogger("unstuck.agent")

UNREACHABLE_WARN_EVERY_S = 30.0
"""How often a registering agent repeats that its scheduler does not answer."""

DRAIN_POLL_S = 1.0
"""The longest poll of a draining agent: its poller ends within it once the agent exits."""


@dataclass(frozen=True)
class AgentConfig:
    url: str
    token: str
    pod: str
    agent_id: str
    pool_id: str = "pool-1"
    backend_dir: Path = Path("backend")
    plan_s: float = 60.0
    apply_s: float = 60.0
    heartbeat_s: float = 10.0
    has_changes: bool = True
    grace_s: float = 25.0
    lease_s: float | None = 30.0  # None: the seed's state lock, without a lease
    poll_timeout_s: float = 20.0
    plan_limit: int = 3
    on_sigterm: str = "drain"  # or "exit": what the agent does on SIGTERM (module docstring)
    reports: str = reports.UNTIL_DELIVERED  # or RETRY_THEN_DROP: the seed's (client.py)
    claims_runs: bool = True  # False: the seed's agent runs whatever it is sent (runs.py)
    scheduler: str | None = None  # whose agent this is, told at registration (`of`)
    # From start to the first registration: the real agent's init (tens of seconds, the
    # scenarios' agents.connect_s). Without it a replacement pod is usable the instant it
    # starts, and the window incident 601 fell into (a new pod whose agent has not yet
    # connected, seed-system.md F1 4b) never opens in a live run.
    connect_delay_s: float = 0.0

    @classmethod
    def of(cls, scheduler: str, **kw: Any) -> AgentConfig:
        """The agent the named scheduler ships with (its policy's `agent_*` attributes, the
        ones the simulated agents follow); `kw` sets the rest, and may override those."""
        traits = agent_of(scheduler)
        base: dict[str, Any] = {
            "on_sigterm": traits.on_sigterm, "reports": traits.reports,
            "claims_runs": traits.claims_runs, "scheduler": scheduler}
        if traits.state_lease_s is None:
            base["lease_s"] = None  # the seed's lock: no lease to set
            kw.pop("lease_s", None)
        return cls(**{**base, **kw})


def _message(r: httpx.Response) -> str:
    """The scheduler's `message`, or the body as it came (a proxy's page is not JSON)."""
    try:
        return str(r.json().get("message", r.text))
    except (ValueError, AttributeError):
        return r.text.strip()[:300] or "(empty body)"


class RegistrationRefused(Exception):
    """The scheduler refused this agent (a bad token, an unknown pool or pod, the wrong
    agent): bad input, which retrying cannot fix. The agent exits 2 with the message."""


class _Interrupted(Exception):
    """Raised by the SIGTERM handler into a blocked long-poll or registration, to stop
    waiting for it."""


class Agent:
    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.client = Client(cfg.url, cfg.token)
        self.outbox = Outbox(self.client, policy=cfg.reports)
        self.backend = Backend(cfg.backend_dir, lease_s=cfg.lease_s)
        self.runs: dict[int, Run] = {}
        self.seen: set[tuple[int, int, str]] = set()  # (task, fence, action) already started (ours)
        self.lock = threading.Lock()
        self.registered = threading.Event()
        self.terminating = threading.Event()  # SIGTERM: draining (ours) or leaving (the seed's)
        self.refusing = threading.Event()  # the grace is nearly over: no new run starts
        self.closing = threading.Event()  # no more polls and heartbeats: the agent exits
        self.terminate_at = 0.0
        self.after = 0
        self.waiting = False

    # ---------------------------------------------------------------- registration
    def register(self, until: threading.Event | None = None) -> None:
        """Register until the scheduler accepts or `until` is set (by default: a SIGTERM);
        a refusal (401, 403, 404, 409) raises `RegistrationRefused` (the process exits 2)."""
        until = until or self.terminating
        backoff = 0.05
        warned_at: float | None = None  # monotonic time of the last "unreachable" warning
        while not until.is_set():
            try:
                # On the scheduler: a SIGTERM interrupts it (`terminate`), in the main thread.
                self.waiting = threading.current_thread() is threading.main_thread()
                try:
                    body = {"agent_id": self.cfg.agent_id, "pool_id": self.cfg.pool_id,
                            "pod": self.cfg.pod, "pid": os.getpid(),
                            "current_tasks": self.current_tasks()}
                    if self.cfg.scheduler is not None:
                        body["scheduler"] = self.cfg.scheduler
                    r = self.client.post("/agent/register", body)
                finally:
                    self.waiting = False
            except httpx.HTTPError as exc:
                # An agent may start before its scheduler, so it keeps trying; but whoever
                # watches it should see why nothing happens: a warning at once, then one
                # every UNREACHABLE_WARN_EVERY_S while it lasts.
                now = time.monotonic()
                if warned_at is None or now - warned_at >= UNREACHABLE_WARN_EVERY_S:
                    warned_at = now
                    log.warning("scheduler %s unreachable (%s); still trying to register",
                                self.cfg.url, exc)
                else:
                    log.info("scheduler unreachable (%s); retrying", exc)
            else:
                if r.status_code == 200:
                    self.after = 0
                    self.registered.set()
                    return
                if r.status_code in (401, 403, 404, 409):
                    raise RegistrationRefused(f"the scheduler refused registration ({r.status_code}): "
                                              f"{_message(r)}")
                log.info("registration got %s; retrying", r.status_code)
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    # ---------------------------------------------------------------- heartbeats
    def current_tasks(self) -> list[int]:
        with self.lock:
            running = set(self.runs)
        return sorted(running | self.outbox.tasks())

    def _heartbeats(self) -> None:
        while not self.closing.wait(self.cfg.heartbeat_s):  # a draining agent beats on
            if not self.registered.is_set():
                continue
            with self.lock:
                runs = list(self.runs.values())
            plan_running, apply_running = heartbeat.load(r.msg.task_type for r in runs)
            body = {"agent_id": self.cfg.agent_id,
                    "plan_running": plan_running,
                    "plan_limit": self.cfg.plan_limit,
                    "apply_running": apply_running,
                    "current_tasks": self.current_tasks()}
            try:
                r = self.client.post("/agent/heartbeat", body)
            except httpx.HTTPError:
                continue
            if r.status_code == 404:
                self.registered.clear()

    # ---------------------------------------------------------------- runs
    def run_ended(self, run: Run) -> None:
        with self.lock:
            if self.runs.get(run.msg.task_id) is run:
                del self.runs[run.msg.task_id]

    def past_grace(self) -> bool:
        return time.monotonic() >= self.terminate_at

    def _dispatch(self, message: Any) -> None:
        """Act on one message of a poll answer. One the agent cannot read (not an object, a
        field missing or of the wrong type) is ignored with a warning: it must not take down
        the runs the agent holds (the scheduler's claim check still guards what runs)."""
        try:
            seq = int(message.get("seq", 0))
            kind = message.get("type")
            cancel = int(message["task_id"]) if kind == "cancel" else None
            msg = RunMessage.parse(message) if kind == "run_task" else None
        except (AttributeError, KeyError, ValueError, TypeError) as exc:
            log.warning("malformed message ignored (%s: %s): %.200r", type(exc).__name__, exc, message)
            if isinstance(message, dict) and isinstance(message.get("seq"), int):
                self.after = max(self.after, message["seq"])  # acknowledged: not sent again
            return
        if seq and seq <= self.after:
            return  # redelivered: this registration's mailbox gave it before
        self.after = max(self.after, seq)
        if cancel is not None:
            with self.lock:
                run = self.runs.get(cancel)
            if run is not None:
                run.abort("cancelled by the scheduler")
            return
        if msg is None:
            log.warning("unknown message %r ignored", kind)
            return
        key = (msg.task_id, msg.fence, msg.action)
        with self.lock:
            if self.refusing.is_set():
                # The grace is nearly over: a run started now would only be aborted. It is
                # lost with the agent, as a run still going at the end of the grace is.
                log.warning("task %s not run: the agent is exiting", msg.task_id)
                return
            old = None
            if self.cfg.claims_runs:
                # Ours: a dispatch is (task, fence, action); a second send of one is dropped,
                # and a new one of a task it runs supersedes the older run, which stops (the
                # simulated agent's "superseded"): it runs one run per task, as its heartbeat
                # lists one, and the scheduler counts its capacity by task.
                # The seed's agent runs whatever it is sent: its scheduler never moves a
                # fence, so a task sent again (F7's double dispatch) is a run of its own.
                if key in self.seen:
                    return
                self.seen.add(key)
                old = self.runs.get(msg.task_id)
            run = Run(self, msg)
            self.runs[msg.task_id] = run
        if old is not None:
            old.abort("superseded by a new run of the same task")
        run.start()

    # ---------------------------------------------------------------- main loop
    def serve(self) -> int:
        """Poll and run until SIGTERM; 0, or 2 when a registration again is refused (after
        the runs it has finish and report, as on a SIGTERM)."""
        threading.Thread(target=self._heartbeats, name="heartbeat", daemon=True).start()
        try:
            self._talk(self.terminating, self.cfg.poll_timeout_s)
        except _Interrupted:
            pass
        except RegistrationRefused as refused:
            _refused(refused)
            self._stop_taking_work()
            self._shutdown(talking=False)
            return 2
        return self._shutdown()

    def _talk(self, until: threading.Event, poll_timeout_s: float) -> None:
        """Register (again when the scheduler forgot us), poll and dispatch until `until` is
        set: SIGTERM for the main loop, the exit for a draining agent's poller. Raises
        `RegistrationRefused`; `_Interrupted` (the main thread's, from the SIGTERM handler)."""
        while not until.is_set():
            if not self.registered.is_set():
                self.register(until)
                continue
            try:
                self.waiting = threading.current_thread() is threading.main_thread()
                try:
                    messages = self.client.poll(self.cfg.agent_id, self.after, poll_timeout_s)
                finally:
                    self.waiting = False
            except NotRegistered:
                self.registered.clear()
                continue
            except BadAnswer as exc:
                log.warning("poll answer from %s is not the agent protocol's, ignored: %s",
                            self.cfg.url, exc)
                until.wait(1.0)
                continue
            except RuntimeError:  # httpx: the client is closed, the agent is exiting
                if until.is_set():
                    break
                raise
            except httpx.HTTPError as exc:
                if until.is_set():
                    break
                log.info("poll failed (%s); registering again", exc)
                self.registered.clear()
                until.wait(0.1)
                continue
            for m in messages:
                self._dispatch(m)

    def _drain_poller(self) -> None:
        """A draining agent's connection, on a thread of its own (the main thread keeps the
        grace's deadline): polls, registrations again, and the runs it is still sent."""
        try:
            self._talk(self.closing, min(self.cfg.poll_timeout_s, DRAIN_POLL_S))
        except RegistrationRefused as refused:
            _refused(refused)  # it can no longer talk; what it holds still ends and reports
        except Exception:  # noqa: BLE001 - the exit goes on without the connection
            if not self.closing.is_set():
                log.exception("the draining agent's poller failed")

    def terminate(self, signum: int, _frame) -> None:
        if self.terminating.is_set():
            os._exit(1)
        self._stop_taking_work()
        if self.waiting:
            raise _Interrupted  # out of a blocked long-poll or registration, to the shutdown

    def _stop_taking_work(self) -> None:
        """Start the shutdown: what runs has `grace_s` to finish (none for the seed's agent,
        which stops talking at once)."""
        grace = 0.0 if self.cfg.on_sigterm == "exit" else self.cfg.grace_s
        self.terminate_at = time.monotonic() + grace
        if self.cfg.on_sigterm == "exit":
            self.refusing.set()
            self.closing.set()
        self.terminating.set()

    def holds_nothing(self) -> bool:
        """No run and no undelivered report: a draining agent may exit (the simulated
        agent's `_maybe_exit`)."""
        with self.lock:
            if self.runs:
                return False
        return self.outbox.empty()

    def _shutdown(self, talking: bool = True) -> int:
        """Drain: stay connected (`talking`) while runs finish and reports go out, within the
        grace period; abort what is left near its end, deliver the reports. Or, as the seed's
        agent, abort everything and leave without a word."""
        if self.cfg.on_sigterm == "exit":
            self.outbox.discard()  # first: an aborted run's failure report must not go out
            with self.lock:
                left = list(self.runs.values())
            for run in left:
                run.abort("agent exiting (SIGTERM)")
            self.client.close()
            return 0
        deadline = self.terminate_at
        margin = min(2.0, self.cfg.grace_s / 5)
        if talking and not self.holds_nothing():
            threading.Thread(target=self._drain_poller, name="drain-poller", daemon=True).start()
        while time.monotonic() < deadline - margin and not self.holds_nothing():
            time.sleep(0.02)
        self.refusing.set()
        with self.lock:
            left = list(self.runs.values())
        for run in left:
            run.abort("agent terminating (SIGTERM)")
        for run in left:
            run.thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self.outbox.drain(deadline)
        self.closing.set()  # polls and heartbeats end: the agent leaves
        self.outbox.stop()
        self.outbox.thread.join(timeout=1.0)  # its last tries, before the client closes
        self.client.close()
        return 0


def main(cfg: AgentConfig) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s agent %(levelname)s %(message)s")
    agent = Agent(cfg)
    signal.signal(signal.SIGTERM, agent.terminate)
    signal.signal(signal.SIGINT, agent.terminate)
    if agent.terminating.wait(cfg.connect_delay_s):  # a SIGTERM while it starts: it leaves
        agent.client.close()
        return 0
    try:
        agent.register()
    except _Interrupted:
        return agent._shutdown()
    except RegistrationRefused as refused:
        _refused(refused)
        agent.client.close()
        return 2
    return agent.serve()


def _refused(refused: RegistrationRefused) -> None:
    print(f"error: {refused}", file=sys.stderr, flush=True)
