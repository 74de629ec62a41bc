"""How the integration suite's tests are spread over pytest-xdist workers (`-n N --dist loadgroup`, one lab per worker).

A pytest plugin, used by tests/integration/conftest.py: a test without an `xdist_group` mark gets its module's name as
its group, so a module's tests stay together on one worker, in their order (many share module fixtures and build on
each other's state); tests marked `xdist_group("timing")` (they judge budgets and latencies, which a second lab's load
on this machine would blow) run one after the other on one worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
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
