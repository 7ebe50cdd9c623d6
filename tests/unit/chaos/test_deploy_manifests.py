"""deploy/ applies to the local cluster with kubectl as it would to kind: every kind it holds is served."""

from __future__ import annotations

from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def test_kubectl_apply_k_deploy_creates_every_object(kubectl):
    out = kubectl("apply", "-k", str(DEPLOY))
    for line in ("namespace/unstuck created", "serviceaccount/unstuck-scheduler created",
                 "role.rbac.authorization.k8s.io/unstuck-scheduler created",
                 "rolebinding.rbac.authorization.k8s.io/unstuck-scheduler created",
                 "persistentvolumeclaim/unstuck-backend created",
                 "persistentvolumeclaim/unstuck-scheduler-data created",
                 "deployment.apps/unstuck-agent created", "service/unstuck-scheduler created",
                 "horizontalpodautoscaler.autoscaling/unstuck-agent created",
                 "poddisruptionbudget.policy/unstuck-agent created"):
        assert line in out, out
    assert "secret/unstuck-tokens created" in kubectl("apply", "-f", str(DEPLOY / "secret.example.yaml"))
    again = kubectl("apply", "--dry-run=server", "-k", str(DEPLOY))
    assert "persistentvolumeclaim/unstuck-backend unchanged (server dry run)" in again, again
    assert "role.rbac.authorization.k8s.io/unstuck-scheduler unchanged (server dry run)" in again
    names = kubectl("get", "sa,pvc,role,rolebinding", "-n", "unstuck", "-o", "name").split()
    assert names == ["serviceaccount/unstuck-scheduler", "persistentvolumeclaim/unstuck-backend",
                     "persistentvolumeclaim/unstuck-scheduler-data",
                     "role.rbac.authorization.k8s.io/unstuck-scheduler",
                     "rolebinding.rbac.authorization.k8s.io/unstuck-scheduler"]
