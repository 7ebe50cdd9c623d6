"""Small world configurations for the tests: one workspace, exact timings where it matters."""

from __future__ import annotations

import dataclasses

from sim.config import (
    AgentConfig,
    ClusterConfig,
    Dist,
    FaultSpec,
    PoolConfig,
    UserConfig,
    WorkspaceGroup,
    WorldConfig,
    fixed,
)
from sim.kube.pods import StartupDelay
from sim.world import World

EXACT = ClusterConfig(nodes=2, pod_startup=StartupDelay("fixed", 4.0, 4.0, 0.0))
AGENTS = AgentConfig(connect=fixed(30.0), plan=fixed(60.0), apply=fixed(60.0), has_changes=1.0)


def config(**kw) -> WorldConfig:
    base = dict(name="t", duration_s=600.0, drain_s=600.0, bound_s=600.0, cluster=EXACT,
                pools=(PoolConfig("pool-1", min_replicas=1, max_replicas=4),), agents=AGENTS,
                users=UserConfig(confirm=fixed(20.0)),
                workload=(WorkspaceGroup(names=("ws-1",), at=(5.0,)),))
    base.update(kw)
    return WorldConfig(**base)


def incident(**kw) -> WorldConfig:
    """Incident 601 in miniature: the reserved pod is killed as soon as the plan ends; the user
    confirms 20 s later, while the replacement's agent is still 30 s from connecting."""
    return config(faults=(FaultSpec("pod-kill", at=10.0, target="reserved-holder", retry_s=1.0),),
                  duration_s=900.0, drain_s=1800.0, **kw)


def booted(cfg: WorldConfig, variant: str = "reference", seed: int = 0) -> World:
    w = World(cfg, variant, seed)
    w.kernel.at(0.0, w._boot)
    return w


def replace(cfg: WorldConfig, **kw) -> WorldConfig:
    return dataclasses.replace(cfg, **kw)


__all__ = ["Dist", "booted", "config", "incident", "replace"]
