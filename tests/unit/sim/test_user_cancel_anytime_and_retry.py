"""The opt-in user behaviours: a cancel at any stage (`cancel_anytime`), and a Confirm or a
Cancel clicked again after a 5xx (`click_retries`)."""

from sim import runner
from sim.config import FaultSpec, UserConfig, fixed
from unstuck import checker

from .worlds import config


def _task_rows(rows, kinds):
    return [r for r in rows if r["task"] == 1 and r["kind"] in kinds]


def test_a_task_cancelled_while_its_plan_runs_ends_cancelled():
    # Created at 5, planning from 34 (pod start 4 s, connect 30 s) to 94: cancelled at 65.
    cfg = config(users=UserConfig(confirm=fixed(20.0), cancel_anytime=1.0,
                                  cancel_anytime_delay=fixed(60.0)))
    rows = runner.run(cfg, "reference", 0).rows
    seq = [(r["kind"], r["data"].get("action"), r["data"].get("status"), r["to_status"])
           for r in _task_rows(rows, ("user", "task.transition"))]
    assert seq[-2:] == [("user", "cancel", "running", None),
                        ("task.transition", None, None, "cancelled")], seq
    assert not any(r["kind"] == "exec.ok" for r in _task_rows(rows, ("exec.ok",)))
    assert checker.check(rows).ok


def test_a_confirm_refused_503_is_clicked_again_and_the_apply_runs():
    # The plan ends at 94, the user confirms at 114 inside a rate-1 write outage (110-140).
    def run(retries: int) -> list[dict]:
        cfg = config(users=UserConfig(confirm=fixed(20.0), click_retries=retries,
                                      click_retry=fixed(15.0)),
                     faults=(FaultSpec("db-write-failure", at=110.0, rate=1.0, duration_s=30.0),))
        return runner.run(cfg, "reference", 0).rows

    walked_away = run(0)  # today's user: one click, the task waits for its human
    assert [r["t"] for r in _task_rows(walked_away, ("user",))] == [114.0]
    assert not _task_rows(walked_away, ("task.confirmed",))

    rows = run(3)  # 114 and 129 refused, 144 stored; no fourth click
    clicks = [(r["t"], r["data"].get("retry")) for r in _task_rows(rows, ("user",))]
    assert clicks == [(114.0, None), (129.0, 1), (144.0, 2)], clicks
    assert [r["t"] for r in _task_rows(rows, ("task.confirmed",))] == [144.0]
    final = [r["to_status"] for r in _task_rows(rows, ("task.transition",))]
    assert final[-1] == "applied", final
    assert checker.check(rows).ok


def test_a_cancel_refused_503_is_clicked_again_until_it_is_stored():
    # Cancelled at 65 while the plan runs (34-94), inside a rate-1 write outage (60-90).
    def run(retries: int) -> list[dict]:
        cfg = config(users=UserConfig(confirm=fixed(20.0), cancel_anytime=1.0,
                                      cancel_anytime_delay=fixed(60.0), click_retries=retries,
                                      click_retry=fixed(15.0)),
                     faults=(FaultSpec("db-write-failure", at=60.0, rate=1.0, duration_s=30.0),))
        return runner.run(cfg, "reference", 0).rows

    walked_away = run(0)  # one click, refused: the task runs on and is applied
    assert [r["t"] for r in _task_rows(walked_away, ("user",)) if r["data"]["action"] == "cancel"] == [65.0]
    assert [r["to_status"] for r in _task_rows(walked_away, ("task.transition",))][-1] == "applied"

    rows = run(3)  # 65 and 80 refused, 95 stored: the plan had ended, the task is cancelled
    clicks = [(r["t"], r["data"].get("retry")) for r in _task_rows(rows, ("user",))
              if r["data"]["action"] == "cancel"]
    assert clicks == [(65.0, None), (80.0, 1), (95.0, 2)], clicks
    assert [r["to_status"] for r in _task_rows(rows, ("task.transition",))][-1] == "cancelled"
    assert checker.check(rows).ok
