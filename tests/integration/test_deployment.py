"""Deployments over the lab's 3 real hosts: spread, scaling, rolling updates within budget, failures, undo, node loss."""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter

import pytest

from lab import labctl

NAME = "roll"

SAMPLER = r"""
import glob, os, subprocess, sys, time
while True:
    out = subprocess.run(["systemctl", "list-units", "--state=running", "--plain", "--no-legend", "hf-roll-*.main.service"],
                         capture_output=True, text=True).stdout
    running = {line.split()[0][3:-len(".main.service")] for line in out.splitlines() if line.strip()}
    ready = sum(1 for pod in running if os.path.exists(f"/run/hostfleet/pods/{pod}/main/ready"))
    print(len(running), ready, flush=True)
    time.sleep(0.1)
"""


class Sampler:
    """Streams, from every host, how many of the Deployment's pods run and how many are ready; sums them continuously."""

    def __init__(self, hosts):
        self.latest = {}
        self.samples = []
        self.stop = threading.Event()
        self.procs = [
            subprocess.Popen(
                ["ssh", "-F", str(labctl.ssh_config_path()), host, "python3", "-u", "-c", repr_quote(SAMPLER)],
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
            )
            for host in hosts
        ]
        self.threads = [threading.Thread(target=self._read, args=(host, proc), daemon=True) for host, proc in zip(hosts, self.procs, strict=False)]
        self.summer = threading.Thread(target=self._sum, daemon=True)
        for thread in self.threads:
            thread.start()
        while len(self.latest) < len(hosts):
            time.sleep(0.05)
        self.summer.start()

    def _read(self, host, proc):
        for line in proc.stdout:
            running, ready = map(int, line.split())
            self.latest[host] = (running, ready)

    def _sum(self):
        while not self.stop.is_set():
            values = list(self.latest.values())
            self.samples.append((sum(v[0] for v in values), sum(v[1] for v in values)))
            time.sleep(0.05)

    def close(self):
        self.stop.set()
        self.summer.join()
        for proc in self.procs:
            proc.terminate()
        return self.samples


def repr_quote(code):
    return "'" + code.replace("'", "'\"'\"'") + "'"


def template(version, ready_after=0.5, broken=False):
    # Ready when its file exists; a broken version never becomes ready.
    start = "exec sleep infinity" if broken else f"sleep {ready_after}; touch /tmp/ready-$POD_NAME; exec sleep infinity"
    return {
        "metadata": {"labels": {"app": NAME}},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [
                {
                    "name": "main",
                    "command": ["/bin/sh", "-c", start],
                    "env": [{"name": "VERSION", "value": version}],
                    "readinessProbe": {"exec": {"command": ["/bin/sh", "-c", "test -e /tmp/ready-$POD_NAME"]}, "periodSeconds": 1},
                }
            ],
        },
    }


def deploy(lab, replicas=6, version="v1", check=False, diff=False, **extra):
    args = {
        "name": NAME,
        "replicas": replicas,
        "template": template(version, broken=extra.pop("broken", False)),
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
        "wait_timeout": 180,
    }
    args.update(extra)
    run = lab.run([{"name": "deploy", "hostfleet.workloads.deployment": args, "run_once": True}], check=check, diff=diff)
    return run, run.result("deploy", lab.hosts[0])


def spread(result):
    return dict(sorted(Counter(p["node"] for p in result["pods"] if p["phase"] == "Running").items()))


def running_units(lab):
    """What systemd says on each host: the Deployment's running pods per node and their VERSION."""
    found = {}
    for host in lab.hosts:
        out = lab.ssh(
            host,
            "for u in $(systemctl list-units --state=running --plain --no-legend 'hf-roll-*.main.service' | cut -d' ' -f1); do "
            "p=$(systemctl show -p MainPID --value $u); tr '\\0' '\\n' < /proc/$p/environ | grep ^VERSION=; done",
            check=False,
        ).stdout
        found[host] = sorted(line.split("=", 1)[1] for line in out.split())
    return found


@pytest.fixture(scope="module")
def fleet(lab):
    lab.run([{"name": "cleanup", "hostfleet.workloads.deployment": {"name": NAME, "state": "absent"}, "run_once": True}])
    yield lab
    for host in (h["name"] for h in labctl.status() if not h["running"]):
        labctl.start(host)
    lab.run([{"name": "cleanup", "hostfleet.workloads.deployment": {"name": NAME, "state": "absent"}, "run_once": True}])


def test_malformed_spec_fails_before_any_host_is_touched(fleet):
    before = {h: fleet.ssh(h, "ls /etc/systemd/system /var/lib/hostfleet/owners 2>/dev/null", check=False).stdout for h in fleet.hosts}
    bad = template("v1")
    bad["spec"]["containers"][0]["readinessProbe"]["periodSecond"] = 1
    run, res = deploy(fleet, template=bad)
    assert run.rc != 0 and res["field"] == "spec.template.spec.containers[0].readinessProbe.periodSecond", res
    run, res = deploy(fleet, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}})
    assert run.rc != 0 and "maxUnavailable" in res["msg"], res
    run, res = deploy(fleet, name="Not_A_Label")
    assert run.rc != 0 and res["field"] == "name"
    assert {h: fleet.ssh(h, "ls /etc/systemd/system /var/lib/hostfleet/owners 2>/dev/null", check=False).stdout for h in fleet.hosts} == before


def test_check_mode_returns_the_plan_and_touches_nothing(fleet):
    run, res = deploy(fleet, check=True, diff=True)
    assert run.rc == 0, run.stdout[-2000:]
    assert res["changed"] and res["plan"], res
    starts = Counter(node for wave in res["plan"] for node, pods in wave["start"].items() for _unused in pods)
    assert starts == {"node1": 2, "node2": 2, "node3": 2}
    assert all(running == [] for running in running_units(fleet).values())


def test_six_replicas_spread_then_scale(fleet):
    run, res = deploy(fleet, replicas=6)
    assert run.rc == 0, run.stdout[-3000:]
    assert res["status"]["availableReplicas"] == 6 and res["revision"] == 1
    assert spread(res) == {"node1": 2, "node2": 2, "node3": 2}
    assert running_units(fleet) == {h: ["v1", "v1"] for h in fleet.hosts}

    run, res = deploy(fleet, replicas=6)
    assert run.rc == 0 and res["changed"] is False, "a re-run must change nothing"

    run, res = deploy(fleet, replicas=9)
    assert run.rc == 0 and spread(res) == {"node1": 3, "node2": 3, "node3": 3}
    run, res = deploy(fleet, replicas=3)
    assert run.rc == 0 and spread(res) == {"node1": 1, "node2": 1, "node3": 1}
    assert {h: len(v) for h, v in running_units(fleet).items()} == dict.fromkeys(fleet.hosts, 1)
    run, res = deploy(fleet, replicas=6)
    assert run.rc == 0 and spread(res) == {"node1": 2, "node2": 2, "node3": 2}


def test_rolling_update_never_goes_below_budget(fleet):
    sampler = Sampler(fleet.hosts)
    try:
        run, res = deploy(fleet, replicas=6, version="v2")
    finally:
        samples = sampler.close()
    assert run.rc == 0, run.stdout[-3000:]
    assert res["revision"] == 2 and res["status"]["updatedReplicas"] == 6
    assert running_units(fleet) == {h: ["v2", "v2"] for h in fleet.hosts}
    assert len(samples) > 20
    # replicas 6, maxUnavailable 1, maxSurge 1: at least 5 ready, at most 7 running, at every sample.
    assert min(ready for _running, ready in samples) >= 5, samples
    assert max(running for running, _ready in samples) <= 7, samples


def test_undo_to_the_previous_revision(fleet):
    run, res = deploy(fleet, version="v2")
    assert run.rc == 0 and res["revision"] == 2
    run, res = deploy(fleet, version="v2", rollback_to=0)
    assert run.rc == 0, run.stdout[-3000:]
    assert res["revision"] == 3, "an undo makes the old template a new revision, as kubectl does"
    assert running_units(fleet) == {h: ["v1", "v1"] for h in fleet.hosts}
    run, res = deploy(fleet, version="v2")
    assert run.rc == 0 and res["changed"] is False, "the undo holds while the requested template stays the same"


def test_broken_version_stops_at_budget_and_reports_deadline(fleet):
    run, res = deploy(fleet, version="v3", broken=True, progressDeadlineSeconds=8)
    assert run.rc != 0
    progressing = next(c for c in res["status"]["conditions"] if c["type"] == "Progressing")
    assert progressing["status"] == "False" and progressing["reason"] == "ProgressDeadlineExceeded"
    versions = running_units(fleet)
    all_versions = Counter(v for vs in versions.values() for v in vs)
    # maxUnavailable 1, maxSurge 1: at most 2 broken pods started, at least 5 of the old ones kept.
    assert all_versions["v1"] >= 5 and all_versions["v3"] <= 2, versions


def test_auto_rollback_returns_to_the_previous_revision(fleet):
    run, res = deploy(fleet, version="v3", broken=True, progressDeadlineSeconds=8, auto_rollback=True)
    assert run.rc != 0 and "roll" in res["msg"].lower()
    assert running_units(fleet) == {h: ["v1", "v1"] for h in fleet.hosts}
    assert res["status"]["availableReplicas"] == 6


def test_node_down_moves_its_replicas_and_back_serves_none_of_them(fleet):
    # A short grace keeps the test short: the grace itself is tested in test_faults_unreachable.py.
    run, res = deploy(fleet, version="v1", node_grace_seconds=5)
    assert run.rc == 0 and spread(res) == {"node1": 2, "node2": 2, "node3": 2}
    labctl.stop("node3")
    try:
        run, res = deploy(fleet, version="v1", node_grace_seconds=5)
        assert run.rc == 0, run.stdout[-3000:]
        assert res["nodes"]["node3"]["ready"] is False
        assert {k: v for k, v in spread(res).items() if k != "node3"} == {"node1": 3, "node2": 3}
        assert {h: len(v) for h, v in running_units(fleet).items() if h != "node3"} == {"node1": 3, "node2": 3}
    finally:
        labctl.start("node3")
    # Back after its replicas were replaced (away longer than the grace), node3 holds its old pods (NodeFenced)
    # instead of serving them next to their replacements.
    fleet.ssh("node3", "systemctl is-system-running --wait", check=False, timeout=90)
    time.sleep(3)
    assert running_units(fleet)["node3"] == [], "a host back after its pods were replaced must not serve them"
    run, res = deploy(fleet, version="v1", node_grace_seconds=5)
    assert run.rc == 0, run.stdout[-3000:]
    # The held pods were the surplus: removed, and the replacements stay where they are (no rebalancing, as Kubernetes).
    assert {k: v for k, v in spread(res).items() if v} == {"node1": 3, "node2": 3}
    assert {h: len(v) for h, v in running_units(fleet).items()} == {"node1": 3, "node2": 3, "node3": 0}


def test_node_selector_on_inventory_labels_and_nodes_pattern(fleet):
    labels = {
        "node1": {"hostfleet_node_labels": {"disk": "ssd"}},
        "node2": {"hostfleet_node_labels": {"disk": "ssd"}},
        "node3": {"hostfleet_node_labels": {"disk": "hdd"}},
    }
    selected = template("v1")
    selected["spec"]["nodeSelector"] = {"disk": "ssd"}
    args = {"name": "picky", "replicas": 4, "template": selected, "wait_timeout": 120}
    # Other owners' pods count against a node's capacity: start from nodes without any.
    fleet.run([{"name": "cleanup", "hostfleet.workloads.deployment": {"name": NAME, "state": "absent"}, "run_once": True}])
    try:
        run = fleet.run([{"name": "deploy", "hostfleet.workloads.deployment": args, "run_once": True}], host_vars=labels)
        res = run.result("deploy", "node1")
        assert run.rc == 0, run.stdout[-3000:]
        assert spread(res) == {"node1": 2, "node2": 2}

        # A replica that fits nowhere is Pending with a reason, not dropped.
        run = fleet.run(
            [{"name": "deploy", "hostfleet.workloads.deployment": dict(args, replicas=5, wait_timeout=15), "run_once": True}],
            host_vars={h: {"hostfleet_node_labels": {"disk": "ssd"}, "hostfleet_node_capacity": {"pods": 2}} if h != "node3" else v for h, v in labels.items()},
        )
        res = run.result("deploy", "node1")
        assert spread(res) == {"node1": 2, "node2": 2}
        assert res["pending"] and res["pending"][0]["count"] == 1 and res["pending"][0]["reason"], res["pending"]

        # `nodes` narrows the fleet to a pattern among the play's hosts.
        run = fleet.run(
            [
                {
                    "name": "deploy",
                    "hostfleet.workloads.deployment": {"name": "narrow", "replicas": 4, "template": template("v1"), "nodes": "lab:!node1"},
                    "run_once": True,
                }
            ]
        )
        res = run.result("deploy", "node1")
        assert run.rc == 0 and spread(res) == {"node2": 2, "node3": 2} and sorted(res["nodes"]) == ["node2", "node3"]
    finally:
        for name in ("picky", "narrow"):
            fleet.run([{"name": "cleanup", "hostfleet.workloads.deployment": {"name": name, "state": "absent"}, "run_once": True}])


def test_replicaset_keeps_n_pods(fleet):
    args = {"name": "plain", "replicas": 3, "template": template("v1")}
    try:
        run = fleet.run([{"name": "rs", "hostfleet.workloads.replicaset": args, "run_once": True}])
        res = run.result("rs", "node1")
        assert run.rc == 0, run.stdout[-3000:]
        assert spread(res) == {"node1": 1, "node2": 1, "node3": 1}
        victim = next(p for p in res["pods"] if p["node"] == "node2")
        fleet.ssh("node2", f"systemctl stop hf-{victim['name']}.main.service")
        run = fleet.run([{"name": "rs", "hostfleet.workloads.replicaset": args, "run_once": True}])
        res = run.result("rs", "node1")
        assert run.rc == 0 and res["status"]["availableReplicas"] == 3
        run = fleet.run([{"name": "rs", "hostfleet.workloads.replicaset": args, "run_once": True}])
        assert run.result("rs", "node1")["changed"] is False
    finally:
        fleet.run([{"name": "cleanup", "hostfleet.workloads.replicaset": {"name": "plain", "state": "absent"}, "run_once": True}])


def test_restart_replaces_every_pod_once(fleet):
    args = {
        "name": "restarted",
        "replicas": 3,
        "template": template("v1"),
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
    }
    try:
        run = fleet.run([{"name": "d", "hostfleet.workloads.deployment": args, "run_once": True}])
        before = {p["name"] for p in run.result("d", "node1")["pods"]}
        run = fleet.run([{"name": "d", "hostfleet.workloads.deployment": dict(args, restart=True), "run_once": True}])
        res = run.result("d", "node1")
        assert run.rc == 0 and res["changed"] and res["revision"] == 2, run.stdout[-3000:]
        after = {p["name"] for p in res["pods"]}
        assert len(after) == 3 and not before & after, "a restart replaces every pod, with a rolling update"
        # The restart is remembered: the next run without it does not roll the pods back.
        run = fleet.run([{"name": "d", "hostfleet.workloads.deployment": args, "run_once": True}])
        assert run.rc == 0 and run.result("d", "node1")["changed"] is False
    finally:
        fleet.run([{"name": "cleanup", "hostfleet.workloads.deployment": {"name": "restarted", "state": "absent"}, "run_once": True}])
