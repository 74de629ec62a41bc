"""Issue 15 on the lab: node labels from facts, the kubernetes.io "Assign Pods to Nodes" examples, a GPU DaemonSet.

- The examples of https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/ and of the task page
  https://kubernetes.io/docs/tasks/configure-pod-container/assign-pods-nodes-using-node-affinity/, as published:
  ``pod-nginx`` (nodeSelector disktype=ssd, the label from the inventory as ``kubectl label nodes`` would set it), the
  required and preferred node affinity pods, ``pod-with-node-affinity`` (zones from the inventory), and the
  redis-cache / web-server Deployments (pod anti-affinity and pod affinity on kubernetes.io/hostname: one cache and
  one web server per node). No registry is reachable: the images the manifests name are stand-ins built on the lab
  hosts (a busybox shell that waits), under the manifests' own references.
- ``nodeSelector: {kubernetes.io/os: linux}``: a Deployment runs on every host, from the label the node's facts give.
- The "driver only on the hosts that have a GPU" DaemonSet, from facts alone (NFD's label
  ``feature.node.kubernetes.io/pci-0300_10de.present``). SIMULATED: the lab hosts are containers on one machine and
  share its PCI devices, which have no GPU; the test makes node2 look like it has an NVIDIA VGA controller by mounting
  a tmpfs over node2's /sys/bus/pci/devices holding the real devices' class/vendor files plus one 0x030000/0x10de
  device, and drops node2's per-boot facts cache. The real reader reads it (no label is written by hand).
"""

from __future__ import annotations

import shlex

import pytest

from lab.images import build_images

POD_NGINX = """\
apiVersion: v1
kind: Pod
metadata:
  name: nginx
  labels:
    env: test
spec:
  containers:
  - name: nginx
    image: nginx
    imagePullPolicy: IfNotPresent
  nodeSelector:
    disktype: ssd
"""

POD_NGINX_REQUIRED_AFFINITY = """\
apiVersion: v1
kind: Pod
metadata:
  name: nginx
spec:
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - key: disktype
            operator: In
            values:
            - ssd
  containers:
  - name: nginx
    image: nginx
    imagePullPolicy: IfNotPresent
"""

POD_NGINX_PREFERRED_AFFINITY = """\
apiVersion: v1
kind: Pod
metadata:
  name: nginx
spec:
  affinity:
    nodeAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 1
        preference:
          matchExpressions:
          - key: disktype
            operator: In
            values:
            - ssd
  containers:
  - name: nginx
    image: nginx
    imagePullPolicy: IfNotPresent
"""

POD_WITH_NODE_AFFINITY = """\
apiVersion: v1
kind: Pod
metadata:
  name: with-node-affinity
spec:
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - key: topology.kubernetes.io/zone
            operator: In
            values:
            - antarctica-east1
            - antarctica-west1
      preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 1
        preference:
          matchExpressions:
          - key: another-node-label-key
            operator: In
            values:
            - another-node-label-value
  containers:
  - name: with-node-affinity
    image: registry.k8s.io/pause:3.8
"""

REDIS_CACHE_AND_WEB_SERVER = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: redis-cache
spec:
  selector:
    matchLabels:
      app: store
  replicas: 3
  template:
    metadata:
      labels:
        app: store
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector:
              matchExpressions:
              - key: app
                operator: In
                values:
                - store
            topologyKey: "kubernetes.io/hostname"
      containers:
      - name: redis-server
        image: redis:3.2-alpine
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-server
spec:
  selector:
    matchLabels:
      app: web-store
  replicas: 3
  template:
    metadata:
      labels:
        app: web-store
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector:
              matchExpressions:
              - key: app
                operator: In
                values:
                - web-store
            topologyKey: "kubernetes.io/hostname"
        podAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector:
              matchExpressions:
              - key: app
                operator: In
                values:
                - store
            topologyKey: "kubernetes.io/hostname"
      containers:
      - name: web-app
        image: nginx:1.16-alpine
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: linux-only
spec:
  replicas: 3
  selector:
    matchLabels:
      app: linux-only
  template:
    metadata:
      labels:
        app: linux-only
    spec:
      nodeSelector:
        kubernetes.io/os: linux
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        command: [/bin/sleep, infinity]
"""

# The inventory's labels, as `kubectl label nodes` sets them in the docs' steps.
NODE_LABELS = {
    "node1": {"hostfleet_node_labels": {"topology.kubernetes.io/zone": "antarctica-east1"}},
    "node2": {"hostfleet_node_labels": {"disktype": "ssd"}},
    "node3": {"hostfleet_node_labels": {"topology.kubernetes.io/zone": "antarctica-west1", "another-node-label-key": "another-node-label-value"}},
}
# The images the manifests name, as podman resolves them offline (short names to localhost/).
STAND_INS = ("localhost/nginx:latest", "localhost/nginx:1.16-alpine", "localhost/redis:3.2-alpine", "registry.k8s.io/pause:3.8")
# A shell that waits, and ends at once on SIGTERM (PID 1 ignores the signal without a trap).
WAIT = '["/bin/sh", "-c", "trap \\"exit 0\\" TERM; while :; do sleep 1; done"]'


def stand_ins(lab):
    base = build_images(lab.hosts, "hf-waiter", "1")
    script = "set -eu\n" + "".join(
        f"podman rm -f hf-stand-in >/dev/null 2>&1 || true\n"
        f"podman create --name hf-stand-in --pull=never {base} true >/dev/null\n"
        f"podman commit --quiet --change {shlex.quote('CMD ' + WAIT)} hf-stand-in {ref} >/dev/null\n"
        "podman rm hf-stand-in >/dev/null\n"
        for ref in STAND_INS
    )
    for host in lab.hosts:
        lab.ssh(host, f"sh -c {shlex.quote(script)}", timeout=60)


def apply_task(name, src, state="present"):
    return {"name": name, "hostfleet.workloads.apply": {"src": str(src), "state": state, "wait_timeout": 120}, "run_once": True}


@pytest.mark.slow
def test_assign_pods_to_nodes_examples(lab, tmp_path):
    stand_ins(lab)
    files = {}
    for name, text in (
        # Names that differ go in one file (one apply); the docs' three nginx pods share their name: one at a time.
        ("examples", "---\n".join((POD_NGINX, POD_WITH_NODE_AFFINITY, REDIS_CACHE_AND_WEB_SERVER))),
        ("required", POD_NGINX_REQUIRED_AFFINITY),
        ("preferred", POD_NGINX_PREFERRED_AFFINITY),
    ):
        files[name] = tmp_path / f"{name}.yaml"
        files[name].write_text(text)
    # The docs' required and preferred nginx pods share pod-nginx's name: where they go is asked in check mode first
    # (the same placement, nothing started: one pod named nginx at a time, and seconds saved), then the rest runs.
    check = lab.run([apply_task("required", files["required"]), apply_task("preferred", files["preferred"])], check=True, host_vars=NODE_LABELS)
    assert check.rc == 0, check.stdout[-4000:]
    run = lab.run([apply_task("examples", files["examples"])], host_vars=NODE_LABELS)
    try:
        assert run.rc == 0, run.stdout[-4000:]
        first = lab.hosts[0]
        objects = {o["name"]: o for o in run.result("examples", first)["objects"]}
        placed = {
            "nodeselector": objects["nginx"]["nodes"],
            "zones": objects["with-node-affinity"]["nodes"],
            "required": check.result("required", first)["objects"][0]["nodes"],
            "preferred": check.result("preferred", first)["objects"][0]["nodes"],
        }
        assert placed == {
            "nodeselector": ["node2"],  # disktype=ssd
            "zones": ["node3"],  # in the zones, and another-node-label-key preferred
            "required": ["node2"],
            "preferred": ["node2"],  # weight 1 for ssd: the scheduler's first choice
        }
        assert objects["nginx"]["status"]["phase"] == objects["with-node-affinity"]["status"]["phase"] == "Running", objects
        # One cache and one web server per node, and the linux-only Deployment on every node (kubernetes.io/os from facts).
        running = {
            h: sorted(lab.ssh(h, "systemctl list-units --state=running --plain --no-legend 'hf-*.service' | cut -d' ' -f1").stdout.split()) for h in lab.hosts
        }
        containers = {"hf-redis-cache-": ".redis-server.service", "hf-web-server-": ".web-app.service", "hf-linux-only-": ".main.service"}
        for host, units in running.items():
            mine = sorted(prefix for u in units for prefix, suffix in containers.items() if u.startswith(prefix) and u.endswith(suffix))
            assert mine == sorted(containers), (host, units)
    finally:
        lab.run([apply_task("delete examples", files["examples"], "absent")])


GPU_SELECTOR = {"feature.node.kubernetes.io/pci-0300_10de.present": "true"}
# node2's PCI devices as its reader sees them: the real ones (class and vendor) plus one NVIDIA VGA controller.
FAKE_GPU = """set -eu
d=/sys/bus/pci/devices
mkdir -p /run/hf-fake-pci
for dev in $d/*; do
  n=$(basename $dev); mkdir -p /run/hf-fake-pci/$n; cat $dev/class > /run/hf-fake-pci/$n/class; cat $dev/vendor > /run/hf-fake-pci/$n/vendor
done
mount -t tmpfs -o mode=755 hf-fake-pci $d
cp -r /run/hf-fake-pci/. $d/
mkdir $d/0000:00:1e.0
echo 0x030000 > $d/0000:00:1e.0/class
echo 0x10de > $d/0000:00:1e.0/vendor
rm -rf /run/hf-fake-pci /run/hostfleet/node-facts.json
"""
NO_GPU = "umount /sys/bus/pci/devices 2>/dev/null || true; rm -f /run/hostfleet/node-facts.json"


def driver(lab, state="present"):
    args = {"name": "nvidia-driver", "state": state}
    if state == "present":
        args["template"] = {
            "metadata": {"labels": {"app": "nvidia-driver"}},
            "spec": {
                "nodeSelector": GPU_SELECTOR,
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "driver", "command": ["/bin/sleep", "infinity"]}],
            },
        }
    tasks = [{"name": "ds", "hostfleet.workloads.daemonset": args, "run_once": True}]
    if state == "present":
        # workload_info in the same play: the nodes' labels as the DaemonSet saw them (`kubectl get nodes --show-labels`).
        tasks.append({"name": "info", "hostfleet.workloads.workload_info": {"kind": "DaemonSet", "name": "nvidia-driver"}, "run_once": True})
    run = lab.run(tasks)
    return run, run.result("ds", lab.hosts[0])


def test_gpu_driver_daemonset_from_facts_alone(lab):
    """The DaemonSet selects NFD's PCI label; no inventory label: only the host whose facts show the GPU runs it."""
    for host in lab.hosts:
        lab.ssh(host, NO_GPU)
    lab.ssh("node2", f"sh -c {shlex.quote(FAKE_GPU)}")
    try:
        run, res = driver(lab)
        assert run.rc == 0, run.stdout[-4000:]
        assert res["status"]["desiredNumberScheduled"] == 1 and res["status"]["numberAvailable"] == 1, res["status"]
        assert [p["node"] for p in res["pods"]] == ["node2"]
        labels = run.result("info", lab.hosts[0])["node_labels"]
        assert [h for h in lab.hosts if labels[h].get("feature.node.kubernetes.io/pci-0300_10de.present") == "true"] == ["node2"]
        assert all(labels[h]["kubernetes.io/os"] == "linux" and labels[h]["kubernetes.io/hostname"] == h for h in lab.hosts), labels
        cached = lab.ssh("node2", "cat /run/hostfleet/node-facts.json").stdout
        assert '"class": "030000", "vendor": "10de"' in cached  # what the reader read, kept for this boot
    finally:
        lab.ssh("node2", NO_GPU)
        driver(lab, "absent")
