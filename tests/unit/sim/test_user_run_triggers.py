"""The opt-in `run_triggers` workload: a run trigger's pending task is cancelled by the seed's
startup recovery (seed-system.md §5), an ordinary one is resumed."""

from sim import runner
from sim.config import FaultSpec, UserConfig, fixed

from .worlds import config


def _statuses(run_triggers: float) -> list[str]:
    # Created at 5; its agent connects at 34: the restart at 20 finds it pending.
    cfg = config(users=UserConfig(confirm=fixed(20.0), run_triggers=run_triggers),
                 faults=(FaultSpec("scheduler-restart", at=20.0),))
    rows = runner.run(cfg, "seed", 0).rows
    return [r["to_status"] for r in rows if r["task"] == 1 and r["kind"] == "task.transition"]


def test_a_restart_cancels_a_pending_run_trigger_task_under_the_seed():
    assert _statuses(1.0)[-1] == "cancelled"
    assert "cancelled" not in _statuses(0.0)
