"""The schedulers share scans of the store between writes (`Context.cached`: the active
tasks, the runnable set, the pool demand, the workspace rows, ...). Sharing is an
optimisation, not a behaviour: with every read done afresh, every shipped short scenario
gives the same history under every scheduler, byte for byte. A cached value that depends on
something its key does not name (a table left out, the clock) fails here."""

from pathlib import Path

import pytest

from scheduler import history
from scheduler.core import Context
from sim import runner
from unstuck.scenario import load

from .shortcuts import read_afresh

SCENARIOS = sorted(p for p in Path("scenarios").glob("*.yaml") if p.stem != "mixed-chaos-day")


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
@pytest.mark.parametrize("variant", ["reference", "seed", "seed-proposal", "seed-head"])
def test_shared_reads_change_no_history(path, variant, monkeypatch):
    cfg = load(path).world()
    for seed in (0, 1):
        shared = history.digest(runner.run(cfg, variant, seed).rows)
        with monkeypatch.context() as m:
            m.setattr(Context, "cached", read_afresh)
            afresh = history.digest(runner.run(cfg, variant, seed).rows)
        assert shared == afresh
