"""The JSON Schema of a scenario file, for editors (the YAML language server completes and
checks a file as it is typed) and for `unstuck scenario schema`.

The model says where the file differs from it (`TimeOfDay`; `Dist`, a number or one kind's
parameters; `Scenario`'s own `json_schema_extra`; each field type's `_shows`: seconds >= 0,
probabilities in [0, 1], the patterns of names; each section's rules across its own fields,
`mapping_rules`); here are only the corrections pydantic needs whatever the model. The schema
checks a file's fields, types, enums, bounds, name patterns and the fields that go together,
as an editor can while the file is typed. The rules that compare two fields (min below max)
or look into another section (a fault's pool that exists) are `unstuck scenario check`'s;
JSON cannot tell `3.0` from `3` either, so `nodes: 3.0` passes here and not there.
"""

from __future__ import annotations

import json
from typing import Any

from unstuck.scenario.mapping_rules import copies
from unstuck.scenario.schema import FAULT_RULES, FAULT_TYPES, Scenario

_BOUNDS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}
NULL_MEANS = "null: the same as leaving the field out"


def json_schema() -> dict[str, Any]:
    out = Scenario.model_json_schema()  # a new dict each call: edited in place below
    _share_fault_timing(out)
    _for_editors(out)
    out.update({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "unstuck scenario",
        "description": "A scenario file of unstuck (scenarios/*.yaml); docs/scenarios.md "
                       "documents every field. This schema checks fields and types; `unstuck "
                       "scenario check FILE` checks the rest, as `unstuck sim` does.",
    })
    return out


def schema_text() -> str:
    """The schema as `unstuck scenario schema` prints it and scenarios/scenario.schema.json
    holds it: sorted and indented, so that a change to the model is a readable diff."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


FAULT_TIMING = "FaultTiming"


def _share_fault_timing(out: dict[str, Any]) -> None:
    """Hold the timing rules every fault type shares (`at` or `rate_per_h`, ...) once, in
    `$defs`, each type referring to them: the model gives each type its own copy (pydantic
    refuses a `$ref` it did not make), and eight copies made the file long and a change to
    them eight hunks of its diff."""
    shared = copies(FAULT_RULES)
    types = 0
    for definition in out["$defs"].values():
        rules = definition.get("allOf", [])
        if rules[:len(shared)] == shared:
            definition["allOf"] = [{"$ref": f"#/$defs/{FAULT_TIMING}"}, *rules[len(shared):]]
            types += 1
    if types != len(FAULT_TYPES):  # the model changed how it gives them: say so, not half-do it
        raise AssertionError(f"the fault timing rules were found in {types} schemas, not in each "
                             f"of the {len(FAULT_TYPES)} fault types: see schema._fault_rules")
    out["$defs"][FAULT_TIMING] = {
        "description": "When a fault fires, for every fault type: at a time (`at`), or at "
                       "random at a rate (`rate_per_h`), with the fields that go with them.",
        "allOf": shared}


def _for_editors(node: Any) -> None:
    """The corrections pydantic needs, made in one walk over the schema:
    - rename the bounds pydantic leaves under their Python names (`ge`) where a validator
      runs before the type check (`nodes: AtLeastOne`): JSON Schema ignores unknown
      keywords, so `nodes: 0` passed the schema. A field's own name is never touched: only a
      schema with a numeric type is;
    - leave the unset (None) fields out of each mapping's default: an editor inserts a
      default as written, and the loader refuses a distribution parameter its kind does not
      take even when null (`connect_s: {kind: uniform, min: 20, max: 90, mean: null}`);
    - describe the `null` of an optional field (`X | None`): the YAML language server heads a
      field's hover with every `anyOf` title, `initial_replicas || initial_replicas`, when
      it counts as many matches as alternatives, and it counted a rule's untitled,
      undescribed view of the field (`mapping_rules`) as the bare `{"type": "null"}`."""
    if isinstance(node, dict):
        for option in node.get("anyOf", ()):
            if option == {"type": "null"}:
                option["description"] = NULL_MEANS
        if node.get("type") in ("number", "integer"):
            for key, keyword in _BOUNDS.items():
                if key in node:
                    node[keyword] = node.pop(key)
        if isinstance(node.get("default"), dict | list):
            node["default"] = _without_nulls(node["default"])
        for key, value in node.items():
            if key != "default":  # a default is a value, not a schema
                _for_editors(value)
    elif isinstance(node, list):
        for value in node:
            _for_editors(value)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
