"""ReplicaSet victim ranking and replacement, rules from k8s-semantics.md §0.2 and §2."""

from __future__ import annotations

import pytest

from sim.kube import replicasets as rs
from sim.kube.replicasets import PodView

NOW = 10_000.0


def first_victim(*pods: PodView) -> str:
    return rs.victims(list(pods), 1, NOW)[0].name


@pytest.mark.parametrize(
    ("doomed", "kept", "rule"),
    [
        (PodView("b", node=""), PodView("a", node="n1"), "1 unassigned before assigned"),
        (
            PodView("b", node="n1", phase="Pending", ready=False),
            PodView("a", node="n1", phase="Unknown", ready=False),
            "2 Pending before Unknown",
        ),
        (
            PodView("b", node="n1", phase="Unknown", ready=False),
            PodView("a", node="n1", phase="Running", ready=False),
            "2 Unknown before Running",
        ),
        (
            PodView("b", node="n1", ready=False),
            PodView("a", node="n1", ready_since=5.0),
            "3 not ready first",
        ),
        (
            PodView("b", node="n1", deletion_cost=-5),
            PodView("a", node="n1"),
            "4 lower deletion cost first",
        ),
        (
            PodView("b", node="n1", ready_since=NOW - 10),
            PodView("a", node="n1", ready_since=NOW - 1000),
            "6 more recently ready first (different log2 buckets)",
        ),
        (
            PodView("b", node="n1", ready_since=None),
            PodView("a", node="n1", ready_since=NOW - 1000),
            "6 a missing ready time counts as newest",
        ),
        (
            PodView("b", node="n1", ready=False, restart_count=3),
            PodView("a", node="n1", ready=False),
            "7 more restarts first",
        ),
        (
            PodView("b", node="n1", ready=False, created_at=NOW - 10),
            PodView("a", node="n1", ready=False, created_at=NOW - 1000),
            "8 newer first",
        ),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_each_rule_in_isolation(doomed: PodView, kept: PodView, rule: str) -> None:
    # The names are chosen so that the name tie-break alone would pick the *other* pod.
    assert first_victim(kept, doomed) == doomed.name
    assert first_victim(doomed, kept) == doomed.name


def test_crowded_node_loses_a_pod_first() -> None:
    # Rule 5: rank = active sibling pods on the same node; the node with more goes first.
    pods = [PodView("a", node="n1"), PodView("b", node="n2"), PodView("c", node="n2")]
    assert rs.victims(pods, 1, NOW)[0].node == "n2"


def test_terminating_pods_do_not_count_for_the_rank() -> None:
    # n1: 2 active; n2: 1 active + 1 terminating. Counting the terminating pod would tie the
    # nodes and the stable order would pick "b" on n2.
    pods = [
        PodView("b", node="n2"),
        PodView("d", node="n2", terminating=True),
        PodView("a", node="n1"),
        PodView("e", node="n1"),
    ]
    assert rs.victims(pods, 1, NOW)[0].node == "n1"


def test_rank_counts_related_pods_of_the_whole_deployment() -> None:
    pods = [PodView("a", node="n1"), PodView("b", node="n2")]
    old_rs = [PodView("x", node="n1"), PodView("y", node="n1")]
    assert rs.victims(pods, 1, NOW, related=pods + old_rs)[0].name == "a"


def test_same_ready_bucket_is_settled_by_uid_and_skips_restarts() -> None:
    # Rule 6: ages 900 s and 990 s share floor(log2(ns)) = 39, so the UID (here the name)
    # decides and rule 7 (restarts) is never reached.
    young = PodView("z-young", node="n1", ready_since=NOW - 900, restart_count=9)
    old = PodView("a-old", node="n1", ready_since=NOW - 990)
    assert first_victim(young, old) == "a-old"


def test_deletion_cost_protects_the_busy_pod() -> None:
    # §2 consequences: annotating a busy pod with a higher cost keeps it, even though it is
    # the newest (and would otherwise go first).
    busy = PodView("busy", node="n1", ready_since=NOW - 5, deletion_cost=100)
    idle = [PodView(f"idle-{i}", node="n1", ready_since=NOW - 4000) for i in range(3)]
    assert "busy" not in [p.name for p in rs.victims([busy, *idle], 3, NOW)]


def test_mixed_ranking_order() -> None:
    pods = [
        PodView("ready-old", node="n1", ready_since=NOW - 5000),
        PodView("ready-new", node="n1", ready_since=NOW - 20),
        PodView("costly-notready", node="n1", ready=False, deletion_cost=10),
        PodView("notready", node="n1", ready=False),
        PodView("running-unscheduled", node="", ready=False),
        PodView("pending", node="n2", phase="Pending", ready=False),
        PodView("lonely", node="n2", ready_since=NOW - 20),
    ]
    assert [p.name for p in rs.rank_for_deletion(pods, NOW)] == [
        "running-unscheduled",  # rule 1
        "pending",  # rule 2
        "notready",  # rule 3, then rule 4 (cost 0 < 10)
        "costly-notready",
        "ready-new",  # rule 5 (n1 has 4 pods, n2 has 2), then rule 6
        "ready-old",
        "lonely",
    ]


def test_victims_skip_inactive_pods_and_cap_at_active() -> None:
    pods = [
        PodView("a", node="n1", terminating=True),
        PodView("b", node="n1", phase="Failed"),
        PodView("c", node="n1"),
    ]
    assert [p.name for p in rs.victims(pods, 5, NOW)] == ["c"]
    assert rs.victims(pods, 0, NOW) == []


@pytest.mark.parametrize(
    ("pods", "desired", "expected"),
    [
        # §0.2: a terminating victim no longer counts, so its replacement is created at once.
        ([PodView("a"), PodView("b", terminating=True)], 2, 1),
        ([PodView("a"), PodView("b")], 2, 0),
        ([PodView("a"), PodView("b", phase="Succeeded")], 2, 1),
        ([PodView("a"), PodView("b")], 1, 0),  # a surplus is the victims' job, never negative
        ([], 600, 500),  # at most BurstReplicas per sync
    ],
)
def test_replicas_to_create(pods, desired, expected) -> None:
    assert rs.replicas_to_create(pods, desired) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 0),  # absent
        ("100", 100),
        ("-7", -7),
        ("+3", 3),
        ("2147483647", 2**31 - 1),
        ("2147483648", 0),  # out of int32: unparsable counts as 0 (§2 rule 4)
        ("1.5", 0),
        (" 5", 0),
        ("abc", 0),
    ],
)
def test_deletion_cost_annotation(value, expected) -> None:
    annotations = {} if value is None else {rs.DELETION_COST_ANNOTATION: value}
    assert rs.deletion_cost(annotations) == expected


def test_is_active() -> None:
    assert rs.is_active(PodView("a", phase="Pending"))
    assert not rs.is_active(PodView("a", terminating=True))
    assert not rs.is_active(PodView("a", phase="Succeeded"))
