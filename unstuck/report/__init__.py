"""unstuck.report: turn a results folder into what people and CI read.

Contract: input is a `unstuck.results.Results` (Parquet tables of a simulated or live run);
output is a folder with a self-contained `index.html` (figures embedded, opens offline),
`summary.md`, `figures/*.png`, `tables/*.csv` (the numbers behind every figure) and
`junit.xml` (one test case per scenario x scheduler x check, from `unstuck.gate`). Rendering
never runs a simulation and never changes the results, so `unstuck report DIR` re-renders
the same report from saved results. `tables` computes, `timeline` extracts one seed's Gantt
data, `unstuck.plots` draws, `pages` writes HTML and Markdown, `junit` writes the XML,
`build.render` ties them together (docs/report.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unstuck.report.build import Report
    from unstuck.results import Results

__all__ = ["render"]


def render(res: Results, out: Path, **kw: Any) -> Report:
    """`build.render`, imported on call: `unstuck.plots` imports `report.timeline`, and
    importing this package must not pull matplotlib in before that."""
    from unstuck.report.build import render as _render

    return _render(res, out, **kw)
