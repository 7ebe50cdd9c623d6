"""The reference's clocks may be set in any order (an operator's settings, the live
service's `--time-scale`); what one clock promises must not contradict another. Found by
tests/unit/sim/test_shortcuts_fuzz.py, which draws the clocks short and in any order."""

from scheduler.model import Pool
from scheduler.settings import ReferencePolicy, Settings
from scheduler.testing import Script


def test_an_agent_silent_past_its_timeout_gets_no_run_under_a_longer_report_grace():
    # A pod counted as usable while its agent was heard from within the report grace, even
    # past the agent timeout: a run went to an agent the next pass presumed lost (and the
    # quiet-pass skip delayed that pass, so the two histories differed).
    s = Script("reference", settings=Settings(reference=ReferencePolicy(report_grace_s=106.0,
                                                                       agent_timeout_s=60.0)),
               pool=Pool("pool-1", min_replicas=1, max_replicas=1), plan_s=30.0)
    s.pause_agent(45.0, "agent-pool-1-1")  # connected at 30, last heard at 40, never again
    s.create(115.0)  # 75 s of silence: past the timeout, within the grace
    s.run(200.0)
    rows = s.finish()
    assert not [r for r in rows if r["kind"] == "dispatch" and r["agent"] == "agent-pool-1-1"]
