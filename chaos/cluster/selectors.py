"""Label and field selectors: the query-string forms and the structured LabelSelector.

Why a parser: chaosk8s and kubectl send set-based selectors (`app in (a,b)`, `!key`) as well
as equality ones, and a control plane that silently ignored them would make every probe lie.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from chaos.cluster.errors import bad_request

Predicate = Callable[[dict], bool]

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in (s.strip() for s in parts) if p]


def parse_label_selector(text: str | None) -> Predicate:
    """Compile a `labelSelector` query value into a predicate over a label dict."""
    if not text:
        return lambda labels: True
    tests: list[Predicate] = []
    for term in _split_top(text):
        eq = _EQ_RE.match(term)
        if eq:
            key, op, value = eq.groups()
            if op == "!=":
                tests.append(lambda lb, k=key, v=value: lb.get(k) != v)
            else:
                tests.append(lambda lb, k=key, v=value: lb.get(k) == v)
            continue
        st = _SET_RE.match(term)
        if not st:
            raise bad_request(f"unable to parse requirement: {term!r} in labelSelector {text!r}")
        neg, key, op, values = st.groups()
        if op:
            if neg:
                raise bad_request(f"invalid label selector term {term!r}")
            allowed = {v.strip() for v in values.split(",") if v.strip()}
            if op == "in":
                tests.append(lambda lb, k=key, a=allowed: lb.get(k) in a)
            else:
                tests.append(lambda lb, k=key, a=allowed: lb.get(k) not in a)
        elif neg:
            tests.append(lambda lb, k=key: k not in lb)
        else:
            tests.append(lambda lb, k=key: k in lb)
    return lambda labels: all(t(labels) for t in tests)


def compile_label_selector(selector: dict | None, *, empty_matches_all: bool = True) -> Predicate:
    """Compile a structured `LabelSelector` (matchLabels + matchExpressions)."""
    if not selector or (not selector.get("matchLabels") and not selector.get("matchExpressions")):
        return (lambda labels: True) if empty_matches_all else (lambda labels: False)
    tests: list[Predicate] = []
    for k, v in (selector.get("matchLabels") or {}).items():
        tests.append(lambda lb, k=k, v=v: lb.get(k) == v)
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), set(expr.get("values") or [])
        if op == "In":
            tests.append(lambda lb, k=key, a=values: lb.get(k) in a)
        elif op == "NotIn":
            tests.append(lambda lb, k=key, a=values: lb.get(k) not in a)
        elif op == "Exists":
            tests.append(lambda lb, k=key: k in lb)
        elif op == "DoesNotExist":
            tests.append(lambda lb, k=key: k not in lb)
        else:
            raise bad_request(f"matchExpressions operator {op!r} is not one of "
                              "In, NotIn, Exists, DoesNotExist")
    return lambda labels: all(t(labels) for t in tests)


def selector_string(selector: dict | None) -> str:
    """The query-string form of a structured selector (Scale.status.selector)."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], ",".join(sorted(expr.get("values") or []))
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": key, "DoesNotExist": f"!{key}"}[op])
    return ",".join(parts)


def field_value(obj: dict, path: str) -> str:
    """A field as the apiserver's field-selector sees it: a string, '' when absent."""
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_field_selector(text: str | None) -> Callable[[dict], bool]:
    """Compile a `fieldSelector` (`a=b,c!=d`) into a predicate over a whole object."""
    if not text:
        return lambda obj: True
    tests = []
    for term in _split_top(text):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not m:
            raise bad_request(f"invalid field selector term {term!r} in {text!r}")
        path, op, value = m.groups()
        if op == "!=":
            tests.append(lambda o, p=path, v=value: field_value(o, p) != v)
        else:
            tests.append(lambda o, p=path, v=value: field_value(o, p) == v)
    return lambda obj: all(t(obj) for t in tests)
