"""The node-level pod network (the pod module's pod_network) on a real lab host: a namespace and an address per pod."""

from __future__ import annotations

import time

import pytest

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import podnet

OWNER = "it-net"
CIDR = "10.244.3.0/24"
HOST = "node1"

# A web server that answers with its pod's name, on port 8080 in every pod: on the host's network the second one
# would crash-loop with "Address already in use".
SERVER = """
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(os.environ["POD_NAME"].encode())
    def log_message(self, *args):
        pass
http.server.HTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
"""
# A second container of the pod that reaches the first one on localhost and says what it got, in its journal.
SIDECAR = """
import time, urllib.request
while True:
    try:
        print("got " + urllib.request.urlopen("http://127.0.0.1:8080/", timeout=1).read().decode(), flush=True)
        break
    except OSError:
        time.sleep(0.2)
time.sleep(100000)
"""


def web(name, sidecar=False):
    containers = [
        {
            "name": "web",
            "command": ["/usr/bin/python3", "-c", SERVER],
            "ports": [{"containerPort": 8080}],
            # The probe's default host: the pod's own address, not the host's loopback (nothing listens there).
            "readinessProbe": {"httpGet": {"port": 8080, "path": "/"}, "periodSeconds": 1},
        }
    ]
    if sidecar:
        containers.append({"name": "side", "command": ["/usr/bin/python3", "-c", SIDECAR]})
    return {"name": name, "labels": {"app": OWNER}, "spec": {"containers": containers}}


def pod_task(name, pods, state="present", **extra):
    args = {"owner": OWNER, "pods": pods, "state": state, "pod_network": {"cidr": CIDR}}
    args.update(extra)
    return {"name": name, "hostfleet.workloads.pod": args}


def fetch(lab, address):
    """What the pod at ``address`` answers on port 8080, asked from the host."""
    return lab.ssh(HOST, f"curl -sS --max-time 3 http://{address}:8080/").stdout.strip()


def ips(result):
    return {p["name"]: p["pod_ip"] for p in result["pods"]}


@pytest.fixture
def clean(lab):
    yield
    lab.run([{"name": "cleanup", "hostfleet.workloads.pod": {"owner": OWNER, "state": "absent"}}], hosts=HOST)


def test_two_pods_on_one_port_each_with_its_own_address_kept_and_freed(lab, clean):
    run = lab.run([pod_task("create", [web("net-a", sidecar=True), web("net-b")], wait=True, wait_timeout=60)], hosts=HOST)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    created = run.result("create", HOST)
    # Both ready: their probes reached each pod's server at its own address.
    assert {p["name"]: (p["phase"], p["ready"], p["restart_count"]) for p in created["pods"]} == {
        "net-a": ("Running", True, 0),
        "net-b": ("Running", True, 0),
    }
    addresses = ips(created)
    assert addresses == {"net-a": "10.244.3.2", "net-b": "10.244.3.3"}
    # From the host, each answers on its own address; its sidecar reached it on localhost.
    assert {name: fetch(lab, ip) for name, ip in addresses.items()} == {"net-a": "net-a", "net-b": "net-b"}

    def journal():
        return lab.ssh(HOST, "journalctl -q -o cat -u hf-net-a.side.service").stdout

    deadline = time.time() + 10
    while "got net-a" not in journal() and time.time() < deadline:
        time.sleep(0.3)
    assert "got net-a" in journal()
    # The containers are in the pod's namespace, which has its address on eth0 and a default route via the bridge.
    inside = lab.ssh(HOST, "ip -n hf-net-a -4 -o addr show dev eth0; ip -n hf-net-a route show default").stdout
    assert "10.244.3.2/24" in inside and "default via 10.244.3.1 dev eth0" in inside

    rerun = lab.run([pod_task("rerun", [web("net-a", sidecar=True), web("net-b")])], hosts=HOST)
    assert rerun.rc == 0 and rerun.result("rerun", HOST)["changed"] is False, rerun.stdout[-3000:]

    # A restarted container (and a killed one) keeps its pod's namespace and address.
    netns_since = lab.ssh(HOST, "systemctl show -p ActiveEnterTimestampMonotonic --value hf-net-a._netns.service").stdout.strip()
    lab.ssh(HOST, "systemctl restart hf-net-a.web.service && systemctl kill -s KILL hf-net-b.web.service")
    deadline = time.time() + 20
    answers = {}
    while time.time() < deadline:
        try:
            answers = {name: fetch(lab, ip) for name, ip in addresses.items()}
            break
        except AssertionError:
            time.sleep(0.3)
    assert answers == {"net-a": "net-a", "net-b": "net-b"}
    assert lab.ssh(HOST, "systemctl show -p ActiveEnterTimestampMonotonic --value hf-net-a._netns.service").stdout.strip() == netns_since
    again = lab.run([pod_task("again", [web("net-a", sidecar=True), web("net-b")], wait=True)], hosts=HOST)
    assert again.rc == 0 and ips(again.result("again", HOST)) == addresses, again.stdout[-3000:]

    # net-a goes (prune): its namespace, veth and address go with it; the next new pod gets the freed address.
    veth = podnet.veth_name("net-a")
    later = lab.run([pod_task("replace", [web("net-b"), web("net-c")], wait=True, wait_timeout=60)], hosts=HOST)
    assert later.rc == 0, later.stdout[-3000:] + later.stderr[-3000:]
    assert ips(later.result("replace", HOST)) == {"net-b": "10.244.3.3", "net-c": "10.244.3.2"}
    gone = lab.ssh(HOST, f"test -e /run/netns/hf-net-a; echo $?; ip link show {veth} >/dev/null 2>&1; echo $?").stdout.split()
    assert gone == ["1", "1"]
    assert fetch(lab, "10.244.3.2") == "net-c"

    removed = lab.run([{"name": "remove", "hostfleet.workloads.pod": {"owner": OWNER, "state": "absent"}}], hosts=HOST)
    assert removed.rc == 0 and sorted(removed.result("remove", HOST)["deleted"]) == ["net-b", "net-c"]
    left = lab.ssh(HOST, "ls /run/netns; ip -o link show type veth | grep -c hfv || true").stdout.split()
    assert not [name for name in left if name.startswith("hf-net-")] and left[-1] == "0"


def test_host_network_pod_and_bad_input(lab, clean):
    # hostNetwork: true keeps the host's network (no namespace, no address); a full CIDR is refused, naming it.
    host_pod = web("net-h")
    host_pod["spec"]["hostNetwork"] = True
    run = lab.run([pod_task("host", [host_pod], wait=True, wait_timeout=60)], hosts=HOST)
    assert run.rc == 0, run.stdout[-3000:]
    assert ips(run.result("host", HOST)) == {"net-h": None}
    assert lab.ssh(HOST, "test -e /run/netns/hf-net-h; echo $?").stdout.strip() == "1"
    assert fetch(lab, "127.0.0.1") == "net-h"
    full = lab.run([pod_task("full", [host_pod] + [web(f"net-{i}") for i in range(6)], pod_network={"cidr": "10.244.3.0/29"})], hosts=HOST)
    failed = full.result("full", HOST)
    assert failed.get("failed") and failed["field"] == "pod_network.cidr" and "no free address" in failed["msg"], failed
    # Nothing changed: the host-network pod still runs, no namespace was made.
    assert lab.ssh(HOST, "ls /run/netns 2>/dev/null | grep -c '^hf-net-' || true").stdout.strip() == "0"


def test_podman_pods_on_the_pod_network(lab, clean):
    """Image containers join the pod's namespace (podman run --network=ns:...): two on one port, a sidecar on localhost."""
    from lab.images import build_images

    image = build_images([HOST], "netweb", "v1", {"/www/index.html": "podman\n"})

    def podman_pod(name):
        serve = {"name": "web", "image": image, "imagePullPolicy": "Never", "command": ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"],
                 "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}
        # Ready only once it fetched the page from its pod's localhost (an exec probe runs inside the container).
        side = {"name": "side", "image": image, "imagePullPolicy": "Never", "command": ["/bin/sleep", "100000"],
                "readinessProbe": {"exec": {"command": ["/bin/wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]}, "periodSeconds": 1}}
        return {"name": name, "spec": {"terminationGracePeriodSeconds": 1, "containers": [serve, side]}}

    run = lab.run([pod_task("podman", [podman_pod("net-p1"), podman_pod("net-p2")], wait=True, wait_timeout=120)], hosts=HOST)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = run.result("podman", HOST)
    assert all(p["ready"] and p["restart_count"] == 0 for p in result["pods"]), result["pods"]
    addresses = ips(result)
    assert sorted(addresses.values()) == ["10.244.3.2", "10.244.3.3"]
    for address in addresses.values():
        assert lab.ssh(HOST, f"curl -s --max-time 3 http://{address}:8080/").stdout.strip() == "podman"
    rerun = lab.run([pod_task("rerun", [podman_pod("net-p1"), podman_pod("net-p2")])], hosts=HOST)
    assert rerun.rc == 0 and rerun.result("rerun", HOST)["changed"] is False


def test_check_mode_and_a_changed_cidr(lab, clean):
    # Check mode plans the address and touches nothing; a new CIDR re-creates the namespace and restarts the containers.
    checked = lab.run([pod_task("check", [web("net-m")])], hosts=HOST, check=True)
    result = checked.result("check", HOST)
    assert checked.rc == 0 and result["changed"] and result["created"] == ["net-m"], checked.stdout[-3000:]
    assert lab.ssh(HOST, "test -e /run/netns/hf-net-m; echo $?; test -e /var/lib/hostfleet/pods/net-m; echo $?").stdout.split() == ["1", "1"]
    run = lab.run([pod_task("create", [web("net-m")], wait=True, wait_timeout=60)], hosts=HOST)
    assert run.rc == 0 and ips(run.result("create", HOST)) == {"net-m": "10.244.3.2"}, run.stdout[-3000:]
    moved = lab.run([pod_task("move", [web("net-m")], wait=True, wait_timeout=60, pod_network={"cidr": "10.244.4.0/24"})], hosts=HOST)
    assert moved.rc == 0, moved.stdout[-3000:] + moved.stderr[-3000:]
    result = moved.result("move", HOST)
    assert result["updated"] == ["net-m"] and ips(result) == {"net-m": "10.244.4.2"} and result["pods"][0]["ready"]
    assert fetch(lab, "10.244.4.2") == "net-m"
    assert "10.244.3.2" not in lab.ssh(HOST, "ip -n hf-net-m -4 -o addr").stdout
