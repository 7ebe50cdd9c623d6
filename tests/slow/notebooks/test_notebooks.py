"""Both notebooks execute headless (nbclient, the venv's python3 kernel) against a small run,
so they never rot: analysis.ipynb on a 2-seed suite folder, incident-601.ipynb on its replay."""

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from typer.testing import CliRunner

from unstuck.cli import app

pytestmark = pytest.mark.slow
NOTEBOOKS = Path(__file__).resolve().parents[3] / "notebooks"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory) -> str:
    """A kernelspec named python3 that runs *this* interpreter (the venv), wherever the
    machine's default python3 kernel points."""
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("jupyter")
    install(kernel_name="python3", prefix=str(prefix))
    os.environ["JUPYTER_PATH"] = str(prefix / "share" / "jupyter")
    return sys.executable


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("nb") / "latest"
    r = CliRunner().invoke(app, ["suite", "scenarios/incident-601.yaml", "scenarios/pod-kill-reserved-slot.yaml",
                                 "--seeds", "2", "--out", str(out), "--workers", "2"])
    assert r.exit_code == 0, r.output
    return out


def execute(name: str, env: dict[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def outputs(nb: nbformat.NotebookNode, kind: str) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if kind in o.get("data", {})]


def test_analysis_notebook_runs_on_a_small_suite(kernel, results):
    nb = execute("analysis.ipynb", {"UNSTUCK_RESULTS": str(results)})
    assert len(outputs(nb, "image/png")) == 3  # recovery CDF, confirm-to-apply CDF, timeline
    text = "".join(o["data"].get("text/plain", "") for o in outputs(nb, "text/plain"))
    assert "reproduce: unstuck sim" not in text  # printed (stream), not a value
    streams = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    # The command cites the scenario copy saved with the results, not the file passed to the suite.
    assert f"reproduce: unstuck sim {results}/results/scenarios/incident-601.yaml " in streams
    assert re.search(r"for task \d+ \(the \w+ created in \S+ at t=[\d.]+\): needs \d+ of \d+ "
                     r"fault attempts \(\d+ runs\)", streams)


def test_incident_601_notebook_replays_three_schedulers(kernel):
    nb = execute("incident-601.ipynb", {})
    assert len(outputs(nb, "image/png")) == 3
    html = "".join(o["data"].get("text/html", "") for o in outputs(nb, "text/html"))
    assert "apply_pending_bound" in html  # the seed's verdict row names the stuck invariant
