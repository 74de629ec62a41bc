"""Exec probes and exec lifecycle hooks of process containers run inside the container (issue 12 item 9).

A process container has its own mount namespace (its volumes are BindPaths=): a readinessProbe `test -f /data/ready`
must see the volume mounted at /data, as its user, in its working directory, with its environment; postStart and
preStop exec hooks write into the volume too. Before the fix the probe ran on the host, where /data is not the
volume, and the pod never became ready.
"""

from __future__ import annotations

import pytest

HOST_DIR = "/var/tmp/hf-it-execns"


def task(lab, module, args, check=False):
    run = lab.run([{"name": "t", f"hostfleet.workloads.{module}": dict(args, wait_timeout=60), "run_once": True}], check=check)
    return run, run.result("t", lab.hosts[0])


@pytest.fixture
def volume_dir(lab):
    for host in lab.hosts:
        # /data on the host must not answer for the volume (it would hide the bug).
        lab.ssh(host, f"rm -rf {HOST_DIR} /data && mkdir -p {HOST_DIR} && chmod 777 {HOST_DIR}")
    yield HOST_DIR
    task(lab, "deployment", {"name": "execns", "state": "absent"})
    for host in lab.hosts:
        lab.ssh(host, f"rm -rf {HOST_DIR}", check=False)


def test_exec_probe_and_hooks_see_the_containers_volume(lab, volume_dir):
    # The file the probe waits for appears a moment after the start, only inside the container's /data.
    probe = 'test -f /data/ready && [ "$(id -u)" = 65534 ] && [ "$PWD" = /data ] && [ "$MARK" = m1 ]'
    template = {
        "metadata": {"labels": {"app": "execns"}},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "volumes": [{"name": "data", "hostPath": {"path": volume_dir}}],
            "containers": [
                {
                    "name": "main",
                    "command": ["/bin/sh", "-c", "sleep 1; touch /data/ready; exec sleep infinity"],
                    "workingDir": "/data",
                    "env": [{"name": "MARK", "value": "m1"}],
                    "securityContext": {"runAsUser": 65534, "runAsGroup": 65534},
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    "readinessProbe": {"exec": {"command": ["/bin/sh", "-c", probe]}, "periodSeconds": 1},
                    "lifecycle": {
                        "postStart": {"exec": {"command": ["/bin/sh", "-c", 'echo "$MARK $(id -u)" > /data/poststart']}},
                        "preStop": {"exec": {"command": ["/bin/sh", "-c", 'echo "$MARK $(id -u)" > /data/prestop']}},
                    },
                }
            ],
        },
    }
    run, res = task(lab, "deployment", {"name": "execns", "replicas": 1, "template": template})
    assert run.rc == 0 and res["status"]["readyReplicas"] == 1, run.stdout[-3000:]
    node = res["pods"][0]["node"]
    assert lab.ssh(node, f"cat {volume_dir}/poststart").stdout == "m1 65534\n"
    assert lab.ssh(node, "test -e /data/ready || echo absent").stdout == "absent\n"  # on the host: not the volume

    run, res = task(lab, "deployment", {"name": "execns", "state": "absent"})
    assert run.rc == 0, run.stdout[-3000:]
    assert lab.ssh(node, f"cat {volume_dir}/prestop").stdout == "m1 65534\n"
    assert lab.ssh(node, "test -e /data/ready || echo absent").stdout == "absent\n"  # on the host: not the volume
