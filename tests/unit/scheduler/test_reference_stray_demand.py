"""A run the scheduler let go of that its agent still runs (a stray: a plan_and_apply plan
cancelled while its agent was cut off) holds that agent's plan_and_apply capacity, so it
must also count as demand for a pod, as a given-up apply does. Otherwise a pool whose only
pod holds a stray has "enough" capacity by count, creates no pod, and a confirmed apply
waits until the stray ends (adversarial, session 20: a confirmed apply waited 1,320 s)."""

from scheduler import events as ev
from scheduler.model import Pool, TaskStatus
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
