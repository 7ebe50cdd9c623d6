"""The local control plane's HPA feeds the shared CPU readiness rules what a pod's status says."""

from __future__ import annotations

from chaos.cluster import meta
from chaos.cluster.controllers import hpa as controller
from sim.kube import hpa as rules
from sim.kube.timescale import TimeScale


def _hpa(metrics):
    return {"spec": {"maxReplicas": 3, "metrics": metrics}}


def test_only_resource_metrics_name_a_resource_and_the_default_is_cpu() -> None:
    assert controller.resource_of(_hpa(None)) == "cpu"
    assert controller.resource_of(_hpa([{"type": "Resource", "resource": {"name": "memory"}}])) \
        == "memory"
    assert controller.resource_of(_hpa([{"type": "Pods", "pods": {}}])) is None


def test_a_pod_ready_for_less_than_one_window_is_unready_for_cpu_only() -> None:
    # Started at 1000, Ready at 1010; the sample is taken at the reconcile (1020) and covers
    # 15 s, so it ends before 1010 + 15 inside the 5 min initialization period.
    hpa = controller.HPAController.__new__(controller.HPAController)
    hpa.scale = TimeScale(1)
    pod = {"metadata": {"name": "p"}, "spec": {}, "status": {
        "phase": "Running", "startTime": meta.timestamp(1000.0),
        "conditions": [{"type": "Ready", "status": "True",
                        "lastTransitionTime": meta.timestamp(1010.0)}]}}
    view = hpa._metric_view(pod, 1020.0)
    assert (view.start_time, view.ready, view.ready_transition) == (1000.0, "True", 1010.0)
    assert (view.sample_time, view.sample_window_s) == (1020.0, 15.0)
    assert rules.pod_group(view, 1020.0, "cpu") == rules.UNREADY
    assert rules.pod_group(view, 1020.0, "memory") == rules.READY
    assert rules.pod_group(hpa._metric_view(pod, 1025.0), 1025.0, "cpu") == rules.READY
