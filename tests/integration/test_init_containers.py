"""Init containers and native sidecars on the lab's real hosts (issue 15), systemd being the judge.

- Kubernetes' "Init Containers" example (kubernetes.io/docs/concepts/workloads/pods/init-containers/), unchanged:
  myapp-pod's init containers wait with `until nslookup myservice...` for the Services myservice and mydb, which our
  cluster DNS answers once they exist: the pod shows Init:0/2 until then, then Running. The stand-in busybox:1.28
  image carries /var/run/secrets/kubernetes.io/serviceaccount/namespace (what Kubernetes mounts from the pod's
  service account, which hosts do not have: the example's commands read their namespace there).
- Kubernetes' "Sidecar Containers" example (kubernetes.io/docs/concepts/workloads/pods/sidecar-containers/): the
  Deployment `myapp` whose logshipper sidecar tails the file the app writes, and the Job `myjob` with the same
  sidecar, which completes. The examples say `image: alpine:latest`; no registry is reachable here and the stand-in
  image is busybox's, so they say `busybox:1.28` (the same `sh`, `tail -F`, `echo`, `sleep`).
- Process pods: kill -9 of an app container does not run the init containers again, a re-run of the play changes
  and restarts nothing, an init container failing under restartPolicy Never fails the pod (Init:Error) and one
  failing under Always crash-loops (Init:CrashLoopBackOff); stopping the pod stops its sidecar after the app.
"""

from __future__ import annotations

import time

import pytest

from lab import labctl
from lab.images import build_images

pytestmark = pytest.mark.slow

STATE_DIR = "/var/lib/hostfleet"
NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

INIT_EXAMPLE = r"""apiVersion: v1
kind: Pod
metadata:
  name: myapp-pod
  labels:
    app.kubernetes.io/name: MyApp
spec:
  containers:
  - name: myapp-container
    image: busybox:1.28
    command: ['sh', '-c', 'echo The app is running! && sleep 3600']
  initContainers:
  - name: init-myservice
    image: busybox:1.28
    command: ['sh', '-c', "until nslookup myservice.$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace).svc.cluster.local; \
      do echo waiting for myservice; sleep 2; done"]
  - name: init-mydb
    image: busybox:1.28
    command: ['sh', '-c', "until nslookup mydb.$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace).svc.cluster.local; \
      do echo waiting for mydb; sleep 2; done"]
"""

SERVICES = """\
---
apiVersion: v1
kind: Service
metadata:
  name: myservice
spec:
  ports:
  - protocol: TCP
    port: 80
    targetPort: 9376
---
apiVersion: v1
kind: Service
metadata:
  name: mydb
spec:
  ports:
  - protocol: TCP
    port: 80
    targetPort: 9377
"""

SIDECAR_EXAMPLES = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: myapp
  labels:
    app: myapp
spec:
  replicas: 1
  selector:
    matchLabels:
      app: myapp
  template:
    metadata:
      labels:
        app: myapp
    spec:
      containers:
        - name: myapp
          image: busybox:1.28
          command: ['sh', '-c', 'while true; do echo "logging" >> /opt/logs.txt; sleep 1; done']
          volumeMounts:
            - name: data
              mountPath: /opt
      initContainers:
        - name: logshipper
          image: busybox:1.28
          restartPolicy: Always
          command: ['sh', '-c', 'tail -F /opt/logs.txt']
          volumeMounts:
            - name: data
              mountPath: /opt
      volumes:
        - name: data
          emptyDir: {}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: myjob
spec:
  template:
    spec:
      containers:
        - name: myjob
          image: busybox:1.28
          command: ['sh', '-c', 'echo "logging" > /opt/logs.txt']
          volumeMounts:
            - name: data
              mountPath: /opt
      initContainers:
        - name: logshipper
          image: busybox:1.28
          restartPolicy: Always
          command: ['sh', '-c', 'tail -F /opt/logs.txt']
          volumeMounts:
            - name: data
              mountPath: /opt
      restartPolicy: Never
      volumes:
        - name: data
          emptyDir: {}
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


def pods_by_name(info):
    return {pod["name"]: pod for pod in info["pods"]}


def where(lab, pod):
    for host in lab.hosts:
        if lab.ssh(host, f"test -e {STATE_DIR}/pods/{pod}/pod.json", check=False).returncode == 0:
            return host
    raise AssertionError(f"pod {pod} is on no host")


# Stops a pod's container units (systemd's order) and kills each container once its unit is stopping: the examples'
# `sh -c` (or `tail`) runs as the container's PID 1, which ignores SIGTERM, so each stop would wait the 30 s grace
# period (Kubernetes' too); the test does not wait for that.
STOP_FAST = r"""
units=$(for pod in "$@"; do systemctl list-units --all --plain --no-legend "hf-$pod.*.service"; done | awk '{print $1}' | grep -v '[.]_netns[.]')
[ -n "$units" ] || exit 0
systemctl stop --no-block $units
for i in $(seq 150); do
  left=0
  for unit in $units; do
    case $(systemctl show -P ActiveState "$unit") in
      deactivating) podman kill "${unit%.service}" >/dev/null 2>&1 || true; left=1;;
      inactive|failed) ;;
      *) left=1;;
    esac
  done
  [ $left = 0 ] && exit 0
  sleep 0.2
done
exit 1
"""


def stop_fast(lab, *pods):
    for host in lab.hosts:
        done = labctl.ssh(host, f"sh -s -- {' '.join(pods)}", check=False, timeout=60, input=STOP_FAST)
        assert done.returncode == 0, (host, pods, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def busybox(lab):
    return build_images(lab.hosts, "busybox", "1.28", {NAMESPACE_FILE: "default"})


def test_the_kubernetes_io_init_containers_and_sidecar_examples(lab, busybox, tmp_path):
    """Both pages' examples in one set of plays (each play costs seconds): the Init Containers example first, alone
    until its Services come with the Sidecar Containers examples."""
    pod_file, rest_file = tmp_path / "myapp.yaml", tmp_path / "services-and-sidecars.yaml"
    pod_file.write_text(INIT_EXAMPLE)
    rest_file.write_text(SERVICES + "---\n" + SIDECAR_EXAMPLES)
    run = lab.run([
        task("net", "cluster_network", {}),
        task("pod", "apply", {"src": str(pod_file), "wait": False}),
        task("info", "workload_info", {"kind": "Pod", "name": "myapp-pod"}),
    ])
    pods = {}
    try:
        assert run.rc == 0, run.stdout[-4000:]
        pod = run.result("info", lab.hosts[0])["pods"][0]
        # No Service yet: the first init container loops in its nslookup, the second one and the app wait.
        assert (pod["status"], pod["phase"], pod["ready_containers"]) == ("Init:0/2", "Pending", "0/1"), pod
        assert [c["name"] for c in pod["init_containers"]] == ["init-myservice", "init-mydb"]
        host = where(lab, "myapp-pod")
        assert lab.ssh(host, "systemctl is-active hf-myapp-pod.init-mydb.service", check=False).stdout.strip() == "inactive"

        running = "(info.pods | selectattr('name', 'equalto', 'myapp-pod') | first).status == 'Running'"
        run = lab.run([
            task("apply", "apply", {"src": str(rest_file), "wait_timeout": 120}),
            task("info", "workload_info", {}, register="info", until=running, retries=30, delay=1),
            task("logs", "pod_logs", {"pod": "myapp-pod", "container": "init-myservice"}),
        ])
        assert run.rc == 0, run.stdout[-4000:]
        pods = pods_by_name(run.result("info", lab.hosts[0]))

        # Init Containers: the Services exist, the init containers completed in order, the app runs.
        pod = pods["myapp-pod"]
        assert (pod["status"], pod["phase"], pod["ready"], pod["restarts"]) == ("Running", "Running", True, 0), pod
        assert [(c["name"], c["state"]["terminated"]["reason"], c["state"]["terminated"]["exitCode"]) for c in pod["init_containers"]] == [
            ("init-myservice", "Completed", 0), ("init-mydb", "Completed", 0)]
        # kubectl logs myapp-pod -c init-myservice
        assert "waiting for myservice" in run.result("logs", lab.hosts[0])["messages"], run.result("logs", lab.hosts[0])
        logs = lab.ssh(host, "journalctl -q -o cat -t myapp-pod/myapp-container").stdout
        assert "The app is running!" in logs, logs

        # Sidecar Containers: the Deployment's logshipper ships what the app writes; it counts in READY (kubectl's 2/2).
        deployment, job = [o for o in run.result("apply", lab.hosts[0])["objects"] if o["kind"] != "Service"]
        assert (deployment["kind"], deployment["status"]["readyReplicas"]) == ("Deployment", 1), deployment
        assert (job["kind"], job["status"]["succeeded"]) == ("Job", 1), job
        app = next(p for name, p in pods.items() if name.startswith("myapp-") and name != "myapp-pod")
        assert (app["status"], app["ready_containers"]) == ("Running", "2/2"), app
        assert list(app["init_containers"][0]["state"]) == ["running"]
        app_host = where(lab, app["name"])
        shipped = wait_until(lambda: lab.ssh(app_host, f"podman logs hf-{app['name']}.logshipper", check=False).stdout.count("logging") >= 2, 10)
        assert shipped, lab.ssh(app_host, f"podman logs hf-{app['name']}.logshipper", check=False)
        # The Job completed although its sidecar never ends by itself: the sidecar is stopped once the app container is done.
        jobpod = next(p for name, p in pods.items() if name.startswith("myjob-"))
        assert (jobpod["phase"], jobpod["status"]) == ("Succeeded", "Completed"), jobpod
        unit = f"hf-{jobpod['name']}.logshipper.service"
        stopping = ("deactivating", "inactive")  # (its tail, the container's PID 1, ignores SIGTERM: the grace period runs)
        assert wait_until(lambda: lab.ssh(where(lab, jobpod["name"]), f"systemctl show -P ActiveState {unit}").stdout.strip() in stopping, 10)
    finally:
        since = lab.ssh(lab.hosts[0], "date +%s.%N").stdout.strip()  # (the lab hosts share this machine's clock)
        stop_fast(lab, "myapp-pod", *sorted(pods))
        run = lab.run([
            task("rest", "apply", {"src": str(rest_file), "state": "absent"}),
            task("pod", "apply", {"src": str(pod_file), "state": "absent"}),
            task("net", "cluster_network", {"state": "absent"}),
        ])
        assert run.rc == 0, run.stdout[-3000:]
    # Stopping the Deployment's pod stopped the app container first, then its sidecar.
    units = f"-u hf-{app['name']}.myapp.service -u hf-{app['name']}.logshipper.service"
    stopped = lab.ssh(app_host, f"journalctl -q -o cat _PID=1 --since=@{since} {units} | grep '^Stopped'").stdout
    order = [line for line in stopped.splitlines() if line.startswith("Stopped")]
    assert len(order) == 2 and "myapp.service" in order[0] and "logshipper.service" in order[1], order


def process_pods():
    """Three process pods of one owner: one that initializes (a counter init container, a sidecar, a second init
    container that checks the first one's work), one whose init container fails under Never, one that crash-loops."""
    count = {"name": "count", "command": ["/bin/sh", "-c", "echo run >> /work/init-runs"], "volumeMounts": [{"name": "work", "mountPath": "/work"}]}
    # (Named so that it sorts before "main": a systemctl call that stops both enqueues it first.)
    side = {"name": "log-agent", "command": ["/bin/sleep", "infinity"], "restartPolicy": "Always",
            "startupProbe": {"exec": {"command": ["/bin/true"]}, "initialDelaySeconds": 2, "periodSeconds": 1}}
    check = {"name": "check", "command": ["/bin/sh", "-c", "test -s /work/init-runs"], "volumeMounts": [{"name": "work", "mountPath": "/work"}]}
    main = {"name": "main", "command": ["/bin/sleep", "infinity"]}
    return [
        {"name": "it-init-ok", "spec": {"terminationGracePeriodSeconds": 2, "initContainers": [count, side, check], "containers": [main],
                                        "volumes": [{"name": "work", "emptyDir": {}}]}},
        {"name": "it-init-never", "spec": {"restartPolicy": "Never", "initContainers": [{"name": "fail", "command": ["/bin/sh", "-c", "exit 3"]}],
                                           "containers": [main]}},
        {"name": "it-init-loop", "spec": {"initContainers": [{"name": "fail", "command": ["/bin/false"]}], "containers": [main]}},
    ]


def test_process_pods_init_once_fail_crash_loop_and_stop_sidecars_last(lab):
    node = lab.hosts[0]
    pod_task = task("pods", "pod", {"owner": "it-init", "pods": process_pods()})
    info_task = task("info", "pod_info", {"owner": "it-init"})
    run = lab.run([pod_task], hosts=node)
    try:
        assert run.rc == 0 and run.result("pods", node)["changed"], run.stdout[-3000:]
        assert wait_until(lambda: lab.ssh(node, "systemctl is-active hf-it-init-ok.main.service", check=False).stdout.strip() == "active", 20)
        # The init container after the sidecar started once the sidecar's startup probe passed (its initialDelaySeconds: 2).
        starts = lab.ssh(node, "systemctl show -P ExecMainStartTimestampMonotonic hf-it-init-ok.log-agent.service hf-it-init-ok.check.service").stdout
        side_start, check_start = (int(v) for v in starts.split())
        assert check_start - side_start >= 2_000_000, (side_start, check_start)
        ok_pid = lab.ssh(node, "systemctl show -P MainPID hf-it-init-ok.main.service").stdout.strip()
        lab.ssh(node, f"kill -9 {ok_pid}")
        assert wait_until(lambda: lab.ssh(node, "systemctl show -P MainPID hf-it-init-ok.main.service").stdout.strip() not in ("0", ok_pid), 10)
        time.sleep(1)  # the crash-looping pod's second failure
        run = lab.run([pod_task, info_task], hosts=node)
        assert run.rc == 0, run.stdout[-3000:]
        # A re-run changes nothing and restarts nothing (the crash-looping pod's app container is not started again).
        assert not run.result("pods", node)["changed"], run.result("pods", node)
        pods = pods_by_name(run.result("info", node))
        ok, never, loop = pods["it-init-ok"], pods["it-init-never"], pods["it-init-loop"]
        # kill -9 of the app container restarted it alone: the init containers ran once.
        assert lab.ssh(node, f"cat {STATE_DIR}/pods/it-init-ok/volumes/work/init-runs").stdout == "run\n"
        assert (ok["phase"], ok["ready"], ok["init_status"], ok["containers"][0]["restart_count"]) == ("Running", True, None, 1), ok
        states = [(c["name"], next(iter(c["state"]))) for c in ok["init_containers"]]
        assert states == [("count", "terminated"), ("log-agent", "running"), ("check", "terminated")], states
        assert (never["phase"], never["init_status"]) == ("Failed", "Init:Error"), never
        assert never["init_containers"][0]["last_exit_code"] == 3 and never["containers"][0]["last_exit_code"] is None
        assert lab.ssh(node, "systemctl show -P ExecMainStartTimestampMonotonic hf-it-init-never.main.service").stdout.strip() == "0"  # never ran
        assert (loop["phase"], loop["init_status"]) == ("Pending", "Init:CrashLoopBackOff"), loop
    finally:
        since = lab.ssh(node, "date +%s.%N").stdout.strip()
        run = lab.run([task("pods", "pod", {"owner": "it-init", "state": "absent"})], hosts=node)
        assert run.rc == 0, run.stdout[-3000:]
    units = "-u hf-it-init-ok.main.service -u hf-it-init-ok.log-agent.service"
    stopped = lab.ssh(node, f"journalctl -q -o cat _PID=1 --since=@{since} {units} | grep '^Stopped'").stdout
    order = [line for line in stopped.splitlines() if line.startswith("Stopped")]
    assert len(order) == 2 and "main.service" in order[0] and "log-agent.service" in order[1], order
