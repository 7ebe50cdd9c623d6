"""Each db-write-failure window draws its failures from its own stream, deterministic per
seed. All windows used to get `rng("store")` afresh, so every window of a run failed the
same write ordinals."""

from __future__ import annotations

import dataclasses

from sim import faults
from sim import rng as rngs
from sim.config import FaultSpec

from .worlds import booted, config

CFG = config(duration_s=900.0, drain_s=0.0,
             faults=(FaultSpec("db-write-failure", at=100.0, rate=0.3, duration_s=20.0),
                     FaultSpec("db-write-failure", rate_per_h=12.0, rate=0.3, duration_s=20.0),
                     FaultSpec("db-write-failure", at=100.0, rate=0.3, duration_s=30.0)))


def streams(cfg, seed: int = 3) -> list[tuple[float, list[float]]]:
    """The first draws of the stream each window hands to the store, when it first does
    (the store goes back to another window's stream when overlapping windows end)."""
    w = booted(cfg, seed=seed)
    out: list[tuple[float, list[float]]] = []
    seen: set[int] = set()
    store_fail = w.store.fail_writes

    def spy(rate, rng):
        if id(rng) not in seen:
            seen.add(id(rng))
            out.append((w.kernel.now, random_head(rng)))
        store_fail(rate, rng)

    w.store.fail_writes = spy
    w.kernel.run(cfg.end_s)
    return out


def random_head(rng) -> list[float]:
    copy = type(rng)()
    copy.setstate(rng.getstate())
    return [copy.random() for _ in range(5)]


def test_every_window_has_its_own_stream_and_the_same_seed_gives_the_same_ones():
    got = streams(CFG)
    # the drawn window(s), the two due at t=100 (the second's stream is in force when the
    # first ends, at 120: same rate, the first started wins)
    assert len(got) >= 3 and [t for t, _ in got].count(120.0) == 1
    heads = [tuple(h) for _, h in got]
    assert len(set(heads)) == len(heads), got
    assert streams(CFG) == got
    assert streams(CFG, seed=4) != got


def test_a_window_keeps_its_draws_when_other_attempts_are_dropped():
    """What `unstuck shrink` relies on: the windows of `as_scheduled` without one of them
    draw what they drew before (the attempts are keyed by due time, not by position)."""
    scheduled = faults.as_scheduled(CFG, lambda n: rngs.child(3, n))
    full = streams(dataclasses.replace(CFG, faults=scheduled))
    assert full == streams(CFG)
    drawn = [i for i, f in enumerate(scheduled) if f.at != 100.0]
    first = min(drawn, key=lambda i: scheduled[i].at)
    fewer = streams(dataclasses.replace(CFG, faults=scheduled[:first] + scheduled[first + 1:]))
    assert fewer == [x for x in full if x[0] != scheduled[first].at]


def test_of_two_windows_due_at_once_the_kept_one_keeps_its_draws():
    """The two due at t=100 differ (20 s and 30 s): dropping the first must not hand the
    first's stream to the second, or a shrink would judge the second on other draws."""
    scheduled = faults.as_scheduled(CFG, lambda n: rngs.child(3, n))
    at_100 = [i for i, f in enumerate(scheduled) if f.at == 100.0]
    assert len(at_100) == 2
    full = dict(streams(dataclasses.replace(CFG, faults=scheduled)))
    second_only = dict(streams(dataclasses.replace(
        CFG, faults=tuple(f for i, f in enumerate(scheduled) if i != at_100[0]))))
    # Beside the first, the second's stream takes over when the first ends, at 120; alone,
    # it is in force from 100, with the same draws.
    assert second_only[100.0] == full[120.0] != full[100.0]
