"""How an agent delivers the report of a finished phase, shared by the live and simulated agents.

A report carries the one fact the scheduler cannot learn elsewhere: whether a plan found
changes, whether an apply committed. Our agent therefore delivers every report at least
once. It retries each report until the scheduler answers below 500 (a 409 for a stale run
also counts as an answer); only a stopping agent gives up, when its grace period ends (the
live outbox then tries 3 more times; a simulated pod is killed at the end of its grace). Meanwhile it keeps listing the report's task in its heartbeat's
`current_tasks`, so the scheduler waits for an outcome that is on its way instead of giving
the run up as "alive but not running the task".

The seed's agent retries an HTTP report 3 times (base 1 s, capped at 10 s) and then drops
it (seed-system.md §2.2). That lost report is how a committed apply ended as `failed` under a
long database outage. The simulated and scripted seed agents keep those numbers (`SEED_*`,
`retry_after`).
"""

from __future__ import annotations

UNTIL_DELIVERED = "until-delivered"  # our agent (`ReferencePolicy.agent_reports`)
RETRY_THEN_DROP = "retry-then-drop"  # the seed's HTTP client (`SeedPolicy.agent_reports`)

MAX_BACKOFF_S = 2.0
SEED_RETRIES, SEED_BASE_S, SEED_CAP_S = 3, 1.0, 10.0  # the seed's HTTP client (§2.2)


def backoff(attempts: int, cap_s: float = MAX_BACKOFF_S) -> float:
    """Seconds before the next try of a report that has failed `attempts` times (1, 2, ...).
    The wait starts at 0.1 s so that a blip costs little, and it is capped low because the
    scheduler is waiting for the report to finish the run."""
    return min(cap_s, 0.05 * 2 ** min(attempts, 8))


def retry_after(policy: str, attempt: int) -> float | None:
    """Seconds before try `attempt + 1` of a report that try `attempt` (0, 1, ...) failed to
    deliver, or None when the agent gives it up: the one rule the simulated and scripted
    agents follow (the live outbox sleeps `backoff` itself)."""
    if policy == UNTIL_DELIVERED:
        return backoff(attempt + 1)
    if attempt < SEED_RETRIES:
        return min(SEED_CAP_S, SEED_BASE_S * 2 ** attempt)
    return None
