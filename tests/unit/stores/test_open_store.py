"""`scheduler.stores.open_store`: which URLs name which store, and the errors for the rest."""

from __future__ import annotations

import pytest

from scheduler.model import Task, TaskType
from scheduler.stores import open_store
from scheduler.stores.memory import MemoryStore
from scheduler.stores.sqlite import SqliteStore


def test_memory_url_gives_a_fresh_memory_store():
    a, b = open_store("memory://"), open_store("memory://")
    assert isinstance(a, MemoryStore)
    a.insert_task(Task(1, "ws-1", TaskType.PLAN))
    assert b.get_task(1) is None


def test_sqlite_url_with_an_absolute_path(tmp_path):
    path = tmp_path / "state.db"
    with open_store(f"sqlite:///{path}") as s:  # sqlite:////abs/path, as in SQLAlchemy
        assert isinstance(s, SqliteStore)
        assert s.path == str(path)


def test_sqlite_url_with_a_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///rel.db") as s:
        s.insert_task(Task(1, "ws-1", TaskType.PLAN))
    assert (tmp_path / "rel.db").exists()


def test_a_bare_path_is_a_sqlite_file(tmp_path):
    with open_store(str(tmp_path / "bare.db")) as s:
        assert isinstance(s, SqliteStore)
    assert (tmp_path / "bare.db").exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", r"sqlite needs a file path, as in sqlite:///state\.db"),
        ("sqlite:///", r"sqlite needs a file path"),
        (
            "redis://localhost",
            r"^store URL 'redis://localhost': unknown scheme 'redis'; expected memory://",
        ),
        ("", r"store URL is empty"),
        # SQLAlchemy's parameters are not taken; the store opened a file named "s.db?mode=ro".
        ("sqlite:///s.db?mode=ro", r"^store URL 'sqlite:///s\.db\?mode=ro': sqlite takes no parameters"),
        ("sqlite:///s.db#x", r"sqlite takes no parameters \(\?\.\.\.\) or fragment"),
    ],
)
def test_other_urls_are_refused_with_the_accepted_forms(url, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        open_store(url)
    assert list(tmp_path.iterdir()) == []  # no file was created
