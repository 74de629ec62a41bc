"""Faults on the node side (issue 12): a converge that fails half-way is finished by the next one (item 7); a host
that comes back after its pods were replaced does not serve them again, one back from a short reboot does (item 3)."""

from __future__ import annotations

import time

import pytest

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import fence
from integration.sampler import AvailabilitySampler, http_template
from lab import labctl

# Judged against budgets and latencies: one at a time, with the other `timing` tests (tests/lab/xdist_groups.py).
pytestmark = pytest.mark.xdist_group("timing")

NODE = "node1"
FAULT_DIR = "/tmp/hf-fault"
# A systemctl that fails ONE call of the given verb as systemd does when D-Bus is away, then passes everything through.
WRAPPER = """#!/bin/sh
if [ "$1" = "{verb}" ] && [ ! -e {dir}/failed-once ]; then
    touch {dir}/failed-once
    echo "Failed to {verb}: Transport endpoint is not connected" >&2
    exit 1
fi
exec /usr/bin/systemctl "$@"
"""


def pod_task(pods, fault=False):
    task = {"name": "pods", "hostfleet.workloads.pod": {"owner": "half", "owner_kind": "ReplicaSet", "pods": pods}}
    if fault:
        task["environment"] = {"PATH": f"{FAULT_DIR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    return task


def sleeper(name, seconds):
    return {"name": name, "labels": {"app": "half"}, "spec": {"containers": [{"name": "main", "command": ["/bin/sleep", str(seconds)]}]}}


def main_args(lab, pod):
    """The argv of the pod's running container, as the kernel has it (empty when it does not run)."""
    out = lab.ssh(
        NODE, f"p=$(systemctl show -p MainPID --value hf-{pod}.main.service); [ \"$p\" != 0 ] && tr '\\0' ' ' < /proc/$p/cmdline", check=False
    ).stdout
    return out.strip()


@pytest.mark.parametrize("verb", ["start", "daemon-reload"])
def test_a_half_failed_converge_is_finished_by_the_next(lab, verb):
    lab.ssh(NODE, f"rm -rf {FAULT_DIR}; mkdir -p {FAULT_DIR}/bin")
    try:
        lab.ssh(NODE, f"cat > {FAULT_DIR}/bin/systemctl <<'EOF'\n{WRAPPER.format(verb=verb, dir=FAULT_DIR)}EOF\nchmod 755 {FAULT_DIR}/bin/systemctl")
        run = lab.run([pod_task([sleeper("half-a", 1000)])], hosts=NODE)
        assert run.rc == 0, run.stdout[-3000:]
        assert main_args(lab, "half-a") == "/bin/sleep 1000"
        # One call: pod a gets new args (a restart), pod b is new (a start); one systemctl call fails.
        run = lab.run([pod_task([sleeper("half-a", 2000), sleeper("half-b", 3000)], fault=True)], hosts=NODE)
        assert run.rc != 0 and lab.ssh(NODE, f"test -e {FAULT_DIR}/failed-once", check=False).returncode == 0, run.stdout[-3000:]
        # The next converge, with the same pods: the files written by the failed one are there, so only the journal
        # tells what is left to do.
        run = lab.run([pod_task([sleeper("half-a", 2000), sleeper("half-b", 3000)])], hosts=NODE)
        assert run.rc == 0, run.stdout[-3000:]
        assert run.result("pods", NODE)["changed"]
        assert main_args(lab, "half-a") == "/bin/sleep 2000"
        assert main_args(lab, "half-b") == "/bin/sleep 3000"
        run = lab.run([pod_task([sleeper("half-a", 2000), sleeper("half-b", 3000)])], hosts=NODE)
        assert not run.result("pods", NODE)["changed"]
    finally:
        lab.ssh(NODE, f"rm -rf {FAULT_DIR}", check=False)
        lab.run([{"name": "clean", "hostfleet.workloads.pod": {"owner": "half", "owner_kind": "ReplicaSet", "state": "absent"}}], hosts=NODE)


# -- item 3: a host that comes back ------------------------------------------------------------------------

REPLICAS, SURGE = 6, 1
BACK = "node2"
GRACE = 15  # node_grace_seconds of these runs: the control plane's wait before replacing, the node's eviction timeout
REBOOT_GRACE = 120


def deployment(name, version, grace=GRACE, **extra):
    args = {
        "name": name,
        "replicas": REPLICAS,
        "template": http_template(name, version=version, ready_after=0.3),
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": SURGE, "maxUnavailable": 1}},
        "node_grace_seconds": grace,
        "wait_timeout": 120,
    }
    args.update(extra)
    return {"name": "deploy", "hostfleet.workloads.deployment": args, "run_once": True}


def remove(name):
    return {"name": "remove", "hostfleet.workloads.deployment": {"name": name, "state": "absent"}, "run_once": True}


def node_pods(lab, name):
    """{pod: (phase, reason)} of the Deployment's pods as the returning node reports them."""
    run = lab.run([{"name": "info", "hostfleet.workloads.pod_info": {"owner": name, "owner_kind": "Deployment"}}], hosts=BACK)
    return {p["name"]: (p["phase"], p["reason"]) for p in run.result("info", BACK)["pods"]}


@pytest.fixture
def running_host(lab):
    yield lab
    labctl.start(BACK)  # whatever the test did to it


@pytest.mark.slow
def test_a_host_back_after_its_pods_were_replaced_does_not_serve_them(running_host):
    lab, name = running_host, "fenced"
    try:
        run = lab.run([deployment(name, "v1")])
        assert run.rc == 0, run.stdout[-3000:]
        stopped = time.monotonic()
        labctl.stop(BACK)
        # The rollout of v2 replaces node2's pods (after the grace) on the others: node2 keeps two of v1.
        run = lab.run([deployment(name, "v2")])
        assert run.rc == 0, run.stdout[-3000:]
        time.sleep(max(0.0, stopped + GRACE + 2 * fence.HEARTBEAT_SECONDS - time.monotonic()))
        with AvailabilitySampler(dict(labctl.hosts()), prefix=f"{name}-", floor=REPLICAS - 1, ceiling=REPLICAS + SURGE) as sampler:
            labctl.start(BACK)
            time.sleep(10)
            held = node_pods(lab, name)
            # The control plane's next run removes them; it never lets them serve either.
            run = lab.run([deployment(name, "v2")])
            assert run.rc == 0, run.stdout[-3000:]
            time.sleep(2)
        report = sampler.report
        assert held and set(held.values()) == {("Pending", "NodeFenced")}, held
        report.assert_budget()
        assert not [s for s in report.samples if s.versions().get("v1")], "a replaced pod of the old revision served again"
        assert node_pods(lab, name) == {} or all(p[0] == "Running" for p in node_pods(lab, name).values())
    finally:
        labctl.start(BACK)
        lab.run([remove(name)])


@pytest.mark.slow
def test_a_host_back_from_a_short_reboot_serves_its_pods_at_once(running_host):
    lab, name = running_host, "rebooted"
    try:
        # A reboot here takes 10-40 s (the lab shares 2 cores): a grace well above it.
        run = lab.run([deployment(name, "v1", grace=REBOOT_GRACE)])
        assert run.rc == 0, run.stdout[-3000:]
        mine = set(node_pods(lab, name))
        assert mine
        with AvailabilitySampler(dict(labctl.hosts()), prefix=f"{name}-") as sampler:
            began = time.monotonic()
            labctl.stop(BACK)
            labctl.start(BACK)
            assert time.monotonic() - began < REBOOT_GRACE - fence.HEARTBEAT_SECONDS
            # No run: the host starts its own pods again by itself.
            back = sampler.wait_for(lambda s: mine <= {p for p, v in s.pods.items() if v["ready"]}, timeout=30)
        assert back.ready == REPLICAS
    finally:
        lab.run([remove(name)])
