"""A run that is killed stops acting (issue 12, item 4): kill -9 of ansible-playbook mid-rollout leaves no worker
orchestrating on; Ctrl-C (SIGINT to the run's process group) stops it with the fleet within the rollout's budget."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from integration.playbook import CALLBACKS

# Judged against budgets and latencies: one at a time, with the other `timing` tests (tests/lab/xdist_groups.py).
pytestmark = pytest.mark.xdist_group("timing")

NAME = "killed"
REPLICAS = 3
BIN = Path(sys.executable).parent


def template(version, ready_after):
    start = f"sleep {ready_after}; touch /tmp/ready-$POD_NAME; exec sleep infinity"
    return {
        "metadata": {"labels": {"app": NAME}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "command": ["/bin/sh", "-c", start],
                    "env": [{"name": "VERSION", "value": version}],
                    "readinessProbe": {"exec": {"command": ["/bin/sh", "-c", "test -e /tmp/ready-$POD_NAME"]}, "periodSeconds": 1},
                }
            ],
        },
    }


def task(version, ready_after):
    return {
        "name": "deploy",
        "hostfleet.workloads.deployment": {
            "name": NAME,
            "replicas": REPLICAS,
            "template": template(version, ready_after),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "wait_timeout": 300,
        },
        "run_once": True,
    }


def start_run(lab, tmp: Path, tasks) -> subprocess.Popen:
    """ansible-playbook in the background, in its own process group (a terminal's Ctrl-C reaches the whole group)."""
    play = tmp / "killed-run-play.yml"
    play.write_text(yaml.safe_dump([{"name": "test", "hosts": "lab", "gather_facts": False, "tasks": tasks}], sort_keys=False))
    env = dict(
        os.environ,
        ANSIBLE_CALLBACK_PLUGINS=str(CALLBACKS),
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_PIPELINING="True",
        ANSIBLE_NOCOLOR="1",
    )
    return subprocess.Popen(
        [str(BIN / "ansible-playbook"), "-i", str(lab.inventory), str(play)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )


def run_processes(tmp: Path) -> list[str]:
    """Local processes of the run: ansible-playbook, its workers and their fan-out children all carry the play's path."""
    out = subprocess.run(["ps", "-ewwo", "pid,ppid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if str(tmp) in line]


def pod_units(lab):
    """{host: set of the Deployment's pod unit names}, whatever their state."""
    found = {}
    for host in lab.hosts:
        out = lab.ssh(host, f"systemctl list-units --all --plain --no-legend 'hf-{NAME}-*.main.service' | cut -d' ' -f1", check=False).stdout
        found[host] = {u for u in out.split() if u}
    return found


def versions(lab):
    """(running pods, ready pods) of the Deployment per VERSION, summed over the hosts."""
    counts: dict[str, list[int]] = {}
    for host in lab.hosts:
        out = lab.ssh(
            host,
            f"for u in $(systemctl list-units --state=running --plain --no-legend 'hf-{NAME}-*.main.service' | cut -d' ' -f1); do "
            "p=$(systemctl show -p MainPID --value $u); pod=${u#hf-}; pod=${pod%.main.service}; "
            "v=$(tr '\\0' '\\n' < /proc/$p/environ | sed -n 's/^VERSION=//p'); "
            "if test -e /run/hostfleet/pods/$pod/main/ready; then echo $v 1; else echo $v 0; fi; done",
            check=False,
        ).stdout
        for line in out.splitlines():
            version, ready = line.split()
            entry = counts.setdefault(version, [0, 0])
            entry[0] += 1
            entry[1] += int(ready)
    return counts


def wait_for_new_pod(lab, before, timeout=90):
    """Wait until the rollout has started a pod that was not there before (its first step is under way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = pod_units(lab)
        if any(now[h] - before[h] for h in lab.hosts):
            return now
        time.sleep(0.3)
    raise AssertionError(f"the rollout started no pod within {timeout} s")


# A run killed with kill -9 keeps the workload's lease until it expires (plugin_utils/lease.py DURATION, 30 s): the
# next run is refused meanwhile with this message, as it should be.
LEASE_HELD = "is being changed by another run"


def run_past_a_killed_lease(lab, tasks, timeout=45):
    """lab.run(tasks), again while a killed run's lease is still in the way."""
    deadline = time.monotonic() + timeout
    while True:
        run = lab.run(tasks)
        if run.rc == 0 or LEASE_HELD not in run.stdout or time.monotonic() > deadline:
            return run
        time.sleep(3)


@pytest.fixture
def deployed(lab):
    run = run_past_a_killed_lease(lab, [task("v1", 0.2)])
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    yield
    run_past_a_killed_lease(lab, [{"name": "remove", "hostfleet.workloads.deployment": {"name": NAME, "state": "absent"}, "run_once": True}])


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill-9", "ctrl-c"])
def test_a_killed_run_stops_acting(lab, deployed, how):
    before = pod_units(lab)
    with tempfile.TemporaryDirectory(prefix="hf-killed-") as tmp_name:
        tmp = Path(tmp_name)
        # Each new pod takes 6 s to be ready: a step every 6 s, 3 steps in all, so the run is killed mid-rollout.
        proc = start_run(lab, tmp, [task("v2", 6)])
        try:
            wait_for_new_pod(lab, before)
            if how == "kill-9":
                os.kill(proc.pid, signal.SIGKILL)
            else:
                os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=30)
            # The worker that ran the task and its per-host children must be gone within a few seconds.
            deadline = time.monotonic() + 5
            while run_processes(tmp) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert run_processes(tmp) == [], "processes of the killed run are still alive"
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            for pid_line in run_processes(tmp):
                os.kill(int(pid_line.split()[0]), signal.SIGKILL)
    # A call already under way on a node may finish; after that, no further step: the pods stay as they are while
    # the next step would have been due (the new pod is ready after 6 s).
    time.sleep(2)
    settled = pod_units(lab)
    time.sleep(10)
    assert pod_units(lab) == settled, "a step was taken after the run was killed"
    # Within the budget (maxSurge 1, maxUnavailable 0): at most replicas + 1 pods, and the old ones still serve.
    counts = versions(lab)
    assert sum(c[0] for c in counts.values()) <= REPLICAS + 1, counts
    assert sum(c[1] for c in counts.values()) >= REPLICAS, counts
