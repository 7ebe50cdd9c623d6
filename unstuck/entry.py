"""The `unstuck` console script: a Ctrl-C while the command line is still importing exits 130
quietly, like one anywhere later (`unstuck.cli.main`). The imports take a few hundred
milliseconds (typer, rich, the scheduler); a traceback for an early Ctrl-C reads like a bug.

While they run, a Ctrl-C only takes note, and the script exits once they are done. Letting
it raise instead is not enough: a KeyboardInterrupt that lands in one of importlib's own
callbacks (a module lock's weakref callback) is printed as "Exception ignored" and then
dropped, so the command ran on as if nobody had pressed Ctrl-C."""

from __future__ import annotations

import signal
import sys


def main() -> None:
    interrupted: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    try:
        from unstuck.cli import main as run
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted:
        sys.exit(130)
    run()
