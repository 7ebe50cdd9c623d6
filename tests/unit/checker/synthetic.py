"""A synthetic, realistic-looking history of any size, for the checker's speed test.

Workspaces run plan_and_apply tasks one after another on a pool of pods; now and then a pod
is killed while a task holds a reservation on it and the task is left stuck, so the checker
has violations, witnesses and fault hits to compute, not only happy paths.
"""

from __future__ import annotations

import random

from scheduler.history import History, HistoryEvent, Kind, Source


def history(rows: int, seed: int = 1, workspaces: int = 50, pods: int = 20) -> list[dict]:
    rng = random.Random(seed)
    h = History()
    add = h.append
    t = 0.0
    for p in range(pods):
        add(HistoryEvent(0.0, Kind.POD_ADDED, Source.WORLD, pod=f"pod-{p}",
                         data={"node": f"node-{p % 4}", "pool": "pool-1"}))
    task = 0
    wedged: set[str] = set()  # a stuck task keeps its workspace locked; nothing else runs there
    while len(h) < rows - 1:
        task += 1
        ws = f"ws-{task % workspaces}"
        if ws in wedged:
            ws = f"ws-{workspaces + task}"
        pod, agent, slot = f"pod-{task % pods}", f"agent-{task % pods}", task % 4
        t += rng.uniform(0.0, 2.0)

        def ev(kind, source=Source.SCHEDULER, dt=0.0, task=task, ws=ws, **kw):
            nonlocal t
            t += dt
            add(HistoryEvent(t, kind, source, task=task, workspace=ws, **kw))

        ev(Kind.TASK_CREATED, to_status="pending", data={"type": "plan_and_apply", "user": "u"})
        ev(Kind.SLOT_ASSIGNED, pod=pod, slot=slot)
        ev(Kind.TASK_TRANSITION, from_status="pending", to_status="running", agent=agent, pod=pod)
        ev(Kind.DISPATCH, pod=pod, slot=slot, agent=agent, data={"action": "plan", "fence": 1})
        ev(Kind.EXEC_INVOKE, Source.AGENT, 0.1, agent=agent, pod=pod,
           data={"action": "plan", "fence": 1})
        ev(Kind.EXEC_OK, Source.AGENT, 1.0, agent=agent, pod=pod,
           data={"action": "plan", "fence": 1, "has_changes": True, "digest": f"d{task}"})
        ev(Kind.LOCK_ACQUIRED, reason=f"Locked for apply (task #{task})")
        ev(Kind.TASK_TRANSITION, from_status="running", to_status="apply_pending")
        ev(Kind.SLOT_RESERVED, pod=pod, slot=slot)
        if rng.random() < 0.02:
            ev(Kind.FAULT, Source.FAULT, task=None, ws=None, pod=pod, data={"type": "pod-kill"})
            ev(Kind.SLOT_RELEASED, pod=pod, slot=slot, data={"was": "reserved"})
            ev(Kind.TASK_CONFIRMED, dt=1.0, data={"user": "u", "digest": f"d{task}"})
            ev(Kind.DISPATCH_FAILED, reason="no connected agents", data={"action": "apply"})
            ev(Kind.RETRY_SCHEDULED, task=None, data={"delay": 15})
            wedged.add(ws)
            continue
        ev(Kind.TASK_CONFIRMED, dt=rng.uniform(0, 5), data={"user": "u", "digest": f"d{task}"})
        ev(Kind.TASK_TRANSITION, from_status="apply_pending", to_status="running", agent=agent)
        ev(Kind.DISPATCH, pod=pod, slot=slot, agent=agent, data={"action": "apply", "fence": 2})
        ev(Kind.EXEC_INVOKE, Source.AGENT, 0.1, agent=agent, pod=pod,
           data={"action": "apply", "fence": 2, "digest": f"d{task}"})
        ev(Kind.EXEC_OK, Source.AGENT, 1.0, agent=agent, pod=pod,
           data={"action": "apply", "fence": 2})
        ev(Kind.TASK_TRANSITION, from_status="running", to_status="applied")
        ev(Kind.LOCK_RELEASED)
        ev(Kind.SLOT_RELEASED, pod=pod, slot=slot, data={"was": "running"})
    add(HistoryEvent(t + 1000.0, Kind.RUN_END, Source.HARNESS,
                     data={"bound_s": 300.0, "drain_s": 600.0}))
    return h.rows()


if __name__ == "__main__":
    import time

    from unstuck import checker

    rows = history(100_000)
    for _ in range(3):
        t0 = time.perf_counter()
        verdict, metrics = checker.judge(rows)
        dt = time.perf_counter() - t0
    print(f"{len(rows)} rows: judge (check + measure) {dt * 1000:.0f} ms; "
          f"{len(verdict.violations)} violations, {len(metrics.recovery)} fault hits")
