"""`unstuck scenario check|schema`: scenario files checked without a run, and the JSON Schema
editors use, which must accept every file the loader accepts and refuse what it refuses."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, assume, given, settings
from typer.testing import CliRunner

from unstuck.cli import app
from unstuck.scenario import ScenarioInvalid, advice, load, parse, read_yaml
from unstuck.scenario.editor_schema import json_schema
from unstuck.scenario_cli import SCHEMA_FILE

from ..sim.test_scenario_fuzz import EXAMPLES, HARD, HUNT
from ..sim.test_scenario_fuzz import scenarios as fuzzed_scenarios

runner = CliRunner()
SCHEMA = json_schema()
SHIPPED = sorted([*Path("scenarios").glob("*.yaml"), *Path("scenarios/adversarial").glob("*.yaml")])
OK = "duration_s: 600\nworkload: [{count: 1, at: [5]}]\n"
# tests/unit/scenario/test_scenario.py: a drain and a bound shorter than the work.
WARNED = OK + "drain_s: 60\nbounds: {apply_pending_s: 100}\n"


def scenario(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def check(*args: str | Path):
    return runner.invoke(app, ["scenario", "check", *map(str, args)])


# ---------------------------------------------------------------------- check
def test_every_shipped_scenario_checks_ok_with_a_summary_line_each():
    r = check(*SHIPPED)
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    assert len(lines) == len(SHIPPED)
    for line, path in zip(lines, SHIPPED, strict=True):
        assert line.startswith(f"ok: {path} (name: {path.stem}, ")
    assert ("ok: scenarios/mixed-chaos-day.yaml (name: mixed-chaos-day, 24 h, 50 workspaces, "
            "11 faults, 1 goal, 2 seeds)") in r.stdout.splitlines()


def test_every_problem_of_every_file_is_reported_in_one_run(tmp_path):
    wrong_type = scenario(tmp_path, "wrong-type.yaml", OK.replace("600", '"abc"'))
    unknown = scenario(tmp_path, "unknown.yaml", OK + "colour: blue\nseeds: 0\n")
    good = scenario(tmp_path, "good.yaml", OK)
    r = check(wrong_type, unknown, good)
    assert r.exit_code == 2
    errors = r.stderr.splitlines()
    assert errors == [f"error: {line}" for f in (wrong_type, unknown) for line in _problems(f)]
    assert len(errors) == 3  # one problem in the first file, two in the second
    assert errors[0].startswith(f"error: {wrong_type}: duration_s = 'abc' (str): expected seconds")
    assert any(e.startswith(f"error: {unknown}: colour = 'blue' (str): unknown field") for e in errors)
    assert any(e.startswith(f"error: {unknown}: seeds = 0 (int): must be >= 1") for e in errors)
    # The valid file after them is still checked.
    assert r.stdout == f"ok: {good} (name: good, 10 min, 1 workspace, 0 faults, 20 seeds)\n"


def test_a_missing_file_is_named_and_the_others_still_checked(tmp_path):
    good = scenario(tmp_path, "good.yaml", OK)
    r = check(tmp_path / "nope.yaml", good)
    assert r.exit_code == 2
    assert r.stderr.startswith(f"error: {tmp_path / 'nope.yaml'}: no such file")
    assert r.stdout.startswith(f"ok: {good} ")


def test_advice_is_printed_as_warnings_and_does_not_fail(tmp_path):
    f = scenario(tmp_path, "warned.yaml", WARNED)
    r = check(f)
    assert r.exit_code == 0
    warnings = advice(load(f), str(f))
    assert len(warnings) == 2
    assert r.stderr.splitlines() == warnings
    assert r.stderr.startswith(f"warning: {f}: drain_s = 60.0 (float): is shorter than")
    assert r.stdout.startswith(f"ok: {f} (name: warned, ")


def test_weights_whose_sum_overflows_are_refused_before_a_run_not_crashed_on(tmp_path):
    """Found by review (session 32): each weight was finite, their sum was not, and
    `scenario check` passed a file that `unstuck sim` then crashed on (exit 1)."""
    path = scenario(tmp_path, "w.yaml", OK.replace(
        "at: [5]}", "at: [5], types: {plan: 1e308, plan_and_apply: 1e308}}"))
    for argv in (["scenario", "check", str(path)], ["sim", str(path), "--seeds", "1"]):
        r = runner.invoke(app, argv)
        assert r.exit_code == 2, r.output
        assert (f"error: {path}: workload[0].types.plan = 1e+308 (float): must be <= 1000000000: "
                "weights are relative shares, so scale them down together") in r.output
        assert "Traceback" not in r.output


@pytest.mark.parametrize("dist", ["{kind: lognormal, median: 1, p99: 1e50}",
                                  "{kind: exponential, mean: 1.7e308}",
                                  "{kind: uniform, min: 0, max: 1.7e308}"])
def test_durations_too_long_to_sum_are_warned_of_without_a_crash(tmp_path, dist):
    """Found by review (session 32): the pool advice rounded an infinite need up to an int."""
    path = scenario(tmp_path, "d.yaml", OK.replace("count: 1", "count: 3")
                    + f"agents: {{apply_s: {dist}}}\n")
    r = runner.invoke(app, ["scenario", "check", str(path)])
    assert r.exit_code == 0, r.output
    assert "pools[0].max_replicas = 4 (int)" in r.output and "raise max_replicas" in r.output


def test_json_prints_one_sorted_object_per_file_and_nothing_else(tmp_path):
    warned = scenario(tmp_path, "warned.yaml", WARNED)
    bad = scenario(tmp_path, "bad.yaml", OK + "faults: [{type: pod-explode, at: 5}]\n")
    r = check("--json", warned, bad)
    assert r.exit_code == 2
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    objects = [json.loads(line) for line in lines]
    for line, obj in zip(lines, objects, strict=True):
        assert list(obj) == ["file", "name", "ok", "problems", "warnings"]
        assert line == json.dumps(obj, sort_keys=True)
    assert objects[0] == {"file": str(warned), "ok": True, "name": "warned", "problems": [],
                          "warnings": [w.removeprefix("warning: ")
                                       for w in advice(load(warned), str(warned))]}
    assert objects[1] == {"file": str(bad), "ok": False, "name": None,
                          "problems": _problems(bad), "warnings": []}
    assert "faults[0].type = 'pod-explode'" in objects[1]["problems"][0]
    assert json.loads(check("--json", warned).stdout)["ok"] is True
    assert check("--json", warned).exit_code == 0


def test_two_files_of_one_name_are_a_warning_only(tmp_path):
    a = scenario(tmp_path, "a/same.yaml", OK)
    b = scenario(tmp_path, "b/same.yaml", OK)
    r = check(a, b, a)  # the same file twice is no clash
    assert r.exit_code == 0
    assert r.stderr == (f"warning: two scenario files are named 'same' ({a}, {b}); rename one "
                        "(its name: field) before running them together\n")
    assert len(r.stdout.splitlines()) == 3


def test_no_file_is_a_usage_error():
    r = check()
    assert r.exit_code == 2
    assert "Missing argument" in r.output


# ---------------------------------------------------------------------- schema
def schema_output() -> str:
    r = runner.invoke(app, ["scenario", "schema"])
    assert r.exit_code == 0, r.output
    return r.stdout


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(schema_output())


def test_the_checked_in_schema_is_what_the_command_prints():
    assert SCHEMA_FILE.read_text() == schema_output(), (
        f"{SCHEMA_FILE} is stale (the scenario model changed); regenerate it with "
        f".venv/bin/unstuck scenario schema --out {SCHEMA_FILE}")


def test_the_schema_is_a_draft_2020_12_schema_that_points_to_the_docs(schema):
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] and "docs/scenarios.md" in schema["description"]
    text = schema_output()
    assert text.endswith("}\n") and text == json.dumps(schema, indent=2, sort_keys=True) + "\n"


def test_the_timing_rules_every_fault_shares_are_written_once_and_hold_for_each_type(schema):
    from unstuck.scenario.schema import AT_OR_RATE, FAULT_TYPES

    assert schema_output().count(AT_OR_RATE) == 3  # the rule's two alternatives and its "not both"
    kinds = {d["properties"]["type"].get("const"): name for name, d in schema["$defs"].items()
             if "type" in d.get("properties", {})}
    shipped = {f["type"]: f for path in SHIPPED for f in read_yaml(path.read_text()).get("faults", [])}
    assert set(shipped) == set(FAULT_TYPES)
    for kind, fault in shipped.items():  # each type still holds them, through its $ref
        one = {"$ref": f"#/$defs/{kinds[kind]}", "$defs": schema["$defs"]}
        at = {k: v for k, v in fault.items() if k != "rate_per_h"} | {"at": 5}
        assert errors(one, at) == [], kind
        assert errors(one, at | {"rate_per_h": 2}), kind
        assert errors(one, {k: v for k, v in at.items() if k != "at"}), kind


def errors(schema: dict, data) -> list[str]:
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(data)]


@pytest.mark.parametrize("path", SHIPPED, ids=str)
def test_every_shipped_scenario_passes_the_schema(schema, path):
    assert errors(schema, read_yaml(path.read_text())) == []


BASE = read_yaml(OK)


@pytest.mark.parametrize("data", [
    {**BASE, "colour": "blue"},  # an unknown top-level key
    {**BASE, "duration_s": "abc"},  # a wrong type
    {**BASE, "faults": [{"type": "pod-explode", "at": 5}]},  # an unknown fault type
    {**BASE, "faults": [{"at": 5}]},  # a fault without a type
    {**BASE, "cluster": {"nodes": 0}},  # a bound pydantic knows (`ge`, renamed)
    {**BASE, "clock_origin": "25:00"},  # not a time of day
    {**BASE, "clock_origin": "1\u0662:0\u0663"},  # other digits than 0-9 (Arabic-Indic 2 and 3)
    {**BASE, "clock_origin": 3600},  # a time of day is text, not seconds
    {**BASE, "agents": {"plan_s": {"kind": "gamma", "value": 5}}},  # no such distribution
    {**BASE, "agents": {"plan_s": "30s"}},  # a duration is a number or a mapping
    {**BASE, "workload": [{"count": 1, "at": [5], "types": {"destroy": 1}}]},  # no such task type
    # The value rules of the field types (`_shows`), which pydantic's schema left out:
    {**BASE, "drain_s": -5},  # seconds >= 0
    {**BASE, "agents": {"has_changes": 1.5}},  # a probability
    {**BASE, "pools": [{"id": "p", "min_replicas": -1}]},  # a count
    {**BASE, "users": {"click_retries": 101}},  # a count's own bound stacked on it (le=100)
    {**BASE, "name": ".hidden"},  # a name
    {**BASE, "workload": [{"count": 1, "at": [5], "prefix": "ws a"}]},  # a workspace id
    # Each kind of distribution takes its own parameters (`Dist`):
    {**BASE, "agents": {"plan_s": {"kind": "uniform", "min": 1}}},  # one missing
    {**BASE, "agents": {"plan_s": {"kind": "fixed", "value": 5, "min": 3}}},  # another kind's
    {**BASE, "agents": {"plan_s": -5}},  # a bare number is seconds too
    # The rules across one mapping's fields (`mapping_rules`):
    {**BASE, "workload": [{"count": 1, "names": ["a"], "at": [5]}]},
    {**BASE, "workload": [{"at": [5]}]},
    {**BASE, "workload": [{"count": 1, "at": []}]},
    {**BASE, "workload": [{"count": 1, "every_s": 0}]},
    {**BASE, "workload": [{"count": 1, "at": [5], "types": {"plan": 0}}]},
    {**BASE, "workload": [{"names": ["a"], "prefix": "b", "at": [5]}]},
    {**BASE, "workload": [{"count": 0, "at": [5]}]},
    {**BASE, "workload": [{"names": [], "at": [5]}]},
    {**BASE, "workload": []},
    {**BASE, "pools": []},
    {**BASE, "faults": [{"type": "pod-kill"}]},
    {**BASE, "faults": [{"type": "pod-kill", "at": 5, "rate_per_h": 1}]},
    {**BASE, "faults": [{"type": "pod-kill", "rate_per_h": 0}]},
    {**BASE, "faults": [{"type": "node-loss", "at": 5, "retry_s": 0}]},
    {**BASE, "faults": [{"type": "db-write-failure", "at": 5, "rate": 0}]},
    {**BASE, "faults": [{"type": "hpa-scale-down", "at": 5}]},
    {**BASE, "faults": [{"type": "hpa-scale-down", "at": 5, "load": 0.1, "min_replicas": 1}]},
    {**BASE, "faults": [{"type": "hpa-scale-down", "at": 5, "mode": "patch"}]},
    {**BASE, "faults": [{"type": "hpa-scale-down", "at": 5, "mode": "patch", "max_replicas": 1,
                         "load": 0.1}]},
    {**BASE, "pools": [{"id": "p", "hpa": {}}]},
    {**BASE, "pools": [{"id": "p", "manager": "bare", "initial_replicas": 2}]},
    {**BASE, "pools": [{"id": "p", "manager": "deployment", "hpa": {}, "min_replicas": 0}]},
    {**BASE, "pools": [{"id": "p", "manager": "deployment", "hpa": {}, "initial_replicas": 0}]},
    {**BASE, "pools": [{"id": "p", "max_replicas": 0, "min_replicas": 0}]},
    {**BASE, "pools": [{"id": "p", "manager": "deployment", "hpa": {"target": 80}}]},
    {**BASE, "pools": [{"id": "p", "manager": "deployment", "hpa": {"target": 0.001}}]},
    {**BASE, "pools": [{"id": "p", "manager": "deployment", "hpa": {"load": 2e6}}]},
    {**BASE, "agents": {"plan_s": {"kind": "exponential", "mean": 0}}},
    {**BASE, "agents": {"plan_s": {"kind": "lognormal", "median": 0, "p99": 5}}},
    {**BASE, "cluster": {"pod_startup": {"median_s": 0, "min_s": 0}}},
    {**BASE, "faults": [{"type": "pool-scale-down", "at": 5, "max_replicas": 0}]},
    {**BASE, "pools": [{"id": "p", "manager": "deployment", "hpa": {}}],
     "faults": [{"type": "hpa-scale-down", "at": 5, "mode": "patch", "min_replicas": 0}]},
    # `gates.sometimes` goals: what each field takes (the faults they name are `check`'s).
    {**BASE, "gates": {"sometimes": [{"hit": "applying"}]}},
    {**BASE, "gates": {"sometimes": [{"hit": "running", "by": "pod-kil"}]}},
    {**BASE, "gates": {"sometimes": [{"hit": "running", "schedulers": []}]}},
    {**BASE, "gates": {"sometimes": [{"hit": "running", "schedulers": ["refrence"]}]}},
    {**BASE, "gates": {"sometimes": [{"hit": "running", "min_seeds": 0}]}},
    {**BASE, "gates": {"sometimes": [{"by": "pod-kill"}]}},
    {**BASE, "gates": {"sometimes": [{"hit": "pending", "run": "plan"}]}},
    {**BASE, "gates": {"sometimes": [{"hit": "running", "run": "destroy"}]}},
    {**BASE, "gates": {"sometimes": [{"hit": "pending", "confirmed": False}]}},
    {**BASE, "gates": {"sometimes": [{"hit": "apply_pending", "confirmed": "no"}]}},
    {**BASE, "workload": [{"count": 1, "at": [5], "types": {"plan": 1e308, "plan_and_apply": 1e308}}]},
    {**BASE, "cluster": {"nodes": 10_000_000}},  # ran 46 s in 6 GB before its first task
    {**BASE, "pools": [{"id": "p", "min_replicas": 100_000, "max_replicas": 100_000}]},
    {**BASE, "faults": [{"type": "pool-scale-down", "at": 5, "max_replicas": 5001}]},
], ids=["unknown-key", "wrong-type", "unknown-fault-type", "fault-without-type", "nodes-0",
        "hour-25", "hour-in-other-digits", "time-of-day-as-seconds", "unknown-distribution", "duration-as-text",
        "unknown-task-type", "negative-seconds", "probability-over-1", "negative-count",
        "count-over-its-bound", "name-pattern", "ident-pattern", "uniform-without-max",
        "fixed-with-min", "negative-bare-duration", "count-and-names", "neither-count-nor-names",
        "no-arrival", "every-0-s", "no-task-type-weight", "prefix-with-names", "count-0",
        "no-names", "no-workspace-group", "no-pool", "fault-without-time", "fault-with-two-times",
        "rate-0-per-h", "retry-0-s", "db-rate-0", "metric-without-load", "metric-with-bound",
        "patch-without-bound", "patch-with-load", "hpa-on-a-bare-pool", "initial-replicas-bare",
        "hpa-min-replicas-0", "hpa-initial-replicas-0", "max-replicas-0", "hpa-target-in-percent",
        "hpa-target-under-1-percent", "hpa-load-over-its-bound", "exponential-mean-0",
        "lognormal-median-0", "pod-startup-median-0", "pool-patch-max-0", "hpa-patch-min-0",
        "goal-status", "goal-fault-type", "goal-for-no-scheduler", "goal-scheduler",
        "goal-0-seeds", "goal-without-hit", "goal-run-not-running", "goal-run-unknown",
        "goal-confirmed-not-waiting", "goal-confirmed-not-a-bool",
        "weights-whose-sum-overflows", "nodes-over-kubernetes-limit", "replicas-over-the-limit",
        "patched-replicas-over-the-limit"])
def test_the_schema_and_the_loader_refuse_the_same_bad_documents(schema, data):
    assert errors(schema, data)
    with pytest.raises(ScenarioInvalid):
        parse(data, "x.yaml")


@pytest.mark.parametrize("data", [
    BASE,  # no name: it comes from the file's name
    {**BASE, "x-base": {"every_s": 600}},  # a top-level x- key, for anchors
    {**BASE, "agents": {"plan_s": 30, "connect_s": {"kind": "uniform", "min": 1, "max": 2}}},
    {**BASE, "clock_origin": "06:00",
     "pools": [{"id": "p", "freeze": [{"from": "22:00", "to": " 2:30 "}]}]},
    # What the rules across fields allow: a null is no value, a default need not be written.
    {**BASE, "workload": [{"count": None, "names": ["a"], "at": [5], "every_s": None}]},
    {**BASE, "workload": [{"count": 1, "names": None, "at": [], "every_s": 60,
                           "types": {"plan": 0, "drift_check": 1}}]},
    {**BASE, "faults": [{"type": "pod-kill", "at": None, "rate_per_h": 0.5}]},
    {**BASE, "pools": [{"id": "p", "manager": "bare", "hpa": None, "initial_replicas": None,
                        "min_replicas": 0}],
     "faults": [{"type": "pool-scale-down", "at": 5}]},
    {**BASE, "pools": [{"id": "p", "manager": "deployment", "initial_replicas": 0,
                        "min_replicas": 0}]},
    {**BASE, "pools": [{"id": "p", "manager": "deployment", "hpa": {"target": 0.5}}],
     "faults": [{"type": "hpa-scale-down", "at": 5, "mode": "metric", "load": 0.1,
                 "min_replicas": None},
                {"type": "hpa-scale-down", "at": 9, "mode": "patch", "min_replicas": 1,
                 "load": None}]},
    {**BASE, "cluster": {"pod_startup": {"kind": "fixed", "median_s": 0, "min_s": 0}},
     "agents": {"plan_s": {"kind": "uniform", "min": 0, "max": 0}}},
    {**BASE, "faults": [{"type": "pool-scale-down", "at": 5, "min_replicas": 0}]},
    {**BASE, "faults": [{"type": "pod-kill", "at": 5}],
     "gates": {"sometimes": [{"hit": "apply_pending", "by": "pod-kill", "min_seeds": 2,
                              "schedulers": ["seed", "reference"]},
                             {"hit": "running", "by": None, "schedulers": None},
                             {"hit": "running", "run": "apply", "by": "pod-kill"},
                             {"hit": "apply_pending", "confirmed": False, "by": "pod-kill"},
                             {"hit": "apply_pending", "confirmed": None}]}},
], ids=["no-name", "x-key", "bare-number-duration", "time-of-day", "names-count-null",
        "count-every-s", "rate-per-h", "bare-pool-nulls", "deployment-at-0-without-hpa",
        "hpa-faults-of-both-modes", "zero-fixed-startup-and-uniform", "pool-patch-min-0",
        "goals"])
def test_the_schema_accepts_what_the_loader_accepts(schema, data):
    parse(data, "x.yaml")
    assert errors(schema, data) == []


@HUNT
@settings(max_examples=EXAMPLES * 10, deadline=None, database=None, derandomize=not HARD,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.filter_too_much])
@given(data=fuzzed_scenarios)
def test_the_schema_never_refuses_a_file_the_loader_takes(data):
    """An editor that marks a valid file wrong is worse than none: whatever the loader
    accepts (drawn as the scenario fuzz draws, a tenth of them broken in one place), the
    schema accepts too. The other way it is looser (docs: the value rules are `check`'s)."""
    try:
        parse(copy.deepcopy(data), "x.yaml")
    except ScenarioInvalid:
        assume(False)
    assert errors(SCHEMA, data) == []


def test_every_default_the_schema_offers_loads(schema):
    # An editor inserts a default as written: the loader must take it (a distribution's
    # unset parameters are left out, not null).
    defaults = {k: p["default"] for k, p in schema["properties"].items() if "default" in p}
    assert {"agents", "users", "cluster", "pools", "clock_origin"} <= set(defaults)
    doc = {**BASE, **defaults}
    assert errors(schema, doc) == []
    assert parse(doc, "x.yaml") == parse(BASE, "x.yaml")


def test_out_writes_the_printed_schema(tmp_path):
    out = tmp_path / "new" / "scenario.schema.json"
    r = runner.invoke(app, ["scenario", "schema", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert r.stdout == ""
    assert out.read_text() == schema_output()


@pytest.mark.parametrize("where", ["under-a-file", "a-folder"])
def test_out_to_an_unwritable_path_exits_2_with_one_line(tmp_path, where):
    blocker = scenario(tmp_path, "a-file", "")
    out = blocker / "scenario.schema.json" if where == "under-a-file" else tmp_path
    # The real console script: no traceback reaches the user from any layer.
    unstuck = Path(sys.executable).parent / "unstuck"
    r = subprocess.run([str(unstuck), "scenario", "schema", "--out", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.startswith(f"error: --out {out}: ") and r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr
    assert blocker.read_text() == ""


def _problems(path: Path) -> list[str]:
    with pytest.raises(ScenarioInvalid) as e:
        load(path)
    return e.value.problems


def test_the_pre_commit_hook_checks_every_scenario_and_nothing_else():
    # pre-commit passes the tracked files its `files` and `types` select to `entry`.
    hook, = read_yaml(Path(".pre-commit-hooks.yaml").read_text())
    assert (hook["id"], hook["language"], hook["types"]) == ("unstuck-scenario-check", "python", ["yaml"])
    tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, check=True).stdout.split()
    selected = [f for f in tracked if re.search(hook["files"], f)]  # all YAML, as `types` wants
    assert sorted(selected) == sorted(map(str, SHIPPED))  # not the schema, deploy/ or .ci/
    program, *args = hook["entry"].split()
    r = subprocess.run([str(Path(sys.executable).parent / program), *args, *selected],
                       capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stderr) == (0, "")
    assert len(r.stdout.splitlines()) == len(SHIPPED)
