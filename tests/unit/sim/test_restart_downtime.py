"""A scheduler restart that takes time (`down_s`): between the kill and the new process's
boot nothing is served. A live restart takes about a second, and the model without it
recovered the seed variants' mid-apply restart in 0 s (docs/conformance.md)."""

from __future__ import annotations

import pytest

from sim.config import Dist, FaultSpec, UserConfig, fixed
from sim.runner import run
from unstuck.scenario import ScenarioInvalid, parse

from .worlds import config

# One workspace: the agent connects at 34 s, the plan ends at 94 s, the user confirms at
# 114 s and the apply runs from then to 174 s.
APPLY_ENDS = 174.0


def _rows(*faults: FaultSpec, variant: str = "reference", **kw) -> list[dict]:
    return run(config(faults=faults, **kw), variant, 0).rows


def _at(rows: list[dict], kind: str, **match) -> list[float]:
    return [r["t"] for r in rows if r["kind"] == kind
            and all(r.get(k) == v or (r.get("data") or {}).get(k) == v for k, v in match.items())]


def test_nothing_is_served_until_the_new_process_boots_and_the_apply_report_lands_after():
    rows = _rows(FaultSpec("scheduler-restart", at=170.0, down_s=fixed(10.0)))
    fault = next(r for r in rows if r["kind"] == "fault")
    assert fault["t"] == 170.0 and fault["data"]["down_s"] == 10.0
    assert "serves after 10 s" in fault["reason"]
    assert _at(rows, "scheduler.restart") == [0.0, 180.0]
    # The gap: the scheduler wrote nothing, and the agent's apply report (at 174 s) was
    # refused, retried, and landed once the new process served.
    assert not [r for r in rows if r["source"] == "scheduler" and 170.0 < r["t"] < 180.0]
    applied = _at(rows, "task.transition", to_status="applied")
    assert len(applied) == 1 and applied[0] > 180.0
    assert min(_at(rows, "agent.connected")[1:]) > 180.0
    assert _at(rows, "exec.ok", action="apply") == [APPLY_ENDS]


def test_without_down_s_the_restart_is_at_once_as_before():
    rows = _rows(FaultSpec("scheduler-restart", at=170.0))
    fault = next(r for r in rows if r["kind"] == "fault")
    assert fault["reason"] == "scheduler process restarted" and "down_s" not in fault["data"]
    assert _at(rows, "scheduler.restart") == [0.0, 170.0]


def test_the_seed_fails_the_running_apply_when_the_new_process_boots_not_at_the_kill():
    rows = _rows(FaultSpec("scheduler-restart", at=150.0, down_s=fixed(3.0)), variant="seed")
    failed = [r for r in rows if r["kind"] == "task.transition" and r["to_status"] == "failed"]
    assert [(r["t"], r["reason"]) for r in failed][:1] == [(153.0, "Task interrupted by server restart")]


def test_a_confirm_in_the_gap_is_refused_and_lands_when_the_user_clicks_again():
    users = UserConfig(confirm=fixed(20.0), click_retries=2, click_retry=fixed(4.0))
    rows = _rows(FaultSpec("scheduler-restart", at=110.0, down_s=fixed(6.0)), users=users)
    clicks = [(r["t"], (r["data"] or {}).get("retry")) for r in rows
              if r["kind"] == "user" and r["data"]["action"] == "confirm"]
    assert clicks == [(114.0, None), (118.0, 1)]
    assert _at(rows, "task.confirmed") == [118.0]
    # Without retries the click in the gap is lost, as a refused request is.
    once = _rows(FaultSpec("scheduler-restart", at=110.0, down_s=fixed(6.0)))
    assert _at(once, "task.confirmed") == []


def test_a_second_kill_while_the_first_process_starts_pushes_the_boot_back():
    rows = _rows(FaultSpec("scheduler-restart", at=100.0, down_s=fixed(5.0)),
                 FaultSpec("scheduler-restart", at=103.0, down_s=fixed(5.0)))
    assert _at(rows, "scheduler.restart") == [0.0, 108.0]


def test_a_distribution_draws_each_seed_its_own_gap_the_same_every_time():
    spec = FaultSpec("scheduler-restart", at=100.0, down_s=Dist("uniform", 1.0, 3.0))
    boots = {seed: [r["t"] for r in run(config(faults=(spec,)), "seed", seed).rows
                    if r["kind"] == "scheduler.restart"][1] for seed in range(6)}
    assert all(101.0 <= t <= 103.0 for t in boots.values()) and len(set(boots.values())) == 6
    assert [r["t"] for r in run(config(faults=(spec,)), "seed", 4).rows
            if r["kind"] == "scheduler.restart"][1] == boots[4]


def test_the_scenario_file_takes_seconds_or_a_distribution_and_names_a_bad_one():
    ok = {"duration_s": 600, "workload": [{"count": 1, "at": [5]}]}

    def fault(down):
        return {**ok, "faults": [{"type": "scheduler-restart", "at": 5, "down_s": down}]}

    assert parse(fault(1.5), "x.yaml").world().faults[0].down_s == 1.5
    uniform = parse(fault({"kind": "uniform", "min": 1, "max": 3}), "x.yaml").world().faults[0]
    assert (uniform.down_s.kind, uniform.down_s.a, uniform.down_s.b) == ("uniform", 1.0, 3.0)
    assert parse(ok | {"faults": [{"type": "scheduler-restart", "at": 5}]},
                 "x.yaml").world().faults[0].down_s is None
    with pytest.raises(ScenarioInvalid) as e:
        parse(fault(-1), "x.yaml")
    assert any(p.startswith("x.yaml: faults[0].down_s") for p in e.value.problems), e.value.problems
