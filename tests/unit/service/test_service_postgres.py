"""The service on PostgreSQL (`--store postgresql://...`): a task planned, confirmed and
applied by a real agent, and still there for the next scheduler process."""

from __future__ import annotations

import pytest

from scheduler.stores.postgres import PostgresStore
from tests.unit.service.live import InProcessService, wait_for
from tests.unit.stores.pg import Server


@pytest.fixture(scope="module")
def pg():
    server = Server()
    if server.url is None:
        pytest.skip(server.error)
    yield server
    server.stop()


def test_a_task_is_applied_through_a_postgres_store(tmp_path, pg):
    url = pg.schema_url()
    svc = InProcessService(tmp_path, store_url=url)
    try:
        assert isinstance(svc.engine.store, PostgresStore)
        svc.start_agent("pod-1")
        task_id = svc.http.post("/tasks", json={"workspace_id": "ws-1"}, headers=svc.auth()).json()["task_id"]
        wait_for(lambda: svc.engine.store.get_task(task_id).status.value == "apply_pending", 15, what="plan")
        digest = svc.engine.store.get_task(task_id).plan_digest
        r = svc.http.post(f"/tasks/{task_id}/confirm", json={"plan_digest": digest}, headers=svc.auth())
        assert r.status_code == 200
        wait_for(lambda: svc.engine.store.get_task(task_id).status.value == "applied", 15, what="apply")
    finally:
        svc.stop()
    with PostgresStore(url) as store:
        task = store.get_task(task_id)
        assert task.status.value == "applied" and task.apply_confirmed_by == "alice"
        assert task.confirmed_digest == digest
