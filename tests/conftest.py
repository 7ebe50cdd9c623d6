import sys
from pathlib import Path

import pytest
from hypothesis import settings

# Scripts in tests/quality are imported by the tests beside them.
sys.path.insert(0, str(Path(__file__).parent / "quality"))

settings.register_profile("ci", max_examples=60, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile("ci")


def pytest_addoption(parser):
    parser.addoption("--with-e2e", action="store_true", default=False,
                     help="run tests/e2e against a real kind cluster (needs docker and kind)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--with-e2e"):
        return
    skip = pytest.mark.skip(reason="needs a kind cluster: run with --with-e2e on a machine with docker and kind")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)
