"""Deterministic child RNGs: one seed per run, split into named streams by integer mixing.

Why: each part of the world (scheduler, users, agents, faults, store failures) draws from its
own stream, so adding a draw in one part does not shift every other part, and the same
(seed, stream) gives the same numbers in any process. `random.Random(f"{seed}:{name}")`
would also be stable (str seeds are hashed with sha512, not `hash()`), but we keep seeds as
integers end to end: the stream name is reduced once with crc32, then mixed with SplitMix64.
"""

from __future__ import annotations

import random
import zlib

_MASK = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """One SplitMix64 output for state `x` (Steele et al.; the finaliser used by java.util)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def child_seed(seed: int, stream: str) -> int:
    """An integer seed for `stream` of run `seed`; stable across processes and platforms."""
    return splitmix64(splitmix64(seed & _MASK) ^ zlib.crc32(stream.encode()))


def child(seed: int, stream: str) -> random.Random:
    return random.Random(child_seed(seed, stream))
