"""Scheduler variants: policy objects plugged into `scheduler.core`, chosen by name.

- `seed`: the real system as incident 601 found it (bugs included).
- `seed-proposal`: the seed plus the incident report's own proposed fixes.
- `seed-head`: the project's later fix (§7 of the spec), with its remaining gaps.
- `reference`: unstuck's corrected design.
"""

from __future__ import annotations

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
