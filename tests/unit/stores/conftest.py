"""Fixtures of the store contract suite: one `store` fixture, run once per implementation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scheduler.stores.memory import MemoryStore
from scheduler.stores.sqlite import SqliteStore


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[MemoryStore | SqliteStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    with SqliteStore(tmp_path / "store.db") as s:
        yield s
