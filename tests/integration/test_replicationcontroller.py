"""ReplicationController (core v1) on the lab's 3 hosts: from a manifest through apply, then as a module, systemd
being the judge: its pods run, a template change restarts none of them (no rollout), 3 -> 1 stops two, re-runs
change nothing."""

from __future__ import annotations

import pytest

NAME = "rc-web"
LABELS = {"app": NAME}


def template(message):
    return {
        "metadata": {"labels": dict(LABELS)},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "command": ["/bin/sh", "-c", f"echo {message}; exec /bin/sleep infinity"]}],
        },
    }


def manifest(replicas, message):
    return {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": NAME, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": dict(LABELS), "template": template(message)},
    }


def apply(lab, replicas, message):
    run = lab.run([{"name": "apply", "hostfleet.workloads.apply": {"definition": manifest(replicas, message), "wait_timeout": 120}, "run_once": True}])
    assert run.rc == 0, run.stdout[-3000:]
    (obj,) = run.result("apply", lab.hosts[0])["objects"]
    return obj


def module(lab, **args):
    run = lab.run([rc_task(**args)])
    assert run.rc == 0, run.stdout[-3000:]
    return run.result("rc", lab.hosts[0])


def rc_task(**args):
    return {"name": "rc", "hostfleet.workloads.replicationcontroller": {"name": NAME, "wait_timeout": 120, **args}, "run_once": True}


def main_pids(lab):
    """{pod: MainPID} of every running pod of the ReplicationController, as systemd has them on each host."""
    pids = {}
    for host in lab.hosts:
        out = lab.ssh(host, f"systemctl list-units 'hf-{NAME}-*.main.service' --state=active --no-legend --plain | awk '{{print $1}}'", check=False).stdout
        for unit in out.split():
            pid = lab.ssh(host, f"systemctl show -p MainPID --value {unit}").stdout.strip()
            pods = unit[len("hf-") : -len(".main.service")]
            pids[pods] = (host, int(pid))
    return pids


@pytest.fixture
def fleet(lab):
    module(lab, state="absent")
    yield lab
    module(lab, state="absent")


def test_from_a_manifest_and_as_a_module_no_rollout_scale_and_idempotent(fleet):
    obj = apply(fleet, 3, "v1")
    assert obj["changed"] and obj["status"]["availableReplicas"] == 3, obj
    running = main_pids(fleet)
    assert len(running) == 3 and all(pid > 0 for _host, pid in running.values())
    # metadata.namespace: default is the object's identity (issue 14), no longer an ignored field.
    assert obj["ignored_fields"] == [] and obj["namespace"] == "default"

    # A template change through apply: a new revision for new pods, not one running pod restarted.
    obj = apply(fleet, 3, "v2")
    assert obj["changed"] and obj["plan"] == [], obj
    assert main_pids(fleet) == running

    # The same object as a module (the selector defaulted to the template's labels, as the manifest had it).
    res = module(fleet, replicas=1, template=template("v2"))
    assert res["changed"] and res["status"]["replicas"] == 1 and res["status"]["availableReplicas"] == 1, res
    left = main_pids(fleet)
    assert len(left) == 1 and set(left.items()) <= set(running.items()), "scale-down stops pods; the one kept was not restarted"

    info_task = {"name": "info", "hostfleet.workloads.workload_info": {"kind": ["ReplicationController"], "name": NAME}, "run_once": True}
    run = fleet.run([rc_task(replicas=1, template=template("v2")), info_task])
    assert run.rc == 0, run.stdout[-3000:]
    assert run.result("rc", fleet.hosts[0])["changed"] is False, "a re-run changes nothing"
    (workload,) = run.result("info", fleet.hosts[0])["workloads"]
    assert (workload["kind"], workload["name"], workload["desired"], workload["ready"]) == ("ReplicationController", NAME, 1, 1), workload
