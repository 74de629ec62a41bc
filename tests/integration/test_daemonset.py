"""DaemonSets over the lab's 3 real hosts: labelled subsets, nodes gaining a label, rolling update within budget, OnDelete."""

from __future__ import annotations

import pytest

NAME = "agent"
LABELS = {"node1": {"hostfleet_node_labels": {"gpu": "true"}}, "node2": {"hostfleet_node_labels": {"gpu": "true"}}, "node3": {}}


def ds(lab, version="1", labels=None, state="present", **extra):
    args = {"name": NAME, "state": state}
    if state == "present":
        args.update(
            template={
                "metadata": {"labels": {"app": NAME}},
                "spec": {
                    "nodeSelector": {"gpu": "true"},
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "main",
                            "command": ["/bin/sleep", "infinity"],
                            "env": [{"name": "VERSION", "value": version}],
                            "readinessProbe": {"exec": {"command": ["/bin/true"]}, "periodSeconds": 1},
                        }
                    ],
                },
            },
            wait_timeout=120,
        )
    args.update(extra)
    run = lab.run([{"name": "ds", "hostfleet.workloads.daemonset": args, "run_once": True}], host_vars=labels or LABELS)
    return run, run.result("ds", lab.hosts[0])


def versions(lab):
    """What systemd runs on each host: the DaemonSet's pods' VERSION, read from the processes."""
    found = {}
    for host in lab.hosts:
        out = lab.ssh(
            host,
            f"for u in $(systemctl list-units --state=running --plain --no-legend 'hf-{NAME}-*.main.service' | cut -d' ' -f1); do "
            "p=$(systemctl show -p MainPID --value $u); tr '\\0' '\\n' < /proc/$p/environ | grep ^VERSION=; done",
            check=False,
        ).stdout
        found[host] = sorted(line.split("=", 1)[1] for line in out.split())
    return found


@pytest.fixture(scope="module")
def fleet(lab):
    ds(lab, state="absent")
    yield lab
    ds(lab, state="absent")


def test_runs_on_exactly_the_labelled_nodes_and_follows_labels(fleet):
    run, res = ds(fleet)
    assert run.rc == 0, run.stdout[-3000:]
    assert versions(fleet) == {"node1": ["1"], "node2": ["1"], "node3": []}
    assert res["status"]["desiredNumberScheduled"] == 2 and res["status"]["numberAvailable"] == 2
    run, res = ds(fleet)
    assert run.rc == 0 and res["changed"] is False

    everywhere = {h: {"hostfleet_node_labels": {"gpu": "true"}} for h in fleet.hosts}
    run, res = ds(fleet, labels=everywhere)
    assert run.rc == 0 and versions(fleet) == {"node1": ["1"], "node2": ["1"], "node3": ["1"]}

    run, res = ds(fleet, labels=dict(everywhere, node1={}))
    assert run.rc == 0 and versions(fleet) == {"node1": [], "node2": ["1"], "node3": ["1"]}
    run, res = ds(fleet)
    assert run.rc == 0 and versions(fleet) == {"node1": ["1"], "node2": ["1"], "node3": []}


def test_rolling_update_one_node_at_a_time(fleet):
    run, res = ds(fleet, version="2", updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}})
    assert run.rc == 0, run.stdout[-3000:]
    assert versions(fleet) == {"node1": ["2"], "node2": ["2"], "node3": []}
    # maxUnavailable 1 over 2 nodes: never both replaced in the same step.
    for step in res["plan"]:
        assert len(step["stop"]) <= 1, res["plan"]


def test_on_delete_replaces_only_deleted_pods(fleet):
    run, res = ds(fleet, version="3", updateStrategy={"type": "OnDelete"})
    assert run.rc == 0, run.stdout[-3000:]
    assert versions(fleet) == {"node1": ["2"], "node2": ["2"], "node3": []}
    victim = next(p["name"] for p in res["pods"] if p["node"] == "node1")
    fleet.run([{"name": "delete", "hostfleet.workloads.pod": {"owner": NAME, "owner_kind": "DaemonSet", "prune": False, "remove": [victim]}}], hosts="node1")
    run, res = ds(fleet, version="3", updateStrategy={"type": "OnDelete"})
    assert run.rc == 0 and versions(fleet) == {"node1": ["3"], "node2": ["2"], "node3": []}


def test_check_mode_and_bad_input_touch_nothing(fleet):
    # Container units only: probe services flip between active and inactive every period by design.
    snapshot = "ls /etc/systemd/system /var/lib/hostfleet/owners 2>/dev/null; systemctl list-units --all --plain --no-legend 'hf-*.main.service'"
    before = {h: fleet.ssh(h, snapshot, check=False).stdout for h in fleet.hosts}
    run = fleet.run(
        [
            {
                "name": "ds",
                "hostfleet.workloads.daemonset": {
                    "name": NAME,
                    "template": {
                        "metadata": {"labels": {"app": NAME}},
                        "spec": {
                            "nodeSelector": {"gpu": "true"},
                            "containers": [{"name": "main", "command": ["/bin/sleep", "infinity"], "env": [{"name": "VERSION", "value": "4"}]}],
                        },
                    },
                },
                "run_once": True,
            }
        ],
        check=True,
        host_vars=LABELS,
    )
    res = run.result("ds", "node1")
    assert run.rc == 0 and res["changed"] and res["plan"], res
    assert {h: fleet.ssh(h, snapshot, check=False).stdout for h in fleet.hosts} == before
    run, res = ds(fleet, updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}})
    assert run.rc != 0 and "updateStrategy" in res["field"], res
    run, res = ds(fleet, updateStrategy={"type": "Sometimes"})
    assert run.rc != 0 and res["field"].startswith("spec.updateStrategy"), res
    assert {h: fleet.ssh(h, snapshot, check=False).stdout for h in fleet.hosts} == before
