"""Stores behind the one `scheduler.ports.Store` interface.

`memory.MemoryStore` serves the simulation; `sqlite.SqliteStore` is the durable store of
the live service. Both implement compare-and-set on `Task.version` and both can be told to
fail writes, for fault injection (`fail_writes`, `fail_next_writes`, `heal`).
"""
