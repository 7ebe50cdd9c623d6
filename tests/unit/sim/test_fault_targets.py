"""What each fault acts on, checked through the scenario file a user writes: a fault whose
option the schema accepts must act on what that option names (or be refused), and a fault that
could act must not wait or miss because it drew a target it could not act on."""

from __future__ import annotations

from sim.world import World
from unstuck.scenario import parse

HPA = {"id": "b-hpa", "manager": "deployment", "min_replicas": 1, "max_replicas": 4,
       "initial_replicas": 3, "hpa": {"target": 0.8, "load": 2.4}}


def run(data: dict, variant: str = "reference", seed: int = 0) -> list[dict]:
    base = {"duration_s": 900, "drain_s": 900, "workload": [{"count": 1, "at": [5]}]}
    return World(parse({**base, **data}, "x.yaml").world(), variant, seed).run()


def faults(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["kind"] == "fault"]


def test_an_hpa_scale_down_without_pool_acts_on_the_pool_validation_chose():
    # Validation takes the first pool with an HPA; the world took the first Deployment, and a
    # Deployment without an HPA sorting first made the fault miss in every seed.
    plain = {"id": "a-plain", "manager": "deployment", "min_replicas": 1, "max_replicas": 3,
             "initial_replicas": 2}
    rows = run({"pools": [plain, HPA], "workload": [{"count": 1, "pool": "b-hpa", "at": [5]}],
                "faults": [{"type": "hpa-scale-down", "at": 60, "load": 0.2}]})
    [fault] = faults(rows)
    assert fault["t"] == 60.0 and fault["data"]["pool"] == "b-hpa"
    scales = [r for r in rows if r["kind"] == "scale" and r["data"].get("by") == "hpa"]
    assert scales and scales[0]["data"]["pool"] == "b-hpa" and scales[0]["data"]["from"] == 3
    assert rows[-1]["data"]["faults_missed"] == 0
