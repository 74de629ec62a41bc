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
from naive import naive_tasks, timed  # noqa: E402

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


def main():
    inventory = labctl.up(3)
    lab = Lab(Path(inventory), [HOST])
    ours = [{"name": "converge", "hostfleet.workloads.pod": {"owner": "bench", "pods": pods()}}]
    absent = [{"name": "remove", "hostfleet.workloads.pod": {"owner": "bench", "state": "absent"}}]
    ping = [{"name": "ping", "ansible.builtin.ping": {}}]

    timed(lab, absent, "cleanup", hosts=HOST)
    timed(lab, naive_tasks(PODS, "absent"), "naive cleanup", hosts=HOST)
    timed(lab, ping, "warm-up ping", hosts=HOST)  # opens the SSH control connection, as a real run would have

    cold, run = timed(lab, ours, "hostfleet converge", hosts=HOST)
    assert len(run.result("converge", HOST)["created"]) == PODS
    naive, _unused = timed(lab, naive_tasks(PODS), "naive", hosts=HOST)
    noop_times = []
    for _unused in range(3):
        elapsed, run = timed(lab, ours, "hostfleet no-op", hosts=HOST)
        assert run.result("converge", HOST)["changed"] is False
        noop_times.append(elapsed)
    ping_times = [timed(lab, ping, "ping", hosts=HOST)[0] for _unused in range(3)]
    timed(lab, absent, "cleanup", hosts=HOST)
    timed(lab, naive_tasks(PODS, "absent"), "naive cleanup", hosts=HOST)

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
