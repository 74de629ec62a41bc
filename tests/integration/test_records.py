"""Typed records on the lab's 3 real hosts: a record written by the previous release (schema 1) is taken over by
this one without restarting any pod, and rewritten in this release's schema (issue 13)."""

from __future__ import annotations

import base64
import json

import pytest

NAME = "recs"
OWNERS = "/var/lib/hostfleet/owners"


def template():
    return {
        "metadata": {"labels": {"app": NAME}},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "main", "command": ["/bin/sleep", "infinity"]}]},
    }


ARGS = {
    "deployment": {"replicas": 2, "minReadySeconds": 1},
    "statefulset": {"replicas": 2, "minReadySeconds": 1, "serviceName": NAME, "podManagementPolicy": "Parallel"},
}


def task(lab, module, **extra):
    args = {"name": NAME, "selector": {"matchLabels": {"app": NAME}}, "template": template(), "wait_timeout": 120, **ARGS[module], **extra}
    run = lab.run([{"name": "it", f"hostfleet.workloads.{module}": args, "run_once": True}])
    assert run.rc == 0, run.stdout[-3000:]
    return run.result("it", lab.hosts[0])


def records(lab, module):
    return {host: json.loads(lab.ssh(host, f"cat {OWNERS}/{module}.{NAME}.json").stdout) for host in lab.hosts}


def main_pids(lab):
    """{unit: (host, MainPID)} of every running container of the workload, as systemd has them."""
    pids = {}
    for host in lab.hosts:
        out = lab.ssh(host, f"systemctl list-units 'hf-{NAME}-*.main.service' --state=active --no-legend --plain | awk '{{print $1}}'", check=False).stdout
        for unit in out.split():
            pids[unit] = (host, int(lab.ssh(host, f"systemctl show -p MainPID --value {unit}").stdout.strip()))
    return pids


def as_schema_1(record, module):
    """The record as the previous release wrote it (tests/unit/controllers/fixtures/records/*-v1-*.json)."""
    old = dict(record, schema=1)
    if module == "deployment":
        del old["min_ready_seconds"]
    else:
        old["minReadySeconds"] = old.pop("min_ready_seconds")
        old["current_revision"] = old.pop("stable_revision")
    return old


@pytest.mark.parametrize("module", sorted(ARGS))
def test_a_record_of_the_previous_release_is_taken_over_without_restarting_a_pod(lab, module):
    lab.run([{"name": "cleanup", f"hostfleet.workloads.{module}": {"name": NAME, "state": "absent"}, "run_once": True}])
    try:
        first = task(lab, module)
        assert first["changed"] and not first.get("failed"), first
        written = records(lab, module)
        pids = main_pids(lab)
        assert len(pids) == 2, pids
        for host, record in written.items():
            assert record["schema"] == 2 and record["min_ready_seconds"] == 1, (host, record)
            old = base64.b64encode(json.dumps(as_schema_1(record, module)).encode()).decode()
            lab.ssh(host, f"echo {old} | base64 -d > {OWNERS}/{module}.{NAME}.json")

        again = task(lab, module)
        assert not again.get("failed"), again
        assert main_pids(lab) == pids, "no pod restarted"
        for host, record in records(lab, module).items():
            assert record["schema"] == 2 and record["min_ready_seconds"] == 1, (host, record)
            assert record["generation"] == written[host]["generation"], "the same spec is the same generation"
            if module == "statefulset":
                assert record["stable_revision"] == written[host]["stable_revision"] and "current_revision" not in record
            else:
                assert record["current_hash"] == written[host]["current_hash"]
        # Rewritten once: the next run is a no-op.
        assert not task(lab, module)["changed"]
    finally:
        lab.run([{"name": "cleanup", f"hostfleet.workloads.{module}": {"name": NAME, "state": "absent"}, "run_once": True}])
