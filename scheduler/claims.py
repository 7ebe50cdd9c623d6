"""How long an agent keeps the state lock of an apply whose claim is still unanswered.

Our agent takes a workspace's state lock *before* it claims the apply (the claim is the
`exec.invoke` the scheduler stores), so a claimed apply always holds a leased lock. While
the claim waits (a store outage answers 503 and the agent asks again; a partition answers
nothing) the agent renews the lease, but only while the scheduler still answers it: an agent
cut off from the scheduler would otherwise renew for ever a lock the scheduler can only read
as "in doubt", and the task would wait for the run timeout. Past `CLAIM_HOLD_LEASES` leases
without an answer it stops renewing; the lease lapses one lease later, the scheduler reads
the apply as never begun and sends it elsewhere.

Shared by the live agent (scheduler/agent/runs.py, `Run._while_heard`) and the simulated one
(sim/agents.py, sim/state.py), so the two worlds let the same lease lapse at the same time.
"""

from __future__ import annotations

CLAIM_HOLD_LEASES = 4  # 2 min at the default 30 s lease


def renews_for_s(lease_s: float) -> float:
    """Seconds, from the scheduler's last answer, during which a waiting claim's lock is
    still renewed."""
    return CLAIM_HOLD_LEASES * lease_s


def lapses_after_s(lease_s: float) -> float:
    """Seconds, from the scheduler's last answer, after which a waiting claim's lock has
    lapsed: the last renewal lives one lease more. (Live, renewals come every third of a
    lease, so the lease lapses up to a third of a lease sooner; the simulation takes the
    latest moment, the one a scheduler must wait out.)"""
    return (CLAIM_HOLD_LEASES + 1) * lease_s
