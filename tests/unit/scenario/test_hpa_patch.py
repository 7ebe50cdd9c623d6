"""hpa-scale-down with mode patch: a patch the API server would reject (min > max once the
patch is laid over the pool's bounds, or max < 1) is refused before anything runs, naming the
fault's field, the problem and the fix; it used to pass and crash the run mid-way."""

import re

import pytest

from sim.world import World
from unstuck.scenario import ScenarioInvalid, parse

POOL = {"id": "agents", "manager": "deployment", "min_replicas": 2, "max_replicas": 3,
        "hpa": {"load": 0.8}}


def scenario(**fault) -> dict:
    return {"duration_s": 300, "drain_s": 60, "pools": [POOL],
            "workload": [{"count": 1, "at": [5]}],
            "faults": [{"type": "hpa-scale-down", "at": 90, "mode": "patch", **fault}]}


def problems(data) -> list[str]:
    with pytest.raises(ScenarioInvalid) as e:
        parse(data, "scenarios/x.yaml")
    return e.value.problems


@pytest.mark.parametrize("fault, pattern", [
    ({"min_replicas": 4},
     r"^scenarios/x\.yaml: faults\[0\]\.min_replicas = 4 \(int\): is above the max_replicas of "
     r"pool 'agents' \(3\), which the patch keeps .*lower min_replicas to at most 3 or also "
     r"patch max_replicas$"),
    ({"max_replicas": 1},
     r"^scenarios/x\.yaml: faults\[0\]\.max_replicas = 1 \(int\): is below the min_replicas of "
     r"pool 'agents' \(2\), which the patch keeps .*raise max_replicas to at least 2"),
    ({"min_replicas": 3, "max_replicas": 2},
     r"^scenarios/x\.yaml: faults\[0\]\.min_replicas = 3 \(int\): is above the patch's "
     r"max_replicas \(2\) .*lower min_replicas or raise max_replicas$"),
    ({"min_replicas": 1, "max_replicas": 0},
     r"^scenarios/x\.yaml: faults\[0\]\.max_replicas = 0 \(int\): max_replicas must be >= 1 "
     r"\(the API server rejects such an HPA\)"),
])
def test_a_patch_the_api_server_would_reject_is_refused(fault, pattern):
    found = problems(scenario(**fault))
    assert len(found) == 1 and re.search(pattern, found[0]), found


@pytest.mark.parametrize("fault", [
    {"min_replicas": 3}, {"max_replicas": 2}, {"min_replicas": 5, "max_replicas": 6},
    {"min_replicas": 1, "max_replicas": 1}, {"min_replicas": 1},
])
def test_a_patch_the_api_server_accepts_runs(fault):
    cfg = parse(scenario(**fault), "scenarios/x.yaml").world()
    rows = World(cfg, "seed", 1).run()
    assert [r["data"]["mode"] for r in rows if r["kind"] == "fault"] == ["patch"]


def test_the_reviewers_file_is_refused_not_crashed():
    data = scenario(min_replicas=3)
    data["pools"] = [{**POOL, "min_replicas": 1, "max_replicas": 2}]
    found = problems(data)
    assert found == ["scenarios/x.yaml: faults[0].min_replicas = 3 (int): is above the "
                     "max_replicas of pool 'agents' (2), which the patch keeps (the API server "
                     "rejects such an HPA): lower min_replicas to at most 2 or also patch "
                     "max_replicas"]


SEED_POOL = {"id": "pool-1", "min_replicas": 1, "max_replicas": 3}


@pytest.mark.parametrize("fault, field", [
    ({"min_replicas": 4}, "min_replicas"), ({"max_replicas": 0}, "max_replicas"),
    ({"min_replicas": 2, "max_replicas": 1}, "min_replicas"),
])
def test_a_pool_scale_down_may_not_set_bounds_a_pool_could_not_have(fault, field):
    data = {"duration_s": 300, "drain_s": 60, "pools": [SEED_POOL],
            "workload": [{"count": 1, "at": [5]}],
            "faults": [{"type": "pool-scale-down", "at": 90, **fault}]}
    [found] = problems(data)
    assert found.startswith(f"scenarios/x.yaml: faults[0].{field} = ")
    assert "(a pool may not have such bounds, as under `pools`)" in found


def test_a_pool_scale_down_to_no_minimum_runs():
    data = {"duration_s": 300, "drain_s": 60, "pools": [SEED_POOL],
            "workload": [{"count": 1, "at": [5]}],
            "faults": [{"type": "pool-scale-down", "at": 90, "min_replicas": 0}]}
    rows = World(parse(data, "scenarios/x.yaml").world(), "seed", 1).run()
    assert [r["data"]["min_replicas"] for r in rows if r["kind"] == "fault"] == [0]


def test_an_hpa_may_not_go_to_zero_pods():
    """k8s-semantics.md: minReplicas 0 needs the HPAScaleToZero gate (alpha, off). Found by the
    scenario fuzz: an HPA pool at 0 pods has no pod to sample, and every task pended for ever."""
    [found] = problems(scenario(min_replicas=0, max_replicas=1))
    assert found.startswith("scenarios/x.yaml: faults[0].min_replicas = 0 (int): an HPA's "
                            "minReplicas must be >= 1: the API server refuses 0 unless the "
                            "HPAScaleToZero feature gate")
    data = scenario(max_replicas=2)
    data["pools"] = [{**POOL, "min_replicas": 0}]
    [found] = problems(data)
    assert found.startswith("scenarios/x.yaml: pools[0].min_replicas = 0 (int): is the HPA's "
                            "minReplicas, which must be >= 1")
    assert found.endswith("set min_replicas: 1, or remove hpa to let the scheduler scale the "
                          "Deployment")
