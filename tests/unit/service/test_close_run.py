"""`unstuck close-run`: a live run's history (written by `unstuck serve` with a real agent
process) closed with its run.end row and laid out as a results folder, which `unstuck
report` and `unstuck gate` then judge as they are; bad input exits 2 in one line, with
DATA_DIR untouched and OUT not written."""

from __future__ import annotations

import json
import os
import re
import signal
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.service.live import LIVE_SCENARIO, InProcessService, wait_for
from unstuck.cli import app

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "tests" / "fixtures" / "histories" / "incident-601-reference.jsonl"

# A live run judged as scenario "live": apply_pending for more than 0.5 s after a confirm is
# stuck. The run with a fault injects one pod-kill (its fault row posted through POST /faults),
# which its scenario declares (the gate answers 3 when a declared fault left no row).
SCENARIO = LIVE_SCENARIO
POD_KILL = "faults:\n  - {type: pod-kill, at: 1, target: reserved-holder}\n"


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def live_run(tmp_path: Path, scheduler: str, *, kill_agent: bool) -> Path:
    """Run one plan_and_apply task through a real service and agent, confirm it (after
    SIGKILLing the agent that holds its reservation, with `kill_agent`), then stop the
    service: its data folder, as a live run leaves it."""
    svc = InProcessService(tmp_path, scheduler=scheduler)
    try:
        agent = svc.start_agent(plan_s=0.1, apply_s=0.1)
        wait_for(lambda: svc.engine.agents_connected() == 1, 15, what="the agent to connect")
        r = svc.http.post("/tasks", json={"workspace_id": "ws-1"}, headers=svc.auth())
        assert r.status_code == 201, r.text
        task = r.json()["task_id"]
        wait_for(lambda: svc.engine.store.get_task(task).status.value == "apply_pending", 15,
                 what="the plan")
        if kill_agent:
            r = svc.http.post("/faults", json={"type": "pod-kill", "pod": "pod-1"}, headers=svc.auth())
            assert r.status_code == 201, r.text
            os.kill(agent.pid, signal.SIGKILL)
            agent.wait(10)
            wait_for(lambda: svc.engine.agents_connected() == 0, 15, what="the agent to be gone")
        digest = svc.http.get(f"/tasks/{task}").json()["plan_digest"]
        r = svc.http.post(f"/tasks/{task}/confirm", json={"plan_digest": digest}, headers=svc.auth())
        assert r.status_code == 200, r.text
        confirmed = svc.engine.clock.t()
        if kill_agent:  # past the scenario's 0.5 s bound, still in apply_pending
            wait_for(lambda: svc.engine.clock.t() > confirmed + 1.0, 5, what="1 s to pass")
            assert svc.engine.store.get_task(task).status.value == "apply_pending"
        else:
            wait_for(lambda: svc.engine.store.get_task(task).status.value == "applied", 15,
                     what="the apply")
    finally:
        svc.stop()  # the service saves its clock as it stops
    return tmp_path / "run"


@pytest.mark.parametrize(("scheduler", "kill_agent", "code", "line"), [
    ("reference", False, 0, r"^PASS  live  reference: pass$"),
    # Incident 601 live: the seed leaves the confirmed task in apply_pending for ever.
    ("seed", True, 1, r"^FAIL  live  seed: apply_pending_bound, .*stuck_tasks$"),
])
def test_a_closed_live_run_is_reported_and_gated_as_it_is(tmp_path, scheduler, kill_agent, code, line):
    data = live_run(tmp_path, scheduler, kill_agent=kill_agent)
    before = snapshot(data)
    rows = [json.loads(x) for x in (data / "history.jsonl").read_text().splitlines()]
    assert not any(r["kind"] == "run.end" for r in rows)
    clock = json.loads((data / "clock.json").read_text())
    stopped_t = round(clock["now_at"] - clock["run_start"], 6)
    scenario = SCENARIO + (POD_KILL if kill_agent else "")
    (tmp_path / "live.yaml").write_text(scenario)
    out = tmp_path / "out"

    assert clock["scheduler"] == scheduler  # recorded by serve: close-run needs no -s
    closed = run("close-run", data, "--scenario", tmp_path / "live.yaml", "--out", out)
    assert closed.exit_code == 0, closed.output
    assert snapshot(data) == before  # DATA_DIR is read, never written
    history = out / "histories" / "live" / scheduler / "seed-0.jsonl"
    written = [json.loads(x) for x in history.read_text().splitlines()]
    assert written[:-1] == rows
    end = written[-1]
    assert (end["kind"], end["source"], end["seq"]) == ("run.end", "harness", len(rows))
    assert end["data"] == {"bound_s": 0.5, "drain_s": 1.0, "scenario": "live", "scheduler": scheduler}
    assert end["t"] == max(rows[-1]["t"], stopped_t)  # when the service stopped
    assert (out / "scenarios" / "live.yaml").read_text() == scenario

    reported = run("report", out)
    assert reported.exit_code == 0, reported.output
    assert re.search(line, reported.output, re.M) and (out / "index.html").is_file()
    gated = run("gate", out, "-s", scheduler)
    assert gated.exit_code == code, gated.output
    assert re.search(line, gated.output, re.M), gated.output
    junit = out / "junit.xml"  # the gate's -s rewrites the report's
    assert junit.is_file()
    if code:  # no simulated seed replays a live run: a failure points at its history instead
        messages = [f.get("message") for f in ET.parse(junit).iter("failure")]
        assert messages and all("a live run; its history: " in m and "unstuck sim" not in m
                                for m in messages), messages
        fails = (out / "tables" / "failures.csv").read_text().splitlines()
        assert fails[0].endswith(",command,shrink") and fails[1].endswith(",,"), fails


@pytest.fixture
def data(tmp_path) -> Path:
    """A service's data folder: the fixture history without its run.end row."""
    rows = FIXTURE.read_text().splitlines()
    assert json.loads(rows[-1])["kind"] == "run.end"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "history.jsonl").write_text("".join(r + "\n" for r in rows[:-1]))
    (tmp_path / "incident-601.yaml").write_text((ROOT / "scenarios" / "incident-601.yaml").read_text())
    return tmp_path / "run"


def close(data: Path, *extra: str, scenario: Path | None = None, out: Path | None = None):
    scenario = scenario or data.parent / "incident-601.yaml"
    return run("close-run", data, "--scenario", scenario, "--out", out or data.parent / "out", *extra)


def last_row(path: Path) -> dict:
    return json.loads(path.read_text().splitlines()[-1])


def test_without_a_clock_file_the_run_ends_at_its_last_row(data):
    last = last_row(data / "history.jsonl")
    r = close(data, "-s", "reference")
    assert r.exit_code == 0, r.output
    end = last_row(data.parent / "out" / "histories" / "incident-601" / "reference" / "seed-0.jsonl")
    assert (end["t"], end["seq"]) == (last["t"], last["seq"] + 1)
    assert end["data"]["bound_s"] == 600.0 and end["data"]["drain_s"] == 3600.0


@pytest.mark.parametrize(("saved_after", "expected_after", "recorded"),
                         [(100.0, 100.0, {"scheduler": "reference"}), (-50.0, 0.0, {})])
def test_the_run_ends_at_the_clock_files_last_reading_never_before_its_last_row(data, saved_after, expected_after, recorded):
    # -s repeats what the clock file records, or names what an old one (no "scheduler") does not.
    last = last_row(data / "history.jsonl")
    run_start = 12345.0
    (data / "clock.json").write_text(json.dumps({
        "offset": 10000.0, "run_start": run_start, "boot_id": "another-boot",
        "now_at": run_start + last["t"] + saved_after, "wall_at": 1.7e9, **recorded}))
    r = close(data, "-s", "reference")
    assert r.exit_code == 0, r.output
    end = last_row(data.parent / "out" / "histories" / "incident-601" / "reference" / "seed-0.jsonl")
    assert end["t"] == pytest.approx(last["t"] + expected_after)


def test_a_torn_last_line_is_left_out_as_the_service_would(data):
    rows = (data / "history.jsonl").read_text().splitlines()
    with (data / "history.jsonl").open("a") as f:
        f.write('{"seq": 99, "t"')
    r = close(data, "-s", "reference")
    assert r.exit_code == 0, r.output
    assert "its last line is torn (15 bytes" in r.output
    written = (data.parent / "out" / "histories" / "incident-601" / "reference" / "seed-0.jsonl").read_text()
    assert len(written.splitlines()) == len(rows) + 1


def refused(data: Path, result, message: str) -> None:
    """Exit 2, one line matching `message`, DATA_DIR as it was and no OUT."""
    line = one_line(result)
    assert re.search(message, line), line
    assert not (data.parent / "out").exists()
    assert not [p for p in data.parent.iterdir() if p.name.startswith(".out.")]


def test_bad_input_exits_2_naming_the_file_and_the_fix(data, tmp_path):
    before = snapshot(data)
    refused(data, close(tmp_path / "nope", "-s", "reference"),
            r"^error: .*/nope: no such folder; give the --data-dir of `unstuck serve`$")
    refused(data, close(data, "-s", "reference", scenario=tmp_path / "none.yaml"),
            r"^error: .*/none.yaml: no such file; give the path of a scenario")
    (tmp_path / "bad.yaml").write_text("duration_s: -3\nworkload: []\n")
    r = close(data, "-s", "reference", scenario=tmp_path / "bad.yaml")
    assert r.exit_code == 2 and "bad.yaml" in r.output and "duration_s" in r.output, r.output
    assert not (tmp_path / "out").exists()
    refused(data, close(data), r"^error: --scheduler: missing; .*/clock.json: no such file, so nothing "
                               r"records the scheduler that ran: pass the --scheduler given to `unstuck serve`")
    clock = {"offset": 1e4, "run_start": 2e4, "now_at": 2e4 + 530, "wall_at": 1.7e9, "boot_id": "b"}
    (data / "clock.json").write_text(json.dumps(clock))  # from before serve recorded it
    refused(data, close(data), r"^error: --scheduler: missing; .*/clock.json: records no scheduler "
                               r"\(written before `unstuck serve` recorded it\): pass the --scheduler")
    (data / "clock.json").write_text(json.dumps({**clock, "scheduler": "seed"}))
    refused(data, close(data, "-s", "reference"),
            r"^error: .*/run/clock.json: records that this run is served by --scheduler seed \(since "
            r"its first start\), not --scheduler reference: one history judges one scheduler; pass "
            r"--scheduler seed, or leave it out$")
    (data / "clock.json").unlink()
    refused(data, close(data, "-s", "fifo"), r"^error: --scheduler 'fifo' is not a scheduler")
    refused(data, run("close-run", data, "-s", "seed", "--out", data.parent / "out"),
            r"^error: --scenario: missing; give the scenario file the run is judged as")
    refused(data, run("close-run", data, "-s", "seed", "--scenario", data.parent / "incident-601.yaml"),
            r"^error: --out: missing; give a new folder for the results, e.g. --out live$")
    refused(data, close(data, "-s", "reference", out=data / "out"),
            r"^error: --out .*/run/out: is inside DATA_DIR .*, which close-run never writes")
    (data / "clock.json").write_text("{")
    refused(data, close(data, "-s", "reference"),
            r"^error: .*/clock.json: not a clock file .*: move it away to close the run at its last row \(t=530\)$")
    (data / "clock.json").unlink()
    assert snapshot(data) == before

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "history.jsonl").write_text("")
    refused(data, close(empty, "-s", "reference"), r"^error: .*/empty/history.jsonl: holds no rows")
    (empty / "history.jsonl").unlink()
    refused(data, close(empty, "-s", "reference"), r"^error: .*/empty/history.jsonl: no such file")


def test_a_closed_history_is_refused(data):
    (data / "history.jsonl").write_text(FIXTURE.read_text())
    refused(data, close(data, "-s", "reference"),
            r"^error: .*/run/history.jsonl: row \d+ is already a run.end: the run is closed")


def test_an_invalid_history_is_refused_with_the_checkers_error(data):
    history = data / "history.jsonl"
    rows = [json.loads(x) for x in history.read_text().splitlines()]
    rows[-1]["t"] = rows[-2]["t"] - 1.0  # time goes back
    history.write_text("".join(json.dumps(r) + "\n" for r in rows))
    refused(data, close(data, "-s", "reference"), r"^error: .*/run/history.jsonl: cannot be judged: ")
    rows[-1]["t"] = rows[-2]["t"]
    rows[3]["seq"] = 7  # an edited file
    history.write_text("".join(json.dumps(r) + "\n" for r in rows))
    refused(data, close(data, "-s", "reference"),
            r"^error: .*/run/history.jsonl: row 4 has seq 7, expected 3: the history file was edited")
    history.write_text("".join(json.dumps(r) + "\n" for r in rows[:3]) + "not json\n"
                       + "".join(json.dumps(r) + "\n" for r in rows[4:]))
    refused(data, close(data, "-s", "reference"),
            r"^error: .*/run/history.jsonl: line 4 is not a JSON history row")


def test_an_out_folder_that_is_not_empty_is_left_as_it_was(data):
    out = data.parent / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    r = close(data, "-s", "reference")
    line = one_line(r)
    assert line.startswith(f"error: --out {out}: not empty; close-run writes a new results folder"), line
    assert snapshot(out) == {"mine.txt": b"keep"}


def test_an_empty_out_folder_is_taken(data):
    (data.parent / "out").mkdir()
    r = close(data, "-s", "seed")
    assert r.exit_code == 0, r.output
    assert (data.parent / "out" / "histories" / "incident-601" / "seed" / "seed-0.jsonl").is_file()


def test_a_write_that_fails_leaves_no_out_and_no_temporary_folder(data, monkeypatch):
    from unstuck import results

    def full_disk(*args, **kw):
        raise OSError(28, "No space left on device", "manifest.json")

    monkeypatch.setattr(results, "write_manifest", full_disk)
    out = data.parent / "deep" / "er" / "out"
    r = close(data, "-s", "reference", out=out)
    line = one_line(r)
    assert "could not write manifest.json (No space left on device)" in line, line
    assert not (data.parent / "deep").exists()


@pytest.mark.parametrize("last", ['{"seq": 30}', '{"seq": 30, "t": "soon"}', '{"seq": 30, "t": null}'])
def test_a_last_row_without_a_time_is_the_checkers_error_not_a_traceback(data, last):
    # Valid JSON with the right seq, so the service's reader takes it: close-run read its t
    # for run.end before the checker had looked at the row.
    rows = (data / "history.jsonl").read_text().splitlines()
    (data / "history.jsonl").write_text("".join(r + "\n" for r in rows[:-1]) + last + "\n")
    refused(data, close(data, "-s", "reference"),
            r"^error: .*/run/history.jsonl: cannot be judged: history row 30: ")


def test_out_that_is_or_holds_data_dir_is_refused_without_telling_to_delete_it(data):
    before = snapshot(data)
    for out, what in ((data, "is DATA_DIR"), (data.parent, "holds DATA_DIR")):
        line = one_line(close(data, "-s", "reference", out=out))
        assert re.search(rf"^error: --out .*: {what} .*, which close-run never writes; choose a "
                         r"new folder outside it, e.g. ", line), line
        assert "delete" not in line, line
    assert snapshot(data) == before


def test_an_out_symlink_to_an_empty_folder_is_written_through(data):
    (data.parent / "target").mkdir()
    (data.parent / "link").symlink_to("target")
    r = close(data, "-s", "reference", out=data.parent / "link")
    assert r.exit_code == 0, r.output
    assert (data.parent / "link").is_symlink()
    assert (data.parent / "target" / "histories" / "incident-601" / "reference" / "seed-0.jsonl").is_file()
    assert [p.name for p in data.parent.iterdir() if p.name.startswith(".")] == []
