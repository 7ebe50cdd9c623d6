"""The live chaos script of issue 5, run unchanged against any scheduler variant.

Stage A: three plan_and_apply tasks plan on three agents and wait for confirmation, each
holding a reservation on its pod. Tasks 2 and 3 are confirmed and start applying; then the
agent holding task 1's reservation is SIGKILLed and task 1 is confirmed while the two other
agents are busy applying.
Stage B: a task in ws-2 is confirmed; its agent is SIGSTOPped mid-apply. Once the scheduler
has given up on that apply, a new task of the same workspace plans and applies on another
agent; then the frozen agent is SIGCONTed (its stale apply must not commit).
Stage C: a task in ws-3 is confirmed; the scheduler is `kill -9`ed mid-apply and restarted
on the same data directory.

The script only acts and records what it saw; the tests assert per variant. Timings: the
scheduler runs at `--time-scale 0.05` (agent timeout 3 s, reconcile 0.25 s), agents heartbeat
every 0.2 s, plans take 0.3 s and applies `APPLY_S`.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

from tests.unit.service.live import LiveRun, wait_for

APPLY_S = 1.5
TERMINAL = {"applied", "failed", "cancelled", "success", "planned_and_finished"}


@dataclass
class Seen:
    tasks: dict[str, int] = field(default_factory=dict)
    notes: dict[str, object] = field(default_factory=dict)


def applying(run: LiveRun, task: int) -> str | None:
    rows = run.exec_rows(task, "exec.invoke", "apply")
    return rows[-1]["pod"] if rows else None


def planned(run: LiveRun, task: int, timeout: float = 15.0) -> None:
    wait_for(lambda: run.status(task) == "apply_pending", timeout, what=f"task {task} to plan")


def reserved_pod(run: LiveRun, task: int) -> str | None:
    rows = [r for r in run.history() if r["task"] == task and r["kind"] in ("slot.assigned", "slot.reserved")]
    return rows[-1]["pod"] if rows else None


def human_confirm(run: LiveRun, task: int) -> int:
    """Confirm the way a person does: not in the same instant the plan ended.

    The seed picks an agent from heartbeat-fed state (up to one heartbeat stale, §2.2). A
    confirm sent before the planning agent's next heartbeat finds it "still running a
    plan_and_apply" and loses the reservation (F2); that path has its own scenario. This
    script is about pods that die, so it waits until the scheduler has heard from that agent
    twice since the plan ended: the first heartbeat to arrive may have been sent just before
    the plan ended, still counting it (a CI run under load confirmed then, and the seed's
    apply never started: "no available agent in pool"); the agent sends each heartbeat once
    the last is answered, so the second was sent after the plan ended. Schedulers without such
    memory (the reference) confirm at once.
    """
    pod = run.agent_of(task)
    ended = max(r["t"] for r in run.history() if r["task"] == task and r["to_status"] == "apply_pending")
    heard: set[float] = set()

    def heard_twice() -> bool:
        m = run.believed().get(f"agent-{pod}")
        if m is None:
            return True
        if (m["last_heartbeat"] or 0) > ended:
            heard.add(m["last_heartbeat"])
        return len(heard) >= 2

    wait_for(heard_twice, 10, what=f"two heartbeats from the agent that planned task {task}")
    return run.confirm(task).status_code


def seen_applying(run: LiveRun, task: int) -> str:
    """Wait until `task` applies and the scheduler *believes* its agent is busy.

    A heartbeat sent just before the dispatch can arrive after it and show the agent free
    again (F7); the seed would then send the next apply to that same agent.
    """
    pod = wait_for(lambda: applying(run, task), 10, what=f"task {task} applying")
    wait_for(lambda: (m := run.believed().get(f"agent-{pod}")) is None or m["apply_running"], 10,
             what=f"the scheduler to see the agent of task {task} busy")
    return pod


def try_create(run: LiveRun, seen: Seen, name: str, workspace: str) -> int | None:
    """Create a task; None when the workspace is locked (423: a variant that wedged it)."""
    r = run.http.post("/tasks", json={"workspace_id": workspace}, headers=run.auth())
    seen.notes[f"{name}_create"] = r.status_code
    if r.status_code == 423:
        return None
    assert r.status_code == 201, r.text
    seen.tasks[name] = r.json()["task_id"]
    return seen.tasks[name]


def stage_a(run: LiveRun, seen: Seen) -> None:
    t1, t2, t3 = (run.create(ws) for ws in ("ws-1", "ws-2", "ws-3"))
    seen.tasks.update(t1=t1, t2=t2, t3=t3)
    for t in (t1, t2, t3):
        planned(run, t)
    busy = set()
    for t in (t2, t3):
        assert human_confirm(run, t) == 200
        busy.add(seen_applying(run, t))
    # The agent that is not applying: under the reference it is the one holding task 1's
    # reservation (one plan_and_apply per pod); the seed ties slots to no agent (F10).
    victim = next(p for p in run.pods if p not in busy)
    seen.notes["a_victim"] = victim
    seen.notes["a_reserved_on"] = reserved_pod(run, t1)
    run.fault("pod-kill", pod=victim, agent=f"agent-{victim}", reason="SIGKILL the agent holding task 1's reservation")
    run.signal(victim, signal.SIGKILL)
    seen.notes["a_confirm"] = run.confirm(t1).status_code
    # Whether task 1's confirm met both other agents still applying (else the machine stalled
    # for a whole apply and the stage did not test what it meant to).
    seen.notes["a_busy_at_confirm"] = all(run.status(t) == "running" for t in (t2, t3))
    wait_for(lambda: run.status(t2) in TERMINAL and run.status(t3) in TERMINAL, 15,
             what="tasks 2 and 3 to finish")


def stage_b(run: LiveRun, seen: Seen) -> None:
    t4 = try_create(run, seen, "t4", "ws-2")
    if t4 is None:
        return
    planned(run, t4)
    assert human_confirm(run, t4) == 200
    frozen = wait_for(lambda: applying(run, t4), 10, what="task 4 applying")
    seen.notes["b_frozen"] = frozen
    run.fault("node-loss", pod=frozen, agent=f"agent-{frozen}", reason="SIGSTOP the agent mid-apply")
    run.signal(frozen, signal.SIGSTOP)
    ended = wait_for(lambda: run.status(t4) in TERMINAL, 15, what="the frozen apply to be given up")
    seen.notes["b_t4_end"] = ended
    t5 = try_create(run, seen, "t5", "ws-2")
    if t5 is not None:
        planned(run, t5)
        assert human_confirm(run, t5) == 200
        other = wait_for(lambda: applying(run, t5), 10, what="task 5 applying on another agent")
        seen.notes["b_t5_agent"] = other
        wait_for(lambda: run.status(t5) in TERMINAL, 15, what="task 5 to finish")
    run.signal(frozen, signal.SIGCONT)
    wait_for(lambda: run.exec_rows(t4, "exec.fail", "apply") or run.exec_rows(t4, "exec.ok", "apply"),
             15, what="the thawed agent to end its stale apply")


def stage_c(run: LiveRun, seen: Seen) -> None:
    t6 = try_create(run, seen, "t6", "ws-3")
    if t6 is None:
        return
    planned(run, t6)
    assert human_confirm(run, t6) == 200
    wait_for(lambda: applying(run, t6), 10, what="task 6 applying")
    run.fault("scheduler-restart", reason="kill -9 the scheduler mid-apply")
    run.signal("scheduler", signal.SIGKILL)
    run.start_scheduler()
    seen.notes["c_restarted"] = True


def script(run: LiveRun) -> Seen:
    seen = Seen()
    run.start_scheduler()
    run.start_agents(apply_s=APPLY_S)
    stage_a(run, seen)
    stage_b(run, seen)
    stage_c(run, seen)
    return seen
