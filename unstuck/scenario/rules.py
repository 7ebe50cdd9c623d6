"""Rules across fields and sections: a pool named by a workload or a fault exists, a fault's
times fall inside the run, a patch sets bounds the API server would take, no setting asks for
more events than a run can hold. Each finding is (field path, value, rule and fix); `loading`
words it as a line."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from sim import config as sc
from unstuck.scenario.messages import UNSHOWN
from unstuck.scenario.schema import (
    BOUND_IS_FOR_PATCH,
    EMPTY_GROUP,
    HPA_NEEDS_DEPLOYMENT,
    INITIAL_NEEDS_DEPLOYMENT,
    LOAD_IS_FOR_METRIC,
    LOAD_MAX,
    METRIC_NEEDS_LOAD,
    NO_WRITE_FAILS,
    PREFIX_WITH_NAMES,
    TARGET_MAX,
    HpaScaleDown,
    PoolModel,
    PoolScaleDown,
    Scenario,
    Workspaces,
)


def cross_field_problems(s: Scenario, bad: frozenset[Any] = frozenset()) -> list[tuple[str, Any, str]]:
    """Cross-field rules: (field path, value, rule and fix). A rule that reads a top-level
    section in `bad` (one that failed validation, left at its default in `s`) is skipped, so
    the other sections' rules are reported in the same round as the field errors."""
    def ok(*sections: str) -> bool:
        return bad.isdisjoint(sections)

    out: list[tuple[str, Any, str]] = []
    if ok("duration_s", "drain_s") and s.duration_s + s.drain_s <= 0:
        out.append(("duration_s", s.duration_s, "with drain_s 0 the run would last 0 s; "
                    "make duration_s (or drain_s) > 0"))
    if ok("pools") and not s.pools:
        out.append(("pools", [], "needs at least one pool (workspaces and faults default to the "
                    "first); list one, or leave pools out for the default bare pool-1"))
    ids = [p.id for p in s.pools]
    for i, p in enumerate(s.pools if ok("pools") else ()):
        if ids.count(p.id) > 1:
            out.append((f"pools[{i}].id", p.id, "pool ids must be unique; rename one"))
        if p.max_replicas < max(1, p.min_replicas):
            out.append((f"pools[{i}].max_replicas", p.max_replicas,
                        f"must be >= 1 and >= min_replicas ({p.min_replicas})"))
        if p.manager == "bare" and p.initial_replicas is not None:
            out.append((f"pools[{i}].initial_replicas", p.initial_replicas, INITIAL_NEEDS_DEPLOYMENT))
        if p.hpa is not None and p.manager != "deployment":
            out.append((f"pools[{i}].hpa", UNSHOWN, HPA_NEEDS_DEPLOYMENT))
        if p.hpa is not None and p.manager == "deployment" and p.min_replicas < 1:
            out.append((f"pools[{i}].min_replicas", p.min_replicas, "is the HPA's minReplicas, "
                        f"which must be >= 1: {_SCALE_TO_ZERO}; set min_replicas: 1, or remove "
                        "hpa to let the scheduler scale the Deployment"))
        if p.hpa is not None and p.manager == "deployment" and p.initial_replicas == 0:
            out.append((f"pools[{i}].initial_replicas", 0, "an HPA does not scale a Deployment "
                        "at 0 replicas (ScalingDisabled), so no pod would ever run; set "
                        "initial_replicas: 1 or more, or leave it out to start at min_replicas"))
        if p.hpa is not None and p.hpa.target < 0.01:
            out.append((f"pools[{i}].hpa.target", p.hpa.target, "must be >= 0.01: Kubernetes "
                        "takes a target utilization in whole percent, at least 1 (0.8 means 80 %)"))
        if p.hpa is not None and p.hpa.target > TARGET_MAX:
            out.append((f"pools[{i}].hpa.target", p.hpa.target, "is a fraction of the pods' CPU "
                        f"request (0.8 means 80 %), so {p.hpa.target:g} would be "
                        f"{p.hpa.target * 100:,.0f} %; write {p.hpa.target / 100:g} (a target is at "
                        f"most {TARGET_MAX:g}, {TARGET_MAX * 100:,.0f} %)"))
        if p.hpa is not None and p.hpa.load > LOAD_MAX:
            out.append((f"pools[{i}].hpa.load", p.hpa.load, f"is the load in pods at 100 %; "
                        f"at most {LOAD_MAX:,} (a pool has at most max_replicas pods)"))
    seen: dict[str, str] = {}  # workspace name -> the group that has it
    if ok("workload") and not s.workload:
        out.append(("workload", [], "has no workspace group, so no task is ever created and "
                    "the run proves nothing; add one, for example [{count: 1, at: [0]}]"))
    for i, w in enumerate(s.workload if ok("workload") else ()):
        if w.size == 0:
            field = "count" if w.names is None else "names"
            out.append((f"workload[{i}].{field}", getattr(w, field), EMPTY_GROUP))
        elif not w.at and ok("duration_s") and s.duration_s == 0:
            out.append((f"workload[{i}].every_s", w.every_s, "with duration_s 0 no task "
                        "arrives at a rate; give at: [0], or make duration_s > 0"))
        if ok("pools") and ids and w.pool is not None and w.pool not in ids:
            out.append((f"workload[{i}].pool", w.pool, f"no such pool; choose one of {', '.join(dict.fromkeys(ids))}"))
        if w.names is not None and "prefix" in w.model_fields_set:
            out.append((f"workload[{i}].prefix", w.prefix, PREFIX_WITH_NAMES))
        out += _repeated_workspaces(i, w, seen)
        late = next((j for j, t in enumerate(w.at) if t > s.duration_s), None) if ok(
            "duration_s") else None
        if late is not None:
            out.append((f"workload[{i}].at[{late}]", w.at[late], f"is after duration_s "
                        f"({s.duration_s:g}); tasks arrive only while the workload runs"))
    deployments = {p.id for p in s.pools if p.manager == "deployment" and p.hpa is not None}
    for i, f in enumerate(s.faults if ok("faults") else ()):
        out += _ignored_options(i, f)
        pool = getattr(f, "pool", None)
        if ok("pools") and ids and pool is not None and pool not in ids:  # none: told above
            out.append((f"faults[{i}].pool", pool, f"no such pool; choose one of {', '.join(dict.fromkeys(ids))}"))
        if f.type == "hpa-scale-down" and ok("pools"):
            target = sc.hpa_fault_pool(pool, deployments)
            if target not in deployments:
                out.append((f"faults[{i}].type", f.type, "needs a pool with manager: deployment "
                            "and an hpa section; add one or use pool-scale-down"))
            if f.mode == "metric" and f.load is None:
                out.append((f"faults[{i}].load", UNSHOWN, METRIC_NEEDS_LOAD))
            if f.mode == "patch" and target in deployments:
                out += _patch_problems(i, f, next(p for p in s.pools if p.id == target),
                                       "the API server rejects such an HPA")
        if f.type == "pool-scale-down" and s.pools and ok("pools"):
            target = pool if pool is not None else s.pools[0].id
            if target in ids:
                out += _patch_problems(i, f, next(p for p in s.pools if p.id == target),
                                       "a pool may not have such bounds, as under `pools`")
        if not ok("duration_s", "drain_s"):
            continue
        if f.at is not None and f.at > s.duration_s:
            out.append((f"faults[{i}].at", f.at, f"is after duration_s ({s.duration_s:g}); "
                        "faults fire only while the workload runs"))
        out += _window_problems(i, f, s)
    if ok("gates", "faults", "users"):
        out += _unreachable_goals(s)
    return out + _too_often(s, ok)


def _unreachable_goals(s: Scenario) -> list[tuple[str, Any, str]]:
    """A `gates.sometimes` goal no declared fault can reach: the gate would fail every run of
    the scenario with exit 3, whatever the scheduler did."""
    declared = s.fault_types()
    out: list[tuple[str, Any, str]] = []
    for i, g in enumerate(s.gates.sometimes):
        if not declared:
            out.append((f"gates.sometimes[{i}].hit", g.hit, "no fault is declared, so nothing can "
                        "hit a task and the goal is never reached; add a fault, or remove the goal"))
        elif g.by is not None and g.by not in declared:
            out.append((f"gates.sometimes[{i}].by", g.by, f"no {g.by} fault is declared, so the "
                        f"goal is never reached; add one under faults, or choose one of "
                        f"{', '.join(declared)}"))
        elif g.confirmed and g.by == "double-confirm":
            out.append((f"gates.sometimes[{i}].confirmed", g.confirmed, "a double-confirm hits "
                        "a task still waiting for its confirm (its clicks are the confirm), so "
                        "the goal is never reached; set confirmed: false, or remove it"))
        elif (g.confirmed and s.users.never_confirm + s.users.cancel >= 1
              and "double-confirm" not in declared):
            out.append((f"gates.sometimes[{i}].confirmed", g.confirmed, "no user ever confirms "
                        "(users.never_confirm + users.cancel = 1) and no double-confirm fault "
                        "is declared, so no task waits confirmed and the goal is never reached; "
                        "lower those shares, or set confirmed: false"))
    return out


def _ignored_options(i: int, f: Any) -> list[tuple[str, Any, str]]:
    """Options a fault accepts and then does nothing with (the run recorded the fault, which
    did nothing, or not what the option says): refused, naming the option to drop."""
    out: list[tuple[str, Any, str]] = []
    if f.type == "hpa-scale-down" and f.mode == "patch" and f.load is not None:
        out.append((f"faults[{i}].load", f.load, LOAD_IS_FOR_METRIC))
    if f.type == "hpa-scale-down" and f.mode == "metric":
        out += [(f"faults[{i}].{k}", getattr(f, k), BOUND_IS_FOR_PATCH)
                for k in ("min_replicas", "max_replicas") if getattr(f, k) is not None]
    if f.type == "db-write-failure" and f.rate == 0:
        out.append((f"faults[{i}].rate", f.rate, NO_WRITE_FAILS))
    if (f.type == "pool-scale-down" and f.freeze_s == 0 and (f.duration_s or 0) > 0
            and f.min_replicas is None and f.max_replicas is None):
        out.append((f"faults[{i}].freeze_s", f.freeze_s, "a freeze window of 0 s freezes "
                    "nothing, and the fault patches no bounds, so it does nothing; make it > 0, "
                    "or set min_replicas and/or max_replicas"))
    return out


def _repeated_workspaces(i: int, w: Workspaces, seen: dict[str, str]
                         ) -> list[tuple[str, Any, str]]:
    """The first workspace of group `i` that an earlier group (or its own `names`) already
    has, named where the user wrote it: a name in `names`, or the `prefix` of a count."""
    names = w.names if w.names is not None else [f"{w.prefix}-{k}" for k in range(1, w.size + 1)]
    out: list[tuple[str, Any, str]] = []
    for j, name in enumerate(names):
        if name in seen and not out:
            other = seen[name]
            if w.names is not None:
                out.append((f"workload[{i}].names[{j}]", name, f"is already a workspace of "
                            f"{other}; a workspace belongs to one group, once: drop it or "
                            "rename it"))
            else:
                out.append((f"workload[{i}].prefix", w.prefix, f"makes workspace {name!r}, "
                            f"already a workspace of {other}; give this group another prefix"))
        seen.setdefault(name, f"workload[{i}]" + (f".names[{j}]" if w.names is not None else ""))
    return out


def _window_problems(i: int, f: Any, s: Scenario) -> list[tuple[str, Any, str]]:
    """Times that make a fault never fire, or a window no component can see, and yet passed:
    the run said `faults_never_fired` and exited 0. A rate_per_h fault draws its times in
    (start_s, end_s], cut at duration_s as an `at` is (sim.faults.attempts)."""
    out: list[tuple[str, Any, str]] = []
    d = s.duration_s
    if f.at is not None:
        out += [(f"faults[{i}].{k}", getattr(f, k), "bounds the window of a rate_per_h fault; "
                 "a fault with at fires at that time: remove it")
                for k in ("start_s", "end_s") if k in f.model_fields_set]
    elif d == 0:
        out.append((f"faults[{i}].rate_per_h", f.rate_per_h, "with duration_s 0 there is no "
                    "time to draw from, so the fault never fires; use at: 0, or make duration_s "
                    "> 0"))
    else:
        if f.start_s >= d:
            out.append((f"faults[{i}].start_s", f.start_s, f"is not before duration_s ({d:g}); "
                        "faults fire only while the workload runs, so this one never would; "
                        f"make start_s less than {d:g}"))
        if f.end_s is not None and f.end_s > d:
            out.append((f"faults[{i}].end_s", f.end_s, f"is after duration_s ({d:g}); faults "
                        f"fire only while the workload runs; make end_s at most {d:g}, or "
                        "leave it out (the window then ends at duration_s)"))
        elif f.end_s is not None and f.end_s <= f.start_s and f.start_s < d:
            out.append((f"faults[{i}].end_s", f.end_s, f"is not after start_s "
                        f"({f.start_s:g}): the window is empty, so the fault never fires; make "
                        "end_s greater than start_s"))
    # A window of 0 s is laid and taken off at one instant: no component sees it.
    span = (max(f.freeze_s, f.duration_s or 0.0) if f.type == "pool-scale-down" else
            f.duration_s if f.type in ("db-write-failure", "hpa-scale-down") else None)
    if span == 0:
        k = "freeze_s" if f.type == "pool-scale-down" else "duration_s"
        out.append((f"faults[{i}].{k}", getattr(f, k), "a window of 0 s is taken off the "
                    "moment it is laid, so nothing sees the fault; make it > 0"))
    return out


def fault_window_s(s: Scenario, f: Any) -> float:
    """How long a `rate_per_h` fault draws times for (sim.faults.attempts)."""
    end = min(f.end_s if f.end_s is not None else s.duration_s, s.duration_s)
    return max(0.0, end - f.start_s)


REPEATS_MAX = 1_000_000  # of one periodic setting in one run; shipped scenarios stay below 2,000


def _too_often(s: Scenario, ok: Callable[..., bool]) -> list[tuple[str, Any, str]]:
    """Periods so short (or rates so high) that one setting alone would schedule more than
    REPEATS_MAX events: such a run does not hang for ever, but for hours (a `retry_s: 1e-9`
    was 6e11 attempts), so it is refused with the least value that would run. `ok(sections)`
    says whether the sections a rule reads validated (`cross_field_problems`)."""
    if not ok("duration_s", "drain_s"):
        return []
    run = s.duration_s + s.drain_s
    out = _too_many_tasks(s) if ok("workload") else []
    periods: list[tuple[str, float | None, float, str]] = []
    periods += [(f"faults[{i}].retry_s", f.retry_s, f.within_s, "attempts within within_s")
                for i, f in enumerate(s.faults) if ok("faults")]
    periods += [(f"pools[{i}].hpa.sync_period_s", p.hpa.sync_period_s, run, "HPA syncs")
                for i, p in enumerate(s.pools) if p.hpa is not None and ok("pools")]
    periods += [(f"cluster.node.{k}", getattr(s.cluster.node, k), run, "per node")
                for k in ("lease_renew_s", "monitor_period_s") if ok("cluster")]
    for path, period, span, what in periods:
        if period and span / period > REPEATS_MAX * (1 + 1e-9):  # the least value named runs
            out.append((path, period, f"would repeat {count_text(span / period)} times ({what}) "
                        f"in {span:g} s, more than the {REPEATS_MAX:,} a run allows; make it "
                        f"at least {_suggest(span / REPEATS_MAX, up=True)}"))
    for i, f in enumerate(s.faults if ok("faults") else ()):
        if f.rate_per_h is not None:
            span = fault_window_s(s, f)
            if f.rate_per_h * span / 3600 > REPEATS_MAX * (1 + 1e-9):
                out.append((f"faults[{i}].rate_per_h", f.rate_per_h, f"would fire "
                            f"{count_text(f.rate_per_h * span / 3600)} times in {span:g} s, more "
                            f"than the {REPEATS_MAX:,} a run allows; make it at most "
                            f"{_suggest(REPEATS_MAX * 3600 / span, up=False)}"))
    return out


def _too_many_tasks(s: Scenario) -> list[tuple[str, Any, str]]:
    """A workload that would create more than REPEATS_MAX tasks in all (on average): the
    guard was per workspace, and 100,000 workspaces with a task every 60 s for a day (144
    million) only got a warning, then ran for ever. Named at the group that asks for the
    most, with a value that brings the whole workload under the limit."""
    per = [w.size * (len(w.at) + (s.duration_s / w.every_s if w.every_s else 0.0))
           for w in s.workload]
    total = sum(per)
    if total <= REPEATS_MAX * (1 + 1e-9):  # the least value named runs
        return []
    i = max(range(len(per)), key=per.__getitem__)
    w = s.workload[i]
    too_many = (f"the workload would create about {count_text(total)} tasks ({count_text(per[i])} from "
                f"this group's {w.size:,} workspaces) in {s.duration_s:g} s, more than the "
                f"{REPEATS_MAX:,} a run allows")
    left = REPEATS_MAX - (total - per[i])  # for this group, the others as they are
    if w.every_s and left - w.size * len(w.at) > 0:
        least = w.size * s.duration_s / (left - w.size * len(w.at))
        return [(f"workload[{i}].every_s", w.every_s,
                 f"{too_many}; make it at least {_suggest(least, up=True)}")]
    per_ws = per[i] / w.size
    if w.names is None and left >= per_ws:
        return [(f"workload[{i}].count", w.count,
                 f"{too_many}; make it at most {math.floor(left / per_ws):,}")]
    return [(f"workload[{i}]", UNSHOWN, f"{too_many}; give it fewer workspaces or at times, "
             "or a longer every_s")]


def _suggest(x: float, *, up: bool) -> str:
    """`x` to 3 significant figures, rounded up or down (a least or greatest value a message
    suggests must itself be accepted), written as one would type it in YAML."""
    f = 10.0 ** (math.floor(math.log10(x)) - 2)
    v = (math.ceil(x / f) if up else math.floor(x / f)) * f
    return f"{v:.0f}" if v >= 1000 else f"{v:.6g}"


def count_text(x: float) -> str:
    """A count or a span for a message: digits while they are few, else a mantissa."""
    return f"{x:,.0f}" if x < 1e9 else f"{x:.3g}"


_SCALE_TO_ZERO = ("the API server refuses 0 unless the HPAScaleToZero feature gate (alpha, off "
                  "by default) is on, and an HPA at 0 pods has no pod metric to scale up from")


def _patch_problems(i: int, f: HpaScaleDown | PoolScaleDown, pool: PoolModel, why: str
                    ) -> list[tuple[str, Any, str]]:
    """Bounds a patch may not set (`why` says who refuses them: the API server for an HPA,
    our own pool rule for the seed's pool row): the patched bounds need 1 <= max and
    min <= max. A field the patch leaves out keeps the pool's value (the patch replaces the
    base's fields while it lasts, docs/scenarios.md)."""
    lo, hi = f.min_replicas, f.max_replicas
    where = f"pool {pool.id!r}"
    if isinstance(f, HpaScaleDown) and lo is not None and lo < 1:
        return [(f"faults[{i}].min_replicas", lo, f"an HPA's minReplicas must be >= 1: "
                 f"{_SCALE_TO_ZERO}; set min_replicas: 1 or more")]
    if hi is not None and hi < 1:
        return [(f"faults[{i}].max_replicas", hi, f"max_replicas must be >= 1 ({why}); set "
                 "max_replicas: 1 or more")]
    if lo is not None and hi is not None and lo > hi:
        return [(f"faults[{i}].min_replicas", lo, f"is above the patch's max_replicas ({hi}) "
                 f"({why}): lower min_replicas or raise max_replicas")]
    if lo is not None and hi is None and lo > pool.max_replicas:
        return [(f"faults[{i}].min_replicas", lo, f"is above the max_replicas of {where} "
                 f"({pool.max_replicas}), which the patch keeps ({why}): lower min_replicas "
                 f"to at most {pool.max_replicas} or also patch max_replicas")]
    if hi is not None and lo is None and hi < pool.min_replicas:
        return [(f"faults[{i}].max_replicas", hi, f"is below the min_replicas of {where} "
                 f"({pool.min_replicas}), which the patch keeps ({why}): raise max_replicas "
                 f"to at least {pool.min_replicas} or also patch min_replicas")]
    return []
