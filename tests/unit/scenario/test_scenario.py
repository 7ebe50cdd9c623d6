"""Scenario files: every shipped one is valid; bad ones fail with every problem, one line each."""

import re
from pathlib import Path

import pytest
import yaml

from unstuck.scenario import FAULT_TYPES, ScenarioInvalid, advice, load, parse

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
    assert {f.type for f in w.faults} == set(FAULT_TYPES)
    assert len(FAULT_TYPES) == 9  # agent-partition (session 36) is the ninth
    assert all(f.rate_per_h for f in w.faults)


def problems(data) -> list[str]:
    with pytest.raises(ScenarioInvalid) as e:
        parse(data, "scenarios/x.yaml")
    return e.value.problems


def file_problems(path: Path, text: str | bytes) -> list[str]:
    """What `load` says of a file holding `text`: read from disk, as YAML text or bytes."""
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(ScenarioInvalid) as e:
        load(path)
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
    ({"users": {"run_triggers": 2}},
     r"^scenarios/x\.yaml: users\.run_triggers = 2 \(int\): expected a probability between 0 and 1$"),
    ({"users": {"click_retries": 101}},
     r"^scenarios/x\.yaml: users\.click_retries = 101 \(int\): must be <= 100$"),
    ({"agents": {"plan_s": {"kind": "uniform", "min": 5}}},
     r"^scenarios/x\.yaml: agents\.plan_s: a uniform distribution needs min and max; add max$"),
    ({"seedz": 3},
     r"^scenarios/x\.yaml: seedz = 3 \(int\): unknown field \(did you mean seeds\?\); allowed "
     r"here: name, description, seeds, "),
    ({"workload": [{"count": 1, "at": [5], "pool": "nope"}]},
     r"^scenarios/x\.yaml: workload\[0\]\.pool = 'nope' \(str\): no such pool; choose one of pool-1$"),
    ({"pools": []},
     r"^scenarios/x\.yaml: pools = \[\] \(list\): needs at least one pool .*leave pools out"),
    ({"cluster": {"nodes": 0}},
     r"^scenarios/x\.yaml: cluster\.nodes = 0 \(int\): must be >= 1$"),
    ({"faults": [{"type": "hpa-scale-down", "at": 5, "load": 0.1}]},
     r"^scenarios/x\.yaml: faults\[0\]\.type = 'hpa-scale-down' \(str\): needs a pool with manager: deployment and an hpa section"),
    # `gates.sometimes`: what a goal names, and a goal no declared fault can reach.
    ({"gates": {"sometimes": [{"hit": "apply_pendng"}]}, "faults": [{"type": "pod-kill", "at": 5}]},
     r"^scenarios/x\.yaml: gates\.sometimes\[0\]\.hit = 'apply_pendng' \(str\): expected one of "
     r"'pending', 'running' or 'apply_pending'$"),
    ({"gates": {"sometimes": [{"hit": "running", "schedulers": ["refrence"]}]}},
     r"^scenarios/x\.yaml: gates\.sometimes\[0\]\.schedulers\[0\] = 'refrence' \(str\): expected "
     r"one of 'seed', 'seed-proposal', 'seed-head' or 'reference'$"),
    ({"gates": {"sometimes": [{"hit": "running", "schedulers": []}]}},
     r"^scenarios/x\.yaml: gates\.sometimes\[0\]: schedulers lists no scheduler, so the goal "
     r"holds for none; name one, or leave it out for all$"),
    ({"gates": {"sometimes": [{"hit": "running", "min_seeds": 0}]}},
     r"^scenarios/x\.yaml: gates\.sometimes\[0\]\.min_seeds = 0 \(int\): must be >= 1$"),
    ({"gates": {"sometimes": [{"hit": "running", "by": "pod-kill"},
                              {"hit": "running", "by": "pod-kill", "schedulers": ["seed"]}]}},
     r"^scenarios/x\.yaml: gates: sometimes: the goal sometimes_hit_running_by_pod-kill is listed "
     r"twice for seed; keep one per hit and by for each scheduler \(split them by schedulers\)$"),
    ({"gates": {"sometimes": [{"hit": "running", "by": "node-loss"}]},
      "faults": [{"type": "pod-kill", "at": 5}]},
     r"^scenarios/x\.yaml: gates\.sometimes\[0\]\.by = 'node-loss' \(str\): no node-loss fault is "
     r"declared, so the goal is never reached; add one under faults, or choose one of pod-kill$"),
    ({"gates": {"sometimes": [{"hit": "apply_pending", "run": "apply"}]}, "faults": [{"type": "pod-kill", "at": 5}]},
     r"^scenarios/x\.yaml: gates\.sometimes\[0\]: run is what a running task was doing \(plan or "
     r"apply\), so it needs hit: running; set hit: running, or remove run$"),
    ({"gates": {"sometimes": [{"hit": "running", "confirmed": False}]}, "faults": [{"type": "pod-kill", "at": 5}]},
     r"^scenarios/x\.yaml: gates\.sometimes\[0\]: confirmed is whether a task waiting in "
     r"apply_pending had its confirm yet, so it needs hit: apply_pending; set hit: apply_pending, "
     r"or remove confirmed$"),
    ({"gates": {"sometimes": [{"hit": "apply_pending", "confirmed": True, "by": "double-confirm"}]},
      "faults": [{"type": "double-confirm", "at": 5}]},
     r"^scenarios/x\.yaml: gates\.sometimes\[0\]\.confirmed = True \(bool\): a double-confirm "
     r"hits a task still waiting for its confirm \(its clicks are the confirm\), so the goal is "
     r"never reached; set confirmed: false, or remove it$"),
    ({"gates": {"sometimes": [{"hit": "apply_pending", "confirmed": True}]},
      "users": {"never_confirm": 0.25, "cancel": 0.75}, "faults": [{"type": "pod-kill", "at": 5}]},
     r"^scenarios/x\.yaml: gates\.sometimes\[0\]\.confirmed = True \(bool\): no user ever "
     r"confirms \(users\.never_confirm \+ users\.cancel = 1\) and no double-confirm fault is "
     r"declared, so no task waits confirmed and the goal is never reached; lower those shares, or "
     r"set confirmed: false$"),
    ({"gates": {"sometimes": [{"hit": "running"}]}},
     r"^scenarios/x\.yaml: gates\.sometimes\[0\]\.hit = 'running' \(str\): no fault is declared, "
     r"so nothing can hit a task and the goal is never reached; add a fault, or remove the goal$"),
])
def test_bad_fields_are_named_with_value_rule_and_fix(patch, pattern):
    found = problems({**OK, **patch})
    assert any(re.search(pattern, p) for p in found), found


def test_the_opt_in_user_behaviours_reach_the_world():
    opt_in = {"cancel_anytime": 0.5, "cancel_anytime_s": {"kind": "exponential", "mean": 30},
              "click_retries": 2, "click_retry_s": 7, "run_triggers": 0.25}
    users = parse({**OK, "users": opt_in}, "x.yaml").world().users
    assert (users.cancel_anytime, users.cancel_anytime_delay.kind, users.cancel_anytime_delay.a,
            users.click_retries, users.click_retry.a, users.run_triggers) == (
                0.5, "exponential", 30.0, 2, 7.0, 0.25)
    off = parse(OK, "x.yaml").world().users
    assert (off.cancel_anytime, off.click_retries, off.run_triggers) == (0.0, 0, 0.0)


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


# ---------------------------------------------------------------------- review fixes
NAME_RULE = r"expected a name of letters, digits, '-', '_' and '\.', not starting with '\.'"


@pytest.mark.parametrize("name", ["../../etc/x", "a/b", "", ".hidden", "x" * 101, "a b", 601])
def test_name_must_be_a_safe_slug_because_it_names_output_files(name):
    found = problems({**OK, "name": name})
    assert len(found) == 1 and re.match(r"^scenarios/x\.yaml: name = .* " + NAME_RULE, found[0]), found


@pytest.mark.parametrize("name", ["incident-601", "A.b_c-1", "x" * 100, "-shrunk"])
def test_slug_names_are_accepted(name):
    assert parse({**OK, "name": name}, "scenarios/x.yaml").name == name


IDENT_RULE = (r"expected a name of letters, digits, '\.', '_', ':' and '-', at most 200 "
              r"characters, as the live service takes workspace ids; for example ws-a$")


@pytest.mark.parametrize("patch, where", [
    # Found by review: a lone surrogate crashed the Parquet writer mid-run (a traceback,
    # exit 1, half a results folder); a control character reached JUnit XML raw.
    ({"workload": [{"names": ["\ud800"], "at": [5]}]}, r"workload\[0\]\.names\[0\] = '\\ud800'"),
    ({"workload": [{"names": ["ok", "ws\x1b[31m"], "at": [5]}]}, r"workload\[0\]\.names\[1\] = 'ws\\x1b\[31m'"),
    ({"workload": [{"names": ["ws 1"], "at": [5]}]}, r"workload\[0\]\.names\[0\] = 'ws 1'"),
    ({"workload": [{"names": [""], "at": [5]}]}, r"workload\[0\]\.names\[0\] = ''"),
    ({"workload": [{"count": 2, "prefix": "a/b", "at": [5]}]}, r"workload\[0\]\.prefix = 'a/b'"),
    ({"pools": [{"id": "pool 1"}], "workload": [{"count": 1, "at": [5]}]}, r"pools\[0\]\.id = 'pool 1'"),
])
def test_workspace_names_and_pool_ids_are_what_the_live_service_takes(patch, where):
    found = problems({**OK, **patch})
    assert len(found) == 1 and re.match(rf"^scenarios/x\.yaml: {where} \(str\): {IDENT_RULE}", found[0]), found


def test_names_the_live_service_takes_are_accepted_and_a_count_may_not_outgrow_them():
    names = ["ws-a", "team.ws_1", "org:ws-2", "x" * 200]
    sc = parse({**OK, "workload": [{"names": names, "at": [5]}]}, "scenarios/x.yaml")
    assert sc.workload[0].names == names
    assert parse({**OK, "workload": [{"count": 9, "prefix": "p" * 198, "at": [5]}]}, "x.yaml")
    found = problems({**OK, "workload": [{"count": 10, "prefix": "p" * 198, "at": [5]}]})
    assert len(found) == 1 and found[0].endswith("would be 201 characters; names are at most "
                                                 "200: shorten prefix"), found


def test_a_name_taken_from_the_file_name_says_so(tmp_path):
    f = tmp_path / "my scenario.yaml"
    f.write_text(yaml.safe_dump(OK))
    with pytest.raises(ScenarioInvalid) as e:
        load(f)
    assert e.value.problems[0].endswith("add a name: line or rename the file"), e.value.problems


def test_sim_with_an_unsafe_name_exits_2_and_writes_nothing(tmp_path):
    from typer.testing import CliRunner

    from unstuck.cli import app

    f = tmp_path / "s" / "x.yaml"
    f.parent.mkdir()
    f.write_text(yaml.safe_dump({**OK, "name": "../../escaped"}))
    out = tmp_path / "o1" / "deep"
    r = CliRunner().invoke(app, ["sim", str(f), "--seeds", "1", "--out", str(out)])
    assert r.exit_code == 2 and "name = '../../escaped'" in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_a_run_must_last_more_than_0_s():
    at_0 = {**OK, "workload": [{"count": 1, "at": [0]}]}
    assert problems({**at_0, "duration_s": 0, "drain_s": 0}) == [
        "scenarios/x.yaml: duration_s = 0 (int): with drain_s 0 the run would last 0 s; "
        "make duration_s (or drain_s) > 0"]
    for d, drain in ((0, 60), (60, 0)):
        assert parse({**at_0, "duration_s": d, "drain_s": drain}, "x.yaml").world().end_s == 60


@pytest.mark.parametrize("patch, path", [
    ({"cluster": {"node": {"lease_renew_s": 0}}}, "cluster.node.lease_renew_s"),
    ({"cluster": {"node": {"monitor_period_s": 0}}}, "cluster.node.monitor_period_s"),
    ({"cluster": {"node": {"grace_s": 0}}}, "cluster.node.grace_s"),
    ({"pools": [{"id": "p", "manager": "deployment", "hpa": {"sync_period_s": 0}}]},
     "pools[0].hpa.sync_period_s"),
])
def test_periods_must_be_positive(patch, path):
    assert problems({**OK, **patch}) == [f"scenarios/x.yaml: {path} = 0 (int): must be > 0"]


@pytest.mark.parametrize("field", ["seeds", "suite_seeds"])
def test_at_least_one_seed(field):
    assert problems({**OK, field: 0}) == [f"scenarios/x.yaml: {field} = 0 (int): must be >= 1"]
    assert getattr(parse({**OK, field: 1}, "x.yaml"), field) == 1


def test_duplicate_keys_are_refused_at_any_depth_naming_key_file_and_line(tmp_path):
    top = tmp_path / "top.yaml"
    top.write_text("duration_s: 600\nworkload: [{count: 1, at: [5]}]\n"
                   "faults:\n  - {type: pod-kill, at: 5}\nfaults: []\n")
    with pytest.raises(ScenarioInvalid) as e:
        load(top)
    assert e.value.problems == [f"{top}: not valid YAML at line 5, column 1: duplicate key "
                                "'faults' (first at line 3); keep only one"]
    deep = tmp_path / "deep.yaml"
    deep.write_text("duration_s: 600\nworkload:\n  - count: 1\n    at: [5]\n    count: 2\n")
    with pytest.raises(ScenarioInvalid, match=r"deep\.yaml: not valid YAML at line 5, column 5: "
                       r"duplicate key 'count' \(first at line 3\)"):
        load(deep)


def test_merge_keys_may_still_be_overridden(tmp_path):
    f = tmp_path / "merge.yaml"
    f.write_text("duration_s: 600\nworkload:\n  - &g {count: 1, at: [5]}\n"
                 "  - {<<: *g, prefix: other, count: 2}\n")
    assert [w.count for w in load(f).workload] == [1, 2]


def test_a_merge_of_a_mapping_that_itself_merges_is_not_a_duplicate():
    # Found by review: PyYAML flattens a merge source in place, so a check made while
    # constructing saw the nested source's merged keys as duplicates.
    import yaml

    from unstuck.scenario.yamlfile import Loader

    text = "x: {base: &A {kind: fixed, value: 10}, late: &B {<<: *A, value: 30}}\ny: {<<: *B}\n"
    assert yaml.load(text, Loader=Loader) == yaml.safe_load(text)

def test_an_alias_bomb_is_refused_in_one_short_line(tmp_path):
    f = tmp_path / "bomb.yaml"
    lines = ["duration_s: 600", "workload: [{count: 1, at: [5]}]",
             f"a: &a [{', '.join(['lol'] * 9)}]"]
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{cur}: &{cur} [{', '.join([f'*{prev}'] * 9)}]")
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(ScenarioInvalid) as e:
        load(f)
    assert e.value.problems == [f"{f}: too large once its aliases (*name) are expanded: more than "
                                "100,000 values; write the values out instead of nesting aliases"]
    long = tmp_path / "long.yaml"  # no alias at all: the message said to stop nesting them
    at = ", ".join(["5"] * 100_001)
    assert file_problems(long, f"duration_s: 600\nworkload: [{{count: 1, at: [{at}]}}]\n") == [f"{long}: too large: more than 100,000 values (shipped scenarios "
                                "hold under 300); give arrivals as every_s instead of a long at "
                                "list, or split the file"]
    rec = tmp_path / "rec.yaml"
    rec.write_text("duration_s: 600\nworkload: &w [{count: 1, at: [5]}, *w]\n")
    with pytest.raises(ScenarioInvalid, match="too large once its aliases"):
        load(rec)


def test_a_file_nested_too_deeply_not_utf_8_or_with_a_control_character_is_refused_in_one_line(tmp_path):
    """Found by review (session 32): PyYAML's RecursionError came out as a traceback (exit 1),
    and bytes that are not UTF-8 or characters YAML forbids were reported with no line and no
    fix."""
    deep = tmp_path / "deep.yaml"
    nested = "[" * 5000 + "]" * 5000
    assert file_problems(deep, f"duration_s: 600\nworkload: [{{count: 1, at: [5]}}]\nx: {nested}\n") == [
        f"{deep}: nested too deeply for a scenario file (lists or mappings "
                                "hundreds of levels inside each other; shipped ones use under 10): "
                                "flatten it"]
    latin = tmp_path / "latin.yaml"
    assert file_problems(latin, b"duration_s: 600\nname: caf\xe9\nworkload: [{count: 1, at: [5]}]\n") == [f"{latin}: line 2: byte 0xe9 is not UTF-8 text; save the file as UTF-8"]
    nul = tmp_path / "nul.yaml"
    assert file_problems(nul, "duration_s: 600\nname: a\x00b\nworkload: [{count: 1, at: [5]}]\n") == [f"{nul}: line 2: the character U+0000 is not allowed in YAML; "
                                "remove it (a control character, often pasted in by accident)"]


def test_a_cluster_or_pool_larger_than_kubernetes_allows_is_refused_with_the_limit(tmp_path):
    """Found by review (session 32): no bound, and `nodes: 10000000` ran one seed for 46 s in
    6 GB before its first task (a pool of 100,000 pods, over a minute)."""
    f = tmp_path / "big.yaml"
    assert file_problems(f, "duration_s: 100\nworkload: [{count: 1, at: [0]}]\ncluster: {nodes: 5001}\n"
                         "pools: [{id: p, max_replicas: 100000}]\n") == [
        f"{f}: cluster.nodes = 5001 (int): must be <= 5,000, the most nodes Kubernetes supports "
        "in one cluster",
        f"{f}: pools[0].max_replicas = 100000 (int): must be <= 5,000: a pool of agent pods is "
        "sized for a cluster of at most 5,000 nodes (Kubernetes' limit)"]
    f.write_text(f.read_text().replace("5001", "5000").replace("100000", "5000"))
    assert load(f).cluster.nodes == 5000


def test_a_date_where_text_goes_is_told_to_be_quoted(tmp_path):
    f = tmp_path / "date.yaml"
    assert file_problems(f, "duration_s: 600\ndescription: 2020-01-01\nworkload: [{count: 1, at: [5]}]\n") == [f"{f}: description = datetime.date(2020, 1, 1) (date): YAML read a "
                                "date where text goes; quote it, e.g. '2020-01-01'"]


def test_echoed_values_are_cut_to_a_short_line():
    found = problems({**OK, "notes": ["line"] * 200, "blurb": "word " * 1000,
                      "agents": {"plan_s": "x" * 5000}, "k" * 900: 1,
                      "pools": [{"id": "p", "hpa": [[["lol"] * 9] * 9] * 9}]})
    assert len(found) == 5, found
    assert all(len(p) < 400 for p in found), [len(p) for p in found]
    blurb = next(m.group(1) for p in found
                 if (m := re.search(r" blurb = (.*) \(str\): unknown field", p)))
    assert blurb.startswith("'word word") and "..." in blurb and len(blurb) <= 80, blurb


def test_a_directory_says_so_and_suggests_its_yaml_files(tmp_path):
    with pytest.raises(ScenarioInvalid) as e:
        load(tmp_path)
    assert e.value.problems == [f"{tmp_path}: is a directory, not a scenario file; give the files "
                                f"in it, e.g. {tmp_path}/*.yaml"]


# ---------------------------------------------------------------------- found by the fuzz
# tests/unit/sim/test_scenario_fuzz.py: each of these passed validation, then raised in
# `world()` or the run (a traceback), or never ended (rate_per_h: .inf drew 0 s gaps forever).
DEP = {"id": "p", "manager": "deployment"}


@pytest.mark.parametrize("patch, line", [
    ({"pools": [{**DEP, "hpa": {"tolerance": -0.1}}]},
     "pools[0].hpa.tolerance = -0.1 (float): must be >= 0"),
    ({"pools": [{**DEP, "hpa": {"load": -1}}]}, "pools[0].hpa.load = -1 (int): must be >= 0"),
    ({"pools": [{**DEP, "hpa": {"target": float("nan")}}]},
     "pools[0].hpa.target = nan (float): expected a finite number"),
    ({"pools": [{**DEP, "hpa": {"load": float("inf")}}]},
     "pools[0].hpa.load = inf (float): expected a finite number"),
    ({"faults": [{"type": "scheduler-restart", "rate_per_h": float("inf")}]},
     "faults[0].rate_per_h = inf (float): expected a finite number"),
    ({"faults": [{"type": "scheduler-restart", "rate_per_h": float("nan")}]},
     "faults[0].rate_per_h = nan (float): expected a finite number"),
    ({"pools": [{**DEP, "hpa": {}}], "faults": [{"type": "hpa-scale-down", "at": 5, "load": -0.5}]},
     "faults[0].load = -0.5 (float): must be >= 0"),
    ({"workload": [{"count": 1, "at": [5], "types": {"plan": -1, "plan_and_apply": 1}}]},
     "workload[0].types.plan = -1 (int): must be >= 0"),
    ({"workload": [{"count": 1, "at": [5], "types": {"plan": float("nan")}}]},
     "workload[0].types.plan = nan (float): expected a finite number"),
    ({"cluster": {"pod_startup": {"median_s": 0.5}}},
     "cluster.pod_startup: median_s (0.5) must be >= min_s (1); raise median_s or lower min_s"),
    ({"cluster": {"pod_startup": {"p99_s": 2}}},
     "cluster.pod_startup: p99_s (2) must be >= median_s (4); raise p99_s"),
    ({"cluster": {"pod_startup": {"median_s": 0, "min_s": 0}}},
     "cluster.pod_startup: a lognormal needs median_s > 0"),
    ({"duration_s": 10**400},  # a 400-digit YAML integer: OverflowError converting it
     "duration_s = 100000000000000000...0000000000000000000 (int): expected a finite number of "
     "seconds >= 0"),
    ({"workload": [{"count": 10**400, "at": [5]}]},  # listing its names took all memory
     "workload[0].count = 100000000000000000...0000000000000000000 (int): must be <= 100000"),
])
def test_what_used_to_crash_or_hang_after_validation_is_refused_in_one_line(patch, line):
    assert problems({**OK, **patch}) == [f"scenarios/x.yaml: {line}"]


@pytest.mark.parametrize("patch, line", [
    # Each ran for hours: a period this short schedules one event per period.
    ({"faults": [{"type": "pod-kill", "at": 5, "retry_s": 1e-9}]},
     "faults[0].retry_s = 1e-09 (float): would repeat 6e+11 times (attempts within within_s) in "
     "600 s, more than the 1,000,000 a run allows; make it at least 0.0006"),
    ({"workload": [{"count": 1, "every_s": 1e-6}]},
     "workload[0].every_s = 1e-06 (float): the workload would create about 600,000,000 tasks "
     "(600,000,000 from this group's 1 workspaces) in 600 s, more than the 1,000,000 a run "
     "allows; make it at least 0.0006"),
    ({"pools": [{**DEP, "hpa": {"sync_period_s": 1e-9}}]},
     "pools[0].hpa.sync_period_s = 1e-09 (float): would repeat 2.4e+12 times (HPA syncs) in "
     "2400 s, more than the 1,000,000 a run allows; make it at least 0.0024"),
    ({"cluster": {"node": {"lease_renew_s": 1e-4}}},
     "cluster.node.lease_renew_s = 0.0001 (float): would repeat 24,000,000 times (per node) in "
     "2400 s, more than the 1,000,000 a run allows; make it at least 0.0024"),
    ({"faults": [{"type": "scheduler-restart", "rate_per_h": 1e12}]},
     "faults[0].rate_per_h = 1000000000000.0 (float): would fire 1.67e+11 times in 600 s, more "
     "than the 1,000,000 a run allows; make it at most 6000000"),
    # 1e300 / 1e-300 overflowed to inf in the HPA's ratio (OverflowError in math.ceil).
    ({"pools": [{**DEP, "hpa": {"target": 1e-300}}]},
     "pools[0].hpa.target = 1e-300 (float): must be >= 0.01: Kubernetes takes a target "
     "utilization in whole percent, at least 1 (0.8 means 80 %)"),
    ({"pools": [{**DEP, "hpa": {"load": 1e300}}]},
     "pools[0].hpa.load = 1e+300 (float): is the load in pods at 100 %; at most 1,000,000 (a "
     "pool has at most max_replicas pods)"),
    # Passed, and stranded every task: the HPA disables itself at 0 replicas (ScalingDisabled).
    ({"pools": [{**DEP, "initial_replicas": 0, "hpa": {}}]},
     "pools[0].initial_replicas = 0 (int): an HPA does not scale a Deployment at 0 replicas "
     "(ScalingDisabled), so no pod would ever run; set initial_replicas: 1 or more, or leave it "
     "out to start at min_replicas"),
    # Was dropped without a word, where a fault's `at` after the end is refused.
    ({"workload": [{"count": 1, "at": [5, 700]}]},
     "workload[0].at[1] = 700 (int): is after duration_s (600); tasks arrive only while the "
     "workload runs"),
])
def test_what_would_run_for_hours_or_never_run_a_task_is_refused_in_one_line(patch, line):
    assert problems({**OK, **patch}) == [f"scenarios/x.yaml: {line}"]


def test_the_least_period_a_refusal_names_is_accepted():
    parse({**OK, "faults": [{"type": "pod-kill", "at": 5, "retry_s": 0.0006}]}, "x.yaml")
    parse({**OK, "faults": [{"type": "scheduler-restart", "rate_per_h": 6e6}]}, "x.yaml")
    # Rounded to 3 figures the right way: up for a least value, down for a greatest.
    slow = {**OK, "duration_s": 3601, "drain_s": 600}
    (line,) = problems({**slow, "workload": [{"count": 1, "every_s": 1e-9}]})
    assert line.endswith("make it at least 0.00361"), line
    parse({**slow, "workload": [{"count": 1, "every_s": 0.00361}]}, "x.yaml")
    (line,) = problems({**slow, "faults": [{"type": "scheduler-restart", "rate_per_h": 1e9}]})
    assert line.endswith("make it at most 999000"), line
    parse({**slow, "faults": [{"type": "scheduler-restart", "rate_per_h": 999000}]}, "x.yaml")


@pytest.mark.parametrize("kind", ["fixed", "uniform"])
def test_p99_s_is_not_asked_of_a_pod_startup_that_does_not_use_it(kind):
    cfg = parse({**OK, "cluster": {"pod_startup": {"kind": kind, "median_s": 20}}}, "x.yaml").world()
    assert cfg.cluster.pod_startup.median_s == 20


@pytest.mark.parametrize("patch, line", [
    ({5: 1}, "(top level): the key 5 was read as a number, and a key here is a field name; "
     "write the field's name, or quote it: '5':"),
    ({"cluster": {True: 1}}, "cluster: the key true was read as a boolean (YAML 1.1 reads "
     "unquoted yes, no, on, off, true and false so), and a key here is a field name; write the "
     "field's name, or quote it: 'true':"),
    ({"workload": [{"count": 1, "at": [5], "types": {"apply": 1}}]},
     "workload[0].types = 'apply' (str): unknown key; expected one of 'plan_and_apply', 'plan' "
     "or 'drift_check'"),
    ({"a\nb": 1}, "'a\\nb' = 1 (int): unknown field; allowed here: name, description, seeds, "
     "suite_seeds, duration_s, drain_s, clock_origin, time_scale, bounds, gates, cluster, pools, agents, "
     "users, workload, faults"),
])
def test_a_bad_key_is_named_on_one_line_by_the_mapping_that_holds_it(patch, line):
    assert problems({**OK, **patch}) == [f"scenarios/x.yaml: {line}"]


def test_many_workspaces_are_checked_for_duplicates_in_linear_time():
    # names.count(n) for every name took 3 s for 20,000 and would take minutes for 100,000.
    s = parse({**OK, "workload": [{"count": 100_000, "at": [5]}]}, "x.yaml")
    assert s.workload[0].count == 100_000


def test_a_yaml_set_is_refused_because_its_order_changes_from_process_to_process(tmp_path):
    # Found by the scenario fuzz: pydantic took `names: !!set {...}` for a list in the order of
    # the set, which depends on PYTHONHASHSEED, so each process ran another history.
    f = tmp_path / "set.yaml"
    f.write_text("duration_s: x\nworkload:\n  - names: !!set {gamma, alpha, beta}\n    every_s: 100\n")
    with pytest.raises(ScenarioInvalid) as e:
        load(f)
    assert e.value.problems == [
        f"{f}: workload[0].names = {{'alpha', 'beta', 'gamma'}} (set): expected a list such as "
        "[a, b]; a YAML set (!!set) has no order, so runs of it would differ between processes",
        f"{f}: duration_s = 'x' (str): expected seconds as a number; for example 300"]


# ---------------------------------------------------------------------- advice (warnings)
# Settings the fuzz found to fail an invariant under every scheduler: they still run (a
# scenario may mean to show it), with a warning that says why and what would leave room.


def test_a_drain_or_bound_shorter_than_the_work_gets_a_warning_naming_the_field():
    s = parse({**OK, "drain_s": 60, "bounds": {"apply_pending_s": 100}}, "x.yaml")
    assert advice(s, "x.yaml") == [
        "warning: x.yaml: drain_s = 60.0 (float): is shorter than one apply's p99.99 "
        "(agents.apply_s: 977 s): a task created or confirmed as the workload ends may still run "
        "when the drain ends, and `drained` fail under every scheduler; make drain_s at least 977 "
        "plus a pod start and connect",
        "warning: x.yaml: bounds.apply_pending_s = 100.0 (float): is shorter than an apply's p99 "
        "(agents.apply_s: 400 s): a confirmed task that waits for a running apply's slot (a pool "
        "at max_replicas) may break apply_pending_bound under every scheduler; make it at least 400"]
    longer_plans = parse({**OK, "drain_s": 990, "agents": {"plan_s": {"kind": "uniform", "min": 100,
                                                                      "max": 1000}}}, "x.yaml")
    assert [line.split(": is")[1][:40] for line in advice(longer_plans, "x.yaml")] == [
        " shorter than one plan's p99.99 (agents."]


def test_a_bound_shorter_than_a_new_pods_start_and_connect_gets_a_warning():
    # The scenario fuzz (session 36) drew a 1 s bound with applies of no length: a confirmed
    # task whose pod had been replaced found every pod busy and waited 2.1 s for a new one
    # under the reference, as it would under any scheduler.
    fast = {"apply_s": 0.001, "plan_s": 10, "connect_s": {"kind": "uniform", "min": 0, "max": 4}}
    s = parse({**OK, "bounds": {"apply_pending_s": 1}, "agents": fast}, "x.yaml")
    assert advice(s, "x.yaml") == [
        "warning: x.yaml: bounds.apply_pending_s = 1.0 (float): is shorter than a new pod's start "
        "and its agent's connect (p99 14 s, cluster.pod_startup and agents.connect_s): a confirmed "
        "task whose pod went (a fault, a scale-down) waits for a new one, and may break "
        "apply_pending_bound under every scheduler; make it at least 14"]
    assert advice(parse({**OK, "bounds": {"apply_pending_s": 14}, "agents": fast}, "x.yaml"),
                  "x.yaml") == []


def test_a_plan_longer_than_the_reference_run_timeout_gets_a_warning():
    # A plan that always takes longer fails at the run timeout (until session 30 it was run
    # again, up to the retry budget: `drained` failed with a plan of 4,000 s, and before an
    # earlier fix agent_capacity too). An apply as long is not: the state settles it, or its
    # late report makes it applied (scenarios/adversarial/given-up-apply-reconnect.yaml).
    long = {**OK, "drain_s": 9000, "bounds": {"apply_pending_s": 3700},
            "agents": {"plan_s": 4000, "apply_s": {"kind": "uniform", "min": 60, "max": 3700}}}
    assert advice(parse(long, "x.yaml"), "x.yaml") == [
        "warning: x.yaml: agents.plan_s: has a p99 of 4000 s, over the reference's run timeout "
        "(3600 s): the reference stops a plan still running then and fails its task (run "
        "again, it would time out again), so such tasks end failed under it; keep the p99 under "
        "3600 s"]
    assert advice(parse({**long, "agents": {**long["agents"], "plan_s": 3500}}, "x.yaml"), "x.yaml") == []


def test_node_losses_that_never_heal_and_may_take_every_node_get_a_warning():
    lose = {"type": "node-loss", "rate_per_h": 6}
    assert advice(parse({**OK, "duration_s": 3600, "workload": [{"count": 1, "at": [5]}],
                         "faults": [{"type": "pod-kill", "at": 5}, lose]}, "x.yaml"), "x.yaml") == [
        "warning: x.yaml: faults[1].heal_after: node-loss faults that never heal may take 6 nodes "
        "(on average) of the 3: with every node lost no pod runs again, and `drained` fails under "
        "every scheduler; set heal_after, or add nodes"]
    healed = {**lose, "heal_after": 60}
    few = {**lose, "end_s": 1200}  # 2 of the 3 nodes, on average
    for faults in ([healed], [few]):
        assert advice(parse({**OK, "duration_s": 3600, "faults": faults}, "x.yaml"), "x.yaml") == []


@pytest.mark.parametrize("path", sorted(Path("scenarios").glob("*.yaml")))
def test_no_shipped_scenario_gets_a_warning(path):
    assert advice(load(path), str(path)) == []


def test_a_workspace_asked_for_tasks_faster_than_it_can_run_them_gets_a_warning():
    # The fuzz's reference "violation": 3 workspaces, a task each every 60 s, each busy ~384 s.
    busy = {**OK, "duration_s": 3600, "workload": [{"count": 3, "every_s": 60}]}
    line, pool = advice(parse(busy, "x.yaml"), "x.yaml")  # and more than 4 pods can run
    assert pool.startswith("warning: x.yaml: pools[0].max_replicas = 4 (int): the workload asks")
    assert line.startswith("warning: x.yaml: workload[0].every_s = 60.0 (float): is shorter than the "
                           "384 s a task keeps its workspace busy on average"), line
    plans = {**busy, "workload": [{"count": 3, "every_s": 120, "types": {"plan": 1}}]}
    assert advice(parse(plans, "x.yaml"), "x.yaml") == []  # a plan alone takes ~81 s


def test_a_pool_asked_for_more_plan_and_apply_work_than_its_pods_can_do_gets_a_warning():
    # The fuzz's: 6 workspaces, 24 plan_and_apply tasks on a pool of at most 1 pod, which runs
    # one at a time for ~173 s each: 4,148 s of work in a 2,400 s run.
    at = [0, 0.3, 292]
    crowded = {**OK, "pools": [{"id": "p", "min_replicas": 0, "max_replicas": 1}],
               "users": {"confirm_s": 2},
               "workload": [{"prefix": "a", "count": 4, "at": at, "every_s": 401},
                            {"prefix": "b", "count": 2, "at": at}]}
    (line,) = advice(parse(crowded, "x.yaml"), "x.yaml")
    assert line == (
        "warning: x.yaml: pools[0].max_replicas = 1 (int): the workload asks this pool for about "
        "24 plan_and_apply tasks, 4,148 s of pod time (a pod runs one at a time, 173 s each on "
        "average: plan, held confirm, apply), over 3/4 of what 1 pods give in the run (2400 s "
        "each): "
        "tasks may still be queued at its end and `drained` fail under every scheduler; raise "
        "max_replicas to at least 3, or lighten the workload")
    roomy = {**crowded, "pools": [{"id": "p", "min_replicas": 0, "max_replicas": 3}]}
    assert advice(parse(roomy, "x.yaml"), "x.yaml") == []
    # A later hunt's: 6 tasks at once at t=1,497 on one pod (2,303 s of work) are 64 % of the
    # run's 3,600 pod-seconds, but more than the 2,103 s left after they arrive: a task was
    # still queued after the drain. The same burst at t=0 is within the pool's means.
    def burst(at: float) -> dict:
        return {**OK, "duration_s": 1800, "drain_s": 1800,
                "pools": [{"id": "p", "min_replicas": 0, "max_replicas": 1}],
                "workload": [{"prefix": "g", "count": 6, "at": [at]}]}
    (line,) = advice(parse(burst(1497.4), "x.yaml"), "x.yaml")
    assert line.endswith("over 3/4 of what 1 pods give from its first arrival to the run's end "
                         "(2103 s each): tasks may still be queued at its end and `drained` fail "
                         "under every scheduler; raise max_replicas to at least 2, or lighten the "
                         "workload"), line
    assert advice(parse(burst(0.0), "x.yaml"), "x.yaml") == []
    # The next hunt's: 13 plans of 333 s at t=0 on 5 pods take 3 rounds (999 s of a 1,010 s
    # run), though the work is only 86 % of the pool's pod time.
    burst = {**OK, "drain_s": 410, "agents": {"plan_s": 333.3, "apply_s": 381, "has_changes": 0,
                                             "connect_s": 0},
             "pools": [{"id": "p", "min_replicas": 0, "max_replicas": 5}],
             "workload": [{"prefix": "a", "count": 5, "at": [0, 0]},
                          {"names": ["b"], "at": [0, 0, 0]}]}
    (line,) = advice(parse(burst, "x.yaml"), "x.yaml")
    assert "about 13 plan_and_apply tasks, 4,333 s of pod time" in line, line


def test_a_workspace_that_may_be_asked_for_more_than_it_can_run_in_turn_gets_a_warning():
    # This session's hunt: one workspace, `at: [0, 0]` and every_s 400 of 400 s plans without
    # changes in a 2,400 s run. 3.5 tasks on average fit (58 %), but one seed drew 7, and the
    # last was still planning at the end: a workspace runs one task at a time, so the advice
    # takes the count of every_s arrivals that 1 seed in 1,000 exceeds.
    def ws(every_s: float, has_changes: float = 0) -> dict:
        return {**OK, "agents": {"plan_s": 400, "apply_s": 0, "has_changes": has_changes,
                                 "connect_s": 0},
                "workload": [{"prefix": "g", "count": 1, "at": [0, 0], "every_s": every_s}]}
    (line,) = advice(parse(ws(400), "x.yaml"), "x.yaml")
    assert line == (
        "warning: x.yaml: workload[0]: a workspace may be asked for 8 tasks in a run (1 seed in "
        "1,000 asks for more; 3.5 on average), 3,200 s of one-at-a-time work at 400 s a task, "
        "more than the 2,400 s from its first arrival to the run's end: tasks may still be "
        "queued at the end and `drained` fail under every scheduler; ask each workspace for "
        "fewer tasks (at, every_s), or spread them over more workspaces"), line
    assert advice(parse(ws(3000), "x.yaml"), "x.yaml") == []  # 2 + at most 3: 2,000 s
    # A plan with changes locks its workspace to its apply's end: what is asked for meanwhile
    # is refused, not queued, so no such count holds (timed-out-apply-stale-plan's 6 tasks).
    assert not [w for w in advice(parse(ws(400, has_changes=1), "x.yaml"), "x.yaml")
                if "one-at-a-time" in w]


def test_the_count_of_arrivals_a_seed_exceeds_once_in_a_thousand():
    from unstuck.scenario.advice import arrivals_at_most

    assert [arrivals_at_most(m) for m in (0, 0.1, 1.5, 100)] == [0, 2, 6, 132]
    # Past where exp(-mean) underflows, the normal approximation, continuous with the sum.
    assert arrivals_at_most(701) - arrivals_at_most(699) in range(0, 6)


def test_advice_survives_a_lognormal_whose_tail_overflows_a_float():
    # Found by review: median 1e-20, p99 1e20 passed validation, then OverflowError in
    # Dist.mean (exp of sigma^2/2), a traceback where d9d4ba1 had run it.
    wide = {**OK, "agents": {"plan_s": {"kind": "lognormal", "median": 1e-20, "p99": 1e20,
                                        "floor": 5}}}
    lines = advice(parse(wide, "x.yaml"), "x.yaml")
    assert lines and all(line.startswith("warning: x.yaml: ") for line in lines), lines


def test_slow_users_do_not_make_a_pool_look_too_small():
    # Found by review: a confirm taking 30 min was counted whole as pod time, and 4 pods
    # were called too few for 20 applies the reference and seed-head both drain. A waiting
    # plan holds its pod for at most reservation_hold_s (900 s), and only that counts.
    slow = {**OK, "duration_s": 3600, "drain_s": 3600, "users": {"confirm_s": 1800},
            "agents": {"plan_s": 60, "apply_s": 90, "has_changes": 1},
            "workload": [{"count": 20, "at": [5]}]}
    assert advice(parse(slow, "x.yaml"), "x.yaml") == []


def test_a_cross_field_problem_quotes_the_value_as_the_file_wrote_it():
    # Was `faults[0].at = 900.0 (float)` for a file that says `at: 900`.
    assert problems({**OK, "faults": [{"type": "pod-kill", "at": 900}]}) == [
        "scenarios/x.yaml: faults[0].at = 900 (int): is after duration_s (600); faults fire only "
        "while the workload runs"]
    assert problems({**OK, "faults": [{"type": "pod-kill", "at": 900.5}]})[0].startswith(
        "scenarios/x.yaml: faults[0].at = 900.5 (float): ")


# ---------------------------------------------------------------------- user audit
# Each of these passed validation, and the run said `faults_never_fired` (or nothing at all)
# and exited 0: a window that can never fire is refused as a late `at` is.
@pytest.mark.parametrize("fault, line", [
    ({"rate_per_h": 2, "start_s": 700},
     "faults[0].start_s = 700 (int): is not before duration_s (600); faults fire only while the "
     "workload runs, so this one never would; make start_s less than 600"),
    ({"rate_per_h": 2, "start_s": 300, "end_s": 100},
     "faults[0].end_s = 100 (int): is not after start_s (300): the window is empty, so the "
     "fault never fires; make end_s greater than start_s"),
    ({"rate_per_h": 2, "start_s": 300, "end_s": 300},
     "faults[0].end_s = 300 (int): is not after start_s (300): the window is empty, so the "
     "fault never fires; make end_s greater than start_s"),
    ({"rate_per_h": 2, "end_s": 900},
     "faults[0].end_s = 900 (int): is after duration_s (600); faults fire only while the "
     "workload runs; make end_s at most 600, or leave it out (the window then ends at "
     "duration_s)"),
    ({"at": 5, "start_s": 100},
     "faults[0].start_s = 100 (int): bounds the window of a rate_per_h fault; a fault with at "
     "fires at that time: remove it"),
])
def test_a_fault_window_that_can_never_fire_is_refused_like_a_late_at(fault, line):
    assert problems({**OK, "faults": [{"type": "pod-kill", **fault}]}) == [
        f"scenarios/x.yaml: {line}"]


def test_a_window_wholly_after_the_workload_names_both_ends():
    assert problems({**OK, "faults": [{"type": "pod-kill", "rate_per_h": 2, "start_s": 700,
                                       "end_s": 800}]}) == [
        "scenarios/x.yaml: faults[0].start_s = 700 (int): is not before duration_s (600); faults "
        "fire only while the workload runs, so this one never would; make start_s less than 600",
        "scenarios/x.yaml: faults[0].end_s = 800 (int): is after duration_s (600); faults fire "
        "only while the workload runs; make end_s at most 600, or leave it out (the window then "
        "ends at duration_s)"]


def test_a_fault_window_the_refusal_suggests_is_accepted():
    for fault in ({"rate_per_h": 2, "start_s": 599}, {"rate_per_h": 2, "end_s": 600},
                  {"rate_per_h": 2, "start_s": 300, "end_s": 301}):
        parse({**OK, "faults": [{"type": "pod-kill", **fault}]}, "x.yaml")


def test_a_rate_fault_in_a_run_with_no_workload_time_is_refused():
    at_0 = {**OK, "duration_s": 0, "workload": [{"count": 1, "at": [0]}]}
    assert problems({**at_0, "faults": [{"type": "pod-kill", "rate_per_h": 2}]}) == [
        "scenarios/x.yaml: faults[0].rate_per_h = 2 (int): with duration_s 0 there is no time "
        "to draw from, so the fault never fires; use at: 0, or make duration_s > 0"]
    parse({**at_0, "faults": [{"type": "pod-kill", "at": 0}]}, "x.yaml")


@pytest.mark.parametrize("fault, line", [
    ({"type": "node-loss", "at": 300, "heal_after": 2100},
     "faults[0].heal_after = 2100.0 (float): ends after the run (the fault fires at 300 s at "
     "the earliest, the run ends at duration_s + drain_s = 2400 s), so the node never heals in "
     "it; make heal_after less than 2100, or leave it out"),
    ({"type": "agent-disconnect", "rate_per_h": 1, "reconnect_after": 1e6},
     "faults[0].reconnect_after = 1000000.0 (float): ends after the run (the fault fires at 0 s "
     "at the earliest, the run ends at duration_s + drain_s = 2400 s), so the agent never "
     "reconnects in it; make reconnect_after less than 2400, or leave it out"),
])
def test_a_heal_or_reconnect_due_after_the_run_is_a_warning(fault, line):
    # Not refused: `unstuck shrink` writes a late drawn attempt as `at` with its fault's
    # heal_after, and the replay it prints must run.
    s = parse({**OK, "faults": [fault]}, "scenarios/x.yaml")
    assert f"warning: scenarios/x.yaml: {line}" in advice(s, "scenarios/x.yaml")


@pytest.mark.parametrize("fault, line", [
    ({"type": "db-write-failure", "at": 5, "duration_s": 0},
     "faults[0].duration_s = 0 (int): a window of 0 s is taken off the moment it is laid, so "
     "nothing sees the fault; make it > 0"),
    ({"type": "pool-scale-down", "at": 5, "freeze_s": 0},
     "faults[0].freeze_s = 0 (int): a window of 0 s is taken off the moment it is laid, so "
     "nothing sees the fault; make it > 0"),
])
def test_a_fault_whose_window_nothing_can_see_is_refused(fault, line):
    assert problems({**OK, "faults": [fault]}) == [f"scenarios/x.yaml: {line}"]
    fixed = {**fault, **{k: 1 for k in ("duration_s", "freeze_s") if k in fault}}
    parse({**OK, "faults": [fixed]}, "x.yaml")


HPA_POOL = {"pools": [{**DEP, "max_replicas": 4, "initial_replicas": 2, "hpa": {}}]}


# Each of these was accepted and the run recorded the fault, which did nothing (or did
# something other than the field says): an option the fault ignores is refused.
@pytest.mark.parametrize("patch, line", [
    ({**HPA_POOL, "faults": [{"type": "hpa-scale-down", "at": 5, "mode": "patch",
                              "max_replicas": 1, "load": 0.2}]},
     "faults[0].load = 0.2 (float): is for mode metric (the HPA's load drops to it); a patch "
     "ignores it: remove it, or set mode: metric"),
    ({**HPA_POOL, "faults": [{"type": "hpa-scale-down", "at": 5, "load": 0.2,
                              "max_replicas": 1}]},
     "faults[0].max_replicas = 1 (int): is for mode patch (the HPA's bounds are patched); mode "
     "metric (the default) ignores it: remove it, or set mode: patch"),
    ({"faults": [{"type": "db-write-failure", "at": 5, "rate": 0}]},
     "faults[0].rate = 0 (int): fails no store write, so the fault does nothing; make it > 0 "
     "(1 fails every write)"),
    ({"faults": [{"type": "pool-scale-down", "at": 5, "freeze_s": 0, "duration_s": 300}]},
     "faults[0].freeze_s = 0 (int): a freeze window of 0 s freezes nothing, and the fault patches "
     "no bounds, so it does nothing; make it > 0, or set min_replicas and/or max_replicas"),
])
def test_a_fault_option_the_fault_would_ignore_is_refused(patch, line):
    assert problems({**OK, **patch}) == [f"scenarios/x.yaml: {line}"]


def test_the_fault_options_those_refusals_suggest_are_accepted():
    for patch in (
        {**HPA_POOL, "faults": [{"type": "hpa-scale-down", "at": 5, "mode": "patch",
                                 "max_replicas": 1}]},
        {**HPA_POOL, "faults": [{"type": "hpa-scale-down", "at": 5, "load": 0.2}]},
        {"faults": [{"type": "db-write-failure", "at": 5, "rate": 0.01}]},
        {"faults": [{"type": "pool-scale-down", "at": 5, "freeze_s": 0, "duration_s": 300,
                     "max_replicas": 1}]},
    ):
        parse({**OK, **patch}, "x.yaml")


@pytest.mark.parametrize("text, number", [
    ("1e12", 1e12), ("1e+12", 1e12), ("1E-9", 1e-9), (".5", 0.5), ("-1e3", -1000.0),
    ("1.5e3", 1500.0), ("5", 5), ("0x1F", 31)])
def test_numbers_in_scientific_notation_are_numbers_as_in_yaml_1_2(text, number):
    # PyYAML reads YAML 1.1, where `1e12` (no dot) and `1.5e3` (no exponent sign) are strings.
    from unstuck.scenario import read_yaml

    value = read_yaml(f"v: {text}")["v"]
    assert value == number and type(value) is type(number)


def test_a_scenario_may_write_seconds_in_scientific_notation(tmp_path):
    f = tmp_path / "sci.yaml"
    f.write_text("duration_s: 6e2\nworkload: [{count: 1, at: [5e0]}]\n"
                 "faults: [{type: pod-kill, rate_per_h: 1e+1, retry_s: 1E-1}]\n")
    s = load(f)
    assert (s.duration_s, s.faults[0].rate_per_h, s.faults[0].retry_s) == (600, 10, 0.1)
    # The docs' own example is now refused for what it is, not for being a string.
    f.write_text("duration_s: 600\nworkload: [{count: 1, at: [5]}]\n"
                 "faults: [{type: pod-kill, at: 5, retry_s: 1e-9}]\n")
    with pytest.raises(ScenarioInvalid) as e:
        load(f)
    assert e.value.problems == [f"{f}: faults[0].retry_s = 1e-09 (float): would repeat 6e+11 "
                                "times (attempts within within_s) in 600 s, more than the "
                                "1,000,000 a run allows; make it at least 0.0006"]


@pytest.mark.parametrize("hhmm, seconds", [("22:00", 79200.0), ("10:00", 36000.0),
                                             ("09:30", 34200.0), ("7:05", 25500.0)])
def test_an_unquoted_time_of_day_is_a_time_of_day_whatever_its_hour(tmp_path, hhmm, seconds):
    # YAML 1.1 (PyYAML) reads `22:00` as the base-60 int 1320, but `09:30` (a leading 0) as
    # text: unquoted, `clock_origin: 22:00` was refused as "= 1320 (int)" and `09:30` ran.
    # YAML 1.2 has no base-60 numbers; the loader reads both as the text written.
    f = tmp_path / "tod.yaml"
    f.write_text(f"duration_s: 600\nclock_origin: {hhmm}\nworkload: [{{count: 1, at: [5]}}]\n"
                 f"pools: [{{id: p, freeze: [{{from: {hhmm}, to: 23:59}}]}}]\n")
    s = load(f)
    assert s.clock_origin == seconds and s.pools[0].freeze[0].from_ == seconds
    assert s.pools[0].freeze[0].to == 23 * 3600 + 59 * 60


def test_a_base_60_number_where_seconds_go_is_refused_as_text(tmp_path):
    f = tmp_path / "b60.yaml"
    f.write_text("duration_s: 1:30\nworkload: [{count: 1, at: [5]}]\n")
    with pytest.raises(ScenarioInvalid) as e:
        load(f)
    assert e.value.problems == [f"{f}: duration_s = '1:30' (str): expected seconds as a "
                                "number; for example 300"]


@pytest.mark.parametrize("quoted, fix", [
    ("'1e-9'", "write 1e-9 without quotes"), ("'1e+12'", "write 1e+12 without quotes"),
    ("' 300 '", "write 300 without quotes"), ("'nan'", "for example 300"),
    ("'1_000'", "write 1_000 without quotes")])
def test_a_number_in_quotes_is_a_string_and_the_fix_drops_the_quotes(tmp_path, quoted, fix):
    f = tmp_path / "q.yaml"
    f.write_text(f"duration_s: {quoted}\nworkload: [{{count: 1, at: [5]}}]\n")
    with pytest.raises(ScenarioInvalid) as e:
        load(f)
    (line,) = e.value.problems
    assert line.startswith(f"{f}: duration_s = ") and line.endswith(
        f" (str): expected seconds as a number; {fix}"), line
    if fix.startswith("write "):  # the fix itself reads as a number
        from unstuck.scenario import read_yaml

        assert isinstance(read_yaml(f"v: {fix.split()[1]}")["v"], int | float)


def test_cross_field_problems_come_in_the_same_round_as_field_errors():
    # They used to appear only once every field error was fixed: a second round of errors.
    found = problems({
        **OK, "agents": {"has_changes": 2},  # a field error, in a section no rule below reads
        "pools": [{"id": "a", "min_replicas": 3, "max_replicas": 2},
                  {"id": "a", "hpa": {}}, {"id": "d", "manager": "deployment", "hpa": {}}],
        "workload": [{"names": ["w", "w"], "at": [5, 900], "pool": "nope"}],
        "faults": [{"type": "hpa-scale-down", "at": 5}]})
    assert [p.split(": ")[1].split(" = ")[0] for p in found] == [
        "agents.has_changes", "pools[0].id", "pools[0].max_replicas", "pools[1].id",
        "pools[1].hpa", "workload[0].pool", "workload[0].names[1]", "workload[0].at[1]",
        "faults[0].load"], found


@pytest.mark.parametrize("bad", [{"name": "my scenario"}, {"duration_s": -1},
                                 {"workload": "ws-1"}])
def test_a_bad_required_field_does_not_hide_the_other_sections_problems(bad):
    # A bad name (the file's own, `my scenario.yaml`) hid every cross-field problem.
    found = problems({**OK, "pools": [{"id": "a", "min_replicas": 3, "max_replicas": 2}],
                      **bad})
    assert [p.split(": ")[1].split(" = ")[0] for p in found] == [
        next(iter(bad)), "pools[0].max_replicas"], found


def test_every_required_field_has_a_stub_for_the_cross_field_round():
    from unstuck.scenario import Scenario
    from unstuck.scenario.loading import _STUBS

    assert {k for k, f in Scenario.model_fields.items() if f.is_required()} <= set(_STUBS)


def test_a_cross_field_rule_that_reads_a_failed_section_is_left_for_the_next_round():
    # pools[0] failed, so its id is unknown: "no such pool" would be a guess.
    found = problems({**OK, "pools": [{"id": "p", "manager": "x"}],
                      "workload": [{"count": 1, "at": [5, 900], "pool": "p"}]})
    assert found == [
        "scenarios/x.yaml: pools[0].manager = 'x' (str): expected one of 'bare' or 'deployment'",
        "scenarios/x.yaml: workload[0].at[1] = 900 (int): is after duration_s (600); tasks "
        "arrive only while the workload runs"]
    assert problems({**OK, "duration_s": "x", "workload": [{"count": 1, "at": [900]}]}) == [
        "scenarios/x.yaml: duration_s = 'x' (str): expected seconds as a number; for example 300"]


@pytest.mark.parametrize("workload, line", [
    ([{"names": ["a", "a"], "at": [5]}],
     "workload[0].names[1] = 'a' (str): is already a workspace of workload[0].names[0]; a "
     "workspace belongs to one group, once: drop it or rename it"),
    ([{"count": 2, "at": [5]}, {"names": ["x", "ws-2"], "at": [5]}],
     "workload[1].names[1] = 'ws-2' (str): is already a workspace of workload[0]; a workspace "
     "belongs to one group, once: drop it or rename it"),
    ([{"names": ["ws-2"], "at": [5]}, {"count": 3, "at": [5]}],
     "workload[1].prefix = 'ws' (str): makes workspace 'ws-2', already a workspace of "
     "workload[0].names[0]; give this group another prefix"),
])
def test_a_repeated_workspace_is_named_where_the_file_repeats_it(workload, line):
    # Was `workload = 'a' (str)`: the section, not the name that repeats.
    assert problems({**OK, "workload": workload}) == [f"scenarios/x.yaml: {line}"]


@pytest.mark.parametrize("patch, line", [
    ({"pools": [{"id": "p", "hpa": {}}]},  # was `pools[0].hpa = 'hpa' (str)`
     "pools[0].hpa: only a manager: deployment pool has an HPA, and this one's manager is bare; "
     "set manager: deployment or remove hpa"),
    ({"pools": [{"id": "p", "manager": "deployment", "hpa": {}}],  # was `= None (NoneType)`
      "faults": [{"type": "hpa-scale-down", "at": 5}]},
     "faults[0].load: is missing: mode metric (the default) drops the HPA's load to it; add it, "
     "for example load: 0.2"),
    ({"pools": [{"id": "a"}, {"id": "a"}, {"id": "c"}],  # was "choose one of a, a, c"
      "workload": [{"count": 1, "at": [5], "pool": "b"}]},
     "workload[0].pool = 'b' (str): no such pool; choose one of a, c"),
])
def test_cross_field_lines_name_the_users_field_and_value(patch, line):
    assert f"scenarios/x.yaml: {line}" in problems({**OK, **patch})


@pytest.mark.parametrize("field", ["seeds", "suite_seeds"])
@pytest.mark.parametrize("value", [-1, 0])
def test_a_seed_count_below_1_gets_one_rule_whatever_its_sign(field, value):
    # -1 said ">= 0", and the 0 a user then wrote said ">= 1".
    assert problems({**OK, field: value}) == [
        f"scenarios/x.yaml: {field} = {value} (int): must be >= 1"]
    assert problems({**OK, "cluster": {"nodes": value}}) == [
        f"scenarios/x.yaml: cluster.nodes = {value} (int): must be >= 1"]


def test_a_key_yaml_read_as_a_boolean_is_named_as_the_file_spells_it(tmp_path):
    # Was `(top level) = True (bool)` for a key written `yes`.
    f = tmp_path / "yes.yaml"
    f.write_text("duration_s: 600\nworkload: [{count: 1, at: [5]}]\nyes: 1\ncluster: {~: 2}\n")
    with pytest.raises(ScenarioInvalid) as e:
        load(f)
    assert e.value.problems == [
        f"{f}: cluster: the key ~ was read as null, and a key here is a field name; write the "
        "field's name, or quote it: '~':",
        f"{f}: (top level): the key yes was read as a boolean (YAML 1.1 reads unquoted yes, no, "
        "on, off, true and false so), and a key here is a field name; write the field's name, "
        "or quote it: 'yes':"]


@pytest.mark.parametrize("patch, line", [
    ({"seedz": 3}, "seedz = 3 (int): unknown field (did you mean seeds?); allowed here: "),
    ({"duraton_s": 600}, "duraton_s = 600 (int): unknown field (did you mean duration_s?); "),
    ({"agents": {"connect_s": -5}},  # was agents.connect_s.value: a field the user never wrote
     "agents.connect_s = -5 (int): expected a finite number of seconds >= 0"),
    ({"workload": ["a"]},  # was "a valid dictionary or instance of Workspaces"
     "workload[0] = 'a' (str): expected a mapping such as {count: 1, at: [0]}"),
    ({"faults": ["a"]}, "faults[0] = 'a' (str): expected a fault, a mapping such as "
     "{type: pod-kill, at: 0}"),
    ({"agents": {"plan_s": "x"}}, "agents.plan_s = 'x' (str): expected seconds as a number (a "
     "fixed time) or a distribution such as {kind: uniform, min: 20, max: 90}"),
    ({"cluster": "x"}, "cluster = 'x' (str): expected a mapping (field: value) of: nodes, "
     "grace_s, watch_latency_s, pod_startup, node, deployments_first"),
    ({"workload": [{"count": 1, "at": [5], "types": "plan"}]}, "workload[0].types = 'plan' "
     "(str): expected task types with weights, such as {plan_and_apply: 3, plan: 1}"),
    ({"workload": [{"names": "ws-a", "at": [5]}]},  # "expected a valid list", and no fix
     "workload[0].names = 'ws-a' (str): expected a list; write [ws-a]"),
    ({"workload": [{"count": 1, "at": 5}]}, "workload[0].at = 5 (int): expected a list; write [5]"),
    ({"pools": "p"}, "pools = 'p' (str): expected a list; write [{id: pool-1}]"),
])
def test_field_errors_speak_the_files_language(patch, line):
    found = problems({**OK, **patch})
    assert len(found) == 1 and found[0].startswith(f"scenarios/x.yaml: {line}"), found


@pytest.mark.parametrize("fault", FAULT_TYPES)
def test_an_unknown_key_in_any_fault_names_the_fields_its_type_allows(fault):
    # Found by the scenario fuzz: an unknown key in an agent-partition fault raised a KeyError
    # (a traceback, not exit 2), because the wording's own list of fault models lacked the type
    # added last. The list is now read from the Fault union.
    from unstuck.scenario.schema import FAULT_MODELS

    allowed = ", ".join(f.alias or n for n, f in FAULT_MODELS[fault].model_fields.items())
    found = problems({**OK, "faults": [{"type": fault, "at": 5, "colour": "blue"}]})
    assert found == [f"scenarios/x.yaml: faults[0].colour = 'blue' (str): unknown field; "
                     f"allowed here: {allowed}"], found
    assert "at" in allowed and "colour" not in allowed


def test_an_empty_file_says_it_is_empty(tmp_path):
    f = tmp_path / "empty.yaml"
    f.write_text("# nothing yet\n")
    with pytest.raises(ScenarioInvalid) as e:  # was "..., not NoneType"
        load(f)
    assert e.value.problems == [f"{f}: the file is empty; a scenario needs at least duration_s "
                                "and workload, for example: duration_s: 600 and workload: "
                                "[{count: 1, at: [0]}]"]


def test_a_tab_in_the_indentation_says_to_indent_with_spaces(tmp_path):
    f = tmp_path / "tab.yaml"
    f.write_text("duration_s: 600\nworkload:\n\t- {count: 1, at: [5]}\n")
    with pytest.raises(ScenarioInvalid) as e:
        load(f)
    (line,) = e.value.problems
    assert line.startswith(f"{f}: not valid YAML at line 3, column 1: ") and line.endswith(
        "; indent with spaces: YAML does not allow tabs there"), line


@pytest.mark.parametrize("workload, line", [
    ([], "workload = [] (list): has no workspace group, so no task is ever created and the run "
     "proves nothing; add one, for example [{count: 1, at: [0]}]"),
    ([{"count": 0, "at": [5]}], "workload[0].count = 0 (int): a group of no workspace creates "
     "no task, and proves nothing; make count at least 1 (or list names), or remove the group"),
    ([{"names": [], "at": [5]}], "workload[0].names = [] (list): a group of no workspace "
     "creates no task, and proves nothing; make count at least 1 (or list names), or remove the "
     "group"),
])
def test_a_workload_that_creates_no_task_is_refused(workload, line):
    # Each ran nothing and exited 0.
    assert problems({**OK, "workload": workload}) == [f"scenarios/x.yaml: {line}"]
    assert problems({**OK, "duration_s": 0, "workload": [{"count": 1, "every_s": 60}]}) == [
        "scenarios/x.yaml: workload[0].every_s = 60 (int): with duration_s 0 no task arrives at "
        "a rate; give at: [0], or make duration_s > 0"]


@pytest.mark.parametrize("field", ["connect_s", "plan_s", "apply_s"])
def test_an_exponential_with_mean_0_is_refused(field):
    assert problems({**OK, "agents": {field: {"kind": "exponential", "mean": 0}}}) == [
        f"scenarios/x.yaml: agents.{field}: an exponential needs mean > 0 (with mean 0 every "
        "draw is 0); give mean > 0, or write 0 for a fixed 0 s"]
    parse({**OK, "agents": {field: 0}}, "x.yaml")  # the fix it names is accepted


DAY = {**OK, "duration_s": 86400}


@pytest.mark.parametrize("workload, line, fixed", [
    # 144 million tasks: the guard was per workspace (1,440 each), so this only got a warning
    # and then ran for ever.
    ([{"count": 100_000, "every_s": 60}],
     "workload[0].every_s = 60 (int): the workload would create about 144,000,000 tasks "
     "(144,000,000 from this group's 100,000 workspaces) in 86400 s, more than the 1,000,000 a "
     "run allows; make it at least 8640", [{"count": 100_000, "every_s": 8640}]),
    # Over the groups together: each alone is under the limit.
    ([{"count": 600, "every_s": 100}, {"prefix": "b", "count": 600, "every_s": 100}],
     "workload[0].every_s = 100 (int): the workload would create about 1,036,800 tasks "
     "(518,400 from this group's 600 workspaces) in 86400 s, more than the 1,000,000 a run "
     "allows; make it at least 108",
     [{"count": 600, "every_s": 108}, {"prefix": "b", "count": 600, "every_s": 100}]),
    ([{"count": 100_000, "at": list(range(11))}],
     "workload[0].count = 100000 (int): the workload would create about 1,100,000 tasks "
     "(1,100,000 from this group's 100,000 workspaces) in 86400 s, more than the 1,000,000 a run "
     "allows; make it at most 90,909", [{"count": 90_909, "at": list(range(11))}]),
])
def test_a_workload_of_more_tasks_than_a_run_allows_is_refused_with_a_value_that_runs(
        workload, line, fixed):
    assert problems({**DAY, "workload": workload}) == [f"scenarios/x.yaml: {line}"]
    parse({**DAY, "workload": fixed}, "x.yaml")  # the value named, the rest as it was


def test_top_level_x_keys_hold_anchors_and_are_otherwise_ignored(tmp_path):
    # `x-base` was refused as an unknown field, so anchors had to live inside a real one.
    f = tmp_path / "anchors.yaml"
    f.write_text("x-group: &group {every_s: 600, types: {plan: 1}}\nx-note: anything\n"
                 "duration_s: 600\nworkload:\n  - {<<: *group, prefix: a, count: 2}\n"
                 "  - {<<: *group, prefix: b, count: 1, at: [5]}\n")
    assert [(w.prefix, w.every_s, dict(w.types)) for w in load(f).workload] == [
        ("a", 600, {"plan": 1}), ("b", 600, {"plan": 1})]
    assert problems({**OK, "xbase": 1})[0].startswith("scenarios/x.yaml: xbase = 1 (int): unknown field")


def test_a_name_yaml_read_as_a_number_says_to_quote_it():
    # Under YAML 1.2 floats `names: [1e5]` is a number; the message said "expected a valid
    # string", which does not say why or what to write.
    assert problems({**OK, "workload": [{"names": [1e5, True], "at": [5]}]}) == [
        "scenarios/x.yaml: workload[0].names[0] = 100000.0 (float): YAML read a number or a "
        "boolean where text goes; quote it as you wrote it, e.g. '1e5' or 'yes'",
        "scenarios/x.yaml: workload[0].names[1] = True (bool): YAML read a number or a "
        "boolean where text goes; quote it as you wrote it, e.g. '1e5' or 'yes'"]


# ---------------------------------------------------------------------- ignored fields
# Each of these passed validation and the run went on as if the field were not there: a
# setting the user wrote, and believed in force, that did nothing.
_HPA_POOL = {"id": "dep", "manager": "deployment", "hpa": {}}


@pytest.mark.parametrize("patch, line", [
    ({"agents": {"connect_s": {"kind": "fixed", "value": 5, "min": 3}}},
     "agents.connect_s: min is not a parameter of a fixed distribution, which takes value (and "
     "floor); remove min (a lower bound of any kind is floor)"),
    ({"users": {"confirm_s": {"kind": "lognormal", "median": 60, "p99": 240, "min": 5,
                              "mean": 90}}},
     "users.confirm_s: min and mean are not parameters of a lognormal distribution, which takes "
     "median and p99 (and floor); remove min and mean (a lower bound of any kind is floor)"),
    ({"pools": [{"id": "p", "initial_replicas": 3}]},
     "pools[0].initial_replicas = 3 (int): is a Deployment's replicas at t = 0, and this pool's "
     "manager is bare (the scheduler creates its pods, min_replicas at the start); remove "
     "initial_replicas, or set manager: deployment"),
    ({"pools": [{"id": "p", "freeze": [{"from": "01:00", "to": "01:00"}]}]},
     "pools[0].freeze[0]: from and to are the same time, so the window is empty and never "
     "freezes the pool; make to another time (a window may cross midnight: from \"22:00\" to "
     "\"02:00\")"),
    ({"workload": [{"names": ["a"], "prefix": "b", "at": [5]}]},
     "workload[0].prefix = 'b' (str): names the workspaces of a count (<prefix>-1..N), and this "
     "group lists names; remove prefix"),
])
def test_a_field_the_run_would_ignore_is_refused(patch, line):
    assert problems({**OK, **patch}) == [f"scenarios/x.yaml: {line}"]


def test_the_fields_each_kind_takes_are_accepted():
    parse({**OK, "agents": {"connect_s": {"kind": "fixed", "value": 5, "floor": 1},
                            "plan_s": {"kind": "uniform", "min": 1, "max": 2, "floor": 1},
                            "apply_s": {"kind": "exponential", "mean": 9}},
           "pools": [{"id": "p", "freeze": [{"from": "22:00", "to": "02:00"}]},
                     {**_HPA_POOL, "initial_replicas": 2}],
           "workload": [{"count": 1, "prefix": "b", "at": [5]}],
           "faults": [{"type": "hpa-scale-down", "at": 5, "mode": "patch", "max_replicas": 2},
                      {"type": "hpa-scale-down", "at": 5, "load": 0.1},
                      {"type": "db-write-failure", "at": 5, "rate": 0.01}]}, "x.yaml")


def test_a_node_grace_no_longer_than_the_lease_renewal_is_refused():
    # A healthy kubelet's newest renewal is up to lease_renew_s old: under such a grace every
    # node of a real cluster flaps to Unknown, while the simulated ones stayed Ready.
    assert problems({**OK, "cluster": {"node": {"grace_s": 5, "lease_renew_s": 20}}}) == [
        "scenarios/x.yaml: cluster.node: grace_s (5) must be > lease_renew_s (20): a healthy "
        "kubelet's newest lease renewal is up to lease_renew_s old, so a shorter grace would "
        "mark every node Unknown between renewals; raise grace_s or lower lease_renew_s"]
    parse({**OK, "cluster": {"node": {"grace_s": 21, "lease_renew_s": 20}}}, "x.yaml")


def test_an_hpa_target_written_in_percent_is_refused_with_the_fraction_to_write():
    # Kubernetes YAML writes `averageUtilization: 80`; here 80 was 8,000 %, and the HPA sat at
    # min_replicas whatever the load.
    assert problems({**OK, "pools": [{**_HPA_POOL, "hpa": {"target": 80}}]}) == [
        "scenarios/x.yaml: pools[0].hpa.target = 80 (int): is a fraction of the pods' CPU "
        "request (0.8 means 80 %), so 80 would be 8,000 %; write 0.8 (a target is at most 10, "
        "1,000 %)"]
    parse({**OK, "pools": [{**_HPA_POOL, "hpa": {"target": 1.5}}]}, "x.yaml")
    parse({**OK, "pools": [{**_HPA_POOL, "hpa": {"target": 10}}]}, "x.yaml")


def test_with_no_pool_a_pool_reference_is_not_told_to_choose_among_none():
    # Found by review: `pools: []` also gave "workload[0].pool = 'a' (str): no such pool;
    # choose one of " (an empty list, a fix that names nothing) beside the pools problem.
    lines = problems({**OK, "pools": [], "workload": [{"count": 1, "at": [5], "pool": "a"}],
                      "faults": [{"type": "pod-kill", "at": 5, "pool": "a"}]})
    assert lines == ["scenarios/x.yaml: pools = [] (list): needs at least one pool (workspaces "
                     "and faults default to the first); list one, or leave pools out for the "
                     "default bare pool-1"]


def test_a_goal_is_scoped_to_its_schedulers_and_asks_what_it_names():
    s = parse({**OK, "faults": [{"type": "pod-kill", "at": 5}], "gates": {"sometimes": [
        {"hit": "apply_pending", "by": "pod-kill", "schedulers": ["seed", "reference"]},
        {"hit": "running", "min_seeds": 3}]}}, "scenarios/x.yaml")
    by_kill, any_fault = s.gates.sometimes
    assert (by_kill.name, any_fault.name) == ("sometimes_hit_apply_pending_by_pod-kill",
                                              "sometimes_hit_running")
    assert [by_kill.holds_for(n) for n in ("seed", "seed-head", "reference")] == [True, False, True]
    assert any_fault.holds_for("seed-head") and any_fault.min_seeds == 3
    assert by_kill.matches("pod-kill", "apply_pending", None, True)
    assert by_kill.matches("pod-kill", "apply_pending", None, False)
    assert not by_kill.matches("node-loss", "apply_pending", None, True)
    assert not by_kill.matches("pod-kill", "running", "plan", False)
    assert any_fault.matches("node-loss", "running", "plan", False)
    assert not any_fault.matches("node-loss", None, None, False)


def test_a_goal_on_a_running_task_may_ask_what_it_ran():
    s = parse({**OK, "faults": [{"type": "node-loss", "at": 5}], "gates": {"sometimes": [
        {"hit": "running", "run": "apply", "by": "node-loss"}]}}, "scenarios/x.yaml")
    [goal] = s.gates.sometimes
    assert goal.name == "sometimes_hit_running_apply_by_node-loss"
    assert goal.what() == "a node-loss hit a task running its apply"
    assert goal.matches("node-loss", "running", "apply", False)
    assert not goal.matches("node-loss", "running", "plan", False)


def test_a_goal_on_a_waiting_task_may_ask_whether_its_confirm_had_come():
    """Incident 601's order is the pod lost while the plan waits for its human; a pod lost
    between the confirm and the apply's start is another path, and either may be asked."""
    s = parse({**OK, "faults": [{"type": "pod-kill", "at": 5}], "gates": {"sometimes": [
        {"hit": "apply_pending", "confirmed": False, "by": "pod-kill"},
        {"hit": "apply_pending", "confirmed": True, "by": "pod-kill"},
        {"hit": "apply_pending", "by": "pod-kill"}]}}, "scenarios/x.yaml")
    before, after, either = s.gates.sometimes
    assert [g.name for g in s.gates.sometimes] == [
        "sometimes_hit_apply_pending_unconfirmed_by_pod-kill",
        "sometimes_hit_apply_pending_confirmed_by_pod-kill",
        "sometimes_hit_apply_pending_by_pod-kill"]
    assert before.what() == "a pod-kill hit a task in apply_pending before its confirm"
    assert after.what() == "a pod-kill hit a task in apply_pending after its confirm"
    waiting, confirmed = ("pod-kill", "apply_pending", None, True), ("pod-kill", "apply_pending", None, False)
    assert [g.matches(*waiting) for g in (before, after, either)] == [True, False, True]
    assert [g.matches(*confirmed) for g in (before, after, either)] == [False, True, True]



def test_two_goals_of_one_hit_and_by_may_split_the_schedulers_between_them():
    s = parse({**OK, "faults": [{"type": "pod-kill", "at": 5}], "gates": {"sometimes": [
        {"hit": "apply_pending", "by": "pod-kill", "min_seeds": 10, "schedulers": ["reference"]},
        {"hit": "apply_pending", "by": "pod-kill", "schedulers": ["seed", "seed-proposal"]}]}},
        "scenarios/x.yaml")
    assert [g.min_seeds for g in s.gates.sometimes if g.holds_for("reference")] == [10]
    assert [g.min_seeds for g in s.gates.sometimes if g.holds_for("seed")] == [1]
    assert not [g for g in s.gates.sometimes if g.holds_for("seed-head")]
