"""Bad input to the API: each gets a clear 4xx and nothing changes in the store or history."""

from __future__ import annotations

import re

from tests.unit.service.live import POOL_TOKEN, wait_for


def test_malformed_json_is_400_and_names_the_problem(service):
    before = service.snapshot()
    r = service.http.post("/tasks", content=b'{"workspace_id": "ws-1",', headers={
        **service.auth(), "Content-Type": "application/json"})
    assert r.status_code == 400
    assert re.match(r"^body: not valid JSON \(.+ at character \d+\); send a JSON object", r.json()["message"])
    assert service.snapshot() == before


def test_a_wrong_field_is_400_naming_field_value_and_choices(service):
    before = service.snapshot()
    r = service.http.post("/tasks", json={"workspace_id": "ws-1", "task_type": "destroy"},
                          headers=service.auth())
    assert r.status_code == 400
    msg = r.json()["message"]
    assert msg.startswith("body.task_type: ") and "'plan_and_apply'" in msg and "'destroy'" in msg
    r = service.http.post("/tasks", json={"workspace": "ws-1"}, headers=service.auth())
    assert r.status_code == 400 and "body.workspace_id: Field required" in r.json()["message"]
    assert service.snapshot() == before


def test_a_nul_character_in_stored_text_is_400_on_every_store(service):
    """PostgreSQL text cannot hold NUL: a description with one crashed the create with a 500
    on --store postgresql:// while SQLite took it. Every store's service refuses it alike."""
    before = service.snapshot()
    r = service.http.post("/tasks", json={"workspace_id": "ws-1", "description": "a\x00b"},
                          headers=service.auth())
    assert r.status_code == 400, r.text
    assert r.json()["message"].startswith("body.description: Value error, contains a NUL character")
    assert service.snapshot() == before
    r = service.http.post("/tasks/1/confirm", json={"plan_digest": "x\x00", "description": ""},
                          headers=service.auth())
    assert r.status_code == 400 and r.json()["message"].startswith("body.plan_digest: Value error")
    assert service.snapshot() == before


def test_unknown_task_and_workspace_are_404(service):
    before = service.snapshot()
    assert service.http.get("/tasks/987654").status_code == 404
    r = service.http.post("/tasks/987654/confirm", json={"plan_digest": "x"}, headers=service.auth())
    assert r.status_code == 404 and r.json()["message"] == "task 987654 not found"
    assert service.http.post("/tasks/987654/cancel", headers=service.auth()).status_code == 404
    r = service.http.post("/tasks", json={"workspace_id": "ws-nope"}, headers=service.auth())
    assert r.status_code == 404 and "ws-nope" in r.json()["message"]
    assert service.snapshot()[:3] == before[:3]  # the create is recorded as a user action only


def test_confirm_without_identity_is_401_and_changes_nothing(service, planned):
    before = service.snapshot()
    digest = service.engine.store.get_task(planned).plan_digest
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YWxpY2U6"}):
        r = service.http.post(f"/tasks/{planned}/confirm", json={"plan_digest": digest}, headers=headers)
        assert r.status_code == 401, r.text
        assert "confirm needs an identity" in r.json()["message"]
    task = service.engine.store.get_task(planned)
    assert task.status.value == "apply_pending" and task.apply_confirmed_by is None
    assert service.snapshot() == before


def test_confirm_with_a_wrong_digest_is_409_and_the_task_still_waits(service, planned):
    before = service.snapshot()
    r = service.http.post(f"/tasks/{planned}/confirm", json={"plan_digest": "sha256:stale"},
                          headers=service.auth())
    assert r.status_code == 409
    assert "does not match the current plan" in r.json()["message"]
    after = service.snapshot()
    assert after[:3] == before[:3]
    assert [row["kind"] for row in after[3][len(before[3]):]] == ["user", "confirm.rejected"]


def test_double_confirm_applies_once_and_records_the_confirmer(service, planned):
    digest = service.engine.store.get_task(planned).plan_digest
    first = service.http.post(f"/tasks/{planned}/confirm", json={"plan_digest": digest},
                              headers=service.auth())
    second = service.http.post(f"/tasks/{planned}/confirm", json={"plan_digest": digest},
                               headers=service.auth("bob-token"))
    assert first.status_code == 200
    assert second.status_code == 409  # already confirmed, or already running: never twice
    assert re.search(r"already confirmed by alice|is (running|applied), not apply_pending",
                     second.json()["message"])
    task = service.http.get(f"/tasks/{planned}").json()
    assert task["apply_confirmed_by"] == "alice" and task["confirmed_digest"] == digest
    confirms = [r for r in service.engine.history.rows
                if r["kind"] == "task.confirmed" and r["task"] == planned]
    assert [(r["data"]["user"], r["data"]["digest"]) for r in confirms] == [("alice", digest)]
    wait_for(lambda: service.engine.store.get_task(planned).status.value == "applied", 10,
             what="the apply")
    applies = [r for r in service.engine.history.rows if r["kind"] == "exec.invoke"
               and r["task"] == planned and r["data"]["action"] == "apply"]
    assert len(applies) == 1


def test_create_and_cancel_need_an_identity(service):
    before = service.snapshot()
    assert service.http.post("/tasks", json={"workspace_id": "ws-1"}).status_code == 401
    assert service.http.post("/tasks/1/cancel").status_code == 401
    assert service.http.put("/workspaces/ws-x", json={}).status_code == 401
    assert service.http.post("/faults", json={"type": "pod-kill"}).status_code == 401
    assert service.http.post("/faults/end", json={"type": "pod-kill"}).status_code == 401
    assert service.snapshot() == before


def test_agent_requests_without_the_pool_token_are_401(service):
    before = service.snapshot()
    hb = {"agent_id": "agent-pod-1"}
    assert service.http.post("/agent/heartbeat", json=hb).status_code == 401
    assert service.http.get("/agent/poll", params={"agent_id": "agent-pod-1"},
                            headers={"Authorization": "Bearer nope"}).status_code == 401
    report = {"agent_id": "agent-pod-1", "report": "apply_finished", "task_id": 1, "fence": 1}
    assert service.http.post("/agent/report", json=report,
                             headers=service.auth()).status_code == 401  # a user token is not the pool's
    r = service.http.post("/agent/register", json={"agent_id": "intruder", "pool_id": "pool-1",
                                                   "pod": "pod-1"}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and "invalid pool token" in r.json()["message"]
    assert service.snapshot() == before
    assert "intruder" not in service.engine.mailboxes.boxes


def test_an_agent_process_with_a_wrong_token_is_refused_and_exits(service):
    p = service.start_agent("pod-1", token=POOL_TOKEN + "-wrong")
    out, _ = p.communicate(timeout=20)
    assert p.returncode == 2, out  # a refused registration is bad input (docs/agent-protocol.md)
    assert b"refused registration (401): invalid pool token" in out


def test_the_seeds_agent_is_refused_by_our_scheduler_and_exits(service):
    # A live run that mixed the agents would show neither scheduler's behaviour.
    before = service.snapshot()
    p = service.start_agent("pod-1", scheduler="seed-head")
    out, _ = p.communicate(timeout=20)
    assert p.returncode == 2, out
    assert (b"refused registration (409): this agent is the one --scheduler seed-head ships with, "
            b"but this service runs --scheduler reference, whose agent is ours: start the agent "
            b"with --scheduler reference") in out
    r = service.http.post("/agent/register", json={"agent_id": "a", "pool_id": "pool-1", "pod": "pod-1",
                                                   "scheduler": "fifo"},
                          headers={"Authorization": f"Bearer {POOL_TOKEN}"})
    assert r.status_code == 409 and r.json()["message"].startswith("unknown scheduler 'fifo'")
    row = {"agent_id": "agent-pod-1", "kind": "invoke", "task_id": 1, "workspace_id": "ws-1",
           "pod": "pod-1", "action": "apply", "fence": 1, "claim": False}
    r = service.http.post("/agent/exec", json=row, headers={"Authorization": f"Bearer {POOL_TOKEN}"})
    assert r.status_code == 409 and "agents claim their runs" in r.json()["message"]
    assert service.snapshot() == before


def exec_rows_of(service, task_id: int) -> list[dict]:
    return [r for r in service.engine.history.rows if r["kind"].startswith("exec.") and r["task"] == task_id]


def test_execution_rows_of_an_unknown_task_are_404_and_not_recorded(service):
    # The history is the checker's evidence: an exec.ok of a task that never existed would
    # stand there as a commit nobody asked for.
    before = service.snapshot()
    pool = {"Authorization": f"Bearer {POOL_TOKEN}"}
    row = {"agent_id": "agent-pod-1", "task_id": 987654, "workspace_id": "ws-1", "pod": "pod-1",
           "action": "apply", "fence": 1}
    for kind in ("ok", "fail", "info"):
        r = service.http.post("/agent/exec", json={**row, "kind": kind}, headers=pool)
        assert r.status_code == 404, r.text
        assert r.json()["message"].startswith("body.task_id: task 987654 not found")
    report = {"agent_id": "agent-pod-1", "report": "apply_finished", "task_id": 987654, "fence": 1,
              "exec": {**row, "kind": "ok"}}
    r = service.http.post("/agent/report", json=report, headers=pool)
    assert r.status_code == 404, r.text
    assert exec_rows_of(service, 987654) == []
    assert service.snapshot() == before


def test_a_report_whose_execution_row_is_of_another_run_is_400(service, planned):
    before = service.snapshot()
    pool = {"Authorization": f"Bearer {POOL_TOKEN}"}
    task = service.engine.store.get_task(planned)
    execs = exec_rows_of(service, planned)
    row = {"agent_id": "agent-pod-1", "kind": "ok", "task_id": planned, "workspace_id": task.workspace_id,
           "pod": "pod-1", "action": "apply", "fence": task.fence}
    report = {"agent_id": "agent-pod-1", "report": "apply_finished", "task_id": planned,
              "fence": task.fence}
    cases = [({**row, "task_id": planned + 1000}, "body.exec.task_id"),
             ({**row, "agent_id": "agent-pod-9"}, "body.exec.agent_id"),
             ({**row, "fence": task.fence + 1}, "body.exec.fence"),
             ({**row, "workspace_id": "ws-other"}, "body.exec.workspace_id")]
    for exec_row, field in cases:
        r = service.http.post("/agent/report", json={**report, "exec": exec_row}, headers=pool)
        assert r.status_code == 400, r.text
        assert r.json()["message"].startswith(field + ": "), r.text
    r = service.http.post("/agent/exec", json={**row, "workspace_id": "ws-other"}, headers=pool)
    assert r.status_code == 400 and r.json()["message"].startswith("body.workspace_id: "), r.text
    assert exec_rows_of(service, planned) == execs
    assert service.engine.store.get_task(planned).status.value == "apply_pending"
    assert service.snapshot() == before


def test_a_static_cluster_refuses_an_agent_without_a_pid(service):
    # The static cluster follows a pod's process by the pid its agent registered with: a pod
    # registered without one would read Running after its process died.
    before = service.snapshot()
    pods = {n: (p.pid, p.phase) for n, p in service.engine.cluster.pods.items()}
    r = service.http.post("/agent/register", json={"agent_id": "no-pid", "pool_id": "pool-1", "pod": "pod-1"},
                          headers={"Authorization": f"Bearer {POOL_TOKEN}"})
    assert r.status_code == 400, r.text
    assert r.json()["message"].startswith("body.pid: "), r.text
    assert "send the agent's process id" in r.json()["message"]
    assert {n: (p.pid, p.phase) for n, p in service.engine.cluster.pods.items()} == pods
    assert "no-pid" not in service.engine.mailboxes.boxes
    assert service.snapshot() == before


def test_a_retried_row_is_recorded_once_and_a_second_run_of_the_same_dispatch_again(service, planned):
    # The seed's scheduler never moves a fence: two runs of one (task, fence, action) on one
    # agent (F7's double dispatch) are two runs in the history, told apart by the agent's run id.
    pool = {"Authorization": f"Bearer {POOL_TOKEN}"}
    task = service.engine.store.get_task(planned)
    before = exec_rows_of(service, planned)
    row = {"agent_id": "agent-pod-1", "kind": "fail", "task_id": planned, "workspace_id": task.workspace_id,
           "pod": "pod-1", "action": "plan", "fence": task.fence, "reason": "test"}
    for run in ("run-a", "run-a", "run-b"):  # run-a's row retried, then another run's
        r = service.http.post("/agent/exec", json={**row, "run": run}, headers=pool)
        assert r.status_code == 200, r.text
    added = exec_rows_of(service, planned)[len(before):]
    assert [(r["kind"], r["data"]["run"]) for r in added] == [("exec.fail", "run-a"), ("exec.fail", "run-b")]


def test_a_wrong_method_or_route_names_the_fix(service):
    before = service.snapshot()
    r = service.http.get("/agent/register")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert r.json()["message"] == "GET /agent/register: method not allowed; use POST"
    r = service.http.delete("/tasks/1")
    assert r.status_code == 405 and r.json()["message"] == "DELETE /tasks/1: method not allowed; use GET"
    r = service.http.post("/task", json={})
    assert r.status_code == 404
    assert r.json()["message"] == "POST /task: no such route; the routes are listed at /docs and /openapi.json"
    assert service.snapshot() == before


def test_a_wrong_method_on_a_path_with_several_routes_names_all_its_methods(service):
    # /tasks is GET (list) and POST (create); /workspaces/{id} is GET and PUT. A 405 must name
    # every method the path takes (RFC 9110's Allow), not only the first route's.
    before = service.snapshot()
    for method, path, allow in (("DELETE", "/tasks", "GET, POST"),
                                ("POST", "/workspaces/ws-1", "GET, PUT"),
                                ("PUT", "/tasks/1/confirm", "POST")):
        r = service.http.request(method, path)
        assert r.status_code == 405, r.text
        assert r.headers["allow"] == allow
        assert r.json() == {"ok": False, "message": f"{method} {path}: method not allowed; use {allow}"}
    assert service.snapshot() == before


def test_a_body_that_is_not_a_json_object_says_what_to_send(service):
    before = service.snapshot()
    for content, ctype in ((b'{"workspace_id": "ws-1"}', "text/plain"), (b"[1, 2]", "application/json")):
        r = service.http.post("/tasks", content=content, headers={**service.auth(), "Content-Type": ctype})
        assert r.status_code == 400, r.text
        assert r.json()["message"].endswith("send a JSON object with Content-Type: application/json"), r.text
    assert service.snapshot() == before


def test_a_request_without_a_body_says_what_to_send(service, planned):
    # `curl -XPOST .../confirm` with no -d: every field of a confirm is optional, so "body: Field
    # required" alone does not tell the user that the fix is a JSON object (even `{}`).
    before = service.snapshot()
    for path in ("/tasks", f"/tasks/{planned}/confirm", "/faults", "/faults/end"):
        for headers in (service.auth(), {**service.auth(), "Content-Type": "application/json"}):
            r = service.http.post(path, headers=headers)
            assert r.status_code == 400, r.text
            assert r.json()["message"] == ("body: missing; send a JSON object with Content-Type: "
                                           "application/json"), r.text
    assert service.snapshot() == before
    assert service.engine.store.get_task(planned).status.value == "apply_pending"


def test_a_json_value_of_the_wrong_type_is_not_coerced(service):
    # A client that sends "5" or true where the API takes an integer (or 1 where it takes a
    # boolean) has a bug; coercing it would record a fault on task 5 or an agent that runs an
    # apply it never reported.
    before = service.snapshot()
    pool = {"Authorization": f"Bearer {POOL_TOKEN}"}
    cases = [
        ("/faults", {"type": "kill-agent", "task": "5"}, service.auth(), "body.task", "integer"),
        ("/faults", {"type": "kill-agent", "task": True}, service.auth(), "body.task", "integer"),
        ("/faults", {"type": "kill-agent", "task": 5.0}, service.auth(), "body.task", "integer"),
        ("/agent/heartbeat", {"agent_id": "agent-pod-1", "plan_running": "2"}, pool,
         "body.plan_running", "integer"),
        ("/agent/heartbeat", {"agent_id": "agent-pod-1", "apply_running": 1}, pool,
         "body.apply_running", "boolean"),
        ("/agent/heartbeat", {"agent_id": "agent-pod-1", "current_tasks": ["3"]}, pool,
         "body.current_tasks.0", "integer"),
        ("/agent/notice", {"agent_id": "agent-pod-1", "task_id": "1", "ok": "yes"}, pool,
         "body.task_id", "integer"),
    ]
    for route, body, headers, field, expected in cases:
        r = service.http.post(route, json=body, headers=headers)
        assert r.status_code == 400, (route, body, r.text)
        msg = r.json()["message"]
        assert msg.startswith(f"{field}: ") and expected in msg, (route, body, msg)
    # Enum values and strings still arrive as JSON strings and are taken.
    r = service.http.post("/faults", json={"type": "kill-agent", "task": 5}, headers=service.auth())
    assert r.status_code == 201, r.text
    assert service.snapshot()[:3] == before[:3]


def test_a_completion_notice_of_an_unknown_task_is_ignored_and_says_so(service):
    # The seed's C&C task_completed has no answer and a task it does not know changes nothing
    # (seed-system.md 2.2, section 7 item 2): 200, nothing recorded, and the message says why.
    before = service.snapshot()
    rows = len(service.engine.history.rows)
    pool = {"Authorization": f"Bearer {POOL_TOKEN}"}
    r = service.http.post("/agent/notice", json={"agent_id": "agent-pod-1", "task_id": 987654},
                          headers=pool)
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "task 987654 not found: notice ignored"
    assert service.snapshot() == before
    assert [row for row in service.engine.history.rows[rows:] if row.get("task") == 987654] == []


def test_a_completion_notice_from_an_agent_not_registered_is_404_and_changes_nothing(service, planned):
    # The seed's task_completed travels on the agent's C&C connection: an agent without one
    # cannot send it (the simulated worlds drop it). As a heartbeat from it: 404, register
    # again, and neither the core nor the history sees it.
    before = service.snapshot()
    rows = len(service.engine.history.rows)
    pool = {"Authorization": f"Bearer {POOL_TOKEN}"}
    r = service.http.post("/agent/notice", json={"agent_id": "agent-ghost", "task_id": planned},
                          headers=pool)
    assert r.status_code == 404, r.text
    assert r.json() == {"ok": False, "message": "agent agent-ghost is not registered: register again"}
    hb = service.http.post("/agent/heartbeat", json={"agent_id": "agent-ghost"}, headers=pool)
    assert (hb.status_code, hb.json()["message"]) == (404, r.json()["message"])
    assert service.snapshot() == before
    assert [row for row in service.engine.history.rows[rows:] if row.get("agent") == "agent-ghost"] == []


def test_a_nul_in_an_agents_error_text_is_kept_as_a_replacement_character():
    """A failure report is never refused for its text (its task would wait): the NUL that a
    PostgreSQL store cannot hold becomes U+FFFD."""
    from scheduler.service.app import Report

    body = Report.model_validate({"agent_id": "a-1", "report": "task_failed", "task_id": 1,
                                  "ok": False, "error": "exit\x00 1"})
    assert body.error == "exit\ufffd 1"
