"""Server-side printing: answer `Accept: ...;as=Table;g=meta.k8s.io` with a meta.k8s.io Table.

kubectl's human-readable output (`kubectl get`, `-o wide`, `-w`) asks for a Table and prints
the columns the server chose; without one it falls back to NAME and AGE. Each row carries
the object as PartialObjectMetadata (the default, `includeObject=Metadata`), the full object
(`includeObject=Object`, which `--sort-by` asks for) or nothing (`None`). In a watch, only
the first event carries the column definitions, as the real apiserver streams it.
"""

from __future__ import annotations

from chaos.cluster import printers
from chaos.cluster.errors import bad_request
from chaos.cluster.resources import Resource

_INCLUDE = ("None", "Metadata", "Object")


def table_version(accept: str | None) -> str | None:
    """The meta.k8s.io Table version the Accept header asks for first (v1 or v1beta1), or
    None when the client wants plain objects."""
    for clause in (accept or "").split(","):
        params = dict(p.strip().partition("=")[::2] for p in clause.split(";")[1:])
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" \
                and params.get("v") in ("v1", "v1beta1"):
            return params["v"]
    return None


def include_mode(query: dict) -> str:
    mode = query.get("includeObject") or "Metadata"
    if mode not in _INCLUDE:
        raise bad_request(f"includeObject {mode!r} is not one of {', '.join(_INCLUDE)}")
    return mode


def _row_object(obj: dict, mode: str, version: str):
    if mode == "Object":
        return obj
    if mode == "None":
        return None
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}",
            "metadata": obj.get("metadata", {})}


def table(res: Resource, objs: list[dict], *, resource_version: str, now: float,
          version: str = "v1", mode: str = "Metadata", with_columns: bool = True) -> dict:
    printer = printers.for_kind(res.kind)
    rows = []
    for obj in objs:
        row = {"cells": printer.cells(obj, now)}
        embedded = _row_object(obj, mode, version)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    out = {"kind": "Table", "apiVersion": f"meta.k8s.io/{version}",
           "metadata": {"resourceVersion": resource_version}, "rows": rows}
    if with_columns:
        out["columnDefinitions"] = [c.definition() for c in printer.columns]
    return out


def of_list(res: Resource, listed: dict, **kw) -> dict:
    out = table(res, listed["items"], resource_version=listed["metadata"]["resourceVersion"],
                **kw)
    out["metadata"] = dict(listed["metadata"])  # continue and remainingItemCount too
    return out


def of_object(res: Resource, obj: dict, **kw) -> dict:
    return table(res, [obj], resource_version=obj["metadata"].get("resourceVersion", ""), **kw)
