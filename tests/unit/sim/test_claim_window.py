"""The window between an apply's state lock and its claim, in the simulated world.

Our agent takes the workspace's state lock before it claims the apply, as the live agent
does (scheduler/agent/runs.py). While a claim waits (the store fails its write: 503) the run
holds the lock under a renewed lease and its heartbeat lists the task, so the scheduler, were
it to read the state, finds the apply in doubt rather than never begun. Cut off from the
scheduler, the agent stops renewing that lease after `claims.CLAIM_HOLD_LEASES` leases, and it
lapses one lease later: the apply then reads as never begun and goes elsewhere; the late
claim is refused. Until session 37 the simulated agent claimed first and locked after, in one
instant, so none of this could happen in a simulated day.

The store failures are real ones (`fail_next_writes`), aimed at the claims alone so that the
dispatch and the confirm before them are stored. A claim in flight (`agents.claim_s`) opens the
same window without a store outage.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from scheduler import claims
from scheduler import events as ev
from scheduler.ports import ApplyOutcome
from sim.config import FaultSpec, fixed
from sim.world import World
from unstuck import checker
from unstuck.scenario import parse

from .worlds import AGENTS, config

LEASE_S = 30.0  # the reference's `agent_state_lease_s`


def _world(until: float, *faults: FaultSpec) -> World:
    """The small world (plan 34-94, confirm at 114.1, the apply sent at once) in which every
    claim an agent sends before `until` meets a store that fails its write."""
    w = World(config(faults=faults, duration_s=900.0, drain_s=1800.0), "reference", 0)
    send = w.send

    def send_failing_claims(event: Any) -> ev.Outcome:
        if isinstance(event, ev.RunClaimed) and w.kernel.now < until:
            w.store.fail_next_writes(1)
        return send(event)

    w.send = send_failing_claims  # type: ignore[method-assign]
    return w


def _rows(kind: str, rows: list[dict], **match: Any) -> list[dict]:
    return [r for r in rows if r["kind"] == kind
            and all(r.get(k) == v or (r.get("data") or {}).get(k) == v for k, v in match.items())]


def _cut(heal_after: float) -> FaultSpec:
    """The apply's agent cut off at 120, while its claim waits."""
    return FaultSpec("agent-partition", at=120.0, target="apply-runner", retry_s=1.0,
                     heal_after=heal_after)


def _ends(rows: list[dict], status: str, *, applies: int) -> None:
    """The task ends `status` with `applies` applies committed, and the checker passes."""
    assert len(_rows("exec.ok", rows, action="apply")) == applies
    assert [r["to_status"] for r in rows if r["kind"] == "task.transition"][-1] == status
    assert checker.check(rows).ok


def _probe(w: World, at: float, seen: dict[str, Any]) -> None:
    """At `at`, what the scheduler would read: the apply's outcome in the state, and what
    the agent holding the lock lists in its heartbeat."""
    def look() -> None:
        (lock,) = w.state.lock.values()
        seen["outcome"] = w.state.apply_outcome("ws-1", *lock)
        seen["holder"] = w.state.holder["ws-1"].agent_id
        seen["lists"] = w.state.holder["ws-1"].current_tasks()
    w.kernel.at(at, look)


def test_a_claim_the_store_fails_holds_the_state_lock_until_it_is_stored():
    w = _world(150.0)
    seen: dict[str, Any] = {}
    _probe(w, 130.0, seen)
    rows = w.run()
    (sent,) = _rows("dispatch", rows, action="apply")
    failed = _rows("store.write_failed", rows, op="claim")
    assert failed and failed[0]["t"] == sent["t"] == 114.1  # the claim, as the run arrives
    assert max(r["t"] for r in failed) < 150.0
    # Mid-wait the lock is the run's, under a live lease: in doubt, not "never begun".
    assert seen == {"outcome": ApplyOutcome.IN_DOUBT, "holder": sent["agent"], "lists": (1,)}
    (began,) = _rows("exec.invoke", rows, action="apply")
    assert began["agent"] == sent["agent"] and 150.0 <= began["t"] <= 152.0  # 2 s back-off cap
    assert began["data"]["fence"] == sent["data"]["fence"]
    _ends(rows, "applied", applies=1)


def test_an_agent_cut_off_while_its_claim_waits_lets_the_lease_lapse_and_the_apply_goes_elsewhere():
    # The claim fails from 114.1; the agent is cut off at 120, its claim still waiting, until
    # 520. Its lease lapses at 120 + 5 leases = 270: until then the scheduler reads the apply
    # in doubt and waits; after it, never begun, and sends it to another pod (and gives the
    # silent agent's pod up). The cut-off agent never begins it.
    w = _world(125.0, _cut(400.0))
    early: dict[str, Any] = {}
    _probe(w, 260.0, early)
    rows = w.run()
    lapse = 120.0 + claims.lapses_after_s(LEASE_S)
    assert lapse == 270.0
    (fault,) = _rows("fault", rows)
    (first, *later) = _rows("dispatch", rows, action="apply")
    assert fault["agent"] == first["agent"] and fault["t"] == 120.0
    assert early["outcome"] is ApplyOutcome.IN_DOUBT and early["holder"] == first["agent"]
    back = [r for r in rows if r["kind"] == "task.transition" and r["task"] == 1
            and r["reason"].startswith("apply never started")]
    assert len(back) == 1 and lapse < back[0]["t"] < 520.0, back
    # Applied once, on another pod; the cut-off agent never began it.
    (began,) = _rows("exec.invoke", rows, action="apply")
    assert began["agent"] != fault["agent"] and began["t"] > back[0]["t"]
    assert [r["agent"] for r in later] == [began["agent"]]
    _ends(rows, "applied", applies=1)


def test_a_claim_answered_after_its_lease_lapsed_fails_the_apply_it_never_began():
    # The price of letting the lease lapse (docs/design.md): the same cut, healed at 272,
    # after the lapse (270) and before the scheduler gave the apply up. The claim is stored,
    # but the run has lost its lock: it fails at once, without touching the state, and the
    # user plans again.
    rows = _world(125.0, _cut(152.0)).run()
    (began,) = _rows("exec.invoke", rows, action="apply")
    (lost,) = _rows("exec.fail", rows, action="apply")
    assert began["t"] == lost["t"] == 272.0 and began["agent"] == lost["agent"]
    assert lost["reason"] == "state lock of ws-1 lost: its lease lapsed while the claim waited"
    _ends(rows, "failed", applies=0)


def test_a_claim_in_flight_opens_the_window_to_a_node_loss():
    # `agents.claim_s: 5`: every claim lands 5 s after its run arrived. The plan begins 5 s
    # late, so the confirm comes at 119 and the apply is sent then; its node is lost at 120,
    # its lock taken, its claim still in flight. The frozen agent's lease lapses at 150; the
    # scheduler, which hears the agent silent, finds the apply in doubt until then, and never
    # begun after it, and sends it to the new pod. The woken agent's claim is refused.
    lost = FaultSpec("node-loss", at=120.0, target="apply-runner", retry_s=1.0, heal_after=200.0)
    w = World(config(agents=dataclasses.replace(AGENTS, claim=fixed(5.0)), faults=(lost,),
                     duration_s=900.0, drain_s=1800.0), "reference", 0)
    mid: dict[str, Any] = {}
    _probe(w, 140.0, mid)
    rows = w.run()
    (first, second) = _rows("dispatch", rows, action="apply")
    (fault,) = _rows("fault", rows)
    assert (first["t"], fault["t"]) == (119.0, 120.0) and fault["pod"] == first["pod"]
    assert mid["outcome"] is ApplyOutcome.IN_DOUBT and mid["holder"] == first["agent"]
    (began,) = _rows("exec.invoke", rows, action="apply")
    assert began["agent"] == second["agent"] != first["agent"]
    assert began["t"] == second["t"] + 5.0  # its own claim, in flight too
    _ends(rows, "applied", applies=1)


def test_claim_s_is_a_scenario_field_and_defaults_to_claiming_at_once():
    text = """
duration_s: 600
workload: [{count: 1, at: [5]}]
agents: %s
"""
    assert parse(yaml.safe_load(text % "{}"), "c.yaml").world().agents.claim == fixed(0.0)
    got = parse(yaml.safe_load(text % "{claim_s: {kind: uniform, min: 0.1, max: 2}}"), "c.yaml")
    claim = got.world().agents.claim
    assert (claim.kind, claim.a, claim.b) == ("uniform", 0.1, 2.0)
