"""Fixtures of the store contract suite: one `store` fixture, run once per implementation.

PostgreSQL runs when a server is available (tests/unit/stores/pg.py says how one is found or
started); otherwise its cases are skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scheduler.stores.memory import MemoryStore
from scheduler.stores.sqlite import SqliteStore

from .pg import Server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    server = Server()
    yield server
    server.stop()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[MemoryStore | SqliteStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "postgres":
        server = request.getfixturevalue("pg_server")
        if server.url is None:
            pytest.skip(server.error)
        from scheduler.stores.postgres import PostgresStore

        with PostgresStore(server.schema_url()) as s:
            yield s
        return
    with SqliteStore(tmp_path / "store.db") as s:
        yield s
