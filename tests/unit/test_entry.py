"""The console script (`unstuck.entry:main`): an early Ctrl-C is as quiet as a late one."""

from __future__ import annotations

import signal
import subprocess
import sys
import time


def test_ctrl_c_while_the_cli_is_still_importing_exits_130_without_a_traceback():
    # Found by review: SIGINT in the first few hundred ms printed a KeyboardInterrupt
    # traceback from whatever module was importing. The CLI's imports take ~0.5 s here.
    proc = subprocess.Popen(
        [sys.executable, "-c", "from unstuck.entry import main; main()", "sim",
         "scenarios/incident-601.yaml"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
