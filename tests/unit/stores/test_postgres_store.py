"""What only the PostgreSQL store promises: shared by processes, racing CAS, clear open errors."""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest

from scheduler.model import Task, TaskStatus, TaskType
from scheduler.ports import StoreReadError, StoreWriteError
from scheduler.stores import open_store
from scheduler.stores.migrations import Migration
from scheduler.stores.migrations import postgres as pg_migrations
from scheduler.stores.postgres import PostgresStore, redacted
from scheduler.stores.sqlite import SchemaTooNewError, StoreOpenError


@pytest.fixture
def url(pg_server) -> str:
    if pg_server.url is None:
        pytest.skip(pg_server.error)
    return pg_server.schema_url()


def task(task_id: int) -> Task:
    return Task(id=task_id, workspace_id="ws-1", task_type=TaskType.PLAN_AND_APPLY)


def test_open_store_opens_postgres_urls_in_each_spelling(url):
    for spelling in (url, url.replace("postgresql://", "postgres://"),
                     url.replace("postgresql://", "postgresql+psycopg://")):
        with open_store(spelling) as store:
            assert isinstance(store, PostgresStore) and store.schema_version == pg_migrations.LATEST_VERSION


def test_two_stores_share_rows_and_only_one_racing_cas_wins(url):
    with PostgresStore(url) as a, PostgresStore(url) as b:
        a.insert_task(task(1))
        seen = b.get_task(1)
        won = a.cas_task(1, seen.version, status=TaskStatus.RUNNING, fence=1)
        lost = b.cas_task(1, seen.version, status=TaskStatus.RUNNING, fence=1)
        assert won is not None and won.version == seen.version + 1
        assert lost is None
        assert b.get_task(1) == won


def test_data_survives_close_and_reopen(url):
    with PostgresStore(url) as store:
        store.insert_task(task(3))
    with PostgresStore(url) as store:
        assert store.get_task(3) == task(3)
        assert store.next_task_id() == 4


def test_an_unreachable_server_names_the_url_without_its_password():
    with pytest.raises(StoreOpenError, match=re.escape(
            "postgresql://u:***@127.0.0.1:1/db: cannot connect to PostgreSQL")):
        PostgresStore("postgresql://u:hunter2@127.0.0.1:1/db", connect_timeout_s=1)
    assert redacted("postgresql://u@h/db") == "postgresql://u@h/db"


def test_a_foreign_schema_and_a_newer_schema_are_refused(pg_server, url):
    base = url.split("?")[0]
    name = url.rsplit("%3D", 1)[1]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name}.orders (id int)")
    with pytest.raises(StoreOpenError, match=r"not an unstuck store: schema t_\w+ has tables orders"):
        PostgresStore(url)
    newer = pg_server.schema_url()
    latest = pg_migrations.LATEST_VERSION
    later = Migration(latest + 1, "tasks.note", ("ALTER TABLE tasks ADD COLUMN note TEXT NOT NULL DEFAULT ''",))
    PostgresStore(newer, migrations=(*pg_migrations.MIGRATIONS, later)).close()
    with pytest.raises(SchemaTooNewError,
                       match=rf"schema version {latest + 1} is newer than this unstuck supports \({latest}\)"):
        PostgresStore(newer)


def test_a_password_in_the_query_string_is_redacted_too():
    with pytest.raises(StoreOpenError) as caught:
        PostgresStore("postgresql://u@127.0.0.1:1/db?sslmode=disable&password=hunter2", connect_timeout_s=1)
    assert "hunter2" not in str(caught.value)
    assert "postgresql://u@127.0.0.1:1/db?sslmode=disable&password=***: cannot connect" in str(caught.value)


def test_a_database_the_store_cannot_set_up_in_is_a_store_open_error_naming_it(pg_server, url):
    """A search_path naming no schema (or a user without CREATE): the server refuses the
    migration. That is bad input, reported like every other open failure, not a raw
    driver error, and nothing is left half-written."""
    missing = url.rsplit("%3D", 1)[0] + "%3Dno_such_schema"
    with pytest.raises(StoreOpenError, match=re.escape(
            f"{missing}: cannot set up the unstuck schema") + r".*no schema has been selected.*search_path"):
        PostgresStore(missing)


def test_a_lost_connection_fails_one_call_and_the_store_reconnects(pg_server, url):
    """A server restart or a killed backend must not wedge the live scheduler: the call that
    meets the dead connection fails (a write as StoreWriteError), the next one reconnects."""
    def kill_backend(store: PostgresStore) -> None:
        with psycopg.connect(pg_server.url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (store._conn.info.backend_pid,))

    with PostgresStore(url) as store:
        store.insert_task(task(1))
        kill_backend(store)
        with pytest.raises(StoreWriteError, match="postgres write failed \\(cas task\\)"):
            store.cas_task(1, 0, status=TaskStatus.RUNNING)
        won = store.cas_task(1, 0, status=TaskStatus.RUNNING)
        assert won is not None and won.version == 1
        assert store.get_task(1) == won
        kill_backend(store)
        assert store.get_task(1) == won  # a read is retried once, on a new connection
        assert [t.id for t in store.list_tasks()] == [1]


def test_a_read_whose_reconnect_fails_is_a_store_read_error_naming_the_url(pg_server):
    """The database dropped under the store: the read meets a dead connection, its one retry
    cannot connect, and the read fails as the store's own error, naming the URL (password
    redacted) and what to check, not as a raw psycopg.OperationalError."""
    name = "t_gone_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_server.url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        url = pg_server.url.rsplit("/", 1)[0].replace("postgres@", "postgres:s3cret@") + f"/{name}"
        with PostgresStore(url) as store:
            store.insert_task(task(1))
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")  # ends the store's backend too
            with pytest.raises(StoreReadError, match=re.escape(
                    f"postgres read failed on {redacted(url)}: ") + rf".*{name}.*does not exist.*"
                    "check that the server runs"):
                store.get_task(1)
            assert "s3cret" not in redacted(url)


def test_a_racing_cas_loses_with_none_whatever_the_servers_default_isolation(url):
    """The store pins READ COMMITTED, under which PostgreSQL re-checks the WHERE of a blocked
    UPDATE on the new row: the loser of a race gets None, as in every store. Under a server
    default of SERIALIZABLE (a DBA's choice) it got StoreWriteError("could not serialize")."""
    import threading

    serializable = url + "%20-cdefault_transaction_isolation%3Dserializable"
    with PostgresStore(serializable) as store, psycopg.connect(serializable) as other:
        assert other.execute("SHOW default_transaction_isolation").fetchone() == ("serializable",)
        store.insert_task(task(1))
        other.execute("UPDATE tasks SET version = version + 1, fence = 9 WHERE id = 1")  # row locked
        result: list = []
        racer = threading.Thread(target=lambda: result.append(_outcome(store.cas_task, 1, 0, fence=1)))
        racer.start()
        racer.join(0.5)
        assert racer.is_alive()  # blocked on the row lock
        other.commit()
        racer.join(10)
        assert result == [None]
        assert store.get_task(1).fence == 9


def _outcome(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the test compares what came out
        return exc


def test_a_write_blocked_past_the_lock_timeout_is_a_store_write_error_and_changes_nothing(url):
    """As SQLite's busy timeout: a row held by another transaction (a hung client, a DBA)
    is waited for up to `lock_timeout_s`, then the write fails as StoreWriteError. It used
    to wait for ever, holding the store's lock, so every other call of the service hung."""
    import threading
    import time

    with PostgresStore(url, lock_timeout_s=0.5) as store, psycopg.connect(url) as other:
        store.insert_task(task(1))
        other.execute("UPDATE tasks SET fence = 9 WHERE id = 1")  # row locked, not committed
        result: list = []
        racer = threading.Thread(target=lambda: result.append(_outcome(store.cas_task, 1, 0, fence=1)))
        started = time.monotonic()
        racer.start()
        racer.join(10)
        assert not racer.is_alive(), "the blocked write never gave up"
        assert 0.4 < time.monotonic() - started < 5
        assert len(result) == 1 and isinstance(result[0], StoreWriteError)
        assert "postgres write failed (cas task)" in str(result[0]) and "lock timeout" in str(result[0])
        other.rollback()
        assert store.get_task(1) == task(1)
        assert store.cas_task(1, 0, fence=1).fence == 1  # waited for within the timeout
