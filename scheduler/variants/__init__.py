"""Scheduler variants: policy objects plugged into `scheduler.core`, chosen by name.

- `seed`: the real system as incident 601 found it (bugs included).
- `seed-proposal`: the seed plus the incident report's own proposed fixes.
- `seed-head`: the project's later fix (§7 of the spec), with its remaining gaps.
- `reference`: unstuck's corrected design.
"""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.variants.reference import ReferencePolicy
from scheduler.variants.seed import SeedPolicy
from scheduler.variants.seed_head import SeedHeadPolicy
from scheduler.variants.seed_proposal import SeedProposalPolicy

VARIANTS = {
    "seed": SeedPolicy,
    "seed-proposal": SeedProposalPolicy,
    "seed-head": SeedHeadPolicy,
    "reference": ReferencePolicy,
}
NAMES = tuple(VARIANTS)


class UnknownVariant(ValueError):
    pass


def policy_class(name: str):
    try:
        return VARIANTS[name]
    except KeyError:
        raise UnknownVariant(
            f"unknown scheduler {name!r}: choose one of {', '.join(NAMES)}"
        ) from None


@dataclass(frozen=True)
class AgentTraits:
    """The agent a scheduler ships with, in the four ways both worlds model it (the policy
    classes' `agent_*` attributes): the SimPy agents, `unstuck agent --scheduler` and the
    service's check that an agent is the right kind all read them here."""

    on_sigterm: str  # "drain" (ours) or "exit" (the seed's)
    reports: str  # scheduler.reports.UNTIL_DELIVERED or RETRY_THEN_DROP
    state_lease_s: float | None  # None: the seed's lock, without a lease
    claims_runs: bool


def agent_of(name: str) -> AgentTraits:
    policy = policy_class(name)
    return AgentTraits(policy.agent_on_sigterm, policy.agent_reports,
                       policy.agent_state_lease_s, policy.agent_claims_runs)
