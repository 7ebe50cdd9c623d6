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

from unstuck.report.build import Report, render

__all__ = ["Report", "render"]
