"""Taints and tolerations on the lab's 3 real hosts (issue 15): kubernetes.io's "Taints and Tolerations" example with
the taint as an inventory variable, a NoExecute taint evicting a running Deployment replica, and a DaemonSet staying
on nodes tainted with what it tolerates. systemd on the hosts is the judge of where pods run."""

from __future__ import annotations

import shlex

import pytest

from lab.images import build_images

# `kubectl taint nodes node1 key1=value1:NoSchedule`, as the inventory says it.
NODE1_TAINTED = {"node1": {"hostfleet_node_taints": [{"key": "key1", "value": "value1", "effect": "NoSchedule"}]}}

# https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/: "both of the following tolerations
# match the taint created by the kubectl taint line above, and thus a pod with either toleration would be able to
# schedule onto node1". The docs' pod (nginx, imagePullPolicy IfNotPresent) once with each; the nodeSelector on
# node1's hostname (the docs' "Assign Pods to Nodes" way) makes "can run there" a check rather than a chance. And a
# Deployment without the toleration, which avoids node1 (its pods host processes: quicker than images).
EXAMPLE = """\
apiVersion: v1
kind: Pod
metadata:
  name: nginx-equal
  labels:
    env: test
spec:
  nodeSelector:
    kubernetes.io/hostname: node1
  containers:
  - name: nginx
    image: nginx
    imagePullPolicy: IfNotPresent
  tolerations:
  - key: "key1"
    operator: "Equal"
    value: "value1"
    effect: "NoSchedule"
---
apiVersion: v1
kind: Pod
metadata:
  name: nginx-exists
  labels:
    env: test
spec:
  nodeSelector:
    kubernetes.io/hostname: node1
  containers:
  - name: nginx
    image: nginx
    imagePullPolicy: IfNotPresent
  tolerations:
  - key: "key1"
    operator: "Exists"
    effect: "NoSchedule"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-untolerating
spec:
  replicas: 4
  selector:
    matchLabels:
      app: nginx-untolerating
  template:
    metadata:
      labels:
        app: nginx-untolerating
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: nginx
        command: [/bin/sleep, infinity]
"""
# No registry is reachable from the lab: an image named nginx (busybox inside) stands in, sleeping instead of serving
# (the pods' placement is what is checked, and two of them on node1's host network would want the same port 80), and
# ending at SIGTERM as nginx does.
STAND_IN = """set -eu
podman rm -f hf-taints-stand-in >/dev/null 2>&1 || true
podman create --name hf-taints-stand-in --pull=never localhost/taints-stand-in:1 true >/dev/null
podman commit --quiet --change 'CMD ["/bin/sh", "-c", "trap exit TERM; sleep 2147483647 & wait"]' hf-taints-stand-in localhost/nginx:latest >/dev/null
podman rm hf-taints-stand-in >/dev/null
"""


def apply(lab, src, state="present", host_vars=None):
    task = {"name": "apply", "hostfleet.workloads.apply": {"src": str(src), "state": state, "wait_timeout": 120}, "run_once": True}
    run = lab.run([task], host_vars=host_vars)
    return run, run.result("apply", lab.hosts[0])


def running(lab, pattern):
    """{host: number of running units matching ``pattern``}, as systemd says."""
    out = {}
    for host in lab.hosts:
        listed = lab.ssh(host, f"systemctl list-units --state=running --plain --no-legend {shlex.quote(pattern)}", check=False).stdout
        out[host] = len(listed.strip().splitlines())
    return out


@pytest.mark.slow
def test_the_kubernetes_io_example_tolerating_pods_run_on_node1_and_others_avoid_it(lab, tmp_path):
    build_images(lab.hosts, "taints-stand-in", "1")
    for host in lab.hosts:
        lab.ssh(host, f"sh -c {shlex.quote(STAND_IN)}", timeout=60)
    src = tmp_path / "taints.yaml"
    src.write_text(EXAMPLE)
    try:
        run, res = apply(lab, src, host_vars=NODE1_TAINTED)
        assert run.rc == 0, run.stdout[-4000:]
        objects = {o["name"]: o for o in res["objects"]}
        assert objects["nginx-equal"]["nodes"] == ["node1"] and objects["nginx-exists"]["nodes"] == ["node1"]
        assert running(lab, "hf-nginx-equal.nginx.service")["node1"] == 1 and running(lab, "hf-nginx-exists.nginx.service")["node1"] == 1
        replicas = running(lab, "hf-nginx-untolerating-*.nginx.service")
        assert replicas == {"node1": 0, "node2": 2, "node3": 2}, replicas
    finally:
        run, res = apply(lab, src, state="absent")
        assert run.rc == 0, run.stdout[-4000:]
        for host in lab.hosts:
            lab.ssh(host, "podman rmi localhost/nginx:latest localhost/taints-stand-in:1 >/dev/null 2>&1 || true")


def deployment(replicas=3):
    spec = {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "main", "command": ["/bin/sleep", "infinity"]}],
    }
    return {
        "name": "apply-taints",
        "hostfleet.workloads.deployment": {"name": "evicted", "replicas": replicas, "template": {"metadata": {"labels": {"app": "evicted"}}, "spec": spec}},
        "run_once": True,
    }


def daemonset():
    spec = {
        "terminationGracePeriodSeconds": 1,
        "tolerations": [{"key": "key1", "operator": "Exists", "effect": "NoExecute"}],
        "containers": [{"name": "main", "command": ["/bin/sleep", "infinity"]}],
    }
    template = {"metadata": {"labels": {"app": "tolerant"}}, "spec": spec}
    return {"name": "agent", "hostfleet.workloads.daemonset": {"name": "tolerant", "template": template}, "run_once": True}


def absent():
    return [
        {"name": "apply-taints", "hostfleet.workloads.deployment": {"name": "evicted", "state": "absent"}, "run_once": True},
        {"name": "agent", "hostfleet.workloads.daemonset": {"name": "tolerant", "state": "absent"}, "run_once": True},
    ]


@pytest.mark.slow
def test_noexecute_evicts_a_running_replica_and_a_daemonset_stays_where_it_tolerates(lab):
    try:
        run = lab.run([deployment(), daemonset()])
        assert run.rc == 0, run.stdout[-4000:]
        assert running(lab, "hf-evicted-*.main.service") == {"node1": 1, "node2": 1, "node3": 1}
        daemons = {h: lab.ssh(h, "systemctl list-units --plain --no-legend 'hf-tolerant-*.main.service' | cut -d' ' -f1").stdout.split() for h in lab.hosts}
        assert all(len(units) == 1 for units in daemons.values()), daemons

        # node2: key1=value1:NoExecute (the DaemonSet tolerates it, the Deployment does not); node3 is cordoned (the
        # node.kubernetes.io/unschedulable taint every daemon pod tolerates): nothing new goes there, nothing leaves.
        taints = {
            "node2": {"hostfleet_node_taints": [{"key": "key1", "value": "value1", "effect": "NoExecute"}]},
            "node3": {"hostfleet_node_taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]},
        }
        run = lab.run([deployment(), daemonset()], host_vars=taints)
        assert run.rc == 0, run.stdout[-4000:]
        result = run.result("apply-taints", lab.hosts[0])
        assert running(lab, "hf-evicted-*.main.service") == {"node1": 2, "node2": 0, "node3": 1}
        assert sorted(p["node"] for p in result["pods"]) == ["node1", "node1", "node3"]
        output = run.stdout + run.stderr
        assert "evicting pod evicted-" in output and "from node2: its taint {key1: value1} (NoExecute) is not tolerated" in output, output[-3000:]
        after = {h: lab.ssh(h, "systemctl list-units --plain --no-legend 'hf-tolerant-*.main.service' | cut -d' ' -f1").stdout.split() for h in lab.hosts}
        assert after == daemons, "the same daemon pods, never restarted"
        assert run.result("agent", lab.hosts[0])["plan"] == []  # (changed: its record now keeps when the taint was first seen)
    finally:
        lab.run(absent())
