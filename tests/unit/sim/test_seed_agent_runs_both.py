"""The seed's agent runs a second `run_task` of a task it is already running beside the first
(seed-system.md §2.2, "There is no enforcement on the agent: a second task is accepted if the
server sends one"; F7/G5: "Result: two concurrent applies"): `handleRunTask` starts a
goroutine per message and only overwrites the task's cancel func. A double click under
seed-head sends both applies to the agent bound to the slot's pod; the simulated agent used
to drop the first run (`exec.info` "superseded"), so the two applies never overlapped."""

from sim import runner
from sim.config import FaultSpec
from unstuck import checker

from .worlds import config


def test_the_seed_agent_runs_a_double_dispatched_apply_twice_at_once():
    cfg = config(faults=(FaultSpec("double-confirm", at=100.0, retry_s=1.0, gap_s=0.1),))
    rows = runner.run(cfg, "seed-head", 0).rows
    applies = [r for r in rows if r["task"] == 1 and r["kind"].startswith("exec.")
               and r["data"].get("action") == "apply"]
    assert [r["kind"] for r in applies][:2] == ["exec.invoke", "exec.invoke"], applies
    assert len({r["agent"] for r in applies}) == 1  # one agent got both
    invokes = sum(r["kind"] == "exec.invoke" for r in applies)  # both clicks, maybe a tick
    ends = [r["kind"] for r in applies if r["kind"] != "exec.invoke"]
    # Every run went to its end: the first to finish commits, the others find the state
    # lock taken (none dropped as "superseded").
    assert ends == ["exec.ok"] + ["exec.fail"] * (invokes - 1), ends
    counts = checker.check(rows).counts()
    assert counts["at_most_one_apply_per_confirmation"] >= 1
    assert counts["per_workspace_serialization"] >= 1
