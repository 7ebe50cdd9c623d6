"""The PostgreSQL schema, as an ordered list of migrations (see the package docstring).

The same tables and columns as `migrations.sqlite`, one for one, so both stores encode a
record the same way (enums as their strings, booleans as 0/1, times as seconds). Types are
PostgreSQL's: BIGINT for integers, DOUBLE PRECISION for times, TEXT for strings.
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
                id BIGINT PRIMARY KEY,
                workspace_id TEXT NOT NULL,
                task_type TEXT NOT NULL,
                status TEXT NOT NULL,
                stage TEXT NOT NULL,
                execution_mode TEXT NOT NULL,
                created_by TEXT,
                description TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                started_at DOUBLE PRECISION,
                completed_at DOUBLE PRECISION,
                agent_id TEXT,
                k8s_pod_name TEXT NOT NULL,
                slot_id BIGINT,
                retry_count BIGINT NOT NULL,
                max_retries BIGINT NOT NULL,
                plan_task_id BIGINT,
                plan_digest TEXT,
                has_changes SMALLINT,
                apply_confirmed_by TEXT,
                apply_confirmed_at DOUBLE PRECISION,
                confirmed_digest TEXT,
                apply_description TEXT NOT NULL,
                error_message TEXT NOT NULL,
                version BIGINT NOT NULL,
                fence BIGINT NOT NULL,
                attempts BIGINT NOT NULL
            )
            """,
            "CREATE INDEX tasks_by_workspace ON tasks (workspace_id, id)",
            "CREATE INDEX tasks_by_status ON tasks (status, id)",
            """
            CREATE TABLE workspaces (
                id TEXT PRIMARY KEY,
                pool_id TEXT,
                execution_mode TEXT NOT NULL,
                is_locked SMALLINT NOT NULL,
                locked_by TEXT,
                lock_reason TEXT NOT NULL,
                locked_at DOUBLE PRECISION,
                lock_task_id BIGINT
            )
            """,
            """
            CREATE TABLE pools (
                id TEXT PRIMARY KEY,
                min_replicas BIGINT NOT NULL,
                max_replicas BIGINT NOT NULL,
                freeze_windows TEXT NOT NULL,
                one_time_unfreeze_until DOUBLE PRECISION,
                pool_type TEXT NOT NULL,
                manager TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE agents (
                id TEXT PRIMARY KEY,
                pool_id TEXT NOT NULL,
                name TEXT NOT NULL,
                status TEXT NOT NULL,
                last_ping_at DOUBLE PRECISION NOT NULL
            )
            """,
            "CREATE INDEX agents_by_pool ON agents (pool_id, id)",
            """
            CREATE TABLE plans (
                task_id BIGINT PRIMARY KEY,
                digest TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                workspace_id TEXT NOT NULL
            )
            """,
            "CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
            "INSERT INTO counters (name, value) VALUES ('next_task_id', 1)",
        ),
    ),
    Migration(
        version=2,
        description="tasks.claimed_fence: the fence of the last apply run its agent claimed",
        statements=(
            "ALTER TABLE tasks ADD COLUMN claimed_fence BIGINT",
            # Every run dispatched before counts as claimed: a running apply may have begun,
            # and one read as never begun would be sent again.
            "UPDATE tasks SET claimed_fence = fence",
        ),
    ),
)

check_sequence(MIGRATIONS)

LATEST_VERSION = MIGRATIONS[-1].version
