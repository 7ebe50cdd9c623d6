"""OpenAPI v3 documents: just enough for kubectl to trust the server with validation.

`kubectl apply/create -f` validates before sending. kubectl 1.27+ first asks
`/openapi/v3` whether the kind's PATCH operation takes the `fieldValidation` query parameter;
if it does, kubectl leaves validation to the server (it sends `fieldValidation=Strict`) and
needs no schema. When `/openapi/v3` and `/openapi/v2` both answer 404, kubectl gives up with
"failed to download openapi" unless `--validate=false`. So each group-version document
lists, per kind, the operations with their `x-kubernetes-group-version-kind` and the PATCH
content types, and no schemas: `components.schemas` is empty, which makes `kubectl apply`
compute its strategic-merge patch from its compiled-in Go types (its documented fallback),
exactly the patch it would compute from the real schemas for the built-in kinds we serve.
`kubectl explain` has nothing to explain.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache

from chaos.cluster import discovery, resources
from chaos.cluster.resources import Resource

PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json")
_OBJECT = {"schema": {"type": "object"}}
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _param(name: str) -> dict:
    return {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}


def _operation(res: Resource, action: str, verb: str, *, body: tuple[str, ...] = ()) -> dict:
    op = {"operationId": f"{verb}{res.kind}",
          "x-kubernetes-action": action,
          "x-kubernetes-group-version-kind": {"group": res.group, "version": res.version,
                                              "kind": res.kind},
          "responses": {"200": {"description": "OK",
                                "content": {"application/json": _OBJECT}}}}
    if body:
        op["requestBody"] = {"content": {ctype: _OBJECT for ctype in body}, "required": True}
        op["parameters"] = [_param(p) for p in _WRITE_PARAMS]
    return op


def _paths(res: Resource) -> dict:
    prefix = "/" + _gv_path(res.group, res.version)
    scope = f"{prefix}/namespaces/{{namespace}}" if res.namespaced else prefix
    collection = {"get": _operation(res, "list", "list"),
                  "post": _operation(res, "post", "create", body=("application/json",))}
    item = {"get": _operation(res, "get", "read"),
            "put": _operation(res, "put", "replace", body=("application/json",)),
            "patch": _operation(res, "patch", "patch", body=PATCH_TYPES),
            "delete": _operation(res, "delete", "delete")}
    return {f"{scope}/{res.plural}": collection, f"{scope}/{res.plural}/{{name}}": item}


@cache
def group_version(group: str, version: str) -> dict | None:
    """The OpenAPI 3.0 document of one group-version, or None if it is not served."""
    served = [r for r in resources.RESOURCES if r.group == group and r.version == version]
    if not served:
        return None
    paths: dict = {}
    for res in served:
        paths.update(_paths(res))
    return {"openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": discovery.SERVER_VERSION["gitVersion"]},
            "paths": paths, "components": {"schemas": {}}}


def _hash(doc: dict) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:128].upper()


@cache
def root() -> dict:
    """`/openapi/v3`: where each group-version's document lives (hash-addressed, as upstream)."""
    paths = {}
    for group, versions in resources.groups().items():
        for version in versions:
            path = _gv_path(group, version)
            doc = group_version(group, version)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={_hash(doc)}"}
    return {"paths": paths}


def lookup(parts: list[str]) -> dict | None:
    """The document for `/openapi/v3/<parts>` (`api/v1` or `apis/GROUP/VERSION`), or None."""
    if parts == ["api", "v1"]:
        return group_version("", "v1")
    if len(parts) == 3 and parts[0] == "apis":
        return group_version(parts[1], parts[2])
    return None
