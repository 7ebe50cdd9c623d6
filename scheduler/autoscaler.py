"""The seed's AutoScalePods decision (seed-system.md §4 B–F), as a pure function.

Inputs are the counts the Go code queries; the output is the desired pod count and the
rule that produced it. The quirks are kept on purpose: the cold-start value is overwritten
by the rule chain (so a pool at zero pods only ever reaches min_replicas), reserved slots are
divided by 3 although pods have 4, and a confirmed apply_pending task that lost its slot is
never counted as demand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PoolSnapshot:
    current: int  # managed pods
    total: int
    used: int
    reserved: int
    min_replicas: int
    max_replicas: int
    pending_tasks: int  # status pending, k8s workspaces of the pool (cold start)
    unblocked_pending_pa: int  # pending plan_and_apply with no earlier active task in its workspace
    unblocked_pending_any: int
    pods_with_running: int
    any_apply_pending: bool


@dataclass(frozen=True)
class Decision:
    desired: int
    rule: str
    skipped_scale_down: bool = False


def decide(s: PoolSnapshot) -> Decision:
    util = (s.used + s.reserved) / s.total if s.total else 0.0
    desired = s.current
    rule = ""
    jump = False
    if s.total == 0 or s.current == 0:
        # C: computed, then overwritten by E below (control falls through).
        desired = max(s.min_replicas, 1) if s.pending_tasks > 0 else s.min_replicas
        rule = "C cold-start"
    else:
        if s.unblocked_pending_pa > 0:
            required = s.pods_with_running + s.unblocked_pending_pa
            if required > s.current:
                desired = min(required, s.max_replicas)
                rule = "D unblocked pending plan_and_apply"
                jump = True
    if not jump:
        if s.reserved > 0:
            desired = max(s.current, math.ceil(s.reserved / 3))
            rule = "E1 reserved"
        elif util > 0.8:
            desired = s.current + 1
            rule = "E2 utilization > 0.8"
        elif util < 0.2 and s.used == 0:
            desired = s.current if s.unblocked_pending_any > 0 else s.current - 1
            rule = "E3 idle"
        else:
            desired = s.current
            rule = "E4 keep"
    desired = min(max(desired, s.min_replicas), s.max_replicas)
    if desired < s.current and s.any_apply_pending:
        return Decision(s.current, rule + "; scale-down skipped: apply_pending in pool", True)
    return Decision(desired, rule)
