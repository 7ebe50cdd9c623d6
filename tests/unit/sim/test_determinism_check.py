"""`unstuck sim --check-determinism`: every seed again in fresh interpreters, and what a
divergence looks like."""

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from scheduler.variants.seed import SeedPolicy
from unstuck.cli import app
from unstuck.determinism import hash_seed, other_hash_seed
from unstuck.sim_cli import run_batches

run = CliRunner().invoke


def test_a_deterministic_run_passes_the_check_and_keeps_its_own_exit_code():
    r = run(app, ["sim", "scenarios/incident-601.yaml", "-s", "seed,reference", "--seeds", "2",
                  "--json", "--check-determinism", "--workers", "2"])
    assert r.exit_code == 1, r.output  # the seed's stuck task, as without the check
    lines = [json.loads(x) for x in r.output.splitlines() if x.startswith("{")]
    assert [x["nondeterministic_seeds"] for x in lines] == [[], []]
    r = run(app, ["sim", "scenarios/incident-601.yaml", "--seeds", "3", "--check-determinism",
                  "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "deterministic: all 3 runs (scenario, scheduler, seed) wrote the same history again" in r.output


def test_without_the_check_json_has_no_determinism_key():
    r = run(app, ["sim", "scenarios/incident-601.yaml", "--seeds", "1", "--json", "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "nondeterministic_seeds" not in json.loads(r.output.splitlines()[0])


def test_an_order_that_differs_between_interpreters_is_caught_at_its_first_row(monkeypatch):
    """The first runs happen in this process (one worker), where the seed's monitor visits
    its waiting workspaces in reverse, as a walk over a set of strings might; the second
    runs, in fresh interpreters, visit them sorted. Exit 2, with the first row that differs."""
    sorted_order = SeedPolicy.monitor_workspaces
    monkeypatch.setattr(SeedPolicy, "monitor_workspaces", lambda self: sorted_order(self)[::-1])
    r = run(app, ["sim", "scenarios/double-confirm.yaml", "-s", "seed,reference", "--seeds", "2",
                  "--json", "--check-determinism", "--workers", "1"])
    assert r.exit_code == 2, r.output
    assert "error: not deterministic: 2 of 4 runs (scenario, scheduler, seed) wrote a different history" in r.output
    assert "double-confirm under seed, seed 0: digest" in r.output
    assert "double-confirm under seed, seed 1: digest" in r.output
    assert r.output.count("first difference at row") == 2
    assert "first run:  {" in r.output and "second run: {" in r.output
    assert "even between two runs with the same hash seed" not in r.output  # stable within one
    assert "unstuck sim SCENARIO -s SCHEDULER --seeds 1 --seed-start N --check-determinism." in r.output
    lines = [json.loads(x) for x in r.output.splitlines() if x.startswith("{")]
    assert {x["scheduler"]: x["nondeterministic_seeds"] for x in lines} == {
        "seed": [0, 1], "reference": []}


def _str_hash(text: str) -> int:
    return hash(text)


def test_the_second_runs_hash_strings_with_another_seed():
    assert other_hash_seed({}) == other_hash_seed({"PYTHONHASHSEED": "random"}) == "0"
    assert other_hash_seed({"PYTHONHASHSEED": "0"}) == "1"
    assert other_hash_seed({"PYTHONHASHSEED": "4294967295"}) == "0"
    before = os.environ.get("PYTHONHASHSEED")
    with hash_seed("7"):
        there = run_batches(["unstuck"], 1, False, fn=_str_hash, start="spawn")
    assert os.environ.get("PYTHONHASHSEED") == before
    expected = subprocess.run([sys.executable, "-c", "print(hash('unstuck'))"], check=True,
                              capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "7"})
    assert there == [int(expected.stdout)]


def test_the_suite_checks_determinism_too_and_still_writes_its_report(tmp_path, monkeypatch):
    r = run(app, ["suite", "scenarios/incident-601.yaml", "-s", "seed,reference", "--seeds", "2",
                  "--out", str(tmp_path / "ok"), "--workers", "2", "--check-determinism"])
    assert r.exit_code == 0, r.output
    assert "deterministic: all 4 runs (scenario, scheduler, seed) wrote the same history again" in r.output
    sorted_order = SeedPolicy.monitor_workspaces
    monkeypatch.setattr(SeedPolicy, "monitor_workspaces", lambda self: sorted_order(self)[::-1])
    r = run(app, ["suite", "scenarios/double-confirm.yaml", "-s", "seed", "--seeds", "1",
                  "--out", str(tmp_path / "leak"), "--workers", "1", "--check-determinism"])
    assert r.exit_code == 2, r.output
    assert "error: not deterministic: 1 of 1 runs" in r.output
    assert (tmp_path / "leak" / "index.html").exists()  # the report of what ran, to look into


def test_a_decision_taken_in_str_hash_order_is_caught(tmp_path):
    """A real leak, with the default forked workers: a sitecustomize module (on PYTHONPATH,
    so the CLI, its forked workers and the spawned interpreters all load it) makes the
    seed's monitor visit its waiting workspaces in the order of their str hashes. Nothing
    differs between the first and the second runs but the hash seed."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "from scheduler.variants.seed import SeedPolicy\n"
        "_sorted = SeedPolicy.monitor_workspaces\n"
        "SeedPolicy.monitor_workspaces = lambda self: sorted(_sorted(self), key=hash)\n")
    # Hash seeds 1 and 2 put ws-1..ws-4 in different orders (5 and 6, say, do not).
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONHASHSEED": "1"}
    r = subprocess.run([sys.executable, "-m", "unstuck.cli", "sim", "scenarios/double-confirm.yaml",
                        "-s", "seed", "--seeds", "3", "--check-determinism", "--json",
                        "--workers", "2"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    assert "runs (scenario, scheduler, seed) wrote a different history when run again in a " \
           "fresh interpreter (PYTHONHASHSEED=2)" in r.stderr
    assert "first difference at row" in r.stderr and "Traceback" not in r.stderr
