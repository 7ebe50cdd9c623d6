"""One run of one task phase (plan or apply), executed the way the seed's agents run Terraform.

A run first *claims* its dispatch by recording `exec.invoke` (the scheduler refuses the claim
with 409 when the dispatch is stale: the task moved on while the message waited; the seed's
agent claims nothing and runs whatever it is sent, `claims_runs`), then works
for the configured duration, then queues its report, with the `exec.ok` / `exec.fail` row it
carries, in the outbox, followed by the C&C-style completion notice.

- plan: writes the saved plan to the backend and reports its digest; a stale plan (a newer
  fence of the task has saved its plan) writes nothing and fails (`backend.PlanFenced`);
- apply: checks that the saved plan has the digest it was sent, takes the workspace's state
  lock for (task, fence) *before* it claims (a lock held under a live lease refuses it
  before it begins: `exec.fail`, no invoke), renews the lease while it works (while its
  claim waits, only as long as the scheduler answers: `Run._while_heard`), and commits
  under the lock; a stale token cannot commit (`backend.LockLost`).

`abort()` (SIGTERM past the grace period, or a cancel) stops the work before the commit: the
run reports an explicit failure, since nothing was written.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scheduler import claims
from scheduler.agent.backend import LockLost, PlanFenced, StateLocked, Token
from scheduler.model import TaskType

if TYPE_CHECKING:
    from scheduler.agent.process import Agent

log = logging.getLogger("unstuck.agent")
TASK_TYPES = {t.value for t in TaskType}


@dataclass(frozen=True)
class RunMessage:
    task_id: int
    workspace_id: str
    action: str
    fence: int
    plan_digest: str | None
    task_type: TaskType | None = None  # for the heartbeat's counters (scheduler/heartbeat.py)

    @classmethod
    def parse(cls, m: dict[str, Any]) -> RunMessage:
        action = str(m["action"])
        return cls(int(m["task_id"]), str(m["workspace_id"]), action, int(m.get("fence") or 0),
                   m.get("plan_digest"), _task_type(m.get("task_type"), action))


def _task_type(value: Any, action: str) -> TaskType | None:
    """The message's task type. One from a scheduler that does not send it (or sends one we
    do not know) is judged by its action: an apply can only belong to a plan_and_apply, and
    a plan is counted as a plain plan."""
    if value in TASK_TYPES:
        return TaskType(value)
    return {"apply": TaskType.PLAN_AND_APPLY, "plan": TaskType.PLAN}.get(action)


class Run:
    def __init__(self, agent: Agent, msg: RunMessage) -> None:
        self.agent = agent
        self.msg = msg
        self.aborted = threading.Event()
        self.abort_reason = ""
        self.thread = threading.Thread(target=self._main, name=f"run-{msg.task_id}", daemon=True)
        self.id = uuid.uuid4().hex[:16]  # names this run's rows: the service records each once

    def start(self) -> None:
        self.thread.start()

    def abort(self, reason: str) -> None:
        self.abort_reason = reason
        self.aborted.set()

    # ---------------------------------------------------------------- rows and reports
    def _row(self, kind: str, reason: str = "", **extra: Any) -> dict[str, Any]:
        a, m = self.agent, self.msg
        return {"agent_id": a.cfg.agent_id, "kind": kind, "task_id": m.task_id,
                "workspace_id": m.workspace_id, "pod": a.cfg.pod, "action": m.action,
                "fence": m.fence, "run": self.id, "reason": reason, **extra}

    def _report(self, report: str, row: dict[str, Any], ok: bool = True, **extra: Any) -> None:
        a, m = self.agent, self.msg
        a.outbox.put("/agent/report", {"agent_id": a.cfg.agent_id, "report": report,
                                       "task_id": m.task_id, "fence": m.fence, "ok": ok,
                                       "exec": row, **extra}, task_id=m.task_id)
        a.outbox.put("/agent/notice", {"agent_id": a.cfg.agent_id, "task_id": m.task_id, "ok": ok},
                     task_id=m.task_id)

    def _claim(self, supersedes: tuple[int, int] | None = None, renew: Any = None) -> bool:
        """Record exec.invoke, our agent's claim to start the run: False when the scheduler
        says the dispatch is stale (409), or the agent stops first. An apply claims after it
        has taken the state lock (`renew` keeps its lease meanwhile), so a claimed apply
        always holds a leased lock: the reference's read of the state, which its loop
        serializes with claims, finds it in doubt. Claimed first, an agent frozen between
        the claim and the lock read as "did not commit" and committed on waking. The seed's
        agent claims nothing: it runs whatever it is sent, and its row is only a record
        (`claim: false`)."""
        a, m = self.agent, self.msg
        row = self._row("invoke", digest=m.plan_digest)
        if supersedes is not None:
            row["supersedes"] = list(supersedes)  # the token it took the state lock from
        if not a.cfg.claims_runs:
            a.outbox.put("/agent/exec", {**row, "claim": False}, task_id=m.task_id)
            return True
        item = a.outbox.put("/agent/exec", row, task_id=m.task_id)
        renewal = self._renewal(self._while_heard(renew))
        while not item.done.wait(0.1):
            if self.aborted.is_set() or (a.terminating.is_set() and a.past_grace()):
                # Stopped (SIGTERM, a cancel) before the answer: the claim may still land,
                # so the run says it ended before it began (`_aborted`).
                self.aborted.set()
                return False
            with contextlib.suppress(LockLost):  # checked again once claimed
                renewal()
        if item.status != 200:
            log.warning("task %s fence %s: claim refused (%s); not running it",
                        m.task_id, m.fence, item.status)
            return False
        return True

    def _while_heard(self, renew: Any) -> Any:
        """`renew`, for a lock whose run waits for its claim's answer: it renews only while
        the scheduler answers this agent (`Client.heard`, within `claims.CLAIM_HOLD_LEASES` leases).
        An agent cut off from the scheduler, but alive, would otherwise renew for ever a lock
        the scheduler cannot ask about: it hears the agent silent and finds the lease live,
        so it waits in doubt for the run timeout (60 min). Once the lease lapses the run
        reads "not committed" and never claimed, and goes to another pod; its claim, if it
        lands later, is refused. The run has not begun, so nothing is lost by letting it go.
        The cost: a claim that did land, its answer lost for that long, finds its lease gone
        and fails the apply ("state lock lost"; the user plans again) where it would have run."""
        if renew is None or self.agent.cfg.lease_s is None:
            return renew
        hold = claims.renews_for_s(self.agent.cfg.lease_s)
        client, m = self.agent.client, self.msg
        warned = [False]

        def renew_while_heard() -> None:
            unheard = time.monotonic() - client.heard
            if unheard < hold:
                warned[0] = False
                renew()
            elif not warned[0]:
                warned[0] = True
                log.warning("task %s fence %s: no answer from the scheduler for %.0f s while the "
                            "claim waits; letting the state lock's lease lapse (the apply has "
                            "not begun)", m.task_id, m.fence, unheard)

        return renew_while_heard

    def _renewal(self, renew: Any) -> Any:
        """A callable to tick while waiting: it calls `renew()` each third of the lease (ours;
        the seed's lock has no lease, and nothing to renew)."""
        lease = self.agent.cfg.lease_s
        if renew is None or lease is None:
            return lambda: None
        last = [time.monotonic()]

        def tick() -> None:
            if time.monotonic() - last[0] >= lease / 3:
                renew()
                last[0] = time.monotonic()

        return tick

    def _work(self, seconds: float, renew: Any = None) -> bool:
        """Sleep `seconds` in small steps; False if aborted. `renew()` is called now and then."""
        end = time.monotonic() + seconds
        renewal = self._renewal(renew)
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return True
            if self.aborted.wait(min(left, 0.05)):
                return False
            renewal()

    # ---------------------------------------------------------------- the run
    def _aborted(self, what: str) -> None:
        """Report a run stopped while it waited for its claim's answer: nothing was done."""
        if self.aborted.is_set():
            why = f"{what} aborted before it began: {self.abort_reason or 'agent stopping'}"
            report = "apply_finished" if self.msg.action == "apply" else "task_failed"
            self._report(report, self._row("fail", why), ok=False, error=why)

    def _main(self) -> None:
        try:
            if self.msg.action != "plan":
                self._apply()
            elif self._claim():
                self._plan()
            else:
                self._aborted("plan")
        except Exception:  # noqa: BLE001 - a crashed run is reported, not silent
            log.exception("run of task %s crashed", self.msg.task_id)
            self._report("task_failed", self._row("fail", "agent error"), ok=False, error="agent error")
        finally:
            self.agent.run_ended(self)

    def _plan(self) -> None:
        a, m = self.agent, self.msg
        if not self._work(a.cfg.plan_s):
            self._report("task_failed", self._row("fail", self.abort_reason), ok=False,
                         error=f"plan aborted: {self.abort_reason}")
            return
        try:
            digest = a.backend.save_plan(m.task_id, m.fence, m.workspace_id, a.cfg.agent_id,
                                         a.cfg.has_changes)
        except PlanFenced as exc:
            self._report("task_failed", self._row("fail", str(exc)), ok=False, error=str(exc))
            return
        self._report("plan_finished", self._row("ok", digest=digest, has_changes=a.cfg.has_changes),
                     has_changes=a.cfg.has_changes, digest=digest)

    def _apply(self) -> None:
        a, m = self.agent, self.msg
        saved = a.backend.plan_digest(m.task_id)
        if m.plan_digest is None or saved != m.plan_digest:
            why = f"plan digest mismatch: sent {m.plan_digest!r}, saved plan is {saved!r}"
            if self._claim():
                self._report("apply_finished", self._row("fail", why), ok=False, error=why)
            return
        token = Token(m.task_id, m.fence, a.cfg.agent_id)
        try:
            superseded = a.backend.acquire(m.workspace_id, token)
        except StateLocked as exc:
            # Refused before it began: no claim, no invoke (the holder's apply is still open).
            self._report("apply_finished", self._row("fail", str(exc)), ok=False, error=str(exc))
            return
        renew = lambda: a.backend.renew(m.workspace_id, token)  # noqa: E731
        try:
            if not self._claim(superseded, renew):
                a.backend.release(m.workspace_id, token)
                self._aborted("apply")
                return
            renew()  # still its own: a freeze during the claim may have cost it the lease
            finished = self._work(a.cfg.apply_s, renew=renew)
            if not finished:
                a.backend.release(m.workspace_id, token)
                why = f"apply aborted before commit: {self.abort_reason}"
                self._report("apply_finished", self._row("fail", why), ok=False, error=why)
                return
            a.backend.commit(m.workspace_id, token, m.plan_digest)
        except LockLost as exc:
            self._report("apply_finished", self._row("fail", str(exc)), ok=False, error=str(exc))
            return
        except Exception:
            # Crashed before its commit (an unreadable lock file): give the lock back rather
            # than let it refuse the workspace's next apply for a lease (then `_main` reports).
            with contextlib.suppress(Exception):
                a.backend.release(m.workspace_id, token)
            raise
        self._report("apply_finished", self._row("ok", digest=m.plan_digest), ok=True)
