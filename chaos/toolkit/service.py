"""The unstuck service, as an experiment talks to it: tasks by workspace, confirms, fault rows.

Each failure is a `chaoslib.exceptions.ActivityFailed` whose message names the request and
what to check, so `chaos run` prints one line a person can act on, not a traceback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from chaoslib.exceptions import ActivityFailed

from scheduler.model import TaskStatus

DEFAULT_URL = "http://127.0.0.1:8080"
TERMINAL = frozenset(s.value for s in TaskStatus if s.terminal)


def until(check: Callable[[], bool], timeout_s: float, poll_s: float = 0.2) -> bool:
    """Call `check` until it answers True or `timeout_s` has passed; whether it did. The
    steps keep what `check` last saw, to say where things stood when they gave up."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
    return True


def _why(r: httpx.Response) -> str:
    try:
        return r.json().get("message") or r.text
    except ValueError:
        return r.text


def _fault_body(type: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A fault's body for POST /faults and POST /faults/end: the fields given, none null."""
    return {"type": type, **{k: v for k, v in fields.items() if v is not None}}


class Unanswered(ActivityFailed):
    """The service did not answer at all (nothing listens, or the connection broke): a step
    that waits through a restart retries on this one and fails on any other."""


class Service:
    def __init__(self, configuration: dict | None, secrets: dict | None = None,
                 timeout_s: float = 10.0) -> None:
        configuration = configuration or {}
        self.url = str(configuration.get("unstuck_url") or DEFAULT_URL).rstrip("/")
        self.token = (secrets or {}).get("token")
        self.http = httpx.Client(base_url=self.url, timeout=timeout_s)

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def _request(self, method: str, path: str, *, write: bool = False, **kw: Any) -> httpx.Response:
        headers = {}
        if write:
            if not self.token:
                raise ActivityFailed(
                    f"{method} {self.url}{path}: no user token; give the experiment's secret "
                    "unstuck.token (e.g. {type: env, key: UNSTUCK_USER_TOKEN}) a token the "
                    "service knows (--users-file or UNSTUCK_USER_TOKENS)")
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            return self.http.request(method, path, headers=headers, **kw)
        except httpx.HTTPError as exc:
            raise Unanswered(f"{method} {self.url}{path}: the service did not answer ({exc}); "
                                 "is `unstuck serve` running there? set unstuck_url") from None

    def _call(self, method: str, path: str, *, write: bool = False, none_on: int | None = None,
              **kw: Any) -> Any:
        r = self._request(method, path, write=write, **kw)
        if r.status_code == none_on:
            return None
        if r.status_code >= 400:
            raise ActivityFailed(f"{method} {self.url}{path}: {r.status_code} {_why(r)}")
        return r.json()

    # ----------------------------------------------------------------------- reads
    def newest_task(self, workspace: str) -> dict[str, Any]:
        tasks = self._call("GET", "/tasks", params={"workspace_id": workspace})["tasks"]
        if not tasks:
            raise ActivityFailed(f"workspace {workspace!r} has no task yet; create one first "
                                 "(chaos.toolkit.actions.create_task)")
        return max(tasks, key=lambda t: t["id"])

    def tasks(self) -> list[dict[str, Any]]:
        return self._call("GET", "/tasks")["tasks"]

    def history(self) -> list[dict[str, Any]]:
        rows, since = [], 0
        while True:
            page = self._call("GET", "/history", params={"since": since})
            rows += page["rows"]
            if page["next"] >= page["total"] or not page["rows"]:
                return rows
            since = page["next"]

    def reserved_pod(self, workspace: str) -> tuple[dict[str, Any], str]:
        """The newest task of `workspace` and the pod that holds its slot.

        From the history, not from the task record: the seed variants keep their reservations
        in memory (`k8s_pod_name` stays empty), but every variant records `slot.reserved` or
        `slot.assigned` with the pod."""
        return self._latest_pod(workspace, ("slot.assigned", "slot.reserved"),
                                "holds no slot on any pod yet; wait for it first "
                                "(chaos.toolkit.actions.wait_for_task)")

    def running_pod(self, workspace: str) -> tuple[dict[str, Any], str]:
        """The newest task of `workspace` and the pod whose agent started its latest run
        (its newest `exec.invoke` row)."""
        return self._latest_pod(workspace, ("exec.invoke",),
                                "has no run started on any agent yet; wait for it first "
                                "(chaos.toolkit.actions.wait_for_task, status running)")

    def run_pods(self, workspace: str, action: str | None = None) -> tuple[dict[str, Any], list[str]]:
        """The newest task of `workspace` and the pods its agents started runs on (its
        `exec.invoke` rows, of `action` where given), oldest first; none yet is an empty list."""
        return self._pods(workspace, ("exec.invoke",), action)

    def _pods(self, workspace: str, kinds: tuple[str, ...], action: str | None = None
              ) -> tuple[dict[str, Any], list[str]]:
        task = self.newest_task(workspace)
        return task, [r["pod"] for r in self.history()
                      if r.get("task") == task["id"] and r.get("pod") and r["kind"] in kinds
                      and action in (None, (r.get("data") or {}).get("action"))]

    def _latest_pod(self, workspace: str, kinds: tuple[str, ...], missing: str
                    ) -> tuple[dict[str, Any], str]:
        """The newest task of `workspace` and the pod of its newest history row of `kinds`;
        fails with `missing` after the task's id and status when it has none."""
        task, pods = self._pods(workspace, kinds)
        if not pods:
            raise ActivityFailed(f"task {task['id']} of {workspace!r} ({task['status']}) {missing}")
        return task, pods[-1]

    def ready(self) -> bool:
        """Whether the service answers /readyz with 200 now; no answer is not ready."""
        try:
            return self.http.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def connected_pods(self) -> set[str]:
        """The pods whose agents the scheduler counts as connected now."""
        return {a["pod"] for pool in self._call("GET", "/pools")["pools"] for a in pool["agents"]}

    def last_fault(self) -> dict[str, Any]:
        faults = [r for r in self.history() if r["kind"] == "fault"]
        if not faults:
            raise ActivityFailed("no fault has been recorded yet; inject one first "
                                 "(target_reserved_pod, lose_node_of_reserved_pod)")
        return faults[-1]

    # ----------------------------------------------------------------------- writes
    def create(self, workspace: str, task_type: str) -> dict[str, Any]:
        return self._call("POST", "/tasks", write=True,
                          json={"workspace_id": workspace, "task_type": task_type})["task"]

    def confirm(self, task: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"/tasks/{task['id']}/confirm", write=True,
                          json={"plan_digest": task["plan_digest"]})["task"]

    def click_confirm(self, task: dict[str, Any]) -> int:
        """One click of Confirm Apply: the answer's status, a refusal included (409 already
        confirmed, or 400 "task is running" from the seed), as a person's second click gets
        one. Only an answer that says the step itself is wrong (401 or 403: the token; 404:
        the URL or task) fails it."""
        path = f"/tasks/{task['id']}/confirm"
        r = self._request("POST", path, write=True, json={"plan_digest": task["plan_digest"]})
        if r.status_code in (401, 403, 404):
            raise ActivityFailed(f"POST {self.url}{path}: {r.status_code} {_why(r)}")
        return r.status_code

    def record_fault(self, type: str, **fields: Any) -> int:
        return self._call("POST", "/faults", write=True, json=_fault_body(type, fields))["seq"]

    def end_fault(self, type: str, **fields: Any) -> int | None:
        """End the oldest fault in force that `record_fault(type, **fields)` announced: the
        seq of the fault ended, or None when none is (a rollback after a method that failed
        before its fault step)."""
        out = self._call("POST", "/faults/end", write=True, none_on=409, json=_fault_body(type, fields))
        return None if out is None else out["ended"]

    # ----------------------------------------------------------------------- waiting
    def wait(self, workspace: str, statuses: set[str], timeout_s: float) -> dict[str, Any]:
        seen: list[dict[str, Any]] = []

        def reached() -> bool:
            seen.append(self.newest_task(workspace))
            return seen[-1]["status"] in statuses

        done = until(reached, timeout_s)
        task = seen[-1]
        if not done:
            raise ActivityFailed(f"task {task['id']} of {workspace!r} is {task['status']}, not "
                                 f"{' or '.join(sorted(statuses))}, after {timeout_s:g} s")
        return task
