"""The PostgreSQL store: the same contract as `SqliteStore`, for a shared database server.

Semantics
---------
Exactly `MemoryStore`'s (the contract suite in tests/unit/stores/ runs against all three):
reads return fresh records, lists are ordered by key, `save_task` is a whole-row upsert
that bumps the stored version, and `cas_task` is one
`UPDATE tasks SET ..., version = version + 1 WHERE id = %s AND version = %s`. PostgreSQL
re-evaluates the WHERE clause on the row it locked, so under READ COMMITTED two racing
compare-and-sets on one version cannot both succeed, whichever process they come from.
Records are encoded by the SQLite store's codecs (enums as their strings, booleans 0/1,
times as seconds), so a row reads the same in either database.

Errors
------
A write that fails in the server (connection lost, serialization, disk full) is rolled
back and raised as `StoreWriteError`, so the core handles it as any failed write; the
injected failure plan (`fail_next_writes`, `fail_writes`) is consulted first, before any
SQL, as in the other stores. Opening an unreachable or unusable database raises
`StoreOpenError` naming the URL (without its password) and the fix.

Migrations
----------
`scheduler.stores.migrations.postgres.MIGRATIONS`, applied at open, one transaction each,
under a transaction-scoped advisory lock so two schedulers starting at once apply each
migration once; recorded in `schema_version`. A newer schema is refused.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from scheduler.model import Task, TaskStatus
from scheduler.ports import StoreWriteError
from scheduler.stores.failures import FailureInjection, WriteFailures
from scheduler.stores.migrations import Migration
from scheduler.stores.migrations import postgres as pg_migrations
from scheduler.stores.sqlite import (
    _AGENTS,
    _PLANS,
    _POOLS,
    _TABLES,
    _TASKS,
    _WORKSPACES,
    SchemaTooNewError,
    StoreOpenError,
    _Table,
)

MIGRATION_LOCK = 0x756E737475636B  # "unstuck": the advisory lock key of migrations


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def libpq_url(url: str) -> str:
    """`postgresql+psycopg://` (SQLAlchemy's spelling) and `postgres://` -> `postgresql://`."""
    scheme, sep, rest = url.partition("://")
    if scheme.startswith("postgresql+") or scheme == "postgres":
        return "postgresql://" + rest
    return url


class _Sql:
    """The statements of one table, in psycopg's `%s` placeholder style."""

    def __init__(self, table: _Table) -> None:
        cols = table.columns
        self.select = f"SELECT {', '.join(cols)} FROM {table.name}"
        self.insert = (f"INSERT INTO {table.name} ({', '.join(cols)}) "
                       f"VALUES ({', '.join('%s' for _ in cols)})")
        self.table = table

    def upsert(self, **set_exprs: str) -> str:
        t = self.table
        sets = {c: f"EXCLUDED.{c}" for c in t.columns if c != t.key} | set_exprs
        return (f"{self.insert} ON CONFLICT ({t.key}) DO UPDATE SET "
                + ", ".join(f"{c} = {e}" for c, e in sets.items()))


_SQL = {t.name: _Sql(t) for t in _TABLES}
_SAVE_TASK = _SQL["tasks"].upsert(version="tasks.version + 1")


class PostgresStore(FailureInjection):
    def __init__(self, url: str, *, migrations: tuple[Migration, ...] = pg_migrations.MIGRATIONS,
                 connect_timeout_s: float = 5.0) -> None:
        self.url = url
        self.failures = WriteFailures()
        self._lock = threading.Lock()
        try:
            self._conn = psycopg.connect(libpq_url(url), autocommit=True,
                                         connect_timeout=max(1, int(connect_timeout_s)))
        except psycopg.Error as exc:
            raise StoreOpenError(
                f"{redacted(url)}: cannot connect to PostgreSQL: {str(exc).strip()}; check the "
                "host, port, database and credentials in the URL, and that the server runs"
            ) from None
        try:
            _migrate(self._conn, redacted(url), migrations)
            _check_columns(self._conn, redacted(url))
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._lock:
            return _current_version(self._conn)

    # Transactions.

    @contextmanager
    def _write(self, what: str, *, inject: bool = True) -> Iterator[psycopg.Connection]:
        with self._lock:
            if inject:
                self.failures.check(what)
            try:
                with self._conn.transaction():
                    yield self._conn
            except (psycopg.OperationalError, psycopg.errors.SerializationFailure,
                    psycopg.errors.DeadlockDetected) as exc:
                raise StoreWriteError(
                    f"postgres write failed ({what}) on {redacted(self.url)}: {str(exc).strip()}"
                ) from exc

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    # Tasks.

    def next_task_id(self) -> int:
        return self._read("SELECT value FROM counters WHERE name = 'next_task_id'")[0][0]

    def insert_task(self, task: Task) -> None:
        sql = _SQL["tasks"].insert + " ON CONFLICT (id) DO NOTHING"
        with self._write("insert task") as conn:
            if conn.execute(sql, _TASKS.encode(task)).rowcount != 1:
                raise ValueError(f"task {task.id} already exists")
            conn.execute("UPDATE counters SET value = GREATEST(value, %s) WHERE name = 'next_task_id'",
                         (task.id + 1,))

    def get_task(self, task_id: int) -> Task | None:
        rows = self._read(f"{_SQL['tasks'].select} WHERE id = %s", (task_id,))
        return _TASKS.decode(rows[0]) if rows else None

    def list_tasks(self, *, workspace_id: str | None = None,
                   statuses: Iterable[TaskStatus] | None = None) -> list[Task]:
        where: list[str] = []
        params: list[Any] = []
        if workspace_id is not None:
            where.append("workspace_id = %s")
            params.append(workspace_id)
        if statuses is not None:
            wanted = sorted({TaskStatus(s).value for s in statuses})
            if not wanted:
                return []
            where.append("status = ANY(%s)")
            params.append(wanted)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._read(f"{_SQL['tasks'].select}{clause} ORDER BY id", params)
        return [_TASKS.decode(r) for r in rows]

    def save_task(self, task: Task) -> None:
        row = _TASKS.encode(dataclasses.replace(task, version=task.version + 1))
        with self._write("save task") as conn:
            conn.execute(_SAVE_TASK, row)

    def cas_task(self, task_id: int, expected_version: int, **changes) -> Task | None:
        changes.pop("version", None)  # the store owns version, as in MemoryStore
        with self._write("cas task") as conn:
            unknown = sorted(set(changes) - set(_TASKS.columns))
            if unknown:
                raise TypeError(f"cas_task: Task has no field(s) {', '.join(unknown)}")
            if "id" in changes:
                raise ValueError(f"cas_task cannot change a task's id (task {task_id})")
            sets = [f"{c} = %s" for c in changes] + ["version = version + 1"]
            params = [_TASKS.encode_field(c, v) for c, v in changes.items()]
            row = conn.execute(
                f"UPDATE tasks SET {', '.join(sets)} WHERE id = %s AND version = %s "
                f"RETURNING {', '.join(_TASKS.columns)}",
                (*params, task_id, expected_version)).fetchone()
        return _TASKS.decode(row) if row is not None else None

    # Workspaces.

    def put_workspace(self, workspace) -> None:
        self._upsert(_WORKSPACES, workspace, "put workspace", inject=False)

    def get_workspace(self, workspace_id: str):
        return self._get(_WORKSPACES, workspace_id)

    def list_workspaces(self):
        return self._list(_WORKSPACES)

    def save_workspace(self, workspace) -> None:
        self._upsert(_WORKSPACES, workspace, "save workspace")

    # Pools, agents, plans.

    def put_pool(self, pool) -> None:
        self._upsert(_POOLS, pool, "put pool", inject=False)

    def get_pool(self, pool_id: str):
        return self._get(_POOLS, pool_id)

    def list_pools(self):
        return self._list(_POOLS)

    def put_agent(self, agent) -> None:
        self._upsert(_AGENTS, agent, "put agent")

    def get_agent(self, agent_id: str):
        return self._get(_AGENTS, agent_id)

    def list_agents(self, pool_id: str | None = None):
        if pool_id is None:
            return self._list(_AGENTS)
        rows = self._read(f"{_SQL['agents'].select} WHERE pool_id = %s ORDER BY id", (pool_id,))
        return [_AGENTS.decode(r) for r in rows]

    def delete_agent(self, agent_id: str) -> None:
        with self._write("delete agent", inject=False) as conn:
            conn.execute("DELETE FROM agents WHERE id = %s", (agent_id,))

    def put_plan(self, artifact) -> None:
        self._upsert(_PLANS, artifact, "put plan")

    def get_plan(self, task_id: int):
        return self._get(_PLANS, task_id)

    # Shared shapes.

    def _upsert(self, table: _Table, obj: Any, what: str, *, inject: bool = True) -> None:
        row = table.encode(obj)
        with self._write(what, inject=inject) as conn:
            conn.execute(_SQL[table.name].upsert(), row)

    def _get(self, table: _Table, key: Any) -> Any:
        rows = self._read(f"{_SQL[table.name].select} WHERE {table.key} = %s", (key,))
        return table.decode(rows[0]) if rows else None

    def _list(self, table: _Table) -> list[Any]:
        rows = self._read(f"{_SQL[table.name].select} ORDER BY {table.key}")
        return [table.decode(r) for r in rows]


# Opening: migrations and the schema check.


def _current_version(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]


def _migrate(conn: psycopg.Connection, where: str, migrations: tuple[Migration, ...]) -> None:
    supported = migrations[-1].version if migrations else 0
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}
        if tables and "schema_version" not in tables:
            raise StoreOpenError(
                f"{where}: not an unstuck store: schema {conn.execute('SELECT current_schema()').fetchone()[0]} "
                f"has tables {', '.join(sorted(tables))} but no schema_version table; point the URL "
                "at an empty database (or schema, with options=-csearch_path=NAME)")
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, "
                     "description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")
        found = _current_version(conn)
    if found > supported:
        raise SchemaTooNewError(
            f"{where}: schema version {found} is newer than this unstuck supports ({supported}); "
            "it was written by a newer unstuck. Upgrade unstuck, or use another database")
    for migration in migrations[found:]:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            if _current_version(conn) < migration.version:
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version, description, applied_at) "
                             "VALUES (%s, %s, %s)", (migration.version, migration.description, time.time()))


def _check_columns(conn: psycopg.Connection, where: str) -> None:
    version = _current_version(conn)
    for table in _TABLES:
        have = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s", (table.name,))}
        missing = [c for c in table.columns if c not in have]
        if missing:
            raise StoreOpenError(
                f"{where}: table {table.name} (schema version {version}) has no column for "
                f"{table.record.__name__}.{', '.join(missing)}; add a migration to "
                "scheduler/stores/migrations/postgres.py")
