"""unstuck: the harness that proves a task scheduler never leaves a task stuck.

Contract: this package holds the command line (`unstuck.cli`), the checker, the scenario
schema, the suite, the report and the gate. Its top level exports only `load`, the notebook
API (docs/api.md): `unstuck.load(RESULTS_DIR)` returns the results folder's tables as pandas
DataFrames. The import stays light (no pandas, no matplotlib) because every CLI start and
every worker process imports this package; `load` imports what it needs when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unstuck.results import Results

__all__ = ["load"]


def load(directory: str | Path) -> Results:
    """The tables of a results folder (or of a report folder holding results/): tasks,
    events (every history row, loaded on first use), faults, fault_events, violations,
    metrics and runs. See `unstuck.results.load`."""
    from unstuck.results import load as _load

    return _load(directory)
