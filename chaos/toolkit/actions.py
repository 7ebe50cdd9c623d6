"""Chaos Toolkit actions for a live unstuck run (see the package docstring).

User steps (create, wait, confirm) act as a person would through the service's API. Fault
steps first post the fault row, then act, so the history says when the fault was injected.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import urllib3
from chaosk8s import create_k8s_api_client
from chaoslib.exceptions import ActivityFailed
from kubernetes import client
from kubernetes.client.rest import ApiException

from chaos.toolkit import kind_nodes
from chaos.toolkit.service import TERMINAL, Service, Unanswered, until
from sim.kube.replicasets import DELETION_COST_ANNOTATION, LOWEST_DELETION_COST

__all__ = ["create_task", "wait_for_task", "confirm_apply", "double_confirm", "target_reserved_pod",
           "rank_reserved_pod_first", "wait_until_agent_gone", "lose_node_of_reserved_pod",
           "heal_nodes", "patch_hpa", "fail_store_writes", "record_scheduler_restart",
           "wait_for_scheduler_restart", "wait_for_run", "wait_for_runs_to_end", "disconnect_agent"]

TARGET_LABEL = "unstuck.io/chaos-target"


def _namespace(configuration: dict | None) -> str:
    return str((configuration or {}).get("unstuck_namespace") or "unstuck")


def create_task(workspace: str, task_type: str = "plan_and_apply",
                configuration: dict | None = None, secrets: dict | None = None) -> int:
    """A user starts a task in `workspace`; returns its id."""
    with Service(configuration, secrets) as svc:
        return svc.create(workspace, task_type)["id"]


def wait_for_task(workspace: str, status: str | list[str] = "apply_pending", timeout: float = 60,
                  configuration: dict | None = None) -> dict[str, Any]:
    """Wait until the newest task of `workspace` reaches `status` (one or a list; "terminal"
    means any end state); fails, naming where it is, after `timeout` seconds."""
    wanted = {status} if isinstance(status, str) else set(status)
    if "terminal" in wanted:
        wanted = (wanted - {"terminal"}) | TERMINAL
    with Service(configuration) as svc:
        return svc.wait(workspace, wanted, timeout)


def wait_for_run(workspace: str, action: str = "apply", timeout: float = 60,
                 configuration: dict | None = None) -> str:
    """Wait until an agent has started the `action` run (plan or apply) of the newest task
    of `workspace`: its `exec.invoke` row. Why not `wait_for_task(status="running")`: the
    task is `running` from its dispatch, before the agent has the run; a fault made in that
    gap (a scheduler killed 0.08 s after the dispatch) meets a dispatch, not a run, and the
    agent's start may die with the process it was sent to. Returns the run's pod; fails,
    naming where the task is, after `timeout` seconds."""
    if action not in ("plan", "apply"):
        raise ActivityFailed(f"action: {action!r}; choose plan or apply")
    seen: list[tuple[dict[str, Any], list[str]]] = []

    def started() -> bool:
        with Service(configuration) as svc:
            seen.append(svc.run_pods(workspace, action))
        return bool(seen[-1][1])

    if not until(started, timeout):
        task = seen[-1][0]
        raise ActivityFailed(f"task {task['id']} of {workspace!r} ({task['status']}) has no {action} "
                             f"run started on any agent after {timeout:g} s")
    return seen[-1][1][-1]


def _waiting_task(svc: Service, workspace: str) -> dict[str, Any]:
    task = svc.newest_task(workspace)
    if task["status"] != "apply_pending" or not task.get("plan_digest"):
        raise ActivityFailed(f"task {task['id']} of {workspace!r} is {task['status']}, not "
                             "apply_pending with a plan: nothing to confirm; wait for it "
                             "first (wait_for_task)")
    return task


def confirm_apply(workspace: str, configuration: dict | None = None,
                  secrets: dict | None = None) -> dict[str, Any]:
    """The human's "Confirm Apply" on the plan of the newest task of `workspace`."""
    with Service(configuration, secrets) as svc:
        return svc.confirm(_waiting_task(svc, workspace))


def double_confirm(workspace: str, gap_s: float = 0.1, configuration: dict | None = None,
                   secrets: dict | None = None) -> list[int]:
    """The `double-confirm` fault: a user double-clicks "Confirm Apply" on the plan of the
    newest task of `workspace`, the second click `gap_s` seconds after the first, whether or
    not the first was answered (each click its own connection, as a browser's two requests).
    Records the fault first. Returns the two answers' HTTP statuses, a refusal included: the
    reference answers the second 409, the seed 200 or 400 ("task is running"); the history
    says whether the apply ran twice (seed-system.md F7: two confirms can both dispatch it)."""
    with Service(configuration, secrets) as svc:
        task = _waiting_task(svc, workspace)
        svc.record_fault("double-confirm", task=task["id"],
                         reason=f"user double-clicks Confirm ({gap_s:g} s apart)")
    # Each click has its connection open before either is sent (a browser's kept-alive
    # ones), and both threads start from one barrier: the gap between the two requests is
    # then `gap_s`, not `gap_s` plus a connect or a thread start on a busy machine.
    clicks = [Service(configuration, secrets), Service(configuration, secrets)]
    start = threading.Barrier(2)

    def click(i: int) -> int:
        start.wait()
        if i:
            time.sleep(gap_s)
        return clicks[i].click_confirm(task)

    try:
        for one in clicks:
            one.ready()  # opens its connection
        with ThreadPoolExecutor(2) as pool:
            return [f.result() for f in [pool.submit(click, 0), pool.submit(click, 1)]]
    finally:
        for one in clicks:
            one.http.close()


def target_reserved_pod(workspace: str, fault: str = "pod-kill", label: str = "reserved",
                        configuration: dict | None = None, secrets: dict | None = None) -> str:
    """Label the pod that holds the slot of the newest task of `workspace`
    `unstuck.io/chaos-target=<label>`, for a stock chaostoolkit-kubernetes action
    (`terminate_pods(label_selector=...)`, say) to hit next, and record `fault` against it.
    Returns the pod."""
    with Service(configuration, secrets) as svc:
        task, pod = svc.reserved_pod(workspace)
        # The label first: it harms nothing, and a row must not name a fault never made.
        _patch_pod(pod, {"labels": {TARGET_LABEL: label}}, configuration, secrets)
        svc.record_fault(fault, pod=pod, task=task["id"],
                         reason=f"the pod holding task {task['id']}'s slot ({task['status']})")
    return pod


def rank_reserved_pod_first(workspace: str, label: str = "reserved",
                            configuration: dict | None = None, secrets: dict | None = None) -> str:
    """Make the pod that holds the slot of the newest task of `workspace` the one a
    ReplicaSet deletes first when it scales down: the lowest pod-deletion-cost there is
    (ranking rule 4, docs/kube-rules.md), and the label `unstuck.io/chaos-target=<label>`.

    Why: which of equal pods a scale-down takes is otherwise the ReplicaSet's ranking of
    their ages, a matter of timing. With this step the HPA scale-down that follows takes the
    reservation's pod, as it did in incident 601, under every scheduler. It overrides any cost
    the scheduler wrote (the reference protects busy pods so): what if another hand did so?
    It records no fault row; the scale-down that follows records its own. Returns the pod."""
    with Service(configuration, secrets) as svc:
        _, pod = svc.reserved_pod(workspace)
    _patch_pod(pod, {"labels": {TARGET_LABEL: label},
                     "annotations": {DELETION_COST_ANNOTATION: LOWEST_DELETION_COST}},
               configuration, secrets)
    return pod


def _patch_pod(pod: str, metadata: dict, configuration: dict | None, secrets: dict | None) -> None:
    ns = _namespace(configuration)
    try:
        client.CoreV1Api(create_k8s_api_client(secrets)).patch_namespaced_pod(
            pod, ns, {"metadata": metadata})
    except ApiException as exc:
        raise ActivityFailed(f"patching pod {pod} in namespace {ns}: {exc.status} {exc.reason}; "
                             "is unstuck_namespace the agents' namespace?") from None


def wait_until_agent_gone(timeout: float = 60, workspace: str | None = None,
                          configuration: dict | None = None) -> str:
    """Wait until the scheduler no longer counts an agent on the pod of the newest fault row
    as connected (with `workspace`: on the pod that held the slot of that workspace's newest
    task, for a fault that names no pod, such as an HPA scale-down): the fault has reached
    the scheduler, and what it does next is its answer to it. Incident 601's confirm came in
    that window, before a replacement pod's agent had connected. Returns the pod; fails,
    naming it, after `timeout` seconds."""
    with Service(configuration) as svc:
        pod = svc.reserved_pod(workspace)[1] if workspace else svc.last_fault().get("pod")
        if not pod:
            raise ActivityFailed("the newest fault row names no pod; wait_until_agent_gone "
                                 "follows target_reserved_pod or lose_node_of_reserved_pod, or "
                                 "give it the workspace whose reserved pod the fault took")
        if not until(lambda: pod not in svc.connected_pods(), timeout, poll_s=0.1):
            raise ActivityFailed(f"the scheduler still counts the agent of pod {pod} as "
                                 f"connected {timeout:g} s after the fault")
        return pod


def _admin(secrets: dict | None, method: str, path: str) -> Any:
    """The local cluster's admin API (`unstuck cluster up --local`, docs/local-cluster.md), at
    the server the kubeconfig names."""
    host = create_k8s_api_client(secrets).configuration.host.rstrip("/")
    try:
        r = httpx.request(method, f"{host}/unstuck/v1/{path}", timeout=10)
    except httpx.HTTPError as exc:
        raise ActivityFailed(f"{method} {host}/unstuck/v1/{path}: no answer ({exc}); is KUBECONFIG "
                             "the local cluster's (`unstuck cluster up --local` writes it)?") from None
    if r.status_code == 404 and "admin API" not in r.text:
        raise ActivityFailed(
            f"{host} is neither unstuck's local cluster (no /unstuck/v1 admin API) nor kind (no "
            "node names a kind:// provider): lose the node by its provider's own means (stop "
            "its machine) instead")
    if r.status_code >= 400:
        raise ActivityFailed(f"{method} {host}/unstuck/v1/{path}: {r.status_code} {r.text}")
    return r.json()


def lose_node_of_reserved_pod(workspace: str, configuration: dict | None = None,
                              secrets: dict | None = None) -> str:
    """Lose the node that runs the pod holding the slot of the newest task of `workspace`:
    its processes stop at once and its kubelet stops renewing its lease, as when a machine
    drops off the network (the node goes Unknown, then its pods are evicted). On unstuck's
    local cluster through its admin API; on kind by pausing the node's container
    (`chaos.toolkit.kind_nodes`). Returns the node; `heal_nodes` brings it back."""
    ns = _namespace(configuration)
    with Service(configuration, secrets) as svc:
        task, pod = svc.reserved_pod(workspace)
        try:
            node = client.CoreV1Api(create_k8s_api_client(secrets)).read_namespaced_pod(
                pod, ns).spec.node_name
        except ApiException as exc:
            raise ActivityFailed(f"reading pod {pod} in namespace {ns}: {exc.status} "
                                 f"{exc.reason}") from None
        if not node:
            raise ActivityFailed(f"pod {pod} is not bound to a node yet; nothing to lose")
        kind = _kind_nodes(secrets).get(node)
        svc.record_fault("node-loss", node=node, pod=pod, task=task["id"],
                         reason=f"the node of the pod holding task {task['id']}'s slot")
    if kind is not None:
        kind_nodes.pause(*kind)
    else:
        _admin(secrets, "POST", f"nodes/{node}/freeze")
    return node


def _kind_nodes(secrets: dict | None) -> dict[str, tuple[str, str]]:
    """The cluster's kind nodes (node -> runtime, container); none on another cluster, or
    when the nodes cannot be listed (the local cluster's admin API then says why)."""
    try:
        nodes = client.CoreV1Api(create_k8s_api_client(secrets)).list_node().items
    except (ApiException, urllib3.exceptions.HTTPError, OSError):
        return {}
    found = {n.metadata.name: kind_nodes.container_of(n.spec.provider_id) for n in nodes}
    return {name: where for name, where in found.items() if where is not None}


def heal_nodes(secrets: dict | None = None) -> list[str]:
    """Bring back every node that is not running (a rollback): their processes resume and
    their leases are renewed. On kind, every node container that is paused is unpaused."""
    kind = _kind_nodes(secrets)
    if kind:
        return kind_nodes.heal(kind)
    nodes = _admin(secrets, "GET", "info")["nodes"]
    lost = sorted(n for n, state in nodes.items() if state != "running")
    for node in lost:
        _admin(secrets, "POST", f"nodes/{node}/heal")
    return lost


def patch_hpa(name: str, min_replicas: int, max_replicas: int, record: bool = True,
              end_fault: bool = False, configuration: dict | None = None,
              secrets: dict | None = None) -> dict[str, int]:
    """Patch the HPA's bounds (the `hpa-scale-down` fault as an operator's min/max patch,
    which the HPA enforces at its next sync). With `record` a fault row is posted first;
    a rollback that restores the bounds passes `record: false` and `end_fault: true`, which
    ends that fault once the bounds are back: until then the service takes a pod deletion it
    did not make for the fault's effect (docs/metrics.md, "Effects"). Returns the old bounds."""
    ns = _namespace(configuration)
    api = client.AutoscalingV2Api(create_k8s_api_client(secrets))
    try:
        old = api.read_namespaced_horizontal_pod_autoscaler(name, ns).spec
        if record:
            with Service(configuration, secrets) as svc:
                svc.record_fault("hpa-scale-down", reason=json.dumps(
                    {"hpa": name, "minReplicas": min_replicas, "maxReplicas": max_replicas}))
        api.patch_namespaced_horizontal_pod_autoscaler(
            name, ns, {"spec": {"minReplicas": min_replicas, "maxReplicas": max_replicas}})
    except ApiException as exc:
        raise ActivityFailed(f"HPA {ns}/{name}: {exc.status} {exc.reason}; is it applied "
                             "(deploy/hpa.yaml)?") from None
    if end_fault:
        with Service(configuration, secrets) as svc:
            svc.end_fault("hpa-scale-down", reason=json.dumps(
                {"hpa": name, "minReplicas": min_replicas, "maxReplicas": max_replicas}))
    return {"minReplicas": old.min_replicas, "maxReplicas": old.max_replicas}


def fail_store_writes(rate: float = 1.0, duration_s: float = 5.0, configuration: dict | None = None,
                      secrets: dict | None = None) -> int:
    """The `db-write-failure` fault: for `duration_s` seconds each of the scheduler's store
    writes fails with probability `rate`, as the simulation's window does. The service fails
    its own writes (it must run with `--fault-injection`); the fault row and, at the window's
    end, its `fault.end` are its own. Returns the fault row's seq."""
    with Service(configuration, secrets) as svc:
        return svc.record_fault("db-write-failure", rate=rate, duration_s=duration_s,
                                reason=f"store writes fail with p={rate:g} for {duration_s:g} s")


def disconnect_agent(workspace: str, of: str = "run", reconnect_after: float | None = None,
                     configuration: dict | None = None, secrets: dict | None = None) -> str:
    """The `agent-disconnect` fault: the C&C session of an agent of the newest task of
    `workspace` drops, as a WebSocket drops for a network blip or a load balancer's idle
    timeout. `of: run` takes the agent running the task's latest run; `of: slot`, the agent
    of the pod holding its slot (a plan waiting for its confirm). The service hears the close
    at once; the agent's process and runs go on, and it connects again, after
    `reconnect_after` seconds if given (its registrations are refused until then). The
    service makes the drop itself (its long-poll is the session; it must run with
    `--fault-injection`), as no cut made elsewhere would be heard: the agent would just poll
    again. Returns the pod."""
    if of not in ("run", "slot"):
        raise ActivityFailed(f"of: {of!r}; choose run (the agent running the task's latest "
                             "run) or slot (the agent of the pod holding its slot)")
    with Service(configuration, secrets) as svc:
        task, pod = svc.running_pod(workspace) if of == "run" else svc.reserved_pod(workspace)
        held = f", down for {reconnect_after:g} s" if reconnect_after is not None else ""
        svc.record_fault("agent-disconnect", pod=pod, task=task["id"], reconnect_after=reconnect_after,
                         reason=f"the C&C session of the agent {'running' if of == 'run' else 'holding the slot of'} "
                                f"task {task['id']} ({task['status']}) dropped{held}")
    return pod


def record_scheduler_restart(label_selector: str = "app=unstuck-scheduler",
                             configuration: dict | None = None, secrets: dict | None = None) -> list[str]:
    """Record the `scheduler-restart` fault, naming the scheduler's pods that the next step
    kills (chaostoolkit-kubernetes' `terminate_pods` with the same `label_selector`): the
    row must come from the process that is about to die, as no later one can say when it
    died. Fails, writing nothing, when no pod matches: the scheduler then does not run as a
    pod (deploy/scheduler.yaml, or deploy/local/scheduler.yaml on the local cluster), and
    killing nothing would restart nothing. Returns the pods."""
    ns = _namespace(configuration)
    try:
        pods = client.CoreV1Api(create_k8s_api_client(secrets)).list_namespaced_pod(
            ns, label_selector=label_selector).items
    except ApiException as exc:
        raise ActivityFailed(f"listing pods {label_selector!r} in namespace {ns}: {exc.status} "
                             f"{exc.reason}") from None
    names = sorted(p.metadata.name for p in pods if p.metadata.deletion_timestamp is None)
    if not names:
        raise ActivityFailed(
            f"no pod in namespace {ns} matches {label_selector!r}: the scheduler must run as a "
            "pod for a restart to be injected (deploy/scheduler.yaml; on the local cluster "
            "deploy/local/scheduler.yaml), and label_selector must select it")
    with Service(configuration, secrets) as svc:
        svc.record_fault("scheduler-restart", reason=f"scheduler pod {', '.join(names)} killed")
    return names


def wait_for_scheduler_restart(timeout: float = 60, configuration: dict | None = None) -> float:
    """Wait until a new scheduler process serves: its boot row (`scheduler.restart`) comes
    after the newest `scheduler-restart` fault row and it answers /readyz. Until then the
    old process may still answer (its kill is on its way) or nothing does (the new one is
    starting), so an unanswered request is waited through, not a failure. Returns the
    seconds waited; fails after `timeout`, saying what it last saw."""
    started, seen = time.monotonic(), ["no answer yet"]

    def booted() -> bool:
        with Service(configuration) as svc:
            try:
                rows = svc.history()
                faults = [r["seq"] for r in rows if r["kind"] == "fault"
                          and (r.get("data") or {}).get("type") == "scheduler-restart"]
                if not faults:
                    raise ActivityFailed("no scheduler-restart fault has been recorded; "
                                         "record_scheduler_restart comes first")
                if not any(r["kind"] == "scheduler.restart" and r["seq"] > faults[-1] for r in rows):
                    seen[0] = "the old process still answers"
                    return False
                seen[0] = "it has booted, /readyz is not 200 yet"
                return svc.ready()
            except Unanswered:
                seen[0] = "no answer"
                return False

    if not until(booted, timeout, poll_s=0.2):
        raise ActivityFailed(f"no new scheduler process served {timeout:g} s after the restart "
                             f"({seen[0]}); is the scheduler a Deployment's pod that comes back?")
    return round(time.monotonic() - started, 3)


def wait_for_runs_to_end(timeout: float = 30, configuration: dict | None = None) -> int:
    """Wait until every run an agent started (`exec.invoke`) has reported how it ended
    (`exec.ok` or `exec.fail` of the same run). Why: a task's status can end before its run
    does (the seed fails a task its restart interrupted while the agent applies on), and the
    steady state, which asks about tasks, would end the experiment there; the history would
    then never show what the run did. Returns how many runs ended; fails after `timeout`,
    naming the runs still open."""
    left: list[str] = []
    started: list[dict] = []

    def none_open() -> bool:
        with Service(configuration) as svc:
            rows = svc.history()
        ended = {(r.get("data") or {}).get("run") for r in rows if r["kind"] in ("exec.ok", "exec.fail")}
        started[:] = [r for r in rows if r["kind"] == "exec.invoke"]
        left[:] = [f"{r['data'].get('action')} run {r['data'].get('run')} of task {r['task']} on "
                   f"{r.get('pod')}" for r in started if r["data"].get("run") not in ended]
        return not left

    if not until(none_open, timeout):
        raise ActivityFailed(f"{len(left)} run(s) had not ended {timeout:g} s later: {'; '.join(left)}")
    return len(started)
