"""tests/lab/xdist_groups.py: under `-n 2 --dist loadgroup`, each group (a module, or an `xdist_group` mark) runs on one
worker, in order. Runs a small suite with pytest-xdist in a subprocess; each test records which worker ran it."""

from pathlib import Path

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parents[2]

CONFTEST = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from lab.xdist_groups import pytest_collection_modifyitems  # noqa: F401
"""

# Tests of two groups, interleaved: xdist's plain load scheduling hands out consecutive runs of tests, so it would
# split both groups over the two workers.
RECORDER = """
import os, pytest
def record(name):
    with open({log!r}, "a") as log:
        log.write(f"{{name}} {{os.environ['PYTEST_XDIST_WORKER']}}\\n")
"""


def run_suite(pytester):
    log = pytester.path / "ran.log"
    pytester.makeconftest(CONFTEST)
    marked = RECORDER.format(log=str(log)) + "".join(
        f'@pytest.mark.xdist_group("{"timing" if i % 2 else "other"}")\ndef test_m{i}():\n    record("m{i}")\n' for i in range(8)
    )
    plain = RECORDER.format(log=str(log)) + "".join(f'def test_p{i}():\n    record("p{i}")\n' for i in range(8))
    pytester.makepyfile(test_marked=marked, test_plain=plain, test_other_plain=plain.replace('record("p', 'record("q'))
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=24)
    return [line.split() for line in log.read_text().splitlines()]


def test_each_group_runs_on_one_worker_in_order(pytester):
    ran = run_suite(pytester)
    groups = {"timing": [f"m{i}" for i in range(1, 8, 2)], "other": [f"m{i}" for i in range(0, 8, 2)],
              "test_plain": [f"p{i}" for i in range(8)], "test_other_plain": [f"q{i}" for i in range(8)]}
    worker = dict(ran)
    order = [name for name, _worker in ran]
    for group, names in groups.items():
        assert len({worker[name] for name in names}) == 1, (group, ran)
        assert sorted(names, key=order.index) == names, (group, ran)
    assert len(set(worker.values())) == 2, ran  # and both workers had work


def test_no_xdist_no_change(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_one="def test_a(request):\n    assert '@' not in request.node.nodeid\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
