"""`unstuck serve` and `unstuck agent`: bad options exit 2 with one clear line; SIGTERM
makes an agent finish or abort cleanly within its grace period."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
from typer.testing import CliRunner

from tests.unit.service.live import InProcessService, free_port, wait_for
from unstuck.cli import app

ENV = {"UNSTUCK_USER_TOKENS": "t=alice", "UNSTUCK_POOL_TOKEN": "p"}


def _stop(agent: subprocess.Popen) -> None:
    """SIGTERM an agent a test started, then SIGKILL it if it has not exited in 10 s."""
    agent.send_signal(signal.SIGTERM)
    try:
        agent.wait(10)
    except subprocess.TimeoutExpired:
        agent.kill()
        agent.wait(10)


@pytest.mark.parametrize(("args", "env", "message"), [
    (["serve", "--scheduler", "fifo"], ENV,
     r"^error: --scheduler 'fifo' is not a scheduler: choose one of seed, seed-proposal, seed-head, reference$"),
    (["serve", "--cluster", "nomad"], ENV, r"^error: --cluster 'nomad': choose static or kubernetes$"),
    (["serve", "--time-scale", "0"], ENV, r"^error: --time-scale 0.0: expected a finite number > 0"),
    (["serve", "--time-scale", "inf"], ENV, r"^error: --time-scale inf: expected a finite number > 0"),
    (["serve", "--poll-timeout", "inf"], ENV, r"^error: --poll-timeout inf: expected a finite number of seconds > 0$"),
    (["serve", "--agent-stale", "nan"], ENV, r"^error: --agent-stale nan: expected a finite number of seconds > 0$"),
    (["serve", "--stuck-after", "-inf"], ENV, r"^error: --stuck-after -inf: expected a finite number of seconds > 0$"),
    (["serve", "--lock-wait", "-1"], ENV, r"^error: --lock-wait -1.0: expected a finite number of seconds >= 0$"),
    (["serve", "--run-timeout", "0"], ENV, r"^error: --run-timeout 0.0: expected a finite number of seconds > 0$"),
    (["serve", "--scheduler", "seed-head", "--run-timeout", "60"], ENV,
     r"^error: --run-timeout: the seed-head scheduler has no run timeout .*; leave it out, or run --scheduler reference$"),
    (["serve", "--pods", "a b"], ENV, r"^error: --pods 'a b': expected comma-separated names .* \(bad: a b\)"),
    (["serve", "--store", "redis://h"], ENV, r"^error: --store: store URL 'redis://h': unknown scheme 'redis'"),
    (["serve"], {"UNSTUCK_POOL_TOKEN": "p", "UNSTUCK_USER_TOKENS": ""},
     r"^error: no user tokens: set UNSTUCK_USER_TOKENS='token=alice' or pass --users-file"),
    (["serve"], {"UNSTUCK_USER_TOKENS": "t=alice", "UNSTUCK_POOL_TOKEN": ""},
     r"^error: no pool token: set UNSTUCK_POOL_TOKEN or pass --pool-token-file FILE"),
    (["serve"], {"UNSTUCK_USER_TOKENS": "alice", "UNSTUCK_POOL_TOKEN": "p"},
     r"^error: UNSTUCK_USER_TOKENS: item 1 'alice' is not TOKEN=USER"),
    (["serve", "--backend-dir", "pyproject.toml"], ENV,
     r"^error: --backend-dir pyproject.toml: not a directory; give the directory the agents were started with"),
    (["agent", "--pod", "x", "--scheduler", "fifo"], ENV,
     r"^error: --scheduler 'fifo' is not a scheduler: choose one of seed, seed-proposal, seed-head, reference$"),
    (["agent", "--pod", "x", "--scheduler", "seed-head", "--lease", "5"], ENV,
     r"^error: --lease: the agent of --scheduler seed-head \(the seed's\) holds its state lock without a lease"),
    (["agent", "--server", "ftp://h"], ENV, r"^error: --server 'ftp://h': not http:// or https://; expected a URL such as http://"),
    (["agent", "--pod", "x", "--server", "http://[::1"], ENV,
     r"^error: --server 'http://\[::1': Invalid port: ':1'; expected a URL such as http://127.0.0.1:8080$"),
    (["agent", "--pod", "x", "--backend-dir", "pyproject.toml"], ENV,
     r"^error: --backend-dir pyproject.toml: exists and is not a folder; choose a folder$"),
    (["agent", "--pod", "x", "--backend-dir", "/proc/backend"], ENV,
     r"^error: --backend-dir /proc/backend: cannot create or write in /proc/backend"),
    (["agent", "--pod", "x", "--server", "http://"], ENV, r"^error: --server 'http://': no host; expected a URL"),
    (["agent", "--pod", "x", "--server", "http://h:99999"], ENV,
     r"^error: --server 'http://h:99999': port 99999 is not 1-65535; expected a URL"),
    (["agent", "--pod", "x", "--heartbeat", "0"], ENV, r"^error: --heartbeat 0.0: expected a finite number of seconds > 0$"),
    (["agent", "--pod", "x", "--heartbeat", "inf"], ENV, r"^error: --heartbeat inf: expected a finite number of seconds > 0$"),
    (["agent", "--pod", "x", "--grace", "inf"], ENV, r"^error: --grace inf: expected a finite number of seconds >= 0$"),
    (["agent", "--pod", "x", "--plan-seconds", "-1"], ENV, r"^error: --plan-seconds -1.0: expected a finite number of seconds >= 0$"),
    (["agent", "--pod", "x", "--connect-delay", "nan"], ENV, r"^error: --connect-delay nan: expected a finite number of seconds >= 0$"),
    (["agent", "--pod", "x"], {"UNSTUCK_POOL_TOKEN": ""}, r"^error: no pool token: set UNSTUCK_POOL_TOKEN"),
    (["agent", "--pod", "x", "--on-sigterm", "wait"], ENV,
     r"^error: --on-sigterm 'wait': choose drain \(ours\) or exit \(the seed's agent\)$"),
])
def test_bad_options_exit_2_with_one_line(args, env, message):
    import re

    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), result.output


def test_a_store_that_cannot_be_opened_exits_2_in_one_line_without_its_password(tmp_path):
    url = "postgresql://u:hunter2@127.0.0.1:1/db?password=hunter3"
    result = CliRunner().invoke(app, ["serve", "--data-dir", str(tmp_path / "run"), "--store", url], env=ENV)
    assert result.exit_code == 2, result.output
    assert "hunter2" not in result.output and "hunter3" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: --store 'postgresql://u:***@127.0.0.1:1/db?password=***': cannot open: ")
    assert "cannot connect to PostgreSQL: connection failed: " in lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", [["serve", "--pool-token-file"], ["agent", "--pod", "x", "--token-file"]])
def test_a_pool_token_file_that_is_not_utf8_exits_2_naming_it(tmp_path, command):
    token = tmp_path / "token"
    token.write_bytes(b"\xff\xfe\x00secret")
    data = tmp_path / "run"
    args = [*command, str(token), *(["--data-dir", str(data)] if command[0] == "serve" else [])]
    result = CliRunner().invoke(app, args, env={"UNSTUCK_USER_TOKENS": "t=alice", "UNSTUCK_POOL_TOKEN": ""})
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"error: {token}: the pool token file is not UTF-8 text (invalid start byte at byte 0); "
        "write the token in it as plain text"]
    assert not data.exists()


def test_a_port_in_use_or_a_foreign_address_exits_2_before_writing_the_data_dir(tmp_path):
    import socket

    held = socket.create_server(("127.0.0.1", 0))
    port = held.getsockname()[1]
    data = tmp_path / "run"
    try:
        for host, reason in (("127.0.0.1", "Address already in use"),
                             ("192.0.2.1", "Cannot assign requested address")):
            result = CliRunner().invoke(app, ["serve", "--host", host, "--port", str(port),
                                              "--data-dir", str(data)], env=ENV)
            assert result.exit_code == 2, result.output
            assert result.output.strip().splitlines() == [
                f"error: --host {host} --port {port}: cannot listen there ({reason}); choose a free "
                "--port (another service may hold this one) or an address of this machine for --host"]
            assert not data.exists()  # no store, clock or history of a service that never ran
    finally:
        held.close()


def test_a_data_dir_whose_run_another_scheduler_serves_exits_2_and_keeps_its_clock(tmp_path, monkeypatch):
    # Its rows would be judged as one scheduler's (close-run labels the run with the one the
    # clock file records). A free port: the refusal comes after it is bound, before serving.
    import json
    import socket

    from scheduler.service import run

    monkeypatch.setattr(run, "run_app", lambda *a, **kw: pytest.fail("it served the run"))
    data = tmp_path / "run"
    data.mkdir()
    clock = data / "clock.json"
    clock.write_text(json.dumps({"offset": 1e4, "run_start": 2e4, "now_at": 2e4 + 5, "wall_at": 1.7e9,
                                 "boot_id": "b", "scheduler": "seed"}))
    before = clock.read_bytes()
    port = free_port()
    result = CliRunner().invoke(app, ["serve", "--port", str(port), "--data-dir", str(data),
                                      "--scheduler", "reference", "--lock-wait", "0"], env=ENV)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"error: {clock}: records that this run is served by --scheduler seed (since its first "
        "start), not --scheduler reference: one history judges one scheduler; give a new "
        "--data-dir, or --scheduler seed"]
    assert clock.read_bytes() == before
    assert sorted(p.name for p in data.iterdir()) == ["clock.json", "serve.lock"]  # no store, no history
    socket.create_server(("127.0.0.1", port)).close()  # its port was let go


@pytest.fixture
def lone(tmp_path):
    svc = InProcessService(tmp_path)
    yield svc
    svc.stop()


def applying(svc: InProcessService, task_id: int) -> bool:
    return any(r["kind"] == "exec.invoke" and r["task"] == task_id and r["data"]["action"] == "apply"
               for r in svc.engine.history.rows)


def planned_and_confirmed(svc: InProcessService) -> int:
    task_id = svc.http.post("/tasks", json={"workspace_id": "ws-1"}, headers=svc.auth()).json()["task_id"]
    wait_for(lambda: svc.engine.store.get_task(task_id).status.value == "apply_pending", 10, what="the plan")
    digest = svc.engine.store.get_task(task_id).plan_digest
    assert svc.http.post(f"/tasks/{task_id}/confirm", json={"plan_digest": digest},
                         headers=svc.auth()).status_code == 200
    wait_for(lambda: applying(svc, task_id), 10, what="the apply to start")
    return task_id


@pytest.mark.parametrize(("apply_s", "grace_s", "status", "exec_kind"), [
    (0.5, 5.0, "applied", "exec.ok"),  # within the grace: the apply finishes and is reported
    (30.0, 0.5, "failed", "exec.fail"),  # past the grace: aborted before the commit, reported
])
def test_sigterm_finishes_or_aborts_within_the_grace_period(lone, apply_s, grace_s, status, exec_kind):
    agent = lone.start_agent("pod-1", plan_s=0.05, apply_s=apply_s, grace=grace_s)
    task_id = planned_and_confirmed(lone)
    sent = time.monotonic()
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(grace_s + 5) == 0
    assert time.monotonic() - sent < grace_s + 2
    wait_for(lambda: lone.engine.store.get_task(task_id).status.value == status, 5, what=status)
    ends = [r for r in lone.engine.history.rows if r["task"] == task_id and r["kind"].startswith("exec.")
            and r["data"]["action"] == "apply" and r["kind"] != "exec.invoke"]
    assert [r["kind"] for r in ends] == [exec_kind]
    if status == "failed":
        assert "aborted before commit: agent terminating (SIGTERM)" in ends[0]["reason"]


def test_the_seed_agent_exits_at_sigterm_reporting_nothing(lone):
    # `--on-sigterm exit` is the seed's WaitForShutdown: the apply is cancelled, no report
    # goes out, and the scheduler learns of it from the process's end (exec.info), as the
    # simulated seed agent does (tests/unit/sim/test_cluster.py).
    agent = lone.start_agent("pod-1", plan_s=0.05, apply_s=30.0, grace=20.0, on_sigterm="exit")
    task_id = planned_and_confirmed(lone)
    sent = time.monotonic()
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(10) == 0
    assert time.monotonic() - sent < 3, "it waited for its grace period instead of exiting"
    wait_for(lambda: lone.engine.store.get_task(task_id).status.value == "failed", 10, what="failed")
    ends = [r for r in lone.engine.history.rows if r["task"] == task_id and r["kind"].startswith("exec.")
            and r["data"]["action"] == "apply" and r["kind"] != "exec.invoke"]
    assert [(r["kind"], r["reason"]) for r in ends] == [("exec.info", "agent process killed")]


@pytest.mark.parametrize("on_sigterm", ["exit", "drain"])
def test_sigterm_while_registering_with_a_silent_scheduler_exits_at_once(tmp_path, on_sigterm):
    # Found by review: the agent waited out its HTTP timeout (10 s) before it noticed.
    import os
    import socket
    import sys

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connects, never answers
    agent = subprocess.Popen(
        [sys.executable, "-m", "unstuck.cli", "agent", "--server",
         f"http://127.0.0.1:{silent.getsockname()[1]}", "--pod", "pod-1", "--backend-dir",
         str(tmp_path / "backend"), "--on-sigterm", on_sigterm],
        env={**os.environ, "UNSTUCK_POOL_TOKEN": "p"}, cwd=tmp_path)
    conn = None
    try:
        silent.settimeout(30)
        conn, _ = silent.accept()  # its first registration is on the wire (handlers are set)
        time.sleep(0.2)
        sent = time.monotonic()
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(8) == 0
        assert time.monotonic() - sent < 3
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(10)
        if conn is not None:
            conn.close()
        silent.close()


def _catches_sigterm(pid: int) -> bool:
    """The process has its SIGTERM handler in place (bit 15 of SigCgt in /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        caught = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    return bool(caught >> (signal.SIGTERM - 1) & 1)


def _agent_with_delay(tmp_path, port: int, delay: float) -> subprocess.Popen:
    import os
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "unstuck.cli", "agent", "--server", f"http://127.0.0.1:{port}",
         "--pod", "pod-1", "--backend-dir", str(tmp_path / "backend"), "--connect-delay", str(delay)],
        env={**os.environ, "UNSTUCK_POOL_TOKEN": "p"}, cwd=tmp_path)


def test_an_agent_with_a_connect_delay_registers_only_after_it(tmp_path):
    import socket

    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(8)
    agent = _agent_with_delay(tmp_path, listening.getsockname()[1], 2.0)
    conn = None
    try:
        wait_for(lambda: _catches_sigterm(agent.pid), 20, what="the agent's SIGTERM handler")
        started = time.monotonic()  # the delay began before this: it runs from the handlers on
        listening.settimeout(30)
        conn, _ = listening.accept()
        assert time.monotonic() - started >= 1.5, "it registered before its --connect-delay"
    finally:
        _stop(agent)
        if conn is not None:
            conn.close()
        listening.close()


def test_sigterm_during_the_connect_delay_exits_at_once_without_registering(tmp_path):
    import socket

    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(8)
    agent = _agent_with_delay(tmp_path, listening.getsockname()[1], 60.0)
    try:
        wait_for(lambda: _catches_sigterm(agent.pid), 20, what="the agent's SIGTERM handler")
        sent = time.monotonic()
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(8) == 0
        assert time.monotonic() - sent < 3
        listening.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listening.accept()  # nothing was ever sent
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(10)
        listening.close()


def test_an_agent_whose_scheduler_does_not_answer_says_so_and_keeps_trying(tmp_path):
    # Found by review: it retried for ever printing nothing (the line was INFO, the agent
    # logs WARNING and up), so an agent started against a wrong URL looked merely idle.
    import os
    import socket
    import sys

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: every connect is refused
    agent = subprocess.Popen(
        [sys.executable, "-m", "unstuck.cli", "agent", "--server", f"http://127.0.0.1:{port}",
         "--pod", "pod-1", "--backend-dir", str(tmp_path / "backend")],
        env={**os.environ, "UNSTUCK_POOL_TOKEN": "p"}, cwd=tmp_path,
        stderr=subprocess.PIPE, text=True)
    try:
        import select
        ready, _, _ = select.select([agent.stderr], [], [], 20.0)
        line = agent.stderr.readline() if ready else ""  # the first warning (or exit: "")
        assert f"scheduler http://127.0.0.1:{port} unreachable" in line
        assert "still trying to register" in line
        assert agent.poll() is None  # it keeps trying
    finally:
        _stop(agent)
        agent.stderr.close()


def test_a_data_dir_that_holds_results_or_a_report_exits_2_before_writing(tmp_path):
    # Found by a docs walkthrough: `serve --data-dir reports/latest` ran, writing its store,
    # clock and history into the suite's report folder.
    import shutil
    import socket

    sim = tmp_path / "sim"
    rep = tmp_path / "rep"
    for args in (["sim", "--out", str(sim)], ["suite", "--out", str(rep)]):
        result = CliRunner().invoke(app, [*args, "scenarios/incident-601.yaml", "--seeds", "1",
                                          "-s", "reference", "--workers", "1"])
        assert result.exit_code == 0, result.output
    assert CliRunner().invoke(app, ["report", str(sim)]).exit_code == 0
    shutil.rmtree(sim / "figures")  # a results folder, with its report or not
    held = socket.create_server(("127.0.0.1", 0))  # should it get that far, it cannot listen
    port = str(held.getsockname()[1])
    with held:
        for folder in (sim, rep):
            before = sorted(p.name for p in folder.iterdir())
            result = CliRunner().invoke(app, ["serve", "--port", port, "--data-dir", str(folder)], env=ENV)
            assert result.exit_code == 2, result.output
            assert result.output.strip().splitlines() == [
                f"error: --data-dir {folder}: holds what `unstuck sim --out`, `unstuck suite` or "
                "`unstuck report` wrote (its .unstuck marker), not a service's run; the service "
                "would write its store, clock and history beside it. Choose another folder, e.g. "
                f"{folder / 'run'}"], result.output
            assert sorted(p.name for p in folder.iterdir()) == before


@pytest.mark.parametrize(("answer", "warned"), [
    ("<html>proxy</html>", "poll answer from"),
    ('{"messages": {"seq": 1}}', "poll answer from"),
    ('{"result": []}', "poll answer from"),
    ('{"messages": [{"seq": 1, "type": "run_task", "task_id": 7}]}', "malformed message ignored (KeyError"),
    ('{"messages": [{"seq": 1, "type": "run_task", "task_id": "x", "action": "plan", "workspace_id": "w"}]}',
     "malformed message ignored (ValueError"),
    ('{"messages": ["run_task", {"seq": 1, "type": "cancel"}]}', "malformed message ignored (AttributeError"),
])
def test_a_poll_answer_the_agent_cannot_read_is_ignored_and_the_agent_runs_on(tmp_path, answer, warned):
    # Found by review: a poll answer that was not the protocol's (a proxy's page) or one
    # malformed message crashed the agent with a traceback (exit 1), losing every run it held.
    # It warns in one line, ignores it, and runs the next well-formed message.
    import json
    import os
    import sys
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    good = {"seq": 2, "type": "run_task", "task_id": 8, "workspace_id": "ws-1", "action": "plan",
            "fence": 1, "plan_digest": None, "pod": "pod-1", "slot": 0, "task_type": "plan"}
    posted: list[tuple[str, dict]] = []
    polls: list[str] = []

    class Scheduler(BaseHTTPRequestHandler):
        def log_message(self, *args): pass

        def answer(self, body: str, ctype: str = "application/json") -> None:
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            posted.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.answer('{"ok": true, "poll_timeout_s": 1}')

        def do_GET(self):
            polls.append(self.path)
            if len(polls) == 1:
                self.answer(answer, "application/json" if answer.startswith("{") else "text/html")
            elif len(polls) == 2:
                self.answer(json.dumps({"messages": [good]}))
            else:
                time.sleep(0.3)
                self.answer('{"messages": []}')

    server = ThreadingHTTPServer(("127.0.0.1", 0), Scheduler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    agent = subprocess.Popen(
        [sys.executable, "-m", "unstuck.cli", "agent", "--server", f"http://127.0.0.1:{server.server_port}",
         "--pod", "pod-1", "--backend-dir", str(tmp_path / "backend"), "--plan-seconds", "0.1",
         "--poll-timeout", "1"],
        env={**os.environ, "UNSTUCK_POOL_TOKEN": "p"}, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any(p == "/agent/report" for p, _ in posted) or agent.poll() is not None, 20,
                 what="the agent to run the well-formed plan, or to exit")
        assert agent.poll() is None, f"the agent died: {agent.stderr.read()}"
        reports = [b for p, b in posted if p == "/agent/report"]
        assert [(b["task_id"], b["report"]) for b in reports] == [(8, "plan_finished")]
    finally:
        _stop(agent)
        server.shutdown()
        server.server_close()
        err = agent.stderr.read()
        agent.stderr.close()
    assert "Traceback" not in err, err
    assert sum(warned in line for line in err.splitlines()) == 1, err
