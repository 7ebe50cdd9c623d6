"""Prometheus metrics of the live service, on its own registry (served at /metrics).

- `unstuck_tasks{status}`: tasks by status, read from the store at each scrape;
- `unstuck_stuck_tasks`: confirmed tasks in apply_pending for longer than `stuck_after_s`
  since their confirmation (the checker's apply_pending bound, live);
- `unstuck_confirm_to_apply_seconds`: from a task's first confirmation to the first apply
  start (`exec.invoke` apply) after it, as docs/metrics.md defines it;
- `unstuck_recovery_seconds`: from a `fault` row (or its effect: a deletion that names an
  HPA scale-down, a task's first failed write in a db-write-failure window; docs/metrics.md
  "Effects") to the next forward progress of each task it hit (a transition forward, a
  plan's end, or its run beginning; docs/metrics.md, "Recovery latency"), measured as rows
  are appended;
- `unstuck_history_rows_total{kind}` and `unstuck_agents_connected`;
- `unstuck_state_read_errors_total`: reads of the agents' state backend (`--backend-dir`)
  that failed; the reference waits on them (scheduler/service/state_reader.py).

The two histograms are fed by `RowObserver`, which follows the history as it is written, so
they measure exactly what the checker will measure afterwards (the checker's figures are the
reference; these are for dashboards and the HPA).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from scheduler.model import TaskStatus
from scheduler.service.effects import fields
from scheduler.service.write_faults import TYPE as DB_FAULT
from scheduler.stores.failures import worst

BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)
PROGRESS = {"running", "applied", "success", "planned_and_finished"}
TERMINAL = {s.value for s in TaskStatus if s.terminal}


class RowObserver:
    """Follows history rows to time confirm-to-apply and recoveries."""

    def __init__(self, confirm_to_apply: Histogram, recovery: Histogram) -> None:
        self.c2a: Histogram | _Unobserved = confirm_to_apply
        self.recovery: Histogram | _Unobserved = recovery
        self.status: dict[int, str] = {}
        self.confirmed_at: dict[int, float | None] = {}  # first confirm of the epoch, until applied
        self.ties: dict[int, set[str]] = {}  # pods and agents the task is tied to
        self.waiting: dict[int, list[float]] = {}  # fault clocks per task
        self.awaiting_human: dict[int, list[float]] = {}  # faults hit while unconfirmed
        self.db_windows: list[dict[str, Any]] = []  # db-write-failure rows in force
        self.db_hit: set[tuple[int, int]] = set()  # (window seq, task): its first failed write
        self.dispatched_to: dict[int, str | None] = {}  # task -> the agent of its latest dispatch

    def __call__(self, row: dict[str, Any]) -> None:
        kind, task, t = row["kind"], row.get("task"), float(row["t"])
        if kind == "fault":
            if (row.get("data") or {}).get("type") == DB_FAULT:
                self.db_windows.append(row)
            self._fault(row, t)
            return
        if kind == "fault.end" and (row.get("data") or {}).get("type") == DB_FAULT:
            ended = next((w for w in self.db_windows if fields(w) == fields(row)), None)
            if ended is not None:  # the oldest alike, as the checker reads the ends
                self.db_windows.remove(ended)
            return
        if kind in ("pod.terminating", "pod.removed") and (row.get("data") or {}).get("fault") is not None:
            self._fault({"pod": row.get("pod")}, t)  # an untargeted fault's effect hits here
            return
        if task is None:
            return
        if kind == "task.created":
            self.status[task] = row.get("to_status") or "pending"
        elif kind == "task.confirmed":
            self.confirmed_at.setdefault(task, t)
            for _ in self.awaiting_human.pop(task, []):
                self.waiting.setdefault(task, []).append(t)
        elif kind == "store.write_failed":
            self._write_failed(row, task, t)
        elif kind == "dispatch":
            self.dispatched_to[task] = row.get("agent")
        elif kind == "exec.invoke":
            if (row.get("data") or {}).get("action") == "apply":
                start = self.confirmed_at.pop(task, None)
                if start is not None:
                    self.c2a.observe(t - start)
            # A run that began is progress for a task hit after its dispatch (its claim refused
            # by a failed write, say): the invoke of the agent its latest dispatch went to.
            if self.status.get(task) == "running" and row.get("agent") == self.dispatched_to.get(task):
                self._progress(task, t)
        elif kind == "task.transition":
            before, after = self.status.get(task), row.get("to_status")
            self.status[task] = after
            plan_end = (after == "apply_pending" and before == "running"
                        and (row.get("data") or {}).get("stage") == "apply_pending")
            if plan_end:
                self.confirmed_at.pop(task, None)  # a new plan: a new epoch needs a new confirm
            # Progress as docs/metrics.md defines it; a plan's end is one (what is left waits
            # on a human).
            forward = (after in PROGRESS or plan_end
                       or (after in ("failed", "cancelled") and row.get("reason")))
            if forward:
                self._progress(task, t)
            if after in TERMINAL:
                self.ties.pop(task, None)
                self.awaiting_human.pop(task, None)
        for key in ("pod", "agent"):
            if row.get(key) and kind in ("slot.assigned", "slot.reserved", "dispatch", "exec.invoke",
                                         "task.transition"):
                self.ties.setdefault(task, set()).add(row[key])

    def replay(self, rows: Iterable[dict[str, Any]]) -> None:
        """Follow the rows a restarted service finds in its history without observing: a
        confirm or a fault before the restart is timed by the row after it, while what the
        previous process observed is not observed twice (its histograms died with it)."""
        c2a, recovery = self.c2a, self.recovery
        self.c2a = self.recovery = _Unobserved()
        try:
            for row in rows:
                self(row)
        finally:
            self.c2a, self.recovery = c2a, recovery

    def _fault(self, row: dict[str, Any], t: float) -> None:
        data = row.get("data") or {}
        targets = {v for v in (row.get("pod"), row.get("agent"), data.get("target")) if v}
        for task, status in self.status.items():
            if status in TERMINAL:
                continue
            hit = (data.get("type") == "scheduler-restart" or row.get("task") == task
                   or bool(targets & self.ties.get(task, set())))
            if hit:
                self._hit(task, status, t)

    def _progress(self, task: int, t: float) -> None:
        for clock in self.waiting.pop(task, []):
            self.recovery.observe(t - clock)

    def _write_failed(self, row: dict[str, Any], task: int, t: float) -> None:
        """A task's write failed in a db-write-failure window: that window's hit on it, once
        per window, in the window whose rate is in force (the highest, the first started on a
        tie), as the checker counts it (docs/metrics.md, "Effects")."""
        status = self.status.get(task)
        if status is None or status in TERMINAL:
            return
        windows = [w for w in self.db_windows if _in_window(w, t)]
        if not windows:
            return
        _, cause = worst([((w.get("data") or {}).get("rate") or 1.0, w) for w in windows])
        if (cause["seq"], task) not in self.db_hit:
            self.db_hit.add((cause["seq"], task))
            self._hit(task, status, t)

    def _hit(self, task: int, status: str, t: float) -> None:
        if status == "apply_pending" and task not in self.confirmed_at:
            self.awaiting_human.setdefault(task, []).append(t)
        else:
            self.waiting.setdefault(task, []).append(t)


def _in_window(fault: dict[str, Any], t: float) -> bool:
    """Until its `fault.end`, or `data.duration_s` after it when the end never came."""
    duration = (fault.get("data") or {}).get("duration_s")
    return duration is None or t <= float(fault["t"]) + float(duration)


class _Unobserved:
    def observe(self, value: float) -> None:
        pass


class ServiceMetrics:
    def __init__(self, *, tasks_by_status: Callable[[], dict[str, int]],
                 stuck: Callable[[], int], agents_connected: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.c2a = Histogram("unstuck_confirm_to_apply_seconds",
                             "From a task's first confirmation to its apply start.",
                             buckets=BUCKETS, registry=self.registry)
        self.recovery = Histogram("unstuck_recovery_seconds",
                                  "From a fault to the next forward progress of each task it hit.",
                                  buckets=BUCKETS, registry=self.registry)
        self.rows = Counter("unstuck_history_rows", "History rows appended, by kind.", ["kind"],
                            registry=self.registry)
        self.state_read_errors = Counter(
            "unstuck_state_read_errors", "Reads of the agents' state backend that failed.",
            registry=self.registry)
        self.observer = RowObserver(self.c2a, self.recovery)
        g = Gauge("unstuck_stuck_tasks",
                  "Confirmed tasks in apply_pending for longer than the bound since their confirmation.",
                  registry=self.registry)
        g.set_function(lambda: float(stuck()))
        a = Gauge("unstuck_agents_connected", "Agents registered and polling.", registry=self.registry)
        a.set_function(lambda: float(agents_connected()))
        self.registry.register(_TasksCollector(tasks_by_status))

    def observe_row(self, row: dict[str, Any]) -> None:
        self.rows.labels(row["kind"]).inc()
        self.observer(row)


class _TasksCollector:
    def __init__(self, read: Callable[[], dict[str, int]]) -> None:
        self.read = read

    def collect(self):
        fam = GaugeMetricFamily("unstuck_tasks", "Tasks in the store, by status.", labels=["status"])
        counts = self.read()
        for status in TaskStatus:
            fam.add_metric([status.value], float(counts.get(status.value, 0)))
        yield fam

    def describe(self):
        return []
