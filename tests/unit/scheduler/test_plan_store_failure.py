"""A failed write of the plan at plan end is a `store.write_failed` row (docs/history.md: "A
write that fails is a `store.write_failed` event and no transition")."""

import pytest

from scheduler.history import Kind
from scheduler.testing import Script
from scheduler.variants import NAMES


@pytest.mark.parametrize("variant", NAMES)
def test_a_plan_that_could_not_be_stored_is_in_the_history(variant):
    # Found by review: the plan report's first write (the plan artifact) failing returned
    # 500/503 with no row, so db-write-failures' lost tasks under seed showed an exec.ok and
    # then nothing: the witness could not cite why the task never left `running`.
    clean = Script(variant)
    clean.create(5)
    clean.run(300)
    t = clean.history.of_kind(Kind.EXEC_OK)[0].t  # the plan's report
    s = Script(variant)
    s.create(5)
    s.at(t, lambda: s.store.fail_next_writes(1))  # before the report at the same instant
    s.run(600)
    report = next(o for tt, e, o in s.outcomes if tt == t and type(e).__name__ == "PlanFinished")
    assert not report.ok  # the scheduler did refuse the report
    failed = [r for r in s.history.rows() if r["kind"] == "store.write_failed"]
    assert len(failed) == 1
    row = failed[0]
    assert (row["task"], row["workspace"], row["t"]) == (1, "ws-mb7m9ii5ey", t)
    assert "plan" in row["data"]["op"] and row["reason"]
