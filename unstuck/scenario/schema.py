"""The validated model of a scenario file (docs/scenarios.md documents every field), and its
translation to the world the simulation runs (`Scenario.world()`: `sim.config.WorldConfig`).
Each section validates its own fields here; rules across sections live in `rules`. What an
editor can check of a section's fields together is told to it here too (`mapping_rules`), in
the words the validator or `rules` reports it with, which both take from here."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Union, get_args

from pydantic import ConfigDict, Field, GetJsonSchemaHandler, model_validator
from pydantic.json_schema import JsonSchemaValue

from scheduler.model import ACTIVE_STATUSES
from scheduler.variants import NAMES
from sim import config as sc
from sim.kube.hpa import HPASpec
from sim.kube.nodes import NodeTimings
from sim.kube.pods import StartupDelay
from unstuck.scenario.fields import (
    AtLeastOne,
    Count,
    Ident,
    Name,
    NonNegative,
    Number,
    PositiveSeconds,
    Probability,
    Seconds,
    SeedCount,
    StrictModel,
    TimeOfDay,
)
from unstuck.scenario.mapping_rules import (
    absent,
    also,
    any_of,
    equals,
    exactly_one,
    given,
    holds,
    when,
)

FAULT_TYPES = ("pod-kill", "node-loss", "agent-disconnect", "agent-partition", "scheduler-restart",
               "db-write-failure", "double-confirm", "pool-scale-down", "hpa-scale-down")


# The parameters each kind of distribution takes (and `floor`, which any kind takes).
_PARAMS_OF_KIND = {"fixed": ("value",), "uniform": ("min", "max"), "lognormal": ("median", "p99"),
                   "exponential": ("mean",)}
_DIST_PARAMS = tuple(p for params in _PARAMS_OF_KIND.values() for p in params)
_ABOVE_ZERO = ("median", "mean")  # a lognormal's median and an exponential's mean: `_fields_of_kind`


class Dist(StrictModel):
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

    @classmethod
    def __get_pydantic_json_schema__(cls, core: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        """For editors: a bare number (`_bare_number`), which the schema of the mapping alone
        refused (`plan_s: 30`), or a mapping of one kind with that kind's parameters, each
        required (`_fields_of_kind`): an editor then completes `min` and `max` after `kind:
        uniform`, and marks a `mean` there."""
        mapping = dict(handler.resolve_ref_schema(handler(core)))
        description, fields = mapping.pop("description"), mapping["properties"]
        seconds = {k: v for k, v in fields["floor"].items() if k not in ("default", "title")}
        kinds = [{**mapping, "title": f"{kind} distribution", "required": ["kind", *params],
                  "properties": {"kind": {**fields["kind"], "enum": [kind]},
                                 **{p: {**seconds, "title": p,
                                        **({"exclusiveMinimum": 0} if p in _ABOVE_ZERO else {})}
                                    for p in params},
                                 "floor": fields["floor"]}}
                 for kind, params in _PARAMS_OF_KIND.items()]
        return {"description": description, "anyOf": [
            {"type": "number", "minimum": 0, "description": "a fixed time in seconds"}, *kinds]}

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Dist:
        need = _PARAMS_OF_KIND[self.kind]
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


class PodStartup(StrictModel):
    model_config = ConfigDict(json_schema_extra=also(when(  # a lognormal, written or the default
        {"anyOf": [{"not": {"required": ["kind"]}}, equals("kind", "lognormal")]},
        then=holds("median_s", exclusiveMinimum=0))))

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


class NodeSettings(StrictModel):
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


# Kubernetes' own limit for one cluster (5,000 nodes; a pool of agent pods beyond it would not
# fit either). Unbounded, `nodes: 10000000` ran one seed for 46 s in 6 GB before its first task.
SIZE_MAX = 5_000
Replicas = Annotated[Count, Field(le=SIZE_MAX)]


class Cluster(StrictModel):
    nodes: Annotated[AtLeastOne, Field(le=SIZE_MAX)] = 3  # none: no pod could ever run
    grace_s: Seconds = 30.0
    watch_latency_s: Seconds = 0.05
    pod_startup: PodStartup = PodStartup()
    node: NodeSettings = NodeSettings()
    # A live run's cluster: the agents' Deployment was applied before `unstuck serve` started,
    # so the scheduler's first look finds its pods (sim.config.ClusterConfig).
    deployments_first: bool = Field(False, description=(
        "the pools' Deployments and their pods exist when the scheduler first starts, as in a "
        "live cluster; by default they are created with it"))


class Freeze(StrictModel):
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


LOAD_MAX = 1_000_000
TARGET_MAX = 10.0  # 1,000 % of the request; above it, a target written in percent (80)


class HPA(StrictModel):
    # The bounds `rules` checks with a message that says what to write (`target: 80`). Titled
    # with its key, as every field is: an editor heads the optional `hpa:`'s hover with it.
    model_config = ConfigDict(title="hpa",
                              json_schema_extra=also(holds("target", minimum=0.01, maximum=TARGET_MAX),
                                                     holds("load", maximum=LOAD_MAX)))

    target: Number = 0.8
    load: NonNegative = Field(0.8, description="total load in pods at 100 %; target x n holds n pods")
    scale_down_window_s: Seconds = 300.0
    sync_period_s: PositiveSeconds = 15.0
    tolerance: NonNegative = 0.1


HPA_NEEDS_DEPLOYMENT = ("only a manager: deployment pool has an HPA, and this one's manager is "
                        "bare; set manager: deployment or remove hpa")
INITIAL_NEEDS_DEPLOYMENT = ("is a Deployment's replicas at t = 0, and this pool's manager is bare "
                            "(the scheduler creates its pods, min_replicas at the start); remove "
                            "initial_replicas, or set manager: deployment")


class PoolModel(StrictModel):
    # The rules of one pool that `rules` checks, for editors; `max_replicas >= min_replicas`
    # compares two fields, which JSON Schema cannot.
    model_config = ConfigDict(json_schema_extra=also(
        holds("max_replicas", minimum=1),
        when(equals("manager", "deployment"), otherwise=[
            absent("hpa", message=HPA_NEEDS_DEPLOYMENT),
            absent("initial_replicas", message="initial_replicas " + INITIAL_NEEDS_DEPLOYMENT)]),
        when(given("hpa"), then=[holds("min_replicas", minimum=1),  # an HPA's minReplicas
                                 holds("initial_replicas", minimum=1)]),  # not ScalingDisabled
    ))

    id: Ident
    manager: Literal["bare", "deployment"] = "bare"
    min_replicas: Replicas = 1
    max_replicas: Replicas = 4
    initial_replicas: Replicas | None = None
    freeze: list[Freeze] = []
    hpa: HPA | None = None


class Agents(StrictModel):
    connect_s: Dist = Dist(kind="uniform", min=20, max=90)
    plan_s: Dist = Dist(kind="lognormal", median=60, p99=240, floor=5)
    apply_s: Dist = Dist(kind="lognormal", median=90, p99=400, floor=5)
    has_changes: Probability = 0.9
    plan_fail: Probability = 0.0
    apply_fail: Probability = 0.0
    claim_s: Dist = Dist(kind="fixed", value=0)
    silent_close_s: Seconds | None = None
    """The server closes the session of an agent it no longer hears after this long (unstuck's
    live service: `--poll-timeout` plus `--agent-stale`); left out, never (the seed's
    WebSocket)."""


CLICK_RETRIES_MAX = 100  # per click: a user who clicks more has given up


class Users(StrictModel):
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
TaskType = Literal["plan_and_apply", "plan", "drift_check"]
COUNT_OR_NAMES = "give either count (workspaces named <prefix>-1..N) or names, not both"
NO_ARRIVAL = "no task ever arrives: give at (times) and/or every_s (mean gap)"
NO_WEIGHT = "types: at least one weight must be > 0"
WEIGHT_MAX = 1e9
# What a file that breaks an upper bound is told (`wording.rule_text`), keyed by the field (a
# weight's by its mapping, `types`), so that the reason sits beside the bound it explains.
_REPLICAS_WHY = ("must be <= {le:,}: a pool of agent pods is sized for a cluster of at most {le:,} "
                 "nodes (Kubernetes' limit)")
BOUND_WHY = {
    "nodes": "must be <= {le:,}, the most nodes Kubernetes supports in one cluster",
    "min_replicas": _REPLICAS_WHY, "max_replicas": _REPLICAS_WHY, "initial_replicas": _REPLICAS_WHY,
    "types": ("must be <= {le}: weights are relative shares, so scale them down together "
              "(plan_and_apply: 3, plan: 1 gives three plan_and_apply tasks for each plan)"),
}
PREFIX_WITH_NAMES = ("names the workspaces of a count (<prefix>-1..N), and this group lists "
                     "names; remove prefix")
EMPTY_GROUP = ("a group of no workspace creates no task, and proves nothing; make count at "
               "least 1 (or list names), or remove the group")


class Workspaces(StrictModel):
    model_config = ConfigDict(json_schema_extra=also(
        exactly_one("count", "names", message=COUNT_OR_NAMES),
        any_of(given("at", minItems=1), given("every_s"), message=NO_ARRIVAL),
        holds("every_s", exclusiveMinimum=0),
        holds("types", **any_of(*(given(t, exclusiveMinimum=0) for t in get_args(TaskType)),
                                message=NO_WEIGHT)),
        when(given("names"), then=absent("prefix", message="prefix " + PREFIX_WITH_NAMES)),
        holds("count", minimum=1), holds("names", minItems=1),  # EMPTY_GROUP
    ))

    count: Annotated[Count, Field(le=WORKSPACES_MAX)] | None = None
    names: list[Ident] | None = None
    pool: str | None = None
    prefix: Ident = "ws"  # names are <prefix>-1..N: checked whole below
    at: list[Seconds] = []
    every_s: Seconds | None = None
    # Relative shares: capped so that their sum stays a number (1e308 each overflowed it, and
    # the run crashed drawing a type, after `scenario check` had passed the file).
    types: dict[TaskType, Annotated[NonNegative, Field(le=WEIGHT_MAX)]] = {"plan_and_apply": 1.0}

    @property
    def size(self) -> int:
        """How many workspaces the group holds."""
        return len(self.names) if self.names is not None else self.count or 0

    @model_validator(mode="after")
    def _who(self) -> Workspaces:
        if (self.count is None) == (self.names is None):
            raise ValueError(COUNT_OR_NAMES)
        if self.count and len(last := f"{self.prefix}-{self.count}") > 200:
            raise ValueError(f"the last workspace's name, {last[:40]}..., would be {len(last)} "
                             "characters; names are at most 200: shorten prefix")
        if not self.at and self.every_s is None:
            raise ValueError(NO_ARRIVAL)
        if self.every_s == 0:
            raise ValueError("every_s must be > 0")
        if not any(w > 0 for w in self.types.values()):
            raise ValueError(NO_WEIGHT)
        return self


Target = Literal["random", "reserved-holder", "apply-runner"]
AT_OR_RATE = "give exactly one of at (seconds) or rate_per_h (random, per hour)"
FAULT_RULES = [exactly_one("at", "rate_per_h", message=AT_OR_RATE),
               holds("rate_per_h", exclusiveMinimum=0), holds("retry_s", exclusiveMinimum=0)]


def _fault_rules(schema: dict[str, Any], cls: type[_Fault]) -> None:
    """Every fault type's schema: the timing rules all faults share, then its own
    (`editor_rules`), so that a type with rules of its own cannot drop the shared ones by
    setting a `json_schema_extra` of its own, which replaces its parent's. (The file's
    schema then holds the shared ones once, by reference: `editor_schema`.)"""
    also(FAULT_RULES, *cls.editor_rules)(schema)


class _Fault(StrictModel):
    model_config = ConfigDict(json_schema_extra=_fault_rules)
    editor_rules: ClassVar[tuple[Any, ...]] = ()  # a type's own (`mapping_rules`)

    at: Seconds | None = None
    rate_per_h: Number | None = None
    start_s: Seconds = 0.0
    end_s: Seconds | None = None
    within_s: Seconds = 600.0
    retry_s: Seconds = 5.0

    @model_validator(mode="after")
    def _when(self) -> _Fault:
        if (self.at is None) == (self.rate_per_h is None):
            raise ValueError(AT_OR_RATE)
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
    reconnect_after: Dist | None = None
    """Seconds until the agent connects again, or a distribution (a live agent refused for a
    hold-off registers at its first retry after it); left out, the agent's own back-off."""
    pool: str | None = None


class AgentPartition(_Fault):
    type: Literal["agent-partition"]
    target: Target = "random"
    heal_after: Seconds | None = None
    pool: str | None = None


class SchedulerRestart(_Fault):
    type: Literal["scheduler-restart"]
    down_s: Dist | None = None
    """How long no scheduler process serves: the kill to the new process's boot, seconds or
    a distribution (a live restart takes a second or more: the new pod's process starting).
    Left out, the new process boots at once."""


NO_WRITE_FAILS = "fails no store write, so the fault does nothing; make it > 0 (1 fails every write)"


class DbWriteFailure(_Fault):
    editor_rules = (holds("rate", exclusiveMinimum=0),)

    type: Literal["db-write-failure"]
    rate: Probability = 1.0
    duration_s: Seconds = 60.0
    target: Target = "random"
    """random (the default): the outage starts at its time; reserved-holder or apply-runner:
    once a task holds a reservation, or runs its apply (retried every retry_s, as a targeted
    fault waits for its target)."""


class DoubleConfirm(_Fault):
    type: Literal["double-confirm"]
    gap_s: Seconds = 0.1


class PoolScaleDown(_Fault):
    editor_rules = (holds("max_replicas", minimum=1),)

    type: Literal["pool-scale-down"]
    pool: str | None = None
    freeze_s: Seconds = 600.0
    min_replicas: Replicas | None = None
    max_replicas: Replicas | None = None
    duration_s: Seconds | None = None


PATCH_NEEDS_BOUNDS = "mode patch needs min_replicas and/or max_replicas"
LOAD_IS_FOR_METRIC = ("is for mode metric (the HPA's load drops to it); a patch ignores it: "
                      "remove it, or set mode: metric")
BOUND_IS_FOR_PATCH = ("is for mode patch (the HPA's bounds are patched); mode metric (the "
                      "default) ignores it: remove it, or set mode: patch")
METRIC_NEEDS_LOAD = ("is missing: mode metric (the default) drops the HPA's load to it; add it, "
                     "for example load: 0.2")


class HpaScaleDown(_Fault):
    editor_rules = (
        holds("min_replicas", minimum=1), holds("max_replicas", minimum=1),  # an HPA's bounds
        when(equals("mode", "patch"),
             then=[any_of(given("min_replicas"), given("max_replicas"), message=PATCH_NEEDS_BOUNDS),
                   absent("load", message="load " + LOAD_IS_FOR_METRIC)],
             otherwise=[*(absent(k, message=f"{k} {BOUND_IS_FOR_PATCH}")
                          for k in ("min_replicas", "max_replicas")),
                        any_of(given("load"), message="load " + METRIC_NEEDS_LOAD)]))

    type: Literal["hpa-scale-down"]
    pool: str | None = None
    mode: Literal["metric", "patch"] = "metric"
    load: NonNegative | None = None
    min_replicas: Replicas | None = None
    max_replicas: Replicas | None = None
    duration_s: Seconds | None = None
    rank_first: Target | None = Field(None, description=(
        "a pod of the pool given the lowest pod-deletion-cost as the fault fires, so that the "
        "ReplicaSet's scale-down takes it first, whatever the scheduler wrote: reserved-holder "
        "is incident 601's own trigger (the HPA took the reservation's pod); the fault waits "
        "for such a pod as a targeted fault does"))

    @model_validator(mode="after")
    def _what(self) -> HpaScaleDown:
        if self.mode == "patch" and self.min_replicas is None and self.max_replicas is None:
            raise ValueError(PATCH_NEEDS_BOUNDS)
        return self


Fault = Annotated[
    Union[PodKill, NodeLoss, AgentDisconnect, AgentPartition, SchedulerRestart, DbWriteFailure,  # noqa: UP007
          DoubleConfirm, PoolScaleDown, HpaScaleDown],
    Field(discriminator="type"),
]
# Each fault type's model, from the union itself: what reads a fault's fields by its type
# (the wording of an unknown key) cannot miss a type added to the union.
FAULT_MODELS: dict[str, type[_Fault]] = {
    get_args(m.model_fields["type"].annotation)[0]: m
    for m in get_args(get_args(Fault)[0])}


class Bounds(StrictModel):
    apply_pending_s: Seconds = 600.0


# The statuses a task is in while a fault can hit it (docs/metrics.md, "Hit"): not terminal.
HIT_STATUSES = tuple(s.value for s in ACTIVE_STATUSES)
NO_SCHEDULERS = "lists no scheduler, so the goal holds for none; name one, or leave it out for all"
RUN_IS_FOR_RUNNING = ("run is what a running task was doing (plan or apply), so it needs hit: "
                      "running; set hit: running, or remove run")
CONFIRMED_IS_FOR_APPLY_PENDING = ("confirmed is whether a task waiting in apply_pending had its "
                                  "confirm yet, so it needs hit: apply_pending; set hit: "
                                  "apply_pending, or remove confirmed")


class Sometimes(StrictModel):
    """A state the faults must reach in some seed, as Antithesis's `sometimes` asserts: a
    run whose faults never hit a task waiting in `apply_pending` passes every invariant and
    proves nothing about a lost reservation. `unstuck gate` fails a goal never reached with
    exit 3, as it does a fault that never took effect. `schedulers` scopes it: a scheduler
    may keep the state out of the faults' reach by design (seed-head holds no reservation
    while a task waits, G1; the reference's demand metric keeps an HPA's waiting pods)."""

    model_config = ConfigDict(json_schema_extra=also(
        holds("schedulers", minItems=1),
        when(given("run"), then=any_of(equals("hit", "running"), message=RUN_IS_FOR_RUNNING)),
        when(given("confirmed"), then=any_of(equals("hit", "apply_pending"),
                                             message=CONFIRMED_IS_FOR_APPLY_PENDING))))

    hit: Literal[HIT_STATUSES]  # type: ignore[valid-type]
    run: Literal["plan", "apply"] | None = None  # with hit: running, what the task was running
    # With hit: apply_pending, whether its confirm had come: false is incident 601's own
    # order (the pod goes while the plan waits for its human), true a lost pod between the
    # confirm and the apply's start.
    confirmed: bool | None = None
    by: Literal[FAULT_TYPES] | None = None  # type: ignore[valid-type]
    min_seeds: AtLeastOne = 1
    schedulers: list[Literal[NAMES]] | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _some(self) -> Sometimes:
        if self.schedulers == []:
            raise ValueError("schedulers " + NO_SCHEDULERS)
        if self.run is not None and self.hit != "running":
            raise ValueError(RUN_IS_FOR_RUNNING)
        if self.confirmed is not None and self.hit != "apply_pending":
            raise ValueError(CONFIRMED_IS_FOR_APPLY_PENDING)
        return self

    @property
    def name(self) -> str:
        """The gate's test case: `sometimes_hit_apply_pending_by_pod-kill`,
        `sometimes_hit_running_apply_by_node-loss`,
        `sometimes_hit_apply_pending_unconfirmed_by_pod-kill`."""
        confirmed = {None: "", True: "_confirmed", False: "_unconfirmed"}[self.confirmed]
        return (f"sometimes_hit_{self.hit}" + (f"_{self.run}" if self.run else "") + confirmed
                + (f"_by_{self.by}" if self.by else ""))

    def what(self) -> str:
        """'an hpa-scale-down hit a task in apply_pending', 'a node-loss hit a task running its
        apply', 'a pod-kill hit a task in apply_pending before its confirm', as messages say
        it."""
        fault = self.by or "fault"
        where = f"running its {self.run}" if self.run else f"in {self.hit}"
        if self.confirmed is not None:
            where += " after its confirm" if self.confirmed else " before its confirm"
        return f"{'an' if fault[0] in 'aeh' else 'a'} {fault} hit a task {where}"

    def holds_for(self, scheduler: str) -> bool:
        return self.schedulers is None or scheduler in self.schedulers

    def matches(self, fault_type: str | None, status: str | None, run: str | None,
                awaiting_human: bool) -> bool:
        """Whether a hit (its fault's type, the task's status then, what a running task ran,
        and whether a task in apply_pending still awaited its confirm) is one the goal asks
        for."""
        return (status == self.hit and (self.by is None or fault_type == self.by)
                and (self.run is None or run == self.run)
                and (self.confirmed is None or self.confirmed == (not awaiting_human)))


class Gates(StrictModel):
    """Thresholds of `unstuck gate` (docs/gate.md), per scenario x scheduler over all seeds."""

    max_violations: Count = 0
    max_stuck: Count = 0
    recovery_p99_s: Seconds | None = None
    confirm_to_apply_p99_s: Seconds | None = None
    sometimes: list[Sometimes] = []

    @model_validator(mode="after")
    def _one_each(self) -> Gates:
        """One goal per hit and by for each scheduler (it names the scheduler's JUnit case);
        two of them may split the schedulers, to ask each for its own `min_seeds`."""
        for i, g in enumerate(self.sometimes):
            for h in self.sometimes[i + 1:]:
                both = [n for n in NAMES if g.holds_for(n) and h.holds_for(n)]
                if g.name == h.name and both:
                    raise ValueError(
                        f"sometimes: the goal {g.name} is listed twice for {', '.join(both)}; "
                        "keep one per hit and by for each scheduler (split them by schedulers)")
        return self


def _as_a_file(schema: dict[str, Any]) -> None:
    """The JSON Schema of the file rather than of the model (`unstuck scenario schema`): the
    loader takes `name` from the file's name when it is left out, and drops the top-level
    `x-` keys, the file's own place for anchors (`loading.parse`)."""
    schema["required"] = [f for f in schema["required"] if f != "name"]
    schema["patternProperties"] = {"^x-": {}}
    # `rules`: a scenario needs a pool and a workspace group.
    also(holds("pools", minItems=1), holds("workload", minItems=1))(schema)


class Scenario(StrictModel):
    model_config = ConfigDict(json_schema_extra=_as_a_file)

    name: Name
    description: str = ""
    seeds: SeedCount = 20
    suite_seeds: SeedCount | None = None  # `unstuck suite`'s default seed count (None: `seeds`)
    duration_s: Seconds
    drain_s: Seconds = 1800.0
    clock_origin: TimeOfDay = Field(0.0, json_schema_extra={"default": "00:00"})  # as written
    # A live run on unstuck's local recipe runs its clocks 10 times fast (0.1): the
    # simulation of it scales Kubernetes', the scheduler's and the agents' protocol timings
    # by this, not what the file writes of the run itself (sim.config.compressed).
    time_scale: Annotated[Number, Field(gt=0, le=1, description=(
        "the run's clocks against real time: 0.1 for a live run of docs/chaos.md's local "
        "recipe; scales Kubernetes', the scheduler's and the agents' protocol timings"))] = 1.0
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
        return sc.compressed(sc.WorldConfig(
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
                grace_s=c.grace_s, watch_latency_s=c.watch_latency_s,
                deployments_first=c.deployments_first),
            pools=tuple(pools),
            agents=sc.AgentConfig(connect=self.agents.connect_s.world(),
                                  plan=self.agents.plan_s.world(),
                                  apply=self.agents.apply_s.world(),
                                  has_changes=self.agents.has_changes,
                                  plan_fail=self.agents.plan_fail,
                                  apply_fail=self.agents.apply_fail,
                                  claim=self.agents.claim_s.world(),
                                  silent_close_s=self.agents.silent_close_s),
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
        ), self.time_scale)


def _fault_spec(f: Any) -> sc.FaultSpec:
    known = {name for name in sc.FaultSpec.__dataclass_fields__}
    kw = {k: v for k, v in f.model_dump().items() if k in known and v is not None}
    # A distribution goes to the world as one (not its dumped mapping); a fixed one as its
    # number, which is what a bare number always was there (and what keys the fault's draws).
    kw.update({k: v.value or 0.0 if v.kind == "fixed" and not v.floor else v.world()
               for k, v in f if isinstance(v, Dist)})
    return sc.FaultSpec(**kw)
