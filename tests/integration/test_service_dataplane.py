"""The Service data path on the lab's 3 hosts (issue 14 item 2): nftables table ip hostfleet, two levels.

Level 1 (every host, from the Service files) picks a node by its ready endpoints; level 2 (that node, from its own
pods' live readiness, re-rendered by the probe hook) DNATs to a local ready pod, sends the connection on once when
it has none, or refuses it. The Service files are NOT refreshed during these tests: what follows readiness here
follows it through the hook alone.
"""

from __future__ import annotations

import json
import shlex
import threading
import time

import pytest

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import podnet
from lab import labctl

OWNER = "it-b1"
APP = "b1web"
HOST_PORT = 18090
SERVER = """
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.environ["POD_NAME"].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
"""
# Run on a host (or in a pod's namespace): after DELAY s, N requests, each on a new connection; the answers counted.
CLIENT = """
import collections, json, sys, time, urllib.request
url, n, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
time.sleep(delay)
seen = collections.Counter()
for _ in range(n):
    try:
        seen[urllib.request.urlopen(url, timeout=3).read().decode()] += 1
    except Exception as exc:
        seen["ERROR " + type(exc).__name__ + " " + str(getattr(exc, "reason", ""))] += 1
print(json.dumps(seen))
"""


def pod_name(i):
    return f"b1-web-{i}"


def unready_flag(i):
    return f"/tmp/b1-unready-{pod_name(i)}"


def pod(i):
    port = {"name": "http", "containerPort": 8080}
    if i == 1:
        port["hostPort"] = HOST_PORT  # forwarded from node1's address to the pod (pod network)
    return {
        "name": pod_name(i),
        "labels": {"app": APP},
        "spec": {
            # node3's pod is killed with -9 below and must stay dead for the measurement.
            "restartPolicy": "Never" if i == 3 else "Always",
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "web",
                "command": ["/usr/bin/python3", "-c", SERVER],
                "ports": [port],
                "readinessProbe": {"exec": {"command": ["/bin/sh", "-c", f"test ! -e {unready_flag(i)}"]}, "periodSeconds": 1, "failureThreshold": 1},
            }],
        },
    }


def address(i):
    return f"10.77.{labctl.instance()}.1{i}"


def service(lab, name, spec, state="present"):
    args = {"name": name, "state": state}
    if state == "present":
        args["spec"] = spec
    run = lab.run([{"name": "svc", "hostfleet.workloads.service": args, "run_once": True}])
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.result("svc", lab.hosts[0])


def pods_task(state="present"):
    args = {"owner": OWNER, "state": state}
    if state == "present":
        args.update(pods="{{ b1_pods }}", wait=True, wait_timeout=90)
    return {"name": "pods", "hostfleet.workloads.pod": args}


@pytest.fixture(scope="module")
def fleet(lab):
    run = lab.run([{"name": "net", "hostfleet.workloads.cluster_network": {}, "run_once": True}])
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for i in (1, 2, 3):
        lab.ssh(f"node{i}", f"rm -f {unready_flag(i)}")
    host_vars = {f"node{i}": {"b1_pods": [pod(i)]} for i in (1, 2, 3)}
    run = lab.run([pods_task()], host_vars=host_vars)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    web = service(lab, "b1-web", {"type": "NodePort", "selector": {"app": APP}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]})
    assert sorted((e["node"], e["ready"]) for e in web["endpoints"]) == [("node1", True), ("node2", True), ("node3", True)], web["endpoints"]
    none = service(lab, "b1-none", {"selector": {"app": "b1-nothing"}, "ports": [{"port": 80, "targetPort": 8080}]})
    lab.web, lab.none = web, none
    yield lab
    for name in ("b1-web", "b1-none"):
        service(lab, name, None, state="absent")
    lab.run([pods_task("absent")])
    for i in (1, 2, 3):
        lab.ssh(f"node{i}", f"rm -f {unready_flag(i)}")
    run = lab.run([{"name": "net", "hostfleet.workloads.cluster_network": {"state": "absent"}, "run_once": True}])
    assert run.rc == 0, run.stdout[-3000:]


def sample(lab, host, url, n=30, delay=0.0, netns=None):
    prefix = f"ip netns exec {netns} " if netns else ""
    command = f"{prefix}python3 -c {shlex.quote(CLIENT)} {url} {n} {delay}"
    done = lab.ssh(host, command, timeout=60 + n * 4)
    return json.loads(done.stdout)


def sample_everywhere(lab, url, n=30, delay=0.0, before=None):
    """{host: answers} from all 3 hosts at once; ``before`` (host, command) runs first in the same ssh as that
    host's sampler, so that ``delay`` counts from it."""
    results, threads = {}, []

    def one(host):
        prefix = f"{before[1]} && " if before and before[0] == host else ""
        command = f"{prefix}python3 -c {shlex.quote(CLIENT)} {url} {n} {delay}"
        try:
            results[host] = json.loads(lab.ssh(host, command, timeout=60 + n * 4).stdout)
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            results[host] = {"SAMPLER FAILED": str(exc)}

    for host in lab.hosts:
        threads.append(threading.Thread(target=one, args=(host,)))
        threads[-1].start()
    for thread in threads:
        thread.join()
    return results


def test_the_vip_reaches_ready_endpoints_on_all_hosts_from_every_host_and_pod(fleet):
    vip = fleet.web["cluster_ip"]
    answers = sample_everywhere(fleet, f"http://{vip}/", n=40)
    for host, seen in answers.items():
        assert set(seen) == {pod_name(1), pod_name(2), pod_name(3)}, (host, seen)
    # From a pod: and the pod reaches its own Service, itself among the answers (hairpin through the host).
    seen = sample(fleet, "node1", f"http://{vip}/", n=40, netns=podnet.netns_name(pod_name(1)))
    assert set(seen) == {pod_name(1), pod_name(2), pod_name(3)}, seen
    # The table says it: node1's level 1 sends to both peers (one marking chain each), its level 2 to its own pod.
    table = fleet.ssh("node1", "nft list table ip hostfleet").stdout
    assert vip in table and table.count("meta mark set 0x001f") == 2, table
    pod_ip = fleet.ssh("node1", f"ip -n {podnet.netns_name(pod_name(1))} -4 -br addr show eth0").stdout.split()[2].split("/")[0]
    assert f"dnat to {pod_ip}:8080" in table, table


def test_node_port_and_host_port(fleet):
    node_port = fleet.web["service"]["ports"][0]["node_port"]
    assert 30000 <= node_port <= 32767
    seen = sample(fleet, "node1", f"http://{address(2)}:{node_port}/", n=30)
    assert set(seen) == {pod_name(1), pod_name(2), pod_name(3)}, seen
    seen = sample(fleet, "node2", f"http://{address(2)}:{node_port}/", n=10)  # the host's own nodePort
    assert set(seen) <= {pod_name(1), pod_name(2), pod_name(3)} and sum(seen.values()) == 10, seen
    assert sample(fleet, "node3", f"http://{address(1)}:{HOST_PORT}/", n=5) == {pod_name(1): 5}
    assert sample(fleet, "node1", f"http://{address(1)}:{HOST_PORT}/", n=5) == {pod_name(1): 5}


CONNECT = """
import socket, sys, time
start = time.monotonic()
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10).close()
    print("connected", time.monotonic() - start)
except OSError as exc:
    print(type(exc).__name__, time.monotonic() - start)
"""


def test_no_endpoints_is_refused_at_once(fleet):
    vip = fleet.none["cluster_ip"]
    for host in ("node1", "node3"):
        outcome, elapsed = fleet.ssh(host, f"python3 -c {shlex.quote(CONNECT)} {vip} 80").stdout.split()
        # Refused (a TCP reset), as kube-proxy does: not a timeout.
        assert outcome == "ConnectionRefusedError" and float(elapsed) < 1.0, (host, outcome, elapsed)


def test_an_unready_pod_leaves_every_hosts_rules_within_period_plus_1s(fleet):
    vip = fleet.web["cluster_ip"]
    # periodSeconds 1, failureThreshold 1: from the flag on, 2 s later no new connection may reach it.
    answers = sample_everywhere(fleet, f"http://{vip}/", n=30, delay=2.0, before=("node2", f"touch {unready_flag(2)}"))
    for host, seen in answers.items():
        assert set(seen) == {pod_name(1), pod_name(3)}, (host, seen)  # every request answered, none by the unready pod
    fleet.ssh("node2", f"rm -f {unready_flag(2)}")
    deadline = time.monotonic() + 10
    while pod_name(2) not in sample(fleet, "node1", f"http://{vip}/", n=15) and time.monotonic() < deadline:
        pass
    assert pod_name(2) in sample(fleet, "node3", f"http://{vip}/", n=30), "the pod did not come back when ready again"


def test_a_killed_pod_leaves_every_hosts_rules_within_period_plus_1s(fleet):
    vip = fleet.web["cluster_ip"]
    kill = f"systemctl kill --signal=KILL hf-{pod_name(3)}.web.service"
    answers = sample_everywhere(fleet, f"http://{vip}/", n=30, delay=2.0, before=("node3", kill))
    for host, seen in answers.items():
        # Hosts whose Service file still counts node3's endpoint send there: node3 sends the connection on, once.
        assert set(seen) == {pod_name(1), pod_name(2)}, (host, seen)
    state = fleet.ssh("node3", f"systemctl show -p ActiveState --value hf-{pod_name(3)}.web.service").stdout.strip()
    assert state in ("failed", "inactive"), state
