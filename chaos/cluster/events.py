"""Recording core/v1 Events, as controllers and the kubelet do, with a cap on how many stay.

Events are what `kubectl describe` and a chaos report show as "what the cluster did"; they are
best effort (a failed record never fails the caller) and the oldest go once `limit` is reached,
the way the real apiserver expires them after an hour.
"""

from __future__ import annotations

import itertools
import logging

from chaos.cluster import meta, resources
from chaos.cluster.errors import ApiError
from chaos.cluster.storage import Store

log = logging.getLogger(__name__)
_seq = itertools.count()


class Recorder:
    def __init__(self, store: Store, limit: int = 500) -> None:
        self.store = store
        self.limit = limit
        self.enabled = True

    def record(self, obj: dict, reason: str, message: str, *, type_: str = "Normal",
               component: str = "unstuck-controller-manager") -> None:
        if not self.enabled:
            return
        md = obj["metadata"]
        ns = md.get("namespace") or "default"
        now = meta.timestamp(self.store.clock())
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{md['name']}.{next(_seq):x}{meta.random_suffix(4)}",
                         "namespace": ns},
            "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                               "name": md["name"], "namespace": md.get("namespace", ""),
                               "uid": md.get("uid"),
                               "resourceVersion": md.get("resourceVersion")},
            "reason": reason, "message": message, "type": type_,
            "source": {"component": component}, "count": 1,
            "firstTimestamp": now, "lastTimestamp": now,
            "reportingComponent": component, "reportingInstance": component,
        }
        try:
            with self.store.lock:
                self.store.create(resources.EVENTS, event)
                if self.store.count(resources.EVENTS) > self.limit:
                    self._trim()
        except ApiError as err:
            log.debug("event not recorded: %s", err)

    def _trim(self) -> None:
        events, _ = self.store.list(resources.EVENTS)
        events.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
        for e in events[: len(events) - self.limit * 4 // 5]:  # trim in batches
            self.store.remove(resources.EVENTS, e["metadata"]["namespace"], e["metadata"]["name"])
