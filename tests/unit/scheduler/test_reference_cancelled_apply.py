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


def test_a_config_rebuild_keeps_the_pod_of_a_cancelled_apply_until_its_report_lands():
    """The same story, with a config rebuild instead of a scale-down: the rebuild deletes
    idle pods at once, and must pass over one whose agent still lists a run (the scale-down's
    `agent_working` rule), or the report is lost with the pod."""
    s = Script("reference", pool=Pool("pool-1", min_replicas=1, max_replicas=2),
               plan_s=10.0, apply_s=60.0)
    s.create(1.0)
    s.confirm(61.0, 1)  # the apply runs from 61 and commits at 121
    s.fail_writes(120.5, 1)
    s.at(121.05, ev.CancelTask(1, "alice"))
    s.fail_writes(121.07, 150)
    pod = []
    s.at(130.0, lambda: pod.append(s.pod_of_task(1)))
    s.at(130.0, ev.RebuildPods("pool-1"))  # an operator changes the pool's config
    s.run(900.0)
    rows = s.finish()
    assert pod[0] and not any(r["kind"] == "pod.delete" and r["pod"] == pod[0] and r["t"] < 400
                              for r in rows), "the rebuild deleted the pod holding the report"
    assert s.task(1).status is TaskStatus.APPLIED, s.task(1).status
    assert not checker.invariants.no_unrecorded_apply(rows)


def test_a_cancel_answered_503_leaves_the_run_going():
    """A cancel whose write fails is answered 503 "not stored; retry": nothing changed. The
    reference told the agent before it stored the cancel, so the apply was aborted all the
    same, and the task failed a moment later ("agent is alive but not running the task")."""
    s = Script("reference", pool=Pool("pool-1", min_replicas=0, max_replicas=2),
               plan_s=10.0, apply_s=60.0)
    s.create(1.0)
    s.confirm(61.0, 1)  # the apply runs from 61 and commits at 121
    s.fail_writes(89.9, 1)
    s.at(90.0, ev.CancelTask(1, "alice"))  # its write fails
    s.run(900.0)
    cancels = [o for _, e, o in s.outcomes if isinstance(e, ev.CancelTask)]
    assert [o.status for o in cancels] == [503]
    assert s.task(1).status is TaskStatus.APPLIED, (s.task(1).status, s.task(1).error_message)
