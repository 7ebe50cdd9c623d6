"""ReplicaSet arithmetic: which pods are active, which die on a scale-down, how many to create.

Why: which agent pod disappears on a scale-down decides whether a reserved slot or a running
apply is hit. Upstream picks victims with a fixed comparator (`ActivePodsWithRanks.Less`,
k8s-semantics.md §2); we rank with the same rules so a simulated scale-down and a control-plane
scale-down hit the same pod.

Comparator, most deletable first; the first rule that tells two pods apart decides:
1. unassigned (no node) before assigned;  2. Pending < Unknown < Running;
3. not ready before ready;  4. lower pod-deletion-cost first;
5. more active sibling pods on the same node first;
6. both ready, ready times differ: more recently ready first, compared by power-of-two age
   buckets (LogarithmicScaleDown); equal buckets are settled by UID and rules 7-8 are skipped;
7. higher restart count first;  8. newer first (same log2 buckets, UID tie-break).
A missing time (`ready_since=None`) counts as newest.

Simplification: upstream breaks bucket ties by the random pod UID; `PodView` has no UID, so
the pod name stands in. Pods created by a ReplicaSet carry a random suffix, so name order is
as arbitrary as UID order while staying deterministic.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
BURST_REPLICAS = 500  # most creates or deletes in one ReplicaSet sync (§0.2)
_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}  # other phases rank like Pending
_INT32 = (-(2**31), 2**31 - 1)
LOWEST_DELETION_COST = str(_INT32[0])  # the annotation that ranks a pod before any other (rule 4)


@dataclass(frozen=True)
class PodView:
    """What the ReplicaSet controller looks at. Times are seconds on the caller's clock;
    `terminating` means the pod has a deletionTimestamp; `restart_count` is the maximum over
    its containers."""

    name: str
    node: str = ""
    phase: str = "Running"
    ready: bool = True
    ready_since: float | None = None
    created_at: float = 0.0
    restart_count: int = 0
    deletion_cost: int = 0
    terminating: bool = False


def is_active(pod: PodView) -> bool:
    """Upstream `IsPodActive`: no deletionTimestamp and not Succeeded/Failed."""
    return not pod.terminating and pod.phase not in ("Succeeded", "Failed")


def deletion_cost(annotations: Mapping[str, str]) -> int:
    """The pod-deletion-cost annotation as an int32; 0 when absent or unparsable (§0.2, §2 rule 4).

    Parsing follows Go's `strconv.ParseInt(s, 10, 32)`: optional sign, decimal digits only,
    no spaces or underscores, within int32.
    """
    raw = annotations.get(DELETION_COST_ANNOTATION)
    if raw is None or not re.fullmatch(r"[+-]?[0-9]+", raw):
        return 0
    value = int(raw)
    return value if _INT32[0] <= value <= _INT32[1] else 0


def rank_for_deletion(
    pods: Sequence[PodView], now: float, *, related: Sequence[PodView] | None = None
) -> list[PodView]:
    """`pods` sorted most-deletable first. The co-location rank counts the active pods of
    `related` (all ReplicaSets of the Deployment; default: `pods`) on each pod's node."""
    on_node = Counter(p.node for p in (pods if related is None else related) if is_active(p))
    return sorted(pods, key=functools.cmp_to_key(lambda a, b: _compare(a, b, on_node, now)))


def victims(
    pods: Sequence[PodView], count: int, now: float, *, related: Sequence[PodView] | None = None
) -> list[PodView]:
    """The active pods a scale-down by `count` deletes (at most `BURST_REPLICAS` per sync)."""
    active = [p for p in pods if is_active(p)]
    count = min(count, BURST_REPLICAS, len(active))
    if count <= 0:
        return []
    return rank_for_deletion(active, now, related=related)[:count]


def replicas_to_create(pods: Sequence[PodView], desired: int) -> int:
    """Pods to create now. A terminating pod does not count, so the replacement for a victim
    is created as soon as it is marked for deletion, not when it is gone (§0.2, §3)."""
    return max(0, min(desired - sum(1 for p in pods if is_active(p)), BURST_REPLICAS))


def _compare(a: PodView, b: PodView, on_node: Counter[str], now: float) -> int:
    """Negative when `a` is deleted before `b` (rules 1-8 in the module docstring)."""
    for x, y in (
        (a.node != "", b.node != ""),
        (_PHASE_ORDER.get(a.phase, 0), _PHASE_ORDER.get(b.phase, 0)),
        (a.ready, b.ready),
        (a.deletion_cost, b.deletion_cost),
        (-on_node[a.node], -on_node[b.node]),
    ):
        if x != y:
            return -1 if x < y else 1
    if a.ready and b.ready and a.ready_since != b.ready_since:
        return _newer_first(a.ready_since, b.ready_since, a, b, now)
    if a.restart_count != b.restart_count:
        return -1 if a.restart_count > b.restart_count else 1
    if a.created_at != b.created_at:
        return _newer_first(a.created_at, b.created_at, a, b, now)
    return 0


def _newer_first(ta: float | None, tb: float | None, a: PodView, b: PodView, now: float) -> int:
    if ta is None or tb is None:  # a zero time counts as newest
        return -1 if ta is None else 1
    diff = _age_bucket(ta, now) - _age_bucket(tb, now)
    if diff == 0:
        return (a.name > b.name) - (a.name < b.name)
    return -1 if diff < 0 else 1


def _age_bucket(t: float, now: float) -> int:
    """floor(log2(age in nanoseconds)), -1 for a non-positive age (`logarithmicRankDiff`)."""
    age_ns = round((now - t) * 1e9)
    return age_ns.bit_length() - 1 if age_ns > 0 else -1
