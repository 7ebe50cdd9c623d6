"""Every command that writes a file or folder checks its output path before doing any work:
a path it could never write is bad input (exit 2, the option named, no traceback), not an
error at the end of a long run (or, for `cluster up` and `serve`, a traceback from the
process they start)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from unstuck.cli import app

run = CliRunner().invoke
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A results folder to report on and gate."""
    out = tmp_path_factory.mktemp("saved") / "run"
    r = run(app, ["sim", "scenarios/incident-601.yaml", "--seeds", "1", "--workers", "1",
                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


CASES = {
    "sim --out": (["sim", "scenarios/incident-601.yaml", "--seeds", "1", "--out", "{under_file}"],
                  "--out {under_file}: {file} is a file, not a folder"),
    "sim --out a file": (["sim", "scenarios/incident-601.yaml", "--seeds", "1", "--out", "{file}"],
                         "--out {file}: exists and is not a folder"),
    "sim --history": (["sim", "scenarios/incident-601.yaml", "--seeds", "1", "--history",
                       "{under_file}"], "--history {under_file}: {file} is a file, not a folder"),
    "sim --history a symlink loop": (["sim", "scenarios/incident-601.yaml", "--seeds", "1",
                                      "--history", "{loop}"],
                                     "--history {loop}: is a loop of symlinks"),
    "sim --history a folder": (["sim", "scenarios/incident-601.yaml", "--seeds", "1", "--history",
                                "{folder}"], "--history {folder}: is a folder; give a file name, "
                               "e.g. {folder}/run.jsonl"),
    "suite --out": (["suite", "scenarios/incident-601.yaml", "--seeds", "1", "--out", "{under_file}"],
                    "--out {under_file}: {file} is a file, not a folder"),
    "report --out": (["report", "{saved}", "--out", "{under_file}"],
                     "--out {under_file}: {file} is a file, not a folder"),
    "gate --junit": (["gate", "{saved}", "--junit", "{under_file}"],
                     "--junit {under_file}: {file} is a file, not a folder"),
    "serve --data-dir": (["serve", "--data-dir", "{under_file}", "--port", "18099"],
                         "--data-dir {under_file}: {file} is a file, not a folder"),
    "cluster up --kubeconfig": (["cluster", "up", "--local", "--kubeconfig", "{under_file}"],
                                "--kubeconfig {under_file}: {file} is a file, not a folder"),
    # Folders whose permission bits (and os.access, for root) say yes, but no file can be made:
    # only trying to write tells.
    "sim --out in /proc": (["sim", "scenarios/incident-601.yaml", "--seeds", "1", "--out",
                            "/proc/unstuck-out"],
                           "--out /proc/unstuck-out: cannot create or write in /proc/unstuck-out ("),
    "sim --history in /proc": (["sim", "scenarios/incident-601.yaml", "--seeds", "1", "--history",
                                "/proc/h.jsonl"], "--history /proc/h.jsonl: cannot create or write in /proc ("),
    "report --out in /proc": (["report", "{saved}", "--out", "/proc/unstuck-report"],
                              "--out /proc/unstuck-report: cannot create or write in /proc/unstuck-report ("),
}
# serve checks its identities first; give it some, so that the data dir is what it refuses.
ENV = {"UNSTUCK_USER_TOKENS": "t=alice", "UNSTUCK_POOL_TOKEN": "pool-secret"}


@pytest.mark.parametrize("case", list(CASES))
def test_an_unwritable_output_path_is_bad_input(case, tmp_path, saved):
    if "/proc" in case and not Path("/proc/self").exists():
        pytest.skip("no /proc here")
    file = tmp_path / "a-file"
    file.write_text("not a folder")
    (tmp_path / "loop-a").symlink_to("loop-b")
    (tmp_path / "loop-b").symlink_to("loop-a")
    names = {"file": file, "under_file": file / "deeper" / "out", "folder": tmp_path,
             "saved": saved, "loop": tmp_path / "loop-a"}
    args, message = CASES[case]
    r = run(app, [a.format(**names) for a in args], env=ENV)
    assert r.exit_code == 2, r.output
    assert message.format(**names) in r.output
    assert "Traceback" not in r.output
    assert file.read_text() == "not a folder"  # nothing was written over


def test_the_write_check_leaves_nothing_behind(tmp_path):
    """Checking a path creates its folders and a file in it: both go again, so that bad
    input elsewhere (exit 2) leaves no trace."""
    r = run(app, ["sim", "scenarios/incident-601.yaml", "--seeds", "0", "--out",
                  str(tmp_path / "a" / "b"), "--history", str(tmp_path / "c" / "h.jsonl")])
    assert r.exit_code == 2 and "--seeds 0" in r.output
    assert list(tmp_path.iterdir()) == []


def test_a_kept_folder_stays_once_checked_and_a_refused_one_leaves_nothing(tmp_path):
    from unstuck.cli import output_problem

    assert output_problem("--backend-dir", tmp_path / "a" / "backend", folder=True, keep=True) is None
    assert [p.relative_to(tmp_path).as_posix() for p in sorted(tmp_path.rglob("*"))] == ["a", "a/backend"]
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert "is a file, not a folder" in output_problem("--backend-dir", blocked / "x" / "backend",
                                                       folder=True, keep=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "file"]


def test_agents_started_at_once_on_a_new_backend_folder_all_run(tmp_path):
    """Found in CI: three agents started together on a backend folder none had made yet;
    one's write check removed the folder it had made while another wrote its probe there,
    and that agent exited 2 ("No such file or directory")."""
    import os
    import select
    import socket

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens: each agent warns that it cannot register, and runs on
    backend = tmp_path / "shared" / "backend"
    agents = [subprocess.Popen(
        [sys.executable, "-m", "unstuck.cli", "agent", "--server", f"http://127.0.0.1:{port}",
         "--pod", f"pod-{i}", "--backend-dir", str(backend)],
        env={**os.environ, "UNSTUCK_POOL_TOKEN": "p"}, cwd=tmp_path, stderr=subprocess.PIPE,
        text=True) for i in range(6)]
    try:
        for agent in agents:
            ready, _, _ = select.select([agent.stderr], [], [], 60.0)
            line = agent.stderr.readline() if ready else ""
            assert "unreachable" in line and "still trying to register" in line, line
        assert all(agent.poll() is None for agent in agents)
        assert backend.is_dir()
    finally:
        for agent in agents:
            agent.kill()
            agent.wait(10)
            agent.stderr.close()


def test_a_folder_another_process_makes_first_is_taken_not_refused(tmp_path, monkeypatch):
    """The rest of the race above, found by a later CI run: two agents both found the folder
    missing, one made it first, and the other's mkdir failed "File exists" (exit 2). Here
    the mkdir of `shared` finds it made just before it, as by another agent."""
    from unstuck.cli import output_problem

    plain = Path.mkdir

    def beaten(self, *a, **kw):
        if self.name == "shared":
            plain(self)  # the other process, first
            raise FileExistsError(17, "File exists")
        return plain(self, *a, **kw)

    monkeypatch.setattr(Path, "mkdir", beaten)
    backend = tmp_path / "shared" / "backend"
    assert output_problem("--backend-dir", backend, folder=True, keep=True) is None
    assert backend.is_dir()
    blocked = tmp_path / "other" / "shared"
    (tmp_path / "other").mkdir()
    blocked.write_text("")  # a file where the folder goes: still refused
    monkeypatch.setattr(Path, "mkdir", plain)
    assert "is a file, not a folder" in output_problem("--backend-dir", blocked / "backend",
                                                       folder=True, keep=True)


def test_history_to_dev_stdout_redirected_to_a_file_keeps_the_verdict(tmp_path):
    """`--json --history /dev/stdout > out.jsonl`: the verdict line, then the history rows,
    in the one file (the file used to be replaced by a new one holding the rows alone)."""
    out = tmp_path / "out.jsonl"
    with open(out, "wb") as f:
        done = subprocess.run([sys.executable, "-c", "from unstuck.entry import main; main()", "sim", "scenarios/incident-601.yaml",
                               "--seeds", "1", "--json", "--history", "/dev/stdout"],
                              stdout=f, stderr=subprocess.PIPE, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert "digest" in lines[0] and lines[1]["seq"] == 0 and lines[-1]["kind"] == "run.end"


@pytest.mark.parametrize("path, says", [("/dev/fd/9", "descriptor 9 is not open"),
                                        ("/dev/stdin", "descriptor 0 is not open for writing")])
def test_a_descriptor_that_cannot_take_the_history_is_refused_before_the_run(path, says):
    done = subprocess.run([sys.executable, "-c", "from unstuck.entry import main; main()", "sim",
                           "scenarios/incident-601.yaml", "--seeds", "1", "--history", path],
                          stdin=subprocess.PIPE, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
