"""A worker that runs the fan-out dies with the run that forked it (issue 12, item 4), with prctl and by polling.

Three generations, as in Ansible: a "run" process (ansible-playbook) forks a multiprocessing worker which calls
``_die_with_parent``; the test kills the run with SIGKILL and expects the worker's SIGTERM handler (Ansible's own
``WorkerProcess._term`` in real life) to have run within a second. The real thing is
tests/integration/test_killed_run.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ansible_collections.hostfleet.workloads.plugins.plugin_utils import _fanout

RUN = textwrap.dedent(
    """
    import multiprocessing, os, signal, sys, time
    from ansible_collections.hostfleet.workloads.plugins.plugin_utils import _fanout

    out = sys.argv[1]
    if sys.argv[2] == "poll":
        _fanout._set_parent_death_signal = lambda signum: False

    def on_term(signum, frame):
        with open(out, "a") as f:
            f.write("terminated\\n")
        os._exit(1)

    def worker():
        signal.signal(signal.SIGTERM, on_term)
        run_pid, armed = _fanout._die_with_parent()
        with open(out, "a") as f:
            f.write(f"{os.getpid()} {run_pid} {armed}\\n")
        while True:  # a round's select loop: the poll fallback looks between waits
            time.sleep(0.1)
            _fanout._stop_if_orphaned(run_pid)

    multiprocessing.get_context("fork").Process(target=worker).start()
    time.sleep(60)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


@pytest.mark.parametrize("mode", ["prctl", "poll"])
def test_worker_dies_with_the_run(tmp_path, mode):
    if mode == "prctl" and not sys.platform.startswith("linux"):
        pytest.skip("prctl is Linux only")
    out = tmp_path / "worker.log"
    run = subprocess.Popen([sys.executable, "-c", RUN, str(out), mode], env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    try:
        deadline = time.monotonic() + 20
        while not (out.exists() and out.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        worker_pid, run_pid, armed = out.read_text().split()
        assert int(run_pid) == run.pid
        assert armed == ("True" if mode == "prctl" else "False")
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        deadline = time.monotonic() + 3
        while _alive(int(worker_pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(int(worker_pid)), "the worker outlived its run"
        assert out.read_text().splitlines()[-1] == "terminated"  # by SIGTERM: Ansible's worker handler takes its group along
    finally:
        if run.poll() is None:
            run.kill()


def test_not_in_a_worker_nothing_is_watched():
    # pytest's own process has no multiprocessing parent: no death signal, no polling
    assert _fanout._die_with_parent() == (None, False)
    _fanout._stop_if_orphaned(None)
