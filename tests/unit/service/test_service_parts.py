"""The service's and agent's parts on their own: the fenced state lock, the run clock, the
durable history log, the timer's ordering, the mailboxes, and token configuration."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import httpx
import pytest

from scheduler import events as ev
from scheduler.agent.backend import Backend, LockLost, StateLocked, Token
from scheduler.history import HistoryEvent, Kind, Source, read_jsonl
from scheduler.model import TaskType
from scheduler.ports import AgentSendError, ApplyOutcome, RunTask, StateReadError
from scheduler.service.app import create_app
from scheduler.service.clock import OFFSET_MIN_S, RunClock
from scheduler.service.config import ServiceConfig
from scheduler.service.engine import Engine
from scheduler.service.historylog import HistoryLog
from scheduler.service.identity import Identities, IdentityConfigError, load_users
from scheduler.service.mailboxes import Mailboxes
from scheduler.service.timer import LoopTimer
from scheduler.settings import Settings, scaled_settings
from tests.unit.service.live import scrape, wait_for

A, B = Token(1, 2, "agent-a"), Token(7, 1, "agent-b")


# The simulated Terraform backend's state lock.

def test_the_state_lock_refuses_a_second_apply_while_the_lease_runs(tmp_path):
    backend = Backend(tmp_path, lease_s=5.0)
    backend.acquire("ws-1", A)
    with pytest.raises(StateLocked, match=r"state of ws-1 is locked by task 1 \(fence 2, agent agent-a\)"):
        backend.acquire("ws-1", B)
    assert backend.commit("ws-1", A, "sha256:p") == 1
    backend.acquire("ws-1", B)  # released by the commit
    assert backend.state("ws-1")["applies"][0]["task"] == 1


def test_a_holder_past_its_lease_cannot_commit_even_if_nobody_took_the_lock(tmp_path):
    backend = Backend(tmp_path, lease_s=0.05)
    backend.acquire("ws-1", A)
    time.sleep(0.1)  # the lease is wall-clock: let it run out
    with pytest.raises(LockLost, match="state lock fenced: stale token"):
        backend.commit("ws-1", A, "sha256:p")
    assert backend.state("ws-1") == {"serial": 0, "applies": []}


def test_an_expired_lock_is_taken_over_and_the_old_holder_is_fenced(tmp_path):
    backend = Backend(tmp_path, lease_s=0.05)
    backend.acquire("ws-1", A)
    time.sleep(0.1)
    backend.acquire("ws-1", B)
    with pytest.raises(LockLost):
        backend.renew("ws-1", A)
    assert backend.commit("ws-1", B, "sha256:q") == 1
    assert [a["task"] for a in backend.state("ws-1")["applies"]] == [7]


def test_the_scheduler_reads_an_apply_as_in_doubt_then_committed_or_not(tmp_path):
    agent, reader = Backend(tmp_path, lease_s=0.05), Backend(tmp_path, create=False)
    assert reader.apply_outcome("ws-1", 1, 2) is ApplyOutcome.NOT_COMMITTED  # never started
    agent.acquire("ws-1", A)
    assert reader.apply_outcome("ws-1", 1, 2) is ApplyOutcome.IN_DOUBT  # it may still commit
    assert reader.apply_outcome("ws-1", 1, 3) is ApplyOutcome.NOT_COMMITTED  # another run's token
    agent.commit("ws-1", A, "sha256:p")
    assert reader.apply_outcome("ws-1", 1, 2) is ApplyOutcome.COMMITTED
    agent.acquire("ws-1", B)
    time.sleep(0.1)  # its lease runs out: it cannot commit any more
    assert reader.apply_outcome("ws-1", 7, 1) is ApplyOutcome.NOT_COMMITTED
    assert reader.apply_outcome("ws-1", 1, 2) is ApplyOutcome.COMMITTED


def test_a_lease_renewed_while_the_scheduler_reads_it_is_seen_running(tmp_path, monkeypatch):
    # The reader is held between its read of the lock and its verdict until the old expiry
    # has passed; the holder renews just before that expiry. With `now` taken after the
    # read, the stale expiry read as lapsed: NOT_COMMITTED for a run that then committed.
    from scheduler.agent import backend as module

    agent, reader = Backend(tmp_path, lease_s=0.4), Backend(tmp_path, create=False)
    agent.acquire("ws-1", A)
    read, renewed = module._read_json, []

    def descheduled(path):
        held = read(path)
        if path.parent.name == "locks" and held and not renewed:
            renewed.append(True)  # once: `renew` reads the lock too
            time.sleep(max(0.0, held["expires"] - time.time() - 0.1))
            agent.renew("ws-1", A)
            time.sleep(max(0.0, held["expires"] - time.time() + 0.02))
        return held

    monkeypatch.setattr(module, "_read_json", descheduled)
    assert reader.apply_outcome("ws-1", 1, 2) is ApplyOutcome.IN_DOUBT
    monkeypatch.setattr(module, "_read_json", read)
    agent.commit("ws-1", A, "sha256:p")  # it could: its lease was live
    assert reader.apply_outcome("ws-1", 1, 2) is ApplyOutcome.COMMITTED


def test_a_backend_the_scheduler_cannot_read_is_an_error_not_a_missing_commit(tmp_path):
    # A mistyped --backend-dir must not read as "no commit": that would fail applies that
    # committed. The reader creates nothing.
    with pytest.raises(StateReadError, match=r"no backend at .*/nowhere .*give the scheduler the agents' --backend-dir"):
        Backend(tmp_path / "nowhere", create=False).apply_outcome("ws-1", 1, 2)
    assert not (tmp_path / "nowhere").exists()
    # A path the OS refuses to look at (here: a name too long; EACCES for a scheduler not
    # allowed in) is unreadable too, not an exception that would stop every reconcile.
    with pytest.raises(StateReadError, match="cannot read the backend at .*File name too long"):
        Backend(tmp_path / ("x" * 300), create=False).apply_outcome("ws-1", 1, 2)
    Backend(tmp_path)
    (tmp_path / "state" / "ws-1.json").write_text("{torn")
    with pytest.raises(StateReadError, match="cannot read the state of ws-1"):
        Backend(tmp_path, create=False).apply_outcome("ws-1", 1, 2)


def test_a_backend_that_cannot_be_read_is_counted_and_logged_once_until_it_can(tmp_path, caplog):
    # The reference waits on such a backend until the run timeout: the operator must be
    # able to see why a silent apply does not settle.
    from prometheus_client import generate_latest

    from scheduler.service.metrics import ServiceMetrics
    from scheduler.service.state_reader import StateReader

    metrics = ServiceMetrics(tasks_by_status=dict, stuck=lambda: 0, agents_connected=lambda: 0)
    reader = StateReader(Backend(tmp_path / "backend", create=False),
                         on_error=metrics.state_read_errors.inc)
    caplog.set_level("WARNING", logger="unstuck.service")
    for _ in range(3):
        with pytest.raises(StateReadError, match="no backend at"):
            reader.apply_outcome("ws-1", 1, 2)
    assert "unstuck_state_read_errors_total 3.0" in generate_latest(metrics.registry).decode()
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and warned[0].startswith("cannot read the state backend (silent "
                                                     "applies wait for it until their run timeout): no backend at")
    Backend(tmp_path / "backend").acquire("ws-1", A)  # an agent starts using it
    assert reader.apply_outcome("ws-1", 1, 2) is ApplyOutcome.IN_DOUBT
    assert reader.apply_outcome("ws-1", 1, 2) is ApplyOutcome.IN_DOUBT
    assert [r.getMessage() for r in caplog.records][1:] == [
        f"the state backend at {tmp_path / 'backend'} can be read again"]
    assert "unstuck_state_read_errors_total 3.0" in generate_latest(metrics.registry).decode()


def test_the_seeds_lock_has_no_lease_a_newer_apply_takes_it_over(tmp_path):
    backend, reader = Backend(tmp_path, lease_s=None), Backend(tmp_path, create=False)
    assert backend.acquire("ws-1", A) is None
    time.sleep(0.05)
    assert reader.apply_outcome("ws-1", 1, 2) is ApplyOutcome.IN_DOUBT  # it may commit any time
    backend.renew("ws-1", A)  # nothing to extend, and still its own
    assert backend.acquire("ws-1", B) == (1, 2)  # taken over, never refused
    with pytest.raises(LockLost, match="stale token"):
        backend.commit("ws-1", A, "sha256:p")
    assert reader.apply_outcome("ws-1", 1, 2) is ApplyOutcome.NOT_COMMITTED
    assert backend.commit("ws-1", B, "sha256:q") == 1


def test_a_saved_plan_has_a_stable_digest(tmp_path):
    backend = Backend(tmp_path)
    digest = backend.save_plan(3, 1, "ws-1", "agent-a", True)
    assert digest.startswith("sha256:") and backend.plan_digest(3) == digest
    assert backend.plan_digest(4) is None


# The run clock.

def test_the_clock_is_offset_and_survives_a_restart(tmp_path):
    path = tmp_path / "clock.json"
    first = RunClock(path, scheduler="seed")
    assert first.now() > OFFSET_MIN_S and not first.restarted
    assert abs(first.now() - time.time()) > 1e8  # never mistakable for wall time
    assert json.loads(path.read_text())["scheduler"] == "seed"  # what close-run labels the run with
    t = first.t()
    again = RunClock(path, scheduler="seed")
    assert again.restarted and again.offset == first.offset and again.run_start == first.run_start
    assert again.t() >= t and json.loads(path.read_text())["scheduler"] == "seed"


def test_a_restart_under_another_scheduler_is_refused_and_an_old_clock_file_still_read(tmp_path):
    # One history judges one scheduler: rows of seed and reference in one run would be judged
    # under one name.
    path = tmp_path / "clock.json"
    RunClock(path, scheduler="seed")
    before = path.read_bytes()
    with pytest.raises(ValueError) as refused:
        RunClock(path, scheduler="reference")
    assert str(refused.value) == (
        f"{path}: records that this run is served by --scheduler seed (since its first start), "
        "not --scheduler reference: one history judges one scheduler; give a new --data-dir, or "
        "--scheduler seed")
    assert path.read_bytes() == before
    state = json.loads(before)
    del state["scheduler"]  # a clock file from before the field: read, and left unrecorded
    path.write_text(json.dumps(state))
    assert RunClock(path, scheduler="reference").offset == state["offset"]
    assert "scheduler" not in json.loads(path.read_text())
    path.write_text(json.dumps({**state, "scheduler": "fifo"}))
    with pytest.raises(ValueError, match=r"not a clock file \(scheduler 'fifo' is not one of seed, "):
        RunClock(path, scheduler="reference")


def test_a_clock_file_from_before_a_reboot_continues_from_its_last_reading(tmp_path):
    path = tmp_path / "clock.json"
    RunClock(path)
    state = json.loads(path.read_text())
    state.update(boot_id="another-boot", now_at=state["run_start"] + 100.0, wall_at=time.time() - 5.0)
    path.write_text(json.dumps(state))
    clock = RunClock(path)
    assert 104.9 < clock.t() < 106.0


def test_after_a_reboot_whose_wall_clock_stepped_back_time_resumes_after_the_last_row(tmp_path):
    # Found by review: the reboot bridge is the wall time since the last saved reading, 0 when
    # the wall clock stepped back; rows written after that reading then lay in the future, and
    # the run's next rows went back in time (which the checker refuses).
    from scheduler.service.config import ServiceConfig
    from scheduler.service.engine import Engine

    run = tmp_path / "run"
    run.mkdir()
    clock = RunClock(run / "clock.json")  # saved at t of about 0
    log = HistoryLog(run / "history.jsonl", clock.t)
    log.append(HistoryEvent(clock.now() + 500.0, Kind.USER, task=1))  # a row at t = 500
    log.close()
    state = json.loads((run / "clock.json").read_text())
    state.update(boot_id="another-boot", wall_at=time.time() + 3600.0)  # the wall clock went back
    (run / "clock.json").write_text(json.dumps(state))
    engine = Engine(ServiceConfig(data_dir=run, store_url="memory://"))
    try:
        assert 500.0 <= engine.clock.t() < 501.0
        assert json.loads((run / "clock.json").read_text())["now_at"] >= engine.clock.run_start + 500.0
    finally:
        engine.history.close()


def test_a_corrupt_clock_file_is_refused_with_the_fix(tmp_path):
    (tmp_path / "clock.json").write_text("{")
    with pytest.raises(ValueError, match=r"clock.json: not a clock file .*delete it to start a new run"):
        RunClock(tmp_path / "clock.json")


# The durable history log.

def test_history_rows_are_durable_with_run_times_and_a_torn_tail_is_cut(tmp_path):
    path = tmp_path / "history.jsonl"
    log = HistoryLog(path, lambda now: now - 1000.0)
    log.append(HistoryEvent(1000.5, Kind.SCHEDULER_RESTART))
    log.append(HistoryEvent(1001.25, Kind.USER, task=1))
    log.flush()
    with open(path, "ab") as f:
        f.write(b'{"seq":2,"t":1.5,"ki')  # the process died mid-write
    log.close()
    again = HistoryLog(path, lambda now: now - 1000.0)
    assert [r["t"] for r in again.rows] == [0.5, 1.25]
    again.append(HistoryEvent(1002.0, Kind.USER))
    again.close()
    assert [r["seq"] for r in read_jsonl(path)] == [0, 1, 2]


def test_history_windows_read_back_from_the_file_equal_the_rows_appended(tmp_path):
    """The file-backed log keeps only where each row starts: `GET /history`'s windows, read
    back from the file, and a restart's replay give the rows as appended, as the in-memory log
    (no file) does."""
    path = tmp_path / "history.jsonl"
    on_file, in_memory = HistoryLog(path, lambda now: now - 100.0), HistoryLog(None, lambda now: now - 100.0)
    appended = []
    for i in range(40):
        event = HistoryEvent(100.0 + i / 4, Kind.USER, task=i % 7, reason="é" * (i % 3),
                             data={"n": i, "text": "line\nbreak" if i == 5 else ""})
        appended.append(on_file.append(event))
        assert in_memory.append(event) == appended[-1]
    windows = [(0, None), (0, 1), (3, 10), (39, 5), (35, None), (40, 3), (99, None), (0, 40)]
    for log in (on_file, in_memory):
        assert len(log) == 40 and log.last == appended[-1]
        for offset, limit in windows:
            assert log.since(offset, limit) == appended[offset:None if limit is None else offset + limit]
        assert list(log.replay()) == appended
    on_file.close()
    again = HistoryLog(path, lambda now: now - 100.0)  # a restart: indexed from the file
    assert len(again) == 40 and again.last == appended[-1] and list(again.replay()) == appended
    appended.append(again.append(HistoryEvent(120.0, Kind.USER, task=1)))
    assert appended[-1]["seq"] == 40
    assert again.since(38) == appended[38:] and again.since(40, 1) == appended[40:]
    again.close()
    assert read_jsonl(path) == appended


def test_a_history_file_with_a_gap_is_refused(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text('{"seq":0}\n{"seq":5}\n')
    with pytest.raises(ValueError, match=r"row 2 has seq 5, expected 1"):
        HistoryLog(path, float)



def test_a_history_line_that_is_not_json_before_whole_rows_is_refused_not_cut(tmp_path):
    """Only a torn last line is cut: a damaged line with whole rows after it (a flipped byte,
    an edit) was cut with every row after it, and the run continued without them."""
    path = tmp_path / "history.jsonl"
    path.write_text('{"seq":0,"t":0.0}\n{"seq":1,"t":0.5\n{"seq":2,"t":1.0}\n{"seq":3,"t":1.5}\n')
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"^.*/history.jsonl: line 2 is not a JSON history row, "
                                         r"and lines follow it .*; move it away to start a new run$"):
        HistoryLog(path, float)
    assert path.read_bytes() == before


# The timer and the mailboxes.

def test_wake_ups_of_one_instant_fire_in_the_order_asked():
    async def go() -> list[str]:
        fired: list[str] = []
        timer = LoopTimer(time.monotonic, lambda e: fired.append(e.tag.name))
        timer.bind(asyncio.get_running_loop())
        t0 = time.monotonic()
        timer.wake_at(t0 + 0.03, ev.TimerTag("later"))
        for name in ("a", "b", "c"):
            timer.wake_at(t0, ev.TimerTag(name))
        timer.wake_at(t0 - 1.0, ev.TimerTag("early"))
        while len(fired) < 5:
            await asyncio.sleep(0.005)
        timer.close()
        return fired

    assert asyncio.run(asyncio.wait_for(go(), 5)) == ["early", "a", "b", "c", "later"]


def test_a_send_to_an_unknown_or_silent_agent_fails_and_a_poll_gets_its_mail():
    async def go() -> list[dict]:
        now = [0.0]
        boxes = Mailboxes(lambda: now[0], poll_timeout_s=1.0, stale_after_s=5.0)
        with pytest.raises(AgentSendError, match="agent-x is not connected"):
            boxes.send_run_task("agent-x", RunTask(1, "ws-1", "plan"))
        box = boxes.register("agent-a", "pool-1", "pod-1", None)
        boxes.send_run_task("agent-a", RunTask(1, "ws-1", "plan", fence=3, task_type=TaskType.PLAN))
        first = await boxes.poll(box, 0, 1.0)
        again = await boxes.poll(box, 0, 0.0)  # not acknowledged: delivered again
        acked = await boxes.poll(box, first[-1]["seq"], 0.0)
        now[0] = 10.0
        with pytest.raises(AgentSendError, match="has not polled for 10.0 s"):
            boxes.send_cancel("agent-a", 1)
        assert [b.agent_id for b in boxes.silent()] == ["agent-a"]
        assert again == first and acked == []
        return first

    (msg,) = asyncio.run(go())
    assert msg == {"seq": 1, "type": "run_task", "task_id": 1, "workspace_id": "ws-1",
                   "action": "plan", "fence": 3, "plan_digest": None, "pod": None, "slot": None,
                   "task_type": "plan"}


# Configuration.

def test_user_tokens_from_env_and_file_and_their_errors(tmp_path):
    f = tmp_path / "users.json"
    f.write_text('{"t2": "bob"}')
    users = load_users(f, {"UNSTUCK_USER_TOKENS": "t1=alice"})
    ids = Identities(users, "pool")
    assert ids.user_for("Bearer t1") == "alice" and ids.user_for("Bearer t2") == "bob"
    assert ids.user_for("Bearer t3") is None and ids.user_for("t1") is None
    assert ids.agent_ok("Bearer pool") and not ids.agent_ok("Bearer t1")
    with pytest.raises(IdentityConfigError, match=r"item 1 'alice' is not TOKEN=USER"):
        load_users(None, {"UNSTUCK_USER_TOKENS": "alice"})
    f.write_text('["alice"]')
    with pytest.raises(IdentityConfigError, match=r"users.json: expected a JSON object mapping"):
        load_users(f, {})


def test_time_scale_scales_every_duration_but_not_calendar_anchors():
    fast = scaled_settings(Settings(), 0.05)
    assert fast.reference.agent_timeout_s == pytest.approx(3.0)
    assert fast.retries.backoff_s == pytest.approx((0.25, 0.5, 1.0, 2.0, 3.0))
    assert fast.seed.epoch_unix_s == Settings().seed.epoch_unix_s
    assert fast.reference.retry_budget == Settings().reference.retry_budget


# The agent each scheduler ships with.

def test_the_agent_of_a_scheduler_is_the_one_the_simulation_models():
    from scheduler.agent.process import AgentConfig
    from sim.world import World
    from tests.unit.sim.worlds import config

    common = {"url": "http://h", "token": "t", "pod": "p", "agent_id": "a"}
    for name in ("reference", "seed", "seed-proposal", "seed-head"):
        cfg, world = AgentConfig.of(name, **common), World(config(), name, 0)
        assert (cfg.on_sigterm, cfg.reports, cfg.lease_s, cfg.claims_runs) == (
            world.agent_on_sigterm, world.agent_reports, world.agent_state_lease_s,
            world.agent_claims_runs), name
    assert AgentConfig.of("reference", lease_s=1.0, **common).lease_s == 1.0
    seed = AgentConfig.of("seed", lease_s=1.0, on_sigterm="drain", **common)
    assert (seed.lease_s, seed.on_sigterm) == (None, "drain")  # no lease to set; SIGTERM overridden


def test_an_apply_stopped_while_its_claim_waits_gives_its_lock_back(tmp_path):
    # SIGTERM while the scheduler is unreachable: the apply holds the state lock and waits
    # for its claim's answer. It must give the lock back before the agent exits (it held it
    # for the lease, refusing the workspace's next apply) and say it never began.
    from scheduler.agent.process import Agent, AgentConfig

    cfg = AgentConfig(url="http://127.0.0.1:9", token="t", pod="pod-1", agent_id="agent-pod-1",
                      backend_dir=tmp_path, grace_s=1.0, lease_s=30.0, apply_s=5.0)
    agent = Agent(cfg)
    sent: list[tuple[str, dict]] = []
    put = agent.outbox.put
    agent.outbox.put = lambda path, body, task_id=None: sent.append((path, body)) or put(path, body, task_id)
    digest = agent.backend.save_plan(1, 1, "ws-1", "agent-pod-1", True)
    agent._dispatch({"type": "run_task", "seq": 1, "task_id": 1, "workspace_id": "ws-1",
                     "action": "apply", "fence": 1, "plan_digest": digest})
    lock = tmp_path / "locks" / "ws-1.json"
    wait_for(lock.exists, 5, what="the apply to take the lock")
    agent.terminate(signal.SIGTERM, None)
    assert agent._shutdown() == 0
    assert not lock.exists() and not agent.runs
    assert [body["error"] for path, body in sent if path == "/agent/report"] == [
        "apply aborted before it began: agent terminating (SIGTERM)"]
    agent.outbox.thread.join(5)  # a stopping outbox gives up what it cannot deliver
    assert not agent.outbox.thread.is_alive()


def test_a_refusal_that_is_not_json_is_shown_as_it_came():
    # A proxy in front of the scheduler answers with its own page.
    import httpx

    from scheduler.agent.process import _message

    assert _message(httpx.Response(409, json={"message": "start the agent with --scheduler seed"})) \
        == "start the agent with --scheduler seed"
    assert _message(httpx.Response(404, text="<html>404 Not Found</html>\n")) == "<html>404 Not Found</html>"
    assert _message(httpx.Response(403, json=["no"])) == '["no"]'
    assert _message(httpx.Response(401, text="")) == "(empty body)"


# Metrics across a restart.

def test_the_latency_histograms_span_a_scheduler_restart(tmp_path):
    # A confirm before a `kill -9` and the apply start after it, or a fault before it (the
    # harness's scheduler-restart) and the task's progress after it: the restarted service must
    # time them as the checker will, from the rows the history already holds, and must not count
    # the observations the first process made again.
    config = ServiceConfig(data_dir=tmp_path / "run")
    first = Engine(config)
    t0 = first.clock.now()
    for row in (HistoryEvent(t0, Kind.TASK_CREATED, task=1, to_status="pending"),
                HistoryEvent(t0, Kind.TASK_TRANSITION, task=1, from_status="pending", to_status="running",
                             agent="a-1", pod="pod-1", data={"stage": "planning"}),
                HistoryEvent(t0, Kind.TASK_TRANSITION, task=1, from_status="running",
                             to_status="apply_pending", pod="pod-1", data={"stage": "apply_pending"}),
                HistoryEvent(t0, Kind.TASK_CONFIRMED, task=1, data={"user": "alice"}),
                HistoryEvent(t0, Kind.TASK_CREATED, task=3, to_status="apply_pending"),
                HistoryEvent(t0, Kind.TASK_CONFIRMED, task=3, data={"user": "alice"}),
                HistoryEvent(t0, Kind.EXEC_INVOKE, Source.AGENT, task=3, agent="a-1", pod="pod-1",
                             data={"action": "apply", "fence": 1}),  # timed by the first process
                HistoryEvent(t0, Kind.TASK_CREATED, task=2, to_status="pending"),
                HistoryEvent(t0, Kind.FAULT, Source.FAULT, data={"type": "scheduler-restart"})):
        first.history.append(row)
    asyncio.run(first.stop())

    again = Engine(config)
    t1 = again.clock.now()
    again.history.append(HistoryEvent(t1, Kind.EXEC_INVOKE, Source.AGENT, task=1, agent="a-1", pod="pod-1",
                                      data={"action": "apply", "fence": 2}))
    again.history.append(HistoryEvent(t1, Kind.TASK_TRANSITION, task=2, from_status="pending",
                                      to_status="running", data={"stage": "planning"}))
    metrics = scrape(again)
    assert metrics["unstuck_confirm_to_apply_seconds_count"] == 1
    assert metrics["unstuck_recovery_seconds_count"] == 1
    asyncio.run(again.stop())


def test_an_unexpected_error_is_a_json_500_naming_the_request_and_probes_take_head(tmp_path):
    # Found by review: an exception no route handles (the database closed under the service)
    # was Starlette's plain-text "Internal Server Error", the one answer not in the API's
    # {ok, message} shape; and HEAD /healthz, a load balancer's probe, was 405.
    engine = Engine(ServiceConfig(data_dir=tmp_path / "run"))

    async def ask() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(create_app(engine, Identities()), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://unstuck") as http:
            head = await http.head("/healthz")
            ready = await http.head("/readyz")
            engine.store.close()  # the database is gone: the next read fails unexpectedly
            return head, ready, await http.get("/tasks")

    head, ready, broken = asyncio.run(ask())
    assert head.status_code == 200 and head.content == b""
    assert ready.status_code == 503  # not booted: the engine was never started
    assert broken.status_code == 500
    body = broken.json()
    assert body["ok"] is False
    assert body["message"].startswith("GET /tasks: internal error (ProgrammingError: ")
    assert body["message"].endswith("the service log has the traceback")
    engine.history.close()


def test_a_damaged_store_file_is_a_json_503_naming_the_file_and_what_to_do(tmp_path):
    """A store read that fails because the database failed (here a damaged SQLite file) is
    the service being unavailable, 503, with the store's whole message (the file, the
    fix), not a 500 'internal error' cut at 200 characters."""
    from scheduler.model import Task
    from scheduler.stores.sqlite import SqliteStore

    path = tmp_path / "run" / "store.db"
    path.parent.mkdir()
    with SqliteStore(path) as s:
        for i in range(1, 50):  # long rows: the tasks table fills the file's last pages
            s.insert_task(Task(id=i, workspace_id="ws-1", task_type=TaskType.PLAN, description="x" * 2000))
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(size - 8 * 4096)
        f.write(b"garbage!" * 4096)
    engine = Engine(ServiceConfig(data_dir=tmp_path / "run"))

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(create_app(engine, Identities()), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://unstuck") as http:
            return await http.get("/tasks")

    broken = asyncio.run(ask())
    assert broken.status_code == 503
    message = broken.json()["message"]
    assert message.startswith(f"GET /tasks: store unavailable: sqlite read failed on {path}: "
                              "database disk image is malformed; the file is damaged")
    assert message.endswith("salvages what rows it can)")
    engine.store.close()
    engine.history.close()


def test_our_agent_stops_the_older_run_of_a_task_it_is_sent_again(tmp_path):
    # A plan requeued while its agent was cut off is sent to it again: the older run must
    # stop, as the simulated agent's does, or the agent runs two runs of the task while its
    # heartbeat lists one, and the scheduler counts one.
    from scheduler.agent.process import Agent, AgentConfig

    cfg = AgentConfig(url="http://127.0.0.1:9", token="t", pod="pod-1", agent_id="agent-pod-1",
                      backend_dir=tmp_path, grace_s=0.2, plan_s=30.0)
    agent = Agent(cfg)
    plan = {"type": "run_task", "task_id": 1, "workspace_id": "ws-1", "action": "plan"}
    agent._dispatch({**plan, "seq": 1, "fence": 1})
    first = agent.runs[1]
    agent._dispatch({**plan, "seq": 2, "fence": 2})
    assert agent.runs[1] is not first and first.aborted.is_set()
    assert not agent.runs[1].aborted.is_set()
    agent.terminate(signal.SIGTERM, None)
    assert agent._shutdown() == 0
