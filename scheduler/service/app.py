"""The HTTP JSON API of the live scheduler (FastAPI; OpenAPI at /openapi.json).

Each handler is `async` and calls `Engine.handle` without awaiting in between, so requests
are serialized on the event loop with every other input of the core. What the core answers
(`Outcome.status`) is the HTTP status. Bad input is refused here with a 4xx whose message
names the field, the value and the rule, before the core or the store see it:

- a body that is not JSON, or misses a field, or has a value of the wrong type: 400;
- create, confirm, cancel, workspace set-up and fault notes without a known bearer token: 401;
- agent endpoints without the pool token: 401; an agent that has not registered: 404.

docs/service.md lists the routes with curl examples; docs/agent-protocol.md the agent side.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from scheduler import events as ev
from scheduler.history import HistoryEvent, Kind, Source
from scheduler.model import Task, TaskStatus, TaskType, Workspace
from scheduler.ports import StoreReadError
from scheduler.service import views
from scheduler.service.engine import AGENT_DISCONNECT, Engine, exec_key
from scheduler.service.identity import Identities
from scheduler.service.static_cluster import StaticCluster
from scheduler.service.write_faults import TYPE as WRITE_FAULT
from scheduler.variants import NAMES, agent_of

log = logging.getLogger("unstuck.service")

Auth = Annotated[str | None, Header(alias="Authorization", description="Bearer <token>")]
Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")]


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("contains a NUL character (\\u0000), which a PostgreSQL store cannot "
                         "hold; remove it")
    return text


# Free text that is stored in a task row: every store must be able to hold it (docs/stores.md).
Text = Annotated[str, AfterValidator(_no_nul)]
# An agent's error text is kept, not refused (a refused failure report could leave its task
# waiting): a NUL in it becomes U+FFFD.
AgentText = Annotated[str, AfterValidator(lambda text: text.replace("\x00", "\ufffd"))]


class Body(BaseModel):
    """A JSON request body: unknown fields are refused, and so is a value of the wrong JSON
    type (`"5"`, `true` or `5.0` for an integer, `1` for a boolean): strict mode, since FastAPI
    validates the decoded object. An enum field arrives as its JSON string, so it sets
    `Field(strict=False)`, which still takes only the enum's values."""

    model_config = ConfigDict(extra="forbid", strict=True)


class CreateTask(Body):
    workspace_id: Id
    task_type: TaskType = Field(TaskType.PLAN_AND_APPLY, strict=False)
    description: Text = Field("", max_length=2000)


class Confirm(Body):
    plan_digest: Text | None = Field(None, max_length=200,
                                     description="the digest of the plan the user reviewed")
    description: Text = Field("", max_length=2000)


class PutWorkspace(Body):
    pool_id: Id | None = None


class Fault(Body):
    type: Id
    pod: Id | None = None
    agent: Id | None = None
    task: int | None = Field(None, ge=1, le=2**62)
    node: Id | None = None
    reason: str = Field("", max_length=500)
    # A db-write-failure the service injects itself (--fault-injection): each store write
    # fails with probability `rate`, for `duration_s` (else until POST /faults/end).
    rate: float | None = Field(None, gt=0, le=1)
    duration_s: float | None = Field(None, gt=0, le=86400)
    # An agent-disconnect the service injects: the agent's connection stays down that long
    # (its registrations are refused), as the simulation's `reconnect_after`.
    reconnect_after: float | None = Field(None, gt=0, le=3600)


def _wrong_agent(agent_scheduler: str | None, scheduler: str) -> str | None:
    """Why an agent of `agent_scheduler` must not serve `scheduler`, or None. The seed
    variants ship the same agent; a run mixing ours and the seed's would show neither."""
    if agent_scheduler is None:
        return None  # an agent that does not say: taken as it is
    if agent_scheduler not in NAMES:
        return f"unknown scheduler {agent_scheduler!r}: choose one of {', '.join(NAMES)}"
    if agent_of(agent_scheduler) == agent_of(scheduler):
        return None
    whose = "ours" if scheduler == "reference" else "the seed's"
    return (f"this agent is the one --scheduler {agent_scheduler} ships with, but this service "
            f"runs --scheduler {scheduler}, whose agent is {whose}: start the agent with "
            f"--scheduler {scheduler}")


TaskIds = Annotated[list[Annotated[int, Field(ge=1, le=2**62)]], Field(max_length=1000)]


class Register(Body):
    agent_id: Id
    pool_id: Id
    pod: Id
    pid: int | None = Field(None, ge=1, le=2**31)
    current_tasks: TaskIds = Field(default_factory=list, description=(
        "the runs the agent holds as it registers (again), as its heartbeats list them"))
    scheduler: str | None = Field(None, max_length=40, description=(
        "whose agent this is (`unstuck agent --scheduler`); refused (409) when it is not the "
        "agent this scheduler ships with"))


class Heartbeat(Body):
    agent_id: Id
    plan_running: int = Field(0, ge=0, le=1000)
    plan_limit: int = Field(3, ge=0, le=1000)
    apply_running: bool = False
    current_tasks: TaskIds = Field(default_factory=list)


class ExecRow(Body):
    agent_id: Id
    kind: Literal["invoke", "ok", "fail", "info"]
    task_id: int = Field(ge=1, le=2**62)
    workspace_id: Id
    pod: Id
    action: Literal["plan", "apply"]
    fence: int = Field(ge=0, le=2**62)
    reason: str = Field("", max_length=500)
    digest: str | None = Field(None, max_length=200)
    has_changes: bool | None = None
    claim: bool = Field(True, description="an invoke: claim the run (refused with 409 when "
                        "stale); false: only record it (the seed's agent runs whatever it is sent)")
    supersedes: list[int] | None = Field(None, min_length=2, max_length=2, description=(
        "an apply's invoke: the [task, fence] token it took the state lock from"))
    run: Id | None = Field(None, description=(
        "the agent's id for this run: a row is recorded once per run, so a retried report "
        "adds nothing while a second run of the same task, fence and action (the seed's "
        "scheduler never moves a fence) is recorded as its own"))


class Report(Body):
    agent_id: Id
    report: Literal["plan_finished", "apply_finished", "task_failed"]
    task_id: int = Field(ge=1, le=2**62)
    fence: int = Field(0, ge=0, le=2**62)
    has_changes: bool = False
    digest: Text = Field("", max_length=200)
    ok: bool = True
    error: AgentText = Field("", max_length=2000)
    exec: ExecRow | None = Field(None, description="the execution row to record before the report")


class Notice(Body):
    agent_id: Id
    task_id: int = Field(ge=1, le=2**62)
    ok: bool = True


def _err(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"ok": False, "message": message, **extra}, status_code=status)


def create_app(engine: Engine, identities: Identities) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await engine.start()
        try:
            yield
        finally:
            await engine.stop()

    app = FastAPI(title="unstuck scheduler", version="1", lifespan=lifespan,
                  description="The live scheduler: tasks, confirmations, pools, history, agents.")
    app.state.engine = engine

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        send_json = "send a JSON object with Content-Type: application/json"
        problems = []
        for e in exc.errors():
            if e.get("type") == "json_invalid":
                error = (e.get("ctx") or {}).get("error", "invalid JSON")
                at = e.get("loc", ("body", "?"))[-1]
                problems.append(f"body: not valid JSON ({error} at character {at}); {send_json}")
                continue
            where = ".".join(str(p) for p in e.get("loc", ()))
            if tuple(e.get("loc", ())) == ("body",) and e.get("type") == "missing":
                problems.append(f"body: missing; {send_json}")
                continue
            got = e.get("input")
            shown = "" if e.get("type") == "missing" else f" (got {str(got)[:80]!r})"
            fix = f"; {send_json}" if tuple(e.get("loc", ())) == ("body",) else ""
            problems.append(f"{where}: {e.get('msg', 'invalid')}{shown}{fix}")
        return _err(400, "; ".join(problems) or "invalid request", problems=problems)

    @app.exception_handler(StarletteHTTPException)
    async def no_route(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """A wrong method or an unknown route: the same `{ok, message}` shape, with the fix."""
        where = f"{request.method} {request.url.path}"
        headers = {k: v for k, v in (exc.headers or {}).items()
                   if not (exc.status_code == 405 and k.lower() == "allow")}
        if exc.status_code == 405:
            # Starlette's Allow names only the first route of the path; /tasks and
            # /workspaces/{id} have two, and the answer must name every method the path takes.
            allow = ", ".join(sorted({m for route in app.router.routes
                                      if route.matches(request.scope)[0] is not Match.NONE
                                      for m in getattr(route, "methods", None) or ()}))
            headers["Allow"] = allow
            message = f"{where}: method not allowed; use {allow}"
        elif exc.status_code == 404:
            message = f"{where}: no such route; the routes are listed at /docs and /openapi.json"
        else:
            message = f"{where}: {exc.detail}"
        return JSONResponse({"ok": False, "message": message}, status_code=exc.status_code,
                            headers=headers or None)

    @app.exception_handler(StoreReadError)
    async def store_unavailable(request: Request, exc: StoreReadError) -> JSONResponse:
        """The database failed a read (lost for good, a damaged file): the service cannot
        answer until someone acts, so 503 with the store's whole message, which names the
        database and what to do (as /readyz says)."""
        log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return _err(503, f"{request.method} {request.url.path}: store unavailable: {exc}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        """Anything else (a bug, a store used after it was closed) is still `{ok, message}`, naming
        the request and the error, not the server's plain-text page; the traceback goes to
        the log, where the message points."""
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _err(500, f"{request.method} {request.url.path}: internal error "
                         f"({type(exc).__name__}: {str(exc)[:200]}); the service log has the "
                         "traceback")

    def outcome(out: ev.Outcome, **extra: Any) -> JSONResponse:
        body: dict[str, Any] = {"ok": out.ok, "message": out.message, "task_id": out.task_id, **extra}
        if out.task_id is not None:
            task = engine.store.get_task(out.task_id)
            if task is not None:
                body["task"] = views.record(task, engine.clock.t)
        return JSONResponse(body, status_code=out.status)

    def user_row(action: str, user: str, **fields: Any) -> None:
        engine.world(Kind.USER, Source.USER, reason=action, data={"action": action, "user": user}, **fields)

    # ------------------------------------------------------------ health and metrics
    # GET and HEAD: a `curl -I` or a load balancer's HEAD probe gets the status without a body
    # (HEAD is left out of the OpenAPI document, where it would repeat GET's operation id).
    @app.head("/healthz", include_in_schema=False)
    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict:
        return {"ok": True}

    @app.head("/readyz", include_in_schema=False)
    @app.get("/readyz", tags=["ops"])
    async def readyz():
        if not engine.booted:
            return _err(503, "booting")
        try:
            engine.store.list_pools()
        except Exception as exc:  # noqa: BLE001 - any store failure means not ready
            return _err(503, f"store unavailable: {exc}")
        return {"ok": True, "scheduler": engine.scheduler.name}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics():
        return PlainTextResponse(generate_latest(engine.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # ------------------------------------------------------------ tasks
    @app.post("/tasks", status_code=201, tags=["tasks"])
    async def create_task(body: CreateTask, authorization: Auth = None):
        user = identities.user_for(authorization)
        if user is None:
            return _err(401, "creating a task needs an identity: send Authorization: Bearer <token>")
        user_row("create", user, workspace=body.workspace_id)
        return outcome(engine.handle(ev.TaskCreated(body.workspace_id, body.task_type, user, body.description)))

    @app.get("/tasks", tags=["tasks"])
    async def list_tasks(workspace_id: Annotated[str | None, Query(max_length=200)] = None,
                         status: TaskStatus | None = None):
        tasks = engine.store.list_tasks(workspace_id=workspace_id,
                                        statuses=[status] if status is not None else None)
        return {"tasks": [views.record(t, engine.clock.t) for t in tasks]}

    @app.get("/tasks/{task_id}", tags=["tasks"])
    async def get_task(task_id: Annotated[int, Field(ge=1, le=2**62)]):
        task = engine.store.get_task(task_id)
        if task is None:
            return _err(404, f"task {task_id} not found")
        return views.record(task, engine.clock.t)

    @app.post("/tasks/{task_id}/confirm", tags=["tasks"])
    async def confirm(task_id: Annotated[int, Field(ge=1, le=2**62)], body: Confirm,
                      authorization: Auth = None):
        user = identities.user_for(authorization)
        if user is None:
            return _err(401, "confirm needs an identity: send Authorization: Bearer <token>; "
                        "nothing was changed", task_id=task_id)
        if engine.store.get_task(task_id) is None:
            return _err(404, f"task {task_id} not found")
        user_row("confirm", user, task=task_id)
        return outcome(engine.handle(ev.ConfirmApply(task_id, user, body.plan_digest, body.description)))

    @app.post("/tasks/{task_id}/cancel", tags=["tasks"])
    async def cancel(task_id: Annotated[int, Field(ge=1, le=2**62)], authorization: Auth = None):
        user = identities.user_for(authorization)
        if user is None:
            return _err(401, "cancel needs an identity: send Authorization: Bearer <token>", task_id=task_id)
        if engine.store.get_task(task_id) is None:
            return _err(404, f"task {task_id} not found")
        user_row("cancel", user, task=task_id)
        return outcome(engine.handle(ev.CancelTask(task_id, user)))

    # ------------------------------------------------------------ workspaces, locks, pools
    @app.get("/workspaces", tags=["workspaces"])
    async def list_workspaces():
        return {"workspaces": [views.record(w, engine.clock.t) for w in engine.store.list_workspaces()]}

    @app.get("/workspaces/{workspace_id}", tags=["workspaces"])
    async def get_workspace(workspace_id: Annotated[str, Field(max_length=200)]):
        ws = engine.store.get_workspace(workspace_id)
        if ws is None:
            return _err(404, f"workspace {workspace_id!r} not found")
        return views.record(ws, engine.clock.t)

    @app.put("/workspaces/{workspace_id}", status_code=201, tags=["workspaces"])
    async def put_workspace(workspace_id: Annotated[str, Field(min_length=1, max_length=200,
                                                               pattern=r"^[A-Za-z0-9._:-]+$")],
                            body: PutWorkspace, authorization: Auth = None):
        if identities.user_for(authorization) is None:
            return _err(401, "creating a workspace needs an identity: send Authorization: Bearer <token>")
        pool = body.pool_id or engine.config.pool_id
        if engine.store.get_pool(pool) is None:
            return _err(404, f"pool {pool!r} not found; pools: "
                        + ", ".join(p.id for p in engine.store.list_pools()))
        existing = engine.store.get_workspace(workspace_id)
        if existing is not None:
            return JSONResponse(views.record(existing, engine.clock.t), status_code=200)
        engine.store.put_workspace(Workspace(workspace_id, pool_id=pool))
        return JSONResponse(views.record(engine.store.get_workspace(workspace_id), engine.clock.t),
                            status_code=201)

    @app.get("/locks", tags=["workspaces"])
    async def locks():
        return {"locks": [{"workspace": w.id, "task": w.lock_task_id, "by": w.locked_by,
                           "reason": w.lock_reason,
                           "since": round(engine.clock.t(w.locked_at), 6) if w.locked_at else None}
                          for w in engine.store.list_workspaces() if w.is_locked]}

    @app.get("/pools", tags=["pools"])
    async def pools():
        tasks = engine.store.list_tasks(statuses=[TaskStatus.RUNNING, TaskStatus.APPLY_PENDING])
        held = views.slots_from_store(tasks)
        memory = views.slots_from_memory(engine.scheduler.policy)
        believed = views.agents_from_memory(engine.scheduler.policy, engine.clock.t) or {}
        now = engine.clock.now()
        out = []
        for pool in engine.store.list_pools():
            try:
                pods = engine.cluster.list_pods(pool.id)
            except Exception as exc:  # noqa: BLE001 - a cluster error is shown, not raised
                pods, error = [], str(exc)
            else:
                error = None
            agents = [{"agent": b.agent_id, "pod": b.pod, "pid": b.pid,
                       "polling": b.live(now, engine.config.agent_stale_s),
                       "memory": believed.get(b.agent_id)}
                      for b in engine.mailboxes.boxes.values() if b.connected and b.pool_id == pool.id]
            out.append({
                **views.record(pool, engine.clock.t),
                "cluster_error": error,
                "pods": [{"name": p.name, "phase": p.phase, "deletion_cost": p.deletion_cost,
                          "slots": held.get(p.name, []),
                          "memory_slots": (memory or {}).get(p.name)} for p in pods],
                "agents": sorted(agents, key=lambda a: a["agent"]),
            })
        return {"pools": out}

    # ------------------------------------------------------------ history and faults
    @app.get("/history", tags=["history"])
    async def history(since: Annotated[int, Query(ge=0, le=2**62)] = 0,
                      limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000):
        rows = engine.history.since(since, limit)
        return {"rows": rows, "next": since + len(rows), "total": len(engine.history)}

    def fault_row(body: Fault) -> dict[str, Any]:
        """The fields a fault row carries, and its `fault.end` repeats."""
        data: dict[str, Any] = {"type": body.type, "target": body.pod or body.agent or body.task}
        if body.node:
            data["node"] = body.node
        for key in ("rate", "duration_s", "reconnect_after"):
            if getattr(body, key) is not None:
                data[key] = getattr(body, key)
        return {"pod": body.pod, "agent": body.agent, "task": body.task, "data": data}

    def disconnect_refused(body: Fault) -> JSONResponse | None:
        if not engine.config.fault_injection:
            return _err(403, f"an {AGENT_DISCONNECT} asks this service to drop the agent's C&C "
                        "session, which it does only when started with --fault-injection (chaos "
                        "runs only): a disconnect made elsewhere never reaches it, as the agent "
                        "polls again at once")
        if body.pod is None and body.agent is None:
            return _err(422, f"body.pod: an {AGENT_DISCONNECT} names the pod (or body.agent) "
                        "whose agent to disconnect")
        if not engine.connected_agents(body.pod, body.agent):
            where = " and ".join(f"{k} {v}" for k, v in (("pod", body.pod), ("agent", body.agent)) if v)
            return _err(409, f"no agent with {where} is connected, so none can be disconnected: "
                        "GET /pools lists the connected agents and their pods")
        return None

    def injection_refused(body: Fault) -> JSONResponse | None:
        if body.reconnect_after is not None and body.type != AGENT_DISCONNECT:
            return _err(422, f"body.reconnect_after: only an {AGENT_DISCONNECT} takes it (how long "
                        f"the agent's connection stays down); this one is {body.type}")
        if body.rate is None and body.type == AGENT_DISCONNECT:
            return disconnect_refused(body)
        if body.rate is None:
            if body.duration_s is not None:
                return _err(422, "body.duration_s: the window of an injected write failure; send "
                            "body.rate with it (type db-write-failure), or leave both out")
            return None
        if body.type != WRITE_FAULT:
            return _err(422, f"body.rate: only a {WRITE_FAULT} fault takes a rate (the share of "
                        f"store writes to fail); this one is {body.type}")
        if not engine.config.fault_injection:
            return _err(403, f"a {WRITE_FAULT} with a rate asks this service to fail its own "
                        "store writes, which it does only when started with --fault-injection "
                        "(chaos runs only); without a rate the fault is only recorded")
        return None

    @app.post("/faults", status_code=201, tags=["history"])
    async def fault(body: Fault, authorization: Auth = None):
        """A harness announces a fault it is about to inject (history kind `fault`). Two the
        service injects itself, with --fault-injection: a db-write-failure with a `rate`, and
        an agent-disconnect (the named pod's or agent's C&C session is dropped)."""
        if identities.user_for(authorization) is None:
            return _err(401, "recording a fault needs an identity: send Authorization: Bearer <token>")
        if (refused := injection_refused(body)) is not None:
            return refused
        if body.type == AGENT_DISCONNECT and body.agent is None:  # the row names whom it hit
            body = body.model_copy(update={"agent": engine.connected_agents(body.pod, None)[0]})
        row = engine.fault(body.reason or body.type, **fault_row(body))
        return JSONResponse({"ok": True, "seq": row["seq"]}, status_code=201)

    @app.post("/faults/end", status_code=201, tags=["history"])
    async def fault_end(body: Fault, authorization: Auth = None):
        """A harness ends a fault it announced (history kind `fault.end`), such as a rollback
        that restores the HPA: the body names the fault as `POST /faults` did, and the oldest
        one alike still in force ends. Until then a deletion the scheduler did not make is an
        untargeted fault's effect (scheduler/service/effects.py), and an injected write
        failure goes on."""
        if identities.user_for(authorization) is None:
            return _err(401, "ending a fault needs an identity: send Authorization: Bearer <token>")
        ended = engine.effects.match(fault_row(body))
        row = None if ended is None else engine.end_fault(ended, body.reason or f"{body.type} over")
        if row is None:
            return _err(409, f"no {body.type} fault with these fields is in force: post the body "
                        "that POST /faults was given (type, pod, agent, task, node, rate, "
                        "duration_s); GET /history lists the fault rows")
        return JSONResponse({"ok": True, "seq": row["seq"], "ended": ended}, status_code=201)

    # ------------------------------------------------------------ agents
    def agent_auth(authorization: str | None) -> JSONResponse | None:
        if not identities.agent_ok(authorization):
            return _err(401, "agent requests need the pool token: send Authorization: Bearer <pool token>")
        return None

    @app.post("/agent/register", tags=["agents"])
    async def register(body: Register, authorization: Auth = None):
        if not identities.agent_ok(authorization):
            out = engine.handle(ev.AgentConnected(body.agent_id, body.pool_id, body.pod, token_ok=False))
            return _err(out.status if not out.ok else 401,
                        "invalid pool token: set UNSTUCK_POOL_TOKEN (or --token-file) to the "
                        "scheduler's pool token")
        if (wrong := _wrong_agent(body.scheduler, engine.config.scheduler)) is not None:
            return _err(409, wrong)
        if engine.store.get_pool(body.pool_id) is None:
            return _err(404, f"pool {body.pool_id!r} not found; pools: "
                        + ", ".join(p.id for p in engine.store.list_pools()))
        if (down := engine.mailboxes.down_for(body.agent_id)) is not None:
            return _err(503, f"agent {body.agent_id}: its connection is down for {down:.1f} s more "
                        f"(an injected {AGENT_DISCONNECT} with reconnect_after); try again then")
        cluster = engine.cluster
        if isinstance(cluster, StaticCluster):
            if not cluster.knows(body.pod):
                return _err(404, f"pod {body.pod!r} is not one of this static cluster's pods "
                            f"({', '.join(sorted(cluster.pods))}); start the agent with --pod NAME")
            if body.pid is None:
                return _err(400, "body.pid: missing; the static cluster follows each pod by its "
                            "agent's process: send the agent's process id (unstuck agent does)")
            for event in cluster.agent_started(body.pod, body.pid, engine.clock.now()):
                if isinstance(event, ev.PodAdded):
                    engine.world(Kind.POD_ADDED, pod=body.pod, data={"pool": body.pool_id, "pid": body.pid})
                else:
                    engine.process_died(body.pod)
                engine.handle(event)
        engine.mailboxes.register(body.agent_id, body.pool_id, body.pod, body.pid)
        out = engine.handle(ev.AgentConnected(body.agent_id, body.pool_id, body.pod,
                                              current_tasks=tuple(body.current_tasks)))
        if not out.ok:
            engine.mailboxes.disconnect(body.agent_id)
        return JSONResponse({"ok": out.ok, "message": out.message,
                             "poll_timeout_s": engine.config.poll_timeout_s}, status_code=out.status)

    @app.post("/agent/heartbeat", tags=["agents"])
    async def heartbeat(body: Heartbeat, authorization: Auth = None):
        if (denied := agent_auth(authorization)) is not None:
            return denied
        if engine.mailboxes.get(body.agent_id) is None:
            return _err(404, f"agent {body.agent_id} is not registered: register again")
        out = engine.handle(ev.AgentHeartbeat(body.agent_id, body.plan_running, body.plan_limit,
                                              body.apply_running, tuple(body.current_tasks)))
        return JSONResponse({"ok": out.ok, "message": out.message}, status_code=out.status)

    @app.get("/agent/poll", tags=["agents"])
    async def poll(agent_id: Annotated[str, Query(min_length=1, max_length=200)],
                   after: Annotated[int, Query(ge=0, le=2**62)] = 0,
                   timeout: Annotated[float | None, Query(ge=0, le=300)] = None,
                   authorization: Auth = None):
        if (denied := agent_auth(authorization)) is not None:
            return denied
        box = engine.mailboxes.get(agent_id)
        if box is None:
            return _err(404, f"agent {agent_id} is not registered: register again")
        messages = await engine.mailboxes.poll(box, after, timeout)
        if not box.connected:
            return _err(404, f"agent {agent_id} was disconnected: register again")
        return {"messages": messages}

    def exec_row(row: ExecRow) -> None:
        data: dict[str, Any] = {"action": row.action, "fence": row.fence}
        if row.digest is not None:
            data["digest"] = row.digest
        if row.has_changes is not None:
            data["has_changes"] = row.has_changes
        if row.supersedes is not None:
            data["supersedes"] = row.supersedes
        if row.run is not None:
            data["run"] = row.run
        if exec_key(row.agent_id, row.task_id, row.fence, row.kind, row.action, row.run) in engine.exec_seen:
            return  # a retried report: its row is already in the history (the engine notes each)
        engine.history.append(HistoryEvent(engine.clock.now(), Kind("exec." + row.kind), Source.AGENT,
                                           task=row.task_id, workspace=row.workspace_id, pod=row.pod,
                                           agent=row.agent_id, reason=row.reason, data=data))
        engine.history.flush()

    def exec_refused(row: ExecRow, task: Task | None, where: str) -> JSONResponse | None:
        """Why an execution row must not enter the history (the checker's evidence), or None:
        its task (`task`, as stored) does not exist, or it names another workspace."""
        if task is None:
            return _err(404, f"{where}task_id: task {row.task_id} not found: nothing recorded; "
                        "send rows of the tasks the scheduler dispatched")
        if row.workspace_id != task.workspace_id:
            return _err(400, f"{where}workspace_id: task {task.id} is of workspace "
                        f"{task.workspace_id!r}, not {row.workspace_id!r}: send the run message's "
                        "workspace_id")
        return None

    @app.post("/agent/exec", tags=["agents"])
    async def agent_exec(body: ExecRow, authorization: Auth = None):
        """Record an execution row; an `invoke` is also the agent's claim to start the run,
        refused with 409 when the run is no longer the task's current dispatch."""
        if (denied := agent_auth(authorization)) is not None:
            return denied
        if body.kind == "invoke" and not body.claim and agent_of(engine.config.scheduler).claims_runs:
            return _err(409, f"--scheduler {engine.config.scheduler}'s agents claim their runs: "
                        "send claim: true (start the agent with the service's --scheduler)")
        task = engine.store.get_task(body.task_id)
        if (refused := exec_refused(body, task, "body.")) is not None:
            return refused
        assert task is not None
        if body.kind == "invoke" and body.claim:
            claimed = engine.handle(ev.RunClaimed(task.id, body.agent_id, body.fence))
            if not claimed.ok:
                return _err(claimed.status, claimed.message)
        exec_row(body)
        return {"ok": True}

    @app.post("/agent/report", tags=["agents"])
    async def report(body: Report, authorization: Auth = None):
        if (denied := agent_auth(authorization)) is not None:
            return denied
        if body.exec is not None:
            for name in ("task_id", "agent_id", "fence"):
                if getattr(body.exec, name) != getattr(body, name):
                    return _err(400, f"body.exec.{name}: {getattr(body.exec, name)!r} is not the "
                                f"report's {name} {getattr(body, name)!r}: a report carries the "
                                "execution row of its own run")
            if (refused := exec_refused(body.exec, engine.store.get_task(body.exec.task_id),
                                        "body.exec.")) is not None:
                return refused
            exec_row(body.exec)
        event: ev.Event
        if body.report == "plan_finished":
            event = ev.PlanFinished(body.task_id, body.agent_id, body.has_changes, body.digest, body.fence)
        elif body.report == "apply_finished":
            event = ev.ApplyFinished(body.task_id, body.agent_id, body.ok, body.fence, body.error)
        else:
            event = ev.TaskFailed(body.task_id, body.agent_id, body.error or "task failed", body.fence)
        out = engine.handle(event)
        return JSONResponse({"ok": out.ok, "message": out.message, "task_id": out.task_id},
                            status_code=out.status)

    @app.post("/agent/notice", tags=["agents"])
    async def notice(body: Notice, authorization: Auth = None):
        """The C&C `task_completed` / `task_failed`. It travels on the agent's C&C connection,
        so only a connected agent can send it (the simulated worlds drop a disconnected
        agent's notice too): from an agent not registered or disconnected it is 404, "register
        again", as a heartbeat or poll is, and never reaches the core (in seed-head it would
        release a slot). The seed's channel has no answer, and a notice of a task it does not
        know changes nothing there; so is it here: 200, with a message saying it was ignored
        (the HTTP report, not the notice, is what decides)."""
        if (denied := agent_auth(authorization)) is not None:
            return denied
        if engine.mailboxes.get(body.agent_id) is None:
            return _err(404, f"agent {body.agent_id} is not registered: register again")
        if engine.store.get_task(body.task_id) is None:
            return JSONResponse({"ok": True, "message": f"task {body.task_id} not found: notice ignored"})
        out = engine.handle(ev.CompletionNotice(body.task_id, body.agent_id, body.ok))
        return JSONResponse({"ok": out.ok, "message": out.message}, status_code=out.status)

    return app
