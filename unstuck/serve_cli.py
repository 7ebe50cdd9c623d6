"""`unstuck serve` (the live scheduler) and `unstuck agent` (an agent process).

Both validate every option before anything starts and refuse bad input with one line naming
the option, the value, the rule and the fix (exit 2). docs/service.md and
docs/agent-protocol.md describe what runs.
"""

from __future__ import annotations

import math
import os
import re
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from scheduler.settings import Settings

NAME = re.compile(r"^[A-Za-z0-9._:-]+$")
LOCK_WAIT_S = 15.0
"""--lock-wait: longer than the old process's stop (uvicorn's 5 s graceful shutdown, then the
clock saved) and than deploy/scheduler.yaml's 10 s termination grace, after which Kubernetes
SIGKILLs it (docs/service.md, "One service per data folder")."""


def _names(option: str, value: str) -> tuple[str, ...]:
    from unstuck.cli import fail_input

    names = tuple(n.strip() for n in value.split(",") if n.strip())
    bad = [n for n in names if not NAME.match(n)]
    if not names or bad:
        fail_input(f"{option} {value!r}: expected comma-separated names of letters, digits, '.', "
                   f"'_', ':' or '-'{' (bad: ' + ', '.join(bad) + ')' if bad else ''}; "
                   "write e.g. pod-1,pod-2")
    return names


def _seconds(option: str, value: float | None, *, zero: bool = False) -> None:
    """Refuse a duration option that is not a finite number of seconds > 0 (>= 0 with
    `zero`): `nan` and `inf` are no duration (an infinite --poll-timeout made every
    registration answer 500, its JSON holding no infinity)."""
    from unstuck.cli import fail_input

    if value is not None and not (math.isfinite(value) and (value >= 0 if zero else value > 0)):
        fail_input(f"{option} {value}: expected a finite number of seconds {'>=' if zero else '>'} 0")


def _settings(run_timeout: float | None) -> Settings:
    """The scheduler's settings as the options give them (durations before --time-scale)."""
    from scheduler.settings import ReferencePolicy, Settings

    if run_timeout is None:
        return Settings()
    return Settings(reference=ReferencePolicy(run_timeout_s=run_timeout))


def _url_problem(url: str) -> str | None:
    """What is wrong with the scheduler's URL, or None: checked before the agent starts,
    which otherwise retries registering forever (no host) or stops on a traceback (a bad port)."""
    import httpx

    if not url.startswith(("http://", "https://")):
        return "not http:// or https://"
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        return str(exc)
    if not parsed.host:
        return "no host"
    if parsed.port is not None and not 0 < parsed.port < 65536:
        return f"port {parsed.port} is not 1-65535"
    return None


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    store: Annotated[str | None, typer.Option(help="sqlite:///PATH | postgresql://... | memory:// (default: sqlite in --data-dir)")] = None,
    scheduler: Annotated[str, typer.Option(help="reference | seed | seed-proposal | seed-head. Recorded in --data-dir at the run's first start: a restart must give the same.")] = "reference",
    cluster: Annotated[str, typer.Option(help="static | kubernetes")] = "static",
    data_dir: Annotated[Path, typer.Option(help="History, clock and default store of this run.")] = Path("unstuck-run"),
    pool: Annotated[str, typer.Option(help="The agent pool's id.")] = "pool-1",
    pods: Annotated[str, typer.Option(help="static: the fixed pod names, one agent each.")] = "pod-1,pod-2,pod-3",
    workspaces: Annotated[str, typer.Option(help="Workspaces to create in the pool at start.")] = "ws-1,ws-2,ws-3",
    users_file: Annotated[Path | None, typer.Option(help='JSON {"token": "user"}; also UNSTUCK_USER_TOKENS=tok=user,...')] = None,
    pool_token_file: Annotated[Path | None, typer.Option(help="File holding the agents' pool token; else UNSTUCK_POOL_TOKEN.")] = None,
    time_scale: Annotated[float, typer.Option(help="Multiply every scheduler duration (timeouts, retries, loops); <1 for fast tests.")] = 1.0,
    agent_stale: Annotated[float, typer.Option(help="Seconds without a poll before an agent is disconnected.")] = 5.0,
    poll_timeout: Annotated[float, typer.Option(help="Longest a long-poll is held open (s).")] = 20.0,
    stuck_after: Annotated[float, typer.Option(help="Bound of the unstuck_stuck_tasks gauge (s after confirm).")] = 600.0,
    run_timeout: Annotated[float | None, typer.Option(help="reference: how long a plan or apply may run (s, before --time-scale; default 3600). A plan its agent still runs past it fails and is stopped; an apply past it is settled from the state.")] = None,
    lock_wait: Annotated[float, typer.Option(help="How long to wait for a service still running on --data-dir (the old process of a restart, still stopping) before giving up (s); 0: do not wait.")] = LOCK_WAIT_S,
    backend_dir: Annotated[Path | None, typer.Option(help="The agents' Terraform backend (their --backend-dir), read to settle an apply whose agent went silent. Without it such an apply fails as 'outcome unknown'.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the core's RNG.")] = 0,
    namespace: Annotated[str, typer.Option(help="kubernetes: namespace of the agent pods.")] = "unstuck",
    agent_selector: Annotated[str, typer.Option(help="kubernetes: label selector of the agent pods.")] = "app=unstuck-agent",
    deployment: Annotated[str | None, typer.Option(help="kubernetes: the agent Deployment (pool manager 'deployment').")] = None,
    scaling: Annotated[str, typer.Option(help="kubernetes: scheduler (scale the Deployment) | hpa (leave it to an HPA).")] = "scheduler",
    kubeconfig: Annotated[str | None, typer.Option(help="kubernetes: kubeconfig path (default: in-cluster, then ~/.kube/config).")] = None,
    log_level: Annotated[str, typer.Option(help="debug | info | warning | error")] = "warning",
    fault_injection: Annotated[bool, typer.Option("--fault-injection", help="Chaos runs only: inject the faults a harness posts that only this service can make: fail its own store writes (a db-write-failure with a rate), drop an agent's C&C session (an agent-disconnect) (docs/service.md).")] = False,
) -> None:
    """Run the scheduler as a long-running HTTP service (API, /metrics, durable history)."""
    from unstuck.cli import fail_input, output_problem, scheduler_problem

    if problem := scheduler_problem("--scheduler", [scheduler]):
        fail_input(problem)
    if cluster not in ("static", "kubernetes"):
        fail_input(f"--cluster {cluster!r}: choose static or kubernetes")
    if scaling not in ("scheduler", "hpa"):
        fail_input(f"--scaling {scaling!r}: choose scheduler or hpa")
    if not 0 < port < 65536:
        fail_input(f"--port {port}: expected 1-65535")
    if not (math.isfinite(time_scale) and time_scale > 0):
        fail_input(f"--time-scale {time_scale}: expected a finite number > 0, e.g. 0.05 for tests")
    if log_level not in ("debug", "info", "warning", "error"):
        fail_input(f"--log-level {log_level!r}: choose debug, info, warning or error")
    for opt, v in (("--agent-stale", agent_stale), ("--poll-timeout", poll_timeout), ("--stuck-after", stuck_after)):
        _seconds(opt, v)
    _seconds("--lock-wait", lock_wait, zero=True)
    _seconds("--run-timeout", run_timeout)
    if run_timeout is not None and scheduler != "reference":
        fail_input(f"--run-timeout: the {scheduler} scheduler has no run timeout (the real system "
                   "it reproduces has none); leave it out, or run --scheduler reference")
    if problem := output_problem("--data-dir", data_dir, folder=True):
        fail_input(problem)
    from unstuck.folders import MARKER, wrote

    if data_dir.is_dir() and wrote(data_dir):
        fail_input(f"--data-dir {data_dir}: holds what `unstuck sim --out`, `unstuck suite` or "
                   f"`unstuck report` wrote (its {MARKER} marker), not a service's run; the "
                   "service would write its store, clock and history beside it. Choose another "
                   f"folder, e.g. {data_dir / 'run'}")
    if backend_dir is not None and backend_dir.exists() and not backend_dir.is_dir():
        fail_input(f"--backend-dir {backend_dir}: not a directory; give the directory the agents "
                   "were started with (their --backend-dir)")
    from scheduler.service.config import ServiceConfig
    from scheduler.service.identity import IdentityConfigError, load_pool_token, load_users
    from scheduler.settings import scaled_settings
    from scheduler.stores import open_store, redacted

    try:
        users = load_users(users_file, dict(os.environ))
        pool_token = load_pool_token(pool_token_file, dict(os.environ))
    except IdentityConfigError as exc:
        fail_input(str(exc))
    if not users:
        fail_input("no user tokens: set UNSTUCK_USER_TOKENS='token=alice' or pass --users-file "
                   'FILE with {"token": "alice"}; create, confirm and cancel need an identity')
    if pool_token is None:
        fail_input("no pool token: set UNSTUCK_POOL_TOKEN or pass --pool-token-file FILE; agents "
                   "authenticate with it")
    if store is not None:
        try:
            open_store(store).close() if store != "memory://" else None
        except ValueError as exc:
            fail_input(f"--store: {exc}")
        except Exception as exc:  # noqa: BLE001 - any open failure is the user's URL or server
            fail_input(f"--store {redacted(store)!r}: cannot open: {exc}")
    config = ServiceConfig(
        data_dir=data_dir, store_url=store, scheduler=scheduler, cluster=cluster, pool_id=pool,
        pods=_names("--pods", pods), workspaces=_names("--workspaces", workspaces), users=users,
        pool_token=pool_token, settings=scaled_settings(_settings(run_timeout), time_scale), seed=seed,
        poll_timeout_s=poll_timeout, agent_stale_s=agent_stale, stuck_after_s=stuck_after,
        backend_dir=backend_dir, namespace=namespace, agent_selector=agent_selector, deployment=deployment,
        scaling=scaling, kubeconfig=kubeconfig, fault_injection=fault_injection)
    from scheduler.service import folderlock, run

    try:
        sock = run.listen(host, port)
    except OSError as exc:  # before the service is built: nothing is written to --data-dir
        fail_input(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc}); "
                   "choose a free --port (another service may hold this one) or an address of "
                   "this machine for --host")
    # The port first (binding writes nothing), then the folder's lock (the first write there),
    # then the service, which writes the rest: a refusal at either step leaves the folder as
    # it was. While it waits for the lock, connections queue on the bound port unanswered.
    try:
        held = folderlock.take(data_dir, port=port, wait_s=lock_wait)
    except folderlock.FolderHeld as exc:
        sock.close()
        fail_input(f"--data-dir {data_dir}: {exc.holder} still runs on it (waited {lock_wait:g} s, "
                   "--lock-wait); stop it first, or give this service another --data-dir")
    except OSError as exc:
        sock.close()
        fail_input(f"--data-dir {data_dir}: cannot lock {data_dir / folderlock.LOCK} "
                   f"({exc.strerror or exc}); give a folder this user can write, on a local disk")
    try:
        try:
            app = run.build(config)
        except ValueError as exc:
            sock.close()
            fail_input(str(exc))
        run.configure_logging(log_level)
        if not run.run_app(app, sock, log_level):
            raise typer.Exit(3)  # uvicorn's own startup failure (logged), as `uvicorn.run` exits
    finally:
        os.close(held)  # after the service has stopped and saved its clock


def agent(
    server: Annotated[str, typer.Option(help="The scheduler's URL.")] = "http://127.0.0.1:8080",
    pod: Annotated[str | None, typer.Option(help="This agent's pod name (default: $POD_NAME or the host name).")] = None,
    agent_id: Annotated[str | None, typer.Option(help="Agent id (default: agent-<pod>).")] = None,
    pool: Annotated[str, typer.Option(help="The pool to join.")] = "pool-1",
    token_file: Annotated[Path | None, typer.Option(help="File holding the pool token; else UNSTUCK_POOL_TOKEN.")] = None,
    backend_dir: Annotated[Path, typer.Option(help="The simulated Terraform backend (plans, state, locks), shared by all agents.")] = Path("unstuck-backend"),
    plan_seconds: Annotated[float, typer.Option(help="How long a plan takes.")] = 60.0,
    apply_seconds: Annotated[float, typer.Option(help="How long an apply takes.")] = 60.0,
    heartbeat: Annotated[float, typer.Option(help="Heartbeat period (s).")] = 10.0,
    no_changes: Annotated[bool, typer.Option("--no-changes", help="Plans find no changes.")] = False,
    grace: Annotated[float, typer.Option(help="On SIGTERM, finish within this many seconds, then abort.")] = 25.0,
    lease: Annotated[float | None, typer.Option(help="State lock lease (s), renewed while an apply works (ours; default 30). While its claim waits for an answer, only as long as the scheduler answers: after 4 leases of silence it lets the lease lapse.")] = None,
    poll_timeout: Annotated[float, typer.Option(help="Long-poll timeout asked for (s).")] = 20.0,
    scheduler: Annotated[str, typer.Option(help="Run the agent this scheduler ships with: reference (ours: drains on SIGTERM, delivers every report, leased state lock, claims each run); seed, seed-proposal or seed-head (the seed's: exits at once on SIGTERM, drops a report after 4 tries, lock without a lease, runs whatever it is sent).")] = "reference",
    on_sigterm: Annotated[str | None, typer.Option(help="Override what --scheduler's agent does on SIGTERM: drain (finish runs within --grace, report, exit) or exit (cancel runs, report nothing, exit at once).")] = None,
    connect_delay: Annotated[float, typer.Option(help="Seconds from start to registering: a real agent's init before it connects (a scenario's agents.connect_s), during which its pod runs but cannot take work.")] = 0.0,
) -> None:
    """Run one agent: register with the scheduler, heartbeat, execute simulated Terraform runs."""
    from unstuck.cli import fail_input, output_problem, scheduler_problem

    pod = pod or os.environ.get("POD_NAME") or socket.gethostname()
    if not NAME.match(pod):
        fail_input(f"--pod {pod!r}: expected letters, digits, '.', '_', ':' or '-'")
    for opt, v in (("--plan-seconds", plan_seconds), ("--apply-seconds", apply_seconds),
                   ("--grace", grace), ("--connect-delay", connect_delay)):
        _seconds(opt, v, zero=True)
    for opt, v in (("--heartbeat", heartbeat), ("--lease", lease), ("--poll-timeout", poll_timeout)):
        _seconds(opt, v)
    if problem := scheduler_problem("--scheduler", [scheduler]):
        fail_input(problem)
    from scheduler.variants import policy_class

    if lease is not None and policy_class(scheduler).agent_state_lease_s is None:
        fail_input(f"--lease: the agent of --scheduler {scheduler} (the seed's) holds its state lock "
                   "without a lease; drop --lease, or run our agent (--scheduler reference)")
    if on_sigterm not in (None, "drain", "exit"):
        fail_input(f"--on-sigterm {on_sigterm!r}: choose drain (ours) or exit (the seed's agent)")
    if problem := _url_problem(server):
        fail_input(f"--server {server!r}: {problem}; expected a URL such as http://127.0.0.1:8080")
    from scheduler.service.identity import IdentityConfigError, load_pool_token

    try:
        token = load_pool_token(token_file, dict(os.environ))
    except IdentityConfigError as exc:
        fail_input(str(exc))
    if token is None:
        fail_input("no pool token: set UNSTUCK_POOL_TOKEN or pass --token-file FILE")
    # Last, and kept: the agent makes this folder next anyway. Removed after the check, it
    # vanished under the other agents starting on it at the same moment, and they exited 2
    # ("No such file or directory"; seen in CI with three agents started at once).
    if problem := output_problem("--backend-dir", backend_dir, folder=True, keep=True):
        fail_input(problem)
    from scheduler.agent import process

    chosen: dict[str, object] = {}
    if lease is not None:
        chosen["lease_s"] = lease
    if on_sigterm is not None:
        chosen["on_sigterm"] = on_sigterm
    cfg = process.AgentConfig.of(
        scheduler, url=server, token=token, pod=pod, agent_id=agent_id or f"agent-{pod}",
        pool_id=pool, backend_dir=backend_dir, plan_s=plan_seconds, apply_s=apply_seconds,
        heartbeat_s=heartbeat, has_changes=not no_changes, grace_s=grace,
        poll_timeout_s=poll_timeout, connect_delay_s=connect_delay, **chosen)
    raise typer.Exit(process.main(cfg))


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(agent)
