"""unstuck's Chaos Toolkit extension (chaos/toolkit) and the shipped experiments
(chaos/experiments): each experiment is valid for `chaos validate` and agrees with the
scenario that judges its run; each step that cannot act says why in one line. The
experiments themselves run live in tests/slow/chaos."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed

from chaos.toolkit import actions, probes
from tests.unit.service.live import USER_TOKEN, InProcessService, free_port, wait_for
from unstuck.scenario import load as load_scenario

ROOT = Path(__file__).resolve().parents[3]
EXPERIMENTS = sorted(p for p in (ROOT / "chaos" / "experiments").glob("*.yaml")
                     if not p.name.endswith(".scenario.yaml"))
# The fault row each fault step records (chaos/toolkit/actions.py).
RECORDS = {"target_reserved_pod": None, "lose_node_of_reserved_pod": "node-loss",
           "patch_hpa": "hpa-scale-down", "double_confirm": "double-confirm",
           "fail_store_writes": "db-write-failure", "record_scheduler_restart": "scheduler-restart",
           "disconnect_agent": "agent-disconnect"}


def test_eleven_experiments_ship():
    assert [p.stem for p in EXPERIMENTS] == ["agent-disconnect-apply-pending", "agent-disconnect-mid-apply", "agent-partition-reserved-slot", "db-write-failure-apply",
                                             "double-confirm-apply-pending",
                                             "hpa-scale-down-apply-pending",
                                             "hpa-scale-down-reserved-pod", "node-loss-apply-pending",
                                             "pod-kill-reserved-slot", "scheduler-restart-apply-pending",
                                             "scheduler-restart-mid-apply"]


@pytest.mark.parametrize("experiment", EXPERIMENTS, ids=lambda p: p.stem)
def test_each_experiment_passes_chaos_validate(experiment):
    done = subprocess.run([str(Path(sys.executable).with_name("chaos")), "--no-version-check",
                           "validate", str(experiment)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "UNSTUCK_USER_TOKEN": "t", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "experiment syntax and semantic look valid" in done.stdout + done.stderr


@pytest.mark.parametrize("experiment", EXPERIMENTS, ids=lambda p: p.stem)
def test_each_experiment_agrees_with_the_scenario_that_judges_it(experiment):
    doc = yaml.safe_load(experiment.read_text())
    scenario = load_scenario(experiment.with_name(f"{experiment.stem}.scenario.yaml"))
    # Its probe waits as long as the checker's bound: neither calls a task stuck the other passes.
    assert doc["configuration"]["bound_s"]["default"] == scenario.bounds.apply_pending_s
    recorded = []
    for step in doc["method"]:
        provider = step["provider"]
        if provider.get("func") in RECORDS:
            recorded.append(RECORDS[provider["func"]] or provider["arguments"]["fault"])
    # The gate wants a row of each declared fault type; each fault step records its own.
    assert sorted(recorded) == sorted(f.type for f in scenario.faults)
    assert experiment.read_text().count("${bound_s}") == 1  # the stuck probe uses it
    gaps = [f.gap_s for f in scenario.faults if f.type == "double-confirm"]
    if gaps:  # its clicks are as far apart as the scenario's
        assert [doc["configuration"]["gap_s"]["default"]] == gaps


def test_a_service_that_does_not_answer_is_named_with_the_fix():
    config = {"unstuck_url": f"http://127.0.0.1:{free_port()}"}
    with pytest.raises(ActivityFailed, match=r"^GET http://127\.0\.0\.1:\d+/tasks: the service did "
                                             r"not answer .*is `unstuck serve` running there\? set unstuck_url$"):
        probes.task_status("ws-1", configuration=config)


@pytest.fixture
def service(tmp_path):
    svc = InProcessService(tmp_path)  # its workspaces include ws-1
    yield svc
    svc.stop()


def test_user_steps_without_a_token_say_which_secret_to_set(service):
    with pytest.raises(ActivityFailed, match=r"POST .*/tasks: no user token; give the experiment's "
                                             r"secret unstuck\.token"):
        actions.create_task("ws-1", configuration={"unstuck_url": service.url})
    assert service.engine.store.list_tasks() == []


def test_steps_on_a_workspace_without_the_task_they_need_say_what_to_do_first(service):
    config, secrets = {"unstuck_url": service.url}, {"token": USER_TOKEN}
    with pytest.raises(ActivityFailed, match=r"^workspace 'ws-1' has no task yet; create one first"):
        actions.confirm_apply("ws-1", configuration=config, secrets=secrets)
    task = actions.create_task("ws-1", configuration=config, secrets=secrets)
    assert probes.task_status("ws-1", configuration=config) == "pending"  # no agent: it waits
    with pytest.raises(ActivityFailed, match=rf"^task {task} of 'ws-1' is pending, not apply_pending "
                                             r"with a plan: nothing to confirm"):
        actions.confirm_apply("ws-1", configuration=config, secrets=secrets)
    with pytest.raises(ActivityFailed, match=rf"^task {task} of 'ws-1' is pending, not apply_pending "):
        actions.double_confirm("ws-1", configuration=config, secrets=secrets)
    assert not [r for r in service.engine.history.rows if r["kind"] == "fault"]  # no click, no fault
    with pytest.raises(ActivityFailed, match=rf"^task {task} of 'ws-1' \(pending\) holds no slot"):
        actions.target_reserved_pod("ws-1", configuration=config, secrets=secrets)
    with pytest.raises(ActivityFailed, match=rf"^task {task} of 'ws-1' is pending, not apply_pending, "
                                             r"after 0\.3 s$"):
        actions.wait_for_task("ws-1", "apply_pending", timeout=0.3, configuration=config)
    with pytest.raises(ActivityFailed, match=r"^no fault has been recorded yet"):
        actions.wait_until_agent_gone(timeout=0.3, configuration=config)
    with pytest.raises(ActivityFailed, match=rf"^task {task} of 'ws-1' \(pending\) has no run started"):
        actions.disconnect_agent("ws-1", configuration=config, secrets=secrets)
    with pytest.raises(ActivityFailed, match=rf"^task {task} of 'ws-1' \(pending\) has no apply run "
                                             r"started on any agent after 0\.3 s$"):
        actions.wait_for_run("ws-1", "apply", timeout=0.3, configuration=config)
    with pytest.raises(ActivityFailed, match=r"^action: 'destroy'; choose plan or apply$"):
        actions.wait_for_run("ws-1", "destroy", timeout=0.3, configuration=config)
    with pytest.raises(ActivityFailed, match=rf"^task {task} of 'ws-1' \(pending\) holds no slot"):
        actions.disconnect_agent("ws-1", of="slot", configuration=config, secrets=secrets)
    with pytest.raises(ActivityFailed, match=r"^of: 'pod'; choose run \(the agent running the task's "
                                             r"latest run\) or slot"):
        actions.disconnect_agent("ws-1", of="pod", configuration=config, secrets=secrets)
    # No fault step got as far as recording a fault it did not inject.
    assert not [r for r in service.engine.history.rows if r["kind"] == "fault"]


def test_a_refused_request_is_one_line_with_the_services_reason(service):
    config, secrets = {"unstuck_url": service.url}, {"token": "not-a-token"}
    with pytest.raises(ActivityFailed, match=r"^POST .*/tasks: 401 "):
        actions.create_task("ws-1", configuration=config, secrets=secrets)


def test_a_double_click_is_two_confirms_and_the_reference_applies_once(service):
    # The double-confirm step against a real agent: the fault row first, then two clicks
    # 0.1 s apart; the reference confirms the first and refuses the second (409), and the
    # apply probe counts one start.
    config, secrets = {"unstuck_url": service.url}, {"token": USER_TOKEN}
    service.start_agent()
    task = actions.create_task("ws-1", configuration=config, secrets=secrets)
    actions.wait_for_task("ws-1", "apply_pending", timeout=20, configuration=config)
    assert probes.most_applies_started(configuration=config) == 0
    # One confirmed, one refused: which answers first is the race of the two requests.
    assert sorted(actions.double_confirm("ws-1", 0.1, configuration=config, secrets=secrets)) == [200, 409]
    (fault,) = [r for r in service.engine.history.rows if r["kind"] == "fault"]
    (user, other) = [r for r in service.engine.history.rows if r["kind"] == "user"
                     and r["data"]["action"] == "confirm"]
    assert (fault["data"]["type"], fault["task"]) == ("double-confirm", task)
    assert fault["seq"] < user["seq"] and 0.05 <= other["t"] - user["t"] < 1, (user, other)  # about 0.1 s
    actions.wait_for_task("ws-1", "terminal", timeout=20, configuration=config)
    assert probes.most_applies_started(configuration=config) == 1


def test_the_stuck_probe_counts_confirmed_tasks_that_have_not_ended(service):
    config = {"unstuck_url": service.url}
    assert probes.stuck_tasks(within=0.2, configuration=config) == 0
    actions.create_task("ws-1", configuration=config, secrets={"token": USER_TOKEN})
    assert probes.stuck_tasks(within=0.2, configuration=config) == 0  # not confirmed: a human's turn



def _step_with_kubeconfig_at(tmp_path, server: str, call: str = "actions.heal_nodes()",
                             env: dict[str, str] | None = None) -> str:
    """`call` (a step of chaos.toolkit.actions) in a fresh process whose KUBECONFIG names
    `server` (the kubernetes client reads $KUBECONFIG once, at import): what it returned, or
    its one-line failure."""
    from chaos.cluster import kubeconfig

    kubeconfig.write(tmp_path / "kubeconfig", server, time_scale=1.0)
    code = ("from chaoslib.exceptions import ActivityFailed\n"
            "from chaos.toolkit import actions\n"
            f"try:\n    print({call})\nexcept ActivityFailed as exc:\n    print(exc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {}), "KUBECONFIG": str(tmp_path / "kubeconfig")})
    assert done.returncode == 0 and not done.stderr, done.stderr
    return done.stdout.strip()


def test_node_steps_against_no_cluster_say_which_kubeconfig_to_use(tmp_path):
    said = _step_with_kubeconfig_at(tmp_path, f"http://127.0.0.1:{free_port()}")
    assert re.fullmatch(r"GET http://127\.0\.0\.1:\d+/unstuck/v1/info: no answer \(.*\); is KUBECONFIG "
                        r"the local cluster's \(`unstuck cluster up --local` writes it\)\?", said), said


def test_node_steps_against_another_server_say_how_to_lose_a_node_there(tmp_path, service):
    said = _step_with_kubeconfig_at(tmp_path, service.url)  # HTTP, but no admin API, no nodes
    assert said == (f"{service.url} is neither unstuck's local cluster (no /unstuck/v1 admin API) "
                    "nor kind (no node names a kind:// provider): lose the node by its provider's "
                    "own means (stop its machine) instead"), said


FAKE_RUNTIME = """#!/bin/sh
# docker as the node steps use it, a container's paused state kept as a file in $FAKE_RUNTIME_DIR.
echo "$*" >> "$FAKE_RUNTIME_DIR/calls"
case "$1" in
  pause) touch "$FAKE_RUNTIME_DIR/paused-$2" ;;
  unpause) rm "$FAKE_RUNTIME_DIR/paused-$2" ;;
  inspect) if [ -e "$FAKE_RUNTIME_DIR/paused-$4" ]; then echo true; else echo false; fi ;;
  *) echo "no such command: $1" >&2; exit 1 ;;
esac
"""


def test_on_kind_a_node_is_lost_by_pausing_its_container_and_healed_by_unpausing_it(tmp_path, service):
    # kind is not here (no container runtime can run), so its nodes are the local cluster's
    # with kind's providerID, and `docker` a script that keeps each container's paused state.
    # The steps themselves, the Kubernetes reads and the service's fault row are real.
    from kubernetes import client

    from chaos.cluster.cluster import LocalCluster
    from scheduler.history import HistoryEvent, Kind

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_RUNTIME)
    (bin_dir / "docker").chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_RUNTIME_DIR": str(tmp_path)}
    with LocalCluster(nodes=2, time_scale=20.0, workdir=str(tmp_path / "cluster")) as cluster:
        cfg = client.Configuration()
        cfg.host = cluster.url
        with client.ApiClient(cfg) as api:
            core = client.CoreV1Api(api)
            for node in ("node-1", "node-2"):
                core.patch_node(node, {"spec": {"providerID": f"kind://docker/unstuck/unstuck-{node}"}})
            core.create_namespace({"metadata": {"name": "unstuck"}})
            core.create_namespaced_pod("unstuck", {"metadata": {"name": "agent-1"}, "spec": {
                "containers": [{"name": "agent", "image": "local/sleep", "command": ["sleep", "60"]}]}})
            node = wait_for(lambda: core.read_namespaced_pod("agent-1", "unstuck").spec.node_name, 20,
                            what="agent-1 bound to a node")
        config = {"unstuck_url": service.url, "unstuck_namespace": "unstuck"}
        task = actions.create_task("ws-1", configuration=config, secrets={"token": USER_TOKEN})
        service.engine.history.append(HistoryEvent(service.engine.clock.now(), Kind.SLOT_RESERVED,
                                                   task=task, pod="agent-1"))

        lost = _step_with_kubeconfig_at(
            tmp_path, cluster.url, f"actions.lose_node_of_reserved_pod('ws-1', configuration={config!r}, "
            f"secrets={{'token': {USER_TOKEN!r}}})", env)
        assert lost == node
        assert (tmp_path / "calls").read_text() == f"pause unstuck-{node}\n"
        (fault,) = [r for r in service.engine.history.rows if r["kind"] == "fault"]
        assert (fault["data"]["type"], fault["data"]["node"], fault["pod"], fault["task"]) == (
            "node-loss", node, "agent-1", task)

        assert _step_with_kubeconfig_at(tmp_path, cluster.url, env=env) == f"['{node}']"
        assert not list(tmp_path.glob("paused-*"))
        assert _step_with_kubeconfig_at(tmp_path, cluster.url, env=env) == "[]"  # nothing paused


def test_the_hpa_patch_records_its_fault_and_the_rollback_ends_it(tmp_path, service):
    # The HPA experiments' fault and rollback steps against the local cluster's real HPA:
    # the patch posts the fault row, the restore ends it (so the service stops naming pod
    # deletions as its effect), and a rollback with no fault in force (the method failed
    # before its fault step) still restores the bounds and does not fail.
    from kubernetes import client

    from chaos.cluster.cluster import LocalCluster

    hpa = {"metadata": {"name": "unstuck-agent"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "unstuck-agent"},
        "minReplicas": 2, "maxReplicas": 10}}
    config, secrets = {"unstuck_url": service.url, "unstuck_namespace": "unstuck"}, {"token": USER_TOKEN}
    with LocalCluster(nodes=1, time_scale=20.0, workdir=str(tmp_path / "cluster")) as cluster:
        cfg = client.Configuration()
        cfg.host = cluster.url
        with client.ApiClient(cfg) as api:
            client.CoreV1Api(api).create_namespace({"metadata": {"name": "unstuck"}})
            autoscaling = client.AutoscalingV2Api(api)
            autoscaling.create_namespaced_horizontal_pod_autoscaler("unstuck", hpa)

            def step(**kw) -> str:
                return _step_with_kubeconfig_at(
                    tmp_path, cluster.url, f"actions.patch_hpa('unstuck-agent', configuration={config!r}, "
                    f"secrets={secrets!r}, **{kw!r})")

            def bounds() -> tuple[int, int]:
                spec = autoscaling.read_namespaced_horizontal_pod_autoscaler("unstuck-agent", "unstuck").spec
                return spec.min_replicas, spec.max_replicas

            assert step(min_replicas=1, max_replicas=1) == "{'minReplicas': 2, 'maxReplicas': 10}"
            assert bounds() == (1, 1)
            (fault,) = [r for r in service.engine.history.rows if r["kind"] == "fault"]
            assert fault["data"] == {"type": "hpa-scale-down", "target": None}
            assert service.engine.effects.match(fault) == fault["seq"]  # in force
            restore = {"min_replicas": 2, "max_replicas": 10, "record": False, "end_fault": True}
            assert step(**restore) == "{'minReplicas': 1, 'maxReplicas': 1}"
            assert bounds() == (2, 10)
            assert step(**restore) == "{'minReplicas': 2, 'maxReplicas': 10}"  # nothing in force
            (end,) = [r for r in service.engine.history.rows if r["kind"] == "fault.end"]
            assert end["data"] == fault["data"] and service.engine.effects.match(fault) is None


def test_the_restart_step_records_the_scheduler_pod_it_will_kill_and_refuses_without_one(tmp_path, service):
    # Against the local cluster: with no pod of the selector the step fails, saying the
    # scheduler must run as a pod, and records nothing; with one it names that pod.
    from kubernetes import client

    from chaos.cluster.cluster import LocalCluster

    config, secrets = {"unstuck_url": service.url, "unstuck_namespace": "unstuck"}, {"token": USER_TOKEN}
    call = f"actions.record_scheduler_restart(configuration={config!r}, secrets={secrets!r})"
    with LocalCluster(nodes=1, time_scale=20.0, workdir=str(tmp_path / "cluster")) as cluster:
        assert _step_with_kubeconfig_at(tmp_path, cluster.url, call) == (
            "no pod in namespace unstuck matches 'app=unstuck-scheduler': the scheduler must run "
            "as a pod for a restart to be injected (deploy/scheduler.yaml; on the local cluster "
            "deploy/local/scheduler.yaml), and label_selector must select it")
        assert not [r for r in service.engine.history.rows if r["kind"] == "fault"]
        cfg = client.Configuration()
        cfg.host = cluster.url
        with client.ApiClient(cfg) as api:
            core = client.CoreV1Api(api)
            core.create_namespace({"metadata": {"name": "unstuck"}})
            core.create_namespaced_pod("unstuck", {
                "metadata": {"name": "unstuck-scheduler-1", "labels": {"app": "unstuck-scheduler"}},
                "spec": {"containers": [{"name": "scheduler", "image": "unstuck:latest"}]}})
            core.create_namespaced_pod("unstuck", {
                "metadata": {"name": "unstuck-agent-1", "labels": {"app": "unstuck-agent"}},
                "spec": {"containers": [{"name": "agent", "image": "unstuck:latest"}]}})
        assert _step_with_kubeconfig_at(tmp_path, cluster.url, call) == "['unstuck-scheduler-1']"
    (fault,) = [r for r in service.engine.history.rows if r["kind"] == "fault"]
    assert (fault["data"]["type"], fault["reason"]) == ("scheduler-restart",
                                                        "scheduler pod unstuck-scheduler-1 killed")


def test_the_restart_wait_ends_when_a_new_process_serves(tmp_path):
    # A real `unstuck serve`, killed (-9) and started again on its folder, as a Deployment
    # would: the wait sees the old process answer, then none, then the new one's boot row.
    import signal
    import threading
    import time

    from tests.unit.service.live import LiveRun

    run = LiveRun(tmp_path)
    config = {"unstuck_url": run.url}
    try:
        run.start_scheduler()
        with pytest.raises(ActivityFailed, match="no scheduler-restart fault has been recorded; "
                                                 "record_scheduler_restart comes first"):
            actions.wait_for_scheduler_restart(timeout=1, configuration=config)
        run.fault("scheduler-restart")
        with pytest.raises(ActivityFailed, match=r"^no new scheduler process served 0\.5 s after the "
                                                 r"restart \(the old process still answers\); is the "
                                                 r"scheduler a Deployment's pod that comes back\?$"):
            actions.wait_for_scheduler_restart(timeout=0.5, configuration=config)

        def restart() -> None:
            time.sleep(0.5)
            run.signal("scheduler", signal.SIGKILL)
            run.start_scheduler()

        thread = threading.Thread(target=restart)
        thread.start()
        waited = actions.wait_for_scheduler_restart(timeout=30, configuration=config)
        thread.join()
        assert waited >= 0.5
        fault = max(r["seq"] for r in run.history() if r["kind"] == "fault")
        assert [r["seq"] > fault for r in run.history() if r["kind"] == "scheduler.restart"] == [False, True]
    finally:
        run.stop()


def test_the_runs_wait_names_the_runs_still_open(service):
    config = {"unstuck_url": service.url}
    service.start_agent(plan_s=1.5)
    actions.create_task("ws-1", configuration=config, secrets={"token": USER_TOKEN})
    assert actions.wait_for_runs_to_end(timeout=1, configuration=config) == 0  # none started yet
    # The task is running from its dispatch; the run from the agent's start.
    assert actions.wait_for_run("ws-1", "plan", timeout=20, configuration=config) == "pod-1"
    assert any(r["kind"] == "exec.invoke" for r in service.engine.history.rows)
    with pytest.raises(ActivityFailed, match=r"^1 run\(s\) had not ended 0\.2 s later: plan run "
                                             r"[0-9a-f]+ of task 1 on pod-1$"):
        actions.wait_for_runs_to_end(timeout=0.2, configuration=config)
    assert actions.wait_for_runs_to_end(timeout=20, configuration=config) == 1


def test_docs_chaos_md_lists_every_step_with_its_arguments():
    import inspect

    doc = (ROOT / "docs" / "chaos.md").read_text()
    for module in (actions, probes):
        for name in module.__all__:
            params = [p for p in inspect.signature(getattr(module, name)).parameters
                      if p not in ("configuration", "secrets")]  # Chaos Toolkit passes these
            assert f"`{name}({', '.join(params)})`" in doc, name
