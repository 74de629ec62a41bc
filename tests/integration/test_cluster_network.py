"""The cluster network (cluster_network) on the lab: per-node CIDRs, pod to pod across hosts, direct and VXLAN."""

from __future__ import annotations

import re
import time

import pytest

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import podnet
from lab import labctl

OWNER = "it-cnet"
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


def network_task(name="net", **options):
    return {"name": name, "hostfleet.workloads.cluster_network": options}


def run_network(lab, **options):
    run = lab.run([network_task(**options)])
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.result("net", "node1")


def start_pod(lab, host, name, cidr):
    pod = {"name": name, "labels": {"app": OWNER},
           "spec": {"containers": [{"name": "web", "command": ["/usr/bin/python3", "-c", SERVER],
                                    "readinessProbe": {"httpGet": {"port": 8080, "path": "/"}, "periodSeconds": 1}}]}}
    task = {"name": "pod", "hostfleet.workloads.pod": {"owner": OWNER, "pods": [pod], "pod_network": {"cidr": cidr}, "wait": True, "wait_timeout": 60}}
    run = lab.run([task], hosts=host)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.result("pod", host)["pods"][0]["pod_ip"]


def from_pod(lab, host, pod, address):
    """What the pod at ``address`` answers, asked from inside ``pod`` (on ``host``)."""
    return lab.ssh(host, f"ip netns exec {podnet.netns_name(pod)} curl -sS --max-time 3 http://{address}:8080/", check=False).stdout.strip()


def tx_packets(lab, host, device):
    return int(lab.ssh(host, f"cat /sys/class/net/{device}/statistics/tx_packets").stdout)


def our_routes(lab, host):
    return lab.ssh(host, "ip route show proto 147").stdout


@pytest.fixture(scope="module")
def network(lab):
    yield
    lab.run([{"name": "pods", "hostfleet.workloads.pod": {"owner": OWNER, "state": "absent"}},
             network_task(state="absent")])


def test_pod_reaches_pod_on_another_host_direct_then_vxlan(lab, network):
    run_network(lab, state="absent")
    assert our_routes(lab, "node1") == "" and lab.ssh("node1", "test -e /var/lib/hostfleet/network/node.json", check=False).returncode != 0
    first = run_network(lab)
    assert first["changed"] is True
    nodes = first["nodes"]
    cidrs = {n: nodes[n]["cidr"] for n in ("node1", "node2", "node3")}
    assert len(set(cidrs.values())) == 3
    assert nodes["node1"]["peers"] == {"node2": "direct", "node3": "direct"}  # one lab network: a shared link
    assert run_network(lab)["changed"] is False, "a re-run changed something"

    start_pod(lab, "node1", "cnet-a", cidrs["node1"])
    ip_c = start_pod(lab, "node3", "cnet-c", cidrs["node3"])
    assert from_pod(lab, "node1", "cnet-a", ip_c) == "cnet-c"
    # The host itself reaches the remote pod too (its source is its gateway, on the pod network).
    assert lab.ssh("node1", f"curl -sS --max-time 3 http://{ip_c}:8080/").stdout.strip() == "cnet-c"
    assert f"{cidrs['node3']} via 10.77." in our_routes(lab, "node1")

    # Check mode: what would change, with the commands and node.json's diff, and nothing changed on the host.
    preview = lab.run([network_task(mode="vxlan")], check=True, diff=True)
    assert preview.rc == 0, preview.stdout[-3000:]
    planned = preview.result("net", "node1")
    assert planned["changed"] is True and any("hfvx" in c for c in planned["commands"]["node1"])
    assert any('"via": "vxlan"' in d["after"] for d in planned["diff"])
    assert lab.ssh("node1", "ip link show hfvx", check=False).returncode != 0
    assert '"via": "direct"' in lab.ssh("node1", "cat /var/lib/hostfleet/network/node.json").stdout

    forced = run_network(lab, mode="vxlan")
    assert forced["changed"] is True and forced["nodes"]["node1"]["peers"] == {"node2": "vxlan", "node3": "vxlan"}
    assert forced["nodes"]["node3"]["cidr"] == cidrs["node3"], "the mode changed a range"
    assert re.search(rf"{re.escape(cidrs['node3'])} via \S+ dev hfvx .*onlink", our_routes(lab, "node1"))
    before = tx_packets(lab, "node1", "hfvx")
    assert from_pod(lab, "node1", "cnet-a", ip_c) == "cnet-c"
    assert tx_packets(lab, "node1", "hfvx") > before, "the request did not go through hfvx"
    assert run_network(lab, mode="vxlan")["changed"] is False

    # Back to direct: the VXLAN device and its routes go, the pods still reach each other.
    assert run_network(lab)["changed"] is True
    assert lab.ssh("node1", "ip link show hfvx", check=False).returncode != 0
    assert from_pod(lab, "node1", "cnet-a", ip_c) == "cnet-c"


@pytest.mark.slow
def test_ranges_kept_while_a_node_is_stopped_and_routes_back_after_a_restart(lab, network):
    cidrs = {n: v["cidr"] for n, v in run_network(lab)["nodes"].items()}
    labctl.stop("node2")
    try:
        run = lab.run([network_task()])
        assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
        result = run.result("net", "node1")
        assert "node2" in result["unreachable_nodes"]
        assert {n: v["cidr"] for n, v in result["nodes"].items()} == cidrs, "a range changed while node2 was stopped"
        assert cidrs["node2"] in our_routes(lab, "node1"), "node2's route went while it was away"
    finally:
        labctl.start("node2")
    # Back from a power-off: hostfleet-network.service put the routes back before any run.
    deadline = time.monotonic() + 30
    while cidrs["node1"] not in our_routes(lab, "node2") and time.monotonic() < deadline:
        time.sleep(1)
    routes = our_routes(lab, "node2")
    assert cidrs["node1"] in routes and cidrs["node3"] in routes, routes
    assert lab.ssh("node2", "ip rule show").stdout.count("lookup 2000") == 2
    again = run_network(lab)
    assert {n: v["cidr"] for n, v in again["nodes"].items()} == cidrs
    assert again["changed"] is False, again.get("changes")


def test_bad_options_change_nothing(lab, network):
    run = lab.run([network_task(service_cidr="10.244.0.0/20")])
    assert run.rc != 0
    assert run.result("net", "node1")["msg"] == ("invalid argument: service_cidr: 10.244.0.0/20 overlaps cluster_cidr 10.244.0.0/16: "
                                                 "Service addresses and pod addresses must differ")
    run = lab.run([network_task(cluster_cidr="10.77.0.0/16")])
    assert run.rc != 0 and run.result("net", "node1")["msg"].startswith("cluster_cidr: 10.77.0.0/16 contains node1's address 10.77.")
