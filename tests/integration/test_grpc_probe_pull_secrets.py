"""Issue 15 on a real host, systemd being the judge: probes of type grpc against a real gRPC health server, and
imagePullSecrets against a registry that asks for credentials (the lab registry with htpasswd).

Kubernetes' own examples, from the kubernetes.io pages "Configure Liveness, Readiness and Startup Probes" (the gRPC
liveness probe) and "Pull an Image from a Private Registry", with what had to change here said where it is:

- The gRPC example runs ``registry.k8s.io/etcd:3.5.1-0`` with ``livenessProbe: {grpc: {port: 2379},
  initialDelaySeconds: 10}``. No public registry is reachable, so there is no etcd image: the pod ``etcd-with-grpc``
  keeps the names and the probe stanza, and its container ``etcd`` is a process serving the standard gRPC health
  service on 2379 (grpcio and grpcio-health-checking, the cp311 wheels copied to the host: Debian 12's Python 3.11).
- The private registry example's pod ``private-reg`` (container ``private-reg-container``, ``imagePullSecrets:
  [{name: regcred}]``, the Secret made from a docker config, type kubernetes.io/dockerconfigjson) pulls
  ``<registry>/private/busybox:1.28`` (the lab's busybox, pushed with credentials); it is given a command (sleep),
  as the lab image's default command (a shell) would exit at once.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import subprocess
import time

import pytest

from lab import labctl
from lab.images import build_images
from lab.registry import Registry

NODE = "node1"
OWNER = "h5-issue15"
BASE = "/opt/hf-grpc-test"
SITE = f"{BASE}/site"
# cp311 manylinux wheels of grpcio, grpcio-health-checking, protobuf and typing_extensions: scripts/setup downloads them.
WHEELS = os.path.join(os.environ.get("HOSTFLEET_CACHE", "/var/cache/hostfleet"), "lab", "grpc-wheels-cp311")
HEALTH_SERVER = """
import sys
from concurrent import futures
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
servicer = health.HealthServicer()
health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
server.add_insecure_port("0.0.0.0:" + sys.argv[1])
servicer.set("", health_pb2.HealthCheckResponse.SERVING)
servicer.set("cache", health_pb2.HealthCheckResponse.NOT_SERVING)
server.start()
server.wait_for_termination()
"""
# The registry's only user; the bcrypt hash (cost 5) of PASSWORD, made once with crypt.crypt (htpasswd's format).
USER, PASSWORD = "puller", "s3cret-pull"
HTPASSWD = "puller:$2b$05$OFrCUWGn3wrC104yUHMZeucBaiKag7ZaNucTQrL6uki22t6lfug7a\n"


STARTED = time.time()


def wait_until(predicate, timeout, interval=0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def pods_task(name, pods, state="present", **extra):
    return {"name": name, "hostfleet.workloads.pod": dict({"owner": OWNER, "pods": pods, "state": state}, **extra)}


def pod_info(lab):
    res = lab.run([{"name": "info", "hostfleet.workloads.pod_info": {"owner": OWNER}}], hosts=NODE).result("info", NODE)
    return {p["name"]: p for p in res["pods"]}


def events(lab, pod, container=None):
    """The pod's (or one container's) events as the hook wrote them to the journal: [(reason, message)]."""
    match = f" HF_CONTAINER={container}" if container else ""
    # Since this module started: the journal keeps earlier runs' events of the same names.
    out = lab.ssh(NODE, f"journalctl -o json --no-pager --since=@{int(STARTED)} SYSLOG_IDENTIFIER=hostfleet-event HF_POD={pod}{match}").stdout
    return [(e["HF_REASON"], e["MESSAGE"]) for e in map(json.loads, out.splitlines())]


@pytest.fixture(scope="module")
def node(lab):
    wheels = sorted(glob.glob(os.path.join(WHEELS, "*.whl")))
    assert {os.path.basename(w).split("-")[0] for w in wheels} >= {"grpcio", "grpcio_health_checking", "protobuf", "typing_extensions"}, WHEELS
    lab.ssh(NODE, f"rm -rf {BASE} && mkdir -p {SITE} {BASE}/wheels")
    subprocess.run(["scp", "-q", "-F", str(labctl.ssh_config_path()), *wheels, f"{NODE}:{BASE}/wheels/"], check=True, timeout=120)
    # A wheel is a zip of the files site-packages holds: unpacked, it needs no pip on the host.
    lab.ssh(NODE, f"cd {BASE}/wheels && for w in *.whl; do python3 -m zipfile -e $w {SITE}; done")
    labctl.ssh(NODE, f"cat > {BASE}/health_server.py", input=HEALTH_SERVER)
    lab.run([pods_task("clean", [], state="absent")], hosts=NODE)
    yield lab
    lab.run([pods_task("clean", [], state="absent")], hosts=NODE)
    lab.ssh(NODE, f"rm -rf {BASE}")


def health_container(name, port, **probes):
    return dict({
        "name": name,
        "command": ["/usr/bin/python3", f"{BASE}/health_server.py", str(port)],
        "env": [{"name": "PYTHONPATH", "value": SITE}],
        "ports": [{"containerPort": port}],
    }, **probes)


def test_grpc_probes_against_a_real_health_server(node):
    lab = node
    etcd = {"name": "etcd-with-grpc", "spec": {"terminationGracePeriodSeconds": 1, "containers": [
        health_container("etcd", 2379, livenessProbe={"grpc": {"port": 2379}, "initialDelaySeconds": 10}),
    ]}}
    # A server whose "cache" service is NOT_SERVING, probed by a second container's readiness (no server of its own).
    checked = {"name": "grpc-health", "spec": {"terminationGracePeriodSeconds": 1, "containers": [
        health_container("server", 50051, readinessProbe={"grpc": {"port": 50051}, "periodSeconds": 1}),
        # A CPU limit below 10m (Kubernetes accepts it; the kubelet clamps it to its smallest quota): the same here.
        {"name": "cache-client", "command": ["/bin/sleep", "infinity"], "resources": {"limits": {"cpu": "5m"}},
         "readinessProbe": {"grpc": {"port": 50051, "service": "cache"}, "periodSeconds": 1, "timeoutSeconds": 2}},
    ]}}
    run = lab.run([pods_task("create", [etcd, checked])], hosts=NODE)
    assert run.rc == 0, run.stdout[-3000:]
    clamp = "pods[1].spec.containers[cache-client].resources.limits.cpu: 5m is below the smallest CPU quota (1 ms per 100 ms period): clamped to 10m"
    assert any(w.startswith(clamp) for w in run.result("create", NODE).get("warnings", [])), run.result("create", NODE)
    assert lab.ssh(NODE, "systemctl show -p CPUQuotaPerSecUSec hf-grpc-health.cache-client.service").stdout.strip() == "CPUQuotaPerSecUSec=10ms"

    def server_ready_client_not():
        pods = pod_info(lab)
        containers = {c["name"]: c for c in pods["grpc-health"]["containers"]}
        return pods if containers["server"]["ready"] and not containers["cache-client"]["ready"] and events(lab, "grpc-health") else None

    pods = wait_until(server_ready_client_not, timeout=30, interval=1)
    assert pods, pod_info(lab)
    # Before the server listens: the kubelet's connection error; once it answers: its NOT_SERVING for "cache".
    unhealthy = [m for r, m in events(lab, "grpc-health", "cache-client") if r == "Unhealthy"]
    refused = 'error: failed to connect service at "127.0.0.1:50051": Connection refused'
    assert unhealthy[-1].endswith('): service unhealthy (responded with "NOT_SERVING")'), unhealthy
    assert all(m.startswith("Readiness probe failed (") and m.endswith((refused, '(responded with "NOT_SERVING")')) for m in unhealthy), unhealthy
    # The documented stanza: after its 10 s delay the liveness probe finds etcd SERVING, and nothing restarts.
    counters = "/run/hostfleet/pods/etcd-with-grpc/etcd/probe-liveness.json"

    def counted():
        return lab.ssh(NODE, f"cat {counters}", check=False).stdout.strip()

    done = wait_until(counted, timeout=30, interval=1)
    assert json.loads(done)["successes"] >= 1 and json.loads(done)["failures"] == 0
    assert pod_info(lab)["etcd-with-grpc"]["restart_count"] == 0 and not [e for e in events(lab, "etcd-with-grpc") if e[0] == "Unhealthy"]
    # The server gone: the liveness probe's message is the kubelet's connection error, and the pod is restarted.
    lab.run([pods_task("drop", [], remove=["grpc-health"], prune=False)], hosts=NODE)
    # Stopped, not killed: the kernel still accepts the connection, and no HTTP/2 answer comes.
    lab.ssh(NODE, "pkill -STOP -f '[h]ealth_server.py 2379'")
    try:
        failed = wait_until(lambda: [m for r, m in events(lab, "etcd-with-grpc") if r == "Unhealthy"], timeout=25, interval=1)
    finally:
        lab.ssh(NODE, "pkill -CONT -f '[h]ealth_server.py 2379'", check=False)
    assert failed and failed[0] == "Liveness probe failed (1/3): timeout: health rpc did not complete within 1s", failed


def docker_config(registry, user, password):
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps({"auths": {registry: {"username": user, "password": password, "auth": token}}})


@pytest.mark.slow
def test_image_pull_secrets_against_a_registry_that_asks_for_credentials(node):
    lab = node
    build_images([NODE], "busybox", "1.28", {})
    with Registry(lab.hosts, htpasswd=HTPASSWD) as registry:
        image = registry.push(NODE, "localhost/busybox:1.28", "private/busybox:1.28", creds=f"{USER}:{PASSWORD}")
        secret = {".dockerconfigjson": base64.b64encode(docker_config(registry.address, USER, PASSWORD).encode()).decode()}

        def pod(name, secrets):
            spec = {"terminationGracePeriodSeconds": 1, "containers": [
                {"name": "private-reg-container", "image": image, "imagePullPolicy": "Always", "command": ["/bin/sleep", "3600"]}]}
            if secrets:
                spec["imagePullSecrets"] = [{"name": s} for s in secrets]
            return {"name": name, "spec": spec}

        run = lab.run([
            {"name": "secret", "hostfleet.workloads.config_data": {"kind": "Secret", "name": "regcred", "files": secret}},
            pods_task("create", [pod("private-reg", ["regcred"]), pod("no-secret", []), pod("missing-secret", ["nosuch"])]),
        ], hosts=NODE)
        assert run.rc == 0, run.stdout[-3000:]

        def settled():
            pods = pod_info(lab)
            return pods if pods["private-reg"]["phase"] == "Running" and pods["no-secret"]["reason"] and pods["missing-secret"]["reason"] else None

        pods = wait_until(settled, timeout=40, interval=1)
        assert pods, pod_info(lab)
        for name in ("no-secret", "missing-secret"):
            assert pods[name]["phase"] == "Pending" and pods[name]["reason"] in ("ErrImagePull", "ImagePullBackOff"), pods[name]
            assert "authentication required" in pods[name]["message"] or "unauthorized" in pods[name]["message"], pods[name]["message"]
        assert "image pull secrets not retrieved: nosuch (not found)" in pods["missing-secret"]["message"]
        retrieve = "Unable to retrieve some image pull secrets (nosuch (not found)); attempting to pull the image may not succeed."
        assert ("FailedToRetrieveImagePullSecret", retrieve) in events(lab, "missing-secret")
        # The credentials: in the pod's root-only auth file, and nowhere else the host shows.
        assert lab.ssh(NODE, "stat -c '%a %U' /run/hostfleet/pods/private-reg/auth.json").stdout.split() == ["600", "root"]
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        shown = lab.ssh(NODE, "systemctl cat 'hf-private-reg.*' 'hf-no-secret.*'; ps -eo args; journalctl --no-pager -n 2000; "
                              "cat /run/hostfleet/pods/*/*/status.json /var/lib/hostfleet/pods/*/pod.json", check=False).stdout
        assert "--authfile=/run/hostfleet/pods/private-reg/auth.json" in shown
        assert PASSWORD not in shown and token not in shown
        assert PASSWORD not in run.stdout and token not in run.stdout
        lab.run([pods_task("clean", [], state="absent")], hosts=NODE)

        # A Deployment of a ':latest' image (pull policy Always): the controller pins the image's ID, pulling it on a
        # node with the template's imagePullSecrets (the image_id module), then its pod pulls with them too.
        latest = registry.push(NODE, "localhost/busybox:1.28", "private/busybox:latest", creds=f"{USER}:{PASSWORD}")
        template = {"metadata": {"labels": {"app": "private-reg"}}, "spec": {
            "terminationGracePeriodSeconds": 1, "imagePullSecrets": [{"name": "regcred"}],
            "containers": [{"name": "private-reg-container", "image": latest, "command": ["/bin/sleep", "3600"]}]}}
        run = lab.run([
            {"name": "secret", "hostfleet.workloads.config_data": {"kind": "Secret", "name": "regcred", "files": secret}},
            {"name": "deploy", "hostfleet.workloads.deployment": {"name": "private-reg", "replicas": 1, "template": template, "wait_timeout": 60},
             "run_once": True},
        ])
        deployed = run.result("deploy", lab.hosts[0])
        assert run.rc == 0 and deployed["status"]["readyReplicas"] == 1, run.stdout[-3000:]
        assert PASSWORD not in run.stdout and token not in run.stdout
        lab.run([{"name": "deploy", "hostfleet.workloads.deployment": {"name": "private-reg", "state": "absent"}, "run_once": True},
                 {"name": "secret", "hostfleet.workloads.config_data": {"kind": "Secret", "name": "regcred", "state": "absent"}}])
