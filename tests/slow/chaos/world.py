"""A live world for the Chaos Toolkit experiments, built as docs/chaos.md tells a user to:
unstuck's local cluster (2 nodes, --time-scale 10), the agents of deploy/local/agents.yaml
as its pods, `unstuck serve --cluster kubernetes --time-scale 0.1`, then `chaos run` on a
shipped experiment, `unstuck close-run` and `unstuck gate`. Every piece is the real one,
in its own process where users run it in one; only the cluster runs in the test's process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from kubernetes import client, utils

from chaos.cluster import kubeconfig
from chaos.cluster.cluster import LocalCluster
from scheduler.service import folderlock
from tests import waiting

ROOT = Path(__file__).resolve().parents[3]
EXPERIMENTS = ROOT / "chaos" / "experiments"
USER_TOKEN, POOL_TOKEN = "change-me-alice", "change-me-pool"  # deploy/secret.example.yaml's


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Outcome:
    chaos_rc: int
    journal: dict
    close_rc: int
    gate_rc: int
    gate_out: str
    history: list[dict]
    tasks: dict[int, dict]  # as the service showed them when the experiment ended
    locks: list[dict]
    logs: str = ""
    # `unstuck conform` of the run against its scenario (docs/conformance.md): its exit code
    # and JSON, for a run of the shipped recipe, which the scenario describes; None otherwise.
    conform_rc: int | None = None
    conform: dict | None = None

    def activity(self, name: str) -> dict:
        (run,) = [r for r in self.journal["run"] if r["activity"]["name"] == name]
        return run

    def rows(self, kind: str, task: int | None = None) -> list[dict]:
        return [r for r in self.history if r["kind"] == kind and (task is None or r["task"] == task)]


@dataclass
class World:
    root: Path
    scheduler: str
    cluster: LocalCluster
    hpa: bool = False
    # The scheduler as a pod of the cluster (deploy/local/scheduler.yaml), which a
    # scheduler-restart experiment kills and its Deployment brings back; else `unstuck
    # serve` runs beside the cluster, as docs/chaos.md's recipe starts it.
    scheduler_pod: bool = False
    connect_delay_s: int = 8  # deploy/local/agents.yaml's
    time_scale: float = 0.1  # the service's, as docs/chaos.md runs it
    port: int = field(default_factory=free_port)
    serve: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), "UNSTUCK_URL": self.url,
                "UNSTUCK_USER_TOKEN": USER_TOKEN, "UNSTUCK_USER_TOKENS": f"{USER_TOKEN}=alice",
                "UNSTUCK_POOL_TOKEN": POOL_TOKEN}

    def _api(self) -> client.ApiClient:
        cfg = client.Configuration()
        cfg.host = self.cluster.url
        return client.ApiClient(cfg)

    def up(self) -> World:
        kubeconfig.write(self.kubeconfig, self.cluster.url, time_scale=self.cluster.scale.factor)
        api = self._api()
        unstuck = Path(sys.executable).with_name("unstuck")
        assert unstuck.exists(), f"{unstuck}: the console script the agent pods run"
        agents = (ROOT / "deploy" / "local" / "agents.yaml").read_text()
        assert "--connect-delay=8]" in agents, "deploy/local/agents.yaml's connect delay moved: update World"
        agents = (agents.replace("@UNSTUCK@", str(unstuck))
                  .replace("@BACKEND@", str(self.root / "backend"))
                  .replace("--server=http://127.0.0.1:8080", f"--server={self.url}")
                  .replace("--heartbeat=1,", f"--heartbeat=1, --scheduler={self.scheduler},")
                  .replace("--connect-delay=8]", f"--connect-delay={self.connect_delay_s}]"))
        files = [ROOT / "deploy" / "namespace.yaml", ROOT / "deploy" / "secret.example.yaml"]
        docs = [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]
        docs += [d for d in yaml.safe_load_all(agents) if d]
        if self.hpa:
            docs += [d for d in yaml.safe_load_all((ROOT / "deploy" / "hpa.yaml").read_text()) if d]
        for doc in docs:
            utils.create_from_dict(api, doc)
        if self.scheduler_pod:
            for doc in yaml.safe_load_all(self._scheduler_manifest(unstuck)):
                utils.create_from_dict(api, doc)
        else:
            args = ["serve", "--port", str(self.port), "--data-dir", str(self.root / "run"),
                    "--backend-dir", str(self.root / "backend"), "--cluster", "kubernetes",
                    "--kubeconfig", str(self.kubeconfig), "--namespace", "unstuck",
                    "--deployment", "unstuck-agent", "--scheduler", self.scheduler,
                    "--time-scale", str(self.time_scale), "--agent-stale", "1", "--poll-timeout", "2",
                    "--fault-injection"] + (["--scaling", "hpa"] if self.hpa else [])
            self.serve = subprocess.Popen([sys.executable, "-m", "unstuck.cli", *args],
                                          env=self.env(), cwd=self.root, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True)
        waiting.wait_for(self._ready, 30, 0.2, "unstuck serve to be ready")
        return self

    def _scheduler_manifest(self, unstuck: Path) -> str:
        """deploy/local/scheduler.yaml filled in as its comment says, on this world's port,
        scheduler and scaling."""
        text = (ROOT / "deploy" / "local" / "scheduler.yaml").read_text()
        for flag in ("--port=8080", "--scheduler=reference", "--time-scale=0.1", "--fault-injection]"):
            assert flag in text, f"deploy/local/scheduler.yaml no longer says {flag}: update World"
        text = (text
                .replace("@UNSTUCK@", str(unstuck)).replace("@DATA@", str(self.root / "run"))
                .replace("@BACKEND@", str(self.root / "backend"))
                .replace("@KUBECONFIG@", str(self.kubeconfig))
                .replace("--port=8080", f"--port={self.port}")
                .replace("containerPort: 8080", f"containerPort: {self.port}")
                .replace("--scheduler=reference", f"--scheduler={self.scheduler}")
                .replace("--time-scale=0.1", f"--time-scale={self.time_scale}"))
        return text.replace("--fault-injection]", "--fault-injection, --scaling=hpa]") if self.hpa else text

    def _ready(self) -> bool:
        if not self.scheduler_pod:  # a pod that exits is restarted; a process is not
            assert self.serve is not None and self.serve.poll() is None, self.stop_serve()
        return self._answers("/readyz")

    def _answers(self, path: str) -> bool:
        try:
            return httpx.get(f"{self.url}{path}", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop_serve(self) -> str:
        """Stop the service (SIGTERM, as `kill %1`; a scheduler pod by scaling its Deployment
        to 0, which SIGTERMs it); its output."""
        if self.scheduler_pod:
            client.AppsV1Api(self._api()).patch_namespaced_deployment_scale(
                "unstuck-scheduler", "unstuck", {"spec": {"replicas": 0}})
            waiting.wait_for(lambda: folderlock.holder(self.root / "run") is None, 30, 0.2,
                             "the scheduler pod to stop and let go of its data folder")
            logs = sorted(Path(self.cluster.workdir).glob("**/scheduler/*.log"), key=lambda f: f.stat().st_mtime)
            return "".join(f.read_text(errors="replace") for f in logs)
        if self.serve is None:
            return ""
        if self.serve.poll() is None:
            self.serve.send_signal(signal.SIGTERM)
        try:
            out, _ = self.serve.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.serve.kill()
            out, _ = self.serve.communicate(timeout=10)
        self.serve = None
        return out or ""

    def run(self, experiment: str, bound_s: int | None = None, **config: str) -> Outcome:
        """`chaos run` the shipped experiment, stop the service, close the run as the
        experiment's scenario and gate it: each through its command line, as a user would.

        `bound_s` judges the run by another apply_pending bound, as a user would set it: the
        experiment's UNSTUCK_BOUND_S and the scenario's `bounds.apply_pending_s` (a copy of
        the file). For a scheduler that never recovers, a short bound shows the same stuck
        task as the shipped one, without waiting the shipped bound out. `config` sets the
        experiment's other environment-read configuration (UNSTUCK_GAP_S=..., say)."""
        scenario = EXPERIMENTS / f"{experiment}.scenario.yaml"
        env = {**self.env(), **config}
        if bound_s is not None:
            env["UNSTUCK_BOUND_S"] = str(bound_s)
            text, n = re.subn(r"apply_pending_s: \d+", f"apply_pending_s: {bound_s}", scenario.read_text())
            assert n == 1, f"{scenario}: no single bounds.apply_pending_s to replace"
            scenario = self.root / scenario.name
            scenario.write_text(text.replace("$schema=../../scenarios/", f"$schema={ROOT}/scenarios/"))

        def cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
            return subprocess.run(list(args), env=env, cwd=self.root, capture_output=True,
                                  text=True, timeout=timeout)

        chaos = Path(sys.executable).with_name("chaos")
        ran = cli(str(chaos), "--no-version-check", "--log-file", str(self.root / "chaostoolkit.log"),
                  "run", "--journal-path", str(self.root / "journal.json"),
                  str(EXPERIMENTS / f"{experiment}.yaml"))
        tasks = {t["id"]: t for t in httpx.get(f"{self.url}/tasks", timeout=10).json()["tasks"]}
        locks = httpx.get(f"{self.url}/locks", timeout=10).json()["locks"]
        logs = self.stop_serve()
        unstuck = [sys.executable, "-m", "unstuck.cli"]
        closed = cli(*unstuck, "close-run", str(self.root / "run"), "--scenario", str(scenario),
                     "--out", str(self.root / "judged"))
        gated = cli(*unstuck, "gate", str(self.root / "judged"), "-s", self.scheduler)
        (history,) = (self.root / "judged" / "histories").glob("*/*/seed-0.jsonl")
        conform_rc = conform = None
        if self.connect_delay_s == 8 and self.time_scale == 0.1:  # the recipe the scenario describes
            conformed = cli(*unstuck, "conform", str(self.root / "judged"), "--seeds", "100", "--json")
            conform_rc = conformed.returncode
            lines = conformed.stdout.splitlines()
            conform = json.loads(lines[0]) if lines else {"stderr": conformed.stderr}
        return Outcome(ran.returncode, json.loads((self.root / "journal.json").read_text()),
                       closed.returncode, gated.returncode, gated.stdout + gated.stderr,
                       [json.loads(line) for line in history.read_text().splitlines()], tasks, locks,
                       logs=ran.stdout + ran.stderr + (self.root / "chaostoolkit.log").read_text()
                       + logs, conform_rc=conform_rc, conform=conform)
