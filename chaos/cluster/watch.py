"""Watch streams: replay the store's event log for one resource, filtered and translated.

A watch with a selector sees an object *enter* the selection as ADDED and *leave* it as
DELETED, as a real apiserver reports it; a resourceVersion older than the log's floor ends the
stream with an ERROR event carrying a 410 Expired Status, which is what the kubernetes client
turns into `ApiException(410)`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

from chaos.cluster import meta
from chaos.cluster.errors import ApiError
from chaos.cluster.resources import Resource
from chaos.cluster.selectors import parse_field_selector, parse_label_selector
from chaos.cluster.storage import Store, parse_rv

# Upstream's cacher sends a bookmark roughly every minute and one 2 s before the watch's timeout.
BOOKMARK_EVERY_S = 60.0
BOOKMARK_BEFORE_END_S = 2.0


def _plain_line(type_: str, obj: dict) -> bytes:
    return json.dumps({"type": type_, "object": obj}, separators=(",", ":")).encode() + b"\n"


def stream(store: Store, res: Resource, namespace: str | None, *,
           label_selector: str | None = None, field_selector: str | None = None,
           resource_version: str | None = None, timeout_s: float = 1800.0,
           stopped: Callable[[], bool] = lambda: False,
           transform: Callable[[dict], dict] | None = None,
           bookmarks: bool = False) -> Iterator[bytes]:
    """Yield newline-terminated JSON watch events until the timeout or the store closes.

    `transform` rewrites each event's object (not an ERROR's Status or a BOOKMARK) before it
    is sent: the server uses it to stream Tables to `kubectl get -w`. With `bookmarks`
    (`allowWatchBookmarks=true`) the stream also carries BOOKMARK events holding only the
    resourceVersion it has reached, so a client can resume from there without a 410.
    """
    def _line(type_: str, obj: dict) -> bytes:
        return _plain_line(type_, obj if transform is None else transform(obj))

    labels_ok = parse_label_selector(label_selector)
    fields_ok = parse_field_selector(field_selector)

    def matches(obj: dict | None) -> bool:
        if obj is None:
            return False
        if namespace and meta.ns_of(obj) != namespace:
            return False
        return labels_ok(meta.labels_of(obj)) and fields_ok(obj)

    if resource_version in (None, "", "0"):
        with store.lock:
            objs, cursor = store.list(res, namespace if res.namespaced and namespace else None)
        initial = [_line("ADDED", o) for o in objs if matches(o)]
    else:
        cursor = parse_rv(resource_version)
        initial = []
    yield b""  # set-up done: the caller may now commit to a 200 response
    yield from initial
    deadline = time.monotonic() + timeout_s
    bookmark_at = min(time.monotonic() + BOOKMARK_EVERY_S, deadline - BOOKMARK_BEFORE_END_S) \
        if bookmarks else float("inf")
    while not stopped() and not store.closed:
        now = time.monotonic()
        remaining = deadline - now
        if remaining <= 0:
            return
        if now >= bookmark_at:
            bookmark_at = now + BOOKMARK_EVERY_S
            yield _plain_line("BOOKMARK", {"kind": res.kind, "apiVersion": res.api_version,
                                           "metadata": {"resourceVersion": str(cursor)}})
            continue
        try:
            events = store.events_after(cursor)
        except ApiError as err:
            yield _plain_line("ERROR", err.status())
            return
        if not events:
            store.wait(cursor, max(0.0, min(remaining, 1.0, bookmark_at - now)))
            continue
        for ev in events:
            cursor = ev.rv
            if ev.key != res.key:
                continue
            now_in, was_in = matches(ev.obj), matches(ev.old)
            if ev.type == "ADDED" and now_in:
                yield _line("ADDED", ev.obj)
            elif ev.type == "MODIFIED":
                if now_in and was_in:
                    yield _line("MODIFIED", ev.obj)
                elif now_in:
                    yield _line("ADDED", ev.obj)
                elif was_in:
                    yield _line("DELETED", ev.obj)
            elif ev.type == "DELETED" and was_in:
                yield _line("DELETED", ev.obj)
