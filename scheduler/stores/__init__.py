"""Stores behind the one `scheduler.ports.Store` interface.

`memory.MemoryStore` serves the simulation; `sqlite.SqliteStore` is the durable store of
the live service and `postgres.PostgresStore` its shared-server alternative. All implement
compare-and-set on `Task.version` and all can be told to fail writes, for fault injection
(`fail_writes`, `fail_next_writes`, `heal`).
"""

import re
from urllib.parse import urlsplit, urlunsplit


def redacted(url: str) -> str:
    """The URL without its password, whether in the user part or a `password=` parameter
    (libpq takes both)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not parseable (a bad [IPv6] host): hide the whole user part
        scheme, sep, rest = url.partition("://")
        _, at, host = rest.rpartition("@")
        url = f"{scheme}{sep}***@{host}" if at else url
        return re.sub(r"([?&])password=[^&]*", r"\1password=***", url)
    query = re.sub(r"(^|&)password=[^&]*", r"\1password=***", parts.query)
    netloc = parts.netloc
    if password is not None:
        netloc = netloc.replace(f":{password}@", ":***@")
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def open_store(url: str):
    """Open the store a URL names: `memory://`, `sqlite:///PATH`, a bare file path, or
    `postgresql://USER:PASSWORD@HOST:PORT/DB` (also `postgres://`, `postgresql+psycopg://`).

    `sqlite:///PATH` follows SQLAlchemy's spelling: `sqlite:///state.db` is relative to
    the working directory and `sqlite:////var/lib/unstuck/state.db` is absolute. The
    store modules are imported here, on demand, so importing this package stays cheap.
    """
    if url == "memory://":
        from scheduler.stores.memory import MemoryStore

        return MemoryStore()
    scheme, sep, rest = url.partition("://")
    if not sep:
        if not url:
            raise ValueError("store URL is empty; expected memory://, sqlite:///PATH or a path")
        path = url
    elif scheme == "sqlite" and ("?" in rest or "#" in rest):
        raise ValueError(
            f"store URL {url!r}: sqlite takes no parameters (?...) or fragment (#...); give "
            "the file path alone, as in sqlite:///state.db (or a bare path, which may hold ? or #)"
        )
    elif scheme == "sqlite" and rest.startswith("/") and len(rest) > 1:
        path = rest[1:]
    elif scheme == "sqlite":
        raise ValueError(
            f"store URL {url!r}: sqlite needs a file path, as in sqlite:///state.db "
            "(relative) or sqlite:////abs/state.db (absolute); for a throwaway store use memory://"
        )
    elif scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        from scheduler.stores.postgres import PostgresStore

        return PostgresStore(url)
    else:
        raise ValueError(
            f"store URL {url!r}: unknown scheme {scheme!r}; "
            "expected memory://, sqlite:///PATH, postgresql://... or a bare file path"
        )
    from scheduler.stores.sqlite import SqliteStore

    return SqliteStore(path)
