"""`unstuck suite` and `unstuck report`: the report folder, its self-contained HTML, its JUnit,
golden tables, re-rendering from saved results (and from histories alone, like a live run),
the reproduce commands, the timeline data and `unstuck.load`."""

import html
import json
import re
import shlex
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import unstuck
from scheduler import history
from unstuck.checker import INVARIANTS
from unstuck.cli import app
from unstuck.report import tables, timeline
from unstuck.results import ResultsInvalid

run = CliRunner().invoke
GOLDEN = Path(__file__).parent / "golden"
FIGURES = {"verdict-matrix", "recovery-cdf", "confirm-to-apply-cdf", "stuck-histogram"}


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """incident-601 and double-confirm under all four schedulers, 3 seeds each."""
    out = tmp_path_factory.mktemp("report") / "latest"
    r = run(app, ["suite", "scenarios/incident-601.yaml", "scenarios/double-confirm.yaml",
                  "--seeds", "3", "--out", str(out), "--workers", "2"])
    assert r.exit_code == 0, r.output
    assert f"report: {out / 'index.html'}" in r.output
    assert "gate verdict: deviated" in r.output
    return out


def test_the_folder_holds_every_part(report):
    for part in ("index.html", "summary.md", "junit.xml", "results/runs.parquet",
                 "results/manifest.json", "tables/verdict-matrix.csv", "tables/failures.csv"):
        assert (report / part).is_file(), part
    pngs = {p.stem for p in (report / "figures").glob("*.png")}
    assert FIGURES <= pngs
    assert any(p.startswith("timeline-incident-601-seed-seed-") for p in pngs)
    assert not any("reference" in p for p in pngs if p.startswith("timeline-"))  # it never fails


def test_index_html_is_self_contained_with_every_figure_embedded(report):
    page = (report / "index.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:|//|figures/)""", page)
    assert "<script" not in page
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,', page)
    assert len(images) == len(list((report / "figures").glob("*.png")))
    assert ("unstuck sim results/scenarios/incident-601.yaml -s seed --seeds 1 "
            "--seed-start 0 --history incident-601-seed-0.jsonl") in page


def test_summary_md_links_figures_and_lists_reproduce_commands(report):
    md = (report / "summary.md").read_text()
    assert "**gate: deviated (exit 1)**" in md
    assert "![Verdict matrix](figures/verdict-matrix.png)" in md
    assert "| scheduler | double-confirm | incident-601 |" in md
    assert "--seeds 1 --seed-start 0 --history incident-601-seed-0.jsonl" in md


def test_junit_has_one_case_per_scenario_scheduler_check_and_the_right_failures(report):
    root = ET.parse(report / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    # Per pair: each invariant, stuck_tasks, faults_took_effect and the scenario's one goal.
    assert len(cases) == 2 * 4 * (len(INVARIANTS) + 3)
    assert {s.get("name") for s in root.findall("testsuite")} == {"incident-601", "double-confirm"}
    matrix = pd.read_csv(report / "tables" / "verdict-matrix.csv")
    failures = [c for c in cases if c.find("failure") is not None]
    assert int(root.get("failures")) == len(failures)
    # Every pair the matrix marks failed has failing cases, and only those pairs.
    failed_pairs = {tuple(c.get("classname").split(".")) for c in failures}
    assert failed_pairs == {(r.scenario, r.scheduler) for r in matrix.itertuples() if r.status == "fail"}
    invariant_failures = sum(len(str(r.invariants_violated).split(", ")) for r in matrix.itertuples()
                             if isinstance(r.invariants_violated, str))
    stuck_failures = int((matrix["stuck_tasks"] > 0).sum())
    assert len(failures) == invariant_failures + stuck_failures


@pytest.mark.parametrize("table", ["verdict-matrix", "recovery", "fault-hits", "goals"])
def test_golden_tables(report, table):
    """Seeded runs are deterministic, so these tables are too; regenerate the golden files
    with `cp <report>/tables/{verdict-matrix,recovery,fault-hits,goals}.csv tests/unit/report/golden/`
    when the world or a scheduler changes on purpose."""
    got = (report / "tables" / f"{table}.csv").read_text()
    assert got == (GOLDEN / f"{table}.csv").read_text()


def test_a_goal_too_few_seeds_reached_is_an_error_in_the_goals_table_and_the_verdict(report, tmp_path):
    """The report renders the gate's verdict: a goal of more seeds than ran is not met, and
    its row says by how much, with the same count as `unstuck sim` gives."""
    copy = tmp_path / "latest"
    shutil.copytree(report, copy)
    scen = copy / "results" / "scenarios" / "double-confirm.yaml"
    goal = "sometimes: [{hit: apply_pending, by: double-confirm}]"
    assert goal in scen.read_text()
    scen.write_text(scen.read_text().replace(goal, goal[:-2] + ", min_seeds: 4}]"))
    r = run(app, ["report", str(copy)])
    assert r.exit_code == 0, r.output
    assert "**gate: a goal was never reached (exit 3)**" in (copy / "summary.md").read_text()
    table = pd.read_csv(copy / "tables" / "goals.csv")
    mine = table[table["scenario"] == "double-confirm"]
    assert list(mine["status"]) == ["error"] * 4 and set(mine["min_seeds"]) == {4}
    assert set(table[table["scenario"] == "incident-601"]["status"]) == {"pass"}
    r = run(app, ["sim", str(scen), "-s", "all", "--seeds", "3", "--json", "--workers", "2"])
    for x in map(json.loads, r.stdout.splitlines()):
        row = mine[mine["scheduler"] == x["scheduler"]].iloc[0]
        assert x["goals_not_reached"] == {"sometimes_hit_apply_pending_by_double-confirm": {
            "seeds_reached": row["seeds_reached"], "min_seeds": 4}}
    # Two goals of one hit and by, splitting the schedulers: each row is its scheduler's goal.
    scen.write_text(scen.read_text().replace(
        goal[:-2] + ", min_seeds: 4}]", goal[:-2] + ", min_seeds: 4, schedulers: [reference]}, "
        "{hit: apply_pending, by: double-confirm, schedulers: [seed, seed-proposal, seed-head]}]"))
    assert run(app, ["report", str(copy)]).exit_code == 0
    table = pd.read_csv(copy / "tables" / "goals.csv")
    mine = table[table["scenario"] == "double-confirm"].set_index("scheduler")
    assert mine.loc["reference", ["status", "min_seeds"]].tolist() == ["error", 4]
    assert (mine.drop("reference")["min_seeds"] == 1).all() and (mine.drop("reference")["status"] == "pass").all()


def test_fault_hits_are_what_unstuck_sim_counts(report):
    r = run(app, ["sim", "scenarios/incident-601.yaml", "scenarios/double-confirm.yaml", "-s", "all",
                  "--seeds", "3", "--json", "--workers", "2"])
    sim = {(x["scenario"], x["scheduler"]): x for x in map(json.loads, r.stdout.splitlines())}
    table = pd.read_csv(report / "tables" / "fault-hits.csv")
    assert len(table) == len(sim) == 8
    for row in table.itertuples():
        x = sim[(row.scenario, row.scheduler)]
        by_status = {st: getattr(row, st) for st in tables.HIT_STATUSES if getattr(row, st)}
        assert (row.hits, by_status, row.seeds_hit_in_apply_pending) == (
            sum(x["fault_hits"].values()), x["fault_hits"], x["seeds_hit_in_apply_pending"])


def seed_0_of_incident_601(table: pd.DataFrame) -> pd.DataFrame:
    return table[(table["scenario"] == "incident-601") & (table["scheduler"] == "seed")
                 & (table["seed"] == 0)]


def test_reproduce_command_replays_the_failing_seed_alone(report, tmp_path, monkeypatch):
    monkeypatch.chdir(report)  # the commands run from the report folder (the report says so)
    row = seed_0_of_incident_601(pd.read_csv(report / "tables" / "failures.csv")).iloc[0]
    args = shlex.split(row["command"])
    assert args[:2] == ["unstuck", "sim"]
    hist = tmp_path / "replay.jsonl"
    args[args.index("--history") + 1] = str(hist)
    r = run(app, args[1:] + ["--workers", "1"])
    assert r.exit_code == 1, r.output
    digest = seed_0_of_incident_601(pd.read_parquet(report / "results" / "runs.parquet"))["digest"].iloc[0]
    assert history.digest(history.read_jsonl(hist)) == digest


def test_shrink_command_shrinks_the_failing_seed(report, tmp_path, monkeypatch):
    monkeypatch.chdir(report)
    row = seed_0_of_incident_601(pd.read_csv(report / "tables" / "failures.csv")).iloc[0]
    args = shlex.split(row["shrink"])
    assert args[:2] == ["unstuck", "shrink"]
    assert args[args.index("--out") + 1] == "incident-601-shrunk-seed-seed0.yaml"
    args[args.index("--out") + 1] = str(tmp_path / "shrunk.yaml")
    r = run(app, args[1:] + ["--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "needs 1 of its 1 fault attempts" in r.output
    assert (tmp_path / "shrunk.yaml").exists()


def test_report_re_renders_from_saved_results(report, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(report / "results", copy / "results")
    r = run(app, ["report", str(copy)])
    assert r.exit_code == 0, r.output
    for t in ("verdict-matrix", "recovery", "confirm-to-apply", "failures"):
        assert (copy / "tables" / f"{t}.csv").read_text() == (report / "tables" / f"{t}.csv").read_text()
    assert (copy / "index.html").is_file() and (copy / "junit.xml").is_file()


def test_a_re_render_drops_an_earlier_reports_figures_and_tables(report, tmp_path):
    """A timeline of a pair that no longer fails must not sit beside the new report's."""
    copy = tmp_path / "copy"
    shutil.copytree(report, copy)  # an earlier report, with one more failing pair then
    (copy / "figures" / "timeline-gone-seed-seed-9.png").write_bytes(b"old")
    (copy / "tables" / "timeline-gone-seed-seed-9.csv").write_text("old")
    (copy / "notes.txt").write_text("mine")
    r = run(app, ["report", str(copy)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (copy / "figures").iterdir()) == sorted(
        p.name for p in (report / "figures").iterdir())
    assert not (copy / "tables" / "timeline-gone-seed-seed-9.csv").exists()
    assert (copy / "notes.txt").read_text() == "mine"  # not ours: left alone


@pytest.mark.parametrize("where", ["into its folder", "--out"])
def test_results_that_cannot_be_read_leave_the_earlier_report_as_it_was(report, tmp_path, where):
    """Found by review (session 32): the old report was removed before the histories were
    read, so a truncated one cost the user the report they had, for a refusal."""
    copy = tmp_path / "copy"
    shutil.copytree(report, copy)
    broken = next((copy / "results" / "histories").rglob("*.parquet"))
    broken.write_bytes(broken.read_bytes()[:100])
    out = copy if where == "into its folder" else tmp_path / "rep"
    if out != copy:
        shutil.copytree(report, out, ignore=shutil.ignore_patterns("results"))
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    r = run(app, ["report", str(copy)] + (["--out", str(out)] if out != copy else []))
    assert r.exit_code == 2, r.output
    assert "error:" in r.output and broken.name in r.output and "Traceback" not in r.output
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    fresh = tmp_path / "fresh"
    assert run(app, ["report", str(copy), "--out", str(fresh)]).exit_code == 2
    assert not fresh.exists()  # not even its marker


def test_report_from_histories_alone_like_a_live_run(report, tmp_path):
    """A live run's folder holds histories only: every other table is derived by the checker."""
    live = tmp_path / "live"
    shutil.copytree(report / "results" / "histories", live / "histories")
    r = run(app, ["report", str(live), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    got = pd.read_csv(tmp_path / "out" / "tables" / "verdict-matrix.csv")
    want = pd.read_csv(report / "tables" / "verdict-matrix.csv")
    pd.testing.assert_frame_equal(got, want)


def test_report_bad_input_exits_2(tmp_path):
    r = run(app, ["report", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "no such directory" in r.output


def test_report_refuses_a_scenarios_folder_that_is_not_one_and_writes_nothing(report, tmp_path):
    # Found by review: a mistyped --scenarios was skipped, the report judging with defaults.
    out = tmp_path / "out"
    r = run(app, ["report", str(report), "--out", str(out), "--scenarios", str(tmp_path / "typo")])
    assert r.exit_code == 2, r.output
    assert r.output.strip().splitlines() == [
        f"error: --scenarios {tmp_path / 'typo'}: no such folder; give the folder holding the "
        "scenario files, e.g. scenarios/"]
    assert not out.exists()


def test_suite_bad_input_lists_every_problem_and_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("duration_s: 5m\nworkload: [{count: 1, at: [5]}]\n")
    r = run(app, ["suite", str(bad), str(tmp_path / "none"), "-s", "seed,sed", "--seeds", "0"])
    assert r.exit_code == 2
    for part in (f"{bad}: duration_s = '5m' (str): expected seconds as a number; write 300",
                 f"{tmp_path / 'none'}: no such file or folder", "--schedulers 'sed' is not a scheduler",
                 "--seeds 0: run at least 1 seed"):
        assert part in r.output
    assert "Traceback" not in r.output


def test_load_is_the_notebook_api(report):
    res = unstuck.load(report)  # a report folder: its results/ is found
    assert {"tasks", "faults", "fault_events", "violations", "metrics", "runs"} <= set(res)
    assert set(res.metrics["metric"]) == {"recovery", "confirm_to_apply", "stuck"}
    assert len(res.runs) == 2 * 4 * 3
    assert (res.events["kind"] == "run.end").sum() == 24  # loaded on first use
    rows = res.history("incident-601", "seed", 0)
    assert rows[-1]["kind"] == "run.end" and isinstance(rows[-1]["data"], dict)


def test_timeline_of_the_stuck_incident_task(report):
    res = unstuck.load(report)
    v = res.violations
    mine = v[(v["scenario"] == "incident-601") & (v["scheduler"] == "seed") & (v["seed"] == 0)]
    viol = [{**r, "witness": eval(r["witness"])} for r in mine.to_dict("records")]  # noqa: S307 - a JSON list
    tl = timeline.extract(res.history("incident-601", "seed", 0), viol)
    assert tl.tasks == (1,)
    status = [s for s in tl.segments if s.kind == "status"]
    assert status[-1].label == "apply_pending" and status[-1].open  # stuck to the end
    kinds = {m.kind for m in tl.marks}
    assert kinds == {"fault", "witness", "violation"}
    witness_kinds = {m.label for m in tl.marks if m.kind == "witness"}
    assert {"task.created", "task.confirmed", "fault"} <= witness_kinds
    assert any(s.kind == "pod" and s.label.endswith("terminating") for s in tl.segments)
    assert set(tl.table()["what"]) == {"segment", "mark"}


def test_a_report_into_a_folder_unstuck_did_not_write_keeps_its_figures(report, tmp_path):
    """A live run's folder is the user's: the first report there removes none of its
    figures or tables (their names are common); later ones replace their own."""
    live = tmp_path / "live"
    shutil.copytree(report / "results" / "histories", live / "histories")
    (live / "figures").mkdir()
    (live / "figures" / "mine.png").write_bytes(b"mine")
    r = run(app, ["report", str(live)])
    assert r.exit_code == 0, r.output
    assert (live / "figures" / "mine.png").read_bytes() == b"mine"
    assert (live / "index.html").is_file()


def test_stuck_s_of_a_task_that_never_waited_confirmed_is_nan_not_zero(report):
    # Found by review: a never-confirmed task read stuck_s 0.0, so a mean over res.tasks
    # mixed tasks that never waited with ones that waited no time (docs/metrics.md: NaN).
    res = unstuck.load(report)
    tasks, m = res.tasks, res.metrics
    never = tasks[tasks["confirmed_t"].isna()]
    assert len(never) and never["stuck_s"].isna().all()
    stuck = m[m["metric"] == "stuck"].set_index(["scenario", "scheduler", "seed", "task"])["value_s"]
    waited = tasks.set_index(["scenario", "scheduler", "seed", "task"])["stuck_s"].dropna()
    pd.testing.assert_series_equal(waited.sort_index(), stuck.sort_index(), check_names=False)


def test_timeline_tables_list_each_mark_once(report):
    # Found by review: a fault was listed once per violation that cites it as a witness
    # (4 rows for the one pod-kill of incident-601 seed 0 under seed).
    found = sorted((report / "tables").glob("timeline-*.csv"))
    assert found
    for path in found:
        t = pd.read_csv(path)
        marks = t[t["what"] == "mark"]
        assert not marks.duplicated().any(), path.name
    t = pd.read_csv(next(p for p in found if p.name.startswith("timeline-incident-601-seed-seed-")))
    faults = t[(t["what"] == "mark") & (t["kind"] == "fault")]
    assert len(faults) == faults["seq"].nunique() == 1  # the one pod-kill, on task 1


def test_commands_replay_the_saved_scenario_copy_after_the_original_changed_and_moved(tmp_path,
                                                                                    monkeypatch):
    # Found by review: the commands cited the scenario file as passed to the suite, so after
    # an edit to it they replayed another scenario (docs/sim.md promises the folder alone).
    mine = tmp_path / "mine.yaml"
    shutil.copyfile("scenarios/incident-601.yaml", mine)
    r = run(app, ["suite", str(mine), "-s", "seed", "--seeds", "2", "--out", str(tmp_path / "a"),
                  "--workers", "1"])
    assert r.exit_code == 0, r.output
    mine.unlink()  # edited or removed since: the report must not depend on it
    moved = tmp_path / "elsewhere" / "report"
    shutil.move(tmp_path / "a", moved)
    fails = pd.read_csv(moved / "tables" / "failures.csv")
    assert set(fails["command"].str.split().str[2]) == {"results/scenarios/mine.yaml"}
    row = fails.iloc[0]
    monkeypatch.chdir(moved)
    args = shlex.split(row["command"])
    args[args.index("--history") + 1] = str(tmp_path / "replay.jsonl")
    r = run(app, args[1:] + ["--workers", "1"])
    assert r.exit_code == 1, r.output
    runs = pd.read_parquet(moved / "results" / "runs.parquet")
    want = runs[runs["seed"] == row["seed"]]["digest"].iloc[0]
    assert history.digest(history.read_jsonl(tmp_path / "replay.jsonl")) == want
    # Re-rendered where it now is, from elsewhere: the same commands, still from the folder.
    monkeypatch.chdir(tmp_path)
    assert run(app, ["report", str(moved)]).exit_code == 0
    assert pd.read_csv(moved / "tables" / "failures.csv")["command"].equals(fails["command"])
    # The notebook API cites the copy as a path from where the results were loaded.
    res = unstuck.load("elsewhere/report")
    assert tables.failures(res)["command"].iloc[0].startswith(
        "unstuck sim elsewhere/report/results/scenarios/mine.yaml ")


def test_suite_counts_in_the_singular_when_there_is_one(tmp_path):
    r = run(app, ["suite", "scenarios/incident-601.yaml", "-s", "reference", "--seeds", "1",
                  "--out", str(tmp_path / "one"), "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "unstuck suite: 1 scenario x 1 scheduler, 1 seed on 1 worker" in r.output
    assert "simulated and judged 1 seed in" in r.output


def test_failures_list_schedulers_in_the_order_of_the_other_tables(report):
    matrix = pd.read_csv(report / "tables" / "verdict-matrix.csv")
    fails = pd.read_csv(report / "tables" / "failures.csv")
    pairs = list(dict.fromkeys(zip(fails["scenario"], fails["scheduler"], strict=True)))
    failing = [(r.scenario, r.scheduler) for r in matrix.itertuples() if r.seeds_failed]
    assert pairs == failing
    assert list(dict.fromkeys(fails["scheduler"])) == ["seed", "seed-proposal", "seed-head"]
    for _, g in fails.groupby(["scenario", "scheduler"]):
        assert list(g["seed"]) == sorted(g["seed"])


def test_a_folder_of_yml_scenarios_is_run_as_sim_would_run_them(tmp_path):
    # Found by a user audit: `unstuck sim b.yml` ran it, `unstuck suite DIR` skipped it.
    folder = tmp_path / "scen"
    folder.mkdir()
    (folder / "b.yml").write_text(Path("scenarios/incident-601.yaml").read_text())
    (folder / "a.yaml").write_text(Path("scenarios/double-confirm.yaml").read_text())
    r = run(app, ["suite", str(folder), "-s", "reference", "--seeds", "1", "--workers", "1",
                  "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    assert "2 scenarios x 1 scheduler" in r.output
    assert sorted(set(unstuck.load(tmp_path / "rep")["runs"]["scenario"])) == \
        ["a", "b"]  # named after their files


def test_the_first_violation_is_the_same_in_the_failures_table_captions_and_violations_of(report):
    # Found by review: the failures table (and the shrink command beside it, and `unstuck
    # sim`) name a stuck task's violation first, but each timeline's caption named the
    # earliest violation of any kind, and `tables.violations_of()[0]`, whose witness and
    # invariant the analysis notebook drills into, was that one too. incident-601 under
    # seed-proposal: the table said `drained: task 1`, the caption `no_wedged_workspace`.
    res = unstuck.load(report)
    fails = pd.read_csv(report / "tables" / "failures.csv")
    page = (report / "index.html").read_text()
    captions = re.findall(r"<small>reproduce: (.*?) \| first violation: (.*?)</small>", page)
    assert len(captions) == len(list((report / "figures").glob("timeline-*.png")))
    by_command = {r.command: r.first_violation for r in fails.itertuples()}
    seen_stuck_after_other = False
    for command, first in captions:
        assert html.unescape(first) == by_command[html.unescape(command)]
    for r in fails.itertuples():
        viol = tables.violations_of(res, r.scenario, r.scheduler, r.seed)
        assert r.first_violation.startswith(f"{viol[0]['invariant']}: ")
        assert f" at t={viol[0]['t']:g}: " in r.first_violation
        earliest = min(viol, key=lambda v: v["t"])
        seen_stuck_after_other |= earliest["invariant"] != viol[0]["invariant"]
    assert seen_stuck_after_other  # the fixture holds such a seed (incident-601, seed-proposal)


def test_a_report_without_a_scenario_file_says_its_verdict_used_default_thresholds(report, tmp_path,
                                                                                   monkeypatch):
    # Found by review: a live run's folder reported without its scenario file stated
    # "gate: deviated (exit 1)" (the default thresholds, no fault check: docs/report.md),
    # while `unstuck gate` on the same folder exits 2 for want of that file; nothing on the
    # page or in the command's output said the verdict was judged without it.
    live = tmp_path / "live"
    shutil.copytree(report / "results" / "histories", live / "histories")
    monkeypatch.chdir(tmp_path)  # no scenarios/ here
    r = run(app, ["report", str(live)])
    assert r.exit_code == 0, r.output
    assert run(app, ["gate", str(live)]).exit_code == 2
    for name in ("incident-601", "double-confirm"):
        note = f"scenario '{name}': no scenario file found"
        assert note in r.output
        for page in ("index.html", "summary.md"):
            text = html.unescape((live / page).read_text())
            assert note in text, page
            assert "judged it with the default thresholds, its declared faults not checked" in text
    # With the file, no such note.
    r = run(app, ["report", str(live), "--scenarios", str(Path(__file__).parents[3] / "scenarios")])
    assert r.exit_code == 0, r.output
    assert "no scenario file found" not in r.output + (live / "index.html").read_text()


def test_timeline_tables_write_task_and_seq_ids_as_integers(report):
    # Found by review: a segment has no seq and a fault across the chart no task, so the
    # columns turned float and the CSVs read `task 50.0`, `seq 2813.0`.
    for path in (report / "tables").glob("timeline-*.csv"):
        t = pd.read_csv(path, dtype=str, keep_default_na=False)
        for col in ("task", "seq"):
            assert not t[col].str.endswith(".0").any(), (path.name, col)
    page = (report / "index.html").read_text()
    assert "&lt;NA&gt;" not in page and "<td>-</td>" in page  # a missing id shows as one


def test_a_timeline_marks_seq_is_a_history_row_or_missing_never_invented(report):
    # Found by review: a violation mark (no history row) carried seq -1 in the timeline
    # CSVs, an id no row has, which a join on seq or a filter `seq >= 0` took for data.
    res = unstuck.load(report)
    for path in (report / "tables").glob("timeline-*.csv"):
        t = pd.read_csv(path)
        marks = t[t["what"] == "mark"]
        violation = marks["kind"] == "violation"
        assert violation.any() and marks["seq"][violation].isna().all(), path.name
        scen, sched, seed = re.fullmatch(r"timeline-(.+)-(seed|seed-proposal|seed-head|reference)"
                                         r"-seed-(\d+)\.csv", path.name).groups()
        seqs = {r["seq"] for r in res.history(scen, sched, int(seed))}
        assert set(marks["seq"][~violation].astype(int)) <= seqs, path.name


@pytest.mark.parametrize(("index", "key", "value"), [
    (2, "type", ["plan_and_apply"]), (11, "type", {"type": "pod-kill"}), (11, "node", 1)])
def test_a_history_whose_type_or_node_is_not_a_string_is_bad_input_naming_the_row(
        tmp_path, index, key, value):
    """Found by review: a list or object (or a number) in a `task.created` or `fault` row's
    data.type, or a fault's data.node, was judged fine, and writing the results tables then
    crashed on their string columns (ArrowTypeError, exit 1). It is bad input: exit 2 naming
    the file, the row and the fix, from `unstuck report`, `unstuck gate` and `unstuck.load`,
    and nothing written."""
    rows = history.read_jsonl(Path("tests/fixtures/histories/incident-601-seed.jsonl"))
    rows[index]["data"][key] = value
    path = tmp_path / "live" / "histories" / "incident-601" / "seed" / "seed-0.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(history.canonical_line(r) + "\n" for r in rows))
    want = (f"{path}: cannot be judged: history row seq {index} ({rows[index]['kind']}): "
            f"data.{key} = {value!r}: expected a string or null; fix the row's data.{key} "
            f"(docs/history.md)")
    out = tmp_path / "out"
    for args in (["report", str(tmp_path / "live"), "--out", str(out)],
                 ["gate", str(tmp_path / "live"), "--scenarios", "scenarios"]):
        r = run(app, args)
        assert r.exit_code == 2, r.output
        assert r.output == f"error: {want}\n"
    assert not out.exists()
    with pytest.raises(ResultsInvalid) as e:
        unstuck.load(tmp_path / "live")
    assert str(e.value) == want


def test_a_history_row_with_null_data_is_judged_and_tabled(tmp_path):
    """Found by review: `data` may be null (docs/history.md; the checker takes it), but the
    tasks table read a `task.created` or `dispatch` row's data.type / data.action off it and
    `unstuck report` crashed (AttributeError). A null data holds no type and no action."""
    rows = history.read_jsonl(Path("tests/fixtures/histories/incident-601-seed.jsonl"))
    rows[2]["data"] = None  # task.created
    rows[5]["data"] = None  # dispatch
    path = tmp_path / "live" / "histories" / "incident-601" / "seed" / "seed-0.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(history.canonical_line(r) + "\n" for r in rows))
    res = unstuck.load(tmp_path / "live")
    (task,) = res.tasks.to_dict("records")
    assert task["task"] == 601 and pd.isna(task["type"]) and task["status"] == "apply_pending"


def test_a_live_report_does_not_claim_its_commands_cite_saved_copies(tmp_path):
    """Found by the docs review: the failures section said its commands "cite the copies of
    the scenario files saved with the results, so they replay what ran, wherever the folder
    is moved", also for a live run's folder that holds no copies, whose commands cite
    `scenarios/<name>.yaml` (docs/report.md). The page says what the commands cite."""
    rows = history.read_jsonl(Path("tests/fixtures/histories/incident-601-seed.jsonl"))
    path = tmp_path / "live" / "histories" / "incident-601" / "seed" / "seed-0.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(history.canonical_line(r) + "\n" for r in rows))
    r = run(app, ["report", str(tmp_path / "live"), "--scenarios", "scenarios"])
    assert r.exit_code == 0, r.output
    md = (tmp_path / "live" / "summary.md").read_text()
    assert "unstuck sim scenarios/incident-601.yaml" in md
    assert "cite the copies" not in md
    assert "hold no copy of some scenario files" in md


def test_a_suite_report_says_its_commands_cite_the_saved_copies(report):
    md = (report / "summary.md").read_text()
    assert "they cite the copies of the scenario files saved with the results" in md
