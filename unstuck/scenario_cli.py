"""`unstuck scenario check FILE...` and `unstuck scenario schema`: a scenario author's tools,
which run nothing. `check` validates files as `unstuck sim` would before its first seed (a CI
lint step, or an editor's save hook); `schema` prints the JSON Schema that editors use to
complete and check a scenario as it is typed (docs/scenarios.md, "Checking a scenario without
running it").

Exit codes: 0 every file is valid (warnings do not fail); 2 a file is invalid, or the schema's
--out cannot be written, with a message naming the file, field and fix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from scheduler import files
from unstuck.text import counted

if TYPE_CHECKING:  # imported where used: every `unstuck` process starts through the CLI
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
    from unstuck import scenario as scenarios
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
    stray indent emptied reads `0 faults`); its `gates.sometimes` goals where it has any."""
    workspaces = sum(w.size for w in s.workload)
    goals = len(s.gates.sometimes)
    return (f"name: {s.name}, {_span(s.duration_s)}, {counted(workspaces, 'workspace')}, "
            f"{counted(len(s.faults), 'fault')}, " + (f"{counted(goals, 'goal')}, " if goals else "")
            + counted(s.seeds, "seed"))


def _span(seconds: float) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option(help="Write the schema to this file instead of stdout.")] = None,
) -> None:
    """Print the JSON Schema of a scenario file, for editors (yaml-language-server)."""
    from unstuck.cli import fail_input, output_problem
    from unstuck.scenario.editor_schema import schema_text

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
