"""Scenario files: the validated model of `scenarios/*.yaml`, and its translation to the world.

A scenario sets the cluster, the pools, the agents, the users and their workload, the faults,
the invariant bounds and the gate thresholds (docs/scenarios.md documents every field). The
whole file is validated before anything runs and *every* problem is reported (but a rule
across fields that reads a section with a field error of its own, which waits for it), each as
one line naming the file, the field path, the value and its type, the rule and the fix, e.g.

    scenarios/x.yaml: faults[2].at = '5m' (str): expected seconds as a number; write 300

`load(path)` returns a `Scenario` or raises `ScenarioInvalid` (its `problems` are those lines);
`Scenario.world()` builds the `sim.config.WorldConfig` the simulation runs.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import re
import reprlib
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from scheduler.settings import ReferencePolicy
from sim import config as sc
from sim.kube.hpa import HPASpec
from sim.kube.nodes import NodeTimings
from sim.kube.pods import StartupDelay

FAULT_TYPES = ("pod-kill", "node-loss", "agent-disconnect", "scheduler-restart",
               "db-write-failure", "double-confirm", "pool-scale-down", "hpa-scale-down")
TASK_TYPES = ("plan_and_apply", "plan", "drift_check")


class ScenarioInvalid(ValueError):
    """A scenario file that cannot run; `problems` holds one message line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# ---------------------------------------------------------------------- field types
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def _as_seconds_hint(text: str) -> str:
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", text.strip().lower())
    joined = "".join(f"{n}{u}" for n, u in parts)
    if parts and joined == re.sub(r"\s+", "", text.strip().lower()) and all(u in _UNITS for _, u in parts):
        total = sum(float(n) * _UNITS[u] for n, u in parts)
        return f"write {total:g}"
    # A number in quotes: the fix is the same text without them (`'1e-9'`: 1e-9), if YAML
    # reads that as a finite number (`nan` would be a string again, `1_000` is YAML's 1000).
    if len(text) < 50 and not isinstance(number := _plain_scalar(text.strip()), bool) and (
            isinstance(number, int | float) and math.isfinite(number)):
        return f"write {text.strip()} without quotes"
    return "for example 300"


def _plain_scalar(text: str) -> Any:
    """`text` as YAML reads it unquoted, or None if it is not one plain scalar."""
    try:
        return read_yaml(text) if text and "\n" not in text else None
    except yaml.YAMLError:
        return None


def _seconds(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, int | float):
        hint = _as_seconds_hint(v) if isinstance(v, str) else "for example 300"
        raise PydanticCustomError("seconds", "expected seconds as a number; {hint}", {"hint": hint})
    if v != v or v < 0 or v > _FLOAT_MAX:
        raise PydanticCustomError("seconds", "expected a finite number of seconds >= 0", {})
    return float(v)


_FLOAT_MAX = 1.7976931348623157e308  # beyond: inf, or an int with no float (400 YAML digits)


def _number(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise PydanticCustomError("number", "expected a number", {})
    if v != v or abs(v) > _FLOAT_MAX:
        raise PydanticCustomError("number", "expected a finite number", {})
    return v


def _probability(v: Any) -> Any:
    _number(v)
    if not 0 <= v <= 1:
        raise PydanticCustomError("probability", "expected a probability between 0 and 1", {})
    return float(v)


def _whole(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, int):
        raise PydanticCustomError("count", "expected a whole number", {})
    return v


def _count(v: Any) -> Any:
    _whole(v)
    if v < 0:
        raise PydanticCustomError("count", "expected a whole number >= 0", {})
    return v


NAME_MAX = 100  # `unstuck shrink` appends about 35 characters to a name
_NAME_RULE = (f"expected a name of letters, digits, '-', '_' and '.', not starting with '.', "
              f"at most {NAME_MAX} characters (it names output files); for example incident-601")
_NAME = re.compile(rf"[A-Za-z0-9_-][A-Za-z0-9._-]{{0,{NAME_MAX - 1}}}")


def _name(v: Any) -> Any:
    if not isinstance(v, str) or not _NAME.fullmatch(v):
        raise PydanticCustomError("name", _NAME_RULE, {})
    return v


# Workspace names and pool ids as the live service takes them (`PUT /workspaces/{id}`): they
# reach the history, the checker's messages, JUnit XML and Parquet, and a stray control
# character or lone surrogate (`"\ud800"` in YAML) crashed the Parquet writer mid-run.
_IDENT = re.compile(r"[A-Za-z0-9._:-]{1,200}")
_IDENT_RULE = ("expected a name of letters, digits, '.', '_', ':' and '-', at most 200 "
               "characters, as the live service takes workspace ids; for example ws-a")


def _ident(v: str) -> str:
    if not _IDENT.fullmatch(v):
        raise PydanticCustomError("ident", _IDENT_RULE, {})
    return v


def _time_of_day(v: Any) -> Any:
    if isinstance(v, str) and (m := re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", v.strip())):
        return float(int(m.group(1)) * 3600 + int(m.group(2)) * 60)
    raise PydanticCustomError("time_of_day", "expected a time of day \"HH:MM\" (24 h); for example \"22:30\"", {})


Seconds = Annotated[float, BeforeValidator(_seconds)]
Ident = Annotated[str, AfterValidator(_ident)]  # after the str check: `names: [1e5]` keeps its hint
PositiveSeconds = Annotated[float, BeforeValidator(_seconds), Field(gt=0)]
Number = Annotated[float, BeforeValidator(_number)]
NonNegative = Annotated[float, BeforeValidator(_number), Field(ge=0)]
Probability = Annotated[float, BeforeValidator(_probability)]
Count = Annotated[int, BeforeValidator(_count)]
TimeOfDay = Annotated[float, BeforeValidator(_time_of_day)]
Name = Annotated[str, BeforeValidator(_name)]
# At least 1: the bound is Field's alone, so -1 and 0 get the same message (`_count` said ">= 0"
# to -1, and then ">= 1" to the 0 a user wrote next).
AtLeastOne = Annotated[int, BeforeValidator(_whole), Field(ge=1)]
SeedCount = Annotated[AtLeastOne, Field(le=1_000_000)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_DIST_PARAMS = ("value", "min", "max", "median", "p99", "mean")


class Dist(_Model):
    """A duration distribution; a bare number means `fixed`."""

    kind: Literal["fixed", "uniform", "lognormal", "exponential"]
    value: Seconds | None = None
    min: Seconds | None = None
    max: Seconds | None = None
    median: Seconds | None = None
    p99: Seconds | None = None
    mean: Seconds | None = None
    floor: Seconds = 0.0

    @model_validator(mode="before")
    @classmethod
    def _bare_number(cls, v: Any) -> Any:
        if isinstance(v, int | float) and not isinstance(v, bool):
            return {"kind": "fixed", "value": v}
        return v

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Dist:
        need = {"fixed": ("value",), "uniform": ("min", "max"), "lognormal": ("median", "p99"),
                "exponential": ("mean",)}[self.kind]
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a {self.kind} distribution needs {' and '.join(need)}; "
                             f"add {', '.join(missing)}")
        # Another kind's parameter is never read (`{kind: fixed, value: 5, min: 3}` drew 5).
        other = [f for f in _DIST_PARAMS if f in self.model_fields_set and f not in need]
        if other:
            listed = " and ".join(other)
            raise ValueError(
                f"{listed} {'is not a parameter' if len(other) == 1 else 'are not parameters'} "
                f"of a {self.kind} distribution, which takes {' and '.join(need)} (and floor); "
                f"remove {listed}" + (" (a lower bound of any kind is floor)"
                                      if "min" in other else ""))
        if self.kind == "uniform" and self.max < self.min:  # type: ignore[operator]
            raise ValueError(f"max ({self.max:g}) must be >= min ({self.min:g})")
        if self.kind == "lognormal" and (self.p99 < self.median or self.median <= 0):  # type: ignore[operator]
            raise ValueError("lognormal needs 0 < median <= p99")
        if self.kind == "exponential" and self.mean == 0:
            # It draws 0 every time: not the random durations the kind promises.
            raise ValueError("an exponential needs mean > 0 (with mean 0 every draw is 0); give "
                             "mean > 0, or write 0 for a fixed 0 s")
        return self

    def world(self) -> sc.Dist:
        k = self.kind
        if k == "fixed":
            return sc.Dist("fixed", self.value or 0.0, minimum=self.floor)
        if k == "uniform":
            return sc.Dist("uniform", self.min or 0.0, self.max or 0.0, self.floor)
        if k == "lognormal":
            return sc.Dist("lognormal", self.median or 0.0, self.p99 or 0.0, self.floor)
        return sc.Dist("exponential", self.mean or 0.0, minimum=self.floor)


class PodStartup(_Model):
    kind: Literal["lognormal", "fixed", "uniform"] = "lognormal"
    median_s: Seconds = 4.0
    p99_s: Seconds = 10.0
    min_s: Seconds = 1.0

    @model_validator(mode="after")
    def _order(self) -> PodStartup:
        # The rules of sim.kube.pods.StartupDelay, which world() builds (it raised there).
        if self.median_s < self.min_s:
            raise ValueError(f"median_s ({self.median_s:g}) must be >= min_s ({self.min_s:g}); "
                             "raise median_s or lower min_s")
        if self.kind == "lognormal" and self.median_s <= 0:
            raise ValueError("a lognormal needs median_s > 0")
        if self.kind == "lognormal" and self.p99_s < self.median_s:
            raise ValueError(f"p99_s ({self.p99_s:g}) must be >= median_s ({self.median_s:g}); "
                             "raise p99_s")
        return self

    def world(self) -> StartupDelay:
        # p99_s is unused by fixed and uniform, and StartupDelay still wants it >= median_s.
        p99 = self.p99_s if self.kind == "lognormal" else max(self.p99_s, self.median_s)
        return StartupDelay(self.kind, self.median_s, p99, self.min_s)


class NodeSettings(_Model):
    grace_s: PositiveSeconds = 50.0
    toleration_s: Seconds = 300.0
    lease_renew_s: PositiveSeconds = 10.0
    monitor_period_s: PositiveSeconds = 5.0

    @model_validator(mode="after")
    def _grace_outlasts_a_renewal(self) -> NodeSettings:
        # kube-controller-manager: the grace "must be N times more than" the kubelet's update
        # period. The world only ages a lost node's lease, so it kept such nodes Ready.
        if self.grace_s <= self.lease_renew_s:
            raise ValueError(f"grace_s ({self.grace_s:g}) must be > lease_renew_s "
                             f"({self.lease_renew_s:g}): a healthy kubelet's newest lease renewal "
                             "is up to lease_renew_s old, so a shorter grace would mark every node "
                             "Unknown between renewals; raise grace_s or lower lease_renew_s")
        return self


class Cluster(_Model):
    nodes: AtLeastOne = 3  # none: no pod could ever run
    grace_s: Seconds = 30.0
    watch_latency_s: Seconds = 0.05
    pod_startup: PodStartup = PodStartup()
    node: NodeSettings = NodeSettings()


class Freeze(_Model):
    from_: TimeOfDay = Field(alias="from")
    to: TimeOfDay

    @model_validator(mode="after")
    def _not_empty(self) -> Freeze:
        # FreezeWindow.contains: [from, to), so from == to holds no time of day.
        if self.from_ == self.to:
            raise ValueError("from and to are the same time, so the window is empty and never "
                             "freezes the pool; make to another time (a window may cross "
                             'midnight: from "22:00" to "02:00")')
        return self


class HPA(_Model):
    target: Number = 0.8
    load: NonNegative = Field(0.8, description="total load in pods at 100 %; target x n holds n pods")
    scale_down_window_s: Seconds = 300.0
    sync_period_s: PositiveSeconds = 15.0
    tolerance: NonNegative = 0.1


class PoolModel(_Model):
    id: Ident
    manager: Literal["bare", "deployment"] = "bare"
    min_replicas: Count = 1
    max_replicas: Count = 4
    initial_replicas: Count | None = None
    freeze: list[Freeze] = []
    hpa: HPA | None = None


class Agents(_Model):
    connect_s: Dist = Dist(kind="uniform", min=20, max=90)
    plan_s: Dist = Dist(kind="lognormal", median=60, p99=240, floor=5)
    apply_s: Dist = Dist(kind="lognormal", median=90, p99=400, floor=5)
    has_changes: Probability = 0.9
    plan_fail: Probability = 0.0
    apply_fail: Probability = 0.0


CLICK_RETRIES_MAX = 100  # per click: a user who clicks more has given up


class Users(_Model):
    confirm_s: Dist = Dist(kind="lognormal", median=120, p99=1800, floor=5)
    never_confirm: Probability = 0.0
    double_click: Probability = 0.0
    double_click_gap_s: Seconds = 0.1
    cancel: Probability = 0.0
    cancel_anytime: Probability = 0.0
    cancel_anytime_s: Dist = Dist(kind="uniform", min=0, max=600)
    click_retries: Annotated[Count, Field(le=CLICK_RETRIES_MAX)] = 0
    click_retry_s: Dist = Dist(kind="fixed", value=5)
    run_triggers: Probability = 0.0

    @model_validator(mode="after")
    def _sum(self) -> Users:
        total = self.never_confirm + self.double_click + self.cancel
        if total > 1:
            raise ValueError(f"never_confirm + double_click + cancel = {total:g}; they are "
                             "shares of one choice and must add up to at most 1")
        return self


WORKSPACES_MAX = 100_000  # per group: each is held in memory, and validation lists their names


class Workspaces(_Model):
    count: Annotated[Count, Field(le=WORKSPACES_MAX)] | None = None
    names: list[Ident] | None = None
    pool: str | None = None
    prefix: Ident = "ws"  # names are <prefix>-1..N: checked whole below
    at: list[Seconds] = []
    every_s: Seconds | None = None
    types: dict[Literal["plan_and_apply", "plan", "drift_check"], NonNegative] = {"plan_and_apply": 1.0}

    @property
    def size(self) -> int:
        """How many workspaces the group holds."""
        return len(self.names) if self.names is not None else self.count or 0

    @model_validator(mode="after")
    def _who(self) -> Workspaces:
        if (self.count is None) == (self.names is None):
            raise ValueError("give either count (workspaces named <prefix>-1..N) or names, not both")
        if self.count and len(last := f"{self.prefix}-{self.count}") > 200:
            raise ValueError(f"the last workspace's name, {last[:40]}..., would be {len(last)} "
                             "characters; names are at most 200: shorten prefix")
        if not self.at and self.every_s is None:
            raise ValueError("no task ever arrives: give at (times) and/or every_s (mean gap)")
        if self.every_s == 0:
            raise ValueError("every_s must be > 0")
        if not any(w > 0 for w in self.types.values()):
            raise ValueError("types: at least one weight must be > 0")
        return self


Target = Literal["random", "reserved-holder", "apply-runner"]


class _Fault(_Model):
    at: Seconds | None = None
    rate_per_h: Number | None = None
    start_s: Seconds = 0.0
    end_s: Seconds | None = None
    within_s: Seconds = 600.0
    retry_s: Seconds = 5.0

    @model_validator(mode="after")
    def _when(self) -> _Fault:
        if (self.at is None) == (self.rate_per_h is None):
            raise ValueError("give exactly one of at (seconds) or rate_per_h (random, per hour)")
        if self.rate_per_h is not None and self.rate_per_h <= 0:
            raise ValueError("rate_per_h must be > 0")
        if self.retry_s <= 0:
            raise ValueError("retry_s must be > 0")
        return self


class PodKill(_Fault):
    type: Literal["pod-kill"]
    target: Target = "random"
    mode: Literal["graceful", "forced"] = "forced"
    pool: str | None = None


class NodeLoss(_Fault):
    type: Literal["node-loss"]
    target: Target = "random"
    heal_after: Seconds | None = None
    pool: str | None = None


class AgentDisconnect(_Fault):
    type: Literal["agent-disconnect"]
    target: Target = "random"
    reconnect_after: Seconds | None = None
    pool: str | None = None


class SchedulerRestart(_Fault):
    type: Literal["scheduler-restart"]


class DbWriteFailure(_Fault):
    type: Literal["db-write-failure"]
    rate: Probability = 1.0
    duration_s: Seconds = 60.0


class DoubleConfirm(_Fault):
    type: Literal["double-confirm"]
    gap_s: Seconds = 0.1


class PoolScaleDown(_Fault):
    type: Literal["pool-scale-down"]
    pool: str | None = None
    freeze_s: Seconds = 600.0
    min_replicas: Count | None = None
    max_replicas: Count | None = None
    duration_s: Seconds | None = None


class HpaScaleDown(_Fault):
    type: Literal["hpa-scale-down"]
    pool: str | None = None
    mode: Literal["metric", "patch"] = "metric"
    load: NonNegative | None = None
    min_replicas: Count | None = None
    max_replicas: Count | None = None
    duration_s: Seconds | None = None

    @model_validator(mode="after")
    def _what(self) -> HpaScaleDown:
        if self.mode == "patch" and self.min_replicas is None and self.max_replicas is None:
            raise ValueError("mode patch needs min_replicas and/or max_replicas")
        return self


Fault = Annotated[
    Union[PodKill, NodeLoss, AgentDisconnect, SchedulerRestart, DbWriteFailure,  # noqa: UP007
          DoubleConfirm, PoolScaleDown, HpaScaleDown],
    Field(discriminator="type"),
]


class Bounds(_Model):
    apply_pending_s: Seconds = 600.0


class Gates(_Model):
    """Thresholds of `unstuck gate` (docs/gate.md), per scenario x scheduler over all seeds."""

    max_violations: Count = 0
    max_stuck: Count = 0
    recovery_p99_s: Seconds | None = None
    confirm_to_apply_p99_s: Seconds | None = None


class Scenario(_Model):
    name: Name
    description: str = ""
    seeds: SeedCount = 20
    suite_seeds: SeedCount | None = None  # `unstuck suite`'s default seed count (None: `seeds`)
    duration_s: Seconds
    drain_s: Seconds = 1800.0
    clock_origin: TimeOfDay = 0.0
    bounds: Bounds = Bounds()
    gates: Gates = Gates()
    cluster: Cluster = Cluster()
    pools: list[PoolModel] = [PoolModel(id="pool-1")]
    agents: Agents = Agents()
    users: Users = Users()
    workload: list[Workspaces]
    faults: list[Fault] = []

    def fault_types(self) -> list[str]:
        """The fault types the scenario declares, sorted: each is something a run of it
        should prove (the gate's `faults_took_effect`, sim's `faults_never_fired`)."""
        return sorted({f.type for f in self.faults})

    def world(self) -> sc.WorldConfig:
        c = self.cluster
        pools = []
        for p in self.pools:
            hpa = None
            if p.hpa is not None:
                spec = HPASpec(min_replicas=p.min_replicas, max_replicas=p.max_replicas,
                               target=p.hpa.target, tolerance=p.hpa.tolerance,
                               scale_down_window_s=p.hpa.scale_down_window_s,
                               sync_period_s=p.hpa.sync_period_s)
                hpa = sc.HPAConfig(spec, p.hpa.load)
            pools.append(sc.PoolConfig(
                p.id, p.manager, p.min_replicas, p.max_replicas,
                tuple((f.from_, f.to) for f in p.freeze), hpa, p.initial_replicas))
        first_pool = self.pools[0].id
        return sc.WorldConfig(
            name=self.name,
            duration_s=self.duration_s,
            drain_s=self.drain_s,
            bound_s=self.bounds.apply_pending_s,
            cluster=sc.ClusterConfig(
                nodes=c.nodes,
                node_timings=NodeTimings(lease_renew_s=c.node.lease_renew_s,
                                         monitor_period_s=c.node.monitor_period_s,
                                         grace_s=c.node.grace_s,
                                         toleration_s=c.node.toleration_s),
                pod_startup=c.pod_startup.world(),
                grace_s=c.grace_s, watch_latency_s=c.watch_latency_s),
            pools=tuple(pools),
            agents=sc.AgentConfig(connect=self.agents.connect_s.world(),
                                  plan=self.agents.plan_s.world(),
                                  apply=self.agents.apply_s.world(),
                                  has_changes=self.agents.has_changes,
                                  plan_fail=self.agents.plan_fail,
                                  apply_fail=self.agents.apply_fail),
            users=sc.UserConfig(confirm=self.users.confirm_s.world(),
                                never_confirm=self.users.never_confirm,
                                double_click=self.users.double_click,
                                double_click_gap_s=self.users.double_click_gap_s,
                                cancel=self.users.cancel,
                                cancel_anytime=self.users.cancel_anytime,
                                cancel_anytime_delay=self.users.cancel_anytime_s.world(),
                                click_retries=self.users.click_retries,
                                click_retry=self.users.click_retry_s.world(),
                                run_triggers=self.users.run_triggers),
            workload=tuple(
                sc.WorkspaceGroup(count=w.count or 0, pool=w.pool or first_pool, prefix=w.prefix,
                                  names=tuple(w.names or ()), at=tuple(w.at), every_s=w.every_s,
                                  types=tuple((k, float(v)) for k, v in w.types.items()))
                for w in self.workload),
            faults=tuple(_fault_spec(f) for f in self.faults),
            clock_origin_s=self.clock_origin,
        )


def _fault_spec(f: Any) -> sc.FaultSpec:
    known = {name for name in sc.FaultSpec.__dataclass_fields__}
    kw = {k: v for k, v in f.model_dump().items() if k in known and v is not None}
    return sc.FaultSpec(**kw)


# ---------------------------------------------------------------------- semantic checks
def _semantic(s: Scenario, bad: frozenset[Any] = frozenset()) -> list[tuple[str, Any, str]]:
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
            out.append((f"pools[{i}].initial_replicas", p.initial_replicas, "is a Deployment's "
                        "replicas at t = 0, and this pool's manager is bare (the scheduler "
                        "creates its pods, min_replicas at the start); remove initial_replicas, "
                        "or set manager: deployment"))
        if p.hpa is not None and p.manager != "deployment":
            out.append((f"pools[{i}].hpa", UNSHOWN, "only a manager: deployment pool has an "
                        f"HPA, and this one's manager is {p.manager}; set manager: deployment or "
                        "remove hpa"))
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
            out.append((f"workload[{i}].{field}", getattr(w, field), "a group of no workspace "
                        "creates no task, and proves nothing; make count at least 1 (or list "
                        "names), or remove the group"))
        elif not w.at and ok("duration_s") and s.duration_s == 0:
            out.append((f"workload[{i}].every_s", w.every_s, "with duration_s 0 no task "
                        "arrives at a rate; give at: [0], or make duration_s > 0"))
        if ok("pools") and ids and w.pool is not None and w.pool not in ids:
            out.append((f"workload[{i}].pool", w.pool, f"no such pool; choose one of {', '.join(dict.fromkeys(ids))}"))
        if w.names is not None and "prefix" in w.model_fields_set:
            out.append((f"workload[{i}].prefix", w.prefix, "names the workspaces of a count "
                        "(<prefix>-1..N), and this group lists names; remove prefix"))
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
                out.append((f"faults[{i}].load", UNSHOWN, "is missing: mode metric (the "
                            "default) drops the HPA's load to it; add it, for example load: 0.2"))
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
    return out + _too_often(s, ok)


def _ignored_options(i: int, f: Any) -> list[tuple[str, Any, str]]:
    """Options a fault accepts and then does nothing with (the run recorded the fault, which
    did nothing, or not what the option says): refused, naming the option to drop."""
    out: list[tuple[str, Any, str]] = []
    if f.type == "hpa-scale-down" and f.mode == "patch" and f.load is not None:
        out.append((f"faults[{i}].load", f.load, "is for mode metric (the HPA's load drops to "
                    "it); a patch ignores it: remove it, or set mode: metric"))
    if f.type == "hpa-scale-down" and f.mode == "metric":
        out += [(f"faults[{i}].{k}", getattr(f, k), "is for mode patch (the HPA's bounds are "
                 "patched); mode metric (the default) ignores it: remove it, or set mode: patch")
                for k in ("min_replicas", "max_replicas") if getattr(f, k) is not None]
    if f.type == "db-write-failure" and f.rate == 0:
        out.append((f"faults[{i}].rate", f.rate, "fails no store write, so the fault does "
                    "nothing; make it > 0 (1 fails every write)"))
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
        out.append(_line(file, "drain_s", s.drain_s, f"is shorter than one {longest[:-2]}'s "
                         f"p99.99 (agents.{longest}: {phase:.0f} s): a task created or confirmed "
                         "as the workload ends may still run when the drain ends, and `drained` "
                         f"fail under every scheduler; make drain_s at least {phase:.0f} plus a "
                         "pod start and connect"))
    # A plan past the reference's run timeout is presumed lost and run again from its start
    # (an apply is settled from the state, or made `applied` by its late report).
    timeout, plan99 = ReferencePolicy().run_timeout_s, s.agents.plan_s.world().quantile(0.99)
    if plan99 > timeout:
        out.append(_line(file, "agents.plan_s", UNSHOWN, f"has a p99 of {plan99:.0f} s, over the "
                         f"reference's run timeout ({timeout:.0f} s): a plan that runs longer is "
                         "presumed lost and run again from its start (one that always does never "
                         "ends), so `drained` may fail under the reference; keep the p99 under "
                         f"{timeout:.0f} s"))
    # A bound is only at risk when a confirmed task must wait for another's apply to end.
    apply99 = s.agents.apply_s.world().quantile(0.99)
    if s.bounds.apply_pending_s < apply99:
        out.append(_line(file, "bounds.apply_pending_s", s.bounds.apply_pending_s,
                         f"is shorter than an apply's p99 (agents.apply_s: {apply99:.0f} s): a "
                         "confirmed task that waits for a running apply's slot (a pool at "
                         "max_replicas) may break apply_pending_bound under every scheduler; "
                         f"make it at least {apply99:.0f}"))
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
    # may take it, F11), so that much of the confirm counts.
    hold = ReferencePolicy().reservation_hold_s
    pod_mean = plan_mean + a.has_changes * (min(u.confirm_s.world().mean(), hold)
                                            + a.apply_s.world().mean())
    run = s.duration_s + s.drain_s
    work: dict[str, tuple[float, float]] = {}
    for i, w in enumerate(s.workload):
        pa_share = w.types.get("plan_and_apply", 0.0) / sum(w.types.values())
        busy = pa_share * pa_mean + (1 - pa_share) * plan_mean
        if w.every_s is not None and w.every_s < busy:
            out.append(_line(file, f"workload[{i}].every_s", w.every_s, f"is shorter than the "
                             f"{busy:.0f} s a task keeps its workspace busy on average (plan, "
                             "and for a plan_and_apply with changes the user's confirm and the "
                             "apply): a workspace runs one task at a time, so its queue grows "
                             "for the whole run and `drained` may fail under every scheduler; "
                             f"make every_s at least {busy:.0f}, or spread the load over more "
                             "workspaces"))
        pool = w.pool if w.pool is not None else (s.pools[0].id if s.pools else "")
        per_ws = len(w.at) + (s.duration_s / w.every_s if w.every_s else 0.0)
        n = w.size * per_ws * pa_share
        tasks, secs = work.get(pool, (0.0, 0.0))
        work[pool] = (tasks + n, secs + n * pod_mean)
    for i, p in enumerate(s.pools):
        tasks, secs = work.get(p.id, (0.0, 0.0))
        if secs > BUSY_MAX * p.max_replicas * run:
            out.append(_line(file, f"pools[{i}].max_replicas", p.max_replicas, f"the workload "
                             f"asks this pool for about {_count(tasks)} plan_and_apply tasks, "
                             f"{_count(secs)} s of pod time (a pod runs one at a time, "
                             f"{pod_mean:.0f} s each on average: plan, held confirm, apply), over 3/4 "
                             f"of what {p.max_replicas} pods give in the run ({run:g} s each): "
                             "tasks may still be queued at its end and `drained` fail under "
                             "every scheduler; raise max_replicas to at least "
                             f"{math.ceil(secs / (BUSY_MAX * run))}, or lighten the workload"))
    # A heal or reconnect due after the run's end never happens in it, so the fault acts as
    # one without it. A warning, not a refusal: `unstuck shrink` writes a drawn attempt as
    # `at` with its fault's heal_after, and its replay must run.
    for i, f in enumerate(s.faults):
        first = f.at if f.at is not None else f.start_s
        for k, what in (("heal_after", "the node never heals"),
                        ("reconnect_after", "the agent never reconnects")):
            after = getattr(f, k, None)
            if after is not None and first + after >= run:
                out.append(_line(file, f"faults[{i}].{k}", after, f"ends after the run (the "
                                 f"fault fires at {first:g} s at the earliest, the run ends at "
                                 f"duration_s + drain_s = {run:g} s), so {what} in it; make {k} "
                                 f"less than {run - first:g}, or leave it out"))
    lost = [(i, f) for i, f in enumerate(s.faults) if f.type == "node-loss" and f.heal_after is None]
    expected = sum(1.0 if f.at is not None else f.rate_per_h * _window(s, f) / 3600
                   for _, f in lost)  # type: ignore[operator]
    if lost and expected >= s.cluster.nodes:
        i = lost[0][0]
        out.append(_line(file, f"faults[{i}].heal_after", None, f"node-loss faults that never heal "
                         f"may take {expected:.3g} nodes (on average) of the {s.cluster.nodes}: with "
                         "every node lost no pod runs again, and `drained` fails under every "
                         "scheduler; set heal_after, or add nodes", show_value=False))
    return ["warning: " + line for line in out]


def _window(s: Scenario, f: Any) -> float:
    """How long a `rate_per_h` fault draws times for (sim.faults.attempts)."""
    end = min(f.end_s if f.end_s is not None else s.duration_s, s.duration_s)
    return max(0.0, end - f.start_s)


BUSY_MAX = 0.75  # of a pool's pod time in a run: the shipped scenarios ask for at most 13 %
REPEATS_MAX = 1_000_000  # of one periodic setting in one run; shipped scenarios stay below 2,000
LOAD_MAX = 1_000_000
TARGET_MAX = 10.0  # 1,000 % of the request; above it, a target written in percent (80)


def _too_often(s: Scenario, ok: Callable[..., bool]) -> list[tuple[str, Any, str]]:
    """Periods so short (or rates so high) that one setting alone would schedule more than
    REPEATS_MAX events: such a run does not hang for ever, but for hours (a `retry_s: 1e-9`
    was 6e11 attempts), so it is refused with the least value that would run. `ok(sections)`
    says whether the sections a rule reads validated (`_semantic`)."""
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
            out.append((path, period, f"would repeat {_count(span / period)} times ({what}) "
                        f"in {span:g} s, more than the {REPEATS_MAX:,} a run allows; make it "
                        f"at least {_suggest(span / REPEATS_MAX, up=True)}"))
    for i, f in enumerate(s.faults if ok("faults") else ()):
        if f.rate_per_h is not None:
            span = _window(s, f)
            if f.rate_per_h * span / 3600 > REPEATS_MAX * (1 + 1e-9):
                out.append((f"faults[{i}].rate_per_h", f.rate_per_h, f"would fire "
                            f"{_count(f.rate_per_h * span / 3600)} times in {span:g} s, more "
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
    too_many = (f"the workload would create about {_count(total)} tasks ({_count(per[i])} from "
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


def _count(x: float) -> str:
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


# ---------------------------------------------------------------------- loading
def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in FAULT_TYPES:
            continue  # the discriminator's branch, not a field
        else:
            name = "from" if part == "from_" else str(part)
            if not re.fullmatch(r"[\w-]+", name):  # an unknown key: `a b`, `a\nb`: one line
                name = repr(name)
            out += ("." if out else "") + _cut(name, 40)
    return out or "(top level)"


def _model_at(loc: tuple[Any, ...]) -> Any:
    """The pydantic model class that owns the field at `loc` (for 'allowed fields' lists)."""
    cls: Any = Scenario
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if part in FAULT_TYPES:
            cls = {m.model_fields["type"].annotation.__args__[0]: m for m in  # type: ignore[union-attr]
                   (PodKill, NodeLoss, AgentDisconnect, SchedulerRestart, DbWriteFailure,
                    DoubleConfirm, PoolScaleDown, HpaScaleDown)}[part]
            continue
        field = cls.model_fields.get(part) if isinstance(cls, type) and issubclass(cls, BaseModel) else None
        if field is None:
            return None
        cls = _inner_model(field.annotation)
    return cls


def _inner_model(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    if origin in (Union, types.UnionType, list, tuple, Annotated):
        for arg in typing.get_args(tp):
            m = _inner_model(arg)
            if m is not None:
                return m
    return None


def _rule(err: dict[str, Any]) -> str:
    kind, msg, ctx = err["type"], err["msg"], err.get("ctx") or {}
    if kind == "missing":
        return "required field is missing; add it"
    if kind == "extra_forbidden":
        cls = _model_at(tuple(err["loc"]))
        allowed = [f.alias or n for n, f in cls.model_fields.items()] if cls is not None else []
        near = difflib.get_close_matches(str(err["loc"][-1]), allowed, n=1)
        return ("unknown field" + (f" (did you mean {near[0]}?)" if near else "")
                + (f"; allowed here: {', '.join(allowed)}" if allowed else ""))
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return _shape_rule(tuple(err["loc"]), err.get("input"))
    if kind == "list_type":
        return _list_rule(tuple(err["loc"]), err.get("input"))
    if kind == "string_type" and isinstance(err.get("input"), int | float | bool):
        # `names: [1e5, 7]`: YAML read a number (or yes/no) where a name goes.
        return ("YAML read a number or a boolean where text goes; quote it as you wrote it, "
                "e.g. '1e5' or 'yes'")
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected', '')}"
    if kind == "union_tag_invalid":
        return f"unknown fault type; choose one of {', '.join(FAULT_TYPES)}"
    if kind == "union_tag_not_found":
        return f"a fault needs a type; choose one of {', '.join(FAULT_TYPES)}"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if kind == "greater_than":
        return f"must be > {ctx.get('gt')}"
    if kind == "greater_than_equal":
        return f"must be >= {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"must be <= {ctx.get('le')}"
    if msg.startswith("Input should be "):
        return "expected " + msg.removeprefix("Input should be ")
    return msg


def _shape_rule(loc: tuple[Any, ...], value: Any) -> str:
    """What a mapping at `loc` looks like, where pydantic said "a valid dictionary or
    instance of Workspaces" (a class name the user never wrote)."""
    cls = _model_at(loc + (None,))
    if cls is Dist:
        return ("expected seconds as a number (a fixed time) or a distribution such as "
                "{kind: uniform, min: 20, max: 90}")
    if loc[:1] == ("faults",) and len(loc) == 2:
        return "expected a fault, a mapping such as {type: pod-kill, at: 0}"
    if loc[-1:] == ("types",):
        return "expected task types with weights, such as {plan_and_apply: 3, plan: 1}"
    example = {Workspaces: "{count: 1, at: [0]}", PoolModel: "{id: pool-1}",
               Freeze: '{from: "22:00", to: "23:00"}'}.get(cls)
    if example:
        return f"expected a mapping such as {example}"
    fields = [f.alias or n for n, f in cls.model_fields.items()] if cls is not None else []
    return "expected a mapping (field: value)" + (
        f" of: {', '.join(fields)}" if fields else "")


_LISTS = {"pools": "[{id: pool-1}]", "workload": "[{count: 1, at: [0]}]",
          "faults": "[{type: pod-kill, at: 0}]", "freeze": '[{from: "22:00", to: "23:00"}]',
          "names": "[ws-a]", "at": "[0]"}


def _list_rule(loc: tuple[Any, ...], value: Any) -> str:
    """"expected a list", with the list to write: the user's one value in brackets where
    that is a valid item (`names: ws-a`: [ws-a]), else an example."""
    field = loc[-1] if loc else None
    if field == "names" and isinstance(value, str) and _NAME.fullmatch(value):
        fix = f"[{value}]"
    elif field == "at" and isinstance(value, int | float) and not isinstance(value, bool) and (
            0 <= value <= _FLOAT_MAX):
        fix = f"[{value}]"
    else:
        fix = _LISTS.get(field, "[a, b]")
    return f"expected a list; write {fix}"


VALUE_MAX = 80  # characters of a value echoed in a message
_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxlist, _repr.maxtuple, _repr.maxdict = 3, 8, 8, 6
_repr.maxstring, _repr.maxother = VALUE_MAX, VALUE_MAX


def _cut(text: str, limit: int = VALUE_MAX) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


UNSHOWN = object()  # a problem's value when the field has none to echo (missing, a section)


def _line(file: str, path: str, value: Any, rule: str, *, show_value: bool = True) -> str:
    if not show_value or isinstance(value, dict) or value is UNSHOWN:
        return f"{file}: {path}: {rule}"
    return f"{file}: {path} = {_cut(_repr.repr(value))} ({type(value).__name__}): {rule}"


def parse(data: Any, file: str, key_texts: dict[tuple[type, Any], str] | None = None
          ) -> Scenario:
    """Validate already-loaded YAML data; `file` names it in the messages, `key_texts` the
    text of each key YAML read as something other than a string (`yes`: True)."""
    if data is None:
        raise ScenarioInvalid([f"{file}: the file is empty; a scenario needs at least "
                               "duration_s and workload, for example: duration_s: 600 and "
                               "workload: [{count: 1, at: [0]}]"])
    if not isinstance(data, dict):
        raise ScenarioInvalid([f"{file}: the file must hold a mapping (name:, duration_s:, "
                               f"workload:, ...), not {type(data).__name__}"])
    # Top-level `x-` keys are the file's own, a place for anchors (`x-base: &base {...}`) that
    # fields then merge (`<<: *base`), as docker-compose allows; nothing reads them.
    data = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
    sets: list[tuple[tuple[Any, ...], Any]] = []
    data = _without_sets(data, (), sets)
    problems = [_line(file, _loc(loc), value, "expected a list such as [a, b]; a YAML set "
                      "(!!set) has no order, so runs of it would differ between processes")
                for loc, value in sets]
    named = "name" in data
    data.setdefault("name", Path(file).stem)
    bad: frozenset[Any] = frozenset()
    try:
        s: Scenario | None = Scenario.model_validate(data)
    except ValidationError as e:
        bad = frozenset(err["loc"][0] if err["loc"] else None for err in e.errors())
        s = _valid_part(data, bad)
        for err in e.errors():
            loc, value = tuple(err["loc"]), err.get("input")
            if err["type"] == "union_tag_invalid":
                loc, value = loc + ("type",), (err.get("ctx") or {}).get("tag")
            elif err["type"] == "union_tag_not_found":
                loc = loc + ("type",)
            rule = _rule(err)
            if err["type"] == "invalid_key":
                # A key that YAML did not read as text (`5:`, `yes:`, `null:`): name the
                # mapping that holds it, not a path made of the key.
                loc = loc[:-1]
                rule = _odd_key_rule(value, (key_texts or {}).get((type(value), value)))
            elif loc[-1:] == ("[key]",):  # a mapping key that is not one of the allowed ones
                loc = loc[:-2]
                rule = "unknown key; " + rule
            if loc == ("name",) and not named:
                rule += "; the name comes from the file name: add a name: line or rename the file"
            loc = _user_loc(data, loc)
            problems.append(_line(file, _loc(loc), value, rule,
                                  show_value=err["type"] not in ("missing", "union_tag_not_found",
                                                                 "invalid_key")))
    if s is not None:
        problems += [_line(file, path, _written(data, path, value), rule)
                     for path, value, rule in _semantic(s, bad)]
    if problems or s is None:
        raise ScenarioInvalid(problems) from None
    return s


# The required sections, stubbed when they failed; no cross-field rule reads a failed one.
# Every required field needs one (test_scenario checks): a bad `name` alone (the file's own
# name, say `my scenario.yaml`) hid every cross-field problem.
_STUBS = {"name": "stub", "duration_s": 0, "workload": []}


def _valid_part(data: dict[Any, Any], bad: frozenset[Any]) -> Scenario | None:
    """The scenario with each top-level section that failed validation (`bad`) left out, or
    stubbed where it is required, so that the cross-field rules of the sections that did
    validate run in the same round (`_semantic` skips those that read a section in `bad`).
    Errors are per section (the top-level model has no rule across sections), so the rest
    validates; None if it does not, or an error named no section."""
    if None in bad:
        return None
    rest = {k: v for k, v in data.items() if k not in bad}
    rest.update({k: v for k, v in _STUBS.items() if k in bad})
    try:
        return Scenario.model_validate(rest)
    except ValidationError:
        return None


def _odd_key_rule(key: Any, text: str | None) -> str:
    """A key YAML read as something other than text: say what it was read as, in the
    user's own spelling where the loader kept it (`yes`, not True)."""
    kind = ("a boolean (YAML 1.1 reads unquoted yes, no, on, off, true and false so)"
            if isinstance(key, bool) else "null" if key is None else
            "a number" if isinstance(key, int | float) else "a date")
    text = text if text is not None else ("null" if key is None else str(key).lower()
                                          if isinstance(key, bool) else str(key))
    return (f"the key {text} was read as {kind}, and a key here is a field name; write the "
            f"field's name, or quote it: '{text}':")


def _user_loc(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """`loc` cut where the file has a plain value: `connect_s: -5` is read as
    `{kind: fixed, value: -5}`, and its error is at `connect_s`, not `connect_s.value`."""
    node = data
    for n, part in enumerate(loc):
        if part in FAULT_TYPES:
            continue
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif isinstance(node, int | float) and not isinstance(node, bool):
            return loc[:n]
        else:
            return loc
    return loc


def _written(data: Any, path: str, value: Any) -> Any:
    """The value at `path` as the file wrote it (`900`, where validation made it 900.0), so
    that a message quotes the user; `value` when the file holds something else there (a
    default, or a path that names a list for one of its items)."""
    node = data
    for part in re.findall(r"\[(\d+)\]|([^.\[\]]+)", path):
        index, key = part
        if index and isinstance(node, list) and int(index) < len(node):
            node = node[int(index)]
        elif key and isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return value
    return node if node == value and type(node) is not bool else value


def _without_sets(v: Any, loc: tuple[Any, ...], found: list[tuple[tuple[Any, ...], Any]]) -> Any:
    """`v` with each set (YAML `!!set`) noted in `found` and replaced by a list, so the rest
    is still validated. Pydantic would take a set for a list, in an order that depends on
    the process's string hash seed: `names: !!set {a, b}` ran differently in every process."""
    if isinstance(v, set | frozenset):
        found.append((loc, v))
        return sorted(v, key=repr)
    if isinstance(v, dict):
        return {k: _without_sets(x, loc + (k,), found) for k, x in v.items()}
    if isinstance(v, list):
        return [_without_sets(x, loc + (i,), found) for i, x in enumerate(v)]
    return v


MAX_VALUES = 100_000  # YAML nodes of a file with every alias expanded; shipped ones have < 300


class _TooLarge(yaml.YAMLError):
    pass


class _Loader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses duplicate keys (YAML requires unique keys; PyYAML keeps
    the last) and files whose aliases expand to more than MAX_VALUES nodes ("billion laughs")."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.key_texts: dict[tuple[type, Any], str] = {}  # a key read as no string: `yes`

    def compose_mapping_node(self, anchor: Any) -> Any:
        # Checked as each mapping is composed, before any merge (`<<: *base`) is flattened
        # into it: flattening rewrites a merge source in place, so a check at construction
        # time took a nested source's merged keys for duplicates.
        node = super().compose_mapping_node(anchor)
        first: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue  # a merge key may be overridden, as YAML says; complex keys: rare
            if key_node.tag != "tag:yaml.org,2002:str":
                key = self.construct_object(key_node)
                with contextlib.suppress(TypeError):  # unhashable: the constructor says so
                    self.key_texts.setdefault((type(key), key), key_node.value)
            key = (key_node.tag, key_node.value)
            if key in first:
                raise yaml.composer.ComposerError(
                    None, None, f"duplicate key {_cut(repr(key_node.value), 40)} (first at line "
                    f"{first[key]}); keep only one", key_node.start_mark)
            first[key] = key_node.start_mark.line + 1
        return node

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None and _expanded_size(node, {}, set()) > MAX_VALUES:
            raise _TooLarge(f"too large once its aliases (*name) are expanded: more than "
                            f"{MAX_VALUES:,} values; write the values out instead of nesting "
                            "aliases")
        return node


# YAML 1.2's floats with an exponent. PyYAML reads YAML 1.1, whose floats need a dot and a
# signed exponent: `1e-9`, `1e+12` and `1.5e3` were strings, and the fix a message suggested
# for them ("write 1e+12, a number") failed the same way. Only what YAML 1.1 leaves a string
# is added (resolvers are tried in order, so `5`, `0x1F` and `09` read as before).
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))


def _no_base_60(cls: type[yaml.SafeLoader]) -> None:
    """YAML 1.2's plain scalars of the form `22:00`: text, not YAML 1.1's base-60 numbers.
    PyYAML read an unquoted time of day `22:00` as the int 1320 (and `1:30.5` as 5430.5), so
    `from: 22:00` was refused with "= 1320 (int)", while `09:00` (no base-60 number: it
    starts with 0) passed as text. A str resolver ahead of the int and float ones keeps
    such a scalar the text the user wrote; no other plain scalar matches it."""
    sexagesimal = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
    for first in "-+0123456789":
        cls.yaml_implicit_resolvers[first].insert(0, ("tag:yaml.org,2002:str", sexagesimal))


_no_base_60(_Loader)


def read_yaml(text: str) -> Any:
    """The data of a scenario file's text, read as `load` reads it (unique keys, no alias
    bomb, YAML 1.2 floats, no base-60 numbers); raises `yaml.YAMLError`. `unstuck shrink`
    re-reads a file with it: `yaml.safe_load` read an unquoted `10:00` as 600."""
    return _read(text)[0]


def _read(text: str) -> tuple[Any, dict[tuple[type, Any], str]]:
    """`read_yaml`, and the text of each key YAML read as no string (for messages)."""
    loader = _Loader(text)
    try:
        return loader.get_single_data(), loader.key_texts
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, memo: dict[int, float], open_: set[int]) -> float:
    """Nodes under `node` with every alias expanded (infinite for a recursive alias)."""
    if id(node) in memo:
        return memo[id(node)]
    if id(node) in open_:
        return float("inf")
    open_.add(id(node))
    children = ([n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else
                node.value if isinstance(node, yaml.SequenceNode) else [])
    size = 1.0
    for child in children:
        size += _expanded_size(child, memo, open_)
        if size > MAX_VALUES:
            break
    open_.discard(id(node))
    memo[id(node)] = size
    return size


def load(path: str | Path) -> Scenario:
    return load_with_text(path)[0]


def load_with_text(path: str | Path) -> tuple[Scenario, str]:
    """`load`, and the text it read: a caller that needs the text too (`unstuck shrink`
    writes its --out file from it) must not read the file again, which may be a pipe
    (`<(cat x.yaml)`, /dev/stdin) that is empty the second time."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioInvalid([f"{file}: no such file; give the path of a scenario, "
                               "e.g. scenarios/incident-601.yaml"]) from None
    except IsADirectoryError:
        raise ScenarioInvalid([f"{file}: is a directory, not a scenario file; give the files in "
                               f"it, e.g. {Path(file) / '*.yaml'}"]) from None
    except UnicodeDecodeError as e:
        raise ScenarioInvalid([f"{file}: cannot read it as a text file ({e.__class__.__name__})"]) from None
    except OSError as e:
        why = e.strerror or e.__class__.__name__
        raise ScenarioInvalid([f"{file}: cannot read it ({why})"]) from None
    try:
        data, key_texts = _read(text)
    except _TooLarge as e:
        raise ScenarioInvalid([f"{file}: {e}"]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        tab = "; indent with spaces: YAML does not allow tabs there" if "\\t" in problem else ""
        raise ScenarioInvalid([f"{file}: not valid YAML{where}: {_cut(problem, 200)}{tab}"]
                              ) from None
    return parse(data, file, key_texts), text
