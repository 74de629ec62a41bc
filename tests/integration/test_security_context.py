"""Security contexts on the lab (issue 15): kubernetes.io's "Configure a Security Context for a Pod or Container".

The page's pods, applied as manifests (podman, busybox:1.28 built on the hosts: no registry here), checked the
page's way (`id`, a file made in the fsGroup volume, `ps`, `/proc/1/status`), then the same checks for a process
pod, whose systemd directives systemd itself applies. Changes to the page's manifests, said here: the page's
gcr.io/google-samples/hello-app:2.0 image is busybox:1.28 with `command: [sh, -c, sleep 1h]` (the one image we
build), and every pod has `terminationGracePeriodSeconds: 1` (`sleep` as PID 1 ignores SIGTERM: the default 30 s grace
per pod would make the removal take minutes). shareProcessNamespace (the page "Share Process Namespace between
Containers in a Pod": nginx and a shell, here both busybox), hostPID/hostIPC and runAsNonRoot with the image's user
are pod module pods on one host, with the process pod.
The lab hosts are systemd-nspawn machines without CAP_SYS_TIME in their own bounding set: a container can get at
most its host's capabilities, so the expected CapPrm is Kubernetes' value masked with the host's CapBnd.
"""

from __future__ import annotations

import re
import time

import pytest

from lab.images import build_images

MANIFESTS = """
apiVersion: v1
kind: Pod
metadata:
  name: security-context-demo
spec:
  terminationGracePeriodSeconds: 1
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    fsGroup: 2000
    supplementalGroups: [4000]
  volumes:
  - name: sec-ctx-vol
    emptyDir: {}
  containers:
  - name: sec-ctx-demo
    image: busybox:1.28
    command: [ "sh", "-c", "sleep 1h" ]
    volumeMounts:
    - name: sec-ctx-vol
      mountPath: /data/demo
    securityContext:
      allowPrivilegeEscalation: false
---
apiVersion: v1
kind: Pod
metadata:
  name: security-context-demo-2
spec:
  terminationGracePeriodSeconds: 1
  securityContext:
    runAsUser: 1000
  containers:
  - name: sec-ctx-demo-2
    image: busybox:1.28
    command: [ "sh", "-c", "sleep 1h" ]
    securityContext:
      runAsUser: 2000
      allowPrivilegeEscalation: false
---
apiVersion: v1
kind: Pod
metadata:
  name: security-context-demo-3
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: sec-ctx-3
    image: busybox:1.28
    command: [ "sh", "-c", "sleep 1h" ]
---
apiVersion: v1
kind: Pod
metadata:
  name: security-context-demo-4
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: sec-ctx-4
    image: busybox:1.28
    command: [ "sh", "-c", "sleep 1h" ]
    securityContext:
      capabilities:
        add: ["NET_ADMIN", "SYS_TIME"]
"""
NAMES = ("security-context-demo", "security-context-demo-2", "security-context-demo-3", "security-context-demo-4")
# Kubernetes' CapPrm of security-context-4 (the CRI default set plus NET_ADMIN and SYS_TIME), and those two bits.
CAPS_4 = 0xAA0435FB
NET_ADMIN, SYS_TIME = 1 << 12, 1 << 25


def cap(lab, host, field, where="/proc/1/status", exec_in=None):
    prefix = f"podman exec {exec_in} " if exec_in else ""
    line = lab.ssh(host, f"{prefix}grep '^{field}:' {where}").stdout
    return int(line.split()[1], 16)


@pytest.fixture
def applied(lab):
    build_images(lab.hosts, "busybox", "1.28")
    task = {"name": "apply", "hostfleet.workloads.apply": {"definition": MANIFESTS, "wait_timeout": 60}, "run_once": True}
    run = lab.run([task])
    try:
        assert run.rc == 0, run.stdout[-4000:]
        yield {obj["name"]: obj["nodes"][0] for obj in run.result("apply", lab.hosts[0])["objects"]}
    finally:
        task["hostfleet.workloads.apply"]["state"] = "absent"
        lab.run([task])


def test_kubernetes_security_context_examples_under_podman(lab, applied):
    assert sorted(applied) == sorted(NAMES)
    node = applied["security-context-demo"]
    demo = "hf-security-context-demo.sec-ctx-demo"
    # "The output shows that the processes are running as user 1000 ... group 3000 ... supplementary groups 2000, 4000"
    # (podman adds /etc/passwd and /etc/group entries for the IDs, so busybox's id names them: the names are dropped here)
    assert re.sub(r"\([^)]*\)", "", lab.ssh(node, f"podman exec {demo} id").stdout.strip()) == "uid=1000 gid=3000 groups=2000,3000,4000"
    # "the file testfile has group ID 2000, which is the value of fsGroup"
    made = lab.ssh(node, f"podman exec {demo} sh -c 'cd /data/demo && echo hello > testfile && ls -ln testfile'").stdout.split()
    assert (made[2], made[3]) == ("1000", "2000"), made
    assert lab.ssh(node, f"podman exec {demo} stat -c %A /data/demo").stdout.strip() == "drwxrwsr-x"
    assert cap(lab, node, "NoNewPrivs", exec_in=demo) == 1

    # Container securityContext overrides the pod's: "the processes are running as user 2000".
    node2 = applied["security-context-demo-2"]
    users = lab.ssh(node2, "podman exec hf-security-context-demo-2.sec-ctx-demo-2 ps -o user,args").stdout.split("\n")[1:]
    assert users and all(line.split()[0] == "2000" for line in users if line.strip()), users

    # Capabilities: -3 has neither NET_ADMIN nor SYS_TIME; -4 has Kubernetes' set (as far as its host has them).
    node3, node4 = applied["security-context-demo-3"], applied["security-context-demo-4"]
    three = cap(lab, node3, "CapPrm", exec_in="hf-security-context-demo-3.sec-ctx-3")
    assert not three & (NET_ADMIN | SYS_TIME)
    four = cap(lab, node4, "CapPrm", exec_in="hf-security-context-demo-4.sec-ctx-4")
    assert four == CAPS_4 & cap(lab, node4, "CapBnd") and four & NET_ADMIN


def pod_info(lab, host, owner):
    res = lab.run([{"name": "info", "hostfleet.workloads.pod_info": {"owner": owner}}], hosts=host).result("info", host)
    return {p["name"]: p for p in res["pods"]}


def test_image_user_check_process_pod_and_shared_namespaces(lab):
    """runAsNonRoot without runAsUser: the image's user (root here) is checked before the start, as the kubelet does,
    and the container waits with CreateContainerConfigError. A process pod with the page's fields: systemd applies them.
    shareProcessNamespace and hostPID/hostIPC of podman pods; sysctls in the pods' own namespaces (the pod network)."""
    build_images(lab.hosts, "busybox", "1.28")
    host = lab.hosts[0]
    nonroot = {
        "name": "it-nonroot",
        "spec": {"securityContext": {"runAsNonRoot": True}, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "main", "image": "busybox:1.28", "command": ["sh", "-c", "sleep 1h"]}]},
    }
    script = (
        "id > /data/demo/id; grep -E '^(CapPrm|CapAmb|NoNewPrivs|Seccomp)' /proc/self/status > /data/demo/status; "
        "cat /proc/sys/net/ipv4/ip_local_port_range > /data/demo/ports; "
        "echo hello > /data/demo/testfile; touch /etc/hf-it-x 2>/dev/null || echo read-only > /data/demo/root; exec sleep infinity"
    )
    process = {
        "name": "it-process-sc",
        "spec": {
            "terminationGracePeriodSeconds": 1,
            # The hosts' users and groups: systemd resolves User=/Group=/SupplementaryGroups= (nobody, users, nogroup).
            "securityContext": {"runAsUser": 65534, "runAsGroup": 65534, "fsGroup": 100, "seccompProfile": {"type": "RuntimeDefault"},
                                "sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "20000 40000"}]},
            "volumes": [{"name": "sec-ctx-vol", "emptyDir": {}}],
            "containers": [{
                "name": "main", "command": ["/bin/sh", "-c", script],
                "volumeMounts": [{"name": "sec-ctx-vol", "mountPath": "/data/demo"}],
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
            }],
        },
    }
    box = {"image": "busybox:1.28", "command": ["sh", "-c", "sleep 1h"]}
    share = {
        "name": "it-share",
        "spec": {"shareProcessNamespace": True, "terminationGracePeriodSeconds": 1, "containers": [
            dict(box, name="nginx"),
            dict(box, name="shell", command=["sh", "-c", "sleep 2h"], securityContext={"readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}),
        ]},
    }
    host_pid = {"name": "it-hostpid", "spec": {"hostPID": True, "hostIPC": True, "terminationGracePeriodSeconds": 1, "containers": [dict(box, name="main")]}}
    sysctls = [{"name": "kernel.shm_rmid_forced", "value": "1"}, {"name": "net.ipv4.tcp_syncookies", "value": "0"}]
    share["spec"]["securityContext"] = {"sysctls": sysctls}
    # The node's pod network: net.* sysctls need the pod's own network namespace (the others run there too).
    args = {"owner": "it-security", "pods": [nonroot, process, share, host_pid], "wait": False, "pod_network": {"cidr": "10.244.7.0/24"}}
    task = {"name": "pods", "hostfleet.workloads.pod": args}
    try:
        run = lab.run([task], hosts=host)
        assert run.rc == 0, run.stdout[-4000:]
        deadline = time.time() + 30
        while True:
            pods = pod_info(lab, host, "it-security")
            waiting = pods["it-nonroot"]["containers"][0]["state"].get("waiting") or {}
            done = lab.ssh(host, "test -s /var/lib/hostfleet/pods/it-process-sc/volumes/sec-ctx-vol/root", check=False).returncode == 0
            running = all(c["state"].get("running") for name in ("it-share", "it-hostpid") for c in pods[name]["containers"])
            if (waiting.get("reason") == "CreateContainerConfigError" and done and running) or time.time() > deadline:
                break
            time.sleep(1)
        assert waiting.get("reason") == "CreateContainerConfigError", pods["it-nonroot"]
        assert "runAsNonRoot and image will run as root" in waiting.get("message", "")
        assert lab.ssh(host, "podman ps -a --format '{{.Names}}'").stdout.count("hf-it-nonroot.main") == 0  # never ran

        volume = "/var/lib/hostfleet/pods/it-process-sc/volumes/sec-ctx-vol"
        assert lab.ssh(host, f"cat {volume}/id").stdout.strip() == "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup),100(users)"
        status = dict(line.split(":\t") for line in lab.ssh(host, f"cat {volume}/status").stdout.strip().split("\n"))
        assert int(status["CapPrm"], 16) == int(status["CapAmb"], 16) == 1 << 10  # NET_BIND_SERVICE, ambient for a non-root user
        assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2"
        assert lab.ssh(host, f"cat {volume}/root").stdout.strip() == "read-only"
        made = lab.ssh(host, f"ls -ln {volume}/testfile; stat -c %A {volume}").stdout.split()
        assert (made[2], made[3], made[-1]) == ("65534", "100", "drwxrwsr-x"), made
        # sysctls: in the pod's network namespace (and the podman pod's IPC namespace), not the host's.
        assert lab.ssh(host, f"cat {volume}/ports").stdout.split() == ["20000", "40000"]
        assert lab.ssh(host, "cat /proc/sys/net/ipv4/ip_local_port_range").stdout.split() != ["20000", "40000"]
        inside = lab.ssh(host, "podman exec hf-it-share.nginx cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/tcp_syncookies").stdout
        assert inside.split() == ["1", "0"]
        assert lab.ssh(host, "cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/tcp_syncookies").stdout.split() == ["0", "1"]

        # shareProcessNamespace: the shell container sees the first container's process (its PID 1); drop ALL, read-only root.
        shell = "hf-it-share.shell"
        seen = lab.ssh(host, f"podman exec {shell} ps -o pid,args").stdout
        assert "sleep 1h" in seen and "sleep 2h" in seen, seen
        assert cap(lab, host, "CapEff", "/proc/self/status", exec_in=shell) == 0
        assert "Read-only file system" in lab.ssh(host, f"podman exec {shell} touch /x", check=False).stderr
        # hostPID/hostIPC: the host's PID 1 (systemd) and IPC namespace.
        assert lab.ssh(host, "podman exec hf-it-hostpid.main cat /proc/1/comm").stdout.strip() == "systemd"
        host_ipc = lab.ssh(host, "readlink /proc/1/ns/ipc").stdout.strip()
        assert lab.ssh(host, "podman exec hf-it-hostpid.main readlink /proc/self/ns/ipc").stdout.strip() == host_ipc
    finally:
        gone = {"owner": "it-security", "pods": [], "state": "absent", "pod_network": {"cidr": "10.244.7.0/24"}}
        lab.run([{"name": "gone", "hostfleet.workloads.pod": gone}], hosts=host)
