"""`GET /pools` shows what the scheduler believes each agent runs, next to what polls."""

from __future__ import annotations

from tests.unit.service.live import InProcessService, believed, wait_for


def heard_after(svc: InProcessService, task: int, kind: str) -> dict:
    """The seed's view of agent-pod-1 from a heartbeat sent after `task`'s latest `kind` row
    (a dispatch sets the flags itself; only a later heartbeat shows what the agent says).

    The second heartbeat received after the row: the first may have been sent before it and
    still count the run (seen in CI under load, received 0.05 s after the plan ended), while
    the agent sends each heartbeat only once the last one is answered."""
    first: list[float] = []

    def fresh():
        rows = [r for r in svc.engine.history.rows if r["task"] == task and r["kind"] == kind]
        view = believed(svc.http)["agent-pod-1"]
        heard = view["last_heartbeat"] or 0
        if not rows or heard <= rows[-1]["t"]:
            return None
        if not first:
            first.append(heard)
        return view if heard > first[0] else None
    return wait_for(fresh, 5, what=f"a second heartbeat after task {task}'s {kind}")


def test_the_seed_shows_its_heartbeat_fed_view_of_each_agent(tmp_path):
    svc = InProcessService(tmp_path, "seed")
    status = lambda t: svc.engine.store.get_task(t).status.value  # noqa: E731
    try:
        svc.start_agent(plan_s=2.0, apply_s=2.0)  # room for two heartbeats while each runs
        wait_for(lambda: svc.engine.agents_connected() == 1, 15, what="the agent to connect")
        r = svc.http.post("/tasks", json={"workspace_id": "ws-1"}, headers=svc.auth())
        assert r.status_code == 201, r.text
        task = r.json()["task_id"]
        # A plan_and_apply's plan phase counts as apply_running, not plan_running (§2.2).
        view = heard_after(svc, task, "exec.invoke")
        assert status(task) == "running"
        assert (view["apply_running"], view["plan_running"]) == (True, 0), view
        wait_for(lambda: status(task) == "apply_pending", 10, what="the task to plan")
        view = heard_after(svc, task, "task.transition")
        assert (view["apply_running"], view["plan_running"], view["plan_limit"]) == (False, 0, 3), view
        digest = svc.engine.store.get_task(task).plan_digest
        assert svc.http.post(f"/tasks/{task}/confirm", json={"plan_digest": digest},
                             headers=svc.auth()).status_code == 200
        wait_for(lambda: [r for r in svc.engine.history.rows if r["task"] == task
                          and r["kind"] == "exec.invoke" and r["data"]["action"] == "apply"], 5, what="the apply")
        assert heard_after(svc, task, "exec.invoke")["apply_running"] is True
        wait_for(lambda: status(task) == "applied", 10, what="the apply to end")
        assert heard_after(svc, task, "task.transition")["apply_running"] is False
    finally:
        svc.stop()


def test_the_reference_has_no_such_memory(service):
    agents = service.http.get("/pools").json()["pools"][0]["agents"]
    assert agents and all(a["polling"] and a["memory"] is None for a in agents), agents
