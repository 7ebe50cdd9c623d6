"""kubectl against the control plane, and `unstuck cluster up|status|down` end to end."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from chaos.cluster import kubeconfig
from unstuck.cluster_cli import app

from .conftest import deployment, running_pods, wait_for


def test_kubectl_get_scale_rollout_cordon_drain(kubectl, core, apps):
    apps.create_namespaced_deployment("default", deployment(
        "kc", 2, pod={"terminationGracePeriodSeconds": 0}))
    wait_for(running_pods(core, "app=kc", 2))
    names = kubectl("get", "pods", "-l", "app=kc", "-o", "jsonpath={.items[*].metadata.name}")
    assert len(names.split()) == 2
    kubectl("scale", "deployment/kc", "--replicas=4")
    assert "successfully rolled out" in kubectl("rollout", "status", "deployment/kc",
                                                "--timeout=20s")
    assert kubectl("get", "deployment", "kc", "-o", "jsonpath={.status.readyReplicas}") == "4"
    kubectl("cordon", "node-1")
    assert core.read_node("node-1").spec.unschedulable is True
    kubectl("drain", "node-2", "--ignore-daemonsets", "--timeout=20s")
    pods = wait_for(running_pods(core, "app=kc", 4), what="pods after drain")
    assert "node-2" not in {p.spec.node_name for p in pods}  # node-1 keeps its old pods
    kubectl("uncordon", "node-1")
    assert not core.read_node("node-1").spec.unschedulable


def test_cli_up_status_down(tmp_path):
    runner = CliRunner()
    path = tmp_path / "kc"
    up = runner.invoke(app, ["up", "--local", "--nodes", "2", "--kubeconfig", str(path),
                             "--time-scale", "10"])
    assert up.exit_code == 0, up.output
    try:
        status = runner.invoke(app, ["status", "--kubeconfig", str(path), "--json"])
        assert status.exit_code == 0, status.output
        info = json.loads(status.output)
        assert info["nodes"] == {"node-1": "running", "node-2": "running"}
        assert info["timeScale"] == 10
        again = runner.invoke(app, ["up", "--local", "--kubeconfig", str(path)])
        assert again.exit_code == 2 and "already runs" in again.output
    finally:
        down = runner.invoke(app, ["down", "--kubeconfig", str(path)])
    assert down.exit_code == 0 and "stopped" in down.output
    assert kubeconfig.server_of(path) is None
    gone = runner.invoke(app, ["status", "--kubeconfig", str(path)])
    assert gone.exit_code == 2 and "no 'unstuck-local' cluster" in gone.output


def test_cli_kind_without_docker_is_a_clear_exit_2(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # neither docker nor kind here
    result = CliRunner().invoke(app, ["up", "--kind", "--kubeconfig", str(tmp_path / "kc")])
    assert result.exit_code == 2
    assert "--kind needs docker, kind, kubectl" in result.output


def test_cli_needs_exactly_one_mode(tmp_path):
    result = CliRunner().invoke(app, ["up", "--kubeconfig", str(tmp_path / "kc")])
    assert result.exit_code == 2 and "exactly one of --local" in result.output


def test_cli_bad_kubeconfig_files_exit_2_naming_the_file(tmp_path):
    # Found by review: invalid YAML was a traceback (exit 1), a file not UTF-8 did not name
    # the file, and a folder was a "harness error".
    cases = {"yaml": (b"a: [\n", "not a kubeconfig (invalid YAML at line 2, column 1: expected the node content, but found '<stream end>')"),
             "binary": (b"\xff\xfe\x00kube", "not a kubeconfig (not UTF-8 text: invalid start byte at byte 0)")}
    for name, (content, problem) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        for command in ("status", "down"):
            result = CliRunner().invoke(app, [command, "--kubeconfig", str(path)])
            assert result.exit_code == 2, result.output
            assert result.output.strip().splitlines() == [
                f"unstuck cluster: {path}: {problem}; pass another --kubeconfig PATH"]
            assert path.read_bytes() == content
    result = CliRunner().invoke(app, ["status", "--kubeconfig", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"unstuck cluster: {tmp_path}: cannot read the kubeconfig (Is a directory); pass another --kubeconfig PATH"]


def test_cli_a_yaml_mapping_that_is_no_kubeconfig_exits_2_naming_the_file(tmp_path):
    # Found by a docs walkthrough: `up --kubeconfig scenario.yaml` (a mapping whose `users`
    # is a mapping, not a list of entries) was the control plane's traceback, and `down` one
    # of its own; the file must be refused whole, before a cluster starts, and kept as it was.
    cases = {"scenario.yaml": (b"name: x\nusers: {confirm_s: 5}\n", "users"),
             "clusters.yaml": (b"clusters: [a, b]\n", "clusters"),
             "contexts.yaml": (b"contexts: 5\n", "contexts")}
    for name, (content, key) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        for command in (["up", "--local"], ["status"], ["down"]):
            result = CliRunner().invoke(app, [*command, "--kubeconfig", str(path)])
            assert result.exit_code == 2, result.output
            assert result.output.strip().splitlines() == [
                f"unstuck cluster: {path}: not a kubeconfig ({key} must be a list of named "
                "entries); pass another --kubeconfig PATH"], result.output
            assert path.read_bytes() == content


def test_cli_up_refuses_a_bad_port_or_time_scale_before_starting(tmp_path):
    path = tmp_path / "kc"
    for args, message in ((["--port", "70000"], "--port 70000: expected 0-65535 (0 picks a free port)"),
                          (["--port", "-1"], "--port -1: expected 0-65535 (0 picks a free port)"),
                          (["--time-scale", "nan"], "--time-scale nan: must be a finite number > 0")):
        result = CliRunner().invoke(app, ["up", "--local", "--kubeconfig", str(path), *args])
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"unstuck cluster: {message}"), result.output
        assert not path.exists()
