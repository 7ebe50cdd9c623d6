"""A pod's spec is immutable but for images, a lowered activeDeadlineSeconds and added
tolerations, on PUT and on every PATCH flavour alike, as upstream's ValidatePodUpdate."""

from __future__ import annotations

import pytest
from kubernetes.client.rest import ApiException

from .conftest import refused_invalid

FORBIDDEN = "Forbidden: pod updates may not change fields other than"


def _pod(core, name="upd", **spec):
    return core.create_namespaced_pod("default", {"metadata": {"name": name}, "spec": {
        "containers": [{"name": "main", "image": "local/sleep", "command": ["sleep", "600"]}],
        **spec}})


def _put(core, mutate, name="upd"):
    """Read, change and PUT the pod, again while the kubelet's status writes make it 409."""
    for _ in range(50):
        pod = core.read_namespaced_pod(name, "default")
        mutate(pod)
        try:
            return core.replace_namespaced_pod(name, "default", pod)
        except ApiException as err:
            if err.status != 409:
                raise
    raise AssertionError("the pod kept changing under the PUT")




def test_images_labels_deadline_and_tolerations_may_change(core):
    _pod(core, activeDeadlineSeconds=600)
    pod = core.patch_namespaced_pod("upd", "default", {"spec": {"containers": [
        {"name": "main", "image": "local/sleep:2"}]}})
    assert pod.spec.containers[0].image == "local/sleep:2"
    pod = core.patch_namespaced_pod("upd", "default", {
        "metadata": {"labels": {"a": "b"}}, "spec": {"activeDeadlineSeconds": 300}})
    assert pod.spec.active_deadline_seconds == 300 and pod.metadata.labels == {"a": "b"}
    pod = _put(core, lambda p: p.spec.tolerations.append(
        {"key": "k", "operator": "Exists", "effect": "NoSchedule"}))
    assert any(t.key == "k" for t in pod.spec.tolerations)


def test_other_spec_changes_are_422_forbidden_on_put_and_patch(core):
    _pod(core)
    body = refused_invalid(lambda: core.patch_namespaced_pod(
        "upd", "default", {"spec": {"restartPolicy": "Never"}}))
    assert f'Pod "upd" is invalid: spec: {FORBIDDEN}' in body["message"]
    assert body["details"]["causes"][0]["reason"] == "FieldValueForbidden"
    assert body["details"]["causes"][0]["field"] == "spec"
    refused_invalid(lambda: core.patch_namespaced_pod(
        "upd", "default", [{"op": "replace", "path": "/spec/terminationGracePeriodSeconds",
                            "value": 5}]))
    refused_invalid(lambda: _put(core, lambda p: setattr(p.spec.containers[0], "command", ["true"])))
    refused_invalid(lambda: _put(core, lambda p: p.spec.containers.append(
        {"name": "side", "image": "x"})))
    assert core.read_namespaced_pod("upd", "default").spec.restart_policy == "Always"


def test_deadline_only_lowers_and_tolerations_only_grow(core):
    _pod(core, activeDeadlineSeconds=100,
         tolerations=[{"key": "k", "operator": "Exists", "effect": "NoSchedule"}])
    body = refused_invalid(lambda: core.patch_namespaced_pod(
        "upd", "default", {"spec": {"activeDeadlineSeconds": 200}}))
    assert body["details"]["causes"][0]["field"] == "spec.activeDeadlineSeconds"
    refused_invalid(lambda: core.patch_namespaced_pod(
        "upd", "default", {"spec": {"activeDeadlineSeconds": None}}))
    body = refused_invalid(lambda: _put(core, lambda p: setattr(
        p.spec, "tolerations", [t for t in p.spec.tolerations if t.key != "k"])))
    assert body["details"]["causes"][0]["field"] == "spec.tolerations"


def test_an_existing_tolerations_seconds_may_change_but_nothing_else_of_it(core):
    unreachable = "node.kubernetes.io/unreachable"
    _pod(core, tolerations=[{"key": "k", "operator": "Equal", "value": "v",
                             "effect": "NoExecute", "tolerationSeconds": 60}])

    def seconds(value, key="k"):
        def mutate(p):
            for t in p.spec.tolerations:
                if t.key == key:
                    t.toleration_seconds = value
        return mutate
    for value in (10, 900, None):  # upstream lets it change any way, to nil too
        pod = _put(core, seconds(value))
        assert [t.toleration_seconds for t in pod.spec.tolerations if t.key == "k"] == [value]
    pod = _put(core, seconds(5, unreachable))  # a defaulted one too
    assert [t.toleration_seconds for t in pod.spec.tolerations if t.key == unreachable] == [5]
    body = refused_invalid(lambda: _put(core, lambda p: setattr(
        next(t for t in p.spec.tolerations if t.key == "k"), "value", "w")))
    assert body["message"] == ('Pod "upd" is invalid: spec.tolerations: Forbidden: existing '
                               "toleration can not be modified except its tolerationSeconds")


def test_tolerations_are_validated_on_create_and_update_as_upstream(core, apps):
    prefix = 'Pod "bad" is invalid: spec.tolerations[0].'
    cases = [
        ({"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5},
         "effect", "effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when "
                   "`tolerationSeconds` is set"),
        ({"key": "k", "operator": "Exists", "tolerationSeconds": 5},
         "effect", "effect: Invalid value: \"\": effect must be 'NoExecute' when "
                   "`tolerationSeconds` is set"),
        ({"key": "k", "operator": "In", "value": "v"},
         "operator", 'operator: Unsupported value: "In": supported values: "Equal", "Exists"'),
        ({"key": "k", "operator": "Equal", "value": "v", "effect": "NoEvict"},
         "effect", 'effect: Unsupported value: "NoEvict": supported values: "NoSchedule", '
                   '"PreferNoSchedule", "NoExecute"'),
        ({"key": "k", "operator": "Exists", "value": "v"},
         "operator", "value must be empty when `operator` is 'Exists'"),
        ({"operator": "Equal", "value": "v"},
         "operator", 'operator: Invalid value: "Equal": operator must be Exists when `key` '
                     'is empty, which means "match all values and all keys"'),
    ]
    for toleration, field, message in cases:
        body = refused_invalid(lambda t=toleration: _pod(core, "bad", tolerations=[t]))
        assert body["details"]["causes"][0]["field"] == f"spec.tolerations[0].{field}"
        assert body["message"].startswith(prefix) and body["message"].endswith(message)
    with pytest.raises(ApiException):
        core.read_namespaced_pod("bad", "default")
    body = refused_invalid(lambda: apps.create_namespaced_deployment("default", {
        "metadata": {"name": "bad"}, "spec": {
            "selector": {"matchLabels": {"app": "bad"}},
            "template": {"metadata": {"labels": {"app": "bad"}}, "spec": {
                "tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 5}],
                "containers": [{"name": "main", "image": "local/sleep"}]}}}}))
    assert body["details"]["causes"][0]["field"] == "spec.template.spec.tolerations[0].effect"
    _pod(core, tolerations=[{"operator": "Exists"}, {"key": "k", "effect": "NoExecute",
                                                     "tolerationSeconds": 5}])
    body = refused_invalid(lambda: core.patch_namespaced_pod("upd", "default", {"spec": {
        "tolerations": [{"operator": "Exists"}, {"key": "k", "effect": "NoExecute",
                                                 "tolerationSeconds": 5},
                        {"key": "new", "operator": "Exists", "tolerationSeconds": 1}]}}))
    assert body["details"]["causes"][0]["field"] == "spec.tolerations[2].effect"
