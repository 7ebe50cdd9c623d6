"""Real processes on 127.0.0.1 for the service tests: a scheduler, agents, and an API client.

Everything waits on observable conditions with deadlines (`wait_for`), never fixed sleeps.
Durations are scaled down: `--time-scale` divides the scheduler's timeouts (the reference's
60 s agent timeout becomes 60 * scale), agents heartbeat every `HEARTBEAT_S`, plans and applies
take fractions of a second. Only processes started here are signalled or killed, by pid.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests import waiting

USER_TOKEN = "alice-token"
OTHER_TOKEN = "bob-token"
POOL_TOKEN = "pool-token"
HEARTBEAT_S = 0.2
PODS = ("pod-1", "pod-2", "pod-3")


# A scenario to judge a short live run as (`unstuck close-run --scenario`): one workspace,
# a 0.5 s apply_pending bound.
LIVE_SCENARIO = """\
name: live
description: a live run on one pod
seeds: 1
duration_s: 5
drain_s: 1
bounds: {apply_pending_s: 0.5}
workload:
  - {names: [ws-1], at: [1]}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def believed(http: httpx.Client) -> dict[str, dict[str, Any] | None]:
    """Per connected agent, what the scheduler's memory says it runs (None: no such memory)."""
    pools = http.get("/pools").json()["pools"]
    return {a["agent"]: a["memory"] for p in pools for a in p["agents"]}


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.03, what: str = "condition"):
    return waiting.wait_for(predicate, timeout, interval, what)


class LiveRun:
    """One scheduler (restartable) and its agents, in a temporary directory."""

    def __init__(self, root: Path, scheduler: str = "reference", *, time_scale: float = 0.05,
                 pods: tuple[str, ...] = PODS, workspaces: tuple[str, ...] = ("ws-1", "ws-2", "ws-3"),
                 store: str | None = None) -> None:
        self.root = root
        self.scheduler = scheduler
        self.time_scale = time_scale
        self.pods = pods
        self.workspaces = workspaces
        self.store = store
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = root / "run"
        self.backend = root / "backend"
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {**os.environ, "UNSTUCK_USER_TOKENS": f"{USER_TOKEN}=alice,{OTHER_TOKEN}=bob",
                    "UNSTUCK_POOL_TOKEN": POOL_TOKEN}
        self.http = httpx.Client(base_url=self.url, timeout=10.0)

    # ---------------------------------------------------------------- processes
    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "ab")
        p = subprocess.Popen([sys.executable, "-m", "unstuck.cli", *args], env=env or self.env,
                             stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        log.close()
        self.procs[name] = p
        return p

    def start_scheduler(self, **extra: str) -> subprocess.Popen:
        args = ["serve", "--port", str(self.port), "--data-dir", str(self.data),
                "--scheduler", self.scheduler, "--time-scale", str(self.time_scale),
                "--pods", ",".join(self.pods), "--workspaces", ",".join(self.workspaces),
                "--agent-stale", "1.0", "--poll-timeout", "2", "--backend-dir", str(self.backend)]
        if self.store:
            args += ["--store", self.store]
        for k, v in extra.items():
            args += [f"--{k.replace('_', '-')}", v]
        p = self._spawn("scheduler", args)
        wait_for(self.ready, 20, what="the scheduler to answer /readyz")
        return p

    def ready(self) -> bool:
        try:
            return self.http.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def start_agent(self, pod: str, *, plan_s: float = 0.3, apply_s: float = 0.3,
                    lease_s: float = 1.0, token: str = POOL_TOKEN, grace_s: float = 2.0,
                    server: str | None = None) -> subprocess.Popen:
        """An agent of the run's scheduler: ours, or the seed's (`--scheduler`), whose state
        lock has no lease (`lease_s` is then unused)."""
        env = {**self.env, "UNSTUCK_POOL_TOKEN": token}
        lease = ["--lease", str(lease_s)] if self.scheduler == "reference" else []
        return self._spawn(pod, ["agent", "--server", server or self.url, "--pod", pod,
                                 "--scheduler", self.scheduler, "--backend-dir", str(self.backend),
                                 "--plan-seconds", str(plan_s), "--apply-seconds", str(apply_s),
                                 "--heartbeat", str(HEARTBEAT_S), *lease,
                                 "--poll-timeout", "2", "--grace", str(grace_s)], env)

    def start_agents(self, **kw: Any) -> None:
        for pod in self.pods:
            self.start_agent(pod, **kw)
        wait_for(lambda: self.connected() >= len(self.pods), 20, what="every agent to connect")

    def signal(self, name: str, sig: int) -> None:
        p = self.procs[name]
        os.kill(p.pid, sig)
        if sig == signal.SIGKILL:
            p.wait(10)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGCONT)
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(10)
        self.http.close()

    # ---------------------------------------------------------------- API
    def auth(self, token: str = USER_TOKEN) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def create(self, workspace: str, task_type: str = "plan_and_apply") -> int:
        r = self.http.post("/tasks", json={"workspace_id": workspace, "task_type": task_type},
                           headers=self.auth())
        assert r.status_code == 201, r.text
        return r.json()["task_id"]

    def task(self, task_id: int) -> dict[str, Any]:
        r = self.http.get(f"/tasks/{task_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def status(self, task_id: int) -> str:
        return self.task(task_id)["status"]

    def confirm(self, task_id: int, digest: str | None = "auto", token: str | None = USER_TOKEN) -> httpx.Response:
        if digest == "auto":
            digest = self.task(task_id)["plan_digest"]
        headers = self.auth(token) if token else {}
        return self.http.post(f"/tasks/{task_id}/confirm", json={"plan_digest": digest}, headers=headers)

    def fault(self, type_: str, **target: Any) -> None:
        r = self.http.post("/faults", json={"type": type_, **target}, headers=self.auth())
        assert r.status_code == 201, r.text

    def connected(self) -> int:
        try:
            pools = self.http.get("/pools").json()["pools"]
        except httpx.HTTPError:
            return 0
        return sum(1 for p in pools for a in p["agents"] if a["polling"])

    def believed(self) -> dict[str, dict[str, Any] | None]:
        return believed(self.http)

    def history(self) -> list[dict[str, Any]]:
        return self.http.get("/history", params={"since": 0, "limit": 100_000}).json()["rows"]

    def rows_with_end(self, bound_s: float, drain_s: float) -> list[dict[str, Any]]:
        """The history plus the harness's run.end row (the service never writes one)."""
        rows = self.history()
        t = rows[-1]["t"] if rows else 0.0
        rows.append({"seq": len(rows), "t": t, "kind": "run.end", "source": "harness", "task": None,
                     "workspace": None, "pod": None, "slot": None, "agent": None, "from_status": None,
                     "to_status": None, "reason": "", "data": {"bound_s": bound_s, "drain_s": drain_s}})
        return rows

    def exec_rows(self, task_id: int, kind: str = "exec.invoke", action: str | None = None) -> list[dict]:
        return [r for r in self.history() if r["kind"] == kind and r["task"] == task_id
                and (action is None or r["data"].get("action") == action)]

    def agent_of(self, task_id: int) -> str | None:
        rows = self.exec_rows(task_id)
        return rows[-1]["pod"] if rows else None


class InProcessService:
    """The service app served by uvicorn on a thread of the test process (real HTTP on
    127.0.0.1), so a test can also read its store directly to prove nothing changed."""

    def __init__(self, root: Path, scheduler: str = "reference", pods: tuple[str, ...] = ("pod-1",),
                 time_scale: float = 0.05, store_url: str | None = None,
                 fault_injection: bool = False) -> None:
        import threading

        from scheduler.service.config import ServiceConfig
        from scheduler.service.run import build, server
        from scheduler.settings import Settings, scaled_settings

        self.root = root
        self.scheduler = scheduler
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = ServiceConfig(data_dir=root / "run", store_url=store_url, scheduler=scheduler, pods=pods,
                               users={USER_TOKEN: "alice", OTHER_TOKEN: "bob"}, pool_token=POOL_TOKEN,
                               settings=scaled_settings(Settings(), time_scale),
                               agent_stale_s=1.0, poll_timeout_s=2.0, fault_injection=fault_injection)
        self.app = build(config)
        self.engine = self.app.state.engine
        self.server = server(self.app, host="127.0.0.1", port=self.port, lifespan="on")
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, 10, what="uvicorn to start")
        self.http = httpx.Client(base_url=self.url, timeout=10.0)
        self.procs: list[subprocess.Popen] = []

    def start_agent(self, pod: str = "pod-1", token: str = POOL_TOKEN, **kw: Any) -> subprocess.Popen:
        env = {**os.environ, "UNSTUCK_POOL_TOKEN": token}
        args = ["agent", "--server", kw.get("server", self.url), "--pod", pod, "--backend-dir", str(self.root / "backend"),
                "--plan-seconds", str(kw.get("plan_s", 0.1)), "--apply-seconds", str(kw.get("apply_s", 0.1)),
                "--heartbeat", str(HEARTBEAT_S), "--poll-timeout", "2", "--grace", str(kw.get("grace", 2.0)),
                "--on-sigterm", kw.get("on_sigterm", "drain"), "--scheduler", kw.get("scheduler", self.scheduler)]
        p = subprocess.Popen([sys.executable, "-m", "unstuck.cli", *args], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=self.root)
        self.procs.append(p)
        return p

    def snapshot(self) -> tuple:
        """Everything a bad request must leave alone: tasks, workspaces, agents, and the
        history's user and task rows (the live scheduler keeps writing its own rows)."""
        store = self.engine.store
        return (store.list_tasks(), store.list_workspaces(), store.list_agents(),
                self.request_rows())

    def request_rows(self) -> list[dict]:
        kinds = ("user", "task.created", "task.confirmed", "task.cancel", "confirm.rejected",
                 "task.rejected", "fault", "agent.connected")
        return [r for r in self.engine.history.rows if r["kind"] in kinds]

    def auth(self, token: str = USER_TOKEN) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
            if p.stdout is not None:
                p.stdout.close()
        self.http.close()
        self.server.should_exit = True
        self.thread.join(10)


def scrape(engine: Any) -> dict[str, float]:
    """The unlabelled samples of the app's real /metrics route."""
    import asyncio

    from prometheus_client.parser import text_string_to_metric_families

    from scheduler.service.app import create_app
    from scheduler.service.identity import Identities

    async def get() -> str:
        transport = httpx.ASGITransport(create_app(engine, Identities()))
        async with httpx.AsyncClient(transport=transport, base_url="http://unstuck") as http:
            return (await http.get("/metrics")).text

    text = asyncio.run(get())
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}


def post_to(engine: Any, *calls: tuple[str, dict], token: str = "t-alice") -> list[httpx.Response]:
    """POST each (path, body) in turn to the engine's app, in process (no server, no engine
    start), as the user `token` names (alice)."""
    import asyncio

    from scheduler.service.app import create_app
    from scheduler.service.identity import Identities

    async def ask() -> list[httpx.Response]:
        transport = httpx.ASGITransport(create_app(engine, Identities(users={token: "alice"})))
        async with httpx.AsyncClient(transport=transport, base_url="http://unstuck") as http:
            return [await http.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
                    for path, body in calls]

    return asyncio.run(ask())
