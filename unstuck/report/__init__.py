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

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unstuck.report.build import Report
    from unstuck.results import Results

__all__ = ["render"]

VERDICTS = ("index.html", "summary.md", "junit.xml")


def output_problems(option: str, out: Path, results: Path, *,
                    default: Path | None = None) -> list[str]:
    """Why a report of the results folder `results` must not be written into `out`:
    rendering replaces its index.html, summary.md, junit.xml, figures/*.png and tables/*.csv,
    so `out` must be new, empty, a folder unstuck wrote, or `default` (the folder holding the
    results, which the user named); and a folder that holds results of its own must hold
    `results` (`unstuck gate` and `unstuck report` on `out` read those, not the page's)."""
    from unstuck.folders import MARKER, is_empty, wrote
    from unstuck.results import ResultsInvalid, resolve

    if is_empty(out):
        return []
    try:
        held = resolve(out)
    except ResultsInvalid:
        held = None
    if held is not None and held.resolve() != results.resolve():
        return [f"{option} {out}: holds the results of another run ({held}), which `unstuck "
                f"gate {out}` and `unstuck report {out}` read, not the ones this report "
                f"describes ({results}). Choose a new or empty folder (e.g. {out / 'report'}), "
                f"or delete {out} first if you no longer need that run"]
    if wrote(out) or (default is not None and out.resolve() == default.resolve()):
        return []
    return [f"{option} {out}: not empty and not a folder unstuck wrote (it has no {MARKER} marker "
            "or results/manifest.json); a report there would replace its "
            f"{', '.join(VERDICTS)}, figures/*.png and tables/*.csv. Choose a new or empty "
            f"folder (e.g. {out / 'report'}), or delete {out} first if it is an old report "
            "you no longer need"]


def clear(out: Path) -> bool:
    """Remove the report in `out`, before a suite runs or a report renders: a run that is
    interrupted or fails must not leave an earlier run's verdict beside its own results as
    if it were current, nor a timeline of a pair that no longer fails beside the new ones.
    Figures, tables and the JUnit files of narrower gates (`junit-*.xml`, docs/gate.md) go
    only from a folder unstuck wrote (their names are common, anyone's may be there); the
    folder is then marked as unstuck's. True if there was a verdict."""
    from unstuck.folders import mark, wrote

    had = any((out / name).is_file() for name in VERDICTS)
    for name in VERDICTS:
        (out / name).unlink(missing_ok=True)
    if wrote(out):
        for old in [*(out / "figures").glob("*.png"), *(out / "tables").glob("*.csv"),
                    *out.glob("junit-*.xml")]:
            old.unlink()
        for folder in (out / "figures", out / "tables"):
            with contextlib.suppress(OSError):  # gone only when empty: anyone's files stay
                folder.rmdir()
    mark(out, "report")
    return had


def render(res: Results, out: Path, **kw: Any) -> Report:
    """`build.render`, imported on call: `unstuck.plots` imports `report.timeline`, and
    importing this package must not pull matplotlib in before that."""
    from unstuck.report.build import render as _render

    return _render(res, out, **kw)
