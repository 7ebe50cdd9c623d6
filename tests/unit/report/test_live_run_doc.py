"""docs/report.md, "Reporting a live run": its command block, run as written on a service's
data folder (whose history has no run.end row), gives a report and a gate verdict, and
leaves the data folder as it was."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "tests" / "fixtures" / "histories" / "incident-601-reference.jsonl"


def _block() -> str:
    text = (ROOT / "docs" / "report.md").read_text()
    section = text.split("## Reporting a live run", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_the_documented_live_run_commands_report_and_gate_a_service_history(tmp_path):
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    assert rows[-1]["kind"] == "run.end"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "history.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows[:-1]))  # as `unstuck serve` leaves it
    # Its clock file, saved as the service stopped at the last row, records the scheduler.
    (tmp_path / "run" / "clock.json").write_text(json.dumps({
        "offset": 1e4, "run_start": 2e4, "now_at": 2e4 + rows[-2]["t"], "wall_at": 1.7e9,
        "boot_id": "b", "scheduler": "reference"}))
    (tmp_path / "live.yaml").write_text((ROOT / "scenarios" / "incident-601.yaml").read_text())
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    lines = _block().splitlines()
    close, report, gate = lines
    assert close.startswith(".venv/bin/unstuck close-run run ")
    assert report.startswith(".venv/bin/unstuck report") and gate.startswith(".venv/bin/unstuck gate")

    def run(line: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", line.split("#")[0]], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    done = run(close)
    assert done.returncode == 0, done.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before
    closed = [json.loads(line) for line in
              (tmp_path / "live" / "histories" / "live" / "reference" / "seed-0.jsonl").read_text().splitlines()]
    assert closed[:-1] == rows[:-1]
    assert closed[-1]["kind"] == "run.end" and closed[-1]["t"] == rows[-2]["t"]
    assert closed[-1]["data"]["scheduler"] == "reference"  # the one the clock file records
    done = run(report)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "live" / "index.html").is_file()
    done = run(gate)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS  live  reference: pass" in done.stdout
