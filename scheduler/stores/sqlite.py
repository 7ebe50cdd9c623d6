"""The durable store of the live service: one SQLite file, compare-and-set on `Task.version`.

Semantics
---------
Exactly those of `scheduler.stores.memory.MemoryStore`, which is the reference: reads
return fresh records (so callers can never change stored state behind the store's back),
lists are ordered by key, `save_task` is the seed's whole-row GORM `Save` (last writer
wins, `version` bumped), `cas_task` is one `UPDATE ... WHERE id = ? AND version = ?`
inside a write transaction, and the same writes consult the same `WriteFailures` plan, so
an injected failure raises `StoreWriteError` before any SQL runs. Those methods are written
once, for both SQL stores, in `scheduler.stores.sql.SqlStore`; this module is the SQLite
dialect: opening the file, WAL and its pragmas, `BEGIN IMMEDIATE`, migrations. The contract
suite in `tests/unit/stores/` runs one set of tests against every store, plus a
differential Hypothesis test, to keep it that way.

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

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from scheduler.stores.migrations import Migration
from scheduler.stores.migrations import sqlite as sqlite_migrations
from scheduler.stores.rows import TABLES
from scheduler.stores.sql import SchemaTooNewError, SqlStore, StoreOpenError, current_version

# Re-exported: callers and tests import the open errors from here, where they were born.
__all__ = ["SchemaTooNewError", "SqliteStore", "StoreOpenError"]


class SqliteStore(SqlStore):
    """The SQLite dialect of `SqlStore`: one file, WAL, `BEGIN IMMEDIATE` writes."""

    _placeholder = "?"
    _text_order = ""  # BINARY, SQLite's default, compares UTF-8 bytes: code-point order
    _dialect = "sqlite"

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
        super().__init__()
        self.path = os.fspath(path)
        # The files this open creates are removed again if the open fails; one that was
        # there before is never touched.
        created = [] if self.path == ":memory:" or os.path.lexists(self.path) else [
            f for f in (self.path + s for s in ("", "-wal", "-shm", "-journal"))
            if not os.path.lexists(f)]
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
            # Before WAL is switched on: that mode is written into the file's header, so
            # someone else's database must be refused first, untouched.
            _refuse_foreign(self._conn, self.path)
            self._configure()
            _migrate(self._conn, self.path, migrations)
            _check_columns(self._conn, self.path)
        except sqlite3.DatabaseError as exc:
            self._abandon(created)
            raise StoreOpenError(
                f"{self.path}: cannot open as an unstuck SQLite store: {exc}; "
                "check the path points at a store file (or a new file) that is writable"
            ) from exc
        except BaseException:
            self._abandon(created)
            raise

    def _abandon(self, created: list[str]) -> None:
        """Close the connection of a failed open and remove the files it created (the store
        file, its -wal, -shm, -journal), so a failed open leaves nothing new on disk."""
        self._conn.close()
        for f in created:
            with contextlib.suppress(FileNotFoundError):
                os.remove(f)

    def _configure(self) -> None:
        mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal" and self.path != ":memory:":
            raise StoreOpenError(
                f"{self.path}: SQLite refused WAL journal mode (got {mode!r}); "
                "put the store on a local filesystem"
            )
        self._conn.execute("PRAGMA synchronous=FULL")

    # Dialect hooks.

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return _immediate(self._conn)

    @property
    def _where(self) -> str:
        return self.path

    def _failure(self, exc: Exception) -> str | None:
        if _damaged(exc):
            return (f"{exc}; the file is damaged: stop the service, keep a copy of the file and "
                    "restore it from a backup (`sqlite3 FILE .recover` salvages what rows it can)")
        # Locked past the timeout, disk full, read-only file: the call did not happen.
        if isinstance(exc, sqlite3.OperationalError):
            return str(exc)
        return None


def _damaged(exc: BaseException) -> bool:
    """A damaged file: "database disk image is malformed" (SQLITE_CORRUPT and its extended
    codes) or "file is not a database" (SQLITE_NOTADB), which sqlite3 raises as a plain
    `DatabaseError`, the base class of constraint and programming errors too."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    return isinstance(exc, sqlite3.DatabaseError) and name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception.

    IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
    writes can fail with SQLITE_BUSY at once, while this one waits up to `timeout_s`.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")


# Opening: migrations and the schema check.


def _refuse_foreign(conn: sqlite3.Connection, path: str) -> None:
    """Refuse a file with tables but no `schema_version`: someone else's database."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if tables and "schema_version" not in tables:
        raise StoreOpenError(
            f"{path}: not an unstuck store: it has tables {', '.join(sorted(tables))} but no "
            "schema_version table; point the store at a new file or an unstuck store"
        )


def _migrate(conn: sqlite3.Connection, path: str, migrations: tuple[Migration, ...]) -> None:
    """Bring the file up to the newest migration, each in its own transaction.

    The version is re-read inside each write transaction, so two processes opening a new
    file at once apply each migration once between them.
    """
    supported = migrations[-1].version if migrations else 0
    with _immediate(conn):
        _refuse_foreign(conn, path)  # again, under the write lock: nobody created tables since
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        found = current_version(conn)
    if found > supported:
        raise SchemaTooNewError(
            f"{path}: schema version {found} is newer than this unstuck supports "
            f"({supported}); it was written by a newer unstuck. Upgrade unstuck to open it, "
            "or point the store at another file (a new file starts at the supported version)"
        )
    for migration in migrations[found:]:
        with _immediate(conn):
            if current_version(conn) < migration.version:
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.description, time.time()),
                )


def _check_columns(conn: sqlite3.Connection, path: str) -> None:
    """Refuse to run when a record field has no column: a model change without a migration."""
    version = current_version(conn)
    for table in TABLES:
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table.name})")}
        missing = [c for c in table.columns if c not in have]
        if missing:
            raise StoreOpenError(
                f"{path}: table {table.name} (schema version {version}) has no column for "
                f"{table.record.__name__}.{', '.join(missing)}; add a migration to "
                "scheduler/stores/migrations/sqlite.py"
            )
