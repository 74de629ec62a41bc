"""Fixtures for tests on the lab's real systemd hosts (tests/lab/lab.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from integration.playbook import Lab  # noqa: E402
from lab import labctl  # noqa: E402
from lab.workers import worker_lab  # noqa: E402

# The collection hook that keeps a module's tests on one xdist worker, re-exported for pytest to find here.
from lab.xdist_groups import pytest_collection_modifyitems  # noqa: E402, F401  # pylint: disable=unused-import

# Under pytest-xdist each worker has a lab instance of its own (tests/lab/workers.py). Set at import, before
# any test or fixture runs: labctl reads these at each call and every playbook, ssh and lab.py inherits them.
os.environ.update(worker_lab(os.environ))

LAB_HOSTS = int(os.environ.get("HOSTFLEET_LAB_HOSTS", "3"))


@pytest.fixture(scope="session")
def lab():
    """This worker's lab's hosts, brought up once per session (idempotent; `scripts/test` brings it down)."""
    inventory = labctl.up(LAB_HOSTS)
    return Lab(Path(inventory), [name for name, _ip in labctl.hosts()][:LAB_HOSTS])
