"""StatefulSets over the lab's 3 real hosts: identities pinned to their volumes, ordered start, retention, node loss."""

from __future__ import annotations

import pytest

from lab import labctl

NAME = "web"


def sts(lab, replicas=3, version="1", state="present", **extra):
    args = {"name": NAME, "state": state}
    if state == "present":
        args.update(
            replicas=replicas,
            volumeClaimTemplates=[{"metadata": {"name": "data"}}],
            template={
                "metadata": {"labels": {"app": NAME}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "main",
                            # Records when each start happened (on the host's clock, shared by all lab hosts).
                            "command": ["/bin/sh", "-c", "date +%s.%N > /tmp/started-$HOSTNAME; exec sleep infinity"],
                            "env": [{"name": "VERSION", "value": version}],
                            "readinessProbe": {"exec": {"command": ["/bin/sh", "-c", "sleep 0.5"]}, "periodSeconds": 1},
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        }
                    ],
                },
            },
            wait_timeout=180,
        )
    args.update(extra)
    run = lab.run([{"name": "sts", "hostfleet.workloads.statefulset": args, "run_once": True}])
    return run, run.result("sts", lab.hosts[0])


def placement(result):
    return {p["name"]: p["node"] for p in result["pods"] if p["phase"] == "Running"}


def volume_file(lab, node, claim):
    return lab.ssh(node, f"cat /var/lib/hostfleet/volumes/{claim}/file 2>/dev/null", check=False).stdout.strip()


@pytest.fixture(scope="module")
def fleet(lab):
    def cleanup():
        for host in (h["name"] for h in labctl.status() if not h["running"]):
            labctl.start(host)
        sts(lab, state="absent")
        for host in lab.hosts:
            lab.ssh(host, f"rm -rf /var/lib/hostfleet/volumes/data-{NAME}-* /tmp/started-{NAME}-*", check=False)

    cleanup()
    yield lab
    cleanup()


def test_ordered_ready_start_and_identity(fleet):
    run, res = sts(fleet)
    assert run.rc == 0, run.stdout[-3000:]
    pods = placement(res)
    assert sorted(pods) == ["web-0", "web-1", "web-2"] and len(set(pods.values())) == 3
    starts = {name: float(fleet.ssh(node, f"cat /tmp/started-{name}").stdout) for name, node in pods.items()}
    # OrderedReady: each identity starts only after the previous one is ready (its probe takes 0.5 s).
    assert starts["web-0"] + 0.5 < starts["web-1"] and starts["web-1"] + 0.5 < starts["web-2"], starts
    for name, node in pods.items():
        env = fleet.ssh(node, f"systemctl show -p MainPID --value hf-{name}.main.service").stdout.strip()
        assert f"HOSTNAME={name}" in fleet.ssh(node, f"tr '\\0' '\\n' < /proc/{env}/environ").stdout.split()
    run, res = sts(fleet)
    assert run.rc == 0 and res["changed"] is False


def test_data_follows_the_identity(fleet):
    run, res = sts(fleet)
    node = placement(res)["web-1"]
    fleet.ssh(node, "echo precious > /var/lib/hostfleet/volumes/data-web-1/file")
    # A pod restart.
    fleet.ssh(node, "systemctl restart hf-web-1.main.service")
    assert volume_file(fleet, node, "data-web-1") == "precious"
    # A template update (highest ordinal first) keeps every identity on its node.
    run, res = sts(fleet, version="2")
    assert run.rc == 0, run.stdout[-3000:]
    assert placement(res)["web-1"] == node and res["status"]["updatedReplicas"] == 3
    # Scale to 1 and back to 3: same node, same data (Retain is the default).
    run, res = sts(fleet, replicas=1, version="2")
    assert run.rc == 0 and sorted(placement(res)) == ["web-0"]
    assert volume_file(fleet, node, "data-web-1") == "precious"
    run, res = sts(fleet, replicas=3, version="2")
    assert run.rc == 0 and placement(res)["web-1"] == node
    assert fleet.ssh(node, "cat /data/file", check=False).returncode != 0, "the volume is bind-mounted, not the host's /data"
    pid = fleet.ssh(node, "systemctl show -p MainPID --value hf-web-1.main.service").stdout.strip()
    assert fleet.ssh(node, f"cat /proc/{pid}/root/data/file 2>/dev/null || nsenter -t {pid} -m cat /data/file").stdout.strip() == "precious"


def test_node_down_identity_is_not_started_elsewhere(fleet):
    run, res = sts(fleet, version="2")
    node = placement(res)["web-2"]
    labctl.stop(node)
    try:
        run, res = sts(fleet, version="2", wait_timeout=20)
        assert "web-2" not in placement(res), "an identity must never run twice"
        assert any("web-2" in line for line in res["waiting_for"] + [p["reason"] for p in res["pending"]]), res
        others = [h for h in fleet.hosts if h != node]
        for host in others:
            assert fleet.ssh(host, "systemctl is-active hf-web-2.main.service", check=False).stdout.strip() != "active"
    finally:
        labctl.start(node)
    run, res = sts(fleet, version="2")
    assert run.rc == 0 and placement(res)["web-2"] == node


def test_delete_with_retain_keeps_data_and_delete_removes_only_this_sets_volumes(fleet):
    run, res = sts(fleet, version="2")
    nodes = placement(res)
    for name, node in nodes.items():
        fleet.ssh(node, f"echo {name} > /var/lib/hostfleet/volumes/data-{name}/file")
    fleet.ssh(nodes["web-0"], "mkdir -p /var/lib/hostfleet/volumes/other-claim && echo keep > /var/lib/hostfleet/volumes/other-claim/file")
    try:
        run, res = sts(fleet, state="absent")
        assert run.rc == 0 and res["changed"]
        for name, node in nodes.items():
            assert volume_file(fleet, node, f"data-{name}") == name, "Retain keeps the data"
        run, res = sts(fleet, version="2")
        assert placement(res) == nodes, "identities come back to the nodes that hold their data"
        run, res = sts(fleet, state="absent", persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete"})
        assert run.rc == 0, run.stdout[-3000:]
        assert {n: sorted(v) for n, v in res["volumes_deleted"].items()} == {node: [f"data-{name}"] for name, node in nodes.items()}
        for name, node in nodes.items():
            assert fleet.ssh(node, f"test -e /var/lib/hostfleet/volumes/data-{name}", check=False).returncode != 0
        assert volume_file(fleet, nodes["web-0"], "other-claim") == "keep", "Delete removes only this set's volumes"
    finally:
        fleet.ssh(nodes["web-0"], "rm -rf /var/lib/hostfleet/volumes/other-claim", check=False)


def test_check_mode_and_bad_input_touch_nothing(fleet):
    # Container units only: probe services flip between active and inactive every period by design.
    snapshot = (
        "ls /etc/systemd/system /var/lib/hostfleet/owners /var/lib/hostfleet/volumes 2>/dev/null; "
        "systemctl list-units --all --plain --no-legend 'hf-*.main.service'"
    )
    before = {h: fleet.ssh(h, snapshot, check=False).stdout for h in fleet.hosts}
    run = fleet.run(
        [
            {
                "name": "sts",
                "hostfleet.workloads.statefulset": {
                    "name": "dry",
                    "replicas": 2,
                    "template": {"metadata": {"labels": {"app": "dry"}}, "spec": {"containers": [{"name": "main", "command": ["/bin/sleep", "infinity"]}]}},
                },
                "run_once": True,
            }
        ],
        check=True,
    )
    res = run.result("sts", "node1")
    assert run.rc == 0 and res["changed"] and res["plan"], res
    assert {h: fleet.ssh(h, snapshot, check=False).stdout for h in fleet.hosts} == before
    run, res = sts(fleet, podManagementPolicy="Whenever")
    assert run.rc != 0 and res["msg"], res
    run, res = sts(fleet, volumeClaimTemplates=[{"metadata": {"name": "Not_A_Label"}}])
    assert run.rc != 0 and "volumeClaimTemplates" in res["field"], res
    assert {h: fleet.ssh(h, snapshot, check=False).stdout for h in fleet.hosts} == before
