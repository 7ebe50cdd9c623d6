"""The `unstuck` command line. Sub-commands live in their own modules and are mounted here.

Exit codes, everywhere: 0 pass, 1 the system deviated (a task stuck, an invariant broken),
2 bad input or a harness error (with a message naming the file, field and fix), 3 a fault
never took effect (the run proves nothing).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from scheduler.variants import NAMES
from unstuck import replay as replays

app = typer.Typer(
    name="unstuck",
    help="Prove that a scheduler never leaves a task stuck in apply_pending.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail_input(message: str) -> None:
    """Bad input: one unwrapped line on stderr (file, field, value, rule, fix), exit 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def replay(
    incident: Annotated[str, typer.Argument(help="Which incident to replay: incident-601.")],
    scheduler: Annotated[str, typer.Option(help="seed | seed-proposal | seed-head | reference")] = "reference",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Replay an incident's timeline; exit 1 if a task is left stuck or its workspace wedged."""
    if incident not in replays.INCIDENTS:
        fail_input(f"unknown incident {incident!r}: choose one of {', '.join(replays.INCIDENTS)}")
    if scheduler not in NAMES:
        fail_input(f"--scheduler {scheduler!r} is not a scheduler: choose one of {', '.join(NAMES)}")
    r = replays.incident_601(scheduler)
    if as_json:
        print(json.dumps({"scheduler": r.scheduler, "stuck": r.stuck, "wedged": r.wedged,
                          "task": r.task, "workspace_locked": r.workspace_locked}, sort_keys=True))
    else:
        out = Console()
        out.print(f"[bold]{incident}[/] under [bold]{scheduler}[/]")
        for t, what in replays.TIMELINE:
            out.print(f"  t={t:>6.0f}s  {what}")
        table = Table("column", "value", title="final row of workspace_tasks")
        for k, v in r.task.items():
            table.add_row(k, "(empty)" if v == "" else str(v))
        table.add_row("workspace is_locked", str(r.workspace_locked))
        out.print(table)
        verdict = "STUCK" if r.stuck else ("WEDGED" if r.wedged else "ok")
        colour = "red" if verdict != "ok" else "green"
        out.print(f"verdict: [bold {colour}]{verdict}[/]")
    raise typer.Exit(1 if (r.stuck or r.wedged) else 0)


def _mount() -> None:
    """Mount sub-command apps that exist (each lives in its own module)."""
    import importlib

    for module, name in (("unstuck.sim_cli", None), ("unstuck.cluster_cli", "cluster"),
                         ("unstuck.serve_cli", None),
                         ("unstuck.suite_cli", None)):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name == module:
                continue
            raise
        if name is None:
            mod.register(app)
        else:
            app.add_typer(mod.app, name=name)


_mount()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
