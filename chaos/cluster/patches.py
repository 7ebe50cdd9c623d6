"""The three PATCH flavours: JSON merge (RFC 7386), JSON Patch (RFC 6902), strategic merge.

Strategic merge is JSON merge plus "lists of objects merge by a key" (containers by name,
conditions by type, ...). We keep the merge keys of the kinds we serve in one table instead of
reading Go struct tags, and honour the `$patch: delete|replace` directive; `$setElementOrder`
and `$retainKeys` directives are accepted and ignored.
"""

from __future__ import annotations

import copy

from chaos.cluster.errors import ApiError, bad_request

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

_MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath", "conditions": "type",
    "taints": "key", "imagePullSecrets": "name", "ownerReferences": "uid",
    "addresses": "type", "containerStatuses": "name", "hostAliases": "ip",
}
_PRIMITIVE_MERGE = {"finalizers"}


def apply_patch(content_type: str, target: dict, patch) -> dict:
    """Return a new object: `target` with `patch` applied according to its media type."""
    kind = content_type.split(";")[0].strip()
    if kind == JSON_PATCH:
        if not isinstance(patch, list):
            raise bad_request("a json-patch body must be a list of operations")
        return json_patch(target, patch)
    if not isinstance(patch, dict):
        raise bad_request(f"a {kind} body must be a JSON object")
    if kind == MERGE_PATCH:
        return merge_patch(target, patch)
    if kind == STRATEGIC_PATCH:
        return strategic_merge(target, patch)
    raise ApiError(415, f"PATCH content type {kind!r} is not supported; use {STRATEGIC_PATCH}, "
                        f"{MERGE_PATCH} or {JSON_PATCH}")


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def strategic_merge(target, patch, field: str = ""):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if isinstance(value, dict) and value.get("$patch") == "delete":
            out.pop(key, None)  # a map told to delete itself leaves no key behind
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            out[name] = [v for v in out.get(name) or [] if v not in value]
            continue
        if value is None:
            out.pop(key, None)
        elif isinstance(value, list):
            out[key] = _merge_list(key, out.get(key), value)
        else:
            out[key] = strategic_merge(out.get(key), value, key)
    return out


def _merge_key(field: str, items: list) -> str | None:
    if field == "ports":
        sample = next((i for i in items if isinstance(i, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return _MERGE_KEYS.get(field)


def _merge_list(field: str, current, patch: list) -> list:
    current = list(current or [])
    if field in _PRIMITIVE_MERGE:
        return current + [v for v in patch if v not in current]
    key = _merge_key(field, patch + current)
    if not key or not all(isinstance(i, dict) for i in patch):
        return copy.deepcopy(patch)
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [copy.deepcopy(i) for i in patch if i.get("$patch") != "replace"]
    out = list(current)
    for item in patch:
        idx = next((n for n, c in enumerate(out)
                    if isinstance(c, dict) and c.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
        elif idx is None:
            out.append({k: v for k, v in item.items() if not k.startswith("$")})
        else:
            out[idx] = strategic_merge(out[idx], item, field)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"json-patch path {path!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(part: str, items: list, path: str, *, end_ok: bool = False) -> int:
    """An RFC 6901 array index into `items`: digits only, below the length (or equal to it
    where RFC 6902 allows inserting at the end); anything else is a 422."""
    if not part.isdigit() or int(part) > len(items) or (int(part) == len(items) and not end_ok):
        raise ApiError(422, f"json-patch path {path!r}: index {part!r} is out of range for an "
                            f"array of {len(items)} elements")
    return int(part)


def _parent(doc, parts: list[str], path: str):
    cur = doc
    for part in parts[:-1]:
        if isinstance(cur, list):
            cur = cur[_index(part, cur, path)]
            continue
        try:
            cur = cur[part]
        except (KeyError, TypeError):
            raise ApiError(422, f"json-patch path {path!r} does not exist") from None
    return cur


def _get(doc, path: str):
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, path)
    if isinstance(parent, list):
        return parent[_index(parts[-1], parent, path)]
    try:
        return parent[parts[-1]]
    except (KeyError, TypeError):
        raise ApiError(422, f"json-patch path {path!r} does not exist") from None


def _remove(doc, path: str):
    parts = _pointer(path)
    parent = _parent(doc, parts, path)
    if isinstance(parent, list):
        return parent.pop(_index(parts[-1], parent, path))
    try:
        return parent.pop(parts[-1])
    except (KeyError, TypeError, AttributeError):
        raise ApiError(422, f"json-patch cannot remove missing path {path!r}") from None


def _add(doc, path: str, value, *, replace: bool = False):
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, list):
        if last == "-":
            parent.append(value)
            return doc
        idx = _index(last, parent, path, end_ok=not replace)
        if replace:
            parent[idx] = value
        else:
            parent.insert(idx, value)
    elif isinstance(parent, dict):
        if replace and last not in parent:
            raise ApiError(422, f"json-patch cannot replace missing path {path!r}")
        parent[last] = value
    else:
        raise ApiError(422, f"json-patch path {path!r} has no container")
    return doc


def json_patch(target: dict, ops: list) -> dict:
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"json-patch operation {op!r} needs 'op' and 'path'")
        name, path = op["op"], op["path"]
        if name == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif name == "remove":
            _remove(doc, path)
        elif name == "replace":
            doc = _add(doc, path, copy.deepcopy(op.get("value")), replace=True)
        elif name == "move":
            doc = _add(doc, path, _remove(doc, op["from"]))
        elif name == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op["from"])))
        elif name == "test":
            if _get(doc, path) != op.get("value"):
                raise ApiError(422, f"json-patch test failed at {path!r}")
        else:
            raise bad_request(f"json-patch op {name!r} is not one of add, remove, replace, "
                              "move, copy, test")
    return doc
