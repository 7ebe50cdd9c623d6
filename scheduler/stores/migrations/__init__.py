"""Schema migrations of the durable stores: ordered, numbered, each applied exactly once.

Contract: data only, no I/O. A migration is a version number, a one-line description and
the SQL statements that take a database from `version - 1` to `version`. Versions start at
1 and are consecutive; a released migration is never edited, only followed by a new one
(a database in the field has already run the old text). The store that owns a list
applies the pending ones at open, one transaction each, and records each in its
`schema_version` table, so a crash mid-upgrade leaves the file at a whole version.

Adding a field to a record in `scheduler.model` therefore means appending a migration
(e.g. `ALTER TABLE tasks ADD COLUMN ...`) to the store's list; `SqliteStore` refuses to
open when a record field has no column, naming the field and this package.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


def check_sequence(migrations: Sequence[Migration]) -> None:
    """Refuse a list whose versions are not exactly 1, 2, 3, ...

    A gap or a duplicate would make "the database is at version N" ambiguous, so this
    is checked at import time of each list rather than discovered on someone's data.
    """
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise ValueError(
                f"migration {migration.description!r} has version {migration.version}, "
                f"expected {expected}: versions must be consecutive from 1, in order"
            )
        if not migration.statements:
            raise ValueError(f"migration {migration.version} has no statements")
