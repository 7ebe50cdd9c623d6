"""Chunked lists (`limit` and `continue`), as kubectl and informers page through them."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import KUBECTL


def _config_maps(core, names, labels=None):
    for name in names:
        core.create_namespaced_config_map("default", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name, labels=labels), data={"k": name}))


def _pages(list_fn, **kw):
    pages, token = [], None
    while True:
        page = list_fn("default", limit=2, _continue=token, **kw)
        pages.append(page)
        token = page.metadata._continue
        if not token:
            return pages


def test_a_limited_list_pages_through_a_consistent_snapshot(core):
    _config_maps(core, [f"cm-{i}" for i in range(5)])
    first = core.list_namespaced_config_map("default", limit=2)
    assert [c.metadata.name for c in first.items] == ["cm-0", "cm-1"]
    assert first.metadata._continue and first.metadata.remaining_item_count == 3
    # Writes between pages do not show: the continued pages are read at the first page's rv.
    core.delete_namespaced_config_map("cm-3", "default")
    _config_maps(core, ["cm-9"])
    core.patch_namespaced_config_map("cm-2", "default", {"data": {"k": "changed"}})
    second = core.list_namespaced_config_map("default", limit=2,
                                             _continue=first.metadata._continue)
    assert [c.metadata.name for c in second.items] == ["cm-2", "cm-3"]
    assert second.items[0].data == {"k": "cm-2"}
    assert second.metadata.resource_version == first.metadata.resource_version
    assert second.metadata.remaining_item_count == 1
    last = core.list_namespaced_config_map("default", limit=2,
                                           _continue=second.metadata._continue)
    assert [c.metadata.name for c in last.items] == ["cm-4"]
    assert last.metadata._continue is None and last.metadata.remaining_item_count is None


def test_a_limit_counts_selected_items_and_omits_the_remaining_count(core):
    _config_maps(core, ["a-0", "a-1", "a-2"], labels={"app": "a"})
    _config_maps(core, ["b-0", "b-1"], labels={"app": "b"})
    pages = _pages(core.list_namespaced_config_map, label_selector="app=a")
    assert [[c.metadata.name for c in p.items] for p in pages] == [["a-0", "a-1"], ["a-2"]]
    assert pages[0].metadata.remaining_item_count is None  # upstream omits it with a selector


def test_a_list_without_a_limit_or_with_a_large_one_has_no_continue(core):
    _config_maps(core, ["x-0", "x-1"])
    for limit in (None, 500):
        listed = core.list_namespaced_config_map("default", limit=limit)
        assert len(listed.items) == 2 and listed.metadata._continue is None


def test_a_malformed_continue_or_limit_is_a_400(core):
    for kw in ({"_continue": "not-a-token"}, {"limit": -1}):
        with pytest.raises(ApiException) as err:
            core.list_namespaced_config_map("default", **kw)
        body = json.loads(err.value.body)
        assert (err.value.status, body["kind"], body["reason"]) == (400, "Status", "BadRequest")
    token = base64.urlsafe_b64encode(json.dumps({"v": "meta.k8s.io/v1", "rv": 1,
                                                 "start": "x"}).encode()).decode()
    with pytest.raises(ApiException) as err:  # a token for another list shape
        core.list_namespaced_config_map("default", _continue=token)
    assert err.value.status == 400


def test_a_continue_token_older_than_the_event_log_is_410_expired(cluster, core):
    _config_maps(core, ["e-0", "e-1", "e-2"])
    first = core.list_namespaced_config_map("default", limit=1)
    _config_maps(core, ["e-3"])
    cluster.store.compact()
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map("default", limit=1, _continue=first.metadata._continue)
    body = json.loads(err.value.body)
    assert (err.value.status, body["reason"]) == (410, "Expired")
    assert "continue" in body["message"]


def test_cluster_wide_and_node_lists_page_too(core):
    for ns in ("p-a", "p-b"):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    pages, token = [], None
    while True:
        page = core.list_namespace(limit=2, _continue=token)
        pages.append([n.metadata.name for n in page.items])
        token = page.metadata._continue
        if not token:
            break
    names = [n for p in pages for n in p]
    assert names == sorted(names) and {"p-a", "p-b", "default"} <= set(names)
    assert all(len(p) <= 2 for p in pages)
    assert len(core.list_node(limit=1).items) == 1


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
def test_kubectl_get_follows_the_continue_token_of_tables(core, kubectl):
    _config_maps(core, [f"k-{i}" for i in range(5)])
    out = kubectl("get", "configmaps", "--chunk-size=2", "-o", "name")
    assert [ln for ln in out.split() if ln.startswith("configmap/k-")] == \
        [f"configmap/k-{i}" for i in range(5)]
    table = kubectl("get", "configmaps", "--chunk-size=2")
    assert all(f"k-{i}" in table for i in range(5))


def _refused(list_fn, **kw) -> tuple[int, dict]:
    with pytest.raises(ApiException) as err:
        list_fn("default", **kw)
    return err.value.status, json.loads(err.value.body)


def test_continue_with_a_resource_version_is_a_400_but_with_rv_0_it_is_the_continue(core):
    _config_maps(core, ["r-0", "r-1", "r-2"])
    first = core.list_namespaced_config_map("default", limit=1)
    token, rv = first.metadata._continue, first.metadata.resource_version
    code, body = _refused(core.list_namespaced_config_map, limit=1, _continue=token,
                          resource_version=rv)
    assert (code, body["reason"], body["message"]) == (
        400, "BadRequest", "specifying resource version is not allowed when using continue")
    second = core.list_namespaced_config_map("default", limit=1, _continue=token,
                                             resource_version="0")
    assert [c.metadata.name for c in second.items] == ["r-1"]


@pytest.mark.parametrize(("kw", "detail"), [
    ({"resource_version_match": "Exact"},
     "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"),
    ({"resource_version_match": "Exact", "resource_version": "0"},
     'Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"'),
    ({"resource_version_match": "Newest", "resource_version": "5"},
     'Unsupported value: "Newest": supported values: "Exact", "NotOlderThan", ""'),
    ({"resource_version_match": "NotOlderThan", "resource_version": "5", "_continue": "x"},
     "Forbidden: resourceVersionMatch is forbidden when continue is provided"),
])
def test_a_misused_resource_version_match_is_422_on_list_options(core, kw, detail):
    code, body = _refused(core.list_namespaced_config_map, **kw)
    assert (code, body["reason"]) == (422, "Invalid")
    assert body["message"] == f'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: {detail}'
    assert body["details"]["group"] == "meta.k8s.io"


@pytest.mark.parametrize(("kw", "detail"), [
    ({"resource_version_match": "NotOlderThan", "resource_version": "1"},
     "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless "
     "sendInitialEvents is provided"),
    ({"resource_version_match": "Exact", "resource_version": "1"},
     "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless "
     "sendInitialEvents is provided"),
    ({"send_initial_events": True},
     "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
     "resourceVersionMatch to NotOlderThan"),
    ({"send_initial_events": True, "resource_version_match": "NotOlderThan",
      "allow_watch_bookmarks": True},  # what a watch-list client sends: no streaming lists here
     "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the "
     "WatchList feature gate is enabled"),
])
def test_a_watch_takes_resource_version_match_only_with_send_initial_events(core, kw, detail):
    code, body = _refused(core.list_namespaced_config_map, watch=True, _preload_content=False,
                          **kw)
    assert (code, body["reason"]) == (422, "Invalid")
    assert body["message"] == f'ListOptions.meta.k8s.io "" is invalid: {detail}'


def test_a_list_refuses_send_initial_events(core):
    code, body = _refused(core.list_namespaced_config_map, send_initial_events=False)
    assert (code, body["message"]) == (422, 'ListOptions.meta.k8s.io "" is invalid: '
                                       "sendInitialEvents: Forbidden: sendInitialEvents is "
                                       "forbidden for list")


def test_an_exact_list_reads_the_past_and_so_does_a_limited_list_with_a_version(cluster, core):
    _config_maps(core, ["x-a"])
    then = core.list_namespaced_config_map("default").metadata.resource_version
    core.patch_namespaced_config_map("x-a", "default", {"data": {"k": "changed"}})
    _config_maps(core, ["x-b"])
    for kw in ({"resource_version_match": "Exact"}, {"limit": 10}):
        old = core.list_namespaced_config_map("default", resource_version=then, **kw)
        assert [(c.metadata.name, c.data) for c in old.items] == [("x-a", {"k": "x-a"})]
        assert old.metadata.resource_version == then
    code, body = _refused(core.list_namespaced_config_map, resource_version=str(int(then) + 99),
                          resource_version_match="Exact")
    assert (code, body["reason"]) == (504, "Timeout")
    assert body["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
    cluster.store.compact()
    code, body = _refused(core.list_namespaced_config_map, resource_version=then,
                          resource_version_match="Exact")
    assert (code, body["reason"]) == (410, "Expired")


def test_a_not_older_than_list_is_the_latest_once_the_store_got_there(core):
    _config_maps(core, ["n-a"])
    then = core.list_namespaced_config_map("default").metadata.resource_version
    _config_maps(core, ["n-b"])
    for match in (None, "NotOlderThan"):
        now = core.list_namespaced_config_map("default", resource_version=then,
                                              resource_version_match=match)
        assert [c.metadata.name for c in now.items] == ["n-a", "n-b"]
        assert int(now.metadata.resource_version) > int(then)
    ahead = str(int(now.metadata.resource_version) + 1)
    with ThreadPoolExecutor(1) as pool:  # it waits for the next write instead of failing
        later = pool.submit(core.list_namespaced_config_map, "default", resource_version=ahead)
        _config_maps(core, ["n-c"])
        assert [c.metadata.name for c in later.result(timeout=10).items] == \
            ["n-a", "n-b", "n-c"]
    code, body = _refused(core.list_namespaced_config_map, resource_version=str(int(ahead) + 50))
    assert (code, body["reason"]) == (504, "Timeout")
