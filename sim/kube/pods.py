"""Pod termination grace and pod start-up delays.

Why: a killed agent keeps running for its grace period (SIGTERM at the delete, SIGKILL at
the deadline), and that window is when a scheduler either hands its work back or loses it.
Rules (k8s-semantics.md §0.3, §3; upstream `CheckGracefulDelete`, `BeforeDelete`):

* grace = DeleteOptions value if given, else the pod's terminationGracePeriodSeconds (API
  default 30 s); 0 when the pod is unscheduled or already Succeeded/Failed; negative -> 1 s.
* SIGKILL at deletion + grace; a preStop hook still running then gets one extra 2 s.
* A second delete may only shorten the grace; an equal or longer one changes nothing. 0 means
  "now" (force delete).
* Grace 0 (force delete, or an unscheduled or terminal pod) removes the object at once: the
  API server does not wait for the kubelet, the name is free and the ReplicaSet replaces the
  pod. Containers on a node whose kubelet is gone keep running until it returns (§3).

Start-up delay (creation to Running) is drawn from a distribution; see `StartupDelay`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from sim.kube._validate import require

DEFAULT_GRACE_S = 30.0
PRESTOP_EXTENSION_S = 2.0
TERMINAL_PHASES = ("Succeeded", "Failed")
_Z99 = 2.3263478740408408  # standard normal quantile at 0.99


def effective_grace(
    requested: float | None, spec_grace: float | None, *, scheduled: bool, phase: str
) -> float:
    """Seconds between the delete and SIGKILL for a first delete of the pod.

    `requested`: DeleteOptions.gracePeriodSeconds (None when absent); `spec_grace`: the pod's
    terminationGracePeriodSeconds (None: the API default, 30 s)."""
    grace = (
        requested
        if requested is not None
        else (DEFAULT_GRACE_S if spec_grace is None else spec_grace)
    )
    if not scheduled or phase in TERMINAL_PHASES:
        return 0.0
    return 1.0 if grace < 0 else float(grace)


def removed_at_once(grace: float) -> bool:
    """Whether a delete with this grace (a first delete's `effective_grace`, or a re-delete's
    requested value) removes the pod object at once instead of marking it Terminating.

    Only 0 does: the API server deletes a grace-0 pod without waiting for the kubelet's
    confirmation, so it goes even when its node is unreachable (§3 "Force delete"); negative
    values are 1 s."""
    return grace == 0


def kill_deadline(deleted_at: float, grace: float, *, prestop_overran: bool = False) -> float:
    """When the kubelet sends SIGKILL; a preStop hook still running at the deadline gets 2 s more."""
    return deleted_at + grace + (PRESTOP_EXTENSION_S if prestop_overran and grace > 0 else 0.0)


def grace_already_over(deleted_at: float, now: float, requested: float) -> bool:
    """Whether a re-delete's shorter grace, counted from the first delete, ended before now:
    the deletion then stays graceful with 1 s (§3), and that 1 s is the grace stamped."""
    return deleted_at + requested < now


def shorten_grace(
    current_deadline: float, now: float, requested: float, *, deleted_at: float | None = None,
    past_grace: float = 1.0,
) -> float:
    """The deadline after re-deleting a terminating pod with grace `requested`: never later.

    Without `deleted_at` the new grace counts from `now`: min(current, now + requested).
    With `deleted_at` (the first delete's time) it follows upstream `BeforeDelete`: a grace
    shorter than the one in force moves the deadline to `deleted_at + requested`; an equal or
    longer one is a no-op. A deadline that would already be past keeps the deletion graceful
    with 1 s (`past_grace`, time-scaled by the local control plane) from now (§3): the kubelet
    still sends SIGTERM first. Negative becomes 1 s, as on a first delete; 0 always means now
    (force).
    """
    requested = 1.0 if requested < 0 else requested
    if requested == 0:
        return min(current_deadline, now)
    if deleted_at is None:
        return min(current_deadline, now + requested)
    if requested >= current_deadline - deleted_at:
        return current_deadline
    if grace_already_over(deleted_at, now, requested):
        return min(current_deadline, now + past_grace)
    return deleted_at + requested


@dataclass(frozen=True)
class StartupDelay:
    """Seconds from pod creation to Running (image present).

    kind "lognormal": median `median_s` and 99th percentile `p99_s`, floored at `minimum_s`.
    kind "fixed": always `median_s`. kind "uniform": uniform on
    [minimum_s, 2 * median_s - minimum_s], so `median_s` stays the median (`p99_s` unused).
    """

    kind: str = "lognormal"
    median_s: float = 4.0
    p99_s: float = 10.0
    minimum_s: float = 1.0

    def __post_init__(self) -> None:
        kinds = ("lognormal", "fixed", "uniform")
        require(self.kind in kinds, "StartupDelay.kind", self.kind, f"use one of {kinds}")
        require(self.minimum_s >= 0, "StartupDelay.minimum_s", self.minimum_s, "must be >= 0")
        require(
            self.median_s >= self.minimum_s,
            "StartupDelay.median_s",
            self.median_s,
            f"must be >= minimum_s ({self.minimum_s})",
        )
        require(
            self.median_s > 0 or self.kind != "lognormal",
            "StartupDelay.median_s",
            self.median_s,
            "must be > 0 for a lognormal",
        )
        require(
            self.p99_s >= self.median_s,
            "StartupDelay.p99_s",
            self.p99_s,
            f"must be >= median_s ({self.median_s})",
        )

    def p99(self) -> float:
        """The 99th percentile of `sample`'s draws: what a bound must leave room for."""
        if self.kind == "fixed":
            return self.median_s
        if self.kind == "uniform":
            return self.minimum_s + 0.99 * 2 * (self.median_s - self.minimum_s)
        return self.p99_s  # >= median_s >= minimum_s, so the floor never moves it

    def sample(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            return self.median_s
        if self.kind == "uniform":
            return rng.uniform(self.minimum_s, 2 * self.median_s - self.minimum_s)
        sigma = (math.log(self.p99_s) - math.log(self.median_s)) / _Z99
        return max(self.minimum_s, rng.lognormvariate(math.log(self.median_s), sigma))
