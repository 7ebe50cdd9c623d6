"""Wording the commands share, so that every count they print reads alike."""

from __future__ import annotations


def counted(count: int, noun: str) -> str:
    """`1 seed`, `1,000 seeds`: the count with its noun, plural but for one."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
