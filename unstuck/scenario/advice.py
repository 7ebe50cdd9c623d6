"""Advice on a scenario that is valid and still cannot pass: warnings, printed before a run,
that do not stop it."""

from __future__ import annotations

import math

from scheduler.settings import ReferencePolicy
from unstuck.scenario.messages import UNSHOWN, line
from unstuck.scenario.rules import count_text, fault_window_s
from unstuck.scenario.schema import Dist, Scenario

BUSY_MAX = 0.75  # of a pool's pod time in a run: the shipped scenarios ask for at most 13 %
ARRIVALS_Q = 0.999  # of a workspace's every_s arrivals: a seed asked for more is that rare


def arrivals_at_most(mean: float, q: float = ARRIVALS_Q) -> int:
    """The count of Poisson arrivals with this mean that a run exceeds with probability
    1 - q (every_s arrivals are exponential gaps)."""
    if mean <= 0:
        return 0
    if mean > 700:  # exp(-mean) underflows: the normal approximation is close by then
        return math.ceil(mean + 3.1 * math.sqrt(mean))
    k, pmf = 0, math.exp(-mean)
    cdf = pmf
    while cdf < q:
        k += 1
        pmf *= mean / k
        cdf += pmf
    return k


def advice(s: Scenario, file: str) -> list[str]:
    """Warnings, not errors: settings that leave no room for the work they bound, so that an
    invariant may fail under every scheduler, the reference included (the scenario fuzz found
    them, docs/scenarios.md "Configurations no scheduler passes"). A scenario may mean to
    show exactly that, so it still runs."""
    out = []
    # A drain must outlast the longest plan or apply in about 10,000: one confirmed just
    # before it starts is missed now and then by the distribution's tail alone (the fuzz drew
    # a 439 s apply, p99 400 s, under a 438 s drain).
    plan, apply = (d.world().quantile(0.9999) for d in (s.agents.plan_s, s.agents.apply_s))
    phase, longest = max((plan, "plan_s"), (apply, "apply_s"))
    if s.drain_s < phase:
        out.append(line(file, "drain_s", s.drain_s, f"is shorter than one {longest[:-2]}'s "
                         f"p99.99 (agents.{longest}: {phase:.0f} s): a task created or confirmed "
                         "as the workload ends may still run when the drain ends, and `drained` "
                         f"fail under every scheduler; make drain_s at least {phase:.0f} plus a "
                         "pod start and connect"))
    # A plan its agent still runs at the reference's run timeout fails there (run again it
    # would time out again); an apply is settled from the state, or made `applied` by its
    # late report.
    timeout, plan99 = ReferencePolicy().run_timeout_s, s.agents.plan_s.world().quantile(0.99)
    if plan99 > timeout:
        out.append(line(file, "agents.plan_s", UNSHOWN, f"has a p99 of {plan99:.0f} s, over the "
                         f"reference's run timeout ({timeout:.0f} s): the reference stops a plan "
                         "still running then and fails its task (run again, it would time out "
                         "again), so such tasks end failed under it; keep the p99 under "
                         f"{timeout:.0f} s"))
    # A bound is only at risk when a confirmed task must wait for another's apply to end.
    apply99 = s.agents.apply_s.world().quantile(0.99)
    if s.bounds.apply_pending_s < apply99:
        out.append(line(file, "bounds.apply_pending_s", s.bounds.apply_pending_s,
                         f"is shorter than an apply's p99 (agents.apply_s: {apply99:.0f} s): a "
                         "confirmed task that waits for a running apply's slot (a pool at "
                         "max_replicas) may break apply_pending_bound under every scheduler; "
                         f"make it at least {apply99:.0f}"))
    # A confirmed task whose pod went (a fault, a scale-down) and found every other pod busy
    # waits for a new pod to start and its agent to connect: no scheduler can do that in less
    # (the scenario fuzz drew a 1 s bound, broken by a 2.1 s start).
    w = s.world()
    start = w.cluster.pod_startup.p99() + w.agents.connect.quantile(0.99)
    if s.bounds.apply_pending_s < start:
        out.append(line(file, "bounds.apply_pending_s", s.bounds.apply_pending_s,
                         f"is shorter than a new pod's start and its agent's connect (p99 "
                         f"{start:.0f} s, cluster.pod_startup and agents.connect_s): a confirmed "
                         "task whose pod went (a fault, a scale-down) waits for a new one, and "
                         "may break apply_pending_bound under every scheduler; make it at least "
                         f"{math.ceil(start)}"))
    # A workspace runs one task at a time: tasks that come faster than one is done queue up
    # for the whole run.
    a, u = s.agents, s.users
    plan_mean = a.plan_s.world().mean()
    pa_mean = plan_mean + a.has_changes * (u.confirm_s.world().mean() + a.apply_s.world().mean())
    # A pod runs one plan_and_apply at a time, so a pool does at most max_replicas of them at
    # once. Asked for more than three quarters of that over the whole run, its queues grow
    # long (arrivals bunch, and n tasks on m pods take ceil(n/m) rounds, not n/m), and tasks
    # may still be queued at the end. A plan waiting for its user's confirm keeps its pod's
    # plan_and_apply slot for at most the reference's reservation_hold_s (then a waiting plan
    # may take it, F11), so that much of the confirm counts. The pods' time counts from the
    # pool's first arrival: a burst late in the run has only the rest of it (the fuzz drew 6
    # tasks at t=1,497 on one pod, queued past the drain of a 3,600 s run).
    hold = ReferencePolicy().reservation_hold_s
    pod_mean = plan_mean + a.has_changes * (min(u.confirm_s.world().mean(), hold)
                                            + a.apply_s.world().mean())
    run = s.duration_s + s.drain_s
    work: dict[str, tuple[float, float]] = {}
    first: dict[str, float] = {}  # each pool's first arrival (every_s arrivals start at 0)
    for i, w in enumerate(s.workload):
        pa_share = w.types.get("plan_and_apply", 0.0) / sum(w.types.values())
        busy = pa_share * pa_mean + (1 - pa_share) * plan_mean
        per_ws = len(w.at) + (s.duration_s / w.every_s if w.every_s else 0.0)
        # Its own time counts from its first arrival, as a pool's does (below), and every_s
        # arrivals by the count a seed exceeds once in a thousand: the fuzz drew `at: [0, 0]`
        # and every_s 400 of 400 s plans in a 2,400 s run (1,400 s of work on average; 7 tasks
        # came in one seed, the last still planning at the end). Only where every arrival
        # queues: a plan with changes locks its workspace until its apply ends, and the tasks
        # asked for meanwhile are refused (423), not queued (timed-out-apply-stale-plan asks
        # for 6 tasks of an hour each in 5 hours, and 2 are refused).
        start = 0.0 if w.every_s else min(w.at, default=0.0)  # the group's first arrival
        ws_time = run - start
        queues = not (a.has_changes and pa_share)
        at_most = len(w.at) + (arrivals_at_most(s.duration_s / w.every_s) if w.every_s else 0)
        if w.every_s is not None and w.every_s < busy:
            out.append(line(file, f"workload[{i}].every_s", w.every_s, f"is shorter than the "
                             f"{busy:.0f} s a task keeps its workspace busy on average (plan, "
                             "and for a plan_and_apply with changes the user's confirm and the "
                             "apply): a workspace runs one task at a time, so its queue grows "
                             "for the whole run and `drained` may fail under every scheduler; "
                             f"make every_s at least {busy:.0f}, or spread the load over more "
                             "workspaces"))
        elif queues and at_most * busy > ws_time:
            out.append(line(file, f"workload[{i}]", None, show_value=False, rule=(
                f"a workspace may be asked for {at_most} tasks in a run (1 seed in 1,000 asks "
                f"for more; {per_ws:.1f} on average), {at_most * busy:,.0f} s of one-at-a-time "
                f"work at {busy:.0f} s a task, more than the {ws_time:,.0f} s from its first "
                "arrival to the run's end: tasks may still be queued at the end and `drained` "
                "fail under every scheduler; ask each workspace for fewer tasks (at, every_s), "
                "or spread them over more workspaces")))
        pool = w.pool if w.pool is not None else (s.pools[0].id if s.pools else "")
        n = w.size * per_ws * pa_share
        tasks, secs = work.get(pool, (0.0, 0.0))
        work[pool] = (tasks + n, secs + n * pod_mean)
        if n:
            first[pool] = min(first.get(pool, start), start)
    for i, p in enumerate(s.pools):
        tasks, secs = work.get(p.id, (0.0, 0.0))
        window = run - first.get(p.id, 0.0)
        if secs > BUSY_MAX * p.max_replicas * window:
            since = (f"in the run ({run:g} s each)" if window == run else
                     f"from its first arrival to the run's end ({window:.0f} s each)")
            need = secs / (BUSY_MAX * window) if window > 0 else math.inf
            out.append(line(file, f"pools[{i}].max_replicas", p.max_replicas, f"the workload "
                             f"asks this pool for about {count_text(tasks)} plan_and_apply tasks, "
                             f"{count_text(secs)} s of pod time (a pod runs one at a time, "
                             f"{pod_mean:.0f} s each on average: plan, held confirm, apply), over 3/4 "
                             f"of what {p.max_replicas} pods give {since}: "
                             "tasks may still be queued at its end and `drained` fail under "
                             "every scheduler; raise max_replicas"
                             + (f" to at least {math.ceil(need)}" if math.isfinite(need) else "")
                             + ", or lighten the workload"))
    # A heal or reconnect due after the run's end never happens in it, so the fault acts as
    # one without it. A warning, not a refusal: `unstuck shrink` writes a drawn attempt as
    # `at` with its fault's heal_after, and its replay must run.
    for i, f in enumerate(s.faults):
        first = f.at if f.at is not None else f.start_s
        heals = "the agent is never heard again" if f.type == "agent-partition" else "the node never heals"
        for k, what in (("heal_after", heals), ("reconnect_after", "the agent never reconnects")):
            after = getattr(f, k, None)
            if isinstance(after, Dist):  # a drawn one: warn when its mean draw is late
                after = round(after.world().mean(), 3)
            if after is not None and first + after >= run:
                out.append(line(file, f"faults[{i}].{k}", after, f"ends after the run (the "
                                 f"fault fires at {first:g} s at the earliest, the run ends at "
                                 f"duration_s + drain_s = {run:g} s), so {what} in it; make {k} "
                                 f"less than {run - first:g}, or leave it out"))
    lost = [(i, f) for i, f in enumerate(s.faults) if f.type == "node-loss" and f.heal_after is None]
    expected = sum(1.0 if f.at is not None else f.rate_per_h * fault_window_s(s, f) / 3600
                   for _, f in lost)  # type: ignore[operator]
    if lost and expected >= s.cluster.nodes:
        i = lost[0][0]
        out.append(line(file, f"faults[{i}].heal_after", None, f"node-loss faults that never heal "
                         f"may take {expected:.3g} nodes (on average) of the {s.cluster.nodes}: with "
                         "every node lost no pod runs again, and `drained` fails under every "
                         "scheduler; set heal_after, or add nodes", show_value=False))
    return ["warning: " + line for line in out]
