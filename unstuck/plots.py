"""Plotting helpers: each takes tables from `unstuck.load` and returns a matplotlib Figure.

The report saves these figures and notebooks show them, so both draw the same picture from
the same numbers. Nothing here computes a metric: the checker measures, `unstuck.report.tables`
summarises, this module only draws. Figures use the object API (no pyplot state), so they work
under the Agg backend in worker processes and CI, and in a notebook's inline backend.

A CDF here counts every measurement that was owed, including the ones that never finished
(an unrecovered task, an apply that never started): those sit at infinity, so the curve
stops below 1 and the gap is the share that never recovered.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from unstuck.checker.metrics import CENSORED
from unstuck.report.timeline import Timeline

SCHEDULER_COLOURS = {"seed": "#d62728", "seed-proposal": "#ff7f0e", "seed-head": "#9467bd",
                     "reference": "#2ca02c"}
STATUS_COLOURS = {"pending": "#c7c7c7", "waiting": "#aec7e8", "running": "#1f77b4",
                  "apply_pending": "#ff7f0e", "planned_and_finished": "#98df8a",
                  "success": "#2ca02c", "applied": "#2ca02c", "failed": "#7f7f7f",
                  "cancelled": "#7f7f7f"}
SLOT = "#17becf"
VERDICT_COLOURS = {"pass": "#b7e4b0", "fail": "#f4a6a6", "error": "#ffd27f"}


def _colour(scheduler: str) -> str:
    return SCHEDULER_COLOURS.get(scheduler, "#17becf")


def _order(schedulers: Any) -> list[str]:
    known = list(SCHEDULER_COLOURS)
    names = list(dict.fromkeys(schedulers))
    return sorted(names, key=lambda s: (known.index(s) if s in known else len(known), s))


def verdict_matrix(matrix: pd.DataFrame) -> Figure:
    """Scheduler x scenario cells: pass / fail / error, stuck tasks, invariants violated.

    `matrix` is `report.tables.verdict_matrix(...)` (one row per scenario and scheduler)."""
    scens = list(dict.fromkeys(matrix["scenario"]))
    scheds = _order(matrix["scheduler"])
    fig = Figure(figsize=(max(6.0, 1.55 * len(scens) + 1.6), 0.9 * len(scheds) + 1.4), dpi=100)
    ax = fig.add_subplot()
    cell = {(r.scenario, r.scheduler): r for r in matrix.itertuples()}
    for i, sched in enumerate(scheds):
        for j, scen in enumerate(scens):
            r = cell.get((scen, sched))
            if r is None:
                continue
            ax.add_patch(_rect(j, i, VERDICT_COLOURS.get(r.status, "#eeeeee")))
            head = {"pass": "PASS", "fail": "FAIL", "error": "NO EFFECT"}.get(r.status, r.status)
            lines = [head, f"{r.stuck_tasks} stuck"]
            if r.invariants_violated:
                k = len(str(r.invariants_violated).split(","))
                lines.append(f"{k} invariant{'s' if k > 1 else ''} broken")
            ax.text(j + 0.5, i + 0.5, "\n".join(lines), ha="center", va="center", fontsize=8)
    ax.set_xlim(0, len(scens))
    ax.set_ylim(len(scheds), 0)
    ax.set_xticks([j + 0.5 for j in range(len(scens))], [_wrap(s) for s in scens], fontsize=8)
    ax.set_yticks([i + 0.5 for i in range(len(scheds))], scheds, fontsize=9)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title("Verdict per scheduler and scenario (stuck tasks summed over seeds)", fontsize=10)
    fig.tight_layout()
    return fig


def _rect(x: float, y: float, colour: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x + 0.03, y + 0.05), 0.94, 0.9, facecolor=colour, edgecolor="white")


def _wrap(name: str, width: int = 14) -> str:
    parts, line = [], ""
    for word in name.split("-"):
        if line and len(line) + len(word) + 1 > width:
            parts.append(line + "-")
            line = word
        else:
            line = f"{line}-{word}" if line else word
    return "\n".join(parts + [line])


def _cdf_points(values: pd.Series, never: int) -> tuple[np.ndarray, np.ndarray] | None:
    finite = np.sort(values.dropna().to_numpy(dtype=float))
    total = len(finite) + never
    if total == 0:
        return None
    y = np.concatenate([[0.0], np.arange(1, len(finite) + 1) / total])
    return np.concatenate([[0.0], finite]), y


def _draw_cdfs(ax: Any, curves: list[tuple[str, str, tuple[np.ndarray, np.ndarray] | None]]) -> None:
    """Step curves, each carried on flat to a common right edge so a plateau below 1 (the
    share that never finished) stays visible; later curves are drawn thinner on top."""
    drawn = [(c, lab, xy) for c, lab, xy in curves if xy is not None]
    right = max([float(xy[0][-1]) for _, _, xy in drawn] + [1.0]) * 2
    for k, (colour, label, (x, y)) in enumerate(drawn):
        ax.step(np.append(x, right), np.append(y, y[-1]), where="post", color=colour,
                label=label, linewidth=2.6 - 0.5 * k, alpha=0.9)
    ax.set_xlim(0, right)


def _legend(ax: Any, empty: str, loc: str = "best") -> None:
    """A legend when something was drawn; otherwise say so on the axes (an empty legend warns)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc=loc)
    else:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes, fontsize=9)


def _latency_axes(ax: Any, title: str) -> None:
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("seconds (linear below 1 s, log above)", fontsize=8)
    ax.set_ylabel("share done", fontsize=8)
    ax.tick_params(labelsize=7)


def recovery_cdf(metrics: pd.DataFrame) -> Figure:
    """One panel per fault type, one curve per scheduler: share of hit tasks that made
    progress again within x seconds (hits waiting on a human or ended by a user's cancel
    are left out)."""
    m = metrics[(metrics["metric"] == "recovery") & ~metrics["outcome"].isin(CENSORED)]
    types = sorted(str(t) for t in m["fault_type"].dropna().unique())
    cols = min(3, max(1, len(types)))
    rows = max(1, math.ceil(len(types) / cols))
    fig = Figure(figsize=(4.2 * cols, 3.1 * rows + 0.4), dpi=100)
    if not types:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no fault hit a task", ha="center", va="center")
        ax.set_axis_off()
        return fig
    for k, ftype in enumerate(types):
        ax = fig.add_subplot(rows, cols, k + 1)
        sub = m[m["fault_type"] == ftype]
        curves = []
        for sched in _order(sub["scheduler"]):
            s = sub[sub["scheduler"] == sched]
            never = int((s["outcome"] == "unrecovered").sum())
            label = f"{sched} (n={len(s)}" + (f", {never} never)" if never else ")")
            curves.append((_colour(sched), label,
                           _cdf_points(s["value_s"][s["outcome"] == "recovered"], never)))
        _draw_cdfs(ax, curves)
        _latency_axes(ax, f"recovery after {ftype}")
        _legend(ax, "no hit owed a recovery", loc="lower right")
    fig.suptitle("Recovery latency: fault -> the hit task's next progress", fontsize=10)
    fig.tight_layout()
    return fig


def confirm_to_apply_cdf(metrics: pd.DataFrame) -> Figure:
    """One curve per scheduler: share of confirmations whose apply started within x seconds."""
    m = metrics[(metrics["metric"] == "confirm_to_apply") & ~metrics["outcome"].isin(CENSORED)]
    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    ax = fig.add_subplot()
    curves = []
    for sched in _order(m["scheduler"]):
        s = m[m["scheduler"] == sched]
        never = int((s["outcome"] != "started").sum())
        label = f"{sched} (n={len(s)}" + (f", {never} never started)" if never else ")")
        curves.append((_colour(sched), label, _cdf_points(s["value_s"][s["outcome"] == "started"], never)))
    _draw_cdfs(ax, curves)
    _latency_axes(ax, "Confirm -> apply start (all scenarios)")
    _legend(ax, "no confirmation in these results", loc="lower right")
    fig.tight_layout()
    return fig


def stuck_histogram(metrics: pd.DataFrame, bound_s: float | None = None) -> Figure:
    """Seconds each task spent in apply_pending after a confirm (the `stuck` metric, summed
    over its confirmed stays), per scheduler, in log-spaced bins. Tasks at 0 s (out at the
    instant of the confirm) cannot sit on a log axis: the legend counts them instead."""
    m = metrics[metrics["metric"] == "stuck"]
    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    ax = fig.add_subplot()
    edges = stuck_bins(m["value_s"])
    tallest = 1.0
    for sched in _order(m["scheduler"]):
        v = m["value_s"][m["scheduler"] == sched].astype(float)
        zero = int((v == 0).sum())
        counts, _, _ = ax.hist(v[v > 0].clip(lower=edges[0]), bins=edges, histtype="step",
                               linewidth=1.6, color=_colour(sched),
                               label=f"{sched} (n={len(v)}" + (f"; {zero} at 0 s, not drawn)" if zero else ")"))
        tallest = max(tallest, float(np.max(counts)))
    # Limits of its own, set before the log scales: with every task at 0 s nothing is drawn,
    # and a log axis that scales itself to no data warns ("no positive values").
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0.7, tallest * 1.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    if bound_s:
        ax.axvline(bound_s, color="black", linestyle="--", linewidth=1)
        ax.text(bound_s, ax.get_ylim()[1], f" bound {bound_s:g} s", fontsize=7, va="top")
    ax.set_xlabel("seconds in apply_pending after the confirm (values above 0 and below 0.1 s "
                  "in the first bin)", fontsize=8)
    ax.set_ylabel("tasks (log scale)", fontsize=8)
    ax.set_title("Stuck time: seconds in apply_pending after the confirm, per task", fontsize=9)
    ax.grid(True, alpha=0.3)
    _legend(ax, "no task was in apply_pending after a confirm in these results")
    fig.tight_layout()
    return fig


def stuck_bins(values: pd.Series) -> np.ndarray:
    top = max(float(values.max()) if len(values) else 1.0, 1.0)
    return np.logspace(-1, math.ceil(math.log10(top * 1.0001)), 4 * math.ceil(math.log10(top * 1.0001) + 1) + 1)


def timeline(tl: Timeline) -> Figure:
    """Gantt chart of one seed: per task its statuses (thick), slots (middle) and pods
    (thin, dark when terminating); faults as red crosses or dashed lines, witness rows as
    black diamonds, the violation itself as a red star."""
    n = max(1, len(tl.tasks))
    fig = Figure(figsize=(12, 0.55 * n + 1.6), dpi=100)
    ax = fig.add_subplot()
    lane = {t: i for i, t in enumerate(tl.tasks)}
    scale = 60.0
    # One bar collection per lane and style, and one line per marker kind, not one per
    # segment or mark: the suite's timelines hold about 1,600 segments, and one collection
    # each cost 0.7 s of its report.
    bars: dict[tuple[int, str, str], list[tuple[float, float]]] = {}
    for s in tl.segments:
        if s.kind == "status":
            style = STATUS_COLOURS.get(s.label, "#dddddd")
        elif s.kind == "slot":
            style = "running" if s.label == "running" else "reserved"
        else:
            style = "#444444" if s.label.endswith("terminating") else "#bbbbbb"
        bars.setdefault((lane[s.task], s.kind, style), []).append(
            (s.start / scale, max((s.end - s.start) / scale, 0.002)))
    for (y, kind, style), xranges in bars.items():
        if kind == "status":
            ax.broken_barh(xranges, (y - 0.38, 0.34), facecolor=style, edgecolor="white", linewidth=0.3)
        elif kind == "slot":
            ax.broken_barh(xranges, (y + 0.0, 0.14), facecolor=SLOT if style == "running" else "none",
                           edgecolor=SLOT, hatch=None if style == "running" else "////", linewidth=0.6)
        else:
            ax.broken_barh(xranges, (y + 0.2, 0.08), facecolor=style)
    labels: dict[tuple[int, float], list[str]] = {}
    points: dict[str, list[tuple[float, float]]] = {}
    for m in tl.marks:
        x = m.t / scale
        if m.kind == "fault" and m.task is None:
            ax.axvline(x, color="#d62728", linestyle=":", linewidth=0.8, alpha=0.6)
            continue
        kind = m.kind if m.kind in ("fault", "witness") else "violation"
        points.setdefault(kind, []).append((x, lane[m.task] - 0.21))
        if kind == "violation":
            names = labels.setdefault((lane[m.task], round(x, 1)), [])
            if m.label not in names:
                names.append(m.label)
    for kind, style in (("fault", {"marker": "X", "color": "#d62728", "markersize": 9,
                                   "markeredgecolor": "white", "zorder": 5}),
                        ("witness", {"marker": "D", "color": "black", "markersize": 4, "zorder": 6}),
                        ("violation", {"marker": "*", "color": "#d62728", "markersize": 13,
                                       "markeredgecolor": "black", "zorder": 7})):
        if points.get(kind):
            xs, ys = zip(*points[kind], strict=True)
            ax.plot(xs, ys, linestyle="", **style)
    for (y, x), names in labels.items():
        ax.annotate(", ".join(names), (x, y - 0.42), fontsize=7, color="#d62728",
                    ha="right" if x > tl.end_t / scale * 0.8 else "left", va="bottom")
    ax.set_yticks(range(n), [f"task {t}" for t in tl.tasks] or ["(no task)"], fontsize=8)
    ax.set_ylim(n - 0.4, -0.7)
    ax.set_xlim(0, tl.end_t / scale * 1.01 or 1)
    ax.set_xlabel("simulated minutes since the run started", fontsize=8)
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(f"{tl.scenario} under {tl.scheduler}, seed {tl.seed}", fontsize=10)
    seen = sorted({s.label for s in tl.segments if s.kind == "status"})
    handles = [Patch(facecolor=STATUS_COLOURS.get(s, "#dddddd"), label=s) for s in seen]
    handles += [Patch(facecolor=SLOT, label="slot running"),
                Patch(facecolor="none", edgecolor=SLOT, hatch="////", label="slot reserved"),
                Patch(facecolor="#bbbbbb", label="pod alive"),
                Patch(facecolor="#444444", label="pod terminating")]
    from matplotlib.lines import Line2D

    handles += [Line2D([], [], marker="X", color="#d62728", linestyle="", label="fault"),
                Line2D([], [], marker="D", color="black", linestyle="", markersize=4, label="witness row"),
                Line2D([], [], marker="*", color="#d62728", linestyle="", markersize=10, label="violation")]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0),
              frameon=False)
    fig.tight_layout()
    return fig
