"""`unstuck replay incident-601`: the first main job."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from unstuck.cli import app

runner = CliRunner()


def replay(*args: str):
    return runner.invoke(app, ["replay", "incident-601", *args])


def test_seed_leaves_the_incident_row_exactly_as_the_report_shows():
    r = replay("--scheduler", "seed", "--json")
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert out["stuck"] is True and out["workspace_locked"] is True
    task = out["task"]
    # The report's row: status and stage apply_pending, k8s_pod_name empty, confirmed.
    assert (task["status"], task["stage"], task["k8s_pod_name"]) == ("apply_pending", "apply_pending", "")
    assert task["apply_confirmed_by"] == "alice"
    assert task["plan_task_id"] == task["id"] == 1
    assert task["task_type"] == "plan_and_apply" and task["execution_mode"] == "k8s"
    assert task["agent_id"]  # the plan's agent id is never cleared


@pytest.mark.parametrize("scheduler,code,status", [
    ("seed-proposal", 1, "pending"),
    ("seed-head", 0, "applied"),
    ("reference", 0, "applied"),
])
def test_each_variant(scheduler, code, status):
    r = replay("--scheduler", scheduler, "--json")
    assert r.exit_code == code
    out = json.loads(r.stdout)
    assert out["scheduler"] == scheduler and out["task"]["status"] == status


def test_human_output_names_the_verdict():
    r = replay("--scheduler", "seed")
    assert "verdict: STUCK" in r.stdout
    assert "apply_pending" in r.stdout


def test_bad_input_is_a_clear_exit_2():
    r = runner.invoke(app, ["replay", "incident-602"])
    assert r.exit_code == 2
    assert re.search(r"unknown incident 'incident-602': choose one of incident-601", r.output)
    r = replay("--scheduler", "fifo")
    assert r.exit_code == 2
    assert re.search(r"--scheduler 'fifo' is not a scheduler: choose one of seed, seed-proposal, "
                     r"seed-head, reference", r.output)


def test_the_printed_timeline_matches_the_scripted_history():
    """The steps `unstuck replay` prints are the script's own times (under the reference,
    which acts at once; the seed's goroutines add 0.2 s)."""
    from unstuck import replay
    s = replay.incident_601_script("reference")
    first = {}
    for e in s.history.events:
        key = e.kind.value if e.kind.value != "task.transition" else f"to:{e.to_status}"
        first.setdefault(key, e.t)
    at = dict((what.split(":")[0].split(";")[0], t) for t, what in replay.TIMELINE)
    assert at["the plan ends with changes"] == first["to:apply_pending"]
    assert at["the agent on the first pod connects"] == first["agent.connected"]
