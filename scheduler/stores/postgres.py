"""The PostgreSQL store: the same contract as `SqliteStore`, for a shared database server.

Semantics
---------
Exactly `MemoryStore`'s (the contract suite in tests/unit/stores/ runs against all three):
reads return fresh records, lists are ordered by key, `save_task` is a whole-row upsert
that bumps the stored version, and `cas_task` is one
`UPDATE tasks SET ..., version = version + 1 WHERE id = %s AND version = %s`. PostgreSQL
re-evaluates the WHERE clause on the row it locked, so under READ COMMITTED two racing
compare-and-sets on one version cannot both succeed, whichever process they come from.
The port methods are written once for both SQL stores in `scheduler.stores.sql.SqlStore`;
this module is the PostgreSQL dialect: connecting, URL spellings and redaction, `%s`
placeholders, psycopg transactions and errors, migrations. Records are encoded by the shared
codecs of `scheduler.stores.rows` (enums as their strings, booleans 0/1, times as seconds),
so a row reads the same in either database.

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

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from scheduler.stores import redacted
from scheduler.stores.migrations import Migration
from scheduler.stores.migrations import postgres as pg_migrations
from scheduler.stores.rows import TABLES
from scheduler.stores.sql import SchemaTooNewError, SqlStore, StoreOpenError, current_version

# The open errors are re-exported, as they always were importable from here.
__all__ = ["MIGRATION_LOCK", "PostgresStore", "SchemaTooNewError", "StoreOpenError",
           "libpq_url", "redacted"]

MIGRATION_LOCK = 0x756E737475636B  # "unstuck": the advisory lock key of migrations


def libpq_url(url: str) -> str:
    """`postgresql+psycopg://` (SQLAlchemy's spelling) and `postgres://` -> `postgresql://`."""
    scheme, sep, rest = url.partition("://")
    if scheme.startswith("postgresql+") or scheme == "postgres":
        return "postgresql://" + rest
    return url


class PostgresStore(SqlStore):
    """The PostgreSQL dialect of `SqlStore`: psycopg in autocommit, one transaction a write."""

    _placeholder = "%s"
    _text_order = ' COLLATE "C"'  # byte order of UTF-8: code points, not the database's locale
    _dialect = "postgres"
    # Lost connection, lock timeout, serialization failure, deadlock: the call did not happen.
    _failures = (psycopg.OperationalError, psycopg.errors.SerializationFailure,
                 psycopg.errors.DeadlockDetected)

    def __init__(self, url: str, *, migrations: tuple[Migration, ...] = pg_migrations.MIGRATIONS,
                 connect_timeout_s: float = 5.0, lock_timeout_s: float = 5.0) -> None:
        """`lock_timeout_s` bounds how long a write waits for a row another transaction
        holds, as SQLite's `timeout_s` bounds its wait for the write lock; past it the write
        fails as `StoreWriteError`."""
        super().__init__()
        self.url = url
        self._connect_timeout = max(1, int(connect_timeout_s))
        self._lock_timeout_ms = max(1, round(lock_timeout_s * 1000))
        self._closed = False
        try:
            self._conn = self._connect()
        except psycopg.Error as exc:
            raise StoreOpenError(
                f"{redacted(url)}: cannot connect to PostgreSQL: {' '.join(str(exc).split())}; check the "
                "host, port, database and credentials in the URL, and that the server runs"
            ) from None
        try:
            _migrate(self._conn, redacted(url), migrations)
            _check_columns(self._conn, redacted(url))
        except psycopg.Error as exc:
            # Each migration is one transaction, rolled back: nothing is half-written.
            self._conn.close()
            raise StoreOpenError(
                f"{redacted(url)}: cannot set up the unstuck schema: "
                f"{exc.diag.message_primary or str(exc).strip()}; check that "
                "the schema the URL's search_path names (options=-csearch_path=NAME) exists and "
                "that the user may create tables in it, on a server that accepts writes"
            ) from None
        except BaseException:
            self._conn.close()
            raise

    def _connect(self) -> psycopg.Connection:
        conn = psycopg.connect(libpq_url(self.url), autocommit=True,
                               connect_timeout=self._connect_timeout)
        # Every transaction BEGINs at READ COMMITTED, whatever the server's or role's
        # default_transaction_isolation: there a blocked compare-and-set re-checks its WHERE
        # on the winner's row and loses with None. Under REPEATABLE READ or SERIALIZABLE it
        # would fail with a serialization error instead.
        conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
        # A write blocked by another transaction's row lock waits this long, then fails
        # (LockNotAvailable, an OperationalError: StoreWriteError), never for ever.
        conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{self._lock_timeout_ms}ms",))
        return conn

    def close(self) -> None:
        self._closed = True
        super().close()

    # Dialect hooks.

    def _connected(self) -> psycopg.Connection:
        """The connection, opened again if the server dropped it (a restart, a killed
        backend): the call that met the dead connection failed, the next one reconnects,
        so a server restart does not wedge the scheduler. A failed reconnect raises
        `psycopg.OperationalError`, which a write reports as `StoreWriteError`."""
        if self._conn.closed and not self._closed:
            self._conn = self._connect()
        return self._conn

    def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            return super()._fetch(sql, params)
        except psycopg.OperationalError:
            if self._closed or not self._conn.closed:
                raise
        # The connection died under the read. A read changes nothing, so it is run once
        # more, on a new connection; if that cannot connect, the read fails (StoreReadError).
        return super()._fetch(sql, params)

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        # The connection is in autocommit, so this is an explicit BEGIN ... COMMIT, rolled
        # back when the block raises. A write that meets a dead connection is not retried:
        # whether a COMMIT sent on it took effect is unknown, so it fails as StoreWriteError.
        conn = self._connected()
        with conn.transaction():
            yield conn

    @property
    def _where(self) -> str:
        return redacted(self.url)

    def _failure(self, exc: Exception) -> str | None:
        if not isinstance(exc, self._failures):
            return None
        reason = " ".join(str(exc).split())
        if self._conn.closed and not self._closed:
            reason += ("; the connection is lost: check that the server runs and that the URL's "
                       "host, port, database and credentials still hold (the next call reconnects)")
        return reason


# Opening: migrations and the schema check.


def _migrate(conn: psycopg.Connection, where: str, migrations: tuple[Migration, ...]) -> None:
    supported = migrations[-1].version if migrations else 0
    with conn.transaction():
        # Another process's migration is waited for, however long it takes.
        conn.execute("SET LOCAL lock_timeout = 0")
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
        found = current_version(conn)
    if found > supported:
        raise SchemaTooNewError(
            f"{where}: schema version {found} is newer than this unstuck supports ({supported}); "
            "it was written by a newer unstuck. Upgrade unstuck, or use another database")
    for migration in migrations[found:]:
        with conn.transaction():
            conn.execute("SET LOCAL lock_timeout = 0")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            if current_version(conn) < migration.version:
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version, description, applied_at) "
                             "VALUES (%s, %s, %s)", (migration.version, migration.description, time.time()))


def _check_columns(conn: psycopg.Connection, where: str) -> None:
    version = current_version(conn)
    for table in TABLES:
        have = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s", (table.name,))}
        missing = [c for c in table.columns if c not in have]
        if missing:
            raise StoreOpenError(
                f"{where}: table {table.name} (schema version {version}) has no column for "
                f"{table.record.__name__}.{', '.join(missing)}; add a migration to "
                "scheduler/stores/migrations/postgres.py")
