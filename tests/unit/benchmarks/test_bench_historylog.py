"""bench_historylog runs and measures what it says: the log that keeps only row offsets holds a
small fraction of the memory of one that keeps the rows, and both serve the same window."""

from __future__ import annotations

import json

from tests.unit.benchmarks.bench import load


def test_the_benchmark_compares_the_two_logs_side_by_side(capsys, monkeypatch):
    bench = load("bench_historylog")
    monkeypatch.setattr("sys.argv", ["bench_historylog.py", "--rows", "3000", "--window", "500"])
    bench.main()
    out = json.loads(capsys.readouterr().out)
    assert (out["rows"], out["window"]) == (3000, 500)
    assert out["offsets_only"]["bytes_per_row"] < 50 < 500 < out["rows_kept"]["bytes_per_row"]
    assert out["memory_ratio"] < 0.1


def test_the_baseline_serves_its_window_from_the_rows_it_keeps(tmp_path):
    bench = load("bench_historylog")
    kept = bench.KeepingRows(tmp_path / "h.jsonl", lambda now: now)
    rows = [kept.append(bench.event(i)) for i in range(20)]
    (tmp_path / "h.jsonl").write_bytes(b"")  # were it read from the file, the window would fail
    assert kept.since(5, 3) == rows[5:8]
    kept.close()
