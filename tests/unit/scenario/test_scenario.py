"""Scenario files: every shipped one is valid; bad ones fail with every problem, one line each."""

import re
from pathlib import Path

import pytest
import yaml

from unstuck.scenario import ScenarioInvalid, load, parse

SHIPPED = sorted(Path("scenarios").glob("*.yaml"))
REQUIRED = {"incident-601", "hpa-scale-down-during-apply-pending", "pod-kill-reserved-slot",
            "node-loss-mid-apply", "scheduler-restart", "db-write-failures", "double-confirm",
            "mixed-chaos-day"}


def test_every_required_scenario_ships_and_builds_a_world():
    assert REQUIRED <= {p.stem for p in SHIPPED}
    for p in SHIPPED:
        s = load(p)
        assert s.name == p.stem and s.world().end_s > 0


def test_mixed_chaos_day_is_a_day_of_fifty_workspaces_with_every_fault():
    s = load("scenarios/mixed-chaos-day.yaml")
    w = s.world()
    assert w.duration_s == 86400 and sum(len(g.workspace_names()) for g in w.workload) == 50
    assert {f.type for f in w.faults} == {
        "pod-kill", "node-loss", "agent-disconnect", "scheduler-restart", "db-write-failure",
        "double-confirm", "pool-scale-down", "hpa-scale-down"}
    assert all(f.rate_per_h for f in w.faults)


def problems(data) -> list[str]:
    with pytest.raises(ScenarioInvalid) as e:
        parse(data, "scenarios/x.yaml")
    return e.value.problems


OK = {"duration_s": 600, "workload": [{"count": 1, "at": [5]}]}


@pytest.mark.parametrize("patch, pattern", [
    ({"faults": [{"type": "pod-kill", "at": "5m"}]},
     r"^scenarios/x\.yaml: faults\[0\]\.at = '5m' \(str\): expected seconds as a number; write 300$"),
    ({"duration_s": "1h30m"},
     r"^scenarios/x\.yaml: duration_s = '1h30m' \(str\): expected seconds as a number; write 5400$"),
    ({"faults": [{"type": "nuke", "at": 5}]},
     r"^scenarios/x\.yaml: faults\[0\]\.type = 'nuke' \(str\): unknown fault type; choose one of pod-kill, node-loss, .*hpa-scale-down$"),
    ({"faults": [{"type": "pod-kill", "at": 5, "target": "biggest"}]},
     r"^scenarios/x\.yaml: faults\[0\]\.target = 'biggest' \(str\): expected one of 'random', 'reserved-holder' or 'apply-runner'$"),
    ({"faults": [{"type": "pod-kill"}]},
     r"^scenarios/x\.yaml: faults\[0\]: give exactly one of at \(seconds\) or rate_per_h \(random, per hour\)$"),
    ({"pools": [{"id": "p", "manager": "statefulset"}]},
     r"^scenarios/x\.yaml: pools\[0\]\.manager = 'statefulset' \(str\): expected one of 'bare' or 'deployment'$"),
    ({"pools": [{"id": "p", "freeze": [{"from": "25:00", "to": "01:00"}]}]},
     r"^scenarios/x\.yaml: pools\[0\]\.freeze\[0\]\.from = '25:00' \(str\): expected a time of day \"HH:MM\""),
    ({"users": {"double_click": 1.5}},
     r"^scenarios/x\.yaml: users\.double_click = 1\.5 \(float\): expected a probability between 0 and 1$"),
    ({"agents": {"plan_s": {"kind": "uniform", "min": 5}}},
     r"^scenarios/x\.yaml: agents\.plan_s: a uniform distribution needs min and max; add max$"),
    ({"seedz": 3},
     r"^scenarios/x\.yaml: seedz = 3 \(int\): unknown field; allowed here: name, description, seeds, "),
    ({"workload": [{"count": 1, "at": [5], "pool": "nope"}]},
     r"^scenarios/x\.yaml: workload\[0\]\.pool = 'nope' \(str\): no such pool; choose one of pool-1$"),
    ({"faults": [{"type": "hpa-scale-down", "at": 5, "load": 0.1}]},
     r"^scenarios/x\.yaml: faults\[0\]\.type = 'hpa-scale-down' \(str\): needs a pool with manager: deployment and an hpa section"),
])
def test_bad_fields_are_named_with_value_rule_and_fix(patch, pattern):
    found = problems({**OK, **patch})
    assert any(re.search(pattern, p) for p in found), found


def test_every_problem_is_reported_not_just_the_first():
    found = problems({"duration_s": "10m", "workload": [{"count": 1, "every_s": "x"}],
                      "faults": [{"type": "pod-kill", "at": "5m"}, {"type": "node-loss", "at": -1}]})
    assert len(found) == 4, found
    assert all(p.startswith("scenarios/x.yaml: ") for p in found)


def test_a_missing_required_field_says_add_it():
    assert problems({"workload": [{"count": 1, "at": [5]}]}) == [
        "scenarios/x.yaml: duration_s: required field is missing; add it"]


def test_file_level_problems(tmp_path):
    with pytest.raises(ScenarioInvalid, match=r"^.*nope\.yaml: no such file; give the path of a scenario"):
        load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("duration_s: [1,\n")
    with pytest.raises(ScenarioInvalid, match=r"^.*bad\.yaml: not valid YAML at line \d+, column \d+: "):
        load(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ScenarioInvalid, match=r"^.*list\.yaml: the file must hold a mapping"):
        load(listy)
