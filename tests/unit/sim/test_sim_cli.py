"""`unstuck sim`: exit codes, the stuck task and its witness, JSON, Parquet and JSONL outputs."""

import contextlib
import json
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scheduler import history
from unstuck import results
from unstuck.cli import app

run = CliRunner().invoke


def test_seed_is_stuck_in_incident_601_and_the_output_names_the_task_and_its_witness():
    r = run(app, ["sim", "scenarios/incident-601.yaml", "--scheduler", "seed", "--seeds", "4",
                  "--workers", "1"])
    assert r.exit_code == 1, r.output
    assert "incident-601 under seed" in r.output
    assert "task 1 apply_pending_bound" in r.output
    assert "witness:" in r.output and "task.confirmed task=1" in r.output
    # The task's creation reads as one: it came from no status.
    assert "task.created task=1 workspace=ws-mb7m9ii5ey (new)->pending" in r.output
    assert "None" not in r.output
    assert "stuck tasks: seed 0 task 1" in r.output
    assert "`unstuck shrink scenarios/incident-601.yaml -s seed --seed N`" in r.output


def test_reference_passes_incident_601():
    r = run(app, ["sim", "scenarios/incident-601.yaml", "--scheduler", "reference", "--seeds", "4",
                  "--workers", "2"])
    assert r.exit_code == 0, r.output


def test_json_lines_carry_the_documented_keys_and_the_first_seed_digest(tmp_path):
    hist = tmp_path / "h.jsonl"
    r = run(app, ["sim", "scenarios/incident-601.yaml", "scenarios/double-confirm.yaml",
                  "-s", "seed,reference", "--seeds", "2", "--json", "--history", str(hist),
                  "--workers", "2"])
    assert r.exit_code == 1
    lines = [json.loads(x) for x in r.output.splitlines() if x.startswith("{")]
    assert [(x["scenario"], x["scheduler"]) for x in lines] == [
        ("incident-601", "seed"), ("incident-601", "reference"),
        ("double-confirm", "seed"), ("double-confirm", "reference")]
    for x in lines:
        assert {"scenario", "scheduler", "seeds", "violations", "stuck_tasks", "recovery_latency_s",
                "confirm_to_apply_s", "events", "wall_s", "events_per_s", "digest"} <= set(x)
        assert set(x["recovery_latency_s"]) == {"p50", "p95", "p99", "max"}
        assert {"unrecovered", "applies_not_started"} <= set(x)
    # --history holds the first seed of the first scenario and scheduler: same digest.
    assert history.digest(history.read_jsonl(hist)) == lines[0]["digest"]


def test_table_and_json_count_unrecovered_hits_as_the_report_and_the_gate_do(tmp_path):
    # Found by review: with 2 of 3 seeds stuck, the table and the JSON showed recovery and
    # confirm-to-apply p99 0.2 s (the one hit that recovered) while the report said never.
    import math

    from unstuck.report import tables

    r = run(app, ["sim", "scenarios/incident-601.yaml", "-s", "seed", "--seeds", "3", "--json",
                  "--out", str(tmp_path / "out"), "--workers", "1"])
    assert r.exit_code == 1
    x = json.loads(r.stdout.splitlines()[0])
    assert x["unrecovered"] == 2 and x["applies_not_started"] == 2
    res = results.load(tmp_path / "out")
    rec = tables.recovery(res.metrics).iloc[0]
    c2a = tables.confirm_to_apply(res.metrics).iloc[0]
    assert (rec["hits"], rec["never"], c2a["never"]) == (3, 2, 2)
    for key, want in (("p50", rec["p50"]), ("p99", rec["p99"]), ("max", rec["max"])):
        assert math.isinf(want) and x["recovery_latency_s"][key] is None  # JSON has no inf
    for key in ("p50", "p99"):
        assert math.isinf(c2a[key]) and x["confirm_to_apply_s"][key] is None
    r = run(app, ["sim", "scenarios/incident-601.yaml", "-s", "seed", "--seeds", "3",
                  "--workers", "1"])
    head = r.output.split("\n\n")[0]
    assert "unrecovered" in head
    [row] = [line for line in head.splitlines() if "incident-601" in line]
    cells = [c.strip() for c in row.split("│")]
    # Only the latency cell: the wall-time column and the title may read 0.2 s too.
    assert "never/never/never/never" in cells
    # A scheduler that recovers every hit: finite numbers, the same as the report's p50/p99.
    r = run(app, ["sim", "scenarios/incident-601.yaml", "-s", "reference", "--seeds", "3",
                  "--json", "--out", str(tmp_path / "ref"), "--workers", "1"])
    x = json.loads(r.stdout.splitlines()[0])
    rec = tables.recovery(results.load(tmp_path / "ref").metrics).iloc[0]
    assert x["unrecovered"] == 0 and x["applies_not_started"] == 0
    assert (x["recovery_latency_s"]["p50"], x["recovery_latency_s"]["p99"],
            x["recovery_latency_s"]["max"]) == (rec["p50"], rec["p99"], rec["max"])


def test_fault_hits_say_how_often_the_seeds_reached_a_task_waiting_in_apply_pending(tmp_path):
    # incident-601 kills the pod that holds the waiting task's reservation, once per seed.
    r = run(app, ["sim", "scenarios/incident-601.yaml", "scenarios/hpa-scale-down-during-apply-pending.yaml",
                  "scenarios/hpa-max-patch-during-apply-pending.yaml", "-s", "seed,reference",
                  "--seeds", "6", "--json", "--out", str(tmp_path / "out"), "--workers", "2"])
    got = {(x["scenario"], x["scheduler"]): x for x in map(json.loads, r.stdout.splitlines())}
    for sched in ("seed", "reference"):
        x = got[("incident-601", sched)]
        assert (x["fault_hits"], x["seeds_hit_in_apply_pending"]) == ({"apply_pending": 6}, 6)
    # The HPA's scale-down takes the seed's waiting pods; the reference exports its demand to
    # the HPA, which keeps them: its clean run says nothing about recovering from such a loss.
    seed, ref = got[("hpa-scale-down-during-apply-pending", "seed")], got[
        ("hpa-scale-down-during-apply-pending", "reference")]
    assert seed["seeds_hit_in_apply_pending"] > 0 and ref["fault_hits"] == {}
    assert ref["faults_fired"] == 6  # the fault took effect: it hit no task
    # A max patch is obeyed whatever the metrics say: there the reference's seeds lose pods
    # that hold a waiting task's reservation, and it recovers them (exit 1 is the seed's).
    patched = got[("hpa-max-patch-during-apply-pending", "reference")]
    assert patched["seeds_hit_in_apply_pending"] >= 5 and patched["seeds_failed"] == 0
    # The same counts as the table of hits analysts load (`faults`: `status_at_fault`).
    hits = results.load(tmp_path / "out").faults
    for (scen, sched), x in got.items():
        mine = hits[(hits["scenario"] == scen) & (hits["scheduler"] == sched)]
        assert x["fault_hits"] == mine["status_at_fault"].value_counts().to_dict()
    table = run(app, ["sim", "scenarios/incident-601.yaml", "-s", "seed", "--seeds", "6",
                      "--workers", "2"]).output
    assert "fault hits: all / in apply_pending" in table and "6 / 6 in 6 seeds" in table


def test_a_goal_reached_by_too_few_seeds_is_named_as_the_gate_judges_it(tmp_path):
    """`gates.sometimes`: sim warns and lists the goal (its exit code stays the invariants'),
    with the same count of seeds the gate's error gives on the folder it wrote."""
    name = "hpa-max-patch-during-apply-pending"
    text = Path(f"scenarios/{name}.yaml").read_text()
    goal = "{hit: apply_pending, confirmed: false, by: hpa-scale-down, schedulers: [seed, seed-proposal, reference]}"
    assert goal in text
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace(goal, goal[:-1] + ", min_seeds: 4}"))
    r = run(app, ["sim", str(path), "-s", "seed,seed-head,reference", "--seeds", "4", "--json",
                  "--out", str(tmp_path / "out"), "--workers", "2"])
    got = {x["scheduler"]: x for x in map(json.loads, r.stdout.splitlines())}
    goal_name = "sometimes_hit_apply_pending_unconfirmed_by_hpa-scale-down"
    # Seeds 0-3: the seed loses a waiting task's pod in seeds 0 and 2, the reference in 0-2.
    assert got["seed"]["goals_not_reached"] == {goal_name: {"seeds_reached": 2, "min_seeds": 4}}
    assert got["reference"]["goals_not_reached"] == {goal_name: {"seeds_reached": 3, "min_seeds": 4}}
    assert got["seed-head"]["goals_not_reached"] == {}  # not its goal: it holds no reservation
    assert got["reference"]["seeds_failed"] == 0 and r.exit_code == 1  # the seed's violations
    xml = tmp_path / "gate.xml"
    gate = run(app, ["gate", str(tmp_path / "out"), "-s", "seed,reference", "--junit", str(xml)])
    assert gate.exit_code == 3 and "gate: a goal was never reached (exit 3)" in gate.output
    errors = {c.get("classname"): c.find("error").get("message")
              for c in ET.parse(xml).getroot().iter("testcase") if c.find("error") is not None}
    assert set(errors) == {f"{name}.seed", f"{name}.reference"}
    for sched, n in (("seed", 2), ("reference", 3)):
        assert errors[f"{name}.{sched}"].startswith(
            f"an hpa-scale-down hit a task in apply_pending before its confirm in {n} of 4 seeds (")
    table = run(app, ["sim", str(path), "-s", "reference", "--seeds", "4", "--workers", "2"])
    assert table.exit_code == 0
    assert (f"warning: {name} under reference: goal {goal_name}: an hpa-scale-down hit a task in "
            "apply_pending before its confirm in 3 of 4 seeds, fewer than the 4 its gates.sometimes asks") in table.output


def test_goals_split_by_scheduler_are_each_judged_for_their_own(tmp_path):
    text = Path("scenarios/incident-601.yaml").read_text()
    goal = "sometimes: [{hit: apply_pending, confirmed: false, by: pod-kill}]"
    assert goal in text
    path = tmp_path / "incident-601.yaml"
    path.write_text(text.replace(goal, "sometimes: [{hit: apply_pending, by: pod-kill, min_seeds: 3, "
                                      "schedulers: [reference]}, {hit: apply_pending, by: pod-kill, "
                                      "schedulers: [seed]}]"))
    r = run(app, ["sim", str(path), "-s", "seed,reference", "--seeds", "2", "--workers", "2"])
    warned = [line for line in r.stderr.splitlines() if "goal sometimes_hit" in line]
    # Both seeds reach it: the seed's goal (1 seed) holds, the reference's (3) cannot.
    assert len(warned) == 1 and "incident-601 under reference" in warned[0], warned
    assert "in 2 of 2 seeds, fewer than the 3 its gates.sometimes asks" in warned[0]



def test_out_writes_parquet_tables_that_load_back(tmp_path):
    r = run(app, ["sim", "scenarios/incident-601.yaml", "-s", "seed", "--seeds", "2",
                  "--out", str(tmp_path / "out"), "--workers", "1"])
    assert r.exit_code == 1
    t = results.load(tmp_path / "out")
    assert set(t["histories"]["seed"]) == {0, 1}
    assert (t["histories"]["kind"] == "run.end").sum() == 2
    assert t["tasks"]["stuck"].any() and not t["violations"].empty
    assert list(t["runs"]["seed"]) == [0, 1]


def test_bad_input_exits_2_with_every_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("duration_s: 5m\nworkload: [{count: 1, at: [5]}]\n")
    r = run(app, ["sim", str(bad), "tests/nope.yaml", "--scheduler", "sed",
                  "--seeds", "0", "--seed-start", "-1", "--workers", "0"])
    assert r.exit_code == 2
    assert f"{bad}: duration_s = '5m' (str): expected seconds as a number; write 300" in r.output
    assert "tests/nope.yaml: no such file" in r.output
    assert "--scheduler 'sed' is not a scheduler" in r.output
    for part in ("--seeds 0: run at least 1 seed", "--seed-start -1: seeds are integers >= 0",
                 "--workers 0: use at least 1"):
        assert part in r.output
    assert "Traceback" not in r.output


def test_a_declared_fault_that_never_took_effect_is_named():
    # Found by review: the table looked clean and only the gate (exit 3) noticed. A pod-kill
    # aimed at reserved slots where nothing is ever reserved proves nothing.
    r = run(app, ["sim", "tests/unit/gate/no-effect.yaml", "--seeds", "2"])
    assert r.exit_code == 0  # nothing broke; the gate decides whether that is enough
    assert ("warning: no-effect under reference: pod-kill declared but never took effect in 2 "
            "seeds") in r.output
    r = run(app, ["sim", "tests/unit/gate/no-effect.yaml", "--seeds", "2", "--json"])
    assert json.loads(r.stdout.splitlines()[0])["faults_never_fired"] == ["pod-kill"]
    r = run(app, ["sim", "scenarios/pod-kill-reserved-slot.yaml", "--seeds", "2", "--json"])
    assert json.loads(r.stdout.splitlines()[0])["faults_never_fired"] == []

def test_seed_ranges_that_cannot_run_exit_2_before_anything_runs(tmp_path):
    # Found by review: 10**20 seeds listed every job first (24 GB, then the OOM killer), and
    # seed 2**64 silently replayed seed 0 (the RNG keeps 64 bits).
    r = run(app, ["sim", "scenarios/incident-601.yaml", "--seeds", str(10**20)])
    assert r.exit_code == 2 and "at most 1,000,000 seeds per run" in r.output
    r = run(app, ["sim", "scenarios/incident-601.yaml", "--seed-start", str(2**64 - 1),
                  "--seeds", "2"])
    assert r.exit_code == 2 and "seeds must stay below 2**64" in r.output
    r = run(app, ["sim", "scenarios/incident-601.yaml", "--seed-start", str(2**64 - 1),
                  "--seeds", "1", "--json"])
    assert r.exit_code == 0, r.output
    big = tmp_path / "big.yaml"
    big.write_text(Path("scenarios/incident-601.yaml").read_text().replace(
        "\nseeds: 50\n", "\nseeds: 2000000\n"))
    r = run(app, ["sim", str(big)])
    assert r.exit_code == 2 and "seeds" in r.output and "1000000" in r.output, r.output
    assert "Traceback" not in r.output
    r = run(app, ["shrink", "scenarios/incident-601.yaml", "-s", "seed", "--seed", str(2**64)])
    assert r.exit_code == 2 and "seeds must stay below 2**64" in r.output


def test_a_seed_start_near_2_64_is_checked_against_each_scenarios_own_seed_count():
    # Without --seeds a run takes the scenario's `seeds` (incident-601: 50), and the guard
    # counted 1: seeds 2**64 and up ran, replaying seeds 0, 1, ... (the RNG keeps 64 bits).
    r = run(app, ["sim", "scenarios/incident-601.yaml", "--seed-start", str(2**64 - 10)])
    assert r.exit_code == 2 and "seeds must stay below 2**64" in r.output, r.output
    assert "--seed-start 18446744073709551606" in r.output and "50 seeds" in r.output, r.output
    r = run(app, ["sim", "scenarios/incident-601.yaml", "--seed-start", str(2**64 - 50),
                  "--seeds", "1", "--json"])
    assert r.exit_code == 0, r.output

@contextmanager
def _sim_in_its_own_group(*args: str) -> Iterator[subprocess.Popen]:
    """`unstuck sim ARGS` in a process group of its own, as a terminal's Ctrl-C would reach
    it; the whole group killed (and the pipes closed) when the test ends, so a hang fails one
    test and not the next with a ResourceWarning, and a worker the run left behind (what
    `test_a_killed_run_takes_its_workers_with_it` guards against) dies with the test instead
    of holding the pipes open."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "unstuck.cli", "sim", *args],
        start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):  # the group is gone: nothing left
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def _mixed_chaos_day(tmp_path: Path, hours: int) -> str:
    """scenarios/mixed-chaos-day.yaml cut to `hours` of simulated time, under its own name (so
    its tables land where the full day's would). The signal tests below need a run whose seeds
    take a while, not a whole day: a day now takes over five seconds a seed to run and judge,
    and a test waited for one seed before its signal and for the seeds in hand after it."""
    text = Path("scenarios/mixed-chaos-day.yaml").read_text()
    assert "\nduration_s: 86400\n" in text
    path = tmp_path / "scenario" / "mixed-chaos-day.yaml"
    path.parent.mkdir()
    path.write_text(text.replace("\nduration_s: 86400\n", f"\nduration_s: {hours * 3600}\n"))
    return str(path)


def _wait_for_a_table(proc: subprocess.Popen, tables: Path) -> None:
    while not (tables.is_dir() and any(tables.glob("*.parquet"))):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_stops_a_run_within_the_seeds_in_hand_and_leaves_no_half_written_file(tmp_path, workers):
    """Ctrl-C reaches the whole process group. The run must stop with the seeds the workers
    hold, not run every queued seed first; what it wrote must be whole; and reading the folder
    must say that the run did not finish, not show a partial report as if complete."""
    out, seeds = tmp_path / "run", 1000
    tables = out / "tasks" / "incident-601" / "reference"
    with _sim_in_its_own_group("scenarios/incident-601.yaml", "--seeds", str(seeds),
                               "--workers", workers, "--out", str(out)) as proc:
        _wait_for_a_table(proc, tables)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted after" in err and "rerun" in err and "Traceback" not in err
    written = len(list(tables.glob("*.parquet")))
    assert 0 < written < 100  # the seeds in hand finished; the rest were never started
    assert not [p for p in Path(out).rglob("*") if p.name.endswith(".tmp")]
    assert not (out / "runs.parquet").exists()
    r = run(app, ["report", str(out)])
    assert r.exit_code == 2
    assert "did not finish" in r.output and "Rerun" in r.output


def _swallows_ctrl_c(job: int) -> int:
    """A seed during which Ctrl-C comes while a finalizer runs: Python prints "Exception
    ignored" and drops the KeyboardInterrupt (pyarrow's ParquetWriter.__del__ did)."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler runs at the next bytecode boundaries
            pass
    except KeyboardInterrupt:
        pass
    return job


def test_a_ctrl_c_swallowed_during_a_seed_still_stops_the_run_after_it(capsys):
    from unstuck.sim_cli import run_batches

    with pytest.raises(KeyboardInterrupt):
        run_batches(list(range(50)), 1, False, fn=_swallows_ctrl_c)
    assert "interrupted after 1 of 50 seeds" in capsys.readouterr().err

@pytest.mark.parametrize("gap_s", [0.0, 0.1])
def test_a_second_ctrl_c_while_stopping_does_not_hang(tmp_path, gap_s):
    """`timeout -s INT` signals the child and then its process group, and people press Ctrl-C
    twice: the second SIGINT used to abandon the pool's shutdown, and the interpreter's exit
    then waited for ever on workers that never got their stop sentinel (found by review)."""
    out = tmp_path / "run"
    # Half a day takes two seconds or more: the second signal comes while the pool winds down
    # (the rest of the two seeds in hand, since no queued seed starts after the first).
    with _sim_in_its_own_group(_mixed_chaos_day(tmp_path, 12), "--seeds", "100",
                               "--workers", "2", "--out", str(out)) as proc:
        _wait_for_a_table(proc, out / "tasks" / "mixed-chaos-day" / "reference")
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(gap_s)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    # A second signal that comes only as the interpreter finalizes (SIGINT back at its
    # default) ends it by SIGINT, which a shell reports as 130 too, after the message.
    assert proc.returncode in (130, -signal.SIGINT), err
    assert "interrupted after" in err and "Traceback" not in err
    assert not [p for p in Path(out).rglob("*") if p.name.endswith(".tmp")]

def test_out_again_replaces_the_earlier_run_and_nothing_else(tmp_path):
    """A second run into the same folder must not show the first run's extra seeds beside
    its own; files that are not the run's stay."""
    out = tmp_path / "run"
    for seeds in ("4", "2"):
        r = run(app, ["sim", "scenarios/incident-601.yaml", "--seeds", seeds, "--workers", "2",
                      "--out", str(out)])
        assert r.exit_code == 0, r.output
        (out / "notes.txt").write_text("mine")
    res = results.load(out)
    for name in ("runs", "tasks", "histories", "metrics"):
        assert sorted(set(res[name]["seed"])) == [0, 1], name
    assert (out / "notes.txt").read_text() == "mine"


def test_a_file_given_twice_runs_once_and_two_files_of_one_name_are_bad_input(tmp_path):
    twice = run(app, ["sim", "scenarios/incident-601.yaml", "scenarios/incident-601.yaml",
                      "--seeds", "2", "--json", "--workers", "1"])
    assert twice.exit_code == 0, twice.output
    lines = [json.loads(x) for x in twice.output.splitlines() if x.startswith("{")]
    assert [(x["scenario"], x["seeds"]) for x in lines] == [("incident-601", 2)]

    other = tmp_path / "other.yaml"  # another file that names itself incident-601
    other.write_text("name: incident-601\n" + Path("scenarios/incident-601.yaml").read_text())
    clash = run(app, ["sim", "scenarios/incident-601.yaml", str(other), "--seeds", "2"])
    assert clash.exit_code == 2
    assert f"two scenario files are named 'incident-601' (scenarios/incident-601.yaml, {other})" \
        in clash.output and "rename one" in clash.output


def test_history_may_not_overwrite_a_scenario_being_run(tmp_path):
    # Found by review: the scenario file ended up holding JSONL.
    mine = tmp_path / "mine.yaml"
    mine.write_text(Path("scenarios/incident-601.yaml").read_text())
    before = mine.read_bytes()
    r = run(app, ["sim", str(mine), "--seeds", "1", "--history", str(mine)])
    assert r.exit_code == 2 and "that is one of the scenario files being run" in r.output
    assert mine.read_bytes() == before


@pytest.mark.parametrize("name", ["runs.parquet", "histories/x.jsonl", ".unstuck", "."])
def test_history_may_not_overwrite_the_results_of_the_same_run(tmp_path, name):
    """Found by review (session 32): `--out O --history O/runs.parquet` exited 0 with the
    history where the runs table belonged; `--history O` failed only after every seed ran."""
    out = tmp_path / "O"
    history = out if name == "." else out / name
    r = run(app, ["sim", "scenarios/double-confirm.yaml", "--seeds", "1", "--out", str(out),
                  "--history", str(history)])
    assert r.exit_code == 2, r.output
    assert r.output.startswith(f"error: --history {history}: ")
    assert f"e.g. --history {out / 'run.jsonl'}" in r.output
    assert not out.exists()


def test_history_beside_the_results_of_the_same_run_is_written(tmp_path):
    out = tmp_path / "O"
    r = run(app, ["sim", "scenarios/double-confirm.yaml", "--seeds", "1", "--out", str(out),
                  "--history", str(out / "run.jsonl")])
    assert r.exit_code == 0, r.output
    assert (out / "runs.parquet").is_file() and (out / "run.jsonl").read_text().count("\n") > 10


def _double(x: int) -> int:
    return x * 2


def test_a_ctrl_c_while_the_finished_pool_shuts_down_still_interrupts(monkeypatch):
    # Found by review: the retry caught it and run_batches returned as if nothing happened
    # (with --check-determinism, the whole second pass then ran).
    from concurrent.futures import ProcessPoolExecutor

    from unstuck.sim_cli import run_batches

    real = ProcessPoolExecutor.shutdown
    pressed: list[int] = []

    def shutdown(self, *a, **k):
        if not pressed:
            pressed.append(1)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs here
        return real(self, *a, **k)

    monkeypatch.setattr(ProcessPoolExecutor, "shutdown", shutdown)
    with pytest.raises(KeyboardInterrupt):
        run_batches(list(range(4)), 2, False, fn=_double)


def _spawned_children(pgid: int) -> bool:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"spawn_main" in f.read():
                    return True
        except (OSError, ProcessLookupError):
            continue
    return False


def test_ctrl_c_while_spawned_workers_start_prints_no_traceback():
    # Found by review: --check-determinism's spawned workers import for a while before they
    # ignore SIGINT, and a Ctrl-C then printed their KeyboardInterrupt tracebacks.
    with _sim_in_its_own_group("scenarios/incident-601.yaml", "--seeds", "20",
                               "--check-determinism") as proc:
        deadline = time.monotonic() + 60
        while not _spawned_children(proc.pid):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.01)
        time.sleep(0.05)  # inside their imports
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err


def test_a_warning_goes_to_stderr_and_the_run_goes_on(tmp_path):
    f = tmp_path / "short-drain.yaml"
    f.write_text("duration_s: 60\ndrain_s: 30\nworkload: [{count: 1, at: [5]}]\n")
    r = run(app, ["sim", str(f), "--seeds", "1", "--json"])
    assert r.stderr.startswith(f"warning: {f}: drain_s = 30.0 (float): is shorter than one "
                               "apply's p99.99"), r.stderr
    assert [json.loads(x)["scenario"] for x in r.stdout.splitlines()] == ["short-drain"]


def test_history_through_a_symlink_writes_the_file_it_names(tmp_path):
    # Found by a user audit: the link became a regular file and its target stayed as it was.
    target = tmp_path / "target.jsonl"
    target.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target.name)
    r = run(app, ["sim", "scenarios/incident-601.yaml", "--seeds", "1", "--workers", "1",
                  "--history", str(link)])
    assert r.exit_code == 0, r.output
    assert link.is_symlink()
    rows = [json.loads(x) for x in target.read_text().splitlines()]
    assert rows and rows[0]["seq"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.jsonl", "target.jsonl"]


def test_history_to_a_device_writes_it_in_place(devices_written_in_place):
    r = run(app, ["sim", "scenarios/incident-601.yaml", "--seeds", "1", "--workers", "1",
                  "--history", "/dev/null"])
    assert r.exit_code == 0, r.output
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_history_that_cannot_be_written_is_named_and_the_verdict_is_not_lost(
        devices_written_in_place):
    # Found by a user audit: "error: harness error: [Errno 28] No space left on device",
    # no file named, and the history went first, so the run's table was never printed.
    r = run(app, ["sim", "scenarios/incident-601.yaml", "-s", "seed", "--seeds", "2",
                  "--workers", "1", "--json", "--history", "/dev/full"])
    assert r.exit_code == 2, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(x["scenario"], x["scheduler"], x["seeds_failed"]) for x in lines] == \
        [("incident-601", "seed", 2)]
    assert r.stderr.startswith(
        "error: --history /dev/full: could not write the history of incident-601 under seed, "
        "seed 0 (No space left on device); the results above are complete;"), r.stderr
    assert r.stderr.rstrip().endswith(
        "unstuck sim scenarios/incident-601.yaml -s seed --seeds 1 --seed-start 0 "
        "--history FILE"), r.stderr
    assert "Traceback" not in r.output
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def _children(pid: int) -> set[int]:
    found = set()
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{p}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(p))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _alive(pid: int) -> bool:
    """Running or sleeping, not a zombie left for a reaper."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@contextmanager
def _reaped(children: set[int]) -> Iterator[None]:
    """SIGKILL any of `children` still alive when the block ends, so that a failing test
    does not leave workers running for ever (which is what it checks)."""
    try:
        yield
    finally:
        for pid in children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _finished(err: str) -> int:
    m = re.search(r"interrupted after (\d+) of (\d+) seeds", err)
    assert m, err
    return int(m[1])


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads children from /proc")
@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_stops_a_run_like_ctrl_c_and_leaves_no_worker_running(tmp_path, workers):
    # Found by a user audit: SIGTERM (CI cancelling a job, `timeout`) killed the parent at
    # once with exit 143 and no word, and its two pool workers ran on, reparented to init,
    # for ever. Only the parent gets the signal here, as `kill PID` sends it.
    out = tmp_path / "run"
    tables = out / "tasks" / "mixed-chaos-day" / "seed"
    with _sim_in_its_own_group(_mixed_chaos_day(tmp_path, 6), "-s", "seed", "--seeds", "20",
                               "--workers", workers, "--out", str(out)) as proc:
        _wait_for_a_table(proc, tables)
        children = _children(proc.pid)
        assert len(children) == (2 if workers == "2" else 0)
        proc.send_signal(signal.SIGTERM)
        with _reaped(children):
            _, err = proc.communicate(timeout=60)
            assert not [p for p in children if _alive(p)]
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    finished = _finished(err)
    assert finished < 20
    if workers == "2":  # a run in this process drops its seed in hand, tables and all
        assert len(list(tables.glob("*.parquet"))) == finished
    assert not (out / "runs.parquet").exists()
    assert not [p for p in Path(out).rglob("*") if p.name.endswith(".tmp")]


def test_a_killed_run_takes_its_workers_with_it(tmp_path):
    """SIGKILL cannot be handled: the workers must notice their parent is gone."""
    out = tmp_path / "run"
    with _sim_in_its_own_group(_mixed_chaos_day(tmp_path, 6), "--seeds", "20",
                               "--workers", "2", "--out", str(out)) as proc:
        _wait_for_a_table(proc, out / "tasks" / "mixed-chaos-day" / "reference")
        children = _children(proc.pid)
        assert len(children) == 2
        with _reaped(children):
            proc.kill()
            proc.wait(timeout=60)  # not communicate(): a surviving worker holds the pipes
            deadline = time.monotonic() + 10
            while [p for p in children if _alive(p)]:
                assert time.monotonic() < deadline, "workers outlived their parent"
                time.sleep(0.05)


def test_ctrl_c_starts_no_seed_and_counts_the_seeds_on_disk(tmp_path):
    # Found by a user audit: "interrupted after 3 of 20 seeds", and the folder held 7. The
    # executor had moved workers+1 seeds into its queue, where cancelling cannot reach them,
    # and they all ran after the Ctrl-C; the message was printed before they finished.
    out = tmp_path / "run"
    tables = out / "tasks" / "mixed-chaos-day" / "seed-head"
    # Half a day: a seed (two seconds or more) still outlasts the moment between the first
    # table and the Ctrl-C many times over, so no seed finishes in it.
    with _sim_in_its_own_group(_mixed_chaos_day(tmp_path, 12), "-s", "seed-head", "--seeds",
                               "20", "--workers", "2", "--out", str(out), "--json") as proc:
        _wait_for_a_table(proc, tables)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    finished = _finished(err)
    assert len(list(tables.glob("*.parquet"))) == finished
    # The first table marks the first seed done; the other worker holds one more, and
    # there is a moment while the next is handed out: 1 + 2 at most, never the queue's 3 more.
    assert finished <= 3 + 1


def _dies_on_3(x: int) -> int:
    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would
    time.sleep(0.01)
    return x


@pytest.mark.timeout(60)
def test_a_worker_that_dies_breaks_the_run_without_a_hang():
    """The workers ignore SIGTERM, with which a broken pool (a worker killed by the OOM
    killer) ends the others; they must still stop, on the sentinels the pool sends next,
    rather than keep the run waiting for ever."""
    from concurrent.futures.process import BrokenProcessPool

    from unstuck.sim_cli import run_batches

    with pytest.raises(BrokenProcessPool):
        run_batches(list(range(50)), 2, False, fn=_dies_on_3)


def test_every_scheduler_option_says_the_same_of_a_stray_comma_and_of_a_wrong_name(tmp_path):
    # One rule (unstuck.cli.scheduler_problem) for sim, suite, gate, shrink, replay, serve.
    for args in (["sim", "scenarios/incident-601.yaml", "-s", "seed,,reference"],
                 ["suite", "scenarios/incident-601.yaml", "--out", str(tmp_path / "o"), "-s", ","]):
        r = run(app, args)
        assert r.exit_code == 2 and "an empty scheduler name (a stray comma?)" in r.output, r.output
    wrong = "is not a scheduler: choose one of seed, seed-proposal, seed-head, reference"
    for args, tail in ((["sim", "scenarios/incident-601.yaml", "-s", "fifo"], " or all"),
                       (["shrink", "scenarios/incident-601.yaml", "-s", "fifo"], ""),
                       (["replay", "incident-601", "--scheduler", "fifo"], "")):
        r = run(app, args)
        assert r.exit_code == 2 and f"'fifo' {wrong}{tail}\n" in r.output, r.output
    assert not (tmp_path / "o").exists()


def test_history_of_a_run_of_several_seeds_says_which_seed_it_holds(tmp_path):
    # Found by review: with several scenarios, schedulers or seeds, --history silently held
    # the first seed run alone, and nothing told the user which one it was.
    hist = tmp_path / "h.jsonl"
    r = run(app, ["sim", "scenarios/double-confirm.yaml", "scenarios/incident-601.yaml",
                  "-s", "seed,reference", "--seeds", "2", "--seed-start", "4", "--json",
                  "--history", str(hist), "--workers", "1"])
    assert r.exit_code == 1, r.output
    lines = [json.loads(x) for x in r.stdout.splitlines()]  # stdout stays JSON alone
    assert history.digest(history.read_jsonl(hist)) == lines[0]["digest"]
    assert (f"--history {hist}: the history of double-confirm under seed, seed 4, the first "
            "of 8 seed runs") in r.stderr
    assert "--seeds 1 --seed-start N --history FILE" in r.stderr
    one = run(app, ["sim", "scenarios/incident-601.yaml", "--seeds", "1", "--json",
                    "--history", str(hist), "--workers", "1"])
    assert one.exit_code == 0 and one.stderr == ""  # one seed run: nothing to tell apart


def test_the_table_and_its_commands_are_never_cut_to_fit_a_width(tmp_path):
    # Found by review: off a terminal the table was cut to 160 columns, so a long scenario
    # name and the invariant column read "hpa-scale-down-during-apply-…" and
    # "at_most_one_apply_per_confir…", and the shrink command of a long path broke in two.
    deep = tmp_path / ("a-rather-long-folder-name-for-scenarios" * 2)
    deep.mkdir()
    scen = deep / "double-confirm.yaml"
    scen.write_text(Path("scenarios/double-confirm.yaml").read_text())
    r = run(app, ["sim", str(scen), "scenarios/hpa-scale-down-during-apply-pending.yaml",
                  "-s", "seed", "--seeds", "1", "--workers", "1"])
    assert r.exit_code == 1, r.output
    assert "…" not in r.stdout
    assert "hpa-scale-down-during-apply-pending" in r.stdout
    assert "at_most_one_apply_per_confirmation 1" in r.stdout
    assert f"`unstuck shrink {scen} -s seed --seed N`" in r.stdout


def test_a_path_that_looks_like_markup_is_printed_as_it_is(tmp_path):
    # Found by review: the table and the examples are rich markup, and a folder named
    # "[bold]runs" lost its name in the shrink command, which then named no file.
    folder = tmp_path / "[bold]runs"
    folder.mkdir()
    scen = folder / "incident-601.yaml"  # a scenario's name is plain: letters, digits, -_.
    scen.write_text(Path("scenarios/incident-601.yaml").read_text())
    r = run(app, ["sim", str(scen), "-s", "seed", "--seeds", "1", "--workers", "1"])
    assert r.exit_code == 1, r.output
    assert f"`unstuck shrink {shlex.quote(str(scen))} -s seed --seed N`" in r.stdout
