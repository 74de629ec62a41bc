"""A CronJob's runs on a node of the cluster network: their pods join its pod network, as every other pod does.

The runner (hostfleet-cron) starts the runs' pods between playbook runs; it reads the node's node.json itself.
"""

from __future__ import annotations

import json
import time

import pytest

# It waits for a real minute boundary but judges no latency: not one of the serialized `timing` tests.
pytestmark = pytest.mark.slow

NAME = "it-cron-net"
# Succeeds only inside a pod network namespace: eth0 there has an address of the cluster CIDR (10.244.0.0/16), and
# the pod's resolv.conf is the cluster's (search path, ndots:5). On the host's network both fail.
SCRIPT = "ip -4 -o addr show dev eth0 | grep -q ' inet 10\\.244\\.' && grep -q 'ndots:5' /etc/resolv.conf"


def cronjob(lab, state="present", host_network=None):
    spec = {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": [{"name": "main", "command": ["/bin/sh", "-c", SCRIPT]}]}
    if host_network is not None:
        spec["hostNetwork"] = host_network
    args = {"name": NAME, "state": state}
    if state == "present":
        args.update(schedule="* * * * *", nodes="node1", jobTemplate={"spec": {"backoffLimit": 0, "template": {"spec": spec}}})
    run = lab.run([{"name": "cron", "hostfleet.workloads.cronjob": args, "run_once": True}])
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]


def finished_runs(lab):
    out = lab.ssh("node1", f"for f in /var/lib/hostfleet/cronjobs/{NAME}/runs/*.json; do [ -e $f ] && cat $f && echo; done; true").stdout
    runs = [json.loads(line) for line in out.splitlines() if line.strip()]
    done = []
    for record in runs:
        types = [c["type"] for c in record.get("conditions", []) if c["type"] in ("Complete", "Failed") and c["status"] == "True"]
        if types:
            done.append((record["scheduled"], types[0]))
    return sorted(done)


def wait_for_a_finished_run(lab, after=0.0, timeout=150.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = [r for r in finished_runs(lab) if r[0] > after]
        if runs:
            return runs[0]
        time.sleep(2)
    raise AssertionError(f"no run of {NAME} finished within {timeout:.0f} s: {finished_runs(lab)}")


@pytest.fixture(scope="module")
def network(lab):
    lab.run([{"name": "cron", "hostfleet.workloads.cronjob": {"name": NAME, "state": "absent"}, "run_once": True}])
    run = lab.run([{"name": "net", "hostfleet.workloads.cluster_network": {}}])
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    yield lab
    lab.run([{"name": "cron", "hostfleet.workloads.cronjob": {"name": NAME, "state": "absent"}, "run_once": True}])
    # Other modules expect pods on the host's network.
    lab.run([{"name": "net", "hostfleet.workloads.cluster_network": {"state": "absent"}}])


def test_a_cronjob_run_pod_joins_the_pod_network_and_host_network_keeps_the_host(network):
    lab = network
    cronjob(lab)
    scheduled, outcome = wait_for_a_finished_run(lab)
    assert outcome == "Complete", "the run's pod was not on the pod network (no 10.244 address on eth0, or no cluster resolv.conf)"
    # hostNetwork: true keeps the host's network: the same check fails there.
    cronjob(lab, host_network=True)
    _scheduled, outcome = wait_for_a_finished_run(lab, after=scheduled + 1)
    assert outcome == "Failed"
