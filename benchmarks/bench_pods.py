#!/usr/bin/env python
"""Converge 50 pods on one lab host in ONE module call, against the naive way, in the same run.

The naive way is what a playbook author writes without this collection: a loop
of `template`-like `copy` tasks and a loop of `systemd_service` tasks, one unit
at a time. Prints both times and the ratio; then a no-op re-run against one
`ping` task on the same host. Targets (issue #2): >= 20x faster cold, no-op
re-run <= 2x a ping.

Run: scripts/bench pods   (brings the lab up; leaves it up)
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
# Exposes the collection to ansible-playbook.
import conftest  # noqa: E402,F401  # pylint: disable=unused-import
from integration.playbook import Lab  # noqa: E402
from lab import labctl  # noqa: E402

PODS = 50
HOST = "node1"


def pods():
    return [
        {"name": f"bench-{i}", "labels": {"app": "bench"}, "spec": {"containers": [{"name": "main", "command": ["/bin/sleep", "infinity"]}]}}
        for i in range(PODS)
    ]


NAIVE_UNIT = """[Unit]
Description=naive pod {{ item }}

[Service]
ExecStart=/bin/sleep infinity
Restart=always

[Install]
WantedBy=multi-user.target
"""


def naive_tasks(state):
    if state == "absent":
        # Cleanup is not measured: one shell command.
        script = (
            "systemctl disable --now $(cd /etc/systemd/system && ls naive-*.service 2>/dev/null) 2>/dev/null; "
            "rm -f /etc/systemd/system/naive-*.service; systemctl daemon-reload"
        )
        return [{"name": "naive cleanup", "ansible.builtin.shell": script, "changed_when": False}]
    return [
        {
            "name": "naive unit files",
            "ansible.builtin.copy": {"dest": "/etc/systemd/system/naive-{{ item }}.service", "content": NAIVE_UNIT, "mode": "0644"},
            "loop": list(range(PODS)),
        },
        {
            "name": "naive start",
            "ansible.builtin.systemd_service": {"name": "naive-{{ item }}", "state": "started", "enabled": True, "daemon_reload": True},
            "loop": list(range(PODS)),
        },
    ]


def timed(lab, tasks, name):
    """Seconds spent in the play's tasks (from the first task's start to the last one's end), and the run.

    Task time, not process time: ansible-playbook's own start-up (about a second) is the same for both sides
    and would only blur the ratio.
    """
    run = lab.run(tasks, hosts=HOST)
    if run.rc != 0:
        raise SystemExit(f"{name} failed:\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}")
    timed_tasks = [t["task"]["duration"] for play in run.data["plays"] for t in play["tasks"]]
    return timed_tasks[-1]["end"] - timed_tasks[0]["start"], run


def main():
    inventory = labctl.up(3)
    lab = Lab(Path(inventory), [HOST])
    ours = [{"name": "converge", "hostfleet.workloads.pod": {"owner": "bench", "pods": pods()}}]
    absent = [{"name": "remove", "hostfleet.workloads.pod": {"owner": "bench", "state": "absent"}}]
    ping = [{"name": "ping", "ansible.builtin.ping": {}}]

    timed(lab, absent, "cleanup")
    timed(lab, naive_tasks("absent"), "naive cleanup")
    timed(lab, ping, "warm-up ping")  # opens the SSH control connection, as a real run would have

    cold, run = timed(lab, ours, "hostfleet converge")
    assert len(run.result("converge", HOST)["created"]) == PODS
    naive, _unused = timed(lab, naive_tasks("present"), "naive")
    noop_times = []
    for _unused in range(3):
        elapsed, run = timed(lab, ours, "hostfleet no-op")
        assert run.result("converge", HOST)["changed"] is False
        noop_times.append(elapsed)
    ping_times = [timed(lab, ping, "ping")[0] for _unused in range(3)]
    timed(lab, absent, "cleanup")
    timed(lab, naive_tasks("absent"), "naive cleanup")

    noop, pinged = statistics.median(noop_times), statistics.median(ping_times)
    print(
        f"{PODS} pods on one host, cold: hostfleet.workloads.pod {cold:.2f}s, naive copy+systemd loop {naive:.2f}s, ratio {naive / cold:.1f}x (target >= 20x)"
    )
    print(f"no-op re-run: {noop:.2f}s, one ping task: {pinged:.2f}s, ratio {noop / pinged:.2f}x (target <= 2x)")
    ok = naive / cold >= 20 and noop / pinged <= 2
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
