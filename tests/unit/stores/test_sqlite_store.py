"""What only the durable store promises: persistence, sharing a file, migrations, WAL."""

from __future__ import annotations

import dataclasses
import math
import re
import sqlite3
import threading
from contextlib import closing

import pytest

from scheduler.model import FreezeWindow, Task, TaskStatus, TaskType, Workspace
from scheduler.ports import StoreReadError, StoreWriteError
from scheduler.stores import sqlite as sqlite_store
from scheduler.stores.migrations import Migration, check_sequence
from scheduler.stores.migrations import sqlite as sqlite_migrations
from scheduler.stores.rows import TASKS
from scheduler.stores.sqlite import SchemaTooNewError, SqliteStore, StoreOpenError

from .records import agent, full_pool, full_task, full_workspace, plan, snapshot

V1 = sqlite_migrations.MIGRATIONS[0]
CURRENT = sqlite_migrations.MIGRATIONS
LATEST = sqlite_migrations.LATEST_VERSION
# A migration of a later unstuck, to upgrade to.
NEXT = Migration(LATEST + 1, "tasks.note", ("ALTER TABLE tasks ADD COLUMN note TEXT NOT NULL DEFAULT ''",))


def task(task_id: int) -> Task:
    return Task(id=task_id, workspace_id="ws-1", task_type=TaskType.PLAN_AND_APPLY)


def raw(path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def query(path, sql: str) -> list[tuple]:
    """One read through a plain connection of our own, closed at once."""
    with closing(raw(path)) as db:
        return db.execute(sql).fetchall()


def test_data_survives_close_and_reopen(tmp_path):
    path = tmp_path / "state.db"
    with SqliteStore(path) as s:
        s.insert_task(full_task(3))
        s.cas_task(3, 3, status=TaskStatus.RUNNING)
        s.put_workspace(full_workspace())
        s.put_pool(full_pool())
        s.put_agent(agent("a-1"))
        s.put_plan(plan(3))
        before = snapshot(s)
    with SqliteStore(path) as s:
        assert snapshot(s) == before
        assert s.next_task_id() == 4


def test_two_store_objects_on_one_file_see_each_others_cas(tmp_path):
    path = tmp_path / "state.db"
    with SqliteStore(path) as a, SqliteStore(path) as b:
        a.insert_task(task(1))
        seen_by_a, seen_by_b = a.get_task(1), b.get_task(1)
        assert a.cas_task(1, seen_by_a.version, status=TaskStatus.RUNNING) is not None
        assert b.cas_task(1, seen_by_b.version, status=TaskStatus.CANCELLED) is None
        assert b.get_task(1).status is TaskStatus.RUNNING
        b.save_task(seen_by_b)  # the seed's Save is not protected: B overwrites A
        assert a.get_task(1) == dataclasses.replace(seen_by_b, version=2)


@pytest.mark.parametrize("shared", [True, False], ids=["one-store", "store-per-thread"])
def test_concurrent_cas_from_threads_never_loses_an_increment(tmp_path, shared):
    """Four threads each add 25 to retry_count through read-CAS-retry loops."""
    path = tmp_path / "state.db"
    first = SqliteStore(path)
    first.insert_task(task(1))
    stores = [first if shared else SqliteStore(path) for _ in range(4)]

    def bump(store: SqliteStore) -> None:
        for _ in range(25):
            while True:
                t = store.get_task(1)
                if store.cas_task(1, t.version, retry_count=t.retry_count + 1):
                    break

    threads = [threading.Thread(target=bump, args=(s,)) for s in stores]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    final = first.get_task(1)
    assert (final.retry_count, final.version) == (100, 100)
    for s in {id(s): s for s in stores}.values():
        s.close()


def test_a_locked_database_raises_store_write_error_and_changes_nothing(tmp_path):
    path = tmp_path / "state.db"
    with SqliteStore(path, timeout_s=0.05) as s:
        s.insert_task(task(1))
        before = snapshot(s)
        holder = raw(path)
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
        try:
            with pytest.raises(StoreWriteError) as info:
                s.cas_task(1, 0, status=TaskStatus.RUNNING)
            assert re.search(
                r"sqlite write failed \(cas task\) on .*state\.db: database is locked",
                str(info.value),
            )
            assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert snapshot(s) == before
        assert s.cas_task(1, 0, status=TaskStatus.RUNNING) is not None  # usable again


def test_wal_mode_and_full_sync_are_on(tmp_path):
    path = tmp_path / "state.db"
    with SqliteStore(path) as s:
        s.insert_task(task(1))
        assert query(path, "PRAGMA journal_mode") == [("wal",)]
        assert s._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert (tmp_path / "state.db-wal").exists()


def test_rows_hold_the_real_systems_strings(tmp_path):
    """Enums are stored as their values, so a row reads like the incident report's."""
    path = tmp_path / "state.db"
    with SqliteStore(path) as s:
        s.insert_task(full_task(7))
        s.put_workspace(full_workspace())
        s.put_pool(full_pool())
    assert query(
        path, "SELECT task_type, status, stage, execution_mode, has_changes FROM tasks"
    ) == [("plan_and_apply", "apply_pending", "apply_pending", "agent", 0)]
    assert query(path, "SELECT is_locked FROM workspaces") == [(1,)]
    assert query(path, "SELECT freeze_windows FROM pools") == [
        ("[[3600.0, 7200.5], [82800, 1800]]",)
    ]


# Migrations.


def versions(path) -> list[int]:
    return [r[0] for r in query(path, "SELECT version FROM schema_version ORDER BY version")]


def test_a_negative_zero_time_reads_back_as_zero_without_its_sign(tmp_path):
    """Documented (docs/stores.md, Records): SQLite writes a whole-number REAL as an integer,
    so -0.0 comes back 0.0, equal but unsigned, where MemoryStore and PostgreSQL keep the
    sign. No stored time can be -0.0 (each is a clock reading); freeze windows are JSON and
    keep it. If this starts failing, SQLite keeps the sign now: drop the doc's exception."""
    with SqliteStore(tmp_path / "state.db") as s:
        s.insert_task(dataclasses.replace(task(1), created_at=-0.0, started_at=-0.0))
        s.put_pool(dataclasses.replace(full_pool(), freeze_windows=(FreezeWindow(-0.0, 60.0),)))
        read = s.get_task(1)
        assert [math.copysign(1.0, t) for t in (read.created_at, read.started_at)] == [1.0, 1.0]
        assert read == dataclasses.replace(task(1), created_at=-0.0, started_at=-0.0)
        assert math.copysign(1.0, s.get_pool("pool-1").freeze_windows[0].start_s) == -1.0


def test_migrations_are_applied_once_and_reopening_is_a_no_op(tmp_path):
    path = tmp_path / "state.db"
    SqliteStore(path).close()
    SqliteStore(path).close()
    expected = [m.version for m in sqlite_migrations.MIGRATIONS]
    assert versions(path) == expected
    with SqliteStore(path) as s:
        assert s.schema_version == sqlite_migrations.LATEST_VERSION


def test_an_older_file_is_upgraded_in_place_keeping_its_rows(tmp_path):
    path = tmp_path / "state.db"
    with SqliteStore(path, migrations=CURRENT) as s:
        s.insert_task(full_task(1))
    with SqliteStore(path, migrations=(*CURRENT, NEXT)) as s:
        assert s.schema_version == LATEST + 1
        assert s.get_task(1) == full_task(1)
    assert query(path, "SELECT note FROM tasks") == [("",)]


def test_a_version_1_file_counts_every_dispatched_run_as_claimed(tmp_path):
    """Version 2 added `tasks.claimed_fence`. A run dispatched before it may have begun:
    the upgrade records each task's fence as claimed, so none reads as never begun."""
    path = tmp_path / "state.db"
    conn = raw(path)
    sqlite_store._migrate(conn, str(path), (V1,))
    row = dataclasses.replace(full_task(1), status=TaskStatus.RUNNING, fence=3)
    columns = [c for c in TASKS.columns if c != "claimed_fence"]
    values = [TASKS.encode_field(c, getattr(row, c)) for c in columns]
    with conn:
        conn.execute(f"INSERT INTO tasks ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                     values)
    conn.close()
    with SqliteStore(path) as s:
        read = s.get_task(1)
    assert (read.fence, read.claimed_fence, read.claimed) == (3, 3, True)


def test_a_failing_migration_leaves_the_file_at_the_previous_version(tmp_path):
    path = tmp_path / "state.db"
    SqliteStore(path, migrations=CURRENT).close()
    broken = Migration(LATEST + 1, "half done", ("CREATE TABLE extra (x)", "THIS IS NOT SQL"))
    with pytest.raises(StoreOpenError, match="syntax error"):
        SqliteStore(path, migrations=(*CURRENT, broken))
    assert versions(path) == list(range(1, LATEST + 1))
    tables = {r[0] for r in query(path, "SELECT name FROM sqlite_master")}
    assert "extra" not in tables  # the first statement was rolled back with the second


def test_an_open_that_fails_leaves_no_new_file_behind_and_an_old_one_untouched(tmp_path):
    """`--store sqlite:///typo.db` that fails to set up must not leave a half-made store (and
    its -wal, -shm) to be found, and opened, next time; a file that was there is kept as is."""
    broken = Migration(LATEST + 1, "half done", ("CREATE TABLE extra (x)", "THIS IS NOT SQL"))
    with pytest.raises(StoreOpenError, match="syntax error"):
        SqliteStore(tmp_path / "new.db", migrations=(*CURRENT, broken))
    assert list(tmp_path.iterdir()) == []

    old = tmp_path / "old.db"
    SqliteStore(old, migrations=CURRENT).close()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(StoreOpenError, match="syntax error"):
        SqliteStore(old, migrations=(*CURRENT, broken))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_newer_database_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "state.db"
    SqliteStore(path, migrations=(*CURRENT, NEXT)).close()
    with pytest.raises(SchemaTooNewError) as info:
        SqliteStore(path, migrations=CURRENT)
    assert re.fullmatch(
        rf".*state\.db: schema version {LATEST + 1} is newer than this unstuck supports \({LATEST}\); "
        r"it was written by a newer unstuck\. Upgrade unstuck to open it, "
        r"or point the store at another file .*",
        str(info.value),
    )
    assert versions(path) == list(range(1, LATEST + 2))  # untouched


def test_a_record_field_without_a_column_is_refused_naming_the_fix(tmp_path):
    without_attempts = Migration(
        1,
        "tasks without attempts",
        tuple(s.replace(",\n                attempts INTEGER NOT NULL", "") for s in V1.statements),
    )
    assert without_attempts != V1
    with pytest.raises(
        StoreOpenError,
        match=r"no column for Task\.attempts; add a migration to scheduler/stores/migrations/sqlite\.py",
    ):
        SqliteStore(tmp_path / "state.db", migrations=(without_attempts, *CURRENT[1:]))


def test_a_migration_list_must_count_from_one(tmp_path):
    with pytest.raises(ValueError, match="has version 3, expected 2"):
        check_sequence((V1, dataclasses.replace(NEXT, version=3)))


# Files that are not stores.


def test_someone_elses_database_is_refused_untouched(tmp_path):
    path = tmp_path / "other.db"
    query(path, "CREATE TABLE invoices (id INTEGER)")
    before = path.read_bytes()
    with pytest.raises(
        StoreOpenError, match=r"other\.db: not an unstuck store: it has tables invoices"
    ):
        SqliteStore(path)
    # Not a byte changed: in particular the file was not switched to WAL, a mode that stays
    # in the file's header (and that the other application's SQLite may not read).
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]
    assert query(path, "PRAGMA journal_mode") == [("delete",)]
    tables = {r[0] for r in query(path, "SELECT name FROM sqlite_master")}
    assert tables == {"invoices"}


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello " * 200)
    with pytest.raises(
        StoreOpenError,
        match=r"notes\.txt: cannot open as an unstuck SQLite store: file is not a database",
    ):
        SqliteStore(path)


def test_a_missing_directory_is_refused(tmp_path):
    with pytest.raises(StoreOpenError, match=r"nowhere/state\.db: .*directory exists"):
        SqliteStore(tmp_path / "nowhere" / "state.db")


def test_a_workspace_put_from_another_thread_is_seen(tmp_path):
    """check_same_thread=False: the service's handler threads share one store."""
    with SqliteStore(tmp_path / "state.db") as s:
        th = threading.Thread(target=s.put_workspace, args=(Workspace("ws-t"),))
        th.start()
        th.join()
        assert s.get_workspace("ws-t") == Workspace("ws-t")


def test_a_file_damaged_after_it_was_opened_fails_calls_with_store_errors_naming_it(tmp_path):
    """Pages damaged on disk (a bad sector, a copy over a live file) are found only when a
    call reads them. That call fails as the store's own error, naming the file and what to
    do, not as a raw `sqlite3.DatabaseError: database disk image is malformed`."""
    path = tmp_path / "state.db"
    with SqliteStore(path) as s:
        for i in range(1, 50):  # long rows: the tasks table fills the file's last pages
            s.insert_task(dataclasses.replace(task(i), description="x" * 2000))
    size = path.stat().st_size
    with path.open("r+b") as f:  # schema pages intact, so the file still opens
        f.seek(size - 8 * 4096)
        f.write(b"garbage!" * 4096)
    with SqliteStore(path) as s:
        damaged = re.escape(f"on {path}: database disk image is malformed; the file is damaged")
        with pytest.raises(StoreReadError, match=f"sqlite read failed {damaged}.*backup"):
            s.list_tasks()
        with pytest.raises(StoreWriteError, match=rf"sqlite write failed \(insert task\) {damaged}"):
            s.insert_task(task(99))
