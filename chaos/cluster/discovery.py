"""Discovery documents (/version, /api, /apis, /api/v1, /apis/GROUP/VERSION) for kubectl.

kubectl first asks for aggregated discovery (apidiscovery.k8s.io/v2); answering with plain
`application/json` makes it fall back to these legacy documents, which is all it needs.
"""

from __future__ import annotations

from chaos.cluster import resources

SERVER_VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.0-unstuck.local",
                  "gitCommit": "0000000000000000000000000000000000000000",
                  "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                  "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"}

_SUB = {
    "status": (None, None, ["get", "patch", "update"]),
    "scale": ("autoscaling", "v1", ["get", "patch", "update"]),
    "eviction": ("policy", "v1", ["create"]),
    "log": ("", "v1", ["get"]),
    "binding": ("", "v1", ["create"]),
}
_SUB_KIND = {"scale": "Scale", "eviction": "Eviction", "log": "Pod", "binding": "Binding"}


def api_versions(server_address: str) -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                            "serverAddress": server_address}]}


def _group_doc(name: str, versions: list[str]) -> dict:
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list() -> dict:
    groups = [_group_doc(g, vs) for g, vs in resources.groups().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(name: str) -> dict | None:
    versions = resources.groups().get(name)
    if not versions or not name:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(name, versions)}


def resource_list(group: str, version: str) -> dict | None:
    rows = [r for r in resources.RESOURCES if r.group == group and r.version == version]
    if not rows:
        return None
    out = []
    for r in rows:
        out.append({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                    "kind": r.kind, "verbs": list(resources.ALL_VERBS),
                    "shortNames": list(r.short_names), "categories": list(r.categories)})
        for sub in r.subresources:
            sub_group, sub_version, verbs = _SUB[sub]
            entry = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                     "kind": _SUB_KIND.get(sub, r.kind), "verbs": verbs}
            if sub_group is not None:
                entry["group"], entry["version"] = sub_group, sub_version
            out.append(entry)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}
