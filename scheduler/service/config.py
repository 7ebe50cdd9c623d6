"""What `unstuck serve` was asked to run: one frozen record, validated before anything starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from scheduler.settings import Settings


@dataclass(frozen=True)
class ServiceConfig:
    data_dir: Path | None = None
    """Holds history.jsonl and clock.json (and store.db by default). None: memory only (tests)."""
    store_url: str | None = None
    """sqlite:///PATH, postgresql://..., memory://; default sqlite in data_dir."""
    scheduler: str = "reference"
    cluster: str = "static"
    pool_id: str = "pool-1"
    pods: tuple[str, ...] = ("pod-1", "pod-2", "pod-3")
    """static: the fixed pod names, one agent process each."""
    workspaces: tuple[str, ...] = ("ws-1", "ws-2", "ws-3")
    """Workspaces created in the pool at start (existing ones are kept as they are)."""
    users: dict[str, str] = field(default_factory=dict)
    pool_token: str | None = None
    settings: Settings = field(default_factory=Settings)
    seed: int = 0
    """Seeds the core's RNG (Go map order in the seed variants)."""
    poll_timeout_s: float = 20.0
    """Longest a long-poll is held open before it is answered empty."""
    agent_stale_s: float = 5.0
    """An agent that has not polled for this long is disconnected and cannot be sent to."""
    watch_period_s: float = 0.2
    """How often process liveness (static) and silent agents are checked."""
    backend_dir: Path | None = None
    """The agents' Terraform backend (their --backend-dir), read to settle an apply whose agent
    went silent: committed, or not (an unreadable one is waited for until the run timeout).
    None: such an apply fails with its outcome unknown."""
    stuck_after_s: float = 600.0
    """The `unstuck_stuck_tasks` gauge's bound since the confirmation."""
    fault_injection: bool = False
    """Take `POST /faults` bodies with a `rate` as an order to fail this service's own store
    writes (the db-write-failure fault, live: scheduler/service/write_faults.py), and an
    agent-disconnect as one to drop that agent's C&C session. For chaos runs only."""
    # Kubernetes cluster.
    namespace: str = "unstuck"
    agent_selector: str = "app=unstuck-agent"
    deployment: str | None = None
    """kubernetes: the agent Deployment to scale (with pool manager "deployment")."""
    scaling: str = "scheduler"
    """kubernetes: "scheduler" scales the Deployment itself, "hpa" leaves the count to an HPA."""
    kubeconfig: str | None = None


