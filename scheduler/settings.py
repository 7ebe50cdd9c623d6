"""Tunables of the scheduler, grouped, one docstring per field (kopf `configuration.py` style).

Defaults are the seed commit's constants (shared/specs/seed-system.md §8). They are passed
in explicitly at construction; there is no module-global registry.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from scheduler.heartbeat import PLAN_LIMIT


@dataclass(frozen=True)
class Loops:
    reconcile_period_s: float = 5.0
    """Autoscaler / pod reconcile cycle (main.go StartAutoScaler; the docs wrongly say 30 s)."""
    monitor_period_s: float = 10.0
    """Pending-tasks monitor (checkAndRetryPendingTasks)."""
    health_period_s: float = 30.0
    """C&C health check tick, per connection (each ticks from its own connect)."""
    agent_cleanup_period_s: float = 300.0
    """AgentCleanupService period."""


@dataclass(frozen=True)
class Retries:
    no_pool_s: float = 10.0
    no_free_slot_s: float = 10.0
    assign_failure_s: float = 5.0
    no_connected_agents_s: float = 15.0
    no_available_agent_s: float = 10.0
    backoff_s: tuple[float, ...] = (5.0, 10.0, 20.0, 40.0, 60.0)
    """calculateRetryDelay by retry_count (incremented before the lookup, so a first failure waits 10 s)."""
    confirm_retry_sleeps_s: tuple[float, ...] = (1.0, 2.0, 4.0)
    """ConfirmApply / CreatePlanTask retry loop: only when the call *returns an error*."""

    def backoff(self, retry_count: int) -> float:
        return self.backoff_s[min(max(retry_count, 0), len(self.backoff_s) - 1)]


@dataclass(frozen=True)
class Agents:
    plan_limit: int = PLAN_LIMIT
    """Initial server-side PlanLimit for a connected agent."""
    heartbeat_timeout_s: float = 120.0
    """The health monitor cancels a connection with no heartbeat for this long."""
    offline_after_s: float = 120.0
    """AgentCleanupService marks a DB row offline after this long without a ping."""
    delete_after_s: float = 300.0
    """AgentCleanupService deletes a DB row after this long without a ping."""


@dataclass(frozen=True)
class Slots:
    pod_offline_after_s: float = 120.0
    """FindPodWithFreeSlot skips pods whose LastHeartbeat is older (refreshed by every sync)."""
    reservation_expiry_s: float = 24 * 3600.0
    """cleanupExpiredReservations releases reserved slots older than this."""
    unhealthy_grace_s: float = 120.0
    """checkAndRestartUnhealthyPods only deletes pods older than this."""
    unhealthy_backoff_s: tuple[float, ...] = (0.0, 60.0, 120.0, 240.0, 480.0, 600.0)
    unhealthy_max_restarts: int = 5
    rebuild_pause_s: float = 2.0
    """RebuildIdlePods pause between deleting and recreating."""


@dataclass(frozen=True)
class SeedQuirks:
    dispatch_latency_s: float = 0.2
    """Time between pushTaskToAgent reading the task and its Save + send.

    The Go code does several DB round trips and a C&C lookup in between, with no lock for
    applies; this gap is where the F7 races (double dispatch, reconcile vs allocation) live.
    """
    doc_variant_reset: bool = False
    """F4: on a reservation miss, reset to pending (the task-601 doc variant) instead of
    falling through to a new slot."""
    clock_origin_s: float = 0.0
    """Seconds of the day at t = 0, so freeze windows ("HH:MM") can be evaluated from `now`."""
    epoch_unix_s: float = 1_762_617_600.0
    """Unix time at t = 0 (2025-11-08), for pod names `iac-agent-<pool>-<unix-seconds>`."""
    bundle_retry_goroutines: bool = True
    """scheduleRetry goroutines of one workspace that wake at the same instant share one timer,
    and an exit they would all take alike is taken once for all of them (`timer_retry` in
    scheduler/variants/seed.py). Off: one timer and one history row pair per goroutine, the
    literal model, whose stuck days run two to five times slower. Only the draws of Go's map
    order that the identical calls would have discarded differ."""


@dataclass(frozen=True)
class ReferencePolicy:
    reconcile_period_s: float = 5.0
    """Level-triggered reconcile over every non-terminal task."""
    plan_ttl_s: float = 24 * 3600.0
    """An unconfirmed apply_pending plan is discarded after this long and the workspace unlocked."""
    retry_budget: int = 5
    """Dispatch attempts per phase before the task fails loudly."""
    retry_backoff_s: tuple[float, ...] = (5.0, 10.0, 20.0, 40.0, 60.0)
    agent_timeout_s: float = 60.0
    """An agent with no heartbeat for this long is presumed lost: its plans are re-queued, its
    applies settled from the state backend (committed, still in doubt, or not)."""
    run_timeout_s: float = 3600.0
    """A dispatched phase with no report for this long has run too long: a plan its agent
    still lists fails (run again, it would time out again), any other is presumed lost (a
    plan re-queued, an apply settled from the state)."""
    reservation_deletion_cost: int = 1000
    """pod-deletion-cost written on pods that hold a reservation or a running task."""
    reservation_hold_s: float = 900.0
    """An unconfirmed plan keeps its pod's plan_and_apply slot (and counts as demand) this long;
    after it, a waiting plan may take the slot (the stored plan can apply on any pod)."""
    apply_wait_deadline_s: float = 1800.0
    """A confirmed apply that found no capacity for this long fails loudly (workspace unlocked)."""
    idle_pod_cooldown_s: float = 60.0
    """A bare pod must be idle this long before the reference deletes it on scale-down."""
    agent_startup_grace_s: float = 180.0
    """A new pod's agent has this long to connect before the pod counts as unhealthy."""
    report_grace_s: float = 25.0
    """A running task missing from its agent's heartbeats for this long after dispatch is lost."""
    skip_quiet_reconciles: bool = True
    """Skip a periodic reconcile when the last one changed nothing, nothing has happened
    since, and no deadline or timeout has come due: it would change nothing either. Needs a
    store with a `revision`; off, every pass runs (the histories are byte-identical)."""


@dataclass(frozen=True)
class Settings:
    loops: Loops = field(default_factory=Loops)
    retries: Retries = field(default_factory=Retries)
    agents: Agents = field(default_factory=Agents)
    slots: Slots = field(default_factory=Slots)
    seed: SeedQuirks = field(default_factory=SeedQuirks)
    reference: ReferencePolicy = field(default_factory=ReferencePolicy)


UNSCALED = frozenset({"epoch_unix_s", "clock_origin_s"})


def scaled_settings(settings: Settings, factor: float) -> Settings:
    """Every duration of `settings` (fields named `*_s`) multiplied by `factor`.

    For tests and demos that must run in seconds (`unstuck serve --time-scale`), and for a
    simulation of such a run (a scenario's `time_scale`, sim/world.py): `0.05` turns the reference's
    60 s agent timeout into 3 s and the seed's 10 s retry into 0.5 s, keeping every ratio, so
    the same races happen in the same order. Calendar anchors (`epoch_unix_s`,
    `clock_origin_s`) are not durations and stay as they are.
    """
    if not factor > 0:
        raise ValueError(f"time scale must be > 0, got {factor!r}")

    def scale(obj):
        changes = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                changes[f.name] = scale(value)
            elif f.name.endswith("_s") and f.name not in UNSCALED:
                if isinstance(value, tuple):
                    changes[f.name] = tuple(v * factor for v in value)
                elif isinstance(value, (int, float)) and not isinstance(value, bool):
                    changes[f.name] = value * factor
        return dataclasses.replace(obj, **changes)

    return scale(settings)
