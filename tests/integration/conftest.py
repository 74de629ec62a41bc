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

# Under pytest-xdist each worker has a lab instance of its own (tests/lab/workers.py). Set at import, before
# any test or fixture runs: labctl reads these at each call and every playbook, ssh and lab.py inherits them.
os.environ.update(worker_lab(os.environ))

LAB_HOSTS = int(os.environ.get("HOSTFLEET_LAB_HOSTS", "3"))


@pytest.fixture(scope="session")
def lab():
    """This worker's lab's hosts, brought up once per session (idempotent; `scripts/test` brings it down)."""
    inventory = labctl.up(LAB_HOSTS)
    return Lab(Path(inventory), [name for name, _ip in labctl.hosts()][:LAB_HOSTS])



@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """Under `-n N --dist loadgroup` a module's tests stay together on one worker, in their order: many share module
    fixtures and build on each other's state. Tests marked `xdist_group("timing")` (they judge budgets and latencies,
    which a second lab's load on this machine would blow) instead run one after the other on one worker."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(Path(str(item.fspath)).stem))
    if getattr(config.option, "loadgroup", False):  # an xdist worker of a --dist loadgroup run
        for item in items:
            _suffix_group(item)


def _suffix_group(item):
    """pytest-xdist 3.8 tells the scheduler an item's group as a `@group` suffix written to `item._nodeid`, which
    pytest 9.2 no longer reads (node ids are structured, `item._id`): every group was silently ignored
    (pytest-dev/pytest-xdist#1386, fix pending in #1388). Write the suffix where pytest 9.2 reads it, as that fix does."""
    if hasattr(item, "_nodeid") or not hasattr(item, "_id"):
        return  # an older pytest: xdist's own suffix works
    group = "_".join(sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default")) for mark in item.iter_markers("xdist_group")}))
    if not item.nodeid.endswith(f"@{group}"):
        item._id = type(item._id).parse(f"{item.nodeid}@{group}")
