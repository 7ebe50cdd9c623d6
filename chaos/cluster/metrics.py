"""Where the HPA's metric comes from: a value an experiment sets, or a scraped gauge.

Why pluggable: there is no metrics-server here, and the interesting metric for our scheduler
is one it exports itself (queue depth, busy slots). A source answers, for one HPA and its
ready pods, the per-pod values `sim.kube.hpa.reconcile` expects (utilization ratios such as
0.9 for 90 %, or average values), or None when it has no sample.
"""

from __future__ import annotations

import http.client
import math
import threading
import urllib.request
from typing import Protocol

from prometheus_client.parser import text_string_to_metric_families

SCRAPE_ANNOTATION = "unstuck.io/metrics-url"  # "http://127.0.0.1:PORT/metrics#gauge_name"


class MetricUnavailable(Exception):
    """A source that could not be read (an endpoint down, a bad exposition). The HPA
    controller reports it on the HPA, as upstream's FailedGet...Metric, and reconciles on."""


class MetricSource(Protocol):
    def sample(self, hpa: dict, ready_pods: int) -> list[float] | None:
        """The per-pod values, None with no sample yet; MetricUnavailable when unreadable."""


class MetricBoard:
    """Values set from outside (an experiment, a test, `PUT /unstuck/v1/metrics/NS/HPA`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, str], list[float] | float] = {}

    USAGE = ('metrics body must be {"value": 0.9} (a utilization ratio or average value) '
             'or {"values": [..per pod..]}, finite numbers')

    def set(self, namespace: str, hpa: str, value: float | list[float]) -> None:
        """Store a value; anything but a finite number (or a list of them) is a ValueError,
        as the controller could not reconcile on it."""
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                   for v in values):
            raise ValueError(f"{self.USAGE}, not {value!r}")
        with self._lock:
            self._values[(namespace, hpa)] = value

    def clear(self, namespace: str, hpa: str) -> None:
        with self._lock:
            self._values.pop((namespace, hpa), None)

    def sample(self, hpa: dict, ready_pods: int) -> list[float] | None:
        with self._lock:
            value = self._values.get((hpa["metadata"]["namespace"], hpa["metadata"]["name"]))
        if value is None:
            return None
        if isinstance(value, list):
            return list(value)
        return [float(value)] * ready_pods


def scrape_gauge(url: str, name: str, timeout_s: float = 2.0) -> float | None:
    """Sum of a gauge's samples in a Prometheus text exposition at a local URL, None when
    the gauge is absent; MetricUnavailable when the endpoint cannot be read or the sum is not
    a finite number."""
    if not url.startswith(("http://127.0.0.1", "http://localhost")):
        raise MetricUnavailable(f"{SCRAPE_ANNOTATION}: {url!r}: only local metrics endpoints "
                                "are scraped; use http://127.0.0.1:PORT/metrics#name")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - local only
            text = resp.read().decode()
        # prometheus-client's own parser: label values with spaces or braces, escapes,
        # timestamps and NaN/Inf spellings as the exposition format has them.
        values = [sample.value for family in text_string_to_metric_families(text)
                  for sample in family.samples if sample.name == name]
        total, found = float(sum(values)), bool(values)
    except (OSError, http.client.HTTPException, ValueError, IndexError) as err:
        raise MetricUnavailable(f"cannot read {name} from {url}: {err}") from None
    if found and not math.isfinite(total):
        raise MetricUnavailable(f"{name} from {url} is {total}, not a finite number")
    return total if found else None


class Sources:
    """The default: a scrape when the HPA names an endpoint, else the board."""

    def __init__(self, board: MetricBoard) -> None:
        self.board = board

    def sample(self, hpa: dict, ready_pods: int) -> list[float] | None:
        spec = (hpa["metadata"].get("annotations") or {}).get(SCRAPE_ANNOTATION)
        if not spec:
            return self.board.sample(hpa, ready_pods)
        url, _, name = spec.partition("#")
        total = scrape_gauge(url, name)
        if total is None or ready_pods <= 0:
            return None
        return [total / ready_pods] * ready_pods
