"""Skipping quiet reconciles is an optimisation, not a behaviour: with it on or off, every
shipped scenario gives the same history, byte for byte, while far fewer passes run; and two
scripted worlds driven by the same random faults stay identical event for event."""

import itertools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from scheduler import events as ev
from scheduler import history
from scheduler.model import Pool, TaskType
from scheduler.settings import ReferencePolicy, SeedQuirks, Settings
from scheduler.testing import Script
from scheduler.variants.reference import ReferencePolicy as Reference
from sim.world import World
from unstuck.scenario import load

TWIN_WORKSPACES = ("ws-1", "ws-2", "ws-3")
SCENARIOS = sorted(p for p in Path("scenarios").glob("*.yaml") if p.stem != "mixed-chaos-day")


def run(cfg, seed: int, *, skip: bool, perturb: bool = False) -> tuple[str, int]:
    settings = Settings(seed=SeedQuirks(clock_origin_s=cfg.clock_origin_s),
                        reference=ReferencePolicy(skip_quiet_reconciles=skip))
    world = World(cfg, "reference", seed, settings=settings, perturb_ties=perturb)
    policy = world.scheduler.policy
    assert isinstance(policy, Reference)
    passes = 0
    full = policy.reconcile

    def counted() -> None:
        nonlocal passes
        passes += 1
        full()

    policy.reconcile = counted  # type: ignore[method-assign]
    return history.digest(world.run()), passes


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_skipping_quiet_reconciles_changes_no_history(path):
    cfg = load(path).world()
    for seed in range(3):
        skipped, few = run(cfg, seed, skip=True, perturb=seed == 2)
        every, many = run(cfg, seed, skip=False, perturb=seed == 2)
        assert skipped == every, f"{path.stem} seed {seed}: a skipped pass would have acted"
        assert few < many


def test_on_a_chaotic_day_most_periodic_passes_are_skipped():
    cfg = load("scenarios/mixed-chaos-day.yaml").world()
    cfg = replace(cfg, duration_s=4 * 3600.0)
    skipped, few = run(cfg, 5, skip=True)
    every, many = run(cfg, 5, skip=False)
    assert skipped == every
    assert few < many / 2, (few, many)


def first_either_way(script: Callable[[bool], Script], until: float, happened: Callable[[dict], bool],
                     what: str) -> float:
    """Run the script (built for `skip_quiet_reconciles` on, then off) until `until`: the
    histories must be the same, byte for byte. Returns when the first row `happened` accepts
    was written, the same either way."""
    times, digests = [], []
    for skip in (True, False):
        s = script(skip)
        s.run(until)
        rows = s.finish()
        hits = [r["t"] for r in rows if happened(r)]
        assert hits, f"skip={skip}: {what} never happened"
        times.append(hits[0])
        digests.append(history.digest(rows))
    assert times[0] == times[1] and digests[0] == digests[1]
    return times[0]


def skipping(skip: bool, **reference: Any) -> Settings:
    return Settings(reference=ReferencePolicy(skip_quiet_reconciles=skip, **reference))


def transition(reason: str) -> Callable[[dict], bool]:
    return lambda r: r["kind"] == "task.transition" and r["reason"].startswith(reason)


def test_a_run_missing_from_quiet_heartbeats_is_still_noticed():
    """No event arrives when an agent silently drops a run: only its heartbeats, which stop
    listing the task, tell. Skipping must not hide that the report grace ran out."""
    def script(skip: bool) -> Script:
        s = Script("reference", settings=skipping(skip), plan_s=600.0)
        s.create(200.0, task_type=TaskType.PLAN)  # after the pod's own start-up deadlines
        # Lost within the report grace: the next heartbeats are news, later ones are not.
        s.at(205.0, lambda: [a.runs.clear() for a in s.agents.values()])
        return s

    t = first_either_way(script, 600.0, transition("plan lost"), "noticing the lost run")
    assert t == 230.0  # the first heartbeat more than 25 s after the dispatch at 200


def test_a_run_that_never_reports_times_out_on_time():
    """An agent that keeps listing a task in its heartbeats but never reports sends no news
    at all; only the run timeout ends it, and skipping must not delay it."""
    def script(skip: bool) -> Script:
        s = Script("reference", settings=skipping(skip), plan_s=10_000.0)
        s.create(200.0, task_type=TaskType.PLAN)
        return s

    t = first_either_way(script, 4000.0, transition(
        "plan timed out: still running past the run timeout (60 min)"), "the timeout")
    assert 3800.0 <= t <= 3805.0  # dispatched at 200, run_timeout_s 3600, 5 s passes


def test_a_pod_whose_agent_never_connects_is_replaced_on_time():
    """No event arrives when an agent fails to connect at all: only the clock says that the
    pod's start-up grace ran out. Skipping must not delay its replacement to a later mark
    (found by tests/unit/sim/test_shortcuts_fuzz.py: no shipped scenario has such a pod)."""
    def script(skip: bool) -> Script:
        s = Script("reference", settings=skipping(skip), agent_connect_s=None)
        s.create(10.0, task_type=TaskType.PLAN)
        return s

    t = first_either_way(script, 600.0, lambda r: r["kind"] == "pod.delete"
                         and r["data"].get("cause") == "agent unhealthy: replace the pod",
                         "replacing the silent pod")
    grace = Settings().reference.agent_startup_grace_s
    assert grace <= t <= grace + 5.0  # the pod the boot created at 0, at the first pass after


def test_a_confirmed_apply_without_capacity_fails_at_its_deadline():
    """The confirmed apply's pod is killed and its replacement never gets an agent: nothing
    happens after the confirm but the clock, and the apply must fail at its deadline."""
    def script(skip: bool) -> Script:
        s = Script("reference", pool=Pool("pool-1", min_replicas=1, max_replicas=1), plan_s=30.0,
                   settings=skipping(skip, apply_wait_deadline_s=300.0))
        s.create(10.0)
        s.at(120.0, lambda: setattr(s, "agent_connect_s", None))  # no agent from now on
        s.kill_pod(121.0, lambda w: w.pod_of_task(1))
        s.confirm(130.0, 1)
        return s

    t = first_either_way(script, 1000.0, transition("no capacity for the apply before the deadline"),
                         "failing the apply")
    assert t == 435.0  # confirmed at 130, a 300 s deadline, the first pass after it


def test_a_workspace_freed_by_an_apply_deadline_runs_its_next_task_at_the_next_pass():
    """The deadline fails the apply in the pass's dispatch, after the pass chose what may
    start: the workspace's next task, behind the lock until then, is the next pass's to try,
    and that pass must not be skipped as quiet (found by tests/unit/sim/test_shortcuts_fuzz.py
    with a 30 s deadline and a 1 s report grace)."""
    def script(skip: bool) -> Script:
        s = Script("reference", pool=Pool("pool-1", min_replicas=1, max_replicas=1), plan_s=30.0,
                   settings=skipping(skip, apply_wait_deadline_s=300.0))
        s.create(10.0)
        s.create(20.0)  # the same workspace's: waits for task 1's apply, behind the lock
        s.at(120.0, lambda: setattr(s, "agent_connect_s", None))  # no agent from now on
        s.kill_pod(121.0, lambda w: w.pod_of_task(1))
        s.confirm(130.0, 1)
        return s

    t = first_either_way(script, 1000.0, lambda r: r["kind"] == "dispatch.failed" and r["task"] == 2
                         and r["t"] > 435.0, "trying the next task")
    assert t == 440.0  # the deadline failed task 1 at the pass of 435


class Twins(RuleBasedStateMachine):
    """Two scripted worlds, one skipping quiet reconciles and one not, driven by the same
    random steps. After every step their histories must be the same, event for event."""

    def __init__(self) -> None:
        super().__init__()
        self.worlds = [Script("reference", workspaces=TWIN_WORKSPACES, agent_connect_s=20.0,
                              pool=Pool("pool-1", min_replicas=1, max_replicas=3),
                              plan_s=40.0, apply_s=40.0,
                              settings=skipping(skip))
                       for skip in (True, False)]
        self.t = 0.0
        self.wait(1.0)

    def each(self, act) -> None:
        for s in self.worlds:
            act(s)
        self.t += 0.5
        for s in self.worlds:
            s.run(self.t)

    @rule(ws=st.sampled_from(TWIN_WORKSPACES), pa=st.booleans())
    def create(self, ws: str, pa: bool) -> None:
        kind = TaskType.PLAN_AND_APPLY if pa else TaskType.PLAN
        self.each(lambda s: s.send(ev.TaskCreated(ws, kind, "alice")))

    @rule(i=st.integers(0, 30), double=st.booleans())
    def confirm(self, i: int, double: bool) -> None:
        def go(s: Script) -> None:
            ids = [t.id for t in s.store.list_tasks()]
            if ids:
                s.confirm(self.t, ids[i % len(ids)])
                if double:
                    s.confirm(self.t + 0.1, ids[i % len(ids)])
        self.each(go)

    @rule(i=st.integers(0, 30))
    def cancel(self, i: int) -> None:
        def go(s: Script) -> None:
            ids = [t.id for t in s.store.list_tasks()]
            if ids:
                s.send(ev.CancelTask(ids[i % len(ids)], "alice"))
        self.each(go)

    @rule(i=st.integers(0, 10))
    def kill_pod(self, i: int) -> None:
        self.each(lambda s: s.pods and s.kill_pod(self.t, sorted(s.pods)[i % len(s.pods)]))

    @rule(i=st.integers(0, 10), back=st.sampled_from([None, 5.0, 90.0]),
          pause=st.booleans(), wake=st.sampled_from([None, 30.0, 400.0]))
    def lose_agent(self, i: int, back: float | None, pause: bool, wake: float | None) -> None:
        def go(s: Script) -> None:
            live = sorted(a for a, w in s.agents.items() if w.connected and not w.paused)
            if not live:
                return
            if pause:
                s.pause_agent(self.t, live[i % len(live)], resume_after=wake)
            else:
                s.disconnect_agent(self.t, live[i % len(live)], reconnect_after=back)
        self.each(go)

    @rule(n=st.integers(1, 3))
    def fail_writes(self, n: int) -> None:
        self.each(lambda s: s.fail_writes(self.t, n))

    @rule()
    def restart(self) -> None:
        self.each(lambda s: s.restart_scheduler(self.t))

    @rule(dt=st.sampled_from([1.0, 5.0, 15.0, 60.0, 300.0, 1000.0]))
    def wait(self, dt: float) -> None:
        self.t += dt
        for s in self.worlds:
            s.run(self.t)

    @invariant()
    def same_history(self) -> None:
        skipping, every = (s.history.events for s in self.worlds)
        assert skipping == every, next(
            f"first difference at event {i}: {a} against {b}"
            for i, (a, b) in enumerate(itertools.zip_longest(skipping, every)) if a != b)


Twins.TestCase.settings = hsettings(max_examples=60, stateful_step_count=40, deadline=None)
TestTwins = Twins.TestCase
