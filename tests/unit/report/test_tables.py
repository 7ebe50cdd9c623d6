"""The report's tables and figures on small hand-made inputs: edge cases a seeded suite
does not reliably produce."""

import io
import math
import warnings

import pandas as pd

from unstuck import plots
from unstuck.report import tables


def _stuck(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = [{"scenario": "s", "scheduler": sched, "seed": 0, "metric": "stuck", "task": k,
             "workspace": "ws", "fault_type": None, "value_s": v, "outcome": "closed"}
            for sched, vs in values.items() for k, v in enumerate(vs)]
    return pd.DataFrame(rows)


def test_stuck_histogram_gives_zero_seconds_its_own_row():
    # Found by review: 0 s (out of apply_pending at the confirm) was counted in the
    # "0.1-0.178 s" bin, in the CSV, summary.md and the HTML.
    h = tables.stuck_histogram(_stuck({"reference": [0.0, 0.0, 0.2], "seed": [0.05, 700.0]}))
    ref = h[h["scheduler"] == "reference"]
    assert list(ref["bin"]) == [tables.NEVER_WAITED, "0.178-0.316 s"]
    assert list(ref["tasks"]) == [2, 1]
    assert (ref["from_s"].iloc[0], ref["to_s"].iloc[0]) == (0.0, 0.0)
    seed = h[h["scheduler"] == "seed"]
    assert tables.NEVER_WAITED not in set(seed["bin"])
    first = seed.iloc[0]  # 0.05 s: above 0, drawn in the first bin, and said so
    assert (first["from_s"], first["to_s"], first["tasks"]) == (0.0, 0.178, 1)
    assert first["bin"] == "above 0, below 0.178 s"
    assert h["tasks"].sum() == 5  # every task in exactly one row


def test_stuck_histogram_figure_counts_zero_seconds_in_the_legend_not_a_bin():
    fig = plots.stuck_histogram(_stuck({"reference": [0.0, 0.0, 0.2]}))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "reference (n=3; 2 at 0 s, not drawn)"]
    drawn = ax.patches[0].get_path().vertices[:, 1]  # the step outline: one bar of height 1
    assert math.isclose(max(drawn), 1.0)
    assert "after the confirm" in ax.get_title()


def test_stuck_histogram_of_tasks_all_out_at_the_confirm_draws_without_a_warning():
    # Found by a one-seed suite of node-loss-mid-apply under the reference: every confirmed
    # task left apply_pending at once, nothing was drawn, and the log axes, scaling
    # themselves to no data, warned "Data has no positive values" (an error under pytest).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plots.stuck_histogram(_stuck({"reference": [0.0, 0.0]}), 600)
        fig.savefig(io.BytesIO(), format="png")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_ylim()[0] == 0.7
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "reference (n=2; 2 at 0 s, not drawn)"]
