"""The in-memory object store: one resourceVersion counter, objects, and a bounded event log.

Why one store and one lock: Kubernetes semantics hang on a total order of writes (etcd's
revision). Every write takes the lock, bumps the revision, stores a *new* dict (stored dicts are
never mutated, so readers share them without copying) and appends a `StoreEvent` that watches
replay. The log keeps the last `history` events; asking for anything older is `410 Expired`,
which is how a real apiserver answers once etcd has compacted.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from chaos.cluster import meta
from chaos.cluster.errors import ApiError, already_exists, bad_request, conflict, not_found
from chaos.cluster.resources import Resource


@dataclass(frozen=True)
class StoreEvent:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    key: str  # Resource.key
    namespace: str
    obj: dict
    old: dict | None


def expired(rv: int, oldest: int) -> ApiError:
    return ApiError(410, f"too old resource version: {rv} ({oldest})", reason="Expired")


def parse_rv(text: str) -> int:
    """A request's resourceVersion as a revision; 400 if it is not one."""
    if not text.isdigit():
        raise bad_request(f"resourceVersion {text!r} is not a number")
    return int(text)


class Store:
    def __init__(self, *, history: int = 4000, clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.clock = clock
        self._history = history
        self._rv = 1000
        self._objects: dict[str, dict[tuple[str, str], dict]] = {}
        self._log: list[StoreEvent] = []
        self._floor = self._rv  # events with rv <= floor are no longer replayable
        self._dry = threading.local()  # .on: this thread's writes are not committed
        self.closed = False

    # --- reads -----------------------------------------------------------------------------
    @property
    def rv(self) -> int:
        return self._rv

    def get(self, res: Resource, namespace: str, name: str) -> dict | None:
        """The stored object (shared: do not mutate) or None."""
        return self._objects.get(res.key, {}).get((namespace, name))

    def must_get(self, res: Resource, namespace: str, name: str) -> dict:
        obj = self.get(res, namespace, name)
        if obj is None:
            raise not_found(res.plural, name, res.group)
        return obj

    def list(self, res: Resource, namespace: str | None = None) -> tuple[list[dict], int]:
        with self.lock:
            items = self._objects.get(res.key, {})
            if namespace is None:
                objs = [items[k] for k in sorted(items)]
            else:
                objs = [items[k] for k in sorted(items) if k[0] == namespace]
            return objs, self._rv

    def list_at(self, res: Resource, namespace: str | None, rv: int) -> list[dict]:
        """`list` as it was at revision `rv`: today's objects with the later events undone
        (410 Expired once they were compacted away), for a continued chunked list."""
        with self.lock:
            items = dict(self._objects.get(res.key, {}))
            for ev in reversed(self.events_after(rv)):
                if ev.key != res.key:
                    continue
                key = (ev.namespace if res.namespaced else "", ev.obj["metadata"]["name"])
                if ev.old is None:
                    items.pop(key, None)
                else:
                    items[key] = ev.old
            return [items[k] for k in sorted(items) if namespace is None or k[0] == namespace]

    def count(self, res: Resource) -> int:
        return len(self._objects.get(res.key, {}))

    # --- writes ----------------------------------------------------------------------------
    @contextmanager
    def uncommitted(self) -> Iterator[None]:
        """Server-side dry run: this thread's writes inside check what they would check (409,
        404) and return what they would store, but store nothing, bump no resourceVersion and
        emit no event. Other threads (controllers, kubelets) are unaffected."""
        with self.lock:
            before = getattr(self._dry, "on", False)
            self._dry.on = True
            try:
                yield
            finally:
                self._dry.on = before

    def _committing(self) -> bool:
        return not getattr(self._dry, "on", False)

    def _next(self, obj: dict) -> dict:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        return obj

    def _emit(self, type_: str, res: Resource, obj: dict, old: dict | None) -> None:
        self._log.append(StoreEvent(self._rv, type_, res.key, meta.ns_of(obj), obj, old))
        if len(self._log) > 2 * self._history:
            cut = len(self._log) - self._history
            self._floor = self._log[cut - 1].rv
            del self._log[:cut]
        self.changed.notify_all()

    def create(self, res: Resource, obj: dict) -> dict:
        """Store a new object (a private dict the caller hands over), stamping uid and times."""
        with self.lock:
            md = obj["metadata"]
            key = (md.get("namespace", "") if res.namespaced else "", md["name"])
            bucket = self._objects.setdefault(res.key, {})
            if key in bucket:
                raise already_exists(res.plural, md["name"], res.group)
            md["uid"] = meta.new_uid()
            md["creationTimestamp"] = meta.timestamp(self.clock())
            if not self._committing():  # as upstream: no resourceVersion until stored
                return obj
            self._next(obj)
            bucket[key] = obj
            self._emit("ADDED", res, obj, None)
            return obj

    def replace(self, res: Resource, obj: dict, *, expect_rv: str | None = None) -> dict:
        """Swap in a new version; `expect_rv` (if given) must equal the stored one (409 if not)."""
        with self.lock:
            md = obj["metadata"]
            key = (md.get("namespace", "") if res.namespaced else "", md["name"])
            old = self._objects.get(res.key, {}).get(key)
            if old is None:
                raise not_found(res.plural, md["name"], res.group)
            if expect_rv and expect_rv != old["metadata"]["resourceVersion"]:
                raise conflict(res.plural, md["name"], res.group)
            for fixed in ("uid", "creationTimestamp"):
                md[fixed] = old["metadata"][fixed]
            if not self._committing():
                md["resourceVersion"] = old["metadata"]["resourceVersion"]
                return obj
            self._next(obj)
            self._objects[res.key][key] = obj
            self._emit("MODIFIED", res, obj, old)
            return obj

    def remove(self, res: Resource, namespace: str, name: str) -> dict:
        """Delete for good; the DELETED event carries the deletion's resourceVersion."""
        with self.lock:
            key = (namespace if res.namespaced else "", name)
            bucket = self._objects.get(res.key, {})
            old = bucket.pop(key, None) if self._committing() else bucket.get(key)
            if old is None:
                raise not_found(res.plural, name, res.group)
            final = dict(old)
            final["metadata"] = dict(old["metadata"])
            if not self._committing():
                return final
            self._next(final)
            self._emit("DELETED", res, final, old)
            return final

    # --- watch support ---------------------------------------------------------------------
    def events_after(self, rv: int) -> list[StoreEvent]:
        """Events with a resourceVersion above `rv`; 410 if some of them were compacted away."""
        with self.lock:
            if rv < self._floor:
                raise expired(rv, self._floor)
            idx = bisect.bisect_right(self._log, rv, key=lambda e: e.rv)
            return self._log[idx:]

    def wait(self, after_rv: int, timeout: float) -> bool:
        """Block until the revision passes `after_rv` (True) or `timeout` elapses (False)."""
        with self.lock:
            return self.changed.wait_for(lambda: self._rv > after_rv or self.closed, timeout)

    def compact(self, upto_rv: int | None = None) -> int:
        """Forget events up to `upto_rv` (default: all); watches from before then get 410."""
        with self.lock:
            upto = self._rv if upto_rv is None else upto_rv
            self._log = [e for e in self._log if e.rv > upto]
            self._floor = max(self._floor, upto)
            return self._floor

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.changed.notify_all()
