"""The SQLite schema, as an ordered list of migrations (see the package docstring).

Columns mirror the record fields of `scheduler.model` one for one, with the field's name.
Enums are stored as their string values (the strings the real system stores), booleans as
0/1, times as REAL seconds, and `Pool.freeze_windows` as a JSON list of `[start_s, end_s]`
pairs. `counters.next_task_id` is kept apart from `MAX(tasks.id)` on purpose: like the
in-memory store (and a PostgreSQL sequence), only `insert_task` advances it, not a
`save_task` that happens to create a row.
"""

from __future__ import annotations

from scheduler.stores.migrations import Migration, check_sequence

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        description="tasks, workspaces, pools, agents, plans and the task id counter",
        statements=(
            """
            CREATE TABLE tasks (
                id INTEGER PRIMARY KEY,
                workspace_id TEXT NOT NULL,
                task_type TEXT NOT NULL,
                status TEXT NOT NULL,
                stage TEXT NOT NULL,
                execution_mode TEXT NOT NULL,
                created_by TEXT,
                description TEXT NOT NULL,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                started_at REAL,
                completed_at REAL,
                agent_id TEXT,
                k8s_pod_name TEXT NOT NULL,
                slot_id INTEGER,
                retry_count INTEGER NOT NULL,
                max_retries INTEGER NOT NULL,
                plan_task_id INTEGER,
                plan_digest TEXT,
                has_changes INTEGER,
                apply_confirmed_by TEXT,
                apply_confirmed_at REAL,
                confirmed_digest TEXT,
                apply_description TEXT NOT NULL,
                error_message TEXT NOT NULL,
                version INTEGER NOT NULL,
                fence INTEGER NOT NULL,
                attempts INTEGER NOT NULL
            )
            """,
            "CREATE INDEX tasks_by_workspace ON tasks (workspace_id, id)",
            "CREATE INDEX tasks_by_status ON tasks (status, id)",
            """
            CREATE TABLE workspaces (
                id TEXT NOT NULL PRIMARY KEY,
                pool_id TEXT,
                execution_mode TEXT NOT NULL,
                is_locked INTEGER NOT NULL,
                locked_by TEXT,
                lock_reason TEXT NOT NULL,
                locked_at REAL,
                lock_task_id INTEGER
            )
            """,
            """
            CREATE TABLE pools (
                id TEXT NOT NULL PRIMARY KEY,
                min_replicas INTEGER NOT NULL,
                max_replicas INTEGER NOT NULL,
                freeze_windows TEXT NOT NULL,
                one_time_unfreeze_until REAL,
                pool_type TEXT NOT NULL,
                manager TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE agents (
                id TEXT NOT NULL PRIMARY KEY,
                pool_id TEXT NOT NULL,
                name TEXT NOT NULL,
                status TEXT NOT NULL,
                last_ping_at REAL NOT NULL
            )
            """,
            "CREATE INDEX agents_by_pool ON agents (pool_id, id)",
            """
            CREATE TABLE plans (
                task_id INTEGER PRIMARY KEY,
                digest TEXT NOT NULL,
                created_at REAL NOT NULL,
                workspace_id TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE counters (
                name TEXT NOT NULL PRIMARY KEY,
                value INTEGER NOT NULL
            )
            """,
            "INSERT INTO counters (name, value) VALUES ('next_task_id', 1)",
        ),
    ),
    Migration(
        version=2,
        description="tasks.claimed_fence: the fence of the last apply run its agent claimed",
        statements=(
            "ALTER TABLE tasks ADD COLUMN claimed_fence INTEGER",
            # Every run dispatched before counts as claimed: a running apply may have begun,
            # and one read as never begun would be sent again.
            "UPDATE tasks SET claimed_fence = fence",
        ),
    ),
)

check_sequence(MIGRATIONS)

LATEST_VERSION = MIGRATIONS[-1].version
