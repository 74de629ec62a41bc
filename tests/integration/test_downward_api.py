"""The downward API and per-pod volumes on the lab's real hosts (issue 15), Kubernetes' own examples.

- "Expose Pod Information to Containers Through Environment Variables"
  (kubernetes.io/docs/tasks/inject-data-application/environment-variable-expose-pod-information/): dapi-envars-fieldref
  prints MY_NODE_NAME, MY_POD_NAME, MY_POD_NAMESPACE, MY_POD_IP and MY_POD_SERVICE_ACCOUNT; dapi-envars-resourcefieldref
  prints its requests and limits (divisor 1: 1, 1, 33554432, 67108864).
- "Expose Pod Information to Containers Through Files"
  (kubernetes.io/docs/tasks/inject-data-application/downward-api-volume-expose-pod-information/):
  kubernetes-downwardapi-volume-example's /etc/podinfo/labels and annotations (with the ..data link of the atomic
  writer), then its annotation `build` changed by applying the Pod again: the file follows in place, the container is
  not restarted (as with `kubectl annotate` in Kubernetes); kubernetes-downwardapi-volume-example-2's resourceFieldRef
  files with divisor 1m and 1Mi (250, 125, 64, 32).
  The examples say `image: registry.k8s.io/busybox` (or `:1.24`); no registry is reachable here, so they say
  `busybox:1.24`: the lab's busybox image plus a /bin/printenv script (Debian's busybox-static has no printenv applet,
  which the first page's examples print with). Everything else is as the pages write it.
- A process pod (no image) with a ConfigMap projected by items (a script with mode 0755, run from the volume),
  $(VAR) in its command with Kubernetes' $$ escape, metadata.uid and the labels file; the ConfigMap changed by
  apply: the projected file follows in the running container, a subPath mount of it does not (as in Kubernetes).
"""

from __future__ import annotations

import json
import time

import pytest

from lab.images import build_images

STATE_DIR = "/var/lib/hostfleet"

# coreutils' printenv for names: each value on its own line, status 1 when one is unset.
PRINTENV = """#!/bin/sh
[ $# -eq 0 ] && exec env
status=0
for name in "$@"; do
  if eval "[ -n \\"\\${$name+x}\\" ]"; then eval "printf '%s\\n' \\"\\$$name\\""; else status=1; fi
done
exit $status
"""

ENV_EXAMPLES = """\
apiVersion: v1
kind: Pod
metadata:
  name: dapi-envars-fieldref
spec:
  containers:
    - name: test-container
      image: busybox:1.24
      command: [ "sh", "-c"]
      args:
      - while true; do
          echo -en '\\n';
          printenv MY_NODE_NAME MY_POD_NAME MY_POD_NAMESPACE;
          printenv MY_POD_IP MY_POD_SERVICE_ACCOUNT;
          sleep 10;
        done;
      env:
        - name: MY_NODE_NAME
          valueFrom:
            fieldRef:
              fieldPath: spec.nodeName
        - name: MY_POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: MY_POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        - name: MY_POD_IP
          valueFrom:
            fieldRef:
              fieldPath: status.podIP
        - name: MY_POD_SERVICE_ACCOUNT
          valueFrom:
            fieldRef:
              fieldPath: spec.serviceAccountName
  restartPolicy: Never
"""

VOLUME_EXAMPLE = """\
apiVersion: v1
kind: Pod
metadata:
  name: kubernetes-downwardapi-volume-example
  labels:
    zone: us-est-coast
    cluster: test-cluster1
    rack: rack-22
  annotations:
    build: {build}
    builder: john-doe
spec:
  containers:
    - name: client-container
      image: busybox:1.24
      command: ["sh", "-c"]
      args:
      - while true; do
          if [[ -e /etc/podinfo/labels ]]; then
            echo -en '\\n\\n'; cat /etc/podinfo/labels; fi;
          if [[ -e /etc/podinfo/annotations ]]; then
            echo -en '\\n\\n'; cat /etc/podinfo/annotations; fi;
          sleep 5;
        done;
      volumeMounts:
        - name: podinfo
          mountPath: /etc/podinfo
  volumes:
    - name: podinfo
      downwardAPI:
        items:
          - path: "labels"
            fieldRef:
              fieldPath: metadata.labels
          - path: "annotations"
            fieldRef:
              fieldPath: metadata.annotations
"""

# The two examples with resources, as process pods: the lab's hosts do not delegate the memory controller to podman's
# machine.slice (runc cannot write memory.max there), so an image container with a memory limit cannot start on them.
# `image:` is left out and `sh` is the hosts' /bin/bash (the examples' loops use [[ ]] and echo -e); nothing else changes.
RESOURCE_EXAMPLES = """\
apiVersion: v1
kind: Pod
metadata:
  name: dapi-envars-resourcefieldref
spec:
  containers:
    - name: test-container
      command: [ "/bin/bash", "-c"]
      args:
      - while true; do
          echo -en '\\n';
          printenv MY_CPU_REQUEST MY_CPU_LIMIT;
          printenv MY_MEM_REQUEST MY_MEM_LIMIT;
          sleep 10;
        done;
      resources:
        requests:
          memory: "32Mi"
          cpu: "125m"
        limits:
          memory: "64Mi"
          cpu: "250m"
      env:
        - name: MY_CPU_REQUEST
          valueFrom:
            resourceFieldRef:
              containerName: test-container
              resource: requests.cpu
        - name: MY_CPU_LIMIT
          valueFrom:
            resourceFieldRef:
              containerName: test-container
              resource: limits.cpu
        - name: MY_MEM_REQUEST
          valueFrom:
            resourceFieldRef:
              containerName: test-container
              resource: requests.memory
        - name: MY_MEM_LIMIT
          valueFrom:
            resourceFieldRef:
              containerName: test-container
              resource: limits.memory
  restartPolicy: Never
---
apiVersion: v1
kind: Pod
metadata:
  name: kubernetes-downwardapi-volume-example-2
spec:
  containers:
    - name: client-container
      command: ["/bin/bash", "-c"]
      args:
      - while true; do
          echo -en '\\n';
          if [[ -e /etc/podinfo/cpu_limit ]]; then
            echo -en '\\n'; cat /etc/podinfo/cpu_limit; fi;
          if [[ -e /etc/podinfo/cpu_request ]]; then
            echo -en '\\n'; cat /etc/podinfo/cpu_request; fi;
          if [[ -e /etc/podinfo/mem_limit ]]; then
            echo -en '\\n'; cat /etc/podinfo/mem_limit; fi;
          if [[ -e /etc/podinfo/mem_request ]]; then
            echo -en '\\n'; cat /etc/podinfo/mem_request; fi;
          sleep 5;
        done;
      resources:
        requests:
          memory: "32Mi"
          cpu: "125m"
        limits:
          memory: "64Mi"
          cpu: "250m"
      volumeMounts:
        - name: podinfo
          mountPath: /etc/podinfo
  volumes:
    - name: podinfo
      downwardAPI:
        items:
          - path: "cpu_limit"
            resourceFieldRef:
              containerName: client-container
              resource: limits.cpu
              divisor: 1m
          - path: "cpu_request"
            resourceFieldRef:
              containerName: client-container
              resource: requests.cpu
              divisor: 1m
          - path: "mem_limit"
            resourceFieldRef:
              containerName: client-container
              resource: limits.memory
              divisor: 1Mi
          - path: "mem_request"
            resourceFieldRef:
              containerName: client-container
              resource: requests.memory
              divisor: 1Mi
"""

PROCESS_EXAMPLE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: dapi-config
data:
  run.sh: |
    #!/bin/sh
    echo "script {version} ran"
  unused: "not projected"
---
apiVersion: v1
kind: Pod
metadata:
  name: dapi-process
  labels:
    app: dapi
spec:
  serviceAccountName: builder
  containers:
    - name: main
      command: ["/bin/sh", "-c", "echo \\"node=$(NODE) uid=$(UID) sa=$(SA)\\" '$$(NODE)'; /etc/cfg/bin/run.sh; cat /etc/podinfo/labels; echo; exec sleep 3600"]
      env:
        - name: NODE
          valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}
        - name: UID
          valueFrom: {{fieldRef: {{fieldPath: metadata.uid}}}}
        - name: SA
          valueFrom: {{fieldRef: {{fieldPath: spec.serviceAccountName}}}}
      volumeMounts:
        - {{name: cfg, mountPath: /etc/cfg}}
        - {{name: cfg, mountPath: /etc/run-pinned.sh, subPath: bin/run.sh}}
        - {{name: podinfo, mountPath: /etc/podinfo}}
  volumes:
    - name: cfg
      configMap:
        name: dapi-config
        items: [{{key: run.sh, path: bin/run.sh, mode: 0755}}]
    - name: podinfo
      projected:
        sources:
          - serviceAccountToken: {{path: token}}
          - downwardAPI: {{items: [{{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}]}}
"""


def task(name, module, args, **extra):
    return dict({"name": name, f"hostfleet.workloads.{module}": args, "run_once": True}, **extra)


def wait_until(predicate, timeout, interval=0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def where(lab, pod):
    for host in lab.hosts:
        if lab.ssh(host, f"test -e {STATE_DIR}/pods/{pod}/pod.json", check=False).returncode == 0:
            return host
    raise AssertionError(f"pod {pod} is on no host")


def podman_exec(lab, host, pod, container, command):
    return lab.ssh(host, f"podman exec hf-{pod}.{container} {command}", check=False).stdout


@pytest.fixture(scope="module")
def busybox(lab):
    return build_images(lab.hosts, "busybox", "1.24", {"/bin/printenv": PRINTENV})


def journal(lab, host, pod, container):
    """The container's output lines (podman's journald driver adds empty entries for the examples' `echo -en '\\n'`)."""
    out = lab.ssh(host, f"journalctl -q -o cat -t {pod}/{container}", check=False).stdout
    return "\n".join(line for line in out.splitlines() if line.strip()) + "\n"


def pid_of(lab, host, pod, container):
    return lab.ssh(host, f"systemctl show -p MainPID --value hf-{pod}.{container}.service").stdout.strip()


def test_the_kubernetes_io_downward_api_examples_and_a_process_pod(lab, busybox, tmp_path):
    env_file, volume_file, resources, src = (tmp_path / f"{n}.yaml" for n in ("env", "volume", "resources", "process"))
    env_file.write_text(ENV_EXAMPLES)
    volume_file.write_text(VOLUME_EXAMPLE.format(build="two"))
    resources.write_text(RESOURCE_EXAMPLES)
    src.write_text(PROCESS_EXAMPLE.format(version="v1"))
    run = lab.run([
        task("net", "cluster_network", {}),
        task("env", "apply", {"src": str(env_file), "wait": False}),
        task("resources", "apply", {"src": str(resources), "wait": False}),
        task("volume", "apply", {"src": str(volume_file)}),
        task("process", "apply", {"src": str(src)}),
        task("info", "workload_info", {"kind": "Pod"}),
    ])
    try:
        assert run.rc == 0, run.stdout[-4000:]
        pods = {p["name"]: p for p in run.result("info", lab.hosts[0])["pods"]}
        ignored = run.result("process", lab.hosts[0])["ignored_fields"]
        assert any(i.endswith("spec.volumes[1].projected.sources[0].serviceAccountToken") for i in ignored), ignored

        # kubectl logs dapi-envars-fieldref: the node's name, the pod's name and namespace, its IP, its service account.
        host = where(lab, "dapi-envars-fieldref")
        expected = f"{host}\ndapi-envars-fieldref\ndefault\n{pods['dapi-envars-fieldref']['pod_ip']}\ndefault\n"
        assert wait_until(lambda: expected in journal(lab, host, "dapi-envars-fieldref", "test-container"), 15), (
            expected, journal(lab, host, "dapi-envars-fieldref", "test-container"))
        # dapi-envars-resourcefieldref, divisor 1: the CPU values rounded up to whole cores, memory in bytes.
        host = where(lab, "dapi-envars-resourcefieldref")
        assert wait_until(lambda: "1\n1\n33554432\n67108864\n" in journal(lab, host, "dapi-envars-resourcefieldref", "test-container"), 15), \
            journal(lab, host, "dapi-envars-resourcefieldref", "test-container")
        pod = "kubernetes-downwardapi-volume-example-2"
        host = where(lab, pod)
        pid = pid_of(lab, host, pod, "client-container")
        values = [lab.ssh(host, f"nsenter --mount --target {pid} cat /etc/podinfo/{name}").stdout for name in ("cpu_limit", "cpu_request", "mem_limit")]
        values.append(lab.ssh(host, f"nsenter --mount --target {pid} cat /etc/podinfo/mem_request").stdout)
        assert values == ["250", "125", "64", "32"], values

        pod = "kubernetes-downwardapi-volume-example"
        volume_host = where(lab, pod)
        labels = podman_exec(lab, volume_host, pod, "client-container", "cat /etc/podinfo/labels")
        assert labels == 'cluster="test-cluster1"\nrack="rack-22"\nzone="us-est-coast"', labels
        annotations = podman_exec(lab, volume_host, pod, "client-container", "cat /etc/podinfo/annotations")
        assert annotations == 'build="two"\nbuilder="john-doe"', annotations
        listing = podman_exec(lab, volume_host, pod, "client-container", "ls -a /etc/podinfo").split()
        assert "..data" in listing and "labels" in listing and any(e.startswith("..20") for e in listing), listing
        assert podman_exec(lab, volume_host, pod, "client-container", "readlink /etc/podinfo/labels").strip() == "..data/labels"
        volume_pid = pid_of(lab, volume_host, pod, "client-container")

        host = where(lab, "dapi-process")
        record = lab.ssh(host, f"cat {STATE_DIR}/pods/dapi-process/pod.json").stdout
        uid = json.loads(record)["uid"]
        assert wait_until(lambda: 'app="dapi"' in journal(lab, host, "dapi-process", "main"), 15), journal(lab, host, "dapi-process", "main")
        logs = journal(lab, host, "dapi-process", "main")
        # $(VAR) expanded, $$(NODE) the literal $(NODE) (the shell's single quotes keep it), the ConfigMap's script run.
        assert f"node={host} uid={uid} sa=builder $(NODE)" in logs and "script v1 ran" in logs, logs
        pid = pid_of(lab, host, "dapi-process", "main")

        def in_container(command):
            return lab.ssh(host, f"nsenter --mount --target {pid} {command}", check=False).stdout

        assert in_container("ls /etc/cfg").split() == ["bin"]
        assert in_container("stat -L -c %a /etc/cfg/bin/run.sh").strip() == "755"
        # Other users of the host cannot reach the pod's projections.
        assert lab.ssh(host, f"stat -c %a {STATE_DIR}/pods/dapi-process/projected").stdout.strip() == "700"

        # kubectl annotate ... build=three (here: the Pod applied again with it), and the ConfigMap changed: the files
        # follow in the running containers; the subPath mount keeps its file, as in Kubernetes.
        volume_file.write_text(VOLUME_EXAMPLE.format(build="three"))
        src.write_text(PROCESS_EXAMPLE.format(version="v2"))
        run = lab.run([task("volume", "apply", {"src": str(volume_file)}), task("process", "apply", {"src": str(src)})])
        assert run.rc == 0, run.stdout[-4000:]
        annotations = podman_exec(lab, volume_host, "kubernetes-downwardapi-volume-example", "client-container", "cat /etc/podinfo/annotations")
        assert annotations == 'build="three"\nbuilder="john-doe"', annotations
        assert pid_of(lab, volume_host, "kubernetes-downwardapi-volume-example", "client-container") == volume_pid
        assert wait_until(lambda: 'build="three"' in journal(lab, volume_host, "kubernetes-downwardapi-volume-example", "client-container"), 10)
        assert pid_of(lab, host, "dapi-process", "main") == pid
        assert "script v2 ran" in in_container("/etc/cfg/bin/run.sh")
        assert "script v1 ran" in in_container("/bin/sh /etc/run-pinned.sh")
    finally:
        # The podman examples' `sh` is PID 1 of its container and ignores SIGTERM: each would take its 30 s grace period
        # to stop (as in Kubernetes). The stop is asked for, then the container killed, so that the cleanup is quick.
        units = ("hf-dapi-envars-fieldref.test-container", "hf-kubernetes-downwardapi-volume-example.client-container")
        stop = "".join(f"systemctl stop --no-block {u}.service; " for u in units) + "sleep 0.5; " + "".join(f"podman kill {u}; " for u in units)
        for node in lab.hosts:
            lab.ssh(node, stop, check=False)
        documents = (("env", env_file), ("volume", volume_file), ("resources", resources), ("process", src))
        run = lab.run([task(n, "apply", {"src": str(f), "state": "absent"}) for n, f in documents] + [task("net", "cluster_network", {"state": "absent"})])
        assert run.rc == 0, run.stdout[-3000:]
