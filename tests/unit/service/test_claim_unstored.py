"""An apply's claim the store cannot write, end to end: the service answers 503, and our
agent, holding its state lock, asks again until the claim is stored, then applies once.

The store fails for real: the test holds SQLite's write lock on the service's own store file
(another process's writer would), so the reference's compare-and-set of `claimed_fence`
raises `StoreWriteError` after the store's busy timeout. The claim reaches the service at a
chosen moment through a one-way partition that holds it until the write lock is taken.
"""

from __future__ import annotations

import sqlite3

from tests.unit.service.live import InProcessService, wait_for
from tests.unit.service.partition import Partition


def test_a_claim_the_store_cannot_write_is_503_and_the_agent_claims_again(tmp_path):
    service = InProcessService(tmp_path, time_scale=1.0)  # no silence while writes block
    store = service.engine.store
    with store._lock:  # the store's own guard of its connection, which the service shares
        store._conn.execute("PRAGMA busy_timeout = 200")  # a blocked write fails fast
    link = Partition(service.port)
    holder: sqlite3.Connection | None = None
    try:
        service.start_agent("pod-1", server=link.url)
        wait_for(lambda: service.engine.agents_connected() == 1, 15, what="the agent to connect")
        auth = service.auth()
        task_id = service.http.post("/tasks", json={"workspace_id": "ws-1"}, headers=auth).json()["task_id"]
        wait_for(lambda: store.get_task(task_id).status.value == "apply_pending", 15, what="the plan")
        link.hold_when(b'"action":"apply"')
        r = service.http.post(f"/tasks/{task_id}/confirm",
                              json={"plan_digest": store.get_task(task_id).plan_digest}, headers=auth)
        assert r.status_code == 200, r.text
        lock = tmp_path / "backend" / "locks" / "ws-1.json"
        wait_for(lock.exists, 15, what="the agent to take the state lock (its claim then waits)")
        fence = store.get_task(task_id).fence
        holder = sqlite3.connect(tmp_path / "run" / "store.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the store's writes now fail
        link.release()

        def failed_claims() -> list[dict]:
            return [r for r in service.engine.history.rows if r["kind"] == "store.write_failed"
                    and r["task"] == task_id and r["data"].get("op") == "claim"]

        first = wait_for(failed_claims, 15, what="the claim to fail to be stored")
        assert "database is locked" in first[0]["reason"], first
        task = store.get_task(task_id)
        assert (task.status.value, task.fence, task.claimed) == ("running", fence, False)
        assert not [r for r in service.engine.history.rows
                    if r["kind"] == "exec.invoke" and r["task"] == task_id and r["data"]["action"] == "apply"]
        assert lock.exists()  # the agent holds its lock and asks again
        holder.execute("ROLLBACK")
        wait_for(lambda: store.get_task(task_id).status.value in ("applied", "failed"), 20,
                 what="the apply, once the claim is stored")
        task = store.get_task(task_id)
        assert task.status.value == "applied", task.error_message
        assert (task.fence, task.claimed_fence) == (fence, fence)
        invokes = [r for r in service.engine.history.rows
                   if r["kind"] == "exec.invoke" and r["task"] == task_id and r["data"]["action"] == "apply"]
        assert [r["data"]["fence"] for r in invokes] == [fence]  # the refused tries left no row
    finally:
        if holder is not None:
            holder.close()
        link.cut()
        service.stop()
