"""The `unstuck` console script: a Ctrl-C while the command line is still importing exits 130
quietly, like one anywhere later (`unstuck.cli.main`). The imports take a few hundred
milliseconds (typer, rich, the scheduler); a traceback for an early Ctrl-C reads like a bug."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from unstuck.cli import main as run
    except KeyboardInterrupt:
        sys.exit(130)
    run()
