"""Selectors and the three patch flavours, as pure functions."""

import pytest

from chaos.cluster import patches
from chaos.cluster.errors import ApiError
from chaos.cluster.selectors import (
    compile_label_selector,
    parse_field_selector,
    parse_label_selector,
    selector_string,
)


@pytest.mark.parametrize(("selector", "labels", "expected"), [
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "db"}, False),
    ("app!=web", {}, True),
    ("app in (web, db),tier", {"app": "db", "tier": "x"}, True),
    ("app in (web, db),tier", {"app": "db"}, False),
    ("app notin (web)", {"app": "db"}, True),
    ("!canary", {"canary": "1"}, False),
    ("", {"anything": "1"}, True),
])
def test_label_selector_strings(selector, labels, expected):
    assert parse_label_selector(selector)(labels) is expected


def test_structured_selector_round_trips_to_a_query_string():
    sel = {"matchLabels": {"app": "web"},
           "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]}
    assert selector_string(sel) == "app=web,tier in (a,b)"
    assert compile_label_selector(sel)({"app": "web", "tier": "a"})
    assert not compile_label_selector(sel)({"app": "web", "tier": "c"})


def test_bad_label_selector_is_a_400():
    with pytest.raises(ApiError) as err:
        parse_label_selector("app in web")
    assert err.value.code == 400


def test_field_selector_reads_nested_fields_and_booleans():
    node = {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}}
    assert parse_field_selector("metadata.name=n1,spec.unschedulable=true")(node)
    assert not parse_field_selector("metadata.name!=n1")(node)


def test_strategic_merge_merges_containers_by_name_and_deletes_with_null():
    pod = {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}],
                    "nodeSelector": {"k": "v"}}}
    out = patches.apply_patch(patches.STRATEGIC_PATCH, pod, {
        "spec": {"containers": [{"name": "b", "image": "z"}], "nodeSelector": None}})
    assert out["spec"]["containers"] == [{"name": "a", "image": "x"}, {"name": "b", "image": "z"}]
    assert "nodeSelector" not in out["spec"]
    assert pod["spec"]["containers"][1]["image"] == "y"  # the input is untouched


def test_merge_patch_replaces_lists():
    out = patches.apply_patch(patches.MERGE_PATCH, {"a": [1, 2], "b": {"c": 1}},
                              {"a": [3], "b": {"d": 2}})
    assert out == {"a": [3], "b": {"c": 1, "d": 2}}


def test_json_patch_operations_and_failed_test_op():
    doc = {"spec": {"replicas": 1, "list": [1, 2]}}
    out = patches.apply_patch(patches.JSON_PATCH, doc, [
        {"op": "replace", "path": "/spec/replicas", "value": 4},
        {"op": "add", "path": "/spec/list/-", "value": 3},
        {"op": "remove", "path": "/spec/list/0"},
        {"op": "copy", "from": "/spec/replicas", "path": "/spec/copy"},
    ])
    assert out == {"spec": {"replicas": 4, "list": [2, 3], "copy": 4}}
    with pytest.raises(ApiError) as err:
        patches.apply_patch(patches.JSON_PATCH, doc, [{"op": "test", "path": "/spec/replicas",
                                                       "value": 2}])
    assert err.value.code == 422


def test_unknown_patch_type_is_415():
    with pytest.raises(ApiError) as err:
        patches.apply_patch("application/apply-patch+yaml", {}, {})
    assert err.value.code == 415


@pytest.mark.parametrize(("op", "path"), [
    ("replace", "/spec/containers/5"),   # no element 5 to replace
    ("add", "/spec/containers/9"),       # RFC 6902: index must be <= the list's length
    ("add", "/spec/containers/-2"),      # not an array index at all
    ("remove", "/spec/containers/-1"),
])
def test_json_patch_index_out_of_range_is_a_422(op, path):
    doc = {"spec": {"containers": [{"name": "a"}]}}
    with pytest.raises(ApiError) as err:
        patches.json_patch(doc, [{"op": op, "path": path, "value": {"name": "b"}}])
    assert err.value.code == 422
    assert path in err.value.message


def test_json_patch_add_at_the_end_index_appends():
    doc = {"spec": {"containers": [{"name": "a"}]}}
    out = patches.json_patch(doc, [{"op": "add", "path": "/spec/containers/1",
                                    "value": {"name": "b"}}])
    assert [c["name"] for c in out["spec"]["containers"]] == ["a", "b"]


def test_strategic_patch_delete_directive_on_a_map_removes_the_key():
    target = {"spec": {"securityContext": {"runAsUser": 1}, "dnsPolicy": "ClusterFirst"}}
    out = patches.strategic_merge(target, {"spec": {"securityContext": {"$patch": "delete"}}})
    assert out == {"spec": {"dnsPolicy": "ClusterFirst"}}
