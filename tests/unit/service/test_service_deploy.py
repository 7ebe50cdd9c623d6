"""deploy/: the manifests parse, hold what issue 5 lists, and pass only real CLI options."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml

from unstuck.cli import app

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def docs() -> list[dict]:
    out = []
    for f in sorted(DEPLOY.glob("*.yaml")):
        out += [d for d in yaml.safe_load_all(f.read_text()) if d]
    return out


def test_the_manifests_hold_every_piece():
    by_kind: dict[str, list[dict]] = {}
    for d in docs():
        by_kind.setdefault(d["kind"], []).append(d)
    for kind in ("Namespace", "ServiceAccount", "Role", "RoleBinding", "Deployment", "Service",
                 "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret"):
        assert kind in by_kind, kind
    assert {d["metadata"]["name"] for d in by_kind["Deployment"]} == {"unstuck-scheduler", "unstuck-agent"}
    (hpa,) = by_kind["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "unstuck-agent"
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): set(r["verbs"])
             for r in by_kind["Role"][0]["rules"]}
    assert {"list", "watch", "patch", "delete"} <= rules[(("",), ("pods",))]
    assert "patch" in rules[(("apps",), ("deployments/scale",))]
    assert (DEPLOY / "Dockerfile").read_text().count("ENTRYPOINT [\"unstuck\"]") == 1


def test_container_args_are_real_options_of_serve_and_agent():
    cli = typer.main.get_command(app)
    seen = set()
    for d in docs():
        if d["kind"] != "Deployment":
            continue
        for c in d["spec"]["template"]["spec"]["containers"]:
            command, *args = c["args"]
            seen.add(command)
            cli.commands[command].make_context(command, list(args))  # raises on an unknown option
    assert seen == {"serve", "agent"}


def test_the_local_cluster_agents_run_this_checkouts_agent_with_real_options():
    """deploy/local/agents.yaml (docs/service.md, "A live run on the local cluster")."""
    (d,) = [d for d in yaml.safe_load_all((DEPLOY / "local" / "agents.yaml").read_text()) if d]
    (c,) = d["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["@UNSTUCK@"]
    command, *args = c["args"]
    assert command == "agent"
    typer.main.get_command(app).commands["agent"].make_context(command, list(args))
    assert d["spec"]["template"]["metadata"]["labels"]["app"] == "unstuck-agent"


def test_the_local_cluster_scheduler_pod_runs_serve_with_real_options_and_the_secrets_keys():
    """deploy/local/scheduler.yaml: what the scheduler-restart experiments kill (docs/chaos.md,
    "The scheduler as a pod")."""
    (d,) = [d for d in yaml.safe_load_all((DEPLOY / "local" / "scheduler.yaml").read_text()) if d]
    assert d["spec"]["strategy"] == {"type": "Recreate"}  # never two services on one folder
    template = d["spec"]["template"]
    assert template["metadata"]["labels"]["app"] == "unstuck-scheduler"  # the experiments' selector
    (c,) = template["spec"]["containers"]
    assert c["command"] == ["@UNSTUCK@"]
    command, *args = c["args"]
    assert command == "serve"
    typer.main.get_command(app).commands["serve"].make_context(command, list(args))
    assert {"--data-dir=@DATA@", "--kubeconfig=@KUBECONFIG@", "--backend-dir=@BACKEND@"} <= set(args)
    (secret,) = [s for s in docs() if s["kind"] == "Secret"]
    for env in c["env"]:
        ref = env["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"], env
    from scheduler.service.identity import parse_user_tokens

    users = parse_user_tokens(secret["stringData"]["user-tokens"], "user-tokens")
    assert users == json.loads(secret["stringData"]["users.json"])  # one set of users, two spellings
