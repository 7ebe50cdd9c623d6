"""One service per data folder, with real `unstuck serve` processes on 127.0.0.1.

Two services on one --data-dir both appended rows numbered from the same `seq` and both saved
clock.json: the history then read `seq` 0, 0, 1, 2, 3, 1, 2, 3, and the next start and
`unstuck close-run` both refused it ("row 2 has seq 0, expected 1"), the run lost. A service
now holds its folder's lock (DATA_DIR/serve.lock) for its whole life; a second one waits
`--lock-wait` for it to stop, then exits 2 naming the holder. `close-run` refuses a folder
whose service still runs, and creates nothing in a folder that has no lock file.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.unit.service.live import LIVE_SCENARIO, free_port, wait_for
from unstuck.cli import app

ENV = {**os.environ, "UNSTUCK_USER_TOKENS": "t=alice", "UNSTUCK_POOL_TOKEN": "p"}
SCENARIO = LIVE_SCENARIO


class Services:
    """`unstuck serve` processes on one data folder, each on its own port; all killed at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "run"
        self.procs: list[subprocess.Popen] = []

    def start(self, *extra: str, port: int | None = None) -> tuple[subprocess.Popen, int]:
        port = port or free_port()
        p = subprocess.Popen([sys.executable, "-m", "unstuck.cli", "serve", "--port", str(port),
                              "--data-dir", str(self.data), "--time-scale", "0.05", *extra],
                             env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.root)
        self.procs.append(p)
        return p, port

    def started(self, *extra: str) -> tuple[subprocess.Popen, int]:
        p, port = self.start(*extra)
        wait_for(lambda: ready(port) or p.poll() is not None, 30, what="the service to answer /readyz")
        assert p.poll() is None, p.communicate()
        return p, port

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=10)


def ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def create(port: int) -> None:
    r = httpx.post(f"http://127.0.0.1:{port}/tasks", json={"workspace_id": "ws-1"},
                   headers={"Authorization": "Bearer t"}, timeout=10)
    assert r.status_code == 201, r.text


def rows(data: Path) -> list[dict]:
    return [json.loads(x) for x in (data / "history.jsonl").read_text().splitlines()]


@pytest.fixture
def services(tmp_path):
    s = Services(tmp_path)
    yield s
    s.stop()


def test_a_second_service_on_a_held_folder_exits_2_naming_the_holder_and_writes_nothing(services):
    first, port = services.started()
    create(port)
    before = rows(services.data)
    files = sorted(p.name for p in services.data.iterdir())

    started = time.monotonic()
    second, other = services.start("--lock-wait", "0.5")
    try:
        _, err = second.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the second service on {services.data} is still running: nothing stopped it")
    waited = time.monotonic() - started
    assert second.returncode == 2, err
    assert err.decode().splitlines() == [
        f"error: --data-dir {services.data}: the service (pid {first.pid}, port {port}) still runs "
        "on it (waited 0.5 s, --lock-wait); stop it first, or give this service another --data-dir"]
    assert 0.5 <= waited < 20
    assert not ready(other)  # its port was let go
    # The first service's run is whole: one restart row, seq 0..n-1, and it goes on.
    create(port)
    after = rows(services.data)
    assert after[:len(before)] == before and [r["seq"] for r in after] == list(range(len(after)))
    assert [r["kind"] for r in after].count("scheduler.restart") == 1
    assert sorted(p.name for p in services.data.iterdir()) == files
    assert first.poll() is None


def test_a_restart_waits_for_the_old_service_to_stop_then_continues_its_run(services):
    # A Kubernetes Deployment starts the new pod before the old one has terminated.
    old, port = services.started()
    create(port)
    new, new_port = services.start()  # default --lock-wait
    wait_for(lambda: listening(new_port), 30, what="the new service to bind its port")
    # It binds its port, then takes the lock. A second is ample for a start that did not
    # wait (this machine's starts take ~0.3 s); it must still be waiting, not serving.
    time.sleep(1.0)
    assert new.poll() is None and not ready(new_port)
    assert [r["kind"] for r in rows(services.data)].count("scheduler.restart") == 1
    old.send_signal(signal.SIGTERM)
    old.wait(20)  # uvicorn stops the service, then ends by the signal it caught (-15)
    stopped = rows(services.data)
    wait_for(lambda: ready(new_port), 30, what="the new service to start once the old one stopped")
    create(new_port)
    after = rows(services.data)
    assert after[:len(stopped)] == stopped and [r["seq"] for r in after] == list(range(len(after)))
    assert after[len(stopped)]["kind"] == "scheduler.restart"


def test_a_killed_service_leaves_no_lock_behind(services):
    killed, port = services.started()
    create(port)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(10)
    started = time.monotonic()
    services.started("--lock-wait", "0")  # the kernel dropped the lock with the process
    assert time.monotonic() - started < 20
    assert [r["kind"] for r in rows(services.data)].count("scheduler.restart") == 2


def close(data: Path, out: Path):
    (data.parent / "live.yaml").write_text(SCENARIO)
    return CliRunner().invoke(app, ["close-run", str(data), "--scenario", str(data.parent / "live.yaml"),
                                    "-s", "reference", "--out", str(out)])


def test_close_run_refuses_a_folder_whose_service_still_runs(services, tmp_path):
    service, port = services.started()
    create(port)
    refused = close(services.data, tmp_path / "out")
    assert refused.exit_code == 2, refused.output
    assert refused.output.strip().splitlines() == [
        f"error: the service (pid {service.pid}, port {port}) still runs on {services.data}: stop "
        f"it first (kill {service.pid}), then close the run"]
    assert not (tmp_path / "out").exists()
    service.send_signal(signal.SIGTERM)
    service.wait(20)
    closed = close(services.data, tmp_path / "out")
    assert closed.exit_code == 0, closed.output
    assert re.search(r"^closed: \d+ rows and run.end", closed.output, re.M)


def test_close_run_creates_nothing_in_a_folder_without_a_lock_file(tmp_path):
    data = tmp_path / "run"
    data.mkdir()
    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "histories" / "incident-601-reference.jsonl"
    (data / "history.jsonl").write_text("".join(x + "\n" for x in fixture.read_text().splitlines()[:-1]))
    before = sorted(p.name for p in data.iterdir())
    closed = close(data, tmp_path / "out")
    assert closed.exit_code == 0, closed.output
    assert sorted(p.name for p in data.iterdir()) == before == ["history.jsonl"]
