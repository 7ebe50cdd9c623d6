"""agent-partition: an agent cut off from the scheduler, both ways, that runs on.

Unlike a node loss its apply progresses and commits (the state backend stays reachable) while
its report waits; unlike an agent-disconnect the server hears no close and learns of the cut
only from the missing heartbeats. The reference settles such an apply from the state; the
seed records the committed apply as failed and keeps the workspace locked (F8/G8, reached
by a network fault alone). A run sent during the cut arrives when it heals.
"""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from sim import runner
from sim.config import FaultSpec
from unstuck import checker
from unstuck.scenario import ScenarioInvalid, advice, parse

from .worlds import AGENTS, EXACT, config


def _cut(target: str, at: float, heal_after: float | None):
    return config(faults=(FaultSpec("agent-partition", at=at, target=target, retry_s=1.0,
                                    heal_after=heal_after),),
                  duration_s=900.0, drain_s=1800.0)


def _rows(kind: str, rows: list[dict], **match) -> list[dict]:
    return [r for r in rows if r["kind"] == kind
            and all(r.get(k) == v or (r.get("data") or {}).get(k) == v for k, v in match.items())]


def test_the_reference_settles_a_cut_off_apply_from_the_state_before_the_heal():
    # The apply starts at 114 and commits at 174, inside the cut (120-320): its report waits.
    rows = runner.run(_cut("apply-runner", 120.0, 200.0), "reference", 0).rows
    (fault,) = _rows("fault", rows)
    (end,) = _rows("fault.end", rows)
    assert (fault["t"], end["t"], fault["data"]["type"]) == (120.0, 320.0, "agent-partition")
    (ok,) = _rows("exec.ok", rows, action="apply")
    assert fault["t"] < ok["t"] < end["t"] and ok["agent"] == fault["agent"]  # it ran on
    (applied,) = [r for r in rows if r["kind"] == "task.transition" and r["to_status"] == "applied"]
    assert applied["reason"].startswith("apply committed in the state"), applied
    assert ok["t"] <= applied["t"] < end["t"]  # read from the state, not from the held report
    assert checker.check(rows).ok


def test_the_seed_fails_the_apply_its_cut_off_agent_committed_and_keeps_the_lock():
    rows = runner.run(_cut("apply-runner", 120.0, 200.0), "seed", 0).rows
    assert _rows("exec.ok", rows, action="apply")
    (failed,) = [r for r in rows if r["kind"] == "task.transition" and r["to_status"] == "failed"]
    assert "disconnected unexpectedly" in failed["reason"]
    counts = {k: n for k, n in checker.check(rows).counts().items() if n}
    assert counts == {"no_unrecorded_apply": 1, "no_wedged_workspace": 1}


def test_a_run_sent_during_the_cut_arrives_when_it_heals():
    # The reserved pod's agent is cut off at 100 for 30 s; the user confirms at 114, before
    # the reference can have missed a heartbeat for long, so the apply is sent to it: the
    # message waits in the network, and the run starts, on that agent, at the heal.
    rows = runner.run(_cut("reserved-holder", 100.0, 30.0), "reference", 0).rows
    (fault,) = _rows("fault", rows)
    (sent,) = _rows("dispatch", rows, action="apply")
    (began,) = _rows("exec.invoke", rows, action="apply")
    assert (sent["t"], began["t"]) == (114.0, 130.0)
    assert sent["agent"] == began["agent"] == fault["agent"]
    assert [r["to_status"] for r in rows if r["kind"] == "task.transition"][-1] == "applied"
    assert checker.check(rows).ok


def test_a_cut_off_agent_beats_no_more_until_it_heals():
    # Without a heal it is never heard again: the reference gives up on it (its pod is
    # replaced) and the plan_and_apply still ends applied, on another pod.
    rows = runner.run(_cut("reserved-holder", 100.0, None), "reference", 0).rows
    (fault,) = _rows("fault", rows)
    assert not _rows("fault.end", rows)
    applies = _rows("exec.invoke", rows, action="apply")
    assert applies and all(r["agent"] != fault["agent"] for r in applies)
    assert [r["to_status"] for r in rows if r["kind"] == "task.transition"][-1] == "applied"
    assert checker.check(rows).ok


SCENARIO = """\
description: a cut
duration_s: 600
drain_s: 1800
workload: [{names: [ws-1], at: [5]}]
faults: [{type: agent-partition, at: 100, target: apply-runner, heal_after: %s}]
"""


def _parse(text: str):
    return parse(yaml.safe_load(text), "cut.yaml")


def test_the_scenario_takes_it_and_says_when_its_heal_falls_after_the_run():
    s = _parse(SCENARIO % "60")
    (spec,) = s.world().faults
    assert (spec.type, spec.target, spec.heal_after) == ("agent-partition", "apply-runner", 60.0)
    (warning,) = advice(_parse(SCENARIO % "5000"), "cut.yaml")
    assert "faults[0].heal_after" in warning and "the agent is never heard again" in warning
    with pytest.raises(ScenarioInvalid) as info:
        _parse((SCENARIO % "60").replace("apply-runner", "the-apply"))
    assert "faults[0].target" in str(info.value)


def test_a_server_that_closes_silent_sessions_hears_the_cut_agent_gone_that_long_after():
    # unstuck's live service closes a long-poll session that stopped polling (`--poll-timeout`
    # plus `--agent-stale`); the seed's WebSocket stays open, and only the heartbeats' silence
    # gives the cut away. `agents.silent_close_s` describes the first to the model.
    cut = FaultSpec("agent-partition", at=40.0, target="random", heal_after=200.0)

    def gone(agents) -> list[tuple[float, str]]:
        rows = runner.run(config(agents=agents, faults=(cut,)), "seed-head", 0).rows
        return [(r["t"], r["reason"]) for r in rows if r["kind"] == "agent.disconnected"]

    closing = dataclasses.replace(AGENTS, silent_close_s=3.0)
    assert gone(closing)[0] == (43.0 + EXACT.watch_latency_s, "disconnected")
    # Left out, the server learns of it only from the heartbeats' timeout, much later.
    assert gone(AGENTS)[0][0] > 100.0


def test_a_frozen_agent_on_a_lost_node_is_closed_as_silent_too():
    lost = FaultSpec("node-loss", at=40.0, target="random")
    agents = dataclasses.replace(AGENTS, silent_close_s=3.0)
    one_node = dataclasses.replace(EXACT, nodes=1)  # the lost node is the agent's
    rows = runner.run(config(agents=agents, cluster=one_node, faults=(lost,)), "seed-head", 0).rows
    gone = [r["t"] for r in rows if r["kind"] == "agent.disconnected"]
    assert gone and gone[0] == 43.0 + EXACT.watch_latency_s
