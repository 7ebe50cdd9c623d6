"""Simulated agents: one per Running pod, speaking to the scheduler as the seed's agents do.

Behaviour (shared/specs/seed-system.md §2.2, §8):
* connect `agents.connect` seconds after the pod is Running; a refused connect or a dropped
  connection is retried with backoff (2 s doubling to 60 s);
* a heartbeat every 10 s with plan_running (plan tasks), apply_running (a plan_and_apply in
  either phase) and current_tasks; a heartbeat the server does not know (404) means the
  server dropped us: reconnect;
* no capacity enforcement on the agent side: it runs whatever it is sent. A second
  `run_task` of a task it is already running: our agent (`agent_claims_runs`) drops the older
  run (`exec.info` "superseded"); the seed's starts a goroutine per message and only
  overwrites the task's cancel func, so both run to their end (F7/G5's two concurrent
  applies) and a cancel reaches the newer one only;
* a phase runs for a drawn duration; at its end the agent reports over HTTP (PlanFinished /
  ApplyFinished / TaskFailed), then sends the C&C completion notice ~50 ms later if connected
  (seed-head's G1 race needs both). A report answered with a 5xx is retried as the variant's
  agent does (`agent_reports`, scheduler/reports.py): ours until it is delivered, listing
  its task in `current_tasks` meanwhile and holding a drain's exit for it, as the live
  agent's outbox does; the seed's 3 times (1 s base, 10 s max: `reports.retry_after`), then
  dropped. A paused
  agent's retries wait for it to resume;
* an apply takes the workspace's state lock fenced by (task, fence); its `exec.invoke` names
  the token it superseded (`data.supersedes`), and an apply whose token was superseded fails
  with "state lock fenced" (`exec.fail`) when it tries to commit. Our agent also holds the
  lock under a lease (`agent_state_lease_s`, 30 s, as the live backend's `--lease`), renewed
  while it works: a second apply is refused while the holder's lease runs (`exec.fail`, no
  invoke: it never began), and a holder frozen or dead for longer than the lease has lost
  the lock: a frozen apply fails at once when it wakes, as the live agent's renewal raises
  `LockLost`. The seed's agent holds no lease: a newer apply always takes the lock;
* SIGTERM (graceful pod delete) does what the scheduler's own agent does (the variant's
  `agent_on_sigterm`): our agent ("drain") stays connected and heartbeating, runs what it
  is still sent, and exits once it holds no run and no unreported report, as the live agent
  does; whatever is still running at SIGKILL is lost (`exec.info`). The live agent also
  keeps a deadline of its own, `--grace`, meant to end before the pod's SIGKILL: near it,
  it starts nothing new and aborts its runs before their commit (`exec.fail`, reported), so
  they are not left unknown; the simulated pods' grace is their only deadline; the seed's agent ("exit") cancels its runs,
  closes its C&C connection and exits at once, reporting nothing. A killed agent's runs are
  `exec.info` (outcome unknown). A paused agent gets SIGTERM only when its node heals;
* a paused agent (its node lost) freezes: no heartbeats, no progress; runs sent to it wait in
  its socket. It resumes if the node heals, and then reports late (fencing matters). Our
  agent claims each run before it starts it, as the live one does (`agent_claims_runs`): a
  run that is no longer its task's current dispatch (running, same fence, this agent) is
  refused and never runs, and nothing is recorded (live, the claim gets a 409). An apply
  takes its state lock before it claims, as live, and holds it while a claim the store could
  not write (503) is asked again; frozen or cut off meanwhile, it lets the lease lapse
  (`StateSim.lapsed`, `scheduler/claims.py`) and a claim answered after that fails the run
  before it begins (`Run.begun`). The seed's
  agent runs whatever it is sent, however stale. A plan claimed before the pause that ends
  after its task was planned again records `exec.ok` here; the live agent keeps saved plans,
  fenced, and records `exec.fail` "plan fenced: stale token" (docs/agent-protocol.md): either
  way its report is refused as stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scheduler import events as ev
from scheduler import heartbeat, reports
from scheduler.history import Kind, Source
from scheduler.model import TaskType
from scheduler.ports import AgentSendError, RunTask

if TYPE_CHECKING:
    from sim.cluster import Pod
    from sim.world import World


@dataclass(slots=True, eq=False)
class Run:
    run: RunTask
    task_type: TaskType | None
    ends_at: float
    remaining: float = 0.0
    gen: int = 0
    # Ours claims a run before it begins it; until the claim is answered 200 the run is not
    # begun (no invoke, nothing done) and its apply holds the state lock it took.
    begun: bool = True
    superseded: tuple[int, int] | None = None  # the token its apply took the lock from
    claim_due: int | None = None  # a claim retry that fell due while frozen or cut off


@dataclass(slots=True, eq=False)
class AgentSim:
    fleet: AgentFleet
    agent_id: str
    pod: Pod
    connected: bool = False
    paused: bool = False
    cut_off: bool = False  # an agent-partition: alive, but its network to the scheduler is cut
    dead: bool = False
    draining: bool = False
    runs: dict[int, Run] = field(default_factory=dict)
    # The seed's agent only: older runs of a task whose newer run_task took its place in
    # `runs`; they run on, but no cancel reaches them (the Go map kept the newer cancel func).
    displaced: list[Run] = field(default_factory=list)
    queued: list[RunTask] = field(default_factory=list)
    # Reports not yet delivered, by task (our agent only): what the heartbeat still lists.
    unreported: dict[int, int] = field(default_factory=dict)
    held: list[tuple[Any, int]] = field(default_factory=list)  # retries due while paused
    stalled_at: float | None = None  # frozen or dead since: its lease is no longer renewed
    cut_since: float | None = None  # cut off since: a waiting claim's lease lapses after a while
    hb_gen: int = 0
    conn_gen: int = 0
    backoff: float = 0.0
    idle_beat: ev.AgentHeartbeat | None = None  # events are immutable: one serves every idle beat

    # ------------------------------------------------------------------ connection
    def connect(self, gen: int) -> None:
        if gen != self.conn_gen or self.dead or self.paused or self.connected:
            return
        if self.cut_off:  # the attempt gets no answer: try again after the back-off
            self.reconnect_later()
            return
        w = self.fleet.w
        out = w.send(ev.AgentConnected(self.agent_id, self.pod.pool, self.pod.name,
                                       current_tasks=self.current_tasks()))
        if out.ok:
            self.connected, self.backoff = True, 0.0
            self.hb_gen += 1
            w.kernel.after(self.fleet.cfg.heartbeat_s, self.heartbeat, self.hb_gen)
        else:
            self.reconnect_later()

    def reconnect_later(self, delay: float | None = None) -> None:
        cfg = self.fleet.cfg
        if delay is None:
            self.backoff = min(cfg.reconnect_cap_s, self.backoff * 2 if self.backoff else cfg.reconnect_base_s)
            delay = self.backoff
        self.conn_gen += 1
        self.fleet.w.kernel.after(delay, self.connect, self.conn_gen)

    def drop(self, reconnect_after: float | None = None) -> None:
        """The C&C connection is gone (server restart or a network fault)."""
        self.connected = False
        self.hb_gen += 1
        if not self.dead and not self.paused:
            self.reconnect_later(reconnect_after)

    def current_tasks(self) -> tuple[int, ...]:
        """What the connect and the heartbeats list: the runs, and the reports not yet
        delivered."""
        return tuple(sorted(self.runs.keys() | self.unreported.keys()))

    def heartbeat(self, gen: int) -> None:
        if gen != self.hb_gen or self.dead or self.paused or not self.connected:
            return
        w = self.fleet.w
        runs = self.runs
        if runs or self.unreported:
            plan_running, apply_running = heartbeat.load(
                r.task_type for r in [*runs.values(), *self.displaced])
            beat = ev.AgentHeartbeat(self.agent_id, plan_running=plan_running,
                                     apply_running=apply_running,
                                     current_tasks=self.current_tasks())
        else:  # an idle agent, most beats of a day: the same event, made once
            beat = self.idle_beat
            if beat is None:
                beat = self.idle_beat = ev.AgentHeartbeat(self.agent_id)
        out = w.send(beat)
        if not out.ok and out.status == 404:
            self.drop()
            return
        w.kernel.after(self.fleet.cfg.heartbeat_s, self.heartbeat, gen)

    # ------------------------------------------------------------------ runs
    def deliver(self, run: RunTask) -> None:
        if self.cut_off:  # on its way in the network: it arrives when the partition heals
            self.queued.append(run)
            return
        if run.action == "cancel":
            x = self.runs.pop(run.task_id, None)
            if x is not None:
                self._stop(x, "cancelled by the server mid-run")
                self._maybe_exit()
            return
        if self.paused:
            self.queued.append(run)
            return
        self._start(run)

    def _start(self, run: RunTask) -> None:
        w = self.fleet.w
        now = w.kernel.now
        task = w.store.get_task(run.task_id)  # the agent loads the task over HTTP
        ttype = task.task_type if task is not None else None
        superseded = None
        if run.action == "apply":
            state = w.state
            prev = state.lock.get(run.workspace_id)
            if prev is not None and prev != (run.task_id, run.fence) and state.leased(run.workspace_id, now):
                why = (f"state of {run.workspace_id} is locked by task {prev[0]} "
                       f"(fence {prev[1]}) under a live lease")
                self._record(Kind.EXEC_FAIL, run, why)  # refused before it began: no invoke
                self._send_report(ev.ApplyFinished(run.task_id, self.agent_id, False, run.fence, why))
                self._maybe_exit()
                return
            superseded = state.take(run, self)
        old = self.runs.get(run.task_id)
        if old is not None and not self.fleet.claims_runs:
            self.displaced.append(old)  # the seed's agent: both goroutines run on
        elif old is not None:
            self._stop(old, "superseded by a new run of the same task")
        x = Run(run, ttype, now, superseded=superseded)
        self.runs[run.task_id] = x
        if not self.fleet.claims_runs:
            self._begin(x)  # the seed's agent claims nothing: it runs what it is sent
            return
        # Ours claims the run first, holding the state lock it took (an apply's), as the live
        # agent does: the run is its own meanwhile (its heartbeat lists it), not begun.
        x.begun = False
        if run.action == "apply":
            w.state.claiming.add((run.task_id, run.fence))
        claim = self.fleet.claim_s
        if claim is None:
            self._claim(x, 0)
        else:  # the claim in flight (`agents.claim_s`): it lands a draw later
            w.kernel.after(claim.sample(self.fleet.claim_rng), self._claim_again, x, x.gen, 0)

    def _claim(self, x: Run, attempt: int) -> None:
        out = self.fleet.w.send(ev.RunClaimed(x.run.task_id, self.agent_id, x.run.fence))
        if out.ok:
            self._begin(x)
            return
        # Not stored (a store outage: 503): ask again, as the live outbox does, keeping the
        # lock meanwhile. Refused (409: a stale dispatch): it does not run.
        delay = reports.retry_after(self.fleet.w.agent_reports, attempt) if out.status >= 500 else None
        if delay is not None:
            self.fleet.w.kernel.after(delay, self._claim_again, x, x.gen, attempt + 1)
            return
        if self.runs.get(x.run.task_id) is x:
            del self.runs[x.run.task_id]
        self._release_lock(x.run)
        self._maybe_exit()

    def _claim_again(self, x: Run, gen: int, attempt: int) -> None:
        if gen != x.gen or self.dead:
            return
        if self.paused or self.cut_off:  # it asks when it wakes, or is heard again
            x.claim_due = attempt
            return
        self._claim(x, attempt)

    def _begin(self, x: Run) -> None:
        w = self.fleet.w
        run = x.run
        x.begun = True
        extra: dict[str, Any] = {}
        if run.action == "apply":
            state = w.state
            state.claiming.discard((run.task_id, run.fence))
            if not state.holds(run):
                # Claimed, but its lease lapsed while the claim waited (the live renewal's
                # LockLost): it stops before it does anything, and says so.
                self._record(Kind.EXEC_INVOKE, run, "", digest=run.plan_digest)
                del self.runs[run.task_id]
                self._fail_lock(run, f"state lock of {run.workspace_id} lost: its lease lapsed "
                                     f"while the claim waited")
                self._maybe_exit()
                return
            if x.superseded is not None:
                extra["supersedes"] = list(x.superseded)  # the older holder can no longer commit
            duration = self.fleet.cfg.apply.sample(self.fleet.rng)
        else:
            duration = self.fleet.cfg.plan.sample(self.fleet.rng)
        x.ends_at = w.kernel.now + duration
        self._record(Kind.EXEC_INVOKE, run, "",
                     digest=run.plan_digest if run.action == "apply" else None, **extra)
        w.kernel.at(x.ends_at, self._finish, x, x.gen)

    def _stop(self, x: Run, why: str) -> None:
        """Stop a run of ours (a cancel, a newer run of its task) and give its lock back. One
        not yet begun says it ended before it began, as the live agent's does
        (`Run._aborted`): nothing was done."""
        x.gen += 1
        run = x.run
        self._release_lock(run)
        if x.begun:
            self._record(Kind.EXEC_INFO, run, why)
            return
        why = f"{run.action} aborted before it began: {why}"
        self._record(Kind.EXEC_FAIL, run, why)
        self._send_report(ev.ApplyFinished(run.task_id, self.agent_id, False, run.fence, why)
                          if run.action == "apply" else
                          ev.TaskFailed(run.task_id, self.agent_id, why, run.fence))

    def _record(self, kind: Kind, run: RunTask, reason: str, **data: Any) -> None:
        self.fleet.w.record(kind, Source.AGENT, task=run.task_id, workspace=run.workspace_id,
                            agent=self.agent_id, pod=self.pod.name, reason=reason,
                            data={"action": run.action, "fence": run.fence, **data})

    def _finish(self, x: Run, gen: int) -> None:
        if gen != x.gen or self.dead or self.paused:
            return
        if self.runs.get(x.run.task_id) is x:
            del self.runs[x.run.task_id]
        elif x in self.displaced:
            self.displaced.remove(x)
        else:
            return
        w, rng, cfg = self.fleet.w, self.fleet.rng, self.fleet.cfg
        run = x.run
        report: Any
        ok = True
        if run.action == "apply":
            if not w.state.holds(run):
                # Reported, as the live agent reports its `LockLost` (scheduler/agent/runs.py):
                # until `unstuck conform` showed the seed's double-clicked apply end `failed`
                # live and `applied` here, this failure was only recorded.
                self._fail_lock(run, "state lock fenced: stale token")
                self._maybe_exit()
                return
            w.state.free(run)  # committed (or failed): the lock is released
            if cfg.apply_fail and rng.random() < cfg.apply_fail:
                self._record(Kind.EXEC_FAIL, run, "terraform apply failed")
                report, ok = ev.ApplyFinished(run.task_id, self.agent_id, False, run.fence,
                                              "terraform apply failed"), False
            else:
                w.state.commit(run)
                self._record(Kind.EXEC_OK, run, "")
                report = ev.ApplyFinished(run.task_id, self.agent_id, True, run.fence)
        elif cfg.plan_fail and rng.random() < cfg.plan_fail:
            self._record(Kind.EXEC_FAIL, run, "terraform plan failed")
            report, ok = ev.TaskFailed(run.task_id, self.agent_id, "terraform plan failed",
                                       run.fence), False
        else:
            changes = rng.random() < cfg.has_changes
            digest = f"sha256:plan-{run.task_id}-{run.fence}-{int(w.kernel.now)}"
            self._record(Kind.EXEC_OK, run, "", has_changes=changes, digest=digest)
            if changes and x.task_type is TaskType.PLAN_AND_APPLY:
                w.plan_pod[run.task_id] = self.pod.name
            report = ev.PlanFinished(run.task_id, self.agent_id, changes, digest, run.fence)
        self._send_report(report)
        w.kernel.after(cfg.notice_after_s, self._notice, run.task_id, ok)
        self._maybe_exit()

    def _send_report(self, report: Any) -> None:
        if self.fleet.reports_until_delivered:
            self.unreported[report.task_id] = self.unreported.get(report.task_id, 0) + 1
        self._report(report, 0)

    def _report(self, report: Any, attempt: int) -> None:
        if self.dead:
            return
        if self.paused:  # a frozen process sends nothing; the retry goes out when it wakes
            self.held.append((report, attempt))
            return
        if self.cut_off:  # no try gets through: ours goes out when heard again, the seed's
            if self.fleet.reports_until_delivered:  # is dropped after its tries
                self.held.append((report, attempt))
            elif (delay := reports.retry_after(self.fleet.w.agent_reports, attempt)) is not None:
                self.fleet.w.kernel.after(delay, self._report, report, attempt + 1)
            return
        out = self.fleet.w.send(report)
        if out.ok or out.status < 500:
            self._reported(report.task_id)
        elif (delay := reports.retry_after(self.fleet.w.agent_reports, attempt)) is not None:
            self.fleet.w.kernel.after(delay, self._report, report, attempt + 1)

    def _reported(self, task_id: int) -> None:
        left = self.unreported.get(task_id)
        if left is None:
            return
        if left > 1:
            self.unreported[task_id] = left - 1
        else:
            del self.unreported[task_id]
            self._maybe_exit()

    def _notice(self, task_id: int, ok: bool) -> None:
        if self.connected and not self.dead and not self.paused and not self.cut_off:
            self.fleet.w.send(ev.CompletionNotice(task_id, self.agent_id, ok))

    # ------------------------------------------------------------------ lifecycle
    def sigterm(self) -> None:
        self.draining = True
        if self.fleet.exit_on_sigterm:
            self._exit_at_once()
        else:
            self._maybe_exit()

    def _exit_at_once(self) -> None:
        """The seed agent's WaitForShutdown: cancel every run, close the socket, return."""
        self.kill("agent exited on SIGTERM: its runs were cancelled, nothing reported")
        self.fleet.w.cluster.agent_exited(self.pod)

    def _maybe_exit(self) -> None:
        if (self.draining and not self.runs and not self.displaced and not self.unreported
                and not self.dead
                and not self.paused):
            self.fleet.w.cluster.agent_exited(self.pod)

    def kill(self, reason: str) -> None:
        if self.dead:
            return
        self.dead = True
        if self.stalled_at is None:
            self.stalled_at = self.fleet.w.kernel.now
        self.fleet.alive.pop(self.agent_id, None)
        self.hb_gen += 1
        self.conn_gen += 1
        for x in [*self.displaced, *(x for _, x in sorted(self.runs.items()))]:
            x.gen += 1
            if x.begun:  # one that never began has no outcome to be unknown
                self._record(Kind.EXEC_INFO, x.run, reason)
        self.runs.clear()
        self.displaced.clear()
        self.queued.clear()
        if self.connected:
            self.connected = False
            self.fleet.w.notify(ev.AgentDisconnected(self.agent_id))

    def pause(self) -> None:
        if self.dead or self.paused:
            return
        now = self.fleet.w.kernel.now
        self.paused = True
        self.stalled_at = now
        self.hb_gen += 1
        self.conn_gen += 1
        self._close_when_silent()
        for x in [*self.runs.values(), *self.displaced]:
            if x.begun:  # a waiting claim's retry finds the agent frozen and waits for it
                x.remaining = max(0.0, x.ends_at - now)
                x.gen += 1

    def _release_lock(self, run: RunTask) -> None:
        """An apply our agent stops before its commit gives its state lock back, as the live
        agent's abort does (`backend.release`): its lease would otherwise live on with the
        agent and refuse every later apply of the workspace. The seed's lock has no lease
        and is simply taken over, so it is left as it was."""
        state = self.fleet.w.state
        if state.lease_s is not None and run.action == "apply":
            state.free(run)

    def _lose_lock(self, x: Run) -> None:
        """A frozen apply whose lease ran out: its first renewal on waking fails, so it
        stops before its commit (the live agent's `LockLost`) and says so."""
        x.gen += 1
        self.fleet.w.state.free(x.run)  # an expired lock is free for the next apply
        self._fail_lock(x.run, f"state lock of {x.run.workspace_id} lost: its lease expired "
                               f"while the agent was frozen")

    def _fail_lock(self, run: RunTask, why: str) -> None:
        self._record(Kind.EXEC_FAIL, run, why)
        self._send_report(ev.ApplyFinished(run.task_id, self.agent_id, False, run.fence, why))

    def _lapse_waiting_claims(self, now: float) -> None:
        """Frozen or cut off, it renewed no lease of an apply waiting for its claim (past
        `claims.lapses_after_s` unheard): a lapsed one is free for another apply, and the run,
        if its claim is still answered 200, fails at once (`_begin`)."""
        state = self.fleet.w.state
        for x in self.runs.values():
            if (not x.begun and x.run.action == "apply" and state.holds(x.run)
                    and state.lapsed(self, now, claiming=True)):
                state.free(x.run)  # it no longer holds the lock: `_begin` fails it

    def resume(self) -> None:
        if self.dead or not self.paused:
            return
        w = self.fleet.w
        now = w.kernel.now
        self.paused = False
        lapsed = w.state.lapsed(self, now)
        self._lapse_waiting_claims(now)
        self.stalled_at = None
        for task_id, x in sorted(self.runs.items()):
            if not x.begun:
                continue
            if lapsed and x.run.action == "apply":
                self._lose_lock(x)
                del self.runs[task_id]
                continue
            x.ends_at = now + x.remaining
            x.gen += 1
            w.kernel.at(x.ends_at, self._finish, x, x.gen)
        for x in self.displaced:  # the seed's agent holds no lease to lose
            x.ends_at = now + x.remaining
            x.gen += 1
            w.kernel.at(x.ends_at, self._finish, x, x.gen)
        if not self.cut_off:
            self._heard_again()

    def _heard_again(self) -> None:
        """Woken, or its network back: what waited goes out (its claims, the runs sent to it,
        and its reports), and it beats, or connects again."""
        for _, x in sorted(self.runs.items()):
            if x.claim_due is not None:
                attempt, x.claim_due = x.claim_due, None
                self._claim(x, attempt)
        queued, self.queued = self.queued, []
        for run in queued:
            self.deliver(run)
        held, self.held = self.held, []
        for report, attempt in held:
            self._report(report, attempt)
        if self.connected:
            self.hb_gen += 1
            self.heartbeat(self.hb_gen)  # a 404 here means the server dropped us: reconnect
        else:
            self.reconnect_later()

    def cut(self) -> None:
        """An agent-partition: the process runs on (its runs progress, commit and renew their
        lease: the state backend is reachable), but nothing it sends reaches the scheduler and
        nothing sent to it arrives until `heal`. Neither side hears a close: the server still
        takes the C&C connection for open and learns of the cut only from the missing
        heartbeats."""
        if self.dead or self.cut_off:
            return
        self.cut_off = True
        self.cut_since = self.fleet.w.kernel.now
        self.hb_gen += 1
        self.conn_gen += 1
        self._close_when_silent()

    def _close_when_silent(self) -> None:
        """A server that closes silent sessions (`silent_close_s`) hears the agent gone that
        long after it went quiet, unless it is heard again first (a new `hb_gen`)."""
        after = self.fleet.cfg.silent_close_s
        if after is not None and self.connected:
            self.fleet.w.kernel.after(after, self._closed_silent, self.hb_gen)

    def _closed_silent(self, gen: int) -> None:
        if gen != self.hb_gen or self.dead or not (self.cut_off or self.paused):
            return
        # The server's view only: the agent learns of it when heard again (its heartbeat's
        # 404, then it registers anew), as the live agent's next poll is told to register.
        for x in [*self.displaced, *(x for _, x in sorted(self.runs.items()))]:
            if x.begun:
                self._record(Kind.EXEC_INFO, x.run, "agent silent: outcome unknown",
                             observed_by="service")
        self.fleet.w.notify(ev.AgentDisconnected(self.agent_id))

    def heal(self) -> None:
        if not self.cut_off:
            return
        self._lapse_waiting_claims(self.fleet.w.kernel.now)
        self.cut_off = False
        self.cut_since = None
        if not self.dead and not self.paused:  # a frozen one goes on when it wakes (`resume`)
            self._heard_again()


class AgentFleet:
    """All agents of the world, and the `Agents` port the scheduler sends through."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.cfg = world.cfg.agents
        self.rng = world.rng("agents")
        self.exit_on_sigterm = world.agent_on_sigterm == "exit"
        self.reports_until_delivered = world.agent_reports == reports.UNTIL_DELIVERED
        self.claims_runs = world.agent_claims_runs
        claim = self.cfg.claim
        self.claim_s = None if claim.kind == "fixed" and claim.a <= 0.0 else claim
        self.claim_rng = world.rng("claims")  # a stream of its own: 0 s leaves every history as it was
        self.by_id: dict[str, AgentSim] = {}
        # The agents not yet dead: a churning day starts thousands of agents, and fault
        # targeting walks the living ones.
        self.alive: dict[str, AgentSim] = {}
        self._n = 0

    def start(self, pod: Pod) -> AgentSim:
        self._n += 1
        a = AgentSim(self, f"agent-{pod.pool}-{self._n}", pod)
        self.by_id[a.agent_id] = self.alive[a.agent_id] = a
        a.conn_gen += 1
        self.w.kernel.after(self.cfg.connect.sample(self.rng), a.connect, a.conn_gen)
        return a

    def live(self) -> list[AgentSim]:
        return [a for _, a in sorted(self.alive.items())]

    def drop_all(self) -> None:
        """A scheduler restart closes every C&C connection; agents reconnect with backoff."""
        for a in self.live():
            if a.connected:
                a.backoff = 0.0
                a.drop()

    # ------------------------------------------------------------------ Agents port
    def send_run_task(self, agent_id: str, run: RunTask) -> None:
        a = self.by_id.get(agent_id)
        if a is None or a.dead or not a.connected:
            raise AgentSendError(f"agent {agent_id} not connected")
        a.deliver(run)

    def send_cancel(self, agent_id: str, task_id: int) -> None:
        self.send_run_task(agent_id, RunTask(task_id, "", "cancel"))
