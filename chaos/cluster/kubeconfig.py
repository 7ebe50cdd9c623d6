"""Kubeconfig files: write an `unstuck-local` entry (merging into an existing file, as kind
does), find the server a kubeconfig points at, and remove the entry again on `down`."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from scheduler import files

NAME = "unstuck-local"


def default_path() -> Path:
    """Where kubectl looks: the first entry of $KUBECONFIG, else ~/.kube/config."""
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0])
    return Path.home() / ".kube" / "config"


def _load(path: Path) -> dict:
    """The kubeconfig at `path` (an empty one when there is none); a file that cannot be read
    or is not a YAML mapping is a ValueError naming it."""
    fix = "pass another --kubeconfig PATH"
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if not text.strip():
            return {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [],
                    "contexts": [], "preferences": {}}
        doc = yaml.safe_load(text)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the kubeconfig ({exc.strerror or exc}); {fix}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a kubeconfig (not UTF-8 text: {exc.reason} at byte "
                         f"{exc.start}); {fix}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        raise ValueError(f"{path}: not a kubeconfig (invalid YAML{at}: "
                         f"{getattr(exc, 'problem', None) or exc}); {fix}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a kubeconfig (expected a mapping at the top level); {fix}")
    for key in ("clusters", "users", "contexts"):
        doc[key] = doc.get(key) or []
        if not isinstance(doc[key], list) or not all(isinstance(i, dict) for i in doc[key]):
            raise ValueError(f"{path}: not a kubeconfig ({key} must be a list of named "
                             f"entries); {fix}")
    return doc


def _upsert(items: list, name: str, key: str, value: dict) -> list:
    return [i for i in items if i.get("name") != name] + [{"name": name, key: value}]


def write(path: Path, server: str, *, time_scale: float) -> None:
    """Add (or replace) the local cluster entry and make it the current context."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = _load(path)
    doc["clusters"] = _upsert(doc["clusters"], NAME, "cluster", {
        "server": server,
        "extensions": [{"name": "unstuck", "extension": {"timeScale": time_scale}}]})
    doc["users"] = _upsert(doc["users"], NAME, "user", {"token": "unstuck-local"})
    doc["contexts"] = _upsert(doc["contexts"], NAME, "context",
                              {"cluster": NAME, "user": NAME, "namespace": "default"})
    doc["current-context"] = NAME
    files.write_text(path, yaml.safe_dump(doc, sort_keys=False), fsync=True)


def server_of(path: Path) -> str | None:
    """The server URL of the local cluster entry, or None when the file has none."""
    if not path.exists():
        return None
    for c in _load(path)["clusters"]:
        if c.get("name") == NAME:
            return (c.get("cluster") or {}).get("server")
    return None


def remove(path: Path) -> None:
    if not path.exists():
        return
    doc = _load(path)
    for key in ("clusters", "users", "contexts"):
        doc[key] = [i for i in doc[key] if i.get("name") != NAME]
    if doc.get("current-context") == NAME:
        doc["current-context"] = ""
    if not doc["clusters"] and not doc["contexts"]:
        path.unlink()
        return
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
