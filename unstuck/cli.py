"""The `unstuck` command line. Sub-commands live in their own modules and are mounted here.

Exit codes: 0 pass, 1 the system deviated (a task stuck, an invariant broken), 2 bad input
or a harness error (with a message naming the file, field and fix), 130 Ctrl-C, 143 SIGTERM
(the commands that run seeds or write results: `sim_cli.sigterm_interrupts`); `unstuck gate`
alone also returns 3, the run proves nothing (a fault never took effect, or a scenario's
`gates.sometimes` goal was never reached). README.md, "Exit codes", lists them per command.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from scheduler import files
from scheduler.variants import NAMES
from unstuck import replay as replays

app = typer.Typer(
    name="unstuck",
    help="Prove that a scheduler never leaves a task stuck in apply_pending.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail_input(message: str) -> NoReturn:
    """Bad input: one unwrapped line on stderr (file, field, value, rule, fix), exit 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def scheduler_problem(option: str, names: list[str], *, many: bool = False) -> str | None:
    """The one line for the first of `names` that is not a scheduler, or None. One rule for
    every command that takes `--scheduler` (`many`: a comma-separated list, where `all`
    stands for the four), so each says the same thing, a stray comma included."""
    for name in names:
        if name in NAMES:
            continue
        if not name.strip():
            return (f"{option}: an empty scheduler name (a stray comma?); separate names with "
                    "single commas, e.g. seed,reference")
        return (f"{option} {name!r} is not a scheduler: choose one of {', '.join(NAMES)}"
                + (" or all" if many else ""))
    return None


def output_problem(option: str, path: Path, *, folder: bool, example: str = "out",
                   keep: bool = False) -> str | None:
    """Why `path` cannot take the output of `option` (a folder, or a file when not
    `folder`), or None. Checked before any work starts, so that a long run is not lost at
    its end to a path it could never write. With `keep`, a folder the check creates stays:
    the command uses it from here on, and processes that share it (agents on one backend)
    must not remove it while another one writes its probe there."""
    if not folder:
        fd = files.fd_number(path)
        if fd is not None:  # this process's own descriptor (stdout): written through it
            try:
                mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
            except OSError:
                return f"{option} {path}: descriptor {fd} is not open; open it (e.g. 9>file) or choose a file"
            if mode not in (os.O_WRONLY, os.O_RDWR):
                return f"{option} {path}: descriptor {fd} is not open for writing; choose a file"
            if files.fd_alias(path) is not None:
                return None
        try:
            os.stat(path)
        except OSError as e:
            if e.errno == errno.ELOOP:
                return f"{option} {path}: is a loop of symlinks; point it at a file, or choose another path"
    if path.exists():
        if folder and not path.is_dir():
            return f"{option} {path}: exists and is not a folder; choose a folder"
        if not folder and path.is_dir():
            return f"{option} {path}: is a folder; give a file name, e.g. {path / example}"
        if not folder and not path.is_file():  # a FIFO or a device: written in place
            if os.access(path, os.W_OK):  # scheduler/files.py; its folder is not written
                return None
            return f"{option} {path}: cannot be written (permission denied); choose another file"
    # A symlink's file is replaced beside the file it names (scheduler/files.py).
    target = path if folder else Path(os.path.realpath(path)).parent
    place = target
    while not place.exists() and place != place.parent:
        place = place.parent
    if not place.is_dir():
        return f"{option} {path}: {place} is a file, not a folder; choose another path"
    if problem := _try_writing(target, keep=keep):
        return (f"{option} {path}: cannot create or write in {target} ({problem}); choose a "
                "folder you can write to")
    return None


def _try_writing(folder: Path, *, keep: bool = False) -> str | None:
    """Create `folder` (and its missing parents) and a file in it, then remove the file and,
    unless `keep`, the folders created; the error, if any. Only trying tells: permission
    bits say nothing about /proc, a read-only mount or a user (root) whom `os.access` always
    lets write."""
    from unstuck.folders import make_missing, unmake

    made: list[Path] = []
    try:
        make_missing(folder, made)
        probe = folder / f".unstuck-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        unmake(made)
        return e.strerror or str(e)
    if not keep:
        unmake(made)
    return None


@app.command()
def replay(
    incident: Annotated[str, typer.Argument(help="Which incident to replay: incident-601.")],
    scheduler: Annotated[str, typer.Option(help="seed | seed-proposal | seed-head | reference")] = "reference",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Replay an incident's timeline; exit 1 if a task is left stuck or its workspace wedged."""
    if incident not in replays.INCIDENTS:
        fail_input(f"unknown incident {incident!r}: choose one of {', '.join(replays.INCIDENTS)}")
    if problem := scheduler_problem("--scheduler", [scheduler]):
        fail_input(problem)
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
                         ("unstuck.serve_cli", None), ("unstuck.suite_cli", None),
                         ("unstuck.shrink_cli", None), ("unstuck.close_run_cli", None),
                         ("unstuck.conform_cli", None),
                         ("unstuck.scenario_cli", "scenario")):
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
    except OSError as e:  # a read or write no command expected to fail: still exit 2, named
        print(f"error: harness error: {e}; fix the cause (free space, permissions) and rerun",
              file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
