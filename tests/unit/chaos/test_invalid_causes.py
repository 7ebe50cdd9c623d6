"""Every field error of an object in one 422, as upstream's NewInvalid words an ErrorList:
`Kind "name" is invalid: [err1, err2]` (no brackets for one), one cause per error."""

from __future__ import annotations

from kubernetes import client

from .conftest import refused_invalid


def test_a_pod_with_several_errors_gets_them_all_in_one_422(core):
    body = refused_invalid(lambda: core.create_namespaced_pod("default", {
        "metadata": {"name": "Bad_Pod"}, "spec": {
            "containers": [{"name": "a"}, {"image": "local/sleep"}],
            "restartPolicy": "Sometimes",
            "tolerations": [{"operator": "Exists", "effect": "NoEat"}]}}))
    name = ('metadata.name: Invalid value: "Bad_Pod": a lowercase RFC 1123 subdomain must '
            "consist of lower case alphanumeric characters, '-' or '.', and must start and end "
            "with an alphanumeric character")
    assert body["message"] == (
        f'Pod "Bad_Pod" is invalid: [{name}, spec.containers[0].image: Required value, '
        "spec.containers[1].name: Required value, "
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
        '"OnFailure", "Never", '
        'spec.tolerations[0].effect: Unsupported value: "NoEat": supported values: '
        '"NoSchedule", "PreferNoSchedule", "NoExecute"]')
    assert [(c["reason"], c["field"]) for c in body["details"]["causes"]] == [
        ("FieldValueInvalid", "metadata.name"),
        ("FieldValueRequired", "spec.containers[0].image"),
        ("FieldValueRequired", "spec.containers[1].name"),
        ("FieldValueNotSupported", "spec.restartPolicy"),
        ("FieldValueNotSupported", "spec.tolerations[0].effect")]
    assert body["details"]["causes"][1]["message"] == "Required value"
    assert core.list_namespaced_pod("default").items == []


def test_an_hpa_with_several_errors_gets_them_all_in_one_422(api):
    hpas = client.AutoscalingV2Api(api)
    body = refused_invalid(lambda: hpas.create_namespaced_horizontal_pod_autoscaler("default", {
        "metadata": {"name": "h"}, "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
            "minReplicas": 0, "maxReplicas": 3,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 4000,
                                       "policies": [{"type": "Pods", "value": 0,
                                                     "periodSeconds": 60}]}}}}))
    assert body["message"] == (
        'HorizontalPodAutoscaler.autoscaling "h" is invalid: ['
        "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1, "
        "spec.behavior.scaleDown.stabilizationWindowSeconds: Invalid value: 4000: "
        "must be less than or equal to 3600, "
        "spec.behavior.scaleDown.policies[0].value: Invalid value: 0: must be greater than 0]")
    assert [c["field"] for c in body["details"]["causes"]] == [
        "spec.minReplicas", "spec.behavior.scaleDown.stabilizationWindowSeconds",
        "spec.behavior.scaleDown.policies[0].value"]


def test_a_pod_update_reports_its_spec_errors_with_the_forbidden_change(core):
    core.create_namespaced_pod("default", {"metadata": {"name": "upd"}, "spec": {
        "containers": [{"name": "main", "image": "local/sleep", "command": ["sleep", "600"]}]}})
    body = refused_invalid(lambda: core.patch_namespaced_pod("upd", "default", {"spec": {
        "restartPolicy": "Never", "tolerations": [{"key": "k", "operator": "Bogus"}]}}))
    # Upstream's ValidatePodUpdate: the new spec's own errors first, then the update rule.
    assert [(c["reason"], c["field"]) for c in body["details"]["causes"]] == [
        ("FieldValueNotSupported", "spec.tolerations[0].operator"),
        ("FieldValueForbidden", "spec")]
    assert body["message"].startswith('Pod "upd" is invalid: [spec.tolerations[0].operator: '
                                      'Unsupported value: "Bogus": supported values: '
                                      '"Equal", "Exists", spec: Forbidden: pod updates may ')
    assert body["message"].endswith("previously negative)]")


def test_one_error_keeps_the_unbracketed_message(core):
    body = refused_invalid(lambda: core.create_namespaced_pod("default", {
        "metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}}))
    assert body["message"] == 'Pod "p" is invalid: spec.containers[0].image: Required value'
    assert body["details"]["causes"] == [{"reason": "FieldValueRequired",
                                          "message": "Required value",
                                          "field": "spec.containers[0].image"}]


def test_a_missing_name_is_required_and_comes_with_the_spec_errors(core):
    """ValidateObjectMeta: field.Required(metadata.name, "name or generateName is required"),
    in the same list as the spec's errors."""
    body = refused_invalid(lambda: core.create_namespaced_pod("default", {
        "metadata": {}, "spec": {"containers": []}}))
    assert body["message"] == ('Pod "" is invalid: [metadata.name: Required value: name or '
                               "generateName is required, spec.containers: Required value]")
    assert body["details"]["causes"][0] == {
        "reason": "FieldValueRequired", "field": "metadata.name",
        "message": "Required value: name or generateName is required"}
