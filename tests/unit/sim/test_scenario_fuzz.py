"""Scenario fuzz: any scenario is refused with clear lines or runs, deterministically, under
every scheduler.

Hypothesis draws scenario mappings over the schema of docs/scenarios.md (1-3 pools, bare or
Deployment with or without an HPA; workload groups; agent and user behaviour; every fault type
with its timing, targets and fields; bounds, short durations and drains), mostly valid and
sometimes broken by one mutation (a wrong type, a negative or non-finite number, a missing or
unknown key). For each one:

* `parse` refuses it with `ScenarioInvalid`, every line starting with the file name and naming
  a field; or
* `world()` builds, and one seed runs under each scheduler without an exception, twice with the
  same digest, and the checker judges the rows. The fuzz can draw situations no design
  survives (a bound shorter than an apply, a workspace asked for tasks faster than it can run
  them): when the reference violates an invariant, the scenario must have got a warning from
  `scenario.advice` saying so; a violation without one is a reference bug, or a configuration
  the advice should learn to name.

CI runs a fixed, database-free handful (`EXAMPLES`, derandomized). To hunt, run many random
ones: `UNSTUCK_FUZZ_EXAMPLES=3000 pytest tests/unit/sim/test_scenario_fuzz.py
--hypothesis-show-statistics`; with `UNSTUCK_FUZZ_SAVE=dir` every scenario the reference fails
is written there as YAML.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scheduler.history import digest
from scheduler.variants import NAMES
from sim.world import World
from unstuck.checker import check
from unstuck.scenario import FAULT_TYPES, Scenario, ScenarioInvalid, advice, parse
from unstuck.scenario.schema import HIT_STATUSES

FILE = "fuzz.yaml"
HARD = int(os.environ.get("UNSTUCK_FUZZ_EXAMPLES", "0"))
EXAMPLES = HARD or 20
SAVE = os.environ.get("UNSTUCK_FUZZ_SAVE")
# A hunt runs for as long as its examples take: the suite's 300 s per test would stop it
# half-way (and Hypothesis would call the example it stopped in flaky).
HUNT = pytest.mark.timeout(0) if HARD else (lambda test: test)

# ---------------------------------------------------------------------- strategies
TARGETS = ("random", "reserved-holder", "apply-runner")


def secs(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Seconds as YAML writes them: mostly whole numbers, sometimes fractions."""
    return st.one_of(st.integers(int(lo), int(hi)),
                     st.floats(lo, hi, allow_nan=False, allow_infinity=False))


def prob(hi: float = 1.0) -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from([0, 0.0, hi]), st.floats(0, hi))


def times_of_day() -> st.SearchStrategy[str]:
    return st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59))


def floor(d: dict[str, Any], f: float | None) -> dict[str, Any]:
    return d if f is None else {**d, "floor": f}


def dists(hi: float) -> st.SearchStrategy[Any]:
    """A duration distribution: a bare number or one of the four kinds, maybe floored."""
    f = st.none() | secs(0, hi / 4)
    return st.one_of(
        secs(0, hi),
        st.builds(lambda v, fl: floor({"kind": "fixed", "value": v}, fl), secs(0, hi), f),
        st.builds(lambda a, b, fl: floor({"kind": "uniform", "min": min(a, b), "max": max(a, b)}, fl),
                  secs(0, hi), secs(0, hi), f),
        st.builds(lambda m, extra, fl: floor({"kind": "lognormal", "median": m, "p99": m + extra}, fl),
                  secs(0.5, hi / 2), secs(0, hi), f),
        st.builds(lambda m, fl: floor({"kind": "exponential", "mean": m}, fl),
                  secs(0, hi).filter(bool), f),  # mean 0 is refused
    )


def maybe(d: dict[str, Any], draw: Any, key: str, strategy: st.SearchStrategy[Any]) -> None:
    if draw(st.booleans()):
        d[key] = draw(strategy)


def hpas() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        "target": st.sampled_from([0.5, 0.8, 1.0]) | st.floats(0.05, 2),
        "load": st.floats(0, 6),
        "scale_down_window_s": secs(0, 600),
        "sync_period_s": secs(1, 60),
        "tolerance": st.sampled_from([0, 0.1]) | st.floats(0, 0.5),
    })


@st.composite
def pools(draw: Any) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(1, 3))):
        p: dict[str, Any] = {"id": f"pool-{i + 1}"}
        manager = draw(st.sampled_from(["bare", "deployment"]))
        if manager == "deployment" or draw(st.booleans()):
            p["manager"] = manager
        lo = draw(st.integers(0, 3))
        p["min_replicas"] = lo
        p["max_replicas"] = draw(st.integers(max(1, lo), 5))
        if manager == "deployment":  # a bare pool has none: refused
            maybe(p, draw, "initial_replicas", st.integers(0, 6))
        maybe(p, draw, "freeze", st.lists(st.fixed_dictionaries(
            {"from": times_of_day(), "to": times_of_day()}).filter(
                lambda w: w["from"] != w["to"]), max_size=2))  # an empty window is refused
        if manager == "deployment" and draw(st.integers(0, 3)) > 0:
            p["hpa"] = draw(hpas())
        out.append(p)
    return out


@st.composite
def workload(draw: Any, pool_ids: list[str], duration: float) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(1, 3))):
        g: dict[str, Any] = {}
        if draw(st.integers(0, 4)) == 0:
            names = draw(st.lists(st.sampled_from(["alpha", "beta", "gamma"]), unique=True,
                                  min_size=1, max_size=3))  # a group of none is refused
            g["names"] = [f"{n}{i}" for n in names]
        else:  # a prefix beside names is refused
            g["prefix"] = f"g{i}"
            g["count"] = draw(st.integers(1, 5))
        if draw(st.booleans()):
            g["pool"] = draw(st.sampled_from(pool_ids))
        arrivals = draw(st.sampled_from(["at", "every", "both"]))
        if arrivals != "every":
            g["at"] = draw(st.lists(secs(0, duration * 1.1), min_size=1, max_size=3))
        if arrivals != "at":
            g["every_s"] = draw(secs(60, 3600))
        if draw(st.booleans()):
            g["types"] = draw(st.dictionaries(
                st.sampled_from(["plan_and_apply", "plan", "drift_check"]),
                st.sampled_from([0, 0.2, 1, 3]), min_size=1).filter(lambda t: any(t.values())))
        out.append(g)
    return out


def timing(draw: Any, duration: float) -> dict[str, Any]:
    t: dict[str, Any] = {}
    if duration > 0 and draw(st.integers(0, 2)) == 0:
        # A window within the workload's time (a start at or after duration_s, or an end after
        # it or not after the start, is refused: such a fault never fires).
        t["rate_per_h"] = draw(st.sampled_from([0.5, 2, 6]) | st.floats(0.1, 20))
        maybe(t, draw, "start_s", secs(0, duration))
        if t.get("start_s", 0) >= duration:
            del t["start_s"]
        start = t.get("start_s", 0)
        maybe(t, draw, "end_s", secs(start, duration))
        if t.get("end_s", duration) <= start:
            del t["end_s"]
    else:
        t["at"] = draw(secs(0, duration))
    maybe(t, draw, "within_s", secs(0, 900))
    maybe(t, draw, "retry_s", secs(0.5, 30))
    return t


def replicas(draw: Any, f: dict[str, Any]) -> None:
    maybe(f, draw, "min_replicas", st.integers(0, 4))
    maybe(f, draw, "max_replicas", st.integers(0, 5))


@st.composite
def faults(draw: Any, pool_ids: list[str], duration: float) -> dict[str, Any]:
    kind = draw(st.sampled_from(FAULT_TYPES))
    f: dict[str, Any] = {"type": kind, **timing(draw, duration)}
    pool = st.sampled_from(pool_ids)
    if kind in ("pod-kill", "node-loss", "agent-disconnect", "agent-partition"):
        maybe(f, draw, "target", st.sampled_from(TARGETS))
        maybe(f, draw, "pool", pool)
    if kind == "pod-kill":
        maybe(f, draw, "mode", st.sampled_from(["forced", "graceful"]))
    elif kind in ("node-loss", "agent-partition"):
        maybe(f, draw, "heal_after", secs(0, 1200))
    elif kind == "agent-disconnect":
        maybe(f, draw, "reconnect_after", secs(0, 300))
    elif kind == "db-write-failure":
        maybe(f, draw, "rate", prob().filter(bool))  # rate 0 does nothing: refused
        maybe(f, draw, "duration_s", secs(1, 900))
    elif kind == "double-confirm":
        maybe(f, draw, "gap_s", secs(0, 2))
    elif kind == "pool-scale-down":
        maybe(f, draw, "pool", pool)
        maybe(f, draw, "freeze_s", secs(1, 1800))
        maybe(f, draw, "duration_s", secs(0, 1800))
        replicas(draw, f)
    elif kind == "hpa-scale-down":
        maybe(f, draw, "pool", pool)
        mode = draw(st.sampled_from(["metric", "patch"]))
        if mode == "patch" or draw(st.booleans()):
            f["mode"] = mode
        if mode == "metric":
            f["load"] = draw(st.floats(0, 2))
        else:
            replicas(draw, f)
            if "min_replicas" not in f and "max_replicas" not in f:
                f["max_replicas"] = draw(st.integers(1, 3))
        maybe(f, draw, "duration_s", secs(1, 1800))
        maybe(f, draw, "rank_first", st.sampled_from(TARGETS))
    return f


@st.composite
def valid_ish(draw: Any) -> dict[str, Any]:
    """A scenario within the schema's rules as far as a generator sees them; the
    cross-field rules (an hpa-scale-down without an HPA pool, patched bounds) are left to
    chance, so some of these are refused too."""
    duration = draw(st.sampled_from([600, 1800, 3600]) | secs(0, 3600))
    d: dict[str, Any] = {"name": "fuzz", "seeds": 1, "duration_s": duration}
    maybe(d, draw, "drain_s", st.sampled_from([0, 600, 1800]) | secs(0, 1800))
    if d.get("drain_s", 1800) == 0 and duration == 0:
        d["duration_s"] = duration = 600
    maybe(d, draw, "clock_origin", times_of_day())
    maybe(d, draw, "bounds", st.fixed_dictionaries({"apply_pending_s": secs(0, 1200)}))
    maybe(d, draw, "cluster", st.fixed_dictionaries({}, optional={
        "nodes": st.integers(0, 4),
        "grace_s": secs(0, 60),
        "watch_latency_s": st.sampled_from([0, 0.05]) | secs(0, 2),
        "pod_startup": st.sampled_from(["lognormal", "fixed", "uniform"]).flatmap(
            lambda k: st.builds(lambda lo, med, extra: {"kind": k, "min_s": lo, "median_s": lo + med,
                                                        "p99_s": lo + med + extra},
                                secs(0, 5), secs(0.5, 20), secs(0, 30))),
        "node": st.fixed_dictionaries({}, optional={
            "grace_s": secs(1, 120), "toleration_s": secs(0, 600),
            "lease_renew_s": secs(1, 30), "monitor_period_s": secs(1, 30)}).filter(
                lambda n: n.get("grace_s", 50) > n.get("lease_renew_s", 10)),  # else refused
    }))
    ps = draw(pools()) if draw(st.integers(0, 4)) else None
    if ps is not None:
        d["pools"] = ps
    ids = [p["id"] for p in ps] if ps else ["pool-1"]
    maybe(d, draw, "agents", st.fixed_dictionaries({}, optional={
        "connect_s": dists(120), "plan_s": dists(600), "apply_s": dists(900),
        "has_changes": prob(), "plan_fail": prob(0.5), "apply_fail": prob(0.5),
        "claim_s": dists(30)}))
    maybe(d, draw, "users", st.fixed_dictionaries({}, optional={
        "confirm_s": dists(2400), "never_confirm": prob(0.34), "double_click": prob(0.33),
        "cancel": prob(0.33), "double_click_gap_s": secs(0, 2)}))
    d["workload"] = draw(workload(ids, duration))
    if draw(st.integers(0, 5)):
        d["faults"] = draw(st.lists(faults(ids, duration), max_size=6))
    # Goals: a `by` the faults above do not declare is left to chance (refused, clearly).
    maybe(d, draw, "gates", st.fixed_dictionaries({}, optional={
        "max_violations": st.integers(0, 3), "max_stuck": st.integers(0, 3),
        "sometimes": st.lists(st.fixed_dictionaries({"hit": st.sampled_from(HIT_STATUSES)}, optional={
            "by": st.sampled_from(FAULT_TYPES), "min_seeds": st.integers(1, 3),
            "run": st.sampled_from(["plan", "apply"]), "confirmed": st.booleans(),
            "schedulers": st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True)}),
            max_size=2)}))
    return d


JUNK = st.sampled_from(["5m", "300", "", "x", -1, -0.1, 0, 1.5, 7, None, True, math.nan, math.inf,
                        -math.inf, 10**400, [], {}, [1], {"kind": "fixed"}, frozenset({"a", "b"})])
ODD_KEYS = st.sampled_from(["colour", "a b", "a\nb", 5, True, None])


def _paths(v: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here] if here else []
    if isinstance(v, dict):
        for k, x in v.items():
            out += _paths(x, here + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            out += _paths(x, here + (i,))
    return out


@st.composite
def mutated(draw: Any) -> dict[str, Any]:
    """A valid-ish scenario with one thing broken: a value replaced by junk, a key dropped,
    or an unknown key added (some of these happen to stay valid: 0 is a fine count)."""
    d = draw(valid_ish())
    path = draw(st.sampled_from(_paths(d)))
    *parent_path, last = path
    parent: Any = d
    for p in parent_path:
        parent = parent[p]
    how = draw(st.sampled_from(["junk", "junk", "drop", "unknown"]))
    if how == "junk":
        parent[last] = draw(JUNK)
    elif how == "drop":
        del parent[last]
    else:
        target = parent[last] if isinstance(parent[last], dict) else parent
        if isinstance(target, dict):
            target[draw(ODD_KEYS)] = "blue"
        else:
            parent[last] = {draw(ODD_KEYS): "blue"}
    return d


scenarios = st.one_of(valid_ish(), valid_ish(), valid_ish(), mutated())


# ---------------------------------------------------------------------- the property
_PART = r"(?:[A-Za-z_][\w-]*|'[^'\n]*')(?:\[\d+\])*"  # a field, or an unknown key quoted
LINE = re.compile(rf"{re.escape(FILE)}: (?P<path>\(top level\)|{_PART}(?:\.{_PART})*)"
                  r"(?: = [^\n]* \(\w+\))?: [^\n]+")
FIELDS = set(Scenario.model_fields)


def refused_clearly(data: dict[str, Any], e: ScenarioInvalid) -> None:
    assert e.problems
    for line in e.problems:
        m = LINE.fullmatch(line)
        assert m, f"not '<file>: <field>[ = value (type)]: <rule>': {line!r}"
        root = re.split(r"[.\[]", m["path"])[0]
        keys = {str(k) for k in data} | {repr(str(k)) for k in data}  # an unknown one, named
        assert m["path"] == "(top level)" or root in FIELDS or root in keys, line


def run_once(cfg: Any, scheduler: str, seed: int) -> list[dict[str, Any]]:
    return World(cfg, scheduler, seed).run()


def save(data: dict[str, Any], scheduler: str, seed: int, invariants: list[str]) -> None:
    if not SAVE:
        return
    out = Path(SAVE)
    out.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(data, sort_keys=False)
    tag = hashlib.sha256(text.encode()).hexdigest()[:10]
    name = f"{scheduler}-{'-'.join(sorted(set(invariants)))}-{tag}.yaml"
    (out / name).write_text(f"# {scheduler}, seed {seed}: {', '.join(invariants)}\n{text}")


@HUNT
@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not HARD,
          print_blob=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                  HealthCheck.filter_too_much])
@given(data=scenarios, seed=st.integers(0, 2**16))
def test_a_scenario_is_refused_clearly_or_runs_under_every_scheduler(data, seed):
    try:
        s = parse(data, FILE)
    except ScenarioInvalid as e:
        event("refused")
        refused_clearly(data, e)
        return
    event("valid")
    cfg = s.world()
    for scheduler in NAMES:
        rows = run_once(cfg, scheduler, seed)
        assert digest(rows) == digest(run_once(cfg, scheduler, seed)), (
            f"{scheduler}, seed {seed}: a second run wrote another history")
        verdict = check(rows)
        if scheduler == "reference" and not verdict.ok:
            invariants = [v.invariant for v in verdict.violations]
            event(f"reference violated {', '.join(sorted(set(invariants)))}")
            save(data, scheduler, seed, invariants)
            assert advice(s, FILE), (
                f"the reference violated {sorted(set(invariants))} on seed {seed} of a scenario "
                "that got no warning: a reference bug, or a configuration scenario.advice should "
                "name (UNSTUCK_FUZZ_SAVE=dir keeps the YAML)")
