"""Rules across the fields of one mapping, told to editors as JSON Schema.

A scenario section's validator (and `rules.cross_field_problems`) refuses some fields only in
company: `count` with `names`, a fault with both `at` and `rate_per_h`, an `hpa` on a bare
pool. Pydantic's schema knows none of that, so an editor showed such a file as clean and
`unstuck scenario check` refused it. Each model adds its rules to its own schema with
`also(...)`, next to the validator that checks them, with the validator's own words as the
message an editor shows (the YAML language server's `errorMessage`).

"Given" means what the loader means: in the mapping and not null (`count: null` is no count;
`at: []` is no arrival time, `given("at", minItems=1)`). A rule that forbids a field allows it
null, as the loader does. JSON Schema cannot compare two fields (`min <= max`) or look into
another section (a fault's pool that exists): those stay `check`'s alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

Schema = dict[str, Any]
Rules = Schema | list["Rules"]  # a rule, or rules: `also` and `when` take either


def given(field: str, **value: Any) -> Schema:
    """The mapping has `field`, not null (and, with `value`, such as `minItems=1` or
    `exclusiveMinimum=0`, one that keeps those keywords)."""
    return {"required": [field], "properties": {field: _quiet({"not": {"type": "null"}, **value})}}


def equals(field: str, value: Any) -> Schema:
    """The mapping has `field` written as `value` (a default does not count)."""
    return {"required": [field], "properties": {field: _quiet({"const": value})}}


def absent(*fields: str, message: str) -> Schema:
    """None of `fields` is given: an editor shows `message` on the one that is."""
    return {"properties": {f: _quiet({"type": "null", "errorMessage": message}) for f in fields}}


def holds(field: str, **keywords: Any) -> Schema:
    """`field`, where it is given, within JSON Schema's `keywords` (`minimum=1`,
    `exclusiveMinimum=0`, `minItems=1`): for a bound a validator checks after the type."""
    return {"properties": {field: _quiet(keywords)}}


def _quiet(schema: Schema) -> Schema:
    """A rule's view of a field, which an editor must not offer as the field itself: the YAML
    language server completes every `properties` entry of every subschema that matches, so
    `at` was offered as `at: ${1|at,null|}` (inserting `at: at`), and each rule's `required`
    as a snippet named after the section (`doNotSuggest`, its extension, skips both)."""
    return {**schema, "doNotSuggest": True}


def any_of(*conditions: Schema, message: str) -> Schema:
    """At least one of `conditions` holds; an editor shows `message` where none does."""
    return {"anyOf": [{**c, "errorMessage": message} for c in conditions]}


def exactly_one(a: str, b: str, *, message: str) -> list[Schema]:
    """One of the fields `a` and `b` is given, not both."""
    return [any_of(given(a), given(b), message=message),
            when(given(a), then=absent(b, message=message))]


def when(condition: Schema, *, then: Rules | None = None, otherwise: Rules | None = None) -> Schema:
    """`then`'s rules where `condition` holds, `otherwise`'s where it does not: a field's rule
    that depends on another field's value (`mode: patch`, `manager: deployment`)."""
    rule: Schema = {"if": condition}
    if then is not None:
        rule["then"] = {"allOf": flat(then)}
    if otherwise is not None:
        rule["else"] = {"allOf": flat(otherwise)}
    return rule


def also(*rules: Rules) -> Callable[[Schema], None]:
    """A model's `json_schema_extra`: its schema, and each of `rules` too (`allOf`)."""
    each = flat(list(rules))

    def extra(schema: Schema) -> None:
        schema.setdefault("allOf", []).extend(copies(each))

    return extra


def copies(rules: Rules) -> list[Schema]:
    """`rules` as a list of schemas, a copy each time: the schema is edited in place
    afterwards (`editor_schema`)."""
    return copy.deepcopy(flat(rules))


def flat(rules: Rules) -> list[Schema]:
    if isinstance(rules, dict):
        return [rules]
    return [r for rule in rules for r in flat(rule)]
