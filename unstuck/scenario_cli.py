"""`unstuck scenario check FILE...` and `unstuck scenario schema`: a scenario author's tools,
which run nothing. `check` validates files as `unstuck sim` would before its first seed (a CI
lint step, or an editor's save hook); `schema` prints the JSON Schema that editors use to
complete and check a scenario as it is typed (docs/scenarios.md, "Checking a scenario without
running it").

Exit codes: 0 every file is valid (warnings do not fail); 2 a file is invalid, or the schema's
--out cannot be written, with a message naming the file, field and fix.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from scheduler import files
from unstuck import scenario as scenarios

app = typer.Typer(help="Check scenario files, and print their JSON Schema, without running them.",
                  no_args_is_help=True)

SCHEMA_FILE = Path("scenarios/scenario.schema.json")  # checked in; tests keep it current


@app.command()
def check(
    paths: Annotated[list[Path], typer.Argument(metavar="FILE...", help="Scenario YAML files.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per file.")] = False,
) -> None:
    """Validate scenario files without running them; exit 2 if any is invalid."""
    from unstuck.sim_cli import unique_scenarios

    invalid = False
    named: dict[str, tuple[scenarios.Scenario, Path]] = {}  # the first file of each name
    for path in paths:
        s: scenarios.Scenario | None = None
        problems: list[str] = []
        warnings: list[str] = []
        try:
            s = scenarios.load(path)
        except scenarios.ScenarioInvalid as e:
            problems = e.problems
            invalid = True
        else:
            warnings = scenarios.advice(s, str(path))
            # Not an error here: each file is valid alone, but `unstuck sim` (and suite)
            # refuse two of one name in one run, their results would share a name.
            _, clashes = unique_scenarios([named.setdefault(s.name, (s, path)), (s, path)])
            warnings += [f"warning: {c} before running them together" for c in clashes]
        for line in problems:
            typer.echo(f"error: {line}", err=True)
        for line in warnings:
            typer.echo(line, err=True)  # stderr, as `unstuck sim` does: stdout stays parseable
        if as_json:
            print(json.dumps({"file": str(path), "ok": s is not None,
                              "name": s.name if s is not None else None, "problems": problems,
                              "warnings": [w.removeprefix("warning: ") for w in warnings]},
                             sort_keys=True))
        elif s is not None:
            print(f"ok: {path} ({_summary(s)})")
    raise typer.Exit(2 if invalid else 0)


def _summary(s: scenarios.Scenario) -> str:
    """What the file will run, so a reader sees it was read as meant (a fault list that a
    stray indent emptied reads `0 faults`)."""
    workspaces = sum(w.size for w in s.workload)
    return (f"name: {s.name}, {_span(s.duration_s)}, {_plural(workspaces, 'workspace')}, "
            f"{_plural(len(s.faults), 'fault')}, {_plural(s.seeds, 'seed')}")


def _span(seconds: float) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option(help="Write the schema to this file instead of stdout.")] = None,
) -> None:
    """Print the JSON Schema of a scenario file, for editors (yaml-language-server)."""
    from unstuck.cli import fail_input, output_problem

    text = schema_text()
    if out is None:
        print(text, end="")
        return
    if problem := output_problem("--out", out, folder=False, example=SCHEMA_FILE.name):
        fail_input(problem)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        files.write_text(out, text)
    except OSError as e:
        fail_input(f"--out {out}: could not write the schema ({e.strerror or e.__class__.__name__}); "
                   "free space or choose another file")


def schema_text() -> str:
    """The schema as `schema` prints it and SCHEMA_FILE holds it: sorted and indented, so
    that a change to the model is a readable diff of the checked-in file."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


TIME_OF_DAY = {"type": "string", "pattern": r"^\s*([01]?[0-9]|2[0-3]):[0-5][0-9]\s*$",
               "description": 'a time of day "HH:MM" (24 h), e.g. "22:30"'}
_BOUNDS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}


def json_schema() -> dict[str, Any]:
    """`Scenario.model_json_schema()`, corrected where pydantic describes the model rather
    than the files the loader accepts (each correction says why). It checks the shape of a
    file: fields, types, enums and the bounds pydantic knows. The value rules kept in the
    validators (seconds >= 0, names, probabilities in [0, 1]) and the rules across fields
    are `unstuck scenario check`'s, whose messages also say what to write; JSON cannot
    tell `3.0` from `3` either, so `nodes: 3.0` passes here and not there."""
    out = copy.deepcopy(scenarios.Scenario.model_json_schema())  # edited in place below
    defs = out["$defs"]
    _json_bounds(out)
    _drop_null_defaults(out)
    # `name` defaults to the file's name (`scenarios/x.yaml`: x): a file may leave it out.
    out["required"] = [f for f in out["required"] if f != "name"]
    # Top-level `x-` keys are the file's own, for anchors that fields merge (`<<: *base`);
    # the loader drops them before validation.
    out["patternProperties"] = {"^x-": {}}
    # A time of day is written "HH:MM" and becomes seconds in the model, whose type (a
    # number) the schema would otherwise demand: it refused `clock_origin: "06:00"`.
    out["properties"]["clock_origin"] = {**TIME_OF_DAY, "default": "00:00"}
    for end in ("from", "to"):
        defs["Freeze"]["properties"][end] = dict(TIME_OF_DAY)
    # A duration may be a bare number, a fixed time (`plan_s: 30`): the model turns it into
    # {kind: fixed, value: 30} before validation, so the schema only saw the mapping.
    dist = defs["Dist"]
    defs["Dist"] = {"description": dist.pop("description"),
                    "anyOf": [{"type": "number", "description": "a fixed time in seconds"}, dist]}
    out.update({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "unstuck scenario",
        "description": "A scenario file of unstuck (scenarios/*.yaml); docs/scenarios.md "
                       "documents every field. This schema checks fields and types; `unstuck "
                       "scenario check FILE` checks the rest, as `unstuck sim` does.",
    })
    return out


def _json_bounds(node: Any) -> None:
    """Rename the bounds pydantic leaves under their Python names (`ge`) where a validator
    runs before the type check (`nodes: AtLeastOne`): JSON Schema ignores unknown keywords,
    so `nodes: 0` passed the schema. A field's own name is never touched: only a schema
    with a numeric type is."""
    if isinstance(node, dict):
        if node.get("type") in ("number", "integer"):
            for key, keyword in _BOUNDS.items():
                if key in node:
                    node[keyword] = node.pop(key)
        for value in node.values():
            _json_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _json_bounds(value)


def _drop_null_defaults(node: Any) -> None:
    """Leave the unset (None) fields out of each mapping's default: an editor inserts a
    default as written, and the loader refuses a distribution parameter its kind does not
    take even when null (`connect_s: {kind: uniform, min: 20, max: 90, mean: null}`)."""
    if isinstance(node, dict):
        if isinstance(node.get("default"), dict | list):
            node["default"] = _without_nulls(node["default"])
        for key, value in node.items():
            if key != "default":
                _drop_null_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _drop_null_defaults(value)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
