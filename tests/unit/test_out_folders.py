"""`sim --out`, `suite --out` and `report --out` remove only what unstuck wrote: a folder that
is not empty and not unstuck's, or one whose cleared parts hold an input scenario file, is
refused before any seed runs (exit 2, nothing touched); rerunning into unstuck's own folder
keeps working, an interrupted or failed suite leaves no earlier verdict beside its partial
results, and a write that fails mid-run (a full disk) is a message, not a traceback."""

import errno
import json
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from unstuck import cli, folders, results
from unstuck.cli import app

run = CliRunner().invoke
SCENARIO = "scenarios/incident-601.yaml"
ONE = ["--seeds", "1", "-s", "reference", "--workers", "1"]


def sim(out: Path, *scenario: str) -> object:
    return run(app, ["sim", *(scenario or [SCENARIO]), *ONE, "--out", str(out)])


def suite(out: Path, *scenario: str) -> object:
    return run(app, ["suite", *(scenario or [SCENARIO]), *ONE, "--out", str(out)])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path) -> Path:
    """A folder like a project checkout: its scenarios and someone's unrelated files."""
    shutil.copytree("scenarios", tmp_path / "scenarios")
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "todo.md").write_text("mine")
    for name, text in (("figures/plot.png", "png"), ("tables/t.csv", "csv"), ("summary.md", "notes")):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_sim_refuses_a_folder_unstuck_did_not_write_and_its_own_input(project, monkeypatch):
    monkeypatch.chdir(project)
    before = snapshot(project)
    r = run(app, ["sim", SCENARIO, *ONE, "--out", "."])
    assert r.exit_code == 2, r.output
    assert "--out .: not empty and not an unstuck results folder" in r.output
    assert f"would delete the input scenario file {SCENARIO}" in r.output
    assert "Traceback" not in r.output
    assert snapshot(project) == before  # nothing removed, nothing written


def test_suite_refuses_a_folder_unstuck_did_not_write(project):
    before = snapshot(project)
    r = suite(project, str(project / "scenarios" / "incident-601.yaml"))
    assert r.exit_code == 2, r.output
    assert f"--out {project}: not empty and not a folder unstuck wrote" in r.output
    assert snapshot(project) == before


def test_suite_refuses_to_delete_its_input_from_its_own_report(tmp_path):
    rep = tmp_path / "rep"
    assert suite(rep).exit_code == 0
    copies = rep / "results" / "scenarios"
    r = suite(rep, str(copies))
    assert r.exit_code == 2, r.output
    assert f"would delete the input scenario file {copies / 'incident-601.yaml'}" in r.output
    assert (copies / "incident-601.yaml").is_file() and (rep / "index.html").is_file()


def test_rerunning_into_the_same_folder_works_and_leaves_other_files(tmp_path):
    out, rep = tmp_path / "run", tmp_path / "rep"
    for _ in range(2):  # `make run` twice in a row
        assert sim(out).exit_code == 0
        assert suite(rep).exit_code == 0
        (out / "notes.txt").write_text("mine")
        (rep / "notes.txt").write_text("mine")
    assert (out / "notes.txt").read_text() == (rep / "notes.txt").read_text() == "mine"
    assert folders.wrote(out) == {"results"} and folders.wrote(rep) == {"report"}


def test_a_folder_written_before_the_marker_is_still_unstuck_s(tmp_path):
    """Folders written by earlier versions have unstuck's manifest.json but no marker."""
    out = tmp_path / "run"
    assert sim(out).exit_code == 0
    (out / folders.MARKER).unlink()
    assert sim(out).exit_code == 0
    rep = tmp_path / "rep"
    assert suite(rep).exit_code == 0
    (rep / folders.MARKER).unlink()
    (rep / "results" / folders.MARKER).unlink()
    assert suite(rep).exit_code == 0


def test_a_folder_a_run_was_interrupted_in_can_be_run_into_again(tmp_path, monkeypatch):
    """The marker is written before the first seed, so the folder is unstuck's even when
    the run stopped before writing any table."""
    out = tmp_path / "run"

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("sim.runner.run", _ctrl_c)
    assert sim(out).exit_code == 130
    (out / "tasks").mkdir()  # a table folder the run would have written
    monkeypatch.undo()
    r = sim(out)
    assert r.exit_code == 0, r.output
    assert (out / "runs.parquet").is_file()


def test_a_live_folder_reported_into_is_not_cleared_by_a_run(tmp_path):
    """A live run's folder (histories only) gets its report written into it; that does not
    make its histories a run's to replace."""
    run_dir = tmp_path / "run"
    assert sim(run_dir).exit_code == 0
    live = tmp_path / "live"
    shutil.copytree(run_dir / "histories", live / "histories")
    assert run(app, ["report", str(live)]).exit_code == 0
    r = sim(live)
    assert r.exit_code == 2, r.output
    assert "not an unstuck results folder" in r.output
    assert any((live / "histories").rglob("seed-0.parquet"))


def test_report_refuses_an_out_folder_unstuck_did_not_write(project, tmp_path):
    run_dir = tmp_path / "run"
    assert sim(run_dir).exit_code == 0
    before = snapshot(project)
    r = run(app, ["report", str(run_dir), "--out", str(project)])
    assert r.exit_code == 2, r.output
    assert "not a folder unstuck wrote" in r.output
    assert snapshot(project) == before


def _ctrl_c(*a, **k):
    raise KeyboardInterrupt


def test_a_suite_stopped_half_way_leaves_no_earlier_verdict(tmp_path, monkeypatch):
    rep = tmp_path / "rep"
    assert suite(rep).exit_code == 0
    monkeypatch.setattr("sim.runner.run", _ctrl_c)
    r = suite(rep)
    assert r.exit_code == 130
    assert f"no report written; the previous one in {rep} was removed" in r.output
    for name in ("index.html", "summary.md", "junit.xml"):
        assert not (rep / name).exists(), name
    assert not list((rep / "figures").glob("*.png"))


def test_ctrl_c_while_rendering_says_what_was_written(tmp_path, monkeypatch):
    rep = tmp_path / "rep"
    assert suite(rep).exit_code == 0
    monkeypatch.setattr("unstuck.plots.recovery_cdf", _ctrl_c)
    r = suite(rep)
    assert r.exit_code == 130
    assert (f"interrupted while rendering the report: {rep / 'results'} holds this run's complete "
            f"results; the report in {rep} is missing or incomplete") in r.output
    assert f"`unstuck report {rep}`" in r.output
    assert (rep / "results" / "runs.parquet").is_file()
    assert not (rep / "index.html").exists() and not (rep / "junit.xml").exists()

    r = run(app, ["report", str(rep)])
    assert r.exit_code == 130
    assert f"the results in {rep / 'results'} are unchanged" in r.output


def test_a_full_disk_mid_run_is_a_message_and_an_unfinished_folder(tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert sim(out).exit_code == 0  # a complete earlier run: must not look complete after
    path = out / "tasks" / "incident-601" / "reference" / "seed-0.parquet"

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(results, "write_seed", full)
    r = sim(out)
    assert r.exit_code == 2, r.output
    assert f"could not write {path} (No space left on device)" in r.output
    assert "no runs.parquet" in r.output and "Traceback" not in r.output
    assert not (out / "runs.parquet").exists()
    r = run(app, ["report", str(out)])
    assert r.exit_code == 2 and "holds no results" in r.output


def test_a_full_disk_at_the_runs_table_keeps_the_verdict_and_leaves_the_folder_unfinished(
        tmp_path, monkeypatch):
    # Every seed ran and was judged; only runs.parquet failed. The table used to go unprinted.
    out = tmp_path / "run"

    def full(folder, rows):
        raise OSError(errno.ENOSPC, "No space left on device", str(folder / "runs.parquet"))

    monkeypatch.setattr(results, "write_runs", full)
    r = sim(out)
    assert r.exit_code == 2, r.output
    assert "incident-601" in r.output and "reference" in r.output  # the verdict's table
    assert r.output.index("incident-601") < r.output.index("could not write")
    assert "the verdict above is complete" in r.output and "Traceback" not in r.output
    assert not (out / "runs.parquet").exists()


def test_a_full_disk_while_writing_the_report_is_a_message(tmp_path, monkeypatch):
    rep = tmp_path / "rep"

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(rep / "index.html"))

    monkeypatch.setattr("unstuck.report.pages.to_html", full)
    r = suite(rep)
    assert r.exit_code == 2, r.output
    assert f"could not write the report into {rep}" in r.output
    assert "No space left on device" in r.output and "Traceback" not in r.output


def test_any_other_failed_write_is_exit_2_naming_the_file(tmp_path, monkeypatch, capsys):
    """The last net, in `unstuck`'s entry point: a write no command catches itself (the
    --history file has its own message now: tests/unit/sim/test_sim_cli.py)."""
    table = tmp_path / "table.txt"

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(table))

    monkeypatch.setattr("unstuck.sim_cli._print", full)
    monkeypatch.setattr(sys, "argv", ["unstuck", "sim", SCENARIO, *ONE])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"No space left on device: '{table}'" in err and "Traceback" not in err


def test_the_marker_says_what_unstuck_wrote(tmp_path):
    out = tmp_path / "run"
    assert sim(out).exit_code == 0
    assert json.loads((out / folders.MARKER).read_text())["wrote"] == ["results"]


def test_a_results_folder_inside_the_users_project_gets_its_report_inside(project):
    # Found by review: `report PROJECT/results` rendered into PROJECT, deleting the user's
    # index.html, junit.xml, figures and tables, because any folder with results/ looked
    # like an unstuck report folder; `gate` overwrote PROJECT/junit.xml the same way.
    for name in ("index.html", "junit.xml"):
        (project / name).write_text("mine")
    before = snapshot(project)
    res = project / "results"
    assert sim(res).exit_code == 0
    r = run(app, ["report", str(res)])
    assert r.exit_code == 0, r.output
    assert (res / "index.html").is_file() and (res / "junit.xml").is_file()
    r = run(app, ["gate", str(res)])
    assert r.exit_code == 0, r.output
    r = run(app, ["report", str(res), "--out", str(project)])
    assert r.exit_code == 2 and "not a folder unstuck wrote" in r.output
    after = snapshot(project)
    assert {k: v for k, v in after.items() if not k.startswith("results/")} == before


def test_a_run_into_a_reports_results_removes_the_report_it_makes_stale(tmp_path):
    # Found by review: the old index.html, summary.md and junit.xml stayed beside results of
    # another run, and CI would have read the old verdict.
    rep = tmp_path / "rep"
    assert suite(rep).exit_code == 0
    r = sim(rep / "results", "scenarios/pod-kill-reserved-slot.yaml")
    assert r.exit_code == 0, r.output
    assert f"removed the report in {rep}" in r.output
    for name in ("index.html", "summary.md", "junit.xml"):
        assert not (rep / name).exists(), name
    r = run(app, ["report", str(rep)])
    assert r.exit_code == 0 and "pod-kill-reserved-slot" in (rep / "summary.md").read_text()


def test_a_run_into_a_results_folder_with_its_own_report_removes_that_report(tmp_path):
    # Found by review: `unstuck report DIR` renders inside a results folder; a new run into DIR
    # left its index.html and summary.md describing results that were gone.
    res = tmp_path / "run"
    assert sim(res).exit_code == 0
    assert run(app, ["report", str(res)]).exit_code == 0
    assert (res / "index.html").is_file() and list((res / "figures").glob("*.png"))
    r = sim(res, "scenarios/pod-kill-reserved-slot.yaml")
    assert r.exit_code == 0, r.output
    assert f"removed the report in {res}" in r.output
    for name in ("index.html", "summary.md", "junit.xml"):
        assert not (res / name).exists(), name
    assert not list((res / "figures").glob("*.png"))


def test_clearing_a_report_removes_its_emptied_folders_and_keeps_anyone_elses_files(tmp_path):
    """A suite stopped before its report, or a run into OUT/results, clears OUT's old report:
    it left empty figures/ and tables/ behind, as if a report had been written."""
    from unstuck import report
    from unstuck.folders import mark

    out = tmp_path / "suite"
    mark(out, "report")
    for name in ("figures/verdict-matrix.png", "tables/recovery.csv", "tables/notes.txt"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("x")
    report.clear(out)
    assert not (out / "figures").exists()
    assert sorted(p.name for p in (out / "tables").iterdir()) == ["notes.txt"]  # not ours


def test_a_suite_into_a_sim_results_folder_is_refused(tmp_path):
    # Found by a docs walkthrough: `suite --out DIR` on a `sim --out DIR` folder put the new
    # results in DIR/results/ and the report in DIR, while `unstuck gate DIR` and `unstuck
    # report DIR` kept reading DIR's own tables: the suite said "`unstuck gate DIR` exits 3"
    # and the gate passed the old run (exit 0), rewriting the report's junit.xml.
    out = tmp_path / "run"
    assert sim(out).exit_code == 0
    before = snapshot(out)
    r = suite(out, "scenarios/pod-kill-reserved-slot.yaml")
    assert r.exit_code == 2, r.output
    assert f"--out {out}: holds the results of another run ({out})" in r.output
    assert "Traceback" not in r.output
    assert snapshot(out) == before


def test_a_report_into_a_folder_holding_other_results_is_refused(tmp_path):
    """`report A --out B` where B holds results of its own: B's page would describe A's
    results while `unstuck gate B` judged B's."""
    a, b, rep = tmp_path / "a", tmp_path / "b", tmp_path / "rep"
    assert sim(a).exit_code == 0
    assert sim(b, "scenarios/pod-kill-reserved-slot.yaml").exit_code == 0
    assert suite(rep, "scenarios/pod-kill-reserved-slot.yaml").exit_code == 0
    for target, held in ((b, b), (rep, rep / "results")):
        before = snapshot(target)
        r = run(app, ["report", str(a), "--out", str(target)])
        assert r.exit_code == 2, r.output
        assert f"--out {target}: holds the results of another run ({held})" in r.output
        assert snapshot(target) == before
    # the folder's own results may still be reported into it, and a new folder is fine
    assert run(app, ["report", str(rep)]).exit_code == 0
    assert run(app, ["report", str(b)]).exit_code == 0
    assert run(app, ["report", str(a), "--out", str(tmp_path / "new")]).exit_code == 0
