"""The console script (`unstuck.entry:main`): an early Ctrl-C is as quiet as a late one."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

# The console script's module is imported (as the script pip writes does first), then we say
# so, then its body runs: the signal can only come after `main` has begun, however loaded the
# machine is, and `main` takes its first step (its SIGINT handler) at once.
STARTED = ("import sys; from unstuck.entry import main; sys.stderr.write('started\\n'); "
           "sys.stderr.flush(); main()")


def test_ctrl_c_while_the_cli_is_still_importing_exits_130_without_a_traceback():
    # Found by review: SIGINT in the first few hundred ms printed a KeyboardInterrupt
    # traceback from whatever module was importing. The CLI's imports take ~0.5 s here.
    # A SIGINT before `unstuck.entry` has run meets Python's own handler (a traceback): the
    # console script cannot help that, so the test signals after it.
    proc = subprocess.Popen([sys.executable, "-c", STARTED, "sim", "scenarios/incident-601.yaml"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None and proc.stderr.readline() == "started\n"
    time.sleep(0.1)  # inside the CLI's imports (about 0.5 s); after them it would exit 130 too
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err


# A Ctrl-C that lands inside one of importlib's own callbacks (a module lock's weakref
# callback) while the CLI imports: Python prints "Exception ignored" for a KeyboardInterrupt
# raised there and drops it. Here the callback runs for sure: a finder fires it when
# `unstuck.cli` is about to be imported, and it sends the SIGINT itself.
SWALLOWED = """
import os, signal, sys, weakref

class Obj:
    pass

def cb(ref):
    os.kill(os.getpid(), signal.SIGINT)  # its handler runs here, inside the callback

class Finder:
    def find_spec(self, name, path=None, target=None):
        if name == "unstuck.cli":
            o = Obj()
            r = weakref.ref(o, cb)
            del o
        return None

sys.meta_path.insert(0, Finder())
from unstuck.entry import main
main()
"""


def test_ctrl_c_inside_an_import_callback_is_not_lost():
    """Found by CI: the command ran on and exited 0 after "Exception ignored in ... cb"."""
    proc = subprocess.run([sys.executable, "-c", SWALLOWED, "--help"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr == "" and proc.stdout == ""


def test_the_cli_starts_without_the_analysis_libraries():
    # Every `unstuck` process starts through the CLI: the agent in each pod, and the
    # scheduler's new process after a restart, whose start-up is the gap in which nothing is
    # served. Importing pandas there (through `unstuck conform`'s module) doubled that gap on
    # the local recipe, from about 1 s to 2.5 s; the commands that read tables import it
    # themselves.
    heavy = ("pandas", "numpy", "pyarrow", "matplotlib", "nbclient", "hypothesis", "simpy",
             "unstuck.scenario.schema")
    out = subprocess.run([sys.executable, "-c", "import sys, unstuck.cli; "
                          f"print(' '.join(m for m in {heavy!r} if m in sys.modules))"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
