"""A cancel that cannot reach the agent of a running apply: the apply commits all the same,
and its report is held back by a database outage. The scheduler must not scale the pod down
while the agent still lists the run (the report, and with it `late_commit`, would be lost,
leaving a committed change recorded as `cancelled`)."""

from scheduler import events as ev
from scheduler.history import Kind
from scheduler.model import Pool, TaskStatus
from scheduler.testing import Script
from unstuck import checker


def test_pod_of_a_cancelled_apply_is_kept_until_its_report_lands():
    s = Script("reference", pool=Pool("pool-1", min_replicas=0, max_replicas=2),
               plan_s=10.0, apply_s=60.0)
    s.create(1.0)
    s.run(60.0)
    assert s.task(1).status is TaskStatus.APPLY_PENDING
    s.confirm(61.0, 1)
    s.restart_scheduler(80.0)  # the agents reconnect at 82: the cancel at 81 cannot reach them
    s.at(81.0, ev.CancelTask(1, "alice"))
    s.fail_writes(115.0, 120)  # the apply commits at 121; its report fails for about 4 minutes
    s.run(900.0)
    rows = s.finish()
    ok = [r for r in rows if r["kind"] == Kind.EXEC_OK.value and r["data"].get("action") == "apply"]
    assert ok, "the apply never committed: the scenario no longer tests a cancel that missed"
    deleted = [r["t"] for r in rows if r["kind"] == Kind.POD_DELETE.value]
    assert s.task(1).status is TaskStatus.APPLIED, (s.task(1).status, deleted)
    assert not checker.invariants.no_unrecorded_apply(rows)
