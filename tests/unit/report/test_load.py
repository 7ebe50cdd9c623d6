"""`unstuck.load` as a notebook uses it: the tables' dtypes hold whatever a run held (no
violations, no unrecovered hit), so two folders concatenate and join; a seed that lacks one
derived table gets it from its history."""

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import unstuck
from unstuck.cli import app

run = CliRunner().invoke
JOIN = ["scenario", "scheduler", "seed", "task"]


def sim(out: Path, scheduler: str) -> Path:
    r = run(app, ["sim", "scenarios/incident-601.yaml", "--scheduler", scheduler, "--seeds", "3",
                  "--out", str(out)])
    assert r.exit_code in (0, 1), r.output
    return out


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("load")
    return {s: sim(base / s, s) for s in ("seed", "reference")}


def test_an_empty_table_keeps_the_dtypes_of_a_full_one(folders):
    seed, ref = unstuck.load(folders["seed"]), unstuck.load(folders["reference"])
    assert len(seed.violations) and ref.violations.empty  # the reference breaks nothing
    for name in ("violations", "faults", "fault_events", "tasks", "metrics"):
        assert ref[name].dtypes.to_dict() == seed[name].dtypes.to_dict(), name
    both = pd.concat([seed.violations, ref.violations], ignore_index=True)
    assert both["seed"].dtype == "int64" and both["t"].dtype == "float64"
    assert len(both.merge(pd.concat([seed.tasks, ref.tasks]), on=JOIN, validate="m:1")) == len(both)


def test_seq_and_task_ids_are_nullable_ints_not_floats(folders):
    res = unstuck.load(folders["seed"])  # an unrecovered hit: progress_seq is null
    assert res.faults["progress_seq"].isna().any()
    for name, col in (("faults", "progress_seq"), ("faults", "effect_seq"),
                      ("fault_events", "task"), ("violations", "task")):
        assert res[name][col].dtype == "Int64", (name, col)


def test_tables_derived_from_histories_have_the_same_dtypes(folders, tmp_path):
    live = tmp_path / "live"
    shutil.copytree(folders["seed"] / "histories", live / "histories")
    stored, derived = unstuck.load(folders["seed"]), unstuck.load(live)
    for name in ("violations", "faults", "fault_events", "tasks", "metrics"):
        assert derived[name].dtypes.to_dict() == stored[name].dtypes.to_dict(), name
        pd.testing.assert_frame_equal(derived[name], stored[name], check_like=True)


def test_a_seed_without_one_derived_table_gets_it_from_its_history(folders, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(folders["seed"], folder)
    shutil.rmtree(folder / "faults")
    (folder / "violations" / "incident-601" / "seed" / "seed-1.parquet").unlink()
    full, res = unstuck.load(folders["seed"]), unstuck.load(folder)
    for name in ("faults", "violations", "tasks", "runs"):
        pd.testing.assert_frame_equal(
            res[name].sort_values(list(res[name].columns[:4]), ignore_index=True),
            full[name].sort_values(list(full[name].columns[:4]), ignore_index=True), obj=name)


def test_a_corrupt_table_is_named_with_the_fix(folders, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(folders["seed"], folder)
    bad = folder / "violations" / "incident-601" / "seed" / "seed-0.parquet"
    bad.write_text("not parquet")
    with pytest.raises(unstuck.results.ResultsInvalid, match="rerun") as e:
        unstuck.load(folder)
    assert str(bad) in str(e.value)
    bad.unlink()  # as the message says: the table is derived again from the seed's history
    assert len(unstuck.load(folder).violations) == len(unstuck.load(folders["seed"]).violations)


def test_every_table_starts_with_scenario_scheduler_seed(tmp_path):
    # Found by review: the history table began seed, scheduler, scenario.
    from unstuck.results import history_frame

    df = history_frame([{"seq": 0, "t": 0.0, "kind": "fault"}], "x", "seed", 3)
    assert list(df.columns[:3]) == ["scenario", "scheduler", "seed"]
    assert df.loc[0, ["scenario", "scheduler", "seed"]].tolist() == ["x", "seed", 3]


def test_a_fault_that_names_a_task_carries_its_workspace():
    # Found by review: `fault_events.workspace` was empty in every row (fault rows name a
    # task, never a workspace), so the documented column joined nothing.
    from unstuck.results import fault_event_records

    rows = [{"seq": 0, "t": 5.0, "kind": "task.created", "task": 2, "workspace": "ws-b"},
            {"seq": 1, "t": 9.0, "kind": "fault", "task": 2, "workspace": None, "reason": "double click",
             "data": {"type": "double-confirm"}},
            {"seq": 2, "t": 9.5, "kind": "fault", "pod": "p-1", "reason": "kill", "data": {"type": "pod-kill"}}]
    assert [(f["type"], f["task"], f["workspace"]) for f in fault_event_records(rows)] == [
        ("double-confirm", 2, "ws-b"), ("pod-kill", None, None)]


def test_every_file_of_a_table_has_the_tables_schema(tmp_path):
    # Found by review: each seed's file was typed by its contents (a reference seed without
    # violations wrote null columns), so reading a whole table folder at once failed or
    # mixed types; only `unstuck.load` cast them.
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from unstuck.results import SCHEMAS

    out = tmp_path / "res"
    for sched in ("seed", "reference"):  # the seed breaks invariants, the reference does not
        r = run(app, ["sim", "scenarios/incident-601.yaml", "-s", sched, "--seeds", "2",
                      "--workers", "1", "--out", str(out / sched)])
        assert r.exit_code in (0, 1), r.output
    for name, schema in SCHEMAS.items():
        paths = sorted(out.glob(f"*/{name}/**/*.parquet"))
        assert len(paths) == 4, name
        for p in paths:
            got = pq.read_schema(p)
            assert [(f.name, f.type) for f in got] == [(f.name, f.type) for f in schema], p
        assert ds.dataset(paths, format="parquet").to_table().num_rows >= 0
    violations = ds.dataset(sorted(out.glob("*/violations/**/*.parquet")), format="parquet").to_table()
    assert violations.num_rows > 0 and violations.schema.field("task").type == "int64"


def planned_task(planned_at: float):
    """A story of task 7, created at 0, running at 1, its plan with changes at `planned_at`."""
    from tests.unit.checker.story import Story

    s = Story()
    s.created(0.0, 7)
    s.to(1.0, 7, "pending", "running")
    s.to(planned_at, 7, "running", "apply_pending", reason="plan has changes")
    return s


def tabled(s):
    """The story ended at 300 and judged: its metrics and task 7's row of the tasks table."""
    from unstuck import checker
    from unstuck.results import task_records

    s.end(300.0)
    rows = s.rows()
    verdict, metrics = checker.judge(rows)
    (rec,) = task_records(rows, verdict, metrics)
    return metrics, rec


def test_a_task_applied_without_agent_rows_has_the_apply_time_its_latency_was_measured_to():
    # Found by review: in a history without exec.* rows (a scheduler-only history) the
    # checker times an apply by its `dispatch` (docs/metrics.md), but the tasks table looked
    # only for exec.invoke: `apply_t` NaN beside a `confirm_to_apply_s` of 30 s.
    s = planned_task(60.0)
    s.confirm(100.0, 7)
    s.to(130.0, 7, "apply_pending", "running", pod="pod-a", agent="agent-a")
    s.add(130.0, "dispatch", task=7, workspace="ws-1", pod="pod-a", agent="agent-a",
          data={"action": "apply", "fence": 2})
    s.to(200.0, 7, "running", "applied", reason="apply done")
    _, rec = tabled(s)
    assert (rec["confirmed_t"], rec["apply_t"], rec["confirm_to_apply_s"]) == (100.0, 130.0, 30.0)


def test_a_tasks_confirm_to_apply_is_that_of_its_first_confirmation():
    # Found by review: the tasks table paired `confirmed_t` (the first confirmation) with the
    # confirm-to-apply of the task's last plan epoch, so a confirmation the scheduler dropped
    # by resetting the task to pending (F4) read as a 10 s apply once a second plan was
    # confirmed and applied.
    s = planned_task(10.0)
    s.confirm(20.0, 7)
    s.to(40.0, 7, "apply_pending", "pending", reason="reservation lost: reset")
    s.to(50.0, 7, "pending", "running")
    s.to(60.0, 7, "running", "apply_pending", reason="plan has changes")
    s.confirm(70.0, 7)
    s.to(80.0, 7, "apply_pending", "running", agent="agent-a")
    s.add(80.0, "exec.invoke", task=7, workspace="ws-1", agent="agent-a", data={"action": "apply"})
    s.add(90.0, "exec.ok", task=7, workspace="ws-1", agent="agent-a", data={"action": "apply"})
    s.to(90.0, 7, "running", "applied", reason="apply done")
    metrics, rec = tabled(s)
    assert [c.latency_s for c in metrics.confirm_to_apply][1:] == [10.0]
    assert (rec["confirmed_t"], rec["apply_t"]) == (20.0, 80.0)
    assert math.isnan(rec["confirm_to_apply_s"])  # the first confirmation was never applied


def test_a_live_runs_runs_table_has_every_column_with_a_sim_runs_dtypes(folders, tmp_path):
    # Found by review: a folder judged from its histories (a live run's) lacked `wall_s`,
    # `faults_missed` and `digest`, and concatenating its runs with a simulated folder's
    # turned the counts `events` and `faults_missed` into floats.
    live = tmp_path / "live"
    shutil.copytree(folders["seed"] / "histories", live / "histories")
    stored, derived = unstuck.load(folders["seed"]), unstuck.load(live)
    assert derived.runs.dtypes.to_dict() == stored.runs.dtypes.to_dict()
    assert derived.runs[["events", "wall_s", "faults_missed", "digest"]].isna().all().all()
    assert stored.runs["events"].gt(0).all() and stored.runs["wall_s"].gt(0).all()
    both = pd.concat([stored.runs, derived.runs], ignore_index=True)
    assert both["events"].dtype == both["faults_missed"].dtype == "Int64"
    assert both["wall_s"].mean() == pytest.approx(stored.runs["wall_s"].mean())


def test_a_folder_without_histories_has_an_empty_events_table_with_its_columns(folders, tmp_path):
    # Found by review: with histories/ deleted (the tables kept), `res.events` had no column
    # at all, so `res.events[res.events["kind"] == "fault"]` raised KeyError.
    folder = tmp_path / "tables-only"
    shutil.copytree(folders["seed"], folder, ignore=shutil.ignore_patterns("histories"))
    full, res = unstuck.load(folders["seed"]), unstuck.load(folder)
    assert len(res.runs) == 3 and res.events.empty
    assert res.events.dtypes.to_dict() == full.events.dtypes.to_dict()
    assert res.events[res.events["kind"] == "fault"].empty


def test_asking_for_a_history_the_folder_lacks_says_what_it_holds(folders, tmp_path):
    res = unstuck.load(folders["seed"])
    with pytest.raises(unstuck.results.ResultsInvalid) as e:
        res.history("incident-601", "reference", 0)  # this folder ran the seed scheduler only
    assert str(e.value) == (f"{res.root}: no history for incident-601 / reference / seed 0; it holds "
                            "scenarios incident-601, schedulers seed, seeds 0-2: ask for one of those")
    folder = tmp_path / "tables-only"
    shutil.copytree(folders["seed"], folder, ignore=shutil.ignore_patterns("histories"))
    with pytest.raises(unstuck.results.ResultsInvalid, match="holds no history .* rerun"):
        unstuck.load(folder).history("incident-601", "seed", 0)
