"""Fixtures of the live tests."""

from __future__ import annotations

import pytest

from tests.unit.service.live import LiveRun


@pytest.fixture
def run(tmp_path):
    """The reference with one pod for two workspaces (at LiveRun's time scale, 0.05, and
    --agent-stale 1 s: an agent that does not poll for 1 s is silent). A test module that
    needs another run defines its own `run`."""
    live = LiveRun(tmp_path, "reference", pods=("pod-1",), workspaces=("ws-1", "ws-2"))
    yield live
    live.stop()
