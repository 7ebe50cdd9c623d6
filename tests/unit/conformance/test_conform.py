"""`unstuck conform`: a run against simulated seeds of its scenario (unstuck/conformance.py).

The observed runs here are simulated seeds (a live run's folder has the same tables; the
slow chaos tests conform real live runs). Drift is made the way it happens: the model's
scenario describes the run wrongly (a fault it leaves out, agents slower than the run's)."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from unstuck import conformance, results
from unstuck.cli import app

# A plan waits for its confirm; the pod holding its reservation is killed at once; the user
# confirms 3 s later. The seed leaves it in apply_pending (incident 601), the reference
# applies it elsewhere.
SCENARIO = """\
name: kill-the-reserved-pod
duration_s: 80
drain_s: 30
bounds: {apply_pending_s: 30}
agents: {connect_s: 8, plan_s: 2, apply_s: 2, has_changes: 1.0}
users: {confirm_s: 3}
pools:
  - {id: pool-1, manager: deployment, min_replicas: 1, max_replicas: 2}
workload:
  - {count: 1, at: [15]}
faults:
  - {type: pod-kill, at: 15, retry_s: 0.5, target: reserved-holder, mode: forced}
"""


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def simulate(tmp_path, scenario, scheduler: str, seeds: int, seed_start: int = 0, out: str = "run"):
    folder = tmp_path / out
    r = CliRunner().invoke(app, ["sim", str(scenario), "-s", scheduler, "--seeds", str(seeds),
                                 "--seed-start", str(seed_start), "--out", str(folder), "--workers", "1"])
    assert r.exit_code in (0, 1), r.output
    return folder


def conform(*args: str):
    return CliRunner().invoke(app, ["conform", *args, "--workers", "1"])


@pytest.mark.parametrize("scheduler", ["seed", "reference"])
def test_a_run_conforms_to_a_model_of_its_own_scenario(tmp_path, scheduler):
    scenario = write(tmp_path, "s.yaml", SCENARIO)
    run = simulate(tmp_path, scenario, scheduler, 1, seed_start=1000)
    r = conform(str(run), "--seeds", "60", "--json")
    assert r.exit_code == 0, r.output
    (report,) = [json.loads(line) for line in r.output.splitlines()]
    assert (report["scenario"], report["scheduler"], report["ok"], report["model_seeds"]) == (
        "kill-the-reserved-pod", scheduler, True, 60)
    (checked,) = report["runs"]
    verdict = checked["outcome"]["verdict"]
    if scheduler == "seed":
        assert "apply_pending_bound" in verdict and checked["outcome"]["tasks"] == ["apply_pending (stuck)"]
    else:
        assert verdict == [] and checked["outcome"]["tasks"] == ["applied"]
        (recovery,) = [x for x in checked["latencies"] if x["metric"] == "recovery (pod-kill)"]
        assert recovery["low"] <= recovery["observed"] <= recovery["high"] and not recovery["drift"]
    assert checked["outcome"]["hits"][0].startswith("pod-kill on apply_pending, unconfirmed: ")
    assert checked["share"] >= conformance.MIN_SHARE


def test_an_outcome_the_model_never_gives_is_drift(tmp_path):
    # The model's description of the run leaves the kill out: its seeds all apply, and the
    # run's stuck task is an outcome it never gives.
    scenario = write(tmp_path, "s.yaml", SCENARIO)
    run = simulate(tmp_path, scenario, "seed", 1, seed_start=1000)
    unfaulted = write(tmp_path, "model.yaml", SCENARIO.split("faults:")[0])
    r = conform(str(run), "--scenario", str(unfaulted), "--seeds", "40")
    assert r.exit_code == 1, r.output
    assert "kill-the-reserved-pod under seed: drift (model: 40 simulated seeds)" in r.output
    assert "seed 1000: its outcome is the model's in 0.0% of seeds" in r.output
    assert "◀ the run" in r.output


def test_a_latency_outside_the_models_band_is_drift(tmp_path):
    # The model's agents connect 20 s after their pod starts, the run's 8 s: the reference
    # applies in both, within the bound, but the run recovers far sooner than the model says.
    scenario = write(tmp_path, "s.yaml", SCENARIO)
    run = simulate(tmp_path, scenario, "reference", 1, seed_start=1000)
    slow = write(tmp_path, "model.yaml", SCENARIO.replace("connect_s: 8", "connect_s: 20")
                 .replace("at: [15]", "at: [30]").replace("at: 15,", "at: 30,")
                 .replace("duration_s: 80", "duration_s: 120"))
    model = simulate(tmp_path, slow, "reference", 40, out="model")
    r = conform(str(run), "--sim", str(model), "--json")
    assert r.exit_code == 1, r.output
    (report,) = [json.loads(line) for line in r.output.splitlines()]
    (checked,) = report["runs"]
    assert not checked["outcome_drift"] and checked["share"] > 0.5
    (recovery,) = [x for x in checked["latencies"] if x["metric"] == "recovery (pod-kill)"]
    assert recovery["drift"] and recovery["observed"] < recovery["low"] - 1.0 and recovery["rank"] == 0.0
    # A slack as wide as the gap lets it pass.
    r = conform(str(run), "--sim", str(model), "--slack", "60")
    assert r.exit_code == 0, r.output


def test_the_latency_band_is_the_models_central_quantiles_widened_by_the_slack():
    model = [float(x) for x in range(1, 101)]  # 1 .. 100
    inside = conformance.check_latency("recovery (pod-kill)", 50.0, model, alpha=0.1, slack_s=0.0)
    assert (inside.low, inside.median, inside.high, inside.rank, inside.drift) == (
        pytest.approx(5.95), 50.5, pytest.approx(95.05), 0.495, False)
    above = conformance.check_latency("x", 96.0, model, alpha=0.1, slack_s=0.0)
    assert above.drift
    assert not conformance.check_latency("x", 96.0, model, alpha=0.1, slack_s=1.0).drift
    never = conformance.check_latency("x", 3.0, [], alpha=0.1, slack_s=1.0)
    assert never.drift and never.model_n == 0 and math.isnan(never.low)


def test_bad_input_is_named_and_exits_2(tmp_path):
    scenario = write(tmp_path, "s.yaml", SCENARIO)
    run = simulate(tmp_path, scenario, "seed", 1)
    r = conform(str(tmp_path / "nowhere"))
    assert r.exit_code == 2 and "no such directory" in r.output, r.output
    other = write(tmp_path, "other.yaml", SCENARIO.replace("name: kill-the-reserved-pod", "name: another"))
    r = conform(str(run), "--scenario", str(other))
    assert r.exit_code == 2, r.output
    assert "is scenario 'another'" in r.output and "ran 'kill-the-reserved-pod'" in r.output
    model = simulate(tmp_path, scenario, "reference", 2, out="model")
    r = conform(str(run), "--sim", str(model))
    assert r.exit_code == 2, r.output
    assert "holds no seed of kill-the-reserved-pod under seed" in r.output
    r = conform(str(run), "--seeds", "0", "--min-share", "2", "--sim", str(model), "--scenario", str(scenario))
    assert r.exit_code == 2
    for said in ("--scenario and --sim: give one", "--seeds 0", "--min-share 2"):
        assert said in r.output, r.output
    r = conform(str(run), "--seed-start", str(2**64 - 1), "--seeds", "2", "--alpha", "1", "--slack", "-1")
    assert r.exit_code == 2
    for said in ("--seed-start 18446744073709551615: the seeds must stay below 2**64", "--alpha 1:",
                 "--slack -1:"):
        assert said in r.output, r.output
    assert "Traceback" not in r.output


def test_the_outcomes_of_a_folder_are_what_its_tables_say(tmp_path):
    scenario = write(tmp_path, "s.yaml", SCENARIO)
    folder = simulate(tmp_path, scenario, "seed", 3)
    res = results.load(folder)
    got = conformance.outcomes(res, "kill-the-reserved-pod", "seed")
    assert sorted(got) == [0, 1, 2]
    for seed, outcome in got.items():
        tasks = res.tasks[res.tasks.seed == seed]
        assert len(outcome.tasks) == len(tasks)
        broken = set(res.violations[res.violations.seed == seed].invariant)
        assert outcome.verdict == tuple(sorted(broken))
