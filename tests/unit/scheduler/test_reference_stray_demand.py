"""A run the scheduler let go of that its agent still runs (a stray: a plan_and_apply plan
cancelled while its agent was cut off) holds that agent's plan_and_apply capacity, so it
must also count as demand for a pod, as a given-up apply does. Otherwise a pool whose only
pod holds a stray has "enough" capacity by count, creates no pod, and a confirmed apply
waits until the stray ends (adversarial, session 20: a confirmed apply waited 1,320 s).
A stray plan_and_apply also keeps its pod busy (its deletion cost), as a given-up apply does."""

from scheduler import events as ev
from scheduler.model import Pool, TaskStatus
from scheduler.settings import ReferencePolicy, Settings
from scheduler.testing import Script
from unstuck import checker


def test_a_stray_plan_and_apply_run_counts_as_demand_for_a_pod():
    s = Script("reference", pool=Pool("pool-1", min_replicas=0, max_replicas=4),
               workspaces=("ws-1", "ws-2"), plan_s=3000.0, apply_s=60.0)
    s.create(5.0, "ws-1")  # task 1 plans on the first pod, about 35-3035
    s.create(1500.0, "ws-2")  # task 2 plans on a second pod from about 1530
    s.disconnect_agent(1560.0, lambda w: w.agent_of_task(2), reconnect_after=20.0)
    s.at(1565.0, ev.CancelTask(2, "alice"))  # not sent: task 2's plan runs on to about 4530
    s.kill_pod(3040.0, lambda w: w.pod_of_task(1))  # task 1's reserved pod goes
    s.confirm(3060.0, 1)  # its apply needs a pod; the only one left holds the stray
    s.run(4000.0)
    rows = s.finish()
    assert s.task(2).status is TaskStatus.CANCELLED
    assert not checker.invariants.agent_capacity(rows)
    start = next((r["t"] for r in rows if r["kind"] == "exec.invoke" and r["task"] == 1
                  and r["data"]["action"] == "apply"), None)
    # A new pod starts at once in this world and its agent connects 30 s later.
    assert start is not None and start < 3060.0 + 60.0, start


def test_the_pod_of_a_stray_apply_keeps_its_deletion_cost_without_a_state_backend():
    # Without a state backend (this world has none, like the live service without
    # --backend-dir) a cancelled apply is held only as a stray. Its pod must stay busy: at
    # deletion cost 0 a ReplicaSet scale-down could pick it and kill the apply mid-way.
    cost = "controller.kubernetes.io/pod-deletion-cost"
    s = Script("reference", pool=Pool("pool-1", manager="hpa", min_replicas=1, max_replicas=4),
               workspaces=("ws-1",), apply_s=600.0)
    s.add_pod(0.0, "pod-a")  # the HPA's replica
    s.create(5.0, "ws-1")  # plans on pod-a, about 35-95
    s.confirm(100.0, 1)  # applies on pod-a, about 100-700
    s.disconnect_agent(200.0, "agent-pool-1-1", reconnect_after=20.0)
    s.at(205.0, ev.CancelTask(1, "alice"))  # not sent: the apply runs on
    s.run(650.0)
    rows = s.finish()
    assert s.task(1).status is TaskStatus.CANCELLED
    annotations = [(r["t"], r["data"]["annotations"][cost]) for r in rows
                   if r["kind"] == "pod.annotate" and r["pod"] == "pod-a"]
    zeroed = [t for t, v in annotations if v == "0" and t >= 100.0]
    assert annotations[-1][1] != "0" and not zeroed, annotations  # 1000 from the plan on
    assert any(r["kind"] == "exec.invoke" and r["task"] == 1 and r["data"]["action"] == "apply"
               and r["t"] < 205.0 for r in rows)


def test_a_run_let_go_of_on_a_pod_already_gone_is_not_held():
    # The pod goes with its agent while the plan runs; the plan is requeued once the agent
    # is presumed lost (60 s without a heartbeat), after the pod's removal. A run on a pod
    # that is gone runs nowhere: held, it stayed in memory until the next restart (a whole
    # simulated day: mixed-chaos-day seed 0 held one from 9,542 s to a restart at ~50,000 s),
    # and every demand read walked it.
    s = Script("reference", pool=Pool("pool-1", min_replicas=1, max_replicas=4),
               workspaces=("ws-1",), plan_s=600.0)
    s.create(5.0, "ws-1")  # plans from about 35
    s.kill_pod(100.0, lambda w: w.pod_of_task(1))
    s.run(400.0)
    rows = s.finish()
    lost = [r for r in rows if r["kind"] == "task.transition" and r["task"] == 1
            and r["reason"].startswith("plan lost")]
    assert lost, "the plan was not requeued as lost"
    assert s.scheduler.policy.mem.let_go_runs == {}


def test_a_plan_its_agent_still_runs_past_the_run_timeout_fails_and_is_stopped():
    """A plan that runs past the run timeout while its agent, in reach, lists it in every
    heartbeat is too long, not lost: it fails with what to do, and its agent is told to stop.
    Until session 30 it was re-run from its start, timed out again each time, and failed
    only when the retry budget ran out (6 hours for a plan of 70 minutes).

    Found first by a Hypothesis run with the clocks drawn short (tests/unit/sim/
    test_reference_clocks_fuzz.py): the same pass sent the other workspace's plan_and_apply
    to that agent, which then ran two at once (agent_capacity). The stopped run is held
    until a heartbeat lists it no more, so that pass still sends nothing there."""
    s = Script("reference", settings=Settings(reference=ReferencePolicy(run_timeout_s=600.0)),
               pool=Pool("pool-1", min_replicas=1, max_replicas=1),
               workspaces=("ws-1", "ws-2"), plan_s=900.0)
    s.create(5.0, "ws-1")  # plans from 30, when the agent connects, to 930 on the only pod
    s.create(10.0, "ws-2")  # waits: the pod's plan_and_apply capacity is taken
    s.run(1000.0)
    rows = s.finish()
    task = s.task(1)
    assert (task.status, task.completed_at, task.attempts) == (TaskStatus.FAILED, 635.0, 0)
    assert task.error_message == ("the plan ran past the run timeout (10 min) and was stopped; a "
                                  "plan this long will not finish in one run: raise the run "
                                  "timeout, or split the workspace")
    assert not [r for r in rows if r["kind"] == "exec.invoke" and r["task"] == 1 and r["t"] > 30.0]
    assert all(1 not in a.runs for a in s.agents.values())  # the agent stopped it
    assert not checker.invariants.agent_capacity(rows)
    # Task 2 runs on that agent once a heartbeat (at 640) no longer lists task 1: not at 635.
    assert [r["t"] for r in rows if r["kind"] == "exec.invoke" and r["task"] == 2] == [640.0]
    assert not s.scheduler.policy.mem.let_go_runs


def test_a_plan_past_its_run_timeout_is_stopped_when_its_agent_lists_it_as_it_reconnects():
    # First found by the clocks fuzz with ties perturbed: the agent had reconnected (after
    # our restart there; a network blip here) and sent no heartbeat since, and the pass that
    # requeued its plan sent it another. Until session 31 its connect's list went unread:
    # the plan was re-run as lost, from its start, while it ran on. The connect lists it, so
    # it is a plan too long, as with a heartbeat: failed and stopped, and held until a
    # heartbeat lists it no more.
    s = Script("reference", settings=Settings(reference=ReferencePolicy(run_timeout_s=603.0)),
               pool=Pool("pool-1", min_replicas=1, max_replicas=1),
               workspaces=("ws-1", "ws-2"), plan_s=900.0)
    s.create(5.0, "ws-1")  # plans from 30, when the agent connects, to 930
    s.create(10.0, "ws-2")
    s.disconnect_agent(625.0, "agent-pool-1-1", reconnect_after=8.0)  # back at 633
    s.run(700.0)  # the plan times out at the pass of 635; the next heartbeat is at 643
    rows = s.finish()
    ends = [(r["t"], r["reason"]) for r in rows if r["kind"] == "task.transition" and r["task"] == 1
            and r["t"] > 600.0]
    assert ends == [(635.0, "plan timed out: still running past the run timeout (603 s)")], ends
    assert s.task(1).status is TaskStatus.FAILED
    assert not [r for r in rows if r["kind"] == "exec.invoke" and r["task"] == 1 and r["t"] > 30.0]
    assert all(1 not in a.runs for a in s.agents.values())  # the agent stopped it
    assert not checker.invariants.agent_capacity(rows)
    starts = [r["t"] for r in rows if r["kind"] == "exec.invoke" and r["task"] == 2]
    assert len(starts) == 1 and starts[0] > 635.0, starts  # at a heartbeat without task 1


def test_a_plan_past_its_run_timeout_waits_for_its_agent_to_reconnect_after_a_restart():
    # We restart while a long plan runs; it times out before its agent has reconnected.
    # Requeued at once as lost, it was re-run from its start while the agent ran it on.
    # It waits for the agent instead: its connect lists the plan, so it is stopped as too long.
    s = Script("reference", settings=Settings(reference=ReferencePolicy(run_timeout_s=600.0)),
               pool=Pool("pool-1", min_replicas=1, max_replicas=1),
               workspaces=("ws-1",), plan_s=900.0)
    s.create(5.0, "ws-1")  # plans from 30 to 930
    s.pause_agent(615.0, "agent-pool-1-1", resume_after=35.0)  # its node is back at 650
    s.restart_scheduler(622.0)  # the plan times out at 630, its agent unheard of since
    s.run(700.0)
    rows = s.finish()
    ends = [(r["t"], r["reason"]) for r in rows if r["kind"] == "task.transition" and r["task"] == 1
            and r["t"] > 600.0]
    assert ends == [(650.0, "plan timed out: still running past the run timeout (10 min)")], ends
    assert not [r for r in rows if r["kind"] == "exec.invoke" and r["task"] == 1 and r["t"] > 30.0]
    assert all(1 not in a.runs for a in s.agents.values())


def test_a_plan_past_its_run_timeout_whose_agent_never_reconnects_is_requeued_as_lost():
    # The other side of the wait: the agent is gone for good (its pod with it), so the plan
    # is lost, and re-run once the agent is presumed lost (agent_timeout_s after the restart).
    s = Script("reference", settings=Settings(reference=ReferencePolicy(run_timeout_s=600.0)),
               pool=Pool("pool-1", min_replicas=1, max_replicas=2),
               workspaces=("ws-1",), plan_s=900.0)
    s.create(5.0, "ws-1")  # plans from 30 to 930
    s.pause_agent(615.0, "agent-pool-1-1")  # its node never comes back
    s.restart_scheduler(622.0)
    s.run(800.0)
    rows = s.finish()
    lost = [(r["t"], r["reason"]) for r in rows if r["kind"] == "task.transition" and r["task"] == 1
            and r["t"] > 600.0 and r["reason"].startswith("plan lost")]
    assert lost and lost[0][0] >= 622.0 + 60.0, lost
    assert "run timed out" in lost[0][1], lost
