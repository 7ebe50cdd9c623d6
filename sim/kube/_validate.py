"""One error shape for bad settings: field, value, rule (STYLE.md §9).

Settings reach these dataclasses from scenario files and control-plane flags; a wrong number
must fail at construction with a message that names it, not deep inside a reconcile.
"""

from __future__ import annotations


def require(ok: bool, field: str, value: object, rule: str) -> None:
    if not ok:
        raise ValueError(f"{field} = {value!r}: {rule}")
