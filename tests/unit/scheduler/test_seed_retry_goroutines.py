"""The seed's scheduleRetry goroutines, bundled (the default) and literal.

The seed never ends a retry chain while a workspace cannot dispatch, and its monitor starts
a new one every 10 s, so chains pile up. The model lets the goroutines that wake at the
same instant share a timer, and takes an exit they would all take alike once for all of
them (`SeedPolicy.timer_retry`). These tests hold the bundled model to the literal one (a
timer and a row pair per goroutine) on worlds with one pod and one agent, where Go's map
order has nothing to shuffle.
"""

from __future__ import annotations

from collections import Counter

import pytest

from scheduler import events as ev
from scheduler.history import Kind
from scheduler.model import Pool, TaskStatus, TaskType
from scheduler.settings import SeedQuirks, Settings
from scheduler.testing import Script

VARIANTS = ("seed", "seed-proposal", "seed-head")


def settings(bundle: bool) -> Settings:
    return Settings(seed=SeedQuirks(bundle_retry_goroutines=bundle))


def no_pods(variant: str, bundle: bool) -> Script:
    """A plan waits in a pool with no pods (min_replicas 0): every chain fails on 'no free slot'."""
    s = Script(variant, settings=settings(bundle), pool=Pool("pool-1", min_replicas=0, max_replicas=4))
    s.create(5, task_type=TaskType.PLAN)
    return s.run(105)


def busy_pod(variant: str, bundle: bool) -> Script:
    """One pod, one agent, five workspaces. Four long plans take the four slots; the fifth
    waits for 10 minutes while its chains pile up, then dispatches when a slot frees. Two
    plan_and_apply tasks join later, so that some goroutines take writing exits."""
    workspaces = tuple(f"ws-{i}" for i in range(6))
    s = Script(variant, settings=settings(bundle), workspaces=workspaces, plan_s=600.0,
               apply_s=30.0, pool=Pool("pool-1", min_replicas=1, max_replicas=1))
    for i, ws in enumerate(workspaces[:5]):
        s.create(40 + i, ws, TaskType.PLAN)
    s.create(200, workspaces[5])
    s.create(210, workspaces[5])
    return s.run(2400)


def busy_agent(variant: str, bundle: bool) -> Script:
    """One pod, one agent. Three long plans put the agent at its plan limit with one slot
    still free; a fourth plan takes that slot, finds no available agent and gives it back,
    every 10 s per chain, until the plans end at about 670 s."""
    workspaces = tuple(f"ws-{i}" for i in range(4))
    s = Script(variant, settings=settings(bundle), workspaces=workspaces, plan_s=600.0,
               pool=Pool("pool-1", min_replicas=1, max_replicas=1))
    for i, ws in enumerate(workspaces[:3]):
        s.create(61.5 + 2 * i, ws, TaskType.PLAN)  # off the monitor's grid: one dispatch each
    s.create(100.5, workspaces[3], TaskType.PLAN)
    return s.run(1500)


def two_pools(variant: str, bundle: bool) -> Script:
    return Script(variant, settings=settings(bundle), workspaces={"ws-a": "pool-1", "ws-b": "pool-2"},
                  pool=Pool("pool-1", min_replicas=1, max_replicas=1),
                  other_pools=(Pool("pool-2", min_replicas=1, max_replicas=1),))


def agentless_pod(variant: str, bundle: bool) -> Script:
    """pool-1's pod is replaced by one whose agent never comes; pool-2's agent is connected,
    so a plan of pool-1 takes the new pod's slot and finds no available agent. No agent row
    names the new pod, so even seed-head's slot has no agent to choose. (The run stops
    before the seed restarts the agentless pod, at 320 s.)"""
    s = two_pools(variant, bundle)
    s.at(150, lambda: setattr(s, "agent_connect_s", None))
    s.kill_pod(200, lambda s: sorted(p for p in s.pods if "pool-1" in p)[0])
    s.create(205.5, "ws-a", TaskType.PLAN)
    return s.run(315)


def lost_agent(variant: str, bundle: bool) -> Script:
    """pool-1's agent drops for good before a plan of pool-1 arrives. Its row stays online
    for a while, so seed-head backfills the pod's agent id: from then on its slot chooses
    the (gone) agent. (The run stops before the seed restarts the pod, at 150 s.)"""
    s = two_pools(variant, bundle)
    s.disconnect_agent(35, lambda s: sorted(a for a in s.agents if s.agents[a].pool_id == "pool-1")[0])
    s.create(40.5, "ws-a", TaskType.PLAN)
    return s.run(145)


def no_agent(variant: str, bundle: bool) -> Script:
    """A pod whose agent never connects, in a pool allowed a second pod. A plan waits: every
    goroutine takes the pod's free slot, finds no connected agent, gives the slot back and
    starts a `triggerK8sScaleUpForPool`, whose AutoScalePods adds the second pod. The seed
    restarts agentless pods, so pods keep coming (and their slots keep being raced for)."""
    s = Script(variant, settings=settings(bundle), agent_connect_s=None,
               pool=Pool("pool-1", min_replicas=1, max_replicas=2))
    s.create(5.5, task_type=TaskType.PLAN)
    return s.run(600)


def story(s: Script, slots: bool = True) -> Counter:
    """The history as a multiset, with each retry row counted once per goroutine it stands
    for. Same-instant rows may come in another order: a bundle runs where its first
    goroutine's timer was queued. With `slots=False`, the pod and slot a push took and
    gave back are left out."""
    out: Counter = Counter()
    pushes = (Kind.SLOT_ASSIGNED, Kind.SLOT_RELEASED, Kind.DISPATCH_FAILED)
    for e in s.history.events:
        data = {k: v for k, v in e.data.items() if k != "goroutines"}
        pod, slot = (e.pod, e.slot) if slots or e.kind not in pushes else (None, None)
        key = (e.t, e.kind, e.source, e.task, e.workspace, pod, slot, e.agent,
               e.from_status, e.to_status, e.reason, repr(sorted(data.items())))
        out[key] += e.data.get("goroutines", 1)
    return out


def retry_rows(s: Script, t: float) -> list[int]:
    return [e.data["goroutines"] for e in s.history.events
            if e.kind is Kind.RETRY_SCHEDULED and e.t == t]


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_waiting_workspace_gains_a_goroutine_per_monitor_tick(variant):
    literal, bundled = no_pods(variant, False), no_pods(variant, True)
    # The chain TaskCreated started (5 s, 15 s, ...) stays alone; on the monitor's grid
    # (10 s, 20 s, ...) one more chain joins at every tick.
    for k in range(1, 10):
        assert len(retry_rows(literal, 10.0 * k)) == k
        assert sum(retry_rows(bundled, 10.0 * k)) == k
        # The first goroutine where its timer was queued, the rest at the end of the
        # instant, and the tick's new chain.
        assert len(retry_rows(bundled, 10.0 * k)) <= 3
        assert retry_rows(bundled, 10.0 * k + 5) == [1]
    # Rows grow with time, not with its square: the literal model writes a row per
    # goroutine (11 on the 5 s grid, 1 + 2 + ... + 10 on the monitor's), the bundled one
    # at most three per instant (1 + 2 + 3 * 8).
    rows = [sum(1 for e in x.history.events if e.kind is Kind.RETRY_SCHEDULED) for x in (literal, bundled)]
    assert rows == [11 + 55, 11 + 27]
    assert story(bundled) == story(literal)


@pytest.mark.parametrize("variant", VARIANTS)
def test_goroutines_that_find_no_available_agent_are_bundled_exactly(variant):
    """Taking the free slot and giving it back leaves nothing another goroutine reads, and in
    the seed the slot does not choose the agent, so the whole exit stands for the bundle:
    the slot rows too carry `goroutines`."""
    literal, bundled = busy_agent(variant, False), busy_agent(variant, True)

    def before_plans_end(s: Script) -> Counter:
        return Counter({k: n for k, n in story(s).items() if k[0] < 600})

    assert before_plans_end(bundled) == before_plans_end(literal)
    ids = range(1, 5)
    assert [bundled.task(i).status for i in ids] == [literal.task(i).status for i in ids]
    if variant != "seed-head":  # its pod's agent is backfilled: it dispatches to it at once
        assert bundled_slot_rows(bundled) >= 40


def bundled_slot_rows(s: Script) -> int:
    """The most goroutines one slot.assigned row stands for."""
    return max((e.data.get("goroutines", 1) for e in s.history.events
                if e.kind is Kind.SLOT_ASSIGNED), default=0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_goroutines_that_find_no_connected_agent_are_bundled_with_their_scale_ups(variant):
    """The exit gives back the slot it took, and each goroutine's scale-up request would be
    queued right behind the last one's, so one row set and one scale-up timer stand for the
    bundle; the scale-ups still run one after another, each seeing what the last one did."""
    literal, bundled = no_agent(variant, False), no_agent(variant, True)
    # Which of the two pods' free slots a goroutine takes is Go's map order, which the
    # bundle does not draw again: the same rows, but for which slot each went through.
    assert story(bundled, slots=False) == story(literal, slots=False)
    failed = [e for e in bundled.history.events if e.kind is Kind.DISPATCH_FAILED]
    assert {e.reason for e in failed} == {"no connected agents"}
    assert max(e.data["goroutines"] for e in failed) >= 15
    assert bundled_slot_rows(bundled) >= 15
    # The scale-ups ran as often, and created the same pods at the same instants.
    creates = [(e.t, e.pod) for e in bundled.history.events if e.kind is Kind.POD_CREATE]
    assert creates == [(e.t, e.pod) for e in literal.history.events if e.kind is Kind.POD_CREATE]
    assert len(creates) >= 5
    assert len(bundled.history.events) < len(literal.history.events) / 3


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_scale_up_timer_runs_each_goroutines_request_in_turn(variant):
    """Two pods short of min_replicas, with no agent to fill them: each request's creates
    are named after the current second, so every request after the first collides. One
    timer for three requests writes what three timers, back to back, write."""
    def short_of_pods(timers: tuple[int, ...]) -> list[tuple]:
        s = Script(variant, agent_connect_s=None, pool=Pool("pool-1", min_replicas=1, max_replicas=4))
        s.run(1)
        s.store.put_pool(Pool("pool-1", min_replicas=3, max_replicas=4))
        for n in timers:
            s.send(ev.TimerFired(ev.TimerTag("scale_up", ("pool-1", n))))
        return [(e.kind, e.pod, e.reason) for e in s.history.events if e.t == 1]

    one_timer = short_of_pods((3,))
    assert one_timer == short_of_pods((1, 1, 1))
    assert one_timer != short_of_pods((1,))
    assert sum(1 for kind, _, _ in one_timer if kind is Kind.POD_CREATE) == 1
    assert sum(1 for kind, _, reason in one_timer if kind is Kind.DECISION
               and reason.startswith("create pod failed")) == 6


@pytest.mark.parametrize("world,variant,bundles", [
    (agentless_pod, "seed", True), (agentless_pod, "seed-proposal", True),
    (agentless_pod, "seed-head", True),
    (lost_agent, "seed", True), (lost_agent, "seed-proposal", True),
    (lost_agent, "seed-head", False),  # the backfilled agent id: the slot chooses the agent
])
def test_seed_head_bundles_only_while_no_slot_can_choose_an_agent(world, variant, bundles):
    literal, bundled = world(variant, False), world(variant, True)
    assert story(bundled) == story(literal)
    assert "no available agent in pool" in {
        e.reason for e in bundled.history.events if e.kind is Kind.DISPATCH_FAILED}
    assert (bundled_slot_rows(bundled) >= 5) is bundles
    assert bundled_slot_rows(bundled) >= 1


def dispatches(s: Script) -> Counter:
    return Counter(e.task for e in s.history.events if e.kind is Kind.DISPATCH)


@pytest.mark.parametrize("variant", VARIANTS)
def test_bundled_goroutines_race_for_freed_slots_as_literal_ones_do(variant):
    """When the plans end, the seed's autoscaler frees their slots at an instant where both
    waiting workspaces have dozens of goroutines due. Which goroutine runs before which differs
    (a bundle's rest runs at the end of the instant), so the rows differ; what the seed does
    with the freed slots does not."""
    literal, bundled = busy_pod(variant, False), busy_pod(variant, True)
    assert max(e.data["goroutines"] for e in bundled.history.events
               if e.kind is Kind.RETRY_SCHEDULED) >= 50
    ids = range(1, 8)
    assert [bundled.task(i).status for i in ids] == [literal.task(i).status for i in ids]
    assert bundled.task(5).status is TaskStatus.SUCCESS
    assert sum(dispatches(bundled).values()) == sum(dispatches(literal).values())
    if variant != "seed-head":  # it frees a slot when the task ends, between wake-ups
        # F7: the waiting plans are sent more than once, before the first Save lands.
        assert max(dispatches(bundled)[4], dispatches(bundled)[5]) > 1
        assert max(dispatches(literal)[4], dispatches(literal)[5]) > 1
    assert len(bundled.history.events) < len(literal.history.events) / 5


def test_seed_heads_slot_chooses_an_agent_when_a_pod_has_or_would_get_one():
    s = agentless_pod("seed-head", True)
    policy = s.scheduler.policy
    assert policy.slot_chooses_agent("pool-1") is False  # no agent row names its pod
    assert policy.slot_chooses_agent("pool-2") is True  # an online row names its pod
    policy.mem.slots.of_pool("pool-1")[0].agent_id = "agent-elsewhere"
    assert policy.slot_chooses_agent("pool-1") is True
