"""Recording core/v1 Events, as controllers and the kubelet do, with a cap on how many stay.

Events are what `kubectl describe` and a chaos report show as "what the cluster did"; they are
best effort (a failed record never fails the caller) and the oldest go once `limit` is reached,
the way the real apiserver expires them after an hour.

Repeats
-------
An event identical to one recorded before (same source, involved object and field path, type,
reason and message: client-go's `getEventKey`) is not a new object: the stored one gets
`count + 1` and a new `lastTimestamp`, as client-go's EventCorrelator patches it, so a
readiness probe failing every second is one `Unhealthy` event `(x40 over 40s)` in
`kubectl describe`. The keys are remembered in an LRU of 4096, client-go's size. The
correlator's other half, folding ten *similar* events of different messages into
"(combined from similar events): ...", is not emulated.
"""

from __future__ import annotations

import itertools
import logging
from collections import OrderedDict

from chaos.cluster import meta, resources
from chaos.cluster.errors import ApiError
from chaos.cluster.storage import Store

log = logging.getLogger(__name__)
_seq = itertools.count()


_KEYS_KEPT = 4096  # client-go's maxLruCacheEntries


class Recorder:
    def __init__(self, store: Store, limit: int = 500) -> None:
        self.store = store
        self.limit = limit
        self.enabled = True
        self._seen: OrderedDict[tuple, tuple[str, str]] = OrderedDict()  # key -> (ns, name)

    def record(self, obj: dict, reason: str, message: str, *, type_: str = "Normal",
               component: str = "unstuck-controller-manager", host: str | None = None,
               field_path: str | None = None) -> None:
        """Record an event on `obj` (`field_path` names a part of it, such as a pod's
        `spec.containers{main}`; `host` is the node of a kubelet's event)."""
        if not self.enabled:
            return
        md = obj["metadata"]
        ns = md.get("namespace") or "default"
        now = meta.timestamp(self.store.clock())
        involved = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                    "name": md["name"], "namespace": md.get("namespace", ""),
                    "uid": md.get("uid"), "resourceVersion": md.get("resourceVersion")}
        if field_path:
            involved["fieldPath"] = field_path
        source = {"component": component, **({"host": host} if host else {})}
        key = (component, host, involved["kind"], involved["namespace"], involved["name"],
               field_path, involved["uid"], involved["apiVersion"], type_, reason, message)
        try:
            with self.store.lock:
                if self._count_again(key, now):
                    return
                event = {
                    "apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": f"{md['name']}.{next(_seq):x}{meta.random_suffix(4)}",
                                 "namespace": ns},
                    "involvedObject": involved,
                    "reason": reason, "message": message, "type": type_,
                    "source": source, "count": 1,
                    "firstTimestamp": now, "lastTimestamp": now,
                    "reportingComponent": component, "reportingInstance": host or component,
                }
                self.store.create(resources.EVENTS, event)
                self._seen[key] = (ns, event["metadata"]["name"])
                if len(self._seen) > _KEYS_KEPT:
                    self._seen.popitem(last=False)
                if self.store.count(resources.EVENTS) > self.limit:
                    self._trim()
        except ApiError as err:
            log.debug("event not recorded: %s", err)

    def _count_again(self, key: tuple, now: str) -> bool:
        """Whether an event of `key` is still stored, now counted once more."""
        where = self._seen.get(key)
        stored = self.store.get(resources.EVENTS, *where) if where else None
        if stored is None:
            self._seen.pop(key, None)
            return False
        self._seen.move_to_end(key)
        again = meta.thaw(stored)
        again["count"] = (stored.get("count") or 1) + 1
        again["lastTimestamp"] = now
        self.store.replace(resources.EVENTS, again)
        return True

    def _trim(self) -> None:
        events, _ = self.store.list(resources.EVENTS)
        events.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
        for e in events[: len(events) - self.limit * 4 // 5]:  # trim in batches
            self.store.remove(resources.EVENTS, e["metadata"]["namespace"], e["metadata"]["name"])
