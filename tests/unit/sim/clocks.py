"""The scheduler's clocks as Hypothesis draws them: each as shipped, or short enough to come
due in a short run (test_shortcuts_fuzz.py, test_reference_clocks_fuzz.py)."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from hypothesis import strategies as st

from scheduler.settings import Agents, Loops, ReferencePolicy, Settings, Slots

from .test_scenario_fuzz import secs


def clock(default: float, lo: float, hi: float) -> st.SearchStrategy[float]:
    """A scheduler clock: as shipped, or short enough to come due in a short run."""
    return st.just(default) | secs(lo, hi)


@st.composite
def clocks(draw: Any) -> Settings:
    """The scheduler's clocks, each as shipped or short. The shortcuts skip work until a
    clock comes due (a reservation's 24 h expiry, a plan's TTL, a restart backoff, an agent's
    offline mark), and a 15-minute run reaches the day-long ones only when they are short.
    The clocks are drawn independently, in any order (an agent offline after 20 s, rows
    deleted after 30 s), which the shortcuts must get right as well as the days we ship."""
    backoff = st.lists(secs(0, 300), min_size=1, max_size=6).map(lambda b: tuple(sorted(b)))
    return Settings(
        loops=Loops(reconcile_period_s=draw(clock(5.0, 1, 20)), monitor_period_s=draw(clock(10.0, 1, 30)),
                    health_period_s=draw(clock(30.0, 5, 60)),
                    agent_cleanup_period_s=draw(clock(300.0, 10, 300))),
        agents=Agents(heartbeat_timeout_s=draw(clock(120.0, 20, 300)),
                      offline_after_s=draw(clock(120.0, 20, 300)), delete_after_s=draw(clock(300.0, 30, 600))),
        slots=Slots(pod_offline_after_s=draw(clock(120.0, 20, 300)),
                    reservation_expiry_s=draw(clock(24 * 3600.0, 30, 900)),
                    unhealthy_grace_s=draw(clock(120.0, 0, 300)),
                    unhealthy_backoff_s=draw(st.just(Slots().unhealthy_backoff_s) | backoff),
                    unhealthy_max_restarts=draw(st.just(5) | st.integers(0, 6))),
        reference=ReferencePolicy(
            reconcile_period_s=draw(clock(5.0, 1, 20)), plan_ttl_s=draw(clock(24 * 3600.0, 30, 900)),
            run_timeout_s=draw(clock(3600.0, 30, 900)), reservation_hold_s=draw(clock(900.0, 0, 600)),
            apply_wait_deadline_s=draw(clock(1800.0, 30, 900)),
            idle_pod_cooldown_s=draw(clock(60.0, 0, 300)), agent_startup_grace_s=draw(clock(180.0, 10, 300)),
            agent_timeout_s=draw(clock(60.0, 10, 300)), report_grace_s=draw(clock(25.0, 1, 120))),
    )


def changed_clocks(clocks: Settings) -> dict[str, Any]:
    """The clocks drawn short, by dotted name: what a story reproducing a failure sets."""
    out = {}
    for group in fields(Settings):
        drawn, shipped = getattr(clocks, group.name), getattr(Settings(), group.name)
        out.update({f"{group.name}.{f.name}": getattr(drawn, f.name) for f in fields(drawn)
                    if getattr(drawn, f.name) != getattr(shipped, f.name)})
    return out


def for_run(clocks: Settings, cfg: Any, **reference: Any) -> Settings:
    """`clocks` as a run of `cfg` takes them: with the scenario's time of day (its freeze
    windows), and any reference setting given (`skip_quiet_reconciles`)."""
    return replace(clocks, seed=replace(clocks.seed, clock_origin_s=cfg.clock_origin_s),
                   reference=replace(clocks.reference, **reference))
