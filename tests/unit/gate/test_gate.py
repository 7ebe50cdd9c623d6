"""`unstuck gate`: every exit code (0, 1, 2, 3) on real result folders written by `unstuck suite`
on a few seeds, and the JUnit XML it writes (one test case per scenario x scheduler x check)."""

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from unstuck.checker import INVARIANTS
from unstuck.cli import app

run = CliRunner().invoke
HERE = Path(__file__).parent
# invariants, stuck_tasks, faults_took_effect and incident-601's goal (gates.sometimes)
CHECKS_PER_PAIR = len(INVARIANTS) + 1 + 1 + 1


def suite(out: Path, *args: str) -> Path:
    r = run(app, ["suite", *args, "--out", str(out), "--workers", "1"])
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def incident(tmp_path_factory) -> Path:
    """incident-601 under seed (stuck in every seed) and reference (clean), 2 seeds each."""
    return suite(tmp_path_factory.mktemp("gate") / "report", "scenarios/incident-601.yaml",
                 "-s", "seed,reference", "--seeds", "2")


def junit(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def test_exit_0_when_the_gated_scheduler_holds_every_check(incident, tmp_path):
    xml = tmp_path / "ref.xml"
    r = run(app, ["gate", str(incident), "--schedulers", "reference", "--junit", str(xml)])
    assert r.exit_code == 0, r.output
    assert "PASS  incident-601  reference: pass" in r.output
    root = junit(xml)
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == (str(CHECKS_PER_PAIR), "0", "0")


def test_exit_1_when_seed_deviates_and_junit_counts_each_failed_check(incident, tmp_path):
    xml = tmp_path / "all.xml"
    r = run(app, ["gate", str(incident), "--junit", str(xml)])
    assert r.exit_code == 1, r.output
    assert "FAIL  incident-601  seed: apply_pending_bound" in r.output
    root = junit(xml)
    cases = root.findall(".//testcase")
    assert len(cases) == 2 * CHECKS_PER_PAIR
    failed = {(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None}
    # The seed leaves task 1 confirmed in apply_pending and its workspace locked, in both seeds.
    assert failed == {("incident-601.seed", n) for n in
                      ("apply_pending_bound", "drained", "no_wedged_workspace", "stuck_tasks")}
    assert root.get("failures") == str(len(failed)) and root.get("errors") == "0"
    msg = next(c for c in cases if c.get("name") == "apply_pending_bound"
               and c.get("classname") == "incident-601.seed").find("failure").get("message")
    assert msg.startswith("2 violations in 2 of 2 seeds (allowed 0); first: seed 0 task 1")


def test_each_failure_names_its_first_task_and_time_and_the_command_that_replays_it(incident):
    # Found by review: a stuck_tasks failure said only "2 stuck tasks (allowed 0)" (no seed,
    # task or time, where docs/gate.md says a failure carries the seeds and the first
    # violation), and no failure carried the command that replays its seed, which CI users
    # had to find in the report.
    from unstuck import results
    from unstuck.report import tables

    cases = {(c.get("classname"), c.get("name")): c.find("failure")
             for c in junit(incident / "junit.xml").findall(".//testcase")}
    fails = tables.failures(results.load(incident), relative_to=incident)
    replay = fails[(fails["scheduler"] == "seed") & (fails["seed"] == 0)]["command"].iloc[0]
    assert replay.startswith("unstuck sim results/scenarios/incident-601.yaml -s seed ")
    v = results.load(incident).violations
    first = v[(v["scheduler"] == "seed") & (v["seed"] == 0)
              & (v["invariant"] == "apply_pending_bound")].iloc[0]
    msg = cases[("incident-601.seed", "apply_pending_bound")].get("message")
    assert msg.startswith(f"2 violations in 2 of 2 seeds (allowed 0); first: seed 0 task 1 at "
                          f"t={first['t']:g}: ")
    assert msg.endswith(f"; replay from the report folder: {replay}")
    stuck = cases[("incident-601.seed", "stuck_tasks")]
    assert stuck.get("message") == stuck.text
    assert stuck.get("message").startswith("2 stuck tasks in 2 of 2 seeds (allowed 0); first: "
                                           f"seed 0 task 1 at t={first['t']:g}: "
                                           "apply_pending_bound: ")
    assert stuck.get("message").endswith(f"; replay from the report folder: {replay}")
    # The gate rewrites the report's junit.xml byte for byte: the command is relative to the
    # report folder, wherever the gate runs from.
    before = (incident / "junit.xml").read_bytes()
    assert run(app, ["gate", str(incident)]).exit_code == 1
    assert (incident / "junit.xml").read_bytes() == before


@pytest.mark.parametrize("part", ["results/runs.parquet", "results/manifest.json",
                                  "results/scenarios/incident-601.yaml"])
def test_junit_may_not_overwrite_the_results_it_judges(incident, part):
    """Found by review (session 32): `--junit results/runs.parquet` wrote XML over the table
    and exited 1, as if it had judged; the next gate found no results."""
    target = incident / part
    before = target.read_bytes()
    r = run(app, ["gate", str(incident), "--junit", str(target)])
    assert r.exit_code == 2, r.output
    assert r.output.startswith(f"error: --junit {target}: would replace ")
    assert f"e.g. --junit {incident / 'junit.xml'}" in r.output
    assert target.read_bytes() == before


def test_default_junit_goes_next_to_the_report(incident):
    r = run(app, ["gate", str(incident)])
    assert r.exit_code == 1
    assert len(junit(incident / "junit.xml").findall(".//testcase")) == 2 * CHECKS_PER_PAIR


def test_a_narrower_gate_writes_junit_named_for_it_and_leaves_the_reports_own(incident):
    # Found by review: the README's CI step (`unstuck gate reports/latest -s reference`)
    # replaced the report's junit.xml with a passing one while index.html and summary.md
    # beside it still stated the suite's verdict (deviated).
    report_junit = (incident / "junit.xml").read_bytes()
    assert "gate: deviated (exit 1)" in (incident / "index.html").read_text()
    r = run(app, ["gate", str(incident), "-s", "reference"])
    assert r.exit_code == 0, r.output
    assert f"JUnit: {incident / 'junit-reference.xml'}" in r.output
    assert (incident / "junit.xml").read_bytes() == report_junit
    cases = junit(incident / "junit-reference.xml").findall(".//testcase")
    assert {c.get("classname") for c in cases} == {"incident-601.reference"}
    r = run(app, ["gate", str(incident), "--max-stuck", "100", "--max-violations", "100"])
    assert r.exit_code == 0 and f"JUnit: {incident / 'junit-overrides.xml'}" in r.output
    r = run(app, ["gate", str(incident), "-s", "reference", "--max-stuck", "3"])
    assert f"JUnit: {incident / 'junit-reference-overrides.xml'}" in r.output
    # Every scheduler that ran, the scenarios' thresholds: the report's own file.
    r = run(app, ["gate", str(incident), "-s", "reference,seed"])
    assert f"JUnit: {incident / 'junit.xml'}" in r.output
    assert (incident / "junit.xml").read_bytes() == report_junit
    # Asked for by name, junit.xml takes the narrower verdict, and the gate says what that means.
    r = run(app, ["gate", str(incident), "-s", "reference", "--junit", str(incident / "junit.xml")])
    assert "note:" in r.output and "still state the report's" in r.output
    assert "junit-reference.xml" in r.output
    # A report rendered again removes the narrower gates' files: they judged the old results.
    assert run(app, ["report", str(incident)]).exit_code == 0
    assert not list(incident.glob("junit-*.xml"))
    assert (incident / "junit.xml").read_bytes() == report_junit


def test_flags_override_the_scenario_thresholds(incident):
    loose = ["--max-stuck", "100", "--max-violations", "100"]
    assert run(app, ["gate", str(incident), *loose]).exit_code == 0
    # A p99 bound no recovery can meet fails the reference too.
    r = run(app, ["gate", str(incident), "-s", "reference", "--recovery-p99", "0.001"])
    assert r.exit_code == 1, r.output
    assert "recovery_p99" in r.output


def test_the_gate_reads_a_results_folder_directly(incident):
    assert run(app, ["gate", str(incident / "results"), "-s", "reference"]).exit_code == 0


def test_exit_3_when_a_declared_fault_never_took_effect(tmp_path):
    out = suite(tmp_path / "r", str(HERE / "no-effect.yaml"), "-s", "reference")
    r = run(app, ["gate", str(out)])
    assert r.exit_code == 3, r.output
    assert "faults_took_effect (pod-kill: declared but no fault of that type took effect in 2 seeds" in r.output
    root = junit(out / "junit.xml")
    errors = [c for c in root.findall(".//testcase") if c.find("error") is not None]
    assert [c.get("name") for c in errors] == ["faults_took_effect"]
    assert root.get("errors") == "1" and root.get("failures") == "0"


def test_a_fault_that_never_took_effect_and_the_goal_it_left_unreached_are_both_named(tmp_path):
    scen = tmp_path / "no-effect.yaml"
    scen.write_text((HERE / "no-effect.yaml").read_text()
                    + "gates: {sometimes: [{hit: running, by: pod-kill}]}\n")
    out = suite(tmp_path / "r", str(scen), "-s", "reference")
    r = run(app, ["gate", str(out)])
    assert r.exit_code == 3, r.output
    assert "gate: a fault never took effect; a goal was never reached (exit 3)" in r.output
    types = {c.get("name"): c.find("error").get("type") for c in junit(out / "junit.xml").iter("testcase")
             if c.find("error") is not None}
    assert types == {"faults_took_effect": "fault-never-took-effect",
                     "sometimes_hit_running_by_pod-kill": "goal-never-reached"}


def test_a_reached_goal_passes_and_states_how_often_it_was_reached(incident, tmp_path):
    xml = tmp_path / "ref.xml"
    assert run(app, ["gate", str(incident), "-s", "reference", "--junit", str(xml)]).exit_code == 0
    [case] = [c for c in junit(xml).iter("testcase")
              if c.get("name") == "sometimes_hit_apply_pending_unconfirmed_by_pod-kill"]
    assert case.find("system-out").text.startswith(
        "a pod-kill hit a task in apply_pending before its confirm in 2 of 2 seeds (")


def test_exit_3_when_a_goal_is_reached_by_fewer_seeds_than_it_asks(incident, tmp_path):
    """incident-601's kill reaches the waiting task in both seeds: a goal of 3 seeds is not
    met, and a goal the kill never reaches (a running task) is not met by any; each goal is
    judged only for the schedulers it names."""
    copy = tmp_path / "report"
    shutil.copytree(incident, copy)
    scen = copy / "results" / "scenarios" / "incident-601.yaml"
    goal = "sometimes: [{hit: apply_pending, confirmed: false, by: pod-kill}]"
    assert goal in scen.read_text()
    scen.write_text(scen.read_text().replace(goal, "sometimes: [{hit: apply_pending, by: pod-kill, "
                                             "min_seeds: 3}, {hit: running, schedulers: [seed]}]"))
    xml = tmp_path / "ref.xml"
    r = run(app, ["gate", str(copy), "-s", "reference", "--junit", str(xml)])
    assert r.exit_code == 3, r.output
    assert "gate: a goal was never reached (exit 3)" in r.output
    assert ("ERROR incident-601  reference: sometimes_hit_apply_pending_by_pod-kill (a pod-kill hit "
            "a task in apply_pending in 2 of 2 seeds (") in r.output
    root = junit(xml)
    assert (root.get("tests"), root.get("errors"), root.get("failures")) == (str(CHECKS_PER_PAIR), "1", "0")
    [error] = [c.find("error") for c in root.iter("testcase") if c.find("error") is not None]
    assert error.get("type") == "goal-never-reached"
    assert "at least 3 asked; the run proves nothing about a task hit there" in error.get("message")
    # The seed: both goals are its; a failure and an error together still exit 3, named both.
    r = run(app, ["gate", str(copy), "--junit", str(xml)])
    assert r.exit_code == 3
    errors = {(c.get("classname"), c.get("name")) for c in junit(xml).iter("testcase")
              if c.find("error") is not None}
    assert errors == {("incident-601.reference", "sometimes_hit_apply_pending_by_pod-kill"),
                      ("incident-601.seed", "sometimes_hit_apply_pending_by_pod-kill"),
                      ("incident-601.seed", "sometimes_hit_running")}
    assert "a fault hit a task in running in 0 of 2 seeds (0 hits), at least 1 asked" in r.output


def test_a_goal_tells_a_hit_before_the_confirm_from_one_after_it(incident, tmp_path):
    """incident-601's kill comes while the plan waits for its human, in every seed: a goal on
    a task already confirmed is reached by none, read from the faults tables' own column."""
    copy = tmp_path / "report"
    shutil.copytree(incident, copy)
    scen = copy / "results" / "scenarios" / "incident-601.yaml"
    text = scen.read_text().replace("confirmed: false", "confirmed: true")
    assert text != scen.read_text()
    scen.write_text(text)
    r = run(app, ["gate", str(copy), "-s", "reference"])
    assert r.exit_code == 3, r.output
    assert ("ERROR incident-601  reference: sometimes_hit_apply_pending_confirmed_by_pod-kill (a "
            "pod-kill hit a task in apply_pending after its confirm in 0 of 2 seeds (0 hits)") in r.output


def _judged_live(tmp_path: Path, scenario: Path, *sim_args: str) -> tuple[Path, Result]:
    """One simulated seed's history, closed as `unstuck serve` leaves a live run's folder
    (no `run.end` row, a clock file), then gated: the JUnit file and the gate's result."""
    hist = tmp_path / "h.jsonl"
    r = run(app, ["sim", str(scenario), "-s", "reference", "--seeds", "1", *sim_args,
                  "--history", str(hist), "--workers", "1"])
    assert r.exit_code in (0, 1), r.output
    rows = [json.loads(line) for line in hist.read_text().splitlines()]
    rows = [r for r in rows if r.get("kind") != "run.end" and "seq" in r]  # as the service leaves it
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "run" / "clock.json").write_text(json.dumps({
        "offset": 1e4, "run_start": 2e4, "now_at": 2e4 + rows[-1]["t"], "wall_at": 1.7e9,
        "boot_id": "b", "scheduler": "reference"}))
    r = run(app, ["close-run", str(tmp_path / "run"), "--scenario", str(scenario),
                  "--out", str(tmp_path / "live")])
    assert r.exit_code == 0, r.output
    xml = tmp_path / "live.xml"
    return xml, run(app, ["gate", str(tmp_path / "live"), "--junit", str(xml)])


def test_a_live_run_judges_an_hpa_scale_down_goal_as_a_simulation_does(tmp_path):
    """The same seed, judged as a simulation and as a live run: the reference's seed 3 of
    hpa-max-patch-during-apply-pending loses no waiting task's pod. The live service names
    an HPA scale-down's deletions (docs/metrics.md, "Effects"), so live as simulated the
    unreached goal is an error: the run proved nothing about a lost reservation."""
    scenario = Path("scenarios/hpa-max-patch-during-apply-pending.yaml")
    r = run(app, ["sim", str(scenario), "-s", "reference", "--seeds", "1", "--seed-start", "3",
                  "--out", str(tmp_path / "sim"), "--workers", "1"])
    assert r.exit_code == 0, r.output
    told = "apply_pending before its confirm in 0 of 1 seeds"
    sim_gate = run(app, ["gate", str(tmp_path / "sim")])
    assert sim_gate.exit_code == 3 and told in sim_gate.output
    _, live_gate = _judged_live(tmp_path, scenario, "--seed-start", "3")
    assert live_gate.exit_code == 3 and told in live_gate.output, live_gate.output


def test_a_goal_a_live_run_cannot_observe_is_skipped_there_not_failed(tmp_path):
    """A goal only a pool-scale-down could reach: live, the seed autoscaler's freeze-window
    deletions are the scheduler's own, which nothing tells apart, so an unreached goal is a
    skipped case there, not an error."""
    scenario = tmp_path / "freeze.yaml"
    scenario.write_text(
        "description: a freeze window that no task waiting in apply_pending sees\n"
        "duration_s: 300\ndrain_s: 60\nbounds: {apply_pending_s: 600}\n"
        "gates: {max_violations: 0, sometimes: [{hit: apply_pending, by: pool-scale-down}]}\n"
        "pools: [{id: pool-1, manager: bare, min_replicas: 1, max_replicas: 4}]\n"
        "agents: {has_changes: 0}\n"
        "workload: [{count: 1, at: [1]}]\n"
        "faults: [{type: pool-scale-down, at: 200, pool: pool-1, freeze_s: 60}]\n")
    xml, r = _judged_live(tmp_path, scenario)
    assert r.exit_code == 0, r.output
    root = junit(xml)
    assert (root.get("skipped"), root.get("errors"), root.get("failures")) == ("1", "0", "0")
    [case] = [c for c in root.iter("testcase") if c.find("skipped") is not None]
    assert case.get("name") == "sometimes_hit_apply_pending_by_pool-scale-down"
    assert case.find("skipped").get("message").startswith(
        "not judged on a live run: pool-scale-down hits nobody there")


def test_a_goal_on_what_a_task_ran_refuses_faults_tables_that_do_not_say_it(tmp_path):
    """A folder written before `run_at_fault` reads it as null: its running hits would miss a
    `run: apply` goal, and the gate would call a run that lost an apply one that proves
    nothing (exit 3). It is bad input (exit 2), named, with the fix."""
    import pyarrow.parquet as pq

    out = suite(tmp_path / "r", "scenarios/node-loss-mid-apply.yaml", "-s", "reference", "--seeds", "1")
    assert run(app, ["gate", str(out)]).exit_code == 0
    for path in (out / "results" / "faults").rglob("*.parquet"):
        pq.write_table(pq.read_table(path).drop_columns(["run_at_fault"]), path)
    r = run(app, ["gate", str(out)])
    assert r.exit_code == 2, r.output
    assert ("its faults tables of node-loss-mid-apply under reference do not say what a running "
            "task ran (run_at_fault), which the goal sometimes_hit_running_apply_by_node-loss "
            "asks; rerun") in r.output


@pytest.mark.parametrize("args, message", [
    (["gate", "{missing}"], "no such directory"),
    (["gate", "{empty}"], "holds no results"),
    (["gate", "{incident}", "--max-stuck", "-1"], "--max-stuck -1: must be >= 0"),
    (["gate", "{incident}", "--schedulers", "sed"], "--schedulers 'sed' is not a scheduler"),
    # Found by review: a trailing comma read "--schedulers '' is not a scheduler".
    (["gate", "{incident}", "--schedulers", "seed,"],
     "--schedulers: an empty scheduler name (a stray comma?); separate names with single commas"),
    (["gate", "{incident}", "--schedulers", "seed-head"], "--schedulers seed-head: none of them is in"),
    # Found by review: a --scenarios folder that does not exist was skipped silently.
    (["gate", "{incident}", "--scenarios", "{missing}"],
     "--scenarios {missing}: no such folder; give the folder holding the scenario files"),
    (["gate", "{incident}", "--scenarios", "{incident}/index.html"],
     "--scenarios {incident}/index.html: is a file, not a folder"),
])
def test_exit_2_on_bad_input_with_a_message_naming_it(incident, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    paths = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "incident": incident}
    r = run(app, [a.format(**paths) for a in args])
    assert r.exit_code == 2, r.output
    assert message.format(**paths) in r.output and "Traceback" not in r.output


def test_exit_2_when_the_scenario_copy_is_invalid_naming_file_and_field(incident, tmp_path):
    broken = tmp_path / "report"
    shutil.copytree(incident, broken)
    scen = broken / "results" / "scenarios" / "incident-601.yaml"
    scen.write_text(scen.read_text().replace("max_violations: 0", "max_stuck: lots"))
    r = run(app, ["gate", str(broken)])
    assert r.exit_code == 2, r.output
    assert f"{scen}: gates.max_stuck = 'lots' (str): expected a whole number" in r.output


def test_exit_2_when_no_scenario_file_can_be_found(incident, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # so scenarios/incident-601.yaml is not found from here either
    moved = tmp_path / "report"
    shutil.copytree(incident, moved)
    shutil.rmtree(moved / "results" / "scenarios")
    (moved / "results" / "manifest.json").unlink()
    r = run(app, ["gate", str(moved), "--scenarios", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert "scenario 'incident-601': no scenario file found" in r.output
    assert "pass --scenarios DIR" in r.output


@pytest.mark.parametrize("flag", ["--recovery-p99", "--confirm-to-apply-p99"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_exit_2_on_a_threshold_that_is_not_a_number(incident, flag, value):
    """nan would fail every pair (exit 1), inf pass any (even a task that never recovered)."""
    r = run(app, ["gate", str(incident), flag, value])
    assert r.exit_code == 2, r.output
    assert f"{flag} {value}: not a bound; give a number of seconds >= 0" in r.output


def test_exit_2_on_a_file_saying_a_folder_is_expected(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    for cmd in ("gate", "report"):
        r = run(app, [cmd, str(f)])
        assert r.exit_code == 2, r.output
        assert f"{f}: is a file, not a folder; give the folder written by `unstuck suite --out`" in r.output
        assert "no such directory" not in r.output


@pytest.mark.parametrize("name, garbage, problem", [
    ("manifest.json", "{not json", "not readable JSON"),
    ("manifest.json", "[1, 2]", "not an unstuck manifest"),
    ("runs.parquet", "not parquet", "not a readable Parquet table"),
])
def test_exit_2_on_a_corrupt_file_naming_it(incident, tmp_path, name, garbage, problem):
    broken = tmp_path / "report"
    shutil.copytree(incident, broken)
    bad = broken / "results" / name
    bad.write_text(garbage)
    for cmd in ("gate", "report"):
        r = run(app, [cmd, str(broken)])
        assert r.exit_code == 2, (cmd, r.output)
        assert f"{bad}: {problem}" in r.output and "Traceback" not in r.output, (cmd, r.output)


def test_the_missing_scenario_message_lists_each_place_once(incident, tmp_path, monkeypatch):
    """Without --scenarios, scenarios/ is searched and is also where the manifest says the
    file was: one place, listed once."""
    moved = tmp_path / "report"
    shutil.copytree(incident, moved)
    shutil.rmtree(moved / "results" / "scenarios")
    monkeypatch.chdir(tmp_path)
    r = run(app, ["gate", str(moved)])
    assert r.exit_code == 2, r.output
    looked = r.output.split("(looked in ")[1].split(")")[0].replace("\n", "").split(", ")
    assert looked == [str(moved / "results" / "scenarios" / "incident-601.yaml"),
                      "scenarios/incident-601.yaml"]


def test_a_new_run_into_a_results_folder_removes_the_junit_a_gate_wrote_there(tmp_path):
    out = tmp_path / "res"
    args = ["sim", "scenarios/double-confirm.yaml", "-s", "reference", "--seeds", "1",
            "--workers", "1", "--out", str(out)]
    assert run(app, args).exit_code == 0
    assert run(app, ["gate", str(out), "-s", "reference"]).exit_code == 0
    assert run(app, ["gate", str(out), "-s", "reference", "--max-stuck", "0"]).exit_code == 0
    assert (out / "junit-overrides.xml").is_file()
    assert (out / "junit.xml").is_file()  # beside the results it judged
    (out / "notes.txt").write_text("mine")
    assert run(app, args).exit_code == 0
    assert not list(out.glob("junit*.xml"))  # it judged results that are gone
    assert (out / "notes.txt").read_text() == "mine"


def test_junit_stays_well_formed_when_a_workspace_name_holds_characters_xml_forbids(tmp_path):
    """Found by review: workspace names reach the first violation's message, and an ESC or
    NUL in one made the JUnit unparseable ("not well-formed (invalid token)"), so CI dropped
    the whole report. A scenario's `names:` are now refused such characters, but a live
    run's history holds the names its system gave: here, a live-style folder (histories
    only) whose wedged workspace has one."""
    import pandas as pd

    out = tmp_path / "res"
    r = run(app, ["sim", "scenarios/double-confirm.yaml", "-s", "seed", "--seeds", "1",
                  "--workers", "1", "--out", str(out)])
    assert r.exit_code == 1, r.output  # the seed scheduler breaks invariants
    odd = "ws<a&b\"c'é\x1b[31m\x00\x08\x0b"
    history = Path("histories/double-confirm/seed/seed-0.parquet")
    rows = pd.read_parquet(out / history)
    assert "ws-3" in set(rows["workspace"])
    rows["workspace"] = rows["workspace"].replace({"ws-3": odd})
    (tmp_path / "live" / history).parent.mkdir(parents=True)
    rows.to_parquet(tmp_path / "live" / history)
    r = run(app, ["gate", str(tmp_path / "live"), "--scenarios", "scenarios"])
    assert r.exit_code == 1, r.output
    case = next(c for c in junit(tmp_path / "live" / "junit.xml").findall(".//testcase")
                if c.get("name") == "no_wedged_workspace")
    # Legal characters arrive as they were; the forbidden ones as visible escapes.
    want = "workspace ws<a&b\"c'é\\x1b[31m\\x00\\x08\\x0b: locked"
    assert want in case.find("failure").get("message")
    assert want in case.find("failure").text


def test_junit_suites_carry_the_attributes_surefire_requires_and_agree_with_their_cases(incident, tmp_path):
    """Found by review: the suites had no `skipped` (required by Surefire's
    surefire-test-report-3.0.xsd, which Jenkins-style tools validate against) and no `time`
    (dorny/test-reporter reads a missing one as NaN for every suite's duration)."""
    xml = tmp_path / "all.xml"
    assert run(app, ["gate", str(incident), "--junit", str(xml)]).exit_code == 1
    root = junit(xml)
    for el in (root, *root.findall("testsuite")):
        cases = el.findall(".//testcase")
        counts = {"tests": len(cases), "failures": sum(c.find("failure") is not None for c in cases),
                  "errors": sum(c.find("error") is not None for c in cases), "skipped": 0}
        assert {k: el.get(k) for k in counts} == {k: str(v) for k, v in counts.items()}, el.get("name")
        assert float(el.get("time")) == 0 and el.get("name")


def test_a_runs_table_whose_counts_are_missing_is_bad_input_not_a_pass(incident, tmp_path):
    """Found by review: NaN violation counts in a damaged runs.parquet added up to 0, and the
    gate passed what it could not read."""
    import pandas as pd

    broken = tmp_path / "broken"
    shutil.copytree(incident, broken)
    path = broken / "results" / "runs.parquet"
    runs = pd.read_parquet(path)
    runs["violations_apply_pending_bound"] = float("nan")
    runs.to_parquet(path)
    r = run(app, ["gate", str(broken)])
    assert r.exit_code == 2, r.output
    assert "runs.parquet: column violations_apply_pending_bound holds something other than counts >= 0" in r.output
    assert "Traceback" not in r.output


def test_a_history_whose_time_goes_back_is_bad_input_naming_the_row(tmp_path):
    """Found by review: a row whose t ran backwards against its seq was judged, and a latency
    measured across it could come out negative. Neither world writes one (docs/history.md), so
    a live folder holding one is bad input (exit 2) naming the file, the row and the fix."""
    from scheduler.history import canonical_line, read_jsonl

    rows = read_jsonl(Path("tests/fixtures/histories/incident-601-reference.jsonl"))
    rows[5]["t"] = rows[4]["t"] - 30.0
    history = tmp_path / "live" / "histories" / "incident-601" / "seed" / "seed-0.jsonl"
    history.parent.mkdir(parents=True)
    history.write_text("".join(canonical_line(r) + "\n" for r in rows))
    r = run(app, ["gate", str(tmp_path / "live"), "--scenarios", "scenarios"])
    assert r.exit_code == 2, r.output
    assert r.output == (
        f"error: {history}: cannot be judged: history row seq 5 (dispatch): t = 70.0 is before "
        f"t = 100.0 of seq 4 (task.transition); a run's time never goes back: rows are in time "
        f"order, rows of one t ordered by seq (docs/history.md). Fix the row's t, or renumber "
        f"seq in time order\n")


def test_a_users_cancel_before_the_apply_does_not_fail_the_confirm_to_apply_gate(tmp_path):
    """Found by review: a confirmed task its user cancelled before any apply counted as an
    infinitely late confirm-to-apply, so the p99 gate failed on a user's cancel. The cancel
    is censored (docs/metrics.md); a confirm the scheduler never applied still fails it."""
    from scheduler.history import canonical_line
    from tests.unit.checker.story import Story

    def folder(name: str, cancel: bool) -> Path:
        s = Story()
        for task, ws in ((1, "ws-1"), (2, "ws-2")):
            s.created(0, task, ws)
            s.to(1, task, "pending", "running", ws, "dispatched")
            s.to(10, task, "running", "apply_pending", ws, "plan has changes")
            s.confirm(20, task, ws)
        s.to(30, 2, "apply_pending", "running", "ws-2", "apply dispatched", agent="a1")
        s.add(30, "exec.invoke", task=2, workspace="ws-2", agent="a1", data={"action": "apply"})
        s.add(35, "exec.ok", task=2, workspace="ws-2", agent="a1", data={"action": "apply"})
        s.to(35, 2, "running", "applied", "ws-2", "apply done")
        if cancel:
            s.to(50, 1, "apply_pending", "cancelled", "ws-1", "cancelled by user")
            s.add(50, "task.cancel", task=1, workspace="ws-1", data={"user": "u"})
        s.end(100, bound_s=300, drain_s=600)
        history = tmp_path / name / "histories" / "live" / "reference" / "seed-0.jsonl"
        history.parent.mkdir(parents=True)
        history.write_text("".join(canonical_line(r) + "\n" for r in s.rows()))
        return tmp_path / name

    scenarios = tmp_path / "scenarios"  # a live run's scenario: no faults declared
    scenarios.mkdir()
    (scenarios / "live.yaml").write_text(
        "duration_s: 100\npools:\n  - {id: pool-1, manager: bare, min_replicas: 1, "
        "max_replicas: 1}\nworkload:\n  - {names: [ws-1], at: [5]}\n")
    gate = ["--scenarios", str(scenarios), "--confirm-to-apply-p99", "60"]
    r = run(app, ["gate", str(folder("cancelled", True)), *gate])
    assert r.exit_code == 0, r.output
    assert "confirm_to_apply_p99" not in r.output
    r = run(app, ["gate", str(folder("owed", False)), *gate])
    assert r.exit_code == 1, r.output
    assert "FAIL  live  reference: confirm_to_apply_p99" in r.output


def test_a_named_scheduler_without_seeds_is_bad_input_not_a_pass(incident, tmp_path):
    """Found by review: `--schedulers reference,seed-head` on results that hold no seed of
    seed-head judged reference alone and passed (exit 0, and wrote the report's junit.xml),
    so a CI job gating a scheduler that never ran saw green."""
    r = run(app, ["gate", str(incident), "--schedulers", "reference,seed-head",
                  "--junit", str(tmp_path / "j.xml")])
    assert r.exit_code == 2, r.output
    assert ("--schedulers: seed-head has no seeds in " in r.output
            and "incident-601 holds seed, reference" in r.output)
    assert "Traceback" not in r.output and not (tmp_path / "j.xml").exists()


def test_a_named_scheduler_missing_from_one_scenario_is_bad_input(incident, tmp_path):
    """The same per scenario: a folder holding `other` under reference only, gated for seed
    and reference, judged other/reference and said nothing of other/seed."""
    two = tmp_path / "two"
    shutil.copytree(incident, two)
    res = two / "results"
    shutil.copytree(res / "histories" / "incident-601" / "reference", res / "histories" / "other" / "reference")
    shutil.copyfile(res / "scenarios" / "incident-601.yaml", res / "scenarios" / "other.yaml")
    r = run(app, ["gate", str(two), "--schedulers", "seed,reference"])
    assert r.exit_code == 2, r.output
    assert "--schedulers: seed has no seeds in " in r.output and "other holds reference" in r.output
    r = run(app, ["gate", str(two), "--schedulers", "reference"])  # what ran: judged, passes
    assert r.exit_code == 0, r.output
    assert "PASS  other  reference: pass" in r.output


def test_a_failed_p99_states_the_number_the_reports_table_gives_not_the_bound(incident, tmp_path):
    """Found by review: the p99 was printed to 0.1 s, so a p99 of 33.447 s over a bound of
    33.4 s failed with `p99 33.4 s (bound 33.4 s)`, and the report's table said 33.447."""
    import math

    import unstuck
    from unstuck.report import tables

    c2a = tables.confirm_to_apply(unstuck.load(incident).metrics)
    p99 = float(c2a[(c2a["scheduler"] == "reference") & (c2a["scenario"] == "incident-601")]["p99"].iloc[0])
    bound = math.floor(p99 * 10) / 10
    assert math.isfinite(p99) and p99 > bound and f"{p99:g}" != f"{bound:g}"
    xml = tmp_path / "j.xml"
    r = run(app, ["gate", str(incident), "-s", "reference", "--confirm-to-apply-p99", str(bound),
                  "--junit", str(xml)])
    assert r.exit_code == 1, r.output
    case = next(c for c in junit(xml).iter("testcase") if c.get("name") == "confirm_to_apply_p99")
    assert case.find("failure").get("message").startswith(f"p99 {p99:g} s (bound {bound:g} s)")


def test_a_perturbed_runs_commands_carry_perturb_ties_and_replay_the_digest_judged(tmp_path):
    """Found in session 17: the gate's and the report's commands left out `--perturb-ties`,
    so the seed a failure cited replayed another history than the one judged."""
    import shlex

    import pandas as pd

    from scheduler import history
    from unstuck import results

    out = tmp_path / "perturbed"
    r = run(app, ["sim", "scenarios/incident-601.yaml", "-s", "seed", "--seeds", "1",
                  "--perturb-ties", "--out", str(out), "--workers", "1"])
    assert r.exit_code == 1, r.output
    assert run(app, ["gate", str(out)]).exit_code == 1
    case = next(c for c in junit(out / "junit.xml").iter("testcase")
                if c.get("name") == "apply_pending_bound")
    command = case.find("failure").get("message").split("; replay from the report folder: ")[1]
    args = shlex.split(command)
    assert "--perturb-ties" in args
    assert "--perturb-ties" in shlex.split(results.load(out).shrink_command("incident-601", "seed", 0))
    judged = pd.read_parquet(out / "runs.parquet")["digest"].iloc[0]
    digests = []
    for ties in (True, False):  # the run without it differs, or this test would prove nothing
        argv = [a for a in args if ties or a != "--perturb-ties"]
        argv[argv.index("--history") + 1] = str(tmp_path / f"ties-{ties}.jsonl")
        assert run(app, [*argv[1:], "--workers", "1"]).exit_code == 1
        digests.append(history.digest(history.read_jsonl(tmp_path / f"ties-{ties}.jsonl")))
    assert digests[0] == judged != digests[1]


def test_a_runs_table_without_a_count_column_is_bad_input_not_a_pass(incident, tmp_path):
    """Found by review: a runs.parquet without a `violations_<invariant>` column (damaged, or
    written before that invariant existed) was gated as if it held 0 of them: a scheduler
    that broke only that invariant passed (seed-head on double-confirm, without its
    violations_at_most_one_apply_per_confirmation column)."""
    import pandas as pd

    broken = tmp_path / "broken"
    shutil.copytree(incident, broken)
    path = broken / "results" / "runs.parquet"
    pd.read_parquet(path).drop(columns=["violations_apply_pending_bound", "stuck_tasks"]).to_parquet(path)
    r = run(app, ["gate", str(broken)])
    assert r.exit_code == 2, r.output
    assert ("runs.parquet: has no violations_apply_pending_bound, stuck_tasks column; rerun the "
            "`unstuck suite` or `unstuck sim --out` command that wrote it") in r.output


def test_suite_and_gate_take_schedulers_repeated_as_sim_does(tmp_path):
    """Found by review (session 32): `-s seed -s reference` silently kept the last one."""
    out = suite(tmp_path / "r", "scenarios/double-confirm.yaml", "-s", "seed", "-s", "reference",
                "--seeds", "1")
    manifest = json.loads((out / "results" / "manifest.json").read_text())
    assert manifest["schedulers"] == ["seed", "reference"]
    r = run(app, ["gate", str(out), "-s", "seed", "-s", "reference"])
    assert r.exit_code == 1, r.output
    assert "FAIL  double-confirm  seed: " in r.output and "| reference: pass" in r.output
