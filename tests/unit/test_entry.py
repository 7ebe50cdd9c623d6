"""The console script (`unstuck.entry:main`): an early Ctrl-C is as quiet as a late one."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

# Python code runs (so Python's SIGINT handler is installed), then the console script's body.
STARTED = ("import sys; sys.stderr.write('started\\n'); sys.stderr.flush(); "
           "from unstuck.entry import main; main()")


def test_ctrl_c_while_the_cli_is_still_importing_exits_130_without_a_traceback():
    # Found by review: SIGINT in the first few hundred ms printed a KeyboardInterrupt
    # traceback from whatever module was importing. The CLI's imports take ~0.5 s here;
    # the signal goes as soon as the interpreter runs Python code (before that, a SIGINT
    # kills any Python process outright, and a loaded machine can take a while to get there).
    proc = subprocess.Popen([sys.executable, "-c", STARTED, "sim", "scenarios/incident-601.yaml"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None and proc.stderr.readline() == "started\n"
    time.sleep(0.1)  # past the few ms of importing unstuck.entry, inside the CLI's imports
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
