"""network/nftables.py: the Service data path of a host as one nftables table (issue 14 item 2).

The property test renders random Services and local pods, loads the table with the hosts' nft (package nftables,
installed by scripts/setup) in a throwaway network namespace, and reads it back with ``nft -j``: the VIPs, ports,
nodePorts, hostPorts, level-1 weights per node and level-2 endpoints must be exactly what the input said. Hostile
values never reach the rules: their Service is left out and named.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.network import config, nftables, services

NODE = {
    "schema": 1,
    "node": "node1",
    "node_index": 1,
    "address": "10.77.4.11",
    "cluster_cidr": "10.244.0.0/16",
    "cidr": "10.244.1.0/24",
    "gateway": "10.244.1.1",
    "bridge": "hf0",
    "service_cidr": "10.96.0.0/12",
    "cluster_domain": "cluster.local",
    "dns_ip": "10.244.1.1",
    "peers": [
        {"node": "node2", "node_index": 2, "address": "10.77.4.12", "cidr": "10.244.2.0/24", "gateway": "10.244.2.1", "via": "direct"},
        {"node": "node3", "node_index": 3, "address": "10.77.4.13", "cidr": "10.244.3.0/24", "gateway": "10.244.3.1", "via": "vxlan"},
    ],
}
NFT = shutil.which("nft") or "/usr/sbin/nft"
CAN_LOAD = os.geteuid() == 0 and os.path.exists(NFT) and shutil.which("unshare") is not None
needs_nft = pytest.mark.skipif(not CAN_LOAD, reason="needs root, nft (scripts/setup installs nftables) and unshare")


def service(name="web", namespace="default", cluster_ip="10.96.0.12", ports=None, endpoints=(), selector=None, kind="ClusterIP", publish=False):
    return {
        "schema": 1,
        "namespace": namespace,
        "name": name,
        "type": kind,
        "cluster_ip": cluster_ip,
        "ports": ports if ports is not None else [{"name": "http", "protocol": "TCP", "port": 80, "target_port": "http", "node_port": None}],
        "selector": selector if selector is not None else {"app": name},
        "publish_not_ready_addresses": publish,
        "endpoints": list(endpoints),
    }


def endpoint(pod, node_index, ready=True, ports=None):
    return {"pod": pod, "node": f"node{node_index}", "node_index": node_index, "ip": f"10.244.{node_index}.9", "ready": ready,
            "hostname": None, "subdomain": None, "ports": ports if ports is not None else {"http": 8080}}


def pod(name, ip, labels=None, ready=True, running=True, ports=None, namespace="default", host_network=False):
    return {
        "pod": name,
        "namespace": namespace,
        "ip": ip,
        "ready": ready,
        "running": running,
        "labels": labels if labels is not None else {"app": "web"},
        "hostname": None,
        "subdomain": None,
        "spec": {"containers": [{"name": "main", "ports": ports if ports is not None else [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]},
        "host_network": host_network,
    }


# ------------------------------------------------------------------------------------------------ reading back


def load(text):
    """Load ``text`` with nft in a new network namespace and return ``nft -j list table ip hostfleet``; the second
    load replaces the first (the transaction deletes and re-creates the table)."""
    script = 'nft -f - <<"EOF"\n' + text + 'EOF\nnft -f - <<"EOF"\n' + text + "EOF\nnft -j list table ip hostfleet\n"
    done = subprocess.run(["unshare", "-n", "sh", "-ec", script], capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr + text
    return json.loads(done.stdout)["nftables"]


def read_back(listing):
    """What the loaded table does, in the input's terms: {vips: {(vip, proto, port): {"weights": {node index:
    weight}, "local": Counter((ip, port))}}, node_ports: {(proto, nodePort): (vip, port)}, host_ports: {(proto,
    hostPort): (ip, port)}}."""
    maps = {item["map"]["name"]: item["map"].get("elem", []) for item in listing if "map" in item}
    rules = {}
    for item in listing:
        if "rule" in item:
            rules.setdefault(item["rule"]["chain"], []).append(item["rule"]["expr"])

    def key(elem):
        return tuple(elem[0]["concat"])

    def target(elem):
        verdict = elem[1]
        return (verdict.get("goto") or verdict.get("jump"))["target"]

    def vmap_targets(chain):
        [expr] = rules[chain][0]
        data = expr["vmap"]["data"]["set"]
        assert expr["vmap"]["key"]["numgen"]["mod"] == len(data)
        assert sorted(value for value, _verdict in data) == list(range(len(data)))
        return Counter(verdict["goto"]["target"] for _value, verdict in data)

    def node_of(chain):
        if chain.startswith("here"):
            return NODE["node_index"]
        [expr] = rules[chain]
        mark = expr[0]["mangle"]["value"]
        assert expr[1]["mangle"]["key"] == {"ct": {"key": "mark"}}
        assert mark & config.SERVICE_MARK_MASK == config.SERVICE_MARK_BASE
        return mark - config.SERVICE_MARK_BASE

    def dnat(chain):
        [expr] = rules[chain]
        return (expr[-1]["dnat"]["addr"], expr[-1]["dnat"]["port"])

    vips = {}
    nat_vip = {key(elem): target(elem) for elem in maps["nat_vip"]}
    for elem in maps["l1"]:
        chain = target(elem)
        first = rules[chain][0][0]
        if "goto" in first:
            weights = {}
        else:
            weights = {node_of(c): n for c, n in vmap_targets(chain).items()}
        local = Counter()
        if key(elem) in nat_vip:
            local = Counter(dnat(c) for c in vmap_targets(nat_vip[key(elem)]).elements())
        vips[key(elem)] = {"weights": weights, "local": local}
    node_ports, host_ports = {}, {}
    for elem in maps["nat_port"]:
        chain = target(elem)
        if chain.startswith("np"):
            node_ports[key(elem)] = dnat_first(rules[chain])
        else:
            host_ports[key(elem)] = dnat(chain)
    return {"vips": vips, "node_ports": node_ports, "host_ports": host_ports}


def dnat_first(exprs):
    stmt = exprs[0][-1]["dnat"]
    return (stmt["addr"], stmt["port"])


def expected(service_list, pods):
    """The same, from the input alone (an independent model of what the rules must do)."""
    known = {NODE["node_index"]} | {p["node_index"] for p in NODE["peers"]}
    vips, node_ports = {}, {}
    for svc in service_list:
        if svc["cluster_ip"] is None:
            continue
        for port in svc["ports"]:
            portkey = port["name"] or str(port["port"])
            serving = [e for e in svc["endpoints"] if (e["ready"] or svc["publish_not_ready_addresses"]) and portkey in e["ports"]]
            weights = Counter(e["node_index"] for e in serving if e["node_index"] in known)
            local = Counter()
            for p in pods:
                if p["namespace"] != svc["namespace"] or not services.selects(svc["selector"], p["labels"]):
                    continue
                if not (p["ready"] or (svc["publish_not_ready_addresses"] and p["running"])):
                    continue
                target = services.resolve_target_port(p["spec"], port["target_port"], port["protocol"])
                if target is not None:
                    local[(p["ip"], target)] += 1
            proto = port["protocol"].lower()
            vips[(svc["cluster_ip"], proto, port["port"])] = {"weights": dict(weights), "local": local}
            if svc["type"] == "NodePort" and port["node_port"]:
                node_ports[(proto, port["node_port"])] = (svc["cluster_ip"], port["port"])
    host_ports = {}
    for p in pods:
        if p["host_network"]:
            continue
        for container in p["spec"]["containers"]:
            for declared in container["ports"]:
                if declared.get("hostPort"):
                    host_ports[(declared.get("protocol", "TCP").lower(), declared["hostPort"])] = (p["ip"], declared["containerPort"])
    return {"vips": vips, "node_ports": node_ports, "host_ports": host_ports}


# ------------------------------------------------------------------------------------------------ examples


@needs_nft
def test_two_levels_nodeport_and_hostport_read_back_from_the_kernel():
    web = service(
        kind="NodePort",
        ports=[{"name": "http", "protocol": "TCP", "port": 80, "target_port": "http", "node_port": 30080}],
        endpoints=[endpoint("a", 1), endpoint("b", 2), endpoint("c", 2), endpoint("d", 3, ready=False), endpoint("e", 9)],
    )
    dns = service("dns", cluster_ip="10.96.0.10", ports=[{"name": None, "protocol": "UDP", "port": 53, "target_port": 5353, "node_port": None}],
                  selector={"app": "dns"}, endpoints=[endpoint("x", 3, ports={"53": 5353})])
    pods = [
        pod("a", "10.244.1.5", ports=[{"name": "http", "containerPort": 8080, "protocol": "TCP", "hostPort": 8081}]),
        pod("unready", "10.244.1.6", ready=False),
        pod("other-ns", "10.244.1.7", namespace="shop"),
    ]
    text, problems = nftables.render(NODE, [web, dns], pods)
    assert problems == []
    back = read_back(load(text))
    assert back == expected([web, dns], pods)
    # Spelled out: node 2 twice as likely as this node; node 3's unready endpoint and unknown node 9 get nothing.
    assert back["vips"][("10.96.0.12", "tcp", 80)] == {"weights": {1: 1, 2: 2}, "local": Counter({("10.244.1.5", 8080): 1})}
    assert back["vips"][("10.96.0.10", "udp", 53)] == {"weights": {3: 1}, "local": Counter()}
    assert back["node_ports"] == {("tcp", 30080): ("10.96.0.12", 80)}
    assert back["host_ports"] == {("tcp", 8081): ("10.244.1.5", 8080)}


def chain_rules(text, name):
    return text.split(f"\tchain {name} {{\n")[1].split("\n\t}")[0].strip().split("\n\t\t")


def test_without_local_ready_pods_a_connection_is_sent_on_once_never_back_or_refused():
    # Endpoints on nodes 2 and 3 (by the Service file), none ready here: one more hop, tagged, to one of them, but
    # never back to the node it came from (source in its CIDR or its address).
    svc = service(endpoints=[endpoint("b", 2), endpoint("c", 3), endpoint("d", 3)])
    text, _problems = nftables.render(NODE, [svc], [pod("a", "10.244.1.5", ready=False)])
    assert chain_rules(text, "here0") == [
        f"ip dscp {nftables.HOP_DSCP:#x} goto refuse",
        f"ip dscp set {nftables.HOP_DSCP:#x}",
        "ip saddr { 10.244.2.0/24, 10.77.4.12 } numgen random mod 2 vmap { 0 : goto node3, 1 : goto node3 }",
        "ip saddr { 10.244.3.0/24, 10.77.4.13 } numgen random mod 1 vmap { 0 : goto node2 }",
        "numgen random mod 3 vmap { 0 : goto node2, 1 : goto node3, 2 : goto node3 }",
    ]
    assert "chain lb0" not in text
    # Such a connection goes on from this node's gateway address: the reply comes back through here (this node's
    # conntrack saw the client's first packet only; the lab timed out without it).
    assert f"ct mark & 0xffff0000 == 0x1f0000 ip dscp {nftables.HOP_DSCP:#x} snat to 10.244.1.1" in chain_rules(text, "nat_postrouting")
    # Only the node it came from has endpoints: refused there.
    text, _problems = nftables.render(NODE, [service(endpoints=[endpoint("b", 2)])], [])
    assert "ip saddr { 10.244.2.0/24, 10.77.4.12 } goto refuse" in chain_rules(text, "here0")
    # No endpoint anywhere else either: refused at once (reset), never left to time out.
    text, _problems = nftables.render(NODE, [service(endpoints=[endpoint("a", 1, ready=False)])], [])
    assert chain_rules(text, "here0") == [f"ip dscp {nftables.HOP_DSCP:#x} goto refuse", "goto refuse"]
    assert chain_rules(text, "refuse") == ["meta l4proto tcp reject with tcp reset", "reject"]


def test_the_rendering_is_deterministic_and_follows_live_readiness():
    svc = service(endpoints=[endpoint("a", 1)])
    ready = nftables.render(NODE, [svc], [pod("a", "10.244.1.5")])
    assert ready == nftables.render(NODE, [dict(svc)], [pod("a", "10.244.1.5")])
    unready = nftables.render(NODE, [svc], [pod("a", "10.244.1.5", ready=False)])
    assert ready[0] != unready[0] and "dnat to 10.244.1.5:8080" in ready[0] and "10.244.1.5" not in unready[0].split("table ip hostfleet {")[1]


def test_publish_not_ready_addresses_counts_running_pods():
    svc = service(publish=True, endpoints=[endpoint("a", 1, ready=False)])
    text, _problems = nftables.render(NODE, [svc], [pod("a", "10.244.1.5", ready=False, running=True), pod("b", "10.244.1.6", ready=False, running=False)])
    assert "dnat to 10.244.1.5:8080" in text and "10.244.1.6" not in text.split("table ip hostfleet {")[1]


HOSTILE = [
    ("name", 'web"; flush ruleset; "'),
    ("namespace", "Default"),
    ("cluster_ip", "10.96.0.12 } ; flush ruleset"),
    ("cluster_ip", "10.96.0.0/12"),
    ("cluster_ip", "192.168.1.1"),  # outside the service CIDR
    ("ports", [{"name": "http", "protocol": "TCP", "port": "80; drop", "target_port": 80, "node_port": None}]),
    ("ports", [{"name": "http", "protocol": "TCP", "port": True, "target_port": 80, "node_port": None}]),
    ("ports", [{"name": "http", "protocol": "TCP", "port": 65536, "target_port": 80, "node_port": None}]),
    ("ports", [{"name": "http", "protocol": "ICMP", "port": 80, "target_port": 80, "node_port": None}]),
    ("ports", [{"name": "h t", "protocol": "TCP", "port": 80, "target_port": 80, "node_port": None}]),
    ("ports", [{"name": None, "protocol": "TCP", "port": 80, "target_port": "x y", "node_port": None}]),
    ("ports", [{"name": None, "protocol": "TCP", "port": 80, "target_port": 80, "node_port": 0}]),
    ("endpoints", [dict(endpoint("a", 2), node_index="2 } accept")]),
    ("endpoints", [dict(endpoint("a", 2), ports={"http": 70000})]),
    ("endpoints", [dict(endpoint("a", 2), ip="10.244.2.9\n")]),
]


@pytest.mark.parametrize(("field", "value"), HOSTILE)
def test_a_hostile_service_is_left_out_whole_and_named(field, value):
    bad = dict(service("bad", cluster_ip="10.96.0.50", endpoints=[endpoint("z", 2)]), **{field: value})
    good = service(endpoints=[endpoint("b", 2)])
    text, problems = nftables.render(NODE, [bad, good], [])
    assert len(problems) == 1 and "left out" in problems[0] and field.rstrip("s") in problems[0], problems
    assert "10.96.0.50" not in text and "flush" not in text and "10.96.0.12 . tcp . 80" in text


def test_a_hostile_local_pod_is_left_out():
    good = service()
    evil = pod("evil", "10.244.1.5; flush ruleset")
    text, problems = nftables.render(NODE, [good], [evil, pod("a", "10.244.1.6")])
    assert "flush" not in text and problems and "web" in problems[0]
    text, problems = nftables.render(NODE, [], [pod("a", "10.244.1.6", ports=[{"containerPort": 80, "hostPort": "80 accept"}])])
    assert "accept" not in text.split("chain refuse", maxsplit=1)[0].split("table ip hostfleet {")[1].replace("policy accept", "") and "hostPort" in problems[0]


@pytest.mark.parametrize(
    ("field", "value"),
    [("bridge", 'hf0" accept'), ("bridge", "x" * 16), ("gateway", "10.244.2.1"), ("gateway", None),
     ("address", "10.77.4.300"), ("cidr", "10.244.1.1/24"), ("node_index", True), ("node_index", 70000),
     ("service_cidr", "10.96.0.0/12; flush"), ("peers", [{"node_index": 1, "address": "10.77.4.12"}])],
)
def test_a_bad_node_json_is_refused_naming_the_field(field, value):
    with pytest.raises(nftables.NftablesInputError) as error:
        nftables.render(dict(NODE, **{field: value}), [], [])
    assert field in str(error.value)


def test_clashing_vips_nodeports_and_hostports_leave_the_later_out():
    # Services in (namespace, name) order: alpha first.
    first = service("alpha", kind="NodePort", ports=[{"name": None, "protocol": "TCP", "port": 80, "target_port": 80, "node_port": 30080}])
    same_vip = service("beta", ports=[{"name": None, "protocol": "TCP", "port": 80, "target_port": 80, "node_port": None}])
    same_node_port = service("gamma", cluster_ip="10.96.0.13", kind="NodePort",
                             ports=[{"name": None, "protocol": "TCP", "port": 81, "target_port": 80, "node_port": 30080}])
    pods = [pod("p", "10.244.1.5", ports=[{"containerPort": 80, "hostPort": 30080}]), pod("q", "10.244.1.6", ports=[{"containerPort": 80, "hostPort": 8080}]),
            pod("r", "10.244.1.7", ports=[{"containerPort": 80, "hostPort": 8080}])]
    text, problems = nftables.render(NODE, [first, same_vip, same_node_port], pods)
    assert len(problems) == 4, problems
    assert "10.96.0.13" not in text.split("table ip hostfleet {")[1] and text.count("hp0") and "hp1" not in text


# ------------------------------------------------------------------------------------------------ property


LABELS = st.sampled_from([{"app": "web"}, {"app": "api"}, {"app": "web", "tier": "x"}, {}])


@st.composite
def scenario(draw):
    n_services = draw(st.integers(0, 4))
    used_keys, used_node_ports, service_list = set(), set(), []
    vip_numbers = draw(st.lists(st.integers(1, 2**20 - 2), min_size=n_services, max_size=n_services, unique=True))
    for i in range(n_services):
        vip = str(ipaddress.IPv4Network(NODE["service_cidr"])[vip_numbers[i]])
        ports = []
        for j in range(draw(st.integers(1, 3))):
            proto = draw(st.sampled_from(["TCP", "UDP"]))
            number = draw(st.integers(1, 65535))
            if (vip, proto, number) in used_keys:
                continue
            used_keys.add((vip, proto, number))
            node_port = draw(st.one_of(st.none(), st.integers(30000, 32767)))
            if node_port is not None and (proto, node_port) in used_node_ports:
                node_port = None
            if node_port is not None:
                used_node_ports.add((proto, node_port))
            name = f"p{j}" if draw(st.booleans()) else None
            target = draw(st.one_of(st.integers(1, 65535), st.sampled_from(["http", "dns", "missing"])))
            ports.append({"name": name, "protocol": proto, "port": number, "target_port": target, "node_port": node_port})
        keys = [p["name"] or str(p["port"]) for p in ports]
        endpoints = []
        for k in range(draw(st.integers(0, 8))):
            index = draw(st.sampled_from([1, 2, 3, 7]))
            served = draw(st.lists(st.sampled_from(keys), unique=True)) if keys else []
            endpoints.append(endpoint(f"e{k}", index, ready=draw(st.booleans()), ports={key: draw(st.integers(1, 65535)) for key in served}))
        service_list.append(service(f"s{i}", cluster_ip=vip if draw(st.integers(0, 5)) else None, ports=ports, endpoints=endpoints,
                                    selector=draw(LABELS), kind="NodePort" if any(p["node_port"] for p in ports) else "ClusterIP",
                                    publish=draw(st.booleans())))
    pods, used_host_ports = [], set()
    for k in range(draw(st.integers(0, 5))):
        container_ports = []
        for name in draw(st.lists(st.sampled_from(["http", "dns"]), unique=True)):
            declared = {"name": name, "containerPort": draw(st.integers(1, 65535)), "protocol": draw(st.sampled_from(["TCP", "UDP"]))}
            host_port = draw(st.one_of(st.none(), st.integers(1, 29999)))
            if host_port is not None and (declared["protocol"].lower(), host_port) not in used_host_ports:
                used_host_ports.add((declared["protocol"].lower(), host_port))
                declared["hostPort"] = host_port
            container_ports.append(declared)
        pods.append(pod(f"pod{k}", f"10.244.1.{10 + k}", labels=draw(LABELS), ready=draw(st.booleans()), running=draw(st.booleans()),
                        ports=container_ports, namespace=draw(st.sampled_from(["default", "default", "shop"]))))
    return service_list, pods


@needs_nft
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_nft_reads_back_exactly_what_the_input_said(case):
    service_list, pods = case
    text, problems = nftables.render(NODE, service_list, pods)
    assert problems == []
    assert read_back(load(text)) == expected(service_list, pods)
