"""A cancel that reaches the agent of a running apply just after the apply committed, whose
report a database outage then holds back. The scheduler must not scale the pod down while
the agent still lists the run: the report, and with it `late_commit`, would be lost, leaving a
committed change recorded as `cancelled`."""

from scheduler import events as ev
from scheduler.model import Pool, TaskStatus
from scheduler.testing import Script
from unstuck import checker


def test_pod_of_a_cancelled_apply_is_kept_until_its_report_lands():
    s = Script("reference", pool=Pool("pool-1", min_replicas=0, max_replicas=2),
               plan_s=10.0, apply_s=60.0)
    s.create(1.0)
    s.confirm(61.0, 1)  # the apply runs from 61 and commits at 121
    s.fail_writes(120.5, 1)  # its first report, at 121, is not stored
    s.at(121.05, ev.CancelTask(1, "alice"))  # stored: the run has already committed
    s.fail_writes(121.07, 150)  # the report's retries fail for about 5 minutes
    s.run(900.0)
    rows = s.finish()
    cancels = [o for _, e, o in s.outcomes if isinstance(e, ev.CancelTask)]
    assert cancels and cancels[0].ok, "the cancel no longer lands between commit and report"
    assert s.task(1).status is TaskStatus.APPLIED, s.task(1).status
    assert not checker.invariants.no_unrecorded_apply(rows)
