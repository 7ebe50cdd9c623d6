"""Object metadata helpers: uids, timestamps, names and copies.

Stored objects are plain JSON dicts that nobody mutates once stored (a writer builds a new
dict), so readers inside the process may share them; `thaw` gives a private, mutable copy.
"""

from __future__ import annotations

import datetime as _dt
import json
import secrets
import uuid

_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the apiserver's generateName alphabet


def new_uid() -> str:
    return str(uuid.uuid4())


def timestamp(epoch: float) -> str:
    """RFC 3339 with second precision, as metav1.Time serialises."""
    return _dt.datetime.fromtimestamp(epoch, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_timestamp(epoch: float) -> str:
    """RFC 3339 with microseconds, as metav1.MicroTime (Lease renewTime) serialises."""
    return _dt.datetime.fromtimestamp(epoch, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str | None) -> float | None:
    if not text:
        return None
    return _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def random_suffix(length: int = 5) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def thaw(obj):
    """A deep, mutable copy of a stored object (json round-trip is the fastest deep copy)."""
    return json.loads(json.dumps(obj))


def labels_of(obj: dict) -> dict:
    return obj.get("metadata", {}).get("labels") or {}


def annotations_of(obj: dict) -> dict:
    return obj.get("metadata", {}).get("annotations") or {}


def name_of(obj: dict) -> str:
    return obj["metadata"]["name"]


def ns_of(obj: dict) -> str:
    return obj["metadata"].get("namespace", "")


def owner_ref(owner: dict, kind: str, api_version: str) -> dict:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj: dict) -> str | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None
