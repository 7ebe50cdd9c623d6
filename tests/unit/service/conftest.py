"""Fixtures of the service tests: one in-process service with one real agent process."""

from __future__ import annotations

import pytest

from tests.unit.service.live import InProcessService, wait_for


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    svc = InProcessService(tmp_path_factory.mktemp("service"))
    svc.start_agent()
    wait_for(lambda: svc.engine.agents_connected() == 1, 15, what="the agent to connect")
    yield svc
    svc.stop()


@pytest.fixture
def planned(service):
    """A fresh plan_and_apply task in apply_pending (its own workspace, planned by the agent)."""
    planned.n = getattr(planned, "n", 0) + 1
    ws = f"ws-planned-{planned.n}"
    assert service.http.put(f"/workspaces/{ws}", json={}, headers=service.auth()).status_code == 201
    r = service.http.post("/tasks", json={"workspace_id": ws}, headers=service.auth())
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]
    wait_for(lambda: service.engine.store.get_task(task_id).status.value == "apply_pending", 10,
             what=f"task {task_id} to plan")
    yield task_id
    # One pod: free its plan_and_apply slot (the reservation) for the next test.
    service.http.post(f"/tasks/{task_id}/cancel", headers=service.auth())
    wait_for(lambda: service.engine.store.get_task(task_id).terminal, 10, what=f"task {task_id} to end")
