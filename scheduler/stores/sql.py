"""The Store port written once for SQL databases; SQLite and PostgreSQL add a dialect.

Why a base class
----------------
`SqliteStore` and `PostgresStore` promise the same semantics, `MemoryStore`'s, and one
contract suite plus a differential Hypothesis test hold them to it. Written twice, the
method shells drifted only in spelling (placeholders, `MAX` vs `GREATEST`), and every fix
had to be made twice. Here each port method is written once, and a dialect subclass keeps
what really differs: opening and configuring its connection, its migrations and schema
checks, and these hooks:

- `_placeholder`: the driver's parameter marker, `?` (sqlite3) or `%s` (psycopg);
- `_text_order`: what makes an ORDER BY of a text key sort by code point, as Python's
  `sorted` does (SQLite's default BINARY already does; PostgreSQL needs `COLLATE "C"`,
  or it sorts by the database's collation);
- `_transaction()`: how one write transaction is opened, committed and rolled back
  (SQLite's `BEGIN IMMEDIATE`, psycopg's `conn.transaction()`);
- `_dialect`, `_where` and `_failure(exc)`: the database's kind and name in errors (a file
  path, or a URL with its password redacted), and which driver errors mean "the database
  failed this call" (lock timeout, lost connection, disk full, a damaged file), with what
  to do. A failed write raises `StoreWriteError` (after the rollback), a failed read
  `StoreReadError`, both worded once, here. Other errors (bugs, constraint violations)
  propagate unchanged.

The statements are portable SQL that both databases run unchanged: the upsert is
`INSERT ... ON CONFLICT (key) DO UPDATE SET col = excluded.col`, a duplicate `insert_task`
is found by `ON CONFLICT (id) DO NOTHING` (no window between a check and the insert, even
across PostgreSQL connections), and `cas_task` reads its row back in the same transaction
rather than with `RETURNING`, because SQLite's `RETURNING` reports values before column
affinity (an int written to a REAL column comes back an int, and would decode differently).

Failure injection
-----------------
`_write` consults the `WriteFailures` plan before any SQL, so an injected failure leaves
the database unchanged. The checked writes are MemoryStore's: `insert_task`, `save_task`,
`cas_task`, `save_workspace`, `put_agent`, `ping_agent` (of a row that exists), `put_plan`; setup puts and `delete_agent` pass
`inject=False`, so one seeded plan fails the same writes in every store.

Concurrency
-----------
One connection per store object, guarded by a lock, so the threads of the HTTP service can
share one store. Reads run outside any explicit transaction: each is one statement.
"""

from __future__ import annotations

import abc
import dataclasses
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar, Self

from scheduler.model import AgentRow, PlanArtifact, Pool, Task, TaskStatus, Workspace
from scheduler.ports import StoreReadError, StoreWriteError
from scheduler.stores.cas import cas_changes
from scheduler.stores.failures import FailureInjection, WriteFailures
from scheduler.stores.rows import AGENTS, PLANS, POOLS, TABLES, TASKS, WORKSPACES, Table


class StoreOpenError(Exception):
    """The database cannot be used as a store: unreachable, someone else's schema, or out of date."""


class SchemaTooNewError(StoreOpenError):
    """The database was migrated by a newer unstuck than this one."""


CURRENT_VERSION = "SELECT COALESCE(MAX(version), 0) FROM schema_version"


def current_version(conn: Any) -> int:
    """The schema version a database is at: the newest migration recorded in it."""
    return conn.execute(CURRENT_VERSION).fetchone()[0]


class TableSql:
    """One table's statements in one placeholder style, built once per dialect class."""

    def __init__(self, table: Table, placeholder: str, text_order: str) -> None:
        columns = ", ".join(table.columns)
        self.table = table
        self.select = f"SELECT {columns} FROM {table.name}"
        self.by_key = f"{self.select} WHERE {table.key} = {placeholder}"
        # Key order is MemoryStore's, Python's `sorted`: code points, whatever collation
        # the database was created with (an en-US one sorts "ws_a" before "WS-a").
        self.key_order = f" ORDER BY {table.key}{text_order if table.text_key else ''}"
        self.in_key_order = f"{self.select}{self.key_order}"
        self.insert = (
            f"INSERT INTO {table.name} ({columns}) "
            f"VALUES ({', '.join(placeholder for _ in table.columns)})"
        )
        self.upsert = self.upsert_sql()

    def upsert_sql(self, **set_exprs: str) -> str:
        """INSERT, or on a key conflict overwrite every column (`set_exprs` overrides some)."""
        t = self.table
        sets = {c: f"excluded.{c}" for c in t.columns if c != t.key} | set_exprs
        return f"{self.insert} ON CONFLICT ({t.key}) DO UPDATE SET " + ", ".join(
            f"{c} = {expr}" for c, expr in sets.items()
        )


class SqlStore(FailureInjection, abc.ABC):
    """The Store port over one DB-API connection; subclasses supply the dialect hooks."""

    _placeholder: ClassVar[str]
    # Appended to an ORDER BY of a text key to sort by code point, as Python does.
    _text_order: ClassVar[str]
    _dialect: ClassVar[str]  # "sqlite", "postgres": how errors begin
    _sql: ClassVar[dict[str, TableSql]]
    _insert_task: ClassVar[str]
    _raise_next_task_id: ClassVar[str]
    _save_task: ClassVar[str]
    _conn: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Build the statements once per dialect, in its placeholder style."""
        super().__init_subclass__(**kwargs)
        p = cls._placeholder
        cls._sql = {t.name: TableSql(t, p, cls._text_order) for t in TABLES}
        tasks = cls._sql[TASKS.name]
        cls._insert_task = f"{tasks.insert} ON CONFLICT (id) DO NOTHING"
        # Raised, never lowered: the counter is one more than the highest id ever inserted.
        cls._raise_next_task_id = (
            f"UPDATE counters SET value = {p} WHERE name = 'next_task_id' AND value < {p}"
        )
        # save_task: a whole-row overwrite, except that version is the stored one plus one
        # (or the caller's plus one for a new row), as MemoryStore.save_task does.
        cls._save_task = tasks.upsert_sql(version="tasks.version + 1")

    def __init__(self) -> None:
        self.failures = WriteFailures()
        self._lock = threading.Lock()

    # Dialect hooks.

    def _connected(self) -> Any:
        """The connection to use, under the lock; a dialect that can lose it reopens it."""
        return self._conn

    @abc.abstractmethod
    def _transaction(self) -> AbstractContextManager[Any]:
        """Open one write transaction and yield the connection; commit on a clean exit and
        roll back on any exception, which propagates."""

    @property
    @abc.abstractmethod
    def _where(self) -> str:
        """The database, as errors name it: its file, or its URL without the password."""

    @abc.abstractmethod
    def _failure(self, exc: Exception) -> str | None:
        """Why the database failed a call, with what to do when the driver's words do not
        say it; None when `exc` is no database failure (a bug, a constraint violation),
        which then propagates unchanged."""

    def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Run one read statement, under the lock; a dialect may retry it."""
        return self._connected().execute(sql, params).fetchall()

    # Lifetime.

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return self._read(CURRENT_VERSION)[0][0]

    # Transactions.

    @contextmanager
    def _write(self, what: str, *, inject: bool = True) -> Iterator[Any]:
        """One write transaction: injected failure first, then the dialect's transaction.

        `inject=False` is for the writes MemoryStore does not submit to fault injection
        (setup puts, agent deletes), so that a failure plan hits the same writes in both.
        """
        with self._lock:
            if inject:
                self.failures.check(what)
            try:
                with self._transaction() as conn:
                    yield conn
            except Exception as exc:
                reason = self._failure(exc)
                if reason is None:
                    raise
                raise StoreWriteError(
                    f"{self._dialect} write failed ({what}) on {self._where}: {reason}"
                ) from exc

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._fetch(sql, tuple(params))
            except Exception as exc:
                reason = self._failure(exc)
                if reason is None:
                    raise
                raise StoreReadError(f"{self._dialect} read failed on {self._where}: {reason}") from exc

    # Tasks.

    def next_task_id(self) -> int:
        return self._read("SELECT value FROM counters WHERE name = 'next_task_id'")[0][0]

    def insert_task(self, task: Task) -> None:
        with self._write("insert task") as conn:
            if conn.execute(self._insert_task, TASKS.encode(task)).rowcount != 1:
                raise ValueError(f"task {task.id} already exists")
            conn.execute(self._raise_next_task_id, (task.id + 1, task.id + 1))

    def get_task(self, task_id: int) -> Task | None:
        return self._get(TASKS, task_id)

    def list_tasks(
        self,
        *,
        workspace_id: str | None = None,
        statuses: Iterable[TaskStatus] | None = None,
    ) -> list[Task]:
        where: list[str] = []
        params: list[Any] = []
        p = self._placeholder
        if workspace_id is not None:
            where.append(f"workspace_id = {p}")
            params.append(workspace_id)
        if statuses is not None:
            wanted = sorted({TaskStatus(s).value for s in statuses})
            if not wanted:
                return []
            where.append(f"status IN ({', '.join(p for _ in wanted)})")
            params.extend(wanted)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        tasks = self._sql[TASKS.name]
        rows = self._read(f"{tasks.select}{clause}{tasks.key_order}", params)
        return [TASKS.decode(r) for r in rows]

    def save_task(self, task: Task) -> None:
        row = TASKS.encode(dataclasses.replace(task, version=task.version + 1))
        with self._write("save task") as conn:
            conn.execute(self._save_task, row)

    def cas_task(self, task_id: int, expected_version: int, **changes) -> Task | None:
        p = self._placeholder
        cas_changes(task_id, changes)  # before the failure plan, as in MemoryStore
        with self._write("cas task") as conn:
            assignments = [f"{c} = {p}" for c in changes] + ["version = version + 1"]
            params = [TASKS.encode_field(c, v) for c, v in changes.items()]
            # PostgreSQL re-checks the WHERE on the row it locked, and SQLite holds the
            # write lock: of two racing compare-and-sets on one version, one wins.
            cur = conn.execute(
                f"UPDATE tasks SET {', '.join(assignments)} WHERE id = {p} AND version = {p}",
                (*params, task_id, expected_version),
            )
            if cur.rowcount != 1:
                return None
            row = conn.execute(self._sql[TASKS.name].by_key, (task_id,)).fetchone()
        return TASKS.decode(row)

    # Workspaces.

    def put_workspace(self, workspace: Workspace) -> None:
        # Unchecked, as in MemoryStore: setup writes are not subject to fault injection.
        self._upsert(WORKSPACES, workspace, "put workspace", inject=False)

    def get_workspace(self, workspace_id: str) -> Workspace | None:
        return self._get(WORKSPACES, workspace_id)

    def list_workspaces(self) -> list[Workspace]:
        return self._list(WORKSPACES)

    def save_workspace(self, workspace: Workspace) -> None:
        self._upsert(WORKSPACES, workspace, "save workspace")

    # Pools, agents, plans.

    def put_pool(self, pool: Pool) -> None:
        self._upsert(POOLS, pool, "put pool", inject=False)

    def get_pool(self, pool_id: str) -> Pool | None:
        return self._get(POOLS, pool_id)

    def list_pools(self) -> list[Pool]:
        return self._list(POOLS)

    def put_agent(self, agent: AgentRow) -> None:
        self._upsert(AGENTS, agent, "put agent")

    def get_agent(self, agent_id: str) -> AgentRow | None:
        return self._get(AGENTS, agent_id)

    def ping_agent(self, agent_id: str, status: str, at: float) -> bool:
        """One UPDATE of the two columns a heartbeat writes; another replica's write to the
        row's other columns in between stays. The failure plan is consulted only for a row
        that exists, as MemoryStore does."""
        p = self._placeholder
        with self._write("put agent", inject=False) as conn:
            if conn.execute(f"SELECT 1 FROM agents WHERE id = {p}", (agent_id,)).fetchone() is None:
                return False
            self.failures.check("put agent")
            conn.execute(f"UPDATE agents SET status = {p}, last_ping_at = {p} WHERE id = {p}",
                         (AGENTS.encode_field("status", status),
                          AGENTS.encode_field("last_ping_at", at), agent_id))
        return True

    def list_agents(self, pool_id: str | None = None) -> list[AgentRow]:
        if pool_id is None:
            return self._list(AGENTS)
        agents = self._sql[AGENTS.name]
        sql = f"{agents.select} WHERE pool_id = {self._placeholder}{agents.key_order}"
        return [AGENTS.decode(r) for r in self._read(sql, (pool_id,))]

    def delete_agent(self, agent_id: str) -> None:
        with self._write("delete agent", inject=False) as conn:
            conn.execute(f"DELETE FROM agents WHERE id = {self._placeholder}", (agent_id,))

    def put_plan(self, artifact: PlanArtifact) -> None:
        self._upsert(PLANS, artifact, "put plan")

    def get_plan(self, task_id: int) -> PlanArtifact | None:
        return self._get(PLANS, task_id)

    # Shared shapes.

    def _upsert(self, table: Table, obj: Any, what: str, *, inject: bool = True) -> None:
        row = table.encode(obj)
        with self._write(what, inject=inject) as conn:
            conn.execute(self._sql[table.name].upsert, row)

    def _get(self, table: Table, key: Any) -> Any:
        rows = self._read(self._sql[table.name].by_key, (key,))
        return table.decode(rows[0]) if rows else None

    def _list(self, table: Table) -> list[Any]:
        return [table.decode(r) for r in self._read(self._sql[table.name].in_key_order)]
