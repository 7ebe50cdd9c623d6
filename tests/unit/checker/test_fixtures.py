"""The checked-in example histories, judged: exact violations, times and witnesses.

Each file in tests/fixtures/histories is a small hand-written run (docs/checker.md lists
them). These tests pin what the checker says about each, down to the witness seq tuples, so
a change in a rule or in the witness algorithm shows up here as a readable diff.
"""

from __future__ import annotations

import pytest

from unstuck import checker

from .story import FIXTURES, fixture

# (invariant, task, t, witness) per fixture; an empty list means every invariant holds.
EXPECTED = {
    "incident-601-seed.jsonl": [
        # 440 + 300: confirmed at 440, still apply_pending at run end (1800).
        ("apply_pending_bound", 601, 740.0, (2, 9, 10, 11, 19, 21, 22, 23)),
        # The lock (seq 8) has no active owner from the confirm on: same moment.
        ("no_wedged_workspace", 601, 740.0, (2, 8, 9, 10, 11, 19, 21, 22, 23)),
        ("drained", 601, 1800.0, (2, 9, 10, 11, 19, 21, 22, 23)),
    ],
    "incident-601-reference.jsonl": [],
    "double-confirm-seed-head.jsonl": [
        ("at_most_one_apply_per_confirmation", 7, 201.1, (2, 9, 10, 11, 17, 19, 20)),
        ("per_workspace_serialization", 7, 201.1, (19, 20)),
    ],
    "double-confirm-reference.jsonl": [],
    "apply-without-confirmation.jsonl": [
        ("no_apply_without_confirmation", 1, 100.0, (1, 8, 10, 11)),
        ("no_apply_without_confirmation", 2, 290.0, (17, 24, 25, 27, 28)),
        ("no_apply_without_confirmation", 3, 545.0, (34, 42, 48, 50, 51)),
        # The dispatch (no digest) is covered; the invoke's digest is not the confirmed one.
        ("no_apply_without_confirmation", 4, 790.5, (57, 64, 65, 67, 69)),
    ],
    "apply-retry-after-rollback.jsonl": [],
    "agent-disconnect-wedge-f8.jsonl": [
        # failed at 350 + 300: the task is terminal, the lock from the plan is not released.
        ("no_wedged_workspace", 8, 650.0, (2, 8, 9, 10, 14, 15, 18)),
    ],
    "two-tasks-sequential.jsonl": [],
    "two-tasks-overlapping.jsonl": [
        ("per_workspace_serialization", 21, 120.0, (3, 8, 12)),
        ("per_workspace_serialization", 21, 302.5, (22, 25)),
        # Both applies run on agent-a: one agent, two plan_and_apply at once.
        ("agent_capacity", 21, 302.5, (10, 17, 19, 22, 23, 25)),
    ],
    "lost-task.jsonl": [
        # Task 31's plan starts on agent-a while task 30's plan_and_apply runs there.
        ("agent_capacity", 31, 20.5, (5, 6, 8, 10)),
        ("no_lost_task", 32, 200.0, (26,)),
        ("no_lost_task", 30, 400.0, (1, 13, 17, 18, 19, 20, 21)),
        ("drained", 30, 700.0, (1, 13, 17, 18, 19, 20, 21)),
        # A long apply still executing is not lost, but it is not drained either.
        ("drained", 31, 700.0, (6, 16, 22, 23)),
    ],
    "drain-pending-forever.jsonl": [
        ("drained", 40, 1300.0, (1, 2, 3)),
    ],
}


def test_every_fixture_file_has_an_expectation() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.jsonl")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_verdict(name: str) -> None:
    verdict = checker.check(fixture(name))
    got = [(v.invariant, v.task, v.t, v.witness) for v in verdict.violations]
    assert got == EXPECTED[name]
    assert verdict.ok is (not EXPECTED[name])


def test_incident_601_witness_tells_the_story() -> None:
    rows = fixture("incident-601-seed.jsonl")
    verdict = checker.check(rows)
    (bound,) = verdict.of("apply_pending_bound")
    kinds = [r["kind"] for r in checker.witness_rows(rows, bound)]
    assert kinds == ["task.created", "task.transition", "slot.reserved", "fault",
                     "task.confirmed", "slot.released", "dispatch.failed", "retry.scheduled"]
    assert bound.message == ("task 601: confirmed, in apply_pending since t=440, still there "
                             "at run end (bound 300 s)")
    (wedged,) = verdict.of("no_wedged_workspace")
    assert wedged.workspace == "ws-mb7m9ii5ey"
    assert "locked since t=160" in wedged.message
    assert "confirmed but not applied since t=440" in wedged.message
    assert verdict.stuck_tasks == (601,)
    assert verdict.counts() == {
        "no_apply_without_confirmation": 0, "at_most_one_apply_per_confirmation": 0,
        "per_workspace_serialization": 0, "no_lost_task": 0, "no_unrecorded_apply": 0,
        "no_stale_plan_apply": 0, "agent_capacity": 0,
        "apply_pending_bound": 1, "drained": 1, "no_wedged_workspace": 1,
    }


def test_messages_say_why_an_apply_was_not_covered() -> None:
    verdict = checker.check(fixture("apply-without-confirmation.jsonl"))
    reasons = [v.message.split(": ", 2)[2] for v in verdict.violations]
    assert reasons == [
        "the task was never confirmed",
        "the only confirmation of this plan carried no user (data.user is null)",
        "the confirmation came before the latest plan ended, so it does not cover it",
        "applies digest 'd4-other' but the confirmation was for 'd4'",
    ]


def test_verdict_serialises_to_plain_json() -> None:
    import json

    d = checker.check(fixture("incident-601-seed.jsonl")).to_dict()
    again = json.loads(json.dumps(d))
    assert again["ok"] is False
    assert again["violations"][0]["witness"] == [2, 9, 10, 11, 19, 21, 22, 23]
    assert again["bound_s"] == 300.0 and again["drain_s"] == 600.0 and again["end_t"] == 1800.0
