"""Faults on the node side (issue 12): a converge that fails half-way is finished by the next one (item 7); a host
that comes back after its pods were replaced does not serve them again, one back from a short reboot does (item 3)."""

from __future__ import annotations

import pytest

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
