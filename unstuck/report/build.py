"""Build the report folder from a results folder: figures, tables, pages, JUnit.

One function, `render`, used by `unstuck suite` after a run and by `unstuck report` on saved
results. It reads only the results folder (and the scenario copies in it), so re-rendering
is deterministic and needs no simulation. Figures are drawn with the Agg backend.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure as MplFigure  # noqa: E402

from scheduler import files  # noqa: E402
from unstuck import gate as gates  # noqa: E402
from unstuck import plots  # noqa: E402
from unstuck.report import junit, pages, tables, timeline  # noqa: E402
from unstuck.report.pages import Figure, Section  # noqa: E402
from unstuck.results import Results  # noqa: E402

if TYPE_CHECKING:
    import pandas as pd

TIMELINE_TASKS = 12


@dataclass(frozen=True)
class Report:
    out: Path
    index: Path
    summary: Path
    junit: Path
    gate: gates.GateResult
    figures: tuple[Path, ...]
    notes: tuple[str, ...] = ()  # what the verdict was judged without (a scenario file)


def _png(fig: MplFigure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return buf.getvalue()


def _cited_files(res: Results, fails: pd.DataFrame) -> str:
    """What the reproduce commands cite: the scenario copies saved with the results (a suite's
    or `sim --out`'s folder), or, for a live run's folder without them, the paths the
    manifest recorded or `scenarios/<name>.yaml`, which are only as good as those files."""
    if res.live:
        return ("These are a live run's: no command replays one (a live run is not a seed of the "
                "simulation); its history is in the results' histories/ folder, and a simulated "
                "seed of the same scenario is `unstuck sim SCENARIO -s SCHEDULER`.")
    names = set(fails["scenario"]) if len(fails) else set()
    if all((res.root / "scenarios" / f"{n}.yaml").is_file() for n in names):
        return ("Run them from this report's folder (the one holding index.html): they cite the "
                "copies of the scenario files saved with the results, so they replay what ran, "
                "wherever the folder is moved and whatever became of the original files.")
    return ("These results hold no copy of some scenario files (a live run's folder), so those "
            "commands cite the path the manifest recorded, else scenarios/<name>.yaml: run them "
            "from the folder that path is relative to, and they replay what ran only if the file "
            "is unchanged (save copies in the results' scenarios/ folder to pin them).")


def render(res: Results, out: Path, *, scenario_dirs: list[Path] | None = None) -> Report:
    """Write index.html, summary.md, figures/, tables/ and junit.xml into `out`, after
    removing the report there (`report.clear`): stopped half-way, it leaves no verdict that
    is not this one. Everything is read and drawn first, so results that cannot be read (a
    history gone or truncated: `ResultsInvalid`) leave the earlier report as it was."""
    from unstuck.report import clear

    unread: list[str] = []
    found = gates.find_scenarios(res, list(dict.fromkeys(res.runs["scenario"])),
                                 scenario_dirs or [], strict=False, problems=unread)
    # The page states a verdict `unstuck gate` would refuse to give (exit 2): say so.
    notes = [f"{p} (this report judged it with the default thresholds, its declared faults not "
             "checked; `unstuck gate` exits 2 until it finds the file)" for p in unread]
    gate = gates.evaluate(res, found, relative_to=out)  # its replay commands: as `fails`
    matrix = tables.verdict_matrix(gate, res.runs)
    wide = tables.matrix_wide(matrix)
    fails = tables.failures(res, relative_to=out)  # the commands run from the report folder
    rec, c2a = tables.recovery(res.metrics), tables.confirm_to_apply(res.metrics)
    hits = tables.fault_hits(res.faults, res.runs)
    goals = tables.goals(gate)
    hist = tables.stuck_histogram(res.metrics)
    bounds = sorted({s.bounds.apply_pending_s for s in found.values() if s is not None})

    figs = {
        "verdict-matrix": Figure("verdict-matrix", "Verdict matrix", _png(plots.verdict_matrix(matrix))),
        "recovery-cdf": Figure("recovery-cdf", "Recovery latency CDF per fault type",
                               _png(plots.recovery_cdf(res.metrics)),
                               "A curve that stops below 1: that share of hit tasks never made progress again."),
        "confirm-to-apply-cdf": Figure("confirm-to-apply-cdf", "Confirm to apply start",
                                       _png(plots.confirm_to_apply_cdf(res.metrics)),
                                       "First confirmation of a plan to the first apply start of that plan."),
        "stuck-histogram": Figure("stuck-histogram", "Stuck time: seconds in apply_pending after the confirm",
                                  _png(plots.stuck_histogram(res.metrics, bounds[0] if len(bounds) == 1 else None)),
                                  "A task out of apply_pending at the instant of its confirm (0 s) "
                                  "is counted in the legend, not drawn (a log axis has no 0); the "
                                  "table lists it as \"0 (never waited)\"."),
    }
    sections = [
        Section("Verdict matrix", "Each cell: the gate's verdict for the scenario under the scheduler "
                "(thresholds from the scenario's gates section), the stuck tasks summed over every "
                "seed, and the invariants violated.", [figs["verdict-matrix"]],
                [("verdict matrix (one row per scenario and scheduler)", matrix)], pages.matrix_html(wide)),
        Section("Recovery latency", "From a fault to the next progress of each task it hit; a hit "
                "on a task waiting for its human starts the clock at the confirm.",
                [figs["recovery-cdf"]], [("recovery latency, seconds (never = did not recover)", rec),
                                         ("fault hits by the status of the task hit (all hits, those on "
                                          "a task waiting for its human too): what the seeds reached", hits),
                                         ("goals (the scenarios' gates.sometimes): the states the "
                                          "faults had to reach, and the seeds that reached them", goals)]),
        Section("Confirm to apply", "", [figs["confirm-to-apply-cdf"]],
                [("confirm-to-apply latency, seconds", c2a)]),
        Section("Stuck time", "Seconds each task spent in apply_pending after a confirm, summed "
                "over its confirmed stays (to the run's end for a task still there): only tasks "
                "that were confirmed are counted.", [figs["stuck-histogram"]],
                [("histogram bins (tasks per scheduler; 0 s has its own row)", hist)]),
    ]
    timeline_tables = {}
    timeline_section = Section("Timelines of failing seeds", "For each failing scenario and "
                               "scheduler, the lowest failing seed (one with a stuck task if any).",
                               collapsed=True)
    for p in gate.pairs:
        seed = tables.example_seed(fails, p.scenario, p.scheduler)
        if seed is None:
            continue
        viol = tables.violations_of(res, p.scenario, p.scheduler, seed)
        rows = res.history(p.scenario, p.scheduler, seed, kinds=timeline.KINDS,
                           seqs=[q for v in viol for q in v["witness"]])
        tl = timeline.extract(rows, viol, scenario=p.scenario,
                              scheduler=p.scheduler, seed=seed, limit=TIMELINE_TASKS)
        name = f"timeline-{p.scenario}-{p.scheduler}-seed-{seed}"
        row = fails[(fails["scenario"] == p.scenario) & (fails["scheduler"] == p.scheduler)
                    & (fails["seed"] == seed)].iloc[0]
        # The failures row's first violation (stuck tasks first), which its shrink targets.
        caption = (f"reproduce: {row['command']}" if row["command"] else "a live run") + (
            f" | first violation: {row['first_violation']}" if row["first_violation"] else "")
        figs[name] = Figure(name, f"{p.scenario} under {p.scheduler}, seed {seed}",
                            _png(plots.timeline(tl)), caption)
        timeline_section.figures.append(figs[name])
        timeline_tables[name] = tl.table()
        timeline_section.tables.append((f"segments and marks: {p.scenario} / {p.scheduler} / seed {seed}",
                                        timeline_tables[name]))
    sections.append(timeline_section)
    sections.append(Section(
        "Failures and how to reproduce them", f"{len(fails)} failing seeds. "
        + ("" if res.live else "Each command re-runs one seed alone and writes its history as "
           "JSONL (same digest as in the suite, with the run's --perturb-ties); each shrink "
           "command cuts its faults to a 1-minimal set that still breaks it (docs/shrink.md). ")
        + _cited_files(res, fails),
        tables=[("every failing seed", fails)], collapsed=True,
        code=_first_commands(fails)))

    out.mkdir(parents=True, exist_ok=True)
    clear(out)
    (out / "figures").mkdir(exist_ok=True)
    (out / "tables").mkdir(exist_ok=True)
    written = []
    for f in figs.values():
        path = out / "figures" / f"{f.name}.png"
        files.write_bytes(path, f.png)
        written.append(path)
    for name, df in {"verdict-matrix": matrix, "recovery": rec, "fault-hits": hits, "goals": goals,
                     "confirm-to-apply": c2a,
                     "stuck-histogram": hist, "failures": fails, **timeline_tables}.items():
        files.write_text(out / "tables" / f"{name}.csv", df.to_csv(index=False))
    files.write_text(out / "tables" / "verdict-matrix-wide.csv", wide.to_csv())
    title = "unstuck report"
    lines = gate.lines()
    index = out / "index.html"
    files.write_text(index, pages.to_html(title, gate.verdict, gate.exit_code, lines, sections, notes))
    summary = out / "summary.md"
    md_tables = {"Verdict matrix": wide.reset_index(),
                 "Failures and how to reproduce them": fails.drop(columns=["first_violation"]).groupby(
                     ["scenario", "scheduler"], sort=False).head(tables.REPRODUCE_PER_PAIR),
                 "Confirm to apply": c2a[c2a["scenario"] == "(all)"]}
    files.write_text(summary, pages.to_markdown(title, gate.verdict, gate.exit_code, lines, sections,
                                                md_tables, notes))
    junit_path = out / "junit.xml"
    files.write_text(junit_path, junit.to_xml(gate))
    return Report(out, index, summary, junit_path, gate, tuple(written), tuple(notes))


def _first_commands(fails) -> list[str]:  # noqa: ANN001 - a DataFrame
    first = fails.groupby(["scenario", "scheduler"], sort=False).head(1)
    return [c for pair in zip(first["command"], first["shrink"], strict=True) for c in pair if c]
