"""How the tests switch the model's shortcuts off, to compare a run with them against one
without (test_cached_reads.py, test_seed_quiet_passes.py, test_shortcuts_fuzz.py). The
reference's own skip is a setting (`ReferencePolicy.skip_quiet_reconciles`)."""

from __future__ import annotations

from typing import Any

from scheduler.variants.seed import SeedPolicy

# The seed variants' skips each key on one of these; None means "no version: run the pass".
SEED_SKIP_KEYS = ("reconcile_inputs", "pod_sync_inputs", "slot_sync_inputs", "scale_inputs",
                  "cycle_inputs")


def read_afresh(self: Any, key: Any, read: Any, *, tables: tuple[str, ...] = ()) -> Any:
    """`Context.cached` with every read done again: nothing is shared between two writes."""
    return read()


def without_seed_skips(policy: SeedPolicy) -> None:
    """Every pass and cycle of the seed variants runs in full."""
    for name in SEED_SKIP_KEYS:
        setattr(policy, name, lambda *args: None)
