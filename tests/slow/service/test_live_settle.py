"""End to end, with a scheduler and an agent process on 127.0.0.1: an agent cut off from the
scheduler mid-apply by a network partition (a TCP forwarder the test cuts). The agent lives
on, commits, and cannot report.

Under the reference, the scheduler settles the apply from the state backend (`unstuck serve
--backend-dir`): applied. Under the seed, the scheduler fails the task at the silence (F8) and
the seed's agent (`unstuck agent --scheduler seed`) drops its report; the execution row still
reaches the history, and the checker finds the unrecorded apply.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time

import pytest

from scheduler.agent.backend import Backend, Token
from tests.slow.service.chaos_script import human_confirm
from tests.unit.service.live import LiveRun, wait_for
from tests.unit.service.partition import Partition
from unstuck import checker

pytestmark = pytest.mark.slow


@pytest.fixture
def run(tmp_path):
    # Time scale 0.05: the agent is presumed lost after 3 s without a heartbeat.
    live = LiveRun(tmp_path, "reference", pods=("pod-1",), workspaces=("ws-1",))
    yield live
    live.stop()


def test_a_partitioned_apply_that_commits_is_recorded_applied_from_the_state(run):
    link = Partition(run.port)
    try:
        task = _planned(run, apply_s=5.0, server=link.url)
        assert run.confirm(task).status_code == 200
        wait_for(lambda: run.exec_rows(task, action="apply"), 20, what="the apply to start")
        link.cut()
        backend = Backend(run.backend)
        # Presumed lost 3 s after the cut, 2 s before its commit, the run still holds the
        # state lock under its lease: the scheduler waits (the task is not failed meanwhile).
        wait_for(lambda: backend.state("ws-1")["applies"], 20, what="the apply to commit")
        wait_for(lambda: run.status(task) != "running", 20, what="the scheduler to settle the apply")
        rows = [r for r in run.history() if r["kind"] == "task.transition" and r["task"] == task]
        last = rows[-1]
        assert (last["from_status"], last["to_status"]) == ("running", "applied"), rows
        assert last["reason"].startswith("apply committed in the state (no heartbeat"), last
        assert [a["task"] for a in backend.state("ws-1")["applies"]] == [task]
        assert not run.exec_rows(task, "exec.ok", "apply")  # the agent's report never came
        verdict = checker.check(run.rows_with_end(8.0, 4.0))
        assert verdict.ok, [(v.invariant, v.message) for v in verdict.violations]
    finally:
        link.cut()


def test_the_seed_agent_drops_a_report_it_cannot_deliver_but_the_history_keeps_the_commit(tmp_path):
    # The same partition under the seed: its scheduler fails the task when the agent goes
    # silent (F8), and its agent (`--scheduler seed`) drops the report after 4 tries, 7 s.
    run = LiveRun(tmp_path, "seed", pods=("pod-1",), workspaces=("ws-1",))
    link = Partition(run.port)
    try:
        task = _planned(run, apply_s=1.0, server=link.url)
        assert human_confirm(run, task) == 200
        wait_for(lambda: run.exec_rows(task, action="apply"), 20, what="the apply to start")
        link.cut()
        backend = Backend(run.backend)
        wait_for(lambda: backend.state("ws-1")["applies"], 20, what="the apply to commit")
        log = tmp_path / "pod-1.log"
        wait_for(lambda: "/agent/report of task 1 dropped after 4 tries" in log.read_text(), 15,
                 what="the seed's agent to drop the report")
        link.heal()
        # The execution row is ours, not the seed's protocol: it goes out alone.
        wait_for(lambda: run.exec_rows(task, "exec.ok", "apply"), 20, what="the commit's row")
        assert run.status(task) == "failed"
        verdict = checker.check(run.rows_with_end(8.0, 4.0))
        assert [(v.invariant, v.task) for v in verdict.violations] == [("no_unrecorded_apply", task)]
    finally:
        link.cut()
        run.stop()


def _planned(run: LiveRun, *, apply_s: float, server: str | None = None) -> int:
    """The scheduler and pod-1's agent up (talking through `server`, a `Partition`'s URL,
    when given), and a plan_and_apply task of ws-1 planned: it waits for its confirm."""
    run.start_scheduler()
    run.start_agent("pod-1", apply_s=apply_s, server=server)
    wait_for(lambda: run.connected() == 1, 20, what="pod-1 to connect")
    task = run.create("ws-1")
    wait_for(lambda: run.status(task) == "apply_pending", 20, what="the plan")
    return task


def _writer(fifo) -> int | None:
    """A write end of `fifo`, once a reader holds it open (before, the open fails: ENXIO)."""
    try:
        return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return None


@pytest.mark.parametrize("restart", [False, True], ids=["", "across-a-scheduler-restart"])
def test_an_apply_frozen_before_its_claim_is_sent_again_and_never_runs_twice(tmp_path, restart):
    # The agent is held (a FIFO in place of the saved plan) just before it takes the state
    # lock, then frozen: it never claimed the run. The reference finds no lock and no commit,
    # and the run unclaimed: the apply never began, so it goes back to apply_pending, still
    # confirmed (until session 34 it failed "did not commit: re-plan and confirm"), and runs
    # on pod-2. When the frozen agent wakes, it takes the lock and claims the run, which is
    # no longer the task's dispatch: refused, it gives the lock back. The plan is applied
    # once. (When it claimed before taking the lock, it committed the old plan on top.)
    # With a kill -9 and a restart of the scheduler between the dispatch and the settling,
    # the same: the claim, or its absence, is in the task's row (until session 35 it was in
    # the dead process's memory, and the restarted one failed the task "did not commit").
    run = LiveRun(tmp_path, "reference", pods=("pod-1", "pod-2"), workspaces=("ws-1",))
    try:
        t1 = _planned(run, apply_s=0.5)
        plan = run.backend / "plans" / f"{t1}.json"
        saved = plan.read_text()
        plan.unlink()
        os.mkfifo(plan)
        assert run.confirm(t1).status_code == 200
        writer = wait_for(lambda: _writer(plan), 20, what="pod-1 to read the plan (the FIFO)")
        run.signal("pod-1", signal.SIGSTOP)
        if restart:
            run.signal("scheduler", signal.SIGKILL)
            run.start_scheduler()
        wait_for(lambda: run.status(t1) != "running", 30, what="the scheduler to settle task 1")
        back = [r for r in run.history() if r["kind"] == "task.transition" and r["task"] == t1][-1]
        assert (back["from_status"], back["to_status"]) == ("running", "apply_pending"), back
        assert back["reason"].startswith("apply never started"), back
        assert run.task(t1)["apply_confirmed_by"]  # the user's confirmation stands
        plan.unlink()  # pod-1 keeps the FIFO it opened; pod-2 reads the saved plan
        plan.write_text(saved)
        run.start_agent("pod-2", apply_s=0.5)
        wait_for(lambda: run.status(t1) == "applied", 30, what="task 1's apply, on pod-2")
        run.signal("pod-1", signal.SIGCONT)
        os.write(writer, saved.encode())
        os.close(writer)
        log = tmp_path / "pod-1.log"
        wait_for(lambda: "claim refused" in log.read_text(), 20, what="pod-1's claim to be refused")
        backend = Backend(run.backend)
        assert [a["task"] for a in backend.state("ws-1")["applies"]] == [t1]  # once
        assert not (run.backend / "locks" / "ws-1.json").exists()  # given back
        assert [r["pod"] for r in run.exec_rows(t1, action="apply")] == ["pod-2"]
        verdict = checker.check(run.rows_with_end(8.0, 4.0))
        assert verdict.ok, [(v.invariant, v.message) for v in verdict.violations]
    finally:
        run.stop()


def _stop_outside_flock(run: LiveRun, pod: str, flock_file) -> None:
    """SIGSTOP `pod` at a moment it holds no flock of `flock_file` (it takes one for each
    write of the state lock, a renewal among them): stopped inside one, it would block every
    other agent's acquire for as long as it stays stopped."""
    for _ in range(100):
        run.signal(pod, signal.SIGSTOP)
        with open(flock_file, "a+") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
            else:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
                return
        run.signal(pod, signal.SIGCONT)
        time.sleep(0.01)
    raise AssertionError(f"{pod} held {flock_file} at each of 100 tries")


@pytest.mark.parametrize("pod_1", ["frozen", "alive"])
def test_an_apply_cut_off_between_its_lock_and_its_claim_runs_once_after_the_lease_lapses(tmp_path, pod_1):
    # pod-1 takes ws-1's state lock and sends its claim, which waits in a one-way partition
    # (the link holds all pod-1 sends from the moment the apply reaches it). Frozen, pod-1
    # holds the lock and renews nothing; alive, it renews while its claim waits only as long
    # as the scheduler answers it (4 leases; before, it renewed for ever and the task waited
    # in doubt for the run timeout). While the lease runs the scheduler is in doubt and
    # waits; once it lapses the state says "not committed", and the run was never claimed,
    # so the task goes back to apply_pending and pod-2 applies it, taking over the lapsed
    # lock. pod-1's link comes back with pod-2 mid-apply: its claim arrives and is refused,
    # and the lock it gives back is pod-2's, which the fenced release leaves alone (an
    # unfenced one would cost pod-2 its lock, and the task its apply). Applied once.
    run = LiveRun(tmp_path, "reference", pods=("pod-1", "pod-2"), workspaces=("ws-1",))
    link = Partition(run.port)
    try:
        t1 = _planned(run, apply_s=0.5, server=link.url)
        link.hold_when(b'"action":"apply"')
        confirmed = run.history()[-1]["seq"]
        assert run.confirm(t1).status_code == 200
        lock = run.backend / "locks" / "ws-1.json"
        first = wait_for(lambda: lock.exists() and json.loads(lock.read_text()), 20,
                         what="pod-1 to take the state lock")
        assert (first["task"], first["agent"]) == (t1, run.task(t1)["agent_id"]), first
        if pod_1 == "frozen":
            _stop_outside_flock(run, "pod-1", run.backend / "locks" / "ws-1.lk")
        back = wait_for(lambda: [r for r in run.history() if r["kind"] == "task.transition"
                                 and r["task"] == t1 and r["from_status"] == "running"
                                 and r["seq"] > confirmed], 30,
                        what="the scheduler to settle task 1's apply")
        assert (back[0]["to_status"], back[0]["reason"][:19]) == ("apply_pending", "apply never started"), back
        last = json.loads(lock.read_text())  # as pod-1 last renewed it: a lapsed lease stays so
        assert (last["task"], last["fence"], last["agent"]) == (first["task"], first["fence"], first["agent"])
        assert time.time() >= last["expires"]  # not before pod-1's lease lapsed
        assert not run.exec_rows(t1, action="apply")  # pod-1's claim still waits in the link
        log = tmp_path / "pod-1.log"
        if pod_1 == "alive":
            assert "letting the state lock's lease lapse" in log.read_text()
        run.start_agent("pod-2", apply_s=4.0)
        wait_for(lambda: run.exec_rows(t1, action="apply"), 30, what="pod-2 to claim the apply")
        second = json.loads(lock.read_text())
        assert second["fence"] > first["fence"] and second["agent"] != first["agent"], second
        if pod_1 == "frozen":
            run.signal("pod-1", signal.SIGCONT)
        link.release()
        wait_for(lambda: "claim refused" in log.read_text(), 20, what="pod-1's claim to be refused")
        backend = Backend(run.backend)
        assert backend.state("ws-1")["applies"] == []  # pod-2 was still at work when pod-1 woke
        wait_for(lambda: run.status(t1) in ("applied", "failed"), 30, what="pod-2's apply")
        assert run.status(t1) == "applied", run.task(t1)["error_message"]
        assert [(a["task"], a["fence"], a["agent"]) for a in backend.state("ws-1")["applies"]] == [
            (t1, second["fence"], second["agent"])]
        assert [r["pod"] for r in run.exec_rows(t1, action="apply")] == ["pod-2"]
        verdict = checker.check(run.rows_with_end(8.0, 4.0))
        assert verdict.ok, [(v.invariant, v.message) for v in verdict.violations]
    finally:
        link.cut()
        run.stop()


def test_a_plan_frozen_past_its_silence_cannot_replace_the_plan_the_user_confirms(tmp_path):
    # pod-1 claims task 1's plan and is frozen; the reference presumes the plan lost and plans
    # again on pod-2 (a newer fence), whose plan the user confirms. pod-1 wakes and finishes
    # its stale plan: fenced like the state lock, it must not replace the saved plan (it did,
    # and the confirmed apply then failed with "plan digest mismatch").
    run = LiveRun(tmp_path, "reference", pods=("pod-1", "pod-2"), workspaces=("ws-1",))
    try:
        run.start_scheduler()
        run.start_agent("pod-1", plan_s=3.0)
        wait_for(lambda: run.connected() == 1, 20, what="pod-1 to connect")
        t1 = run.create("ws-1")
        wait_for(lambda: run.exec_rows(t1, action="plan"), 20, what="pod-1 to claim the plan")
        run.signal("pod-1", signal.SIGSTOP)
        run.start_agent("pod-2")
        wait_for(lambda: run.status(t1) == "apply_pending", 30, what="the plan again, on pod-2")
        confirmed = run.task(t1)["plan_digest"]
        run.signal("pod-1", signal.SIGCONT)
        stale = wait_for(lambda: [r for r in run.history() if r["task"] == t1 and r["pod"] == "pod-1"
                                  and r["kind"] in ("exec.ok", "exec.fail")], 20,
                         what="pod-1's stale plan to end")
        assert [(r["kind"], r["reason"]) for r in stale] == [
            ("exec.fail", f"plan fenced: stale token (task {t1}, fence {stale[0]['data']['fence']}); "
                          "a newer plan of the task is saved")]
        assert Backend(run.backend).plan_digest(t1) == confirmed
        assert run.confirm(t1, confirmed).status_code == 200
        wait_for(lambda: run.status(t1) in ("applied", "failed"), 30, what="the apply")
        assert run.status(t1) == "applied", run.task(t1)["error_message"]
        assert [a["digest"] for a in Backend(run.backend).state("ws-1")["applies"]] == [confirmed]
        verdict = checker.check(run.rows_with_end(8.0, 4.0))
        assert verdict.ok, [(v.invariant, v.message) for v in verdict.violations]
    finally:
        run.stop()


def test_an_apply_refused_by_a_held_state_lock_waits_and_runs_once_the_lock_is_free(tmp_path):
    # Another run (a stray token, as a cut-off agent renewing its lease would hold) holds
    # ws-1's state lock under a live lease when the confirmed apply arrives: the agent is
    # refused before its claim and reports the apply failed. It never began, so the
    # reference sends it back to apply_pending (until session 34 the task failed, and the
    # user had to plan again); once the lock is free it is applied, once.
    run = LiveRun(tmp_path, "reference", pods=("pod-1",), workspaces=("ws-1",))
    try:
        t1 = _planned(run, apply_s=0.3)
        holder = Backend(run.backend, lease_s=600.0)
        stray = Token(99, 1, "stray-agent")
        holder.acquire("ws-1", stray)
        assert run.confirm(t1).status_code == 200
        refused = wait_for(lambda: [r for r in run.history() if r["task"] == t1
                                    and r["kind"] == "task.transition"
                                    and r["reason"].startswith("apply refused before it began")],
                           20, what="the refused apply to go back to apply_pending")
        assert (refused[0]["from_status"], refused[0]["to_status"]) == ("running", "apply_pending")
        assert "locked by task 99" in refused[0]["reason"], refused[0]["reason"]
        assert run.task(t1)["apply_confirmed_by"] and run.status(t1) != "failed"
        holder.release("ws-1", stray)
        wait_for(lambda: run.status(t1) == "applied", 30, what="the apply once the lock is free")
        assert [a["task"] for a in Backend(run.backend).state("ws-1")["applies"]] == [t1]
        assert len(run.exec_rows(t1, action="apply")) == 1  # one claim: refused runs claim nothing
        verdict = checker.check(run.rows_with_end(8.0, 4.0))
        assert verdict.ok, [(v.invariant, v.message) for v in verdict.violations]
    finally:
        run.stop()
