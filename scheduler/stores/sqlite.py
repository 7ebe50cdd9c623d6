"""The durable store of the live service: one SQLite file, compare-and-set on `Task.version`.

Semantics
---------
Exactly those of `scheduler.stores.memory.MemoryStore`, which is the reference: reads
return fresh records (so callers can never change stored state behind the store's back),
lists are ordered by key, `save_task` is the seed's whole-row GORM `Save` (last writer
wins, `version` bumped), `cas_task` is one `UPDATE ... WHERE id = ? AND version = ?`
inside a write transaction, and the same writes consult the same `WriteFailures` plan, so
an injected failure raises `StoreWriteError` before any SQL runs. The contract suite in
`tests/unit/stores/` runs one set of tests against both stores, plus a differential
Hypothesis test, to keep it that way.

Durability
----------
WAL journal with `synchronous=FULL`: every commit is fsynced to the WAL before `cas_task`
returns. With `NORMAL` a power cut may roll back the last few commits. For a scheduler
that is worse than slow: a dispatch whose fence epoch was committed, sent to an agent
and then forgotten would be re-issued with the same fence, and fencing only works if
an epoch is never handed out twice. Scheduler write rates are tens per second, so an fsync
per commit costs little (docs/stores.md has the measured figure).

Concurrency
-----------
One connection per store object, opened with `check_same_thread=False` and guarded by
a lock, so a threaded HTTP service can share one store. Every write runs in
`BEGIN IMMEDIATE`, which takes SQLite's write lock up front. A deferred transaction that
reads and then writes can fail with SQLITE_BUSY at once, without waiting; an immediate
one waits up to `timeout_s` for the lock. Other processes, or other store objects on the
same file, see each other's commits, and a stale compare-and-set loses. A write that
still fails (locked past the timeout, disk full, read-only file) raises
`StoreWriteError`, naming the file and the operation, and the transaction is rolled back.

Migrations
----------
`scheduler.stores.migrations.sqlite.MIGRATIONS` is applied at open, one transaction per
migration, each recorded in `schema_version`. Re-opening is a no-op. A file from a newer
unstuck is refused (`SchemaTooNewError`) rather than written with the wrong schema.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import threading
import time
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any

from scheduler.model import AgentRow, FreezeWindow, PlanArtifact, Pool, Task, TaskStatus, Workspace
from scheduler.ports import StoreWriteError
from scheduler.stores.failures import FailureInjection, WriteFailures
from scheduler.stores.migrations import Migration
from scheduler.stores.migrations import sqlite as sqlite_migrations


class StoreOpenError(Exception):
    """The file cannot be used as a store: not SQLite, someone else's schema, or out of date."""


class SchemaTooNewError(StoreOpenError):
    """The file was migrated by a newer unstuck than this one."""


# Row codecs: record field <-> column value, derived from the dataclass type hints.


def _identity(value: Any) -> Any:
    return value


def _field_codec(hint: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """(encode, decode) for one field type; `X | None` passes None through both ways."""
    nullable = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(hint))
        if len(args) != 1:
            raise TypeError(f"no column codec for union type {hint!r}")
        hint = args[0]

    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]
    if isinstance(hint, type) and issubclass(hint, Enum):
        enum_type = hint
        encode, decode = (lambda v: enum_type(v).value), enum_type
    elif hint is bool:
        encode, decode = int, bool
    elif typing.get_origin(hint) is tuple and typing.get_args(hint)[0] is FreezeWindow:
        encode = _encode_windows
        decode = _decode_windows
    elif hint in (int, float, str):
        encode = decode = _identity
    else:
        raise TypeError(f"no column codec for field type {hint!r}")

    if not nullable:
        return encode, decode
    return (
        lambda v: None if v is None else encode(v),
        lambda v: None if v is None else decode(v),
    )


def _encode_windows(windows: tuple[FreezeWindow, ...]) -> str:
    return json.dumps([[w.start_s, w.end_s] for w in windows])


def _decode_windows(text: str) -> tuple[FreezeWindow, ...]:
    return tuple(FreezeWindow(start, end) for start, end in json.loads(text))


class _Table:
    """One record type stored in one table keyed by one of its fields."""

    def __init__(self, name: str, record: type, key: str) -> None:
        hints = typing.get_type_hints(record)
        self.name = name
        self.record = record
        self.key = key
        self.columns = tuple(f.name for f in dataclasses.fields(record))
        codecs = [_field_codec(hints[c]) for c in self.columns]
        self._encoders = {c: enc for c, (enc, _) in zip(self.columns, codecs, strict=True)}
        self._decoders = [dec for _, dec in codecs]
        self.select = f"SELECT {', '.join(self.columns)} FROM {name}"
        self.insert = (
            f"INSERT INTO {name} ({', '.join(self.columns)}) "
            f"VALUES ({', '.join('?' for _ in self.columns)})"
        )
        self.upsert = self.upsert_sql()

    def upsert_sql(self, **set_exprs: str) -> str:
        """INSERT, or on a key conflict overwrite every column (`set_exprs` overrides some)."""
        sets = {c: f"excluded.{c}" for c in self.columns if c != self.key} | set_exprs
        return f"{self.insert} ON CONFLICT ({self.key}) DO UPDATE SET " + ", ".join(
            f"{c} = {expr}" for c, expr in sets.items()
        )

    def encode(self, obj: Any) -> tuple[Any, ...]:
        return tuple(self._encoders[c](getattr(obj, c)) for c in self.columns)

    def encode_field(self, column: str, value: Any) -> Any:
        return self._encoders[column](value)

    def decode(self, row: tuple[Any, ...]) -> Any:
        values = {c: dec(v) for c, dec, v in zip(self.columns, self._decoders, row, strict=True)}
        return self.record(**values)


_TASKS = _Table("tasks", Task, "id")
_WORKSPACES = _Table("workspaces", Workspace, "id")
_POOLS = _Table("pools", Pool, "id")
_AGENTS = _Table("agents", AgentRow, "id")
_PLANS = _Table("plans", PlanArtifact, "task_id")
_TABLES = (_TASKS, _WORKSPACES, _POOLS, _AGENTS, _PLANS)

# save_task: a whole-row overwrite, except that version is the stored one plus one (or
# the caller's plus one for a new row), as MemoryStore.save_task does.
_SAVE_TASK = _TASKS.upsert_sql(version="tasks.version + 1")


class SqliteStore(FailureInjection):
    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout_s: float = 5.0,
        migrations: tuple[Migration, ...] = sqlite_migrations.MIGRATIONS,
    ) -> None:
        """Open (creating if needed) and migrate the store at `path`.

        `migrations` is for tests of the upgrade path; the service uses the default.
        """
        self.path = os.fspath(path)
        self.failures = WriteFailures()
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreOpenError(
                f"{self.path}: cannot open as an unstuck SQLite store: {exc}; "
                "check that the directory exists and is writable"
            ) from exc
        try:
            self._configure()
            _migrate(self._conn, self.path, migrations)
            _check_columns(self._conn, self.path)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreOpenError(
                f"{self.path}: cannot open as an unstuck SQLite store: {exc}; "
                "check the path points at a store file (or a new file) that is writable"
            ) from exc
        except BaseException:
            self._conn.close()
            raise

    def _configure(self) -> None:
        mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal" and self.path != ":memory:":
            raise StoreOpenError(
                f"{self.path}: SQLite refused WAL journal mode (got {mode!r}); "
                "put the store on a local filesystem"
            )
        self._conn.execute("PRAGMA synchronous=FULL")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._lock:
            return _current_version(self._conn)

    # Transactions.

    @contextmanager
    def _write(self, what: str, *, inject: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction: injected failure first, then BEGIN IMMEDIATE ... COMMIT.

        `inject=False` is for the writes MemoryStore does not submit to fault injection
        (setup puts, agent deletes), so that a failure plan hits the same writes in both.

        Any sqlite3.OperationalError (locked past the timeout, disk full, read-only) is
        rolled back and raised as StoreWriteError so the core handles it like any other
        failed write; other exceptions are rolled back and propagate unchanged.
        """
        with self._lock:
            if inject:
                self.failures.check(what)
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                finally:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
            except sqlite3.OperationalError as exc:
                raise StoreWriteError(
                    f"sqlite write failed ({what}) on {self.path}: {exc}"
                ) from exc

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    # Tasks.

    def next_task_id(self) -> int:
        return self._read("SELECT value FROM counters WHERE name = 'next_task_id'")[0][0]

    def insert_task(self, task: Task) -> None:
        with self._write("insert task") as conn:
            if conn.execute("SELECT 1 FROM tasks WHERE id = ?", (task.id,)).fetchone():
                raise ValueError(f"task {task.id} already exists")
            conn.execute(_TASKS.insert, _TASKS.encode(task))
            conn.execute(
                "UPDATE counters SET value = MAX(value, ?) WHERE name = 'next_task_id'",
                (task.id + 1,),
            )

    def get_task(self, task_id: int) -> Task | None:
        rows = self._read(f"{_TASKS.select} WHERE id = ?", (task_id,))
        return _TASKS.decode(rows[0]) if rows else None

    def list_tasks(
        self,
        *,
        workspace_id: str | None = None,
        statuses: Iterable[TaskStatus] | None = None,
    ) -> list[Task]:
        where: list[str] = []
        params: list[Any] = []
        if workspace_id is not None:
            where.append("workspace_id = ?")
            params.append(workspace_id)
        if statuses is not None:
            wanted = sorted({TaskStatus(s).value for s in statuses})
            if not wanted:
                return []
            where.append(f"status IN ({', '.join('?' for _ in wanted)})")
            params.extend(wanted)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return [
            _TASKS.decode(r) for r in self._read(f"{_TASKS.select}{clause} ORDER BY id", params)
        ]

    def save_task(self, task: Task) -> None:
        row = _TASKS.encode(dataclasses.replace(task, version=task.version + 1))
        with self._write("save task") as conn:
            conn.execute(_SAVE_TASK, row)

    def cas_task(self, task_id: int, expected_version: int, **changes) -> Task | None:
        changes.pop("version", None)  # the store owns version, as in MemoryStore
        with self._write("cas task") as conn:
            # Checked after the failure plan, so a bad call consumes an injected failure
            # exactly as MemoryStore's does.
            unknown = sorted(set(changes) - set(_TASKS.columns))
            if unknown:
                raise TypeError(f"cas_task: Task has no field(s) {', '.join(unknown)}")
            if "id" in changes:
                raise ValueError(f"cas_task cannot change a task's id (task {task_id})")
            assignments = [f"{c} = ?" for c in changes] + ["version = version + 1"]
            params = [_TASKS.encode_field(c, v) for c, v in changes.items()]
            cur = conn.execute(
                f"UPDATE tasks SET {', '.join(assignments)} WHERE id = ? AND version = ?",
                (*params, task_id, expected_version),
            )
            if cur.rowcount != 1:
                return None
            row = conn.execute(f"{_TASKS.select} WHERE id = ?", (task_id,)).fetchone()
        return _TASKS.decode(row)

    # Workspaces.

    def put_workspace(self, workspace: Workspace) -> None:
        # Unchecked, as in MemoryStore: setup writes are not subject to fault injection.
        self._upsert(_WORKSPACES, workspace, "put workspace", inject=False)

    def get_workspace(self, workspace_id: str) -> Workspace | None:
        return self._get(_WORKSPACES, workspace_id)

    def list_workspaces(self) -> list[Workspace]:
        return self._list(_WORKSPACES)

    def save_workspace(self, workspace: Workspace) -> None:
        self._upsert(_WORKSPACES, workspace, "save workspace")

    # Pools, agents, plans.

    def put_pool(self, pool: Pool) -> None:
        self._upsert(_POOLS, pool, "put pool", inject=False)

    def get_pool(self, pool_id: str) -> Pool | None:
        return self._get(_POOLS, pool_id)

    def list_pools(self) -> list[Pool]:
        return self._list(_POOLS)

    def put_agent(self, agent: AgentRow) -> None:
        self._upsert(_AGENTS, agent, "put agent")

    def get_agent(self, agent_id: str) -> AgentRow | None:
        return self._get(_AGENTS, agent_id)

    def list_agents(self, pool_id: str | None = None) -> list[AgentRow]:
        if pool_id is None:
            return self._list(_AGENTS)
        rows = self._read(f"{_AGENTS.select} WHERE pool_id = ? ORDER BY id", (pool_id,))
        return [_AGENTS.decode(r) for r in rows]

    def delete_agent(self, agent_id: str) -> None:
        with self._write("delete agent", inject=False) as conn:
            conn.execute("DELETE FROM agents WHERE id = ?", (agent_id,))

    def put_plan(self, artifact: PlanArtifact) -> None:
        self._upsert(_PLANS, artifact, "put plan")

    def get_plan(self, task_id: int) -> PlanArtifact | None:
        return self._get(_PLANS, task_id)

    # Shared shapes.

    def _upsert(self, table: _Table, obj: Any, what: str, *, inject: bool = True) -> None:
        row = table.encode(obj)
        with self._write(what, inject=inject) as conn:
            conn.execute(table.upsert, row)

    def _get(self, table: _Table, key: Any) -> Any:
        rows = self._read(f"{table.select} WHERE {table.key} = ?", (key,))
        return table.decode(rows[0]) if rows else None

    def _list(self, table: _Table) -> list[Any]:
        return [table.decode(r) for r in self._read(f"{table.select} ORDER BY {table.key}")]


# Opening: migrations and the schema check.


def _current_version(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]


def _migrate(conn: sqlite3.Connection, path: str, migrations: tuple[Migration, ...]) -> None:
    """Bring the file up to the newest migration, each in its own transaction.

    The version is re-read inside each write transaction, so two processes opening a new
    file at once apply each migration once between them.
    """
    supported = migrations[-1].version if migrations else 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "schema_version" not in tables:
            raise StoreOpenError(
                f"{path}: not an unstuck store: it has tables {', '.join(sorted(tables))} but no "
                "schema_version table; point the store at a new file or an unstuck store"
            )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        found = _current_version(conn)
        conn.execute("COMMIT")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    if found > supported:
        raise SchemaTooNewError(
            f"{path}: schema version {found} is newer than this unstuck supports "
            f"({supported}); it was written by a newer unstuck. Upgrade unstuck to open it, "
            "or point the store at another file (a new file starts at the supported version)"
        )
    for migration in migrations[found:]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if _current_version(conn) < migration.version:
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.description, time.time()),
                )
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")


def _check_columns(conn: sqlite3.Connection, path: str) -> None:
    """Refuse to run when a record field has no column: a model change without a migration."""
    version = _current_version(conn)
    for table in _TABLES:
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table.name})")}
        missing = [c for c in table.columns if c not in have]
        if missing:
            raise StoreOpenError(
                f"{path}: table {table.name} (schema version {version}) has no column for "
                f"{table.record.__name__}.{', '.join(missing)}; add a migration to "
                "scheduler/stores/migrations/sqlite.py"
            )
