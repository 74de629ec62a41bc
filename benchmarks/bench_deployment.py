#!/usr/bin/env python
"""A Deployment of 30 replicas over 3 lab hosts, against the naive way, in the same run.

- cold deploy: one `hostfleet.workloads.deployment` task, against a per-host loop
  of `copy` (unit file) + `systemd_service` tasks for the same 30 units;
- no-op re-run of each;
- a rolling update (maxSurge 3, maxUnavailable 3): module calls per host per step
  (target: one) and observation rounds.

Prints the times and ratios. Run: scripts/bench deployment
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

REPLICAS = 30
PER_HOST = REPLICAS // 3


def deployment(version="1", state="present"):
    args = {"name": "bench", "state": state}
    if state == "present":
        args.update(
            replicas=REPLICAS,
            strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 3}},
            template={
                "metadata": {"labels": {"app": "bench"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "command": ["/bin/sleep", "infinity"], "env": [{"name": "V", "value": version}]}],
                },
            },
        )
    return [{"name": "deployment", "hostfleet.workloads.deployment": args, "run_once": True}]


def main():
    lab = Lab(Path(labctl.up(3)), ["node1", "node2", "node3"])
    timed(lab, deployment(state="absent"), "cleanup")
    timed(lab, naive_tasks(PER_HOST, "absent"), "naive cleanup")
    timed(lab, [{"name": "ping", "ansible.builtin.ping": {}}], "warm-up")

    cold, _unused = timed(lab, deployment(), "deployment")
    naive_cold, _unused = timed(lab, naive_tasks(PER_HOST), "naive")
    noop = statistics.median(timed(lab, deployment(), "deployment no-op")[0] for _unused in range(3))
    naive_noop = statistics.median(timed(lab, naive_tasks(PER_HOST), "naive no-op")[0] for _unused in range(3))
    rolled, run = timed(lab, deployment(version="2"), "rolling update")
    result = run.result("deployment", "node1")
    steps = result["plan"]
    # Per step, how many module calls each node that was called received (the node layer takes a whole step in one call).
    calls_per_host_per_step = [step["node_calls"].count(host) for step in steps for host in set(step["node_calls"])]
    timed(lab, deployment(state="absent"), "cleanup")
    timed(lab, naive_tasks(PER_HOST, "absent"), "naive cleanup")

    print(
        f"cold deploy of {REPLICAS} replicas over 3 hosts: hostfleet {cold:.2f}s, "
        f"naive per-host copy+systemd loop {naive_cold:.2f}s, ratio {naive_cold / cold:.1f}x"
    )
    print(f"no-op re-run: hostfleet {noop:.2f}s, naive {naive_noop:.2f}s, ratio {naive_noop / noop:.1f}x")
    print(
        f"rolling update of {REPLICAS} replicas (maxSurge 3, maxUnavailable 3): {rolled:.2f}s in {len(steps)} steps, "
        f"{result['observation_rounds']} observation rounds; module calls per acting host per step: max {max(calls_per_host_per_step):.0f}, "
        f"mean {statistics.mean(calls_per_host_per_step):.2f} (target: one)"
    )
    return 0 if max(calls_per_host_per_step) <= 1 and naive_cold > cold and naive_noop > noop else 1


if __name__ == "__main__":
    sys.exit(main())
