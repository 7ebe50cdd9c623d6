"""The whole world: the incident in miniature, the history contract, determinism."""

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest

from scheduler import events as ev
from scheduler import history
from scheduler.model import TaskStatus
from scheduler.settings import ReferencePolicy, Settings
from sim import runner
from sim.config import FaultSpec, PoolConfig, UserConfig, WorkspaceGroup
from sim.world import World
from unstuck import checker
from unstuck.scenario import load

from .worlds import AGENTS, EXACT, booted, config, fixed, incident, replace


def test_incident_601_in_miniature_seed_is_stuck_and_reference_applies():
    seed_world = World(incident(), "seed", 0)
    rows = seed_world.run()
    verdict = checker.check(rows)
    assert verdict.stuck_tasks == (1,)
    assert seed_world.store.get_task(1).status is TaskStatus.APPLY_PENDING
    [fault] = [r for r in rows if r["kind"] == "fault"]
    # The agent connects at 34; the seed's 15 s retry (from 20) dispatches at 35 + 0.2 s of
    # dispatch latency; the plan ends at 95.2; the kill, retried every 1 s from 10, hits at 96.
    assert (fault["t"], fault["task"], fault["data"]["type"]) == (96.0, 1, "pod-kill")
    ref_world = World(incident(), "reference", 0)
    assert checker.check(ref_world.run()).ok
    assert ref_world.store.get_task(1).status is TaskStatus.APPLIED


def test_the_history_uses_the_documented_world_kinds_and_ends_with_run_end():
    rows = World(incident(), "seed", 0).run()
    kinds = {r["kind"] for r in rows}
    assert {"fault", "pod.added", "pod.removed", "exec.invoke", "exec.ok",
            "user"} <= kinds
    end = rows[-1]
    assert end["kind"] == "run.end" and end["data"]["drain_s"] == 1800.0
    assert end["data"]["bound_s"] == 600.0 and end["data"]["faults_missed"] == 0
    assert [r["seq"] for r in rows] == list(range(len(rows)))


def _digest(args):
    path, scheduler, seed, perturb = args
    out = runner.run(load(path).world(), scheduler, seed, perturb_ties=perturb)
    return history.digest(out.rows)


CASES = [("scenarios/mixed-chaos-day.yaml", "reference", 3, False),
         ("scenarios/node-loss-mid-apply.yaml", "seed", 1, False),
         ("scenarios/scheduler-restart.yaml", "seed-head", 2, True)]


def test_same_scenario_scheduler_and_seed_give_byte_identical_histories_across_processes():
    # mixed-chaos-day is shortened to keep the test fast; every fault type still fires.
    here = [_digest(c) for c in CASES[1:]] + [None]
    # "spawn" starts fresh interpreters with their own str hash seeds: nothing may depend on it.
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        there = list(pool.map(_digest, CASES[1:]))
    assert here[:-1] == there
    assert _digest(CASES[1]) == here[0]


def test_a_day_with_every_fault_is_reproducible_and_seeds_differ():
    import dataclasses

    cfg = dataclasses.replace(load("scenarios/mixed-chaos-day.yaml").world(), duration_s=7200.0)
    a = runner.run(cfg, "reference", 3)
    b = runner.run(cfg, "reference", 3)
    c = runner.run(cfg, "reference", 4)
    assert history.canonical_bytes(a.rows) == history.canonical_bytes(b.rows)
    assert history.digest(a.rows) != history.digest(c.rows)


def test_perturbed_ties_are_reproducible_and_reorder_same_time_events():
    cfg = load("scenarios/scheduler-restart.yaml").world()
    p1 = runner.run(cfg, "seed", 5, perturb_ties=True)
    p2 = runner.run(cfg, "seed", 5, perturb_ties=True)
    plain = runner.run(cfg, "seed", 5)
    assert history.digest(p1.rows) == history.digest(p2.rows)
    assert history.digest(p1.rows) != history.digest(plain.rows)


def test_releasing_the_history_while_serialising_gives_the_same_rows():
    kept, released = World(incident(), "seed", 0), World(incident(), "seed", 0)
    rows = kept.run()
    assert released.run(release=True) == rows
    assert len(released.history) == 0 and len(kept.history) == len(rows)


def _apply_report_fates(scheduler: str, seeds: range) -> list[tuple[int, str | None]]:
    """(failed writes of the 'apply finished' report, final status) per task whose apply
    committed, over `seeds` of db-write-failures."""
    cfg = load("scenarios/db-write-failures.yaml").world()
    fates = []
    for seed in seeds:
        rows = runner.run(cfg, scheduler, seed).rows
        committed = {r["task"] for r in rows
                     if r["kind"] == "exec.ok" and r["data"].get("action") == "apply"}
        failed_writes = {t: 0 for t in committed}
        final: dict[int, str | None] = {t: None for t in committed}
        for r in rows:
            if r["task"] in committed:
                if r["kind"] == "store.write_failed" and r["data"].get("op") == "apply finished":
                    failed_writes[r["task"]] += 1
                elif r["kind"] == "task.transition":
                    final[r["task"]] = r["to_status"]
        fates += [(failed_writes[t], final[t]) for t in sorted(committed)]
    return fates


def test_our_agent_delivers_an_apply_report_through_an_outage_and_the_seeds_drops_it():
    # Ours retries until the scheduler takes the report, listing the task in its heartbeats
    # meanwhile, so the task is never given up as "alive but not running the task"
    # (scheduler/reports.py). The seed's agent tries 4 times in all, then drops the report.
    ours = _apply_report_fates("reference", range(20))
    assert max(n for n, _ in ours) > 4  # the outage outlasted the seed's retries...
    assert {final for _, final in ours} == {"applied"}  # ...and every commit was recorded
    seeds = _apply_report_fates("seed-head", range(20))
    assert max(n for n, _ in seeds) == 4
    assert {final for n, final in seeds if n == 4} - {"applied"}  # dropped: never applied


def test_a_paused_agent_sends_no_report_retry_until_its_node_heals():
    # The apply ends at 174 inside a 200 s outage of every store write; the agent's node is
    # lost from 180 to 200. A frozen process sends nothing: its retries stop and resume at
    # the heal, and the report lands when the outage ends.
    cfg = replace(config(cluster=replace(EXACT, nodes=1)),
                  faults=(FaultSpec("db-write-failure", at=170.0, duration_s=200.0, rate=1.0),
                          FaultSpec("node-loss", at=180.0, heal_after=20.0)))
    rows = World(cfg, "reference", 0).run()
    tries = [r["t"] for r in rows
             if r["kind"] == "store.write_failed" and r["data"].get("op") == "apply finished"]
    assert tries[0] == 174.0 and tries[-1] < 370.0
    assert [t for t in tries if 180.0 <= t < 200.0] == []
    assert any(200.0 <= t < 202.5 for t in tries)  # the held retry goes out at the heal
    [applied] = [r for r in rows if r["kind"] == "task.transition" and r["to_status"] == "applied"]
    assert applied["t"] == 370.0
    assert checker.check(rows).ok


@pytest.mark.parametrize("variant,heal_after,end,final", [
    ("reference", 20.0, "exec.ok", "applied"),  # frozen 20 s: the lease (30 s) held
    ("reference", 45.0, "exec.fail", "failed"),  # frozen 45 s: the lease ran out
    ("seed-head", 45.0, "exec.ok", "applied"),  # the seed's lock has no lease
])
def test_an_apply_frozen_past_its_lease_cannot_commit_when_it_wakes(variant, heal_after, end, final):
    # The apply runs 114..174; its node is lost at 130. Our agent holds the state lock under
    # a lease it renews while it works, as the live backend does; on waking past it, its
    # first renewal fails and it stops before the commit (LockLost), even though nobody took
    # the lock meanwhile.
    cfg = replace(config(cluster=replace(EXACT, nodes=1)),
                  faults=(FaultSpec("node-loss", at=130.0, heal_after=heal_after),))
    rows = World(cfg, variant, 0).run()
    [invoke, done] = [r for r in rows if r["kind"].startswith("exec.")
                      and r["data"].get("action") == "apply"]
    # A commit comes 60 s of work plus the freeze after the start; a lost lease at the wake.
    woke = 130.0 + heal_after
    assert (done["kind"], done["t"]) == (end, round(invoke["t"] + 60.0 + heal_after, 6)
                                         if end == "exec.ok" else woke)
    if end == "exec.fail":
        assert "lease expired while the agent was frozen" in done["reason"]
    assert [r["to_status"] for r in rows if r["kind"] == "task.transition"][-1] == final
    assert checker.check(rows).ok


def test_the_next_apply_waits_out_the_holders_lease_instead_of_being_refused():
    # Task 1's apply (40..150) is on a pod deleted at 105 (30 s grace), whose agent is killed
    # at 135 with the apply still running; the state shows the run holding its lock under a
    # live lease, so the reference waits, until the run timeout (100 s here) gives it up at
    # 145 (outcome unknown). Task 2 is created at 146. Until session 17 it was planned at
    # once, and its apply at 152 was refused by task 1's lease (to 165): a confirmed apply
    # failed. Now its plan waits while the given-up apply may yet commit (the state says in
    # doubt), and then it plans, applies and commits.
    cfg = config(agents=replace(AGENTS, plan=fixed(5.0), apply=fixed(110.0)),
                 users=UserConfig(confirm=fixed(1.0)),
                 workload=(WorkspaceGroup(names=("ws-1",), at=(5.0, 146.0)),),
                 faults=(FaultSpec("pod-kill", at=105.0, target="apply-runner", mode="graceful"),))
    settings = Settings(reference=ReferencePolicy(run_timeout_s=100.0))
    rows = World(cfg, "reference", 0, settings=settings).run()
    applies = [(r["kind"], r["task"], r["t"]) for r in rows
               if r["kind"].startswith("exec.") and r["data"].get("action") == "apply"]
    assert applies == [("exec.invoke", 1, 40.0), ("exec.info", 1, 135.0),
                       ("exec.invoke", 2, 176.0), ("exec.ok", 2, 286.0)]
    [plan2] = [r for r in rows if r["kind"] == "exec.invoke" and r["task"] == 2
               and r["data"]["action"] == "plan"]
    assert plan2["t"] > 165.0  # after task 1's lease ran out, not at 146
    assert checker.check(rows).ok


def test_a_cancelled_apply_gives_its_state_lock_back():
    # Task 1's apply (7..67) is cancelled at 60; its agent lives on. Without the release its
    # lease lived with the agent, and task 2's apply at 206 was refused as locked by task 1.
    cfg = config(agents=replace(AGENTS, plan=fixed(5.0), apply=fixed(60.0)),
                 users=UserConfig(confirm=fixed(1.0)),
                 workload=(WorkspaceGroup(names=("ws-1",), at=(5.0, 200.0)),),
                 duration_s=900.0, drain_s=900.0)
    w = World(cfg, "reference", 0)
    w.kernel.at(60.0, w.send, ev.CancelTask(1, user="alice"))
    rows = w.run()
    ends = [(r["kind"], r["task"]) for r in rows
            if r["kind"] in ("exec.ok", "exec.fail", "exec.info") and r["data"].get("action") == "apply"]
    assert ends == [("exec.info", 1), ("exec.ok", 2)]
    assert w.state.lock == {} and checker.check(rows).ok


def _cancelled_while_frozen(claims: bool) -> tuple[list[dict], World]:
    """Task 1's apply is sent at 114 to an agent frozen since 110 (its node lost; it heals
    at 150): the run waits in the agent's socket. The user cancels at 120."""
    cfg = config(duration_s=900.0, drain_s=900.0,
                 faults=(FaultSpec("node-loss", at=110.0, target="reserved-holder", heal_after=40.0),))
    w = World(cfg, "reference", 0)
    w.agents.claims_runs = claims
    w.kernel.at(120.0, w.send, ev.CancelTask(1, user="alice"))
    return w.run(), w


def test_a_run_that_went_stale_in_a_frozen_agent_is_refused_at_its_claim():
    rows, w = _cancelled_while_frozen(claims=True)
    applies = [r["kind"] for r in rows if r["kind"].startswith("exec.") and r["data"]["action"] == "apply"]
    assert applies == [] and w.state.commits == set()
    assert [r["to_status"] for r in rows if r["kind"] == "task.transition"][-1] == "cancelled"
    assert checker.check(rows).ok
    # Without the claim, the woken agent runs the cancelled apply and commits it (the
    # scheduler then records it applied: a change the user had cancelled before it began).
    rows, w = _cancelled_while_frozen(claims=False)
    applies = [(r["kind"], r["t"]) for r in rows
               if r["kind"].startswith("exec.") and r["data"]["action"] == "apply"]
    assert applies == [("exec.invoke", 150.0), ("exec.ok", 210.0)] and w.state.commits == {(1, 2)}


def test_the_next_apply_waits_out_a_cancelled_applys_live_lease():
    # Task 1's apply runs on while its agent's connection is down (45); its user cancels it
    # (50). Until session 17, task 2 (created at 60) was planned at once and its apply, on
    # the second pod at 66, was refused by task 1's live lease (the checker's side of that
    # refusal, an exec.fail with no invoke, is tested in tests/unit/checker). Now task 2's
    # plan waits while the cancelled apply may yet commit. Until session 18, task 1's pod,
    # its agent silent, was replaced (the agent killed at 135 mid-apply: live, a Terraform
    # apply interrupted half-way); now the pod stays while the state says the apply may
    # commit (given_up_pods): it commits at 240, is recorded applied, the pod goes, and
    # task 2 plans and applies.
    cfg = config(pools=(PoolConfig("pool-1", min_replicas=2, max_replicas=4),),
                 agents=replace(AGENTS, plan=fixed(5.0), apply=fixed(200.0)),
                 users=UserConfig(confirm=fixed(1.0)), duration_s=900.0, drain_s=900.0,
                 workload=(WorkspaceGroup(names=("ws-1",), at=(5.0, 60.0)),),
                 faults=(FaultSpec("agent-disconnect", at=45.0, target="apply-runner",
                                   reconnect_after=300.0),))
    w = World(cfg, "reference", 0)
    w.kernel.at(50.0, w.send, ev.CancelTask(1, user="alice"))
    rows = w.run()
    applies = [(r["kind"], r["task"], r["t"]) for r in rows
               if r["kind"].startswith("exec.") and r["data"].get("action") == "apply"]
    assert applies == [("exec.invoke", 1, 40.0), ("exec.ok", 1, 240.0),
                       ("exec.invoke", 2, 246.0), ("exec.ok", 2, 446.0)]
    assert w.state.commits == {(1, 2), (2, 2)}
    assert not any(r["kind"] == "pod.delete" and r["t"] < 240.0 for r in rows)
    assert checker.check(rows).ok


def test_a_world_refuses_a_second_boot() -> None:
    # booted() schedules a boot and World.run() schedules another: two schedulers, every
    # task created twice, and tests that pass on a world nobody runs.
    with pytest.raises(RuntimeError, match="booted twice"):
        booted(config()).run()
