"""network/dns.py: cluster DNS records, dnsmasq's unit and the pods' resolv.conf (issue 14 item 3).

The records are Kubernetes' DNS specification on top of the Service files (services.py); the property tests check that
no value of a Service file, however hostile, adds a line or a name of its own, and that dnsmasq itself (the one the
hosts run, package dnsmasq-base, installed by scripts/setup) reads back exactly the records.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import shutil
import socket
import stat
import struct
import subprocess
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.network import dns
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, podnet, podspec
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset import identity
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.spec import parse_statefulset_spec

NODE = {
    "node": "node1",
    "address": "10.77.5.11",
    "cluster_domain": "cluster.local",
    "dns_ip": "10.244.1.1",
    "peers": [{"node": "node2", "address": "10.77.5.12"}, {"node": "node3", "address": "10.77.5.13"}],
}


def service(name="backend", namespace="default", cluster_ip="10.96.0.12", endpoints=(), selector=None, publish=False):
    return {
        "schema": 1,
        "namespace": namespace,
        "name": name,
        "type": "ClusterIP",
        "cluster_ip": cluster_ip,
        "ports": [{"name": None, "protocol": "TCP", "port": 80, "target_port": 80, "node_port": None}],
        "selector": selector if selector is not None else {"app": name},
        "publish_not_ready_addresses": publish,
        "endpoints": list(endpoints),
    }


def endpoint(pod, ip, node="node2", ready=True, hostname=None, subdomain=None):
    return {"pod": pod, "node": node, "node_index": int(node[-1]), "ip": ip, "ready": ready, "hostname": hostname, "subdomain": subdomain, "ports": {"80": 80}}


def local_pod(pod, ip, ready=True, labels=None, hostname=None, subdomain=None, **extra):
    return dict({"pod": pod, "ip": ip, "ready": ready, "labels": labels or {}, "hostname": hostname, "subdomain": subdomain}, **extra)


def by_name(records):
    names = {}
    for name, address in records:
        names.setdefault(name, set()).add(address)
    return names


# ------------------------------------------------------------------------------------------------ records


def test_a_cluster_ip_service_is_its_virtual_ip_under_its_namespace():
    assert dns.service_records(service(), NODE) == [("backend.default.svc.cluster.local", "10.96.0.12")]
    other = dict(NODE, cluster_domain="example.internal")
    assert dns.service_records(service(namespace="shop"), other) == [("backend.shop.svc.example.internal", "10.96.0.12")]


def test_a_headless_service_is_its_ready_endpoints_and_its_named_members():
    store = service(
        "store",
        cluster_ip=None,
        endpoints=[
            endpoint("store-1", "10.244.2.3", hostname="store-1", subdomain="store"),
            endpoint("store-2", "10.244.3.3", node="node3", ready=False, hostname="store-2", subdomain="store"),
            # A hostname without the matching subdomain names no member (Kubernetes: both must be set).
            endpoint("loose", "10.244.3.4", node="node3", hostname="loose", subdomain="other"),
        ],
    )
    assert by_name(dns.service_records(store, NODE)) == {
        "store.default.svc.cluster.local": {"10.244.2.3", "10.244.3.4"},
        "store-1.store.default.svc.cluster.local": {"10.244.2.3"},
    }
    everyone = by_name(dns.service_records(dict(store, publish_not_ready_addresses=True), NODE))
    assert everyone["store.default.svc.cluster.local"] == {"10.244.2.3", "10.244.3.3", "10.244.3.4"}
    assert everyone["store-2.store.default.svc.cluster.local"] == {"10.244.3.3"}


def test_a_cluster_ip_service_names_no_members():
    web = service("web", endpoints=[endpoint("web-0", "10.244.2.9", hostname="web-0", subdomain="web")])
    assert dns.service_records(web, NODE) == [("web.default.svc.cluster.local", "10.96.0.12")]


def test_this_nodes_endpoints_follow_the_local_pods_live_readiness_not_the_file():
    store = service(
        "store",
        cluster_ip=None,
        endpoints=[
            # The file (last playbook run) says store-0 is ready on this node: it no longer is.
            endpoint("store-0", "10.244.1.2", node="node1", hostname="store-0", subdomain="store"),
            endpoint("store-1", "10.244.2.3", hostname="store-1", subdomain="store"),
        ],
    )
    pods = [
        local_pod("store-0", "10.244.1.2", ready=False, labels={"app": "store"}, hostname="store-0", subdomain="store"),
        # Started since the last run: not in the file yet, ready now.
        local_pod("store-3", "10.244.1.5", labels={"app": "store"}, hostname="store-3", subdomain="store"),
        local_pod("other", "10.244.1.6", labels={"app": "web"}),
        local_pod("elsewhere", "10.244.1.7", labels={"app": "store"}, namespace="shop"),
    ]
    assert by_name(dns.service_records(store, NODE, pods)) == {
        "store.default.svc.cluster.local": {"10.244.2.3", "10.244.1.5"},
        "store-1.store.default.svc.cluster.local": {"10.244.2.3"},
        "store-3.store.default.svc.cluster.local": {"10.244.1.5"},
    }
    # On node2: the file's word for node1's pods, and node2's own endpoints only from its own (here: none).
    assert by_name(dns.service_records(store, dict(NODE, node="node2"), []))["store.default.svc.cluster.local"] == {"10.244.1.2"}


def test_a_selector_less_headless_service_has_no_local_endpoints():
    lonely = service("lonely", cluster_ip=None, selector={})
    assert dns.service_records(lonely, NODE, [local_pod("x", "10.244.1.9", labels={"app": "lonely"})]) == []


def test_the_nodes_resolve_by_their_names():
    assert dns.node_records(NODE) == [("node1", "10.77.5.11"), ("node2", "10.77.5.12"), ("node3", "10.77.5.13")]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"namespace": "Default"}, "namespace"),
        ({"name": "a.b"}, "name"),
        ({"cluster_ip": "10.96.0.012"}, "cluster_ip"),
        ({"cluster_ip": "10.96.0.1 evil.cluster.local"}, "cluster_ip"),
        ({"cluster_ip": None, "endpoints": [endpoint("p", "10.244.2.1\n10.0.0.1 evil")]}, "endpoints[0].ip"),
        ({"cluster_ip": None, "endpoints": [endpoint("p", "10.244.2.1", hostname="a b", subdomain="backend")]}, "endpoints[0].hostname"),
    ],
)
def test_a_service_with_a_bad_value_is_left_out_whole_and_named(change, field):
    bad = dict(service(), **change)
    services, nodes, problems = dns.records(NODE, [bad, service("good", cluster_ip="10.96.0.13")])
    assert services == [("good.default.svc.cluster.local", "10.96.0.13")]
    assert nodes == dns.node_records(NODE)
    assert len(problems) == 1 and field in problems[0] and "left out" in problems[0]


def test_a_bad_node_name_in_node_json_is_an_error_naming_it():
    with pytest.raises(dns.DnsError, match=r"peers\[0\]\.node"):
        dns.node_records(dict(NODE, peers=[{"node": "Node_2", "address": "10.77.5.12"}]))
    with pytest.raises(dns.DnsError, match=r"node.json: node: "):
        dns.node_records(dict(NODE, node="node1\n1.2.3.4 evil"))


# ------------------------------------------------------------------------------------------------ refresh


def test_refresh_writes_both_files_world_readable_and_nothing_when_unchanged(tmp_path):
    state = str(tmp_path)
    old = os.umask(0o077)
    try:
        first = dns.refresh(state, NODE, [service()], [])
    finally:
        os.umask(old)
    assert first == {"changed": True, "records": 4, "problems": []}
    hosts = dns.hosts_dir(state)
    assert sorted(os.listdir(hosts)) == [dns.NODES_FILE, dns.SERVICES_FILE]
    for name in os.listdir(hosts):
        # dnsmasq reads them after dropping root.
        assert stat.S_IMODE(os.stat(os.path.join(hosts, name)).st_mode) == 0o644
    with open(os.path.join(hosts, dns.SERVICES_FILE)) as handle:
        assert dns.parse_hosts(handle.read()) == [("backend.default.svc.cluster.local", "10.96.0.12")]
    before = {name: os.stat(os.path.join(hosts, name)) for name in os.listdir(hosts)}
    assert dns.refresh(state, NODE, [service()], [])["changed"] is False
    after = {name: os.stat(os.path.join(hosts, name)) for name in os.listdir(hosts)}
    assert {n: (s.st_ino, s.st_mtime_ns) for n, s in before.items()} == {n: (s.st_ino, s.st_mtime_ns) for n, s in after.items()}
    second = dns.refresh(state, NODE, [], [])
    assert second["changed"] is True
    with open(os.path.join(hosts, dns.SERVICES_FILE)) as handle:
        assert dns.parse_hosts(handle.read()) == []
    # No temporary file is ever left where dnsmasq looks, nor next to it.
    assert sorted(os.listdir(hosts)) == [dns.NODES_FILE, dns.SERVICES_FILE]
    assert sorted(os.listdir(dns.dns_dir(state))) == [dns.HOSTS_DIR]


# ------------------------------------------------------------------------------------------------ unit


def test_the_unit_runs_dnsmasq_on_the_dns_address_only_with_the_cluster_domain_local():
    text = dns.unit_text(NODE, "/var/lib/hostfleet")
    start = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    assert len(start) == 1
    argv = start[0][len("ExecStart=") :].split(" ")
    assert argv[0] == "/usr/sbin/dnsmasq" and "--keep-in-foreground" in argv and "--conf-file=/dev/null" in argv
    assert [word for word in argv if word.startswith(("--listen-address", "--interface", "--bind"))] == ["--listen-address=10.244.1.1", "--bind-dynamic"]
    assert "--local=/cluster.local/" in argv and "--no-hosts" in argv
    assert "--hostsdir=/var/lib/hostfleet/network/dns/hosts" in argv
    assert "WantedBy=multi-user.target" in text and "Restart=always" in text


@pytest.mark.parametrize("state_dir", ["/var/lib/host fleet", "/var/lib/%n", "/var/lib/a;b", "/var/lib/a\nExecStart=/bin/sh"])
def test_the_unit_refuses_a_state_dir_it_cannot_carry(state_dir):
    with pytest.raises(dns.DnsError, match="state_dir"):
        dns.unit_text(NODE, state_dir)


def test_the_unit_refuses_a_bad_node_json():
    with pytest.raises(dns.DnsError, match="dns_ip"):
        dns.unit_text(dict(NODE, dns_ip="10.244.1.1 --port=0"), "/var/lib/hostfleet")
    with pytest.raises(dns.DnsError, match="cluster_domain"):
        dns.unit_text(dict(NODE, cluster_domain="cluster.local/ --server=/#/1.2.3.4"), "/var/lib/hostfleet")


# ------------------------------------------------------------------------------------------------ resolv.conf


def test_a_pod_on_the_pod_network_gets_kubernetes_resolv_conf():
    text = dns.resolv_conf_text(NODE, "shop")
    assert [line for line in text.splitlines() if not line.startswith("#")] == [
        "nameserver 10.244.1.1",
        "search shop.svc.cluster.local svc.cluster.local cluster.local",
        "options ndots:5",
    ]


def test_host_network_pods_keep_the_hosts_resolv_conf_unless_they_ask():
    assert dns.resolv_conf_text(NODE, "default", host_network=True) is None
    assert dns.resolv_conf_text(NODE, "default", "Default") is None
    assert "nameserver 10.244.1.1" in dns.resolv_conf_text(NODE, "default", "ClusterFirstWithHostNet", host_network=True)


def test_dns_config_is_merged_as_the_kubelet_does():
    config = {"nameservers": ["10.0.0.53"], "searches": ["corp.example."], "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}
    lines = dns.resolv_conf_text(NODE, "default", dns_config=config).splitlines()[1:]
    assert lines == [
        "nameserver 10.244.1.1",
        "nameserver 10.0.0.53",
        "search default.svc.cluster.local svc.cluster.local cluster.local corp.example",
        "options ndots:2 edns0",
    ]
    only = dns.resolv_conf_text(NODE, "default", "None", {"nameservers": ["1.1.1.1"]}).splitlines()[1:]
    assert only == ["nameserver 1.1.1.1"]


@pytest.mark.parametrize(
    ("policy", "config", "field"),
    [
        ("ClusterFirstOnly", None, "spec.dnsPolicy"),
        ("None", None, "spec.dnsConfig.nameservers"),
        ("None", {"nameservers": ["1.1.1.1\nnameserver 6.6.6.6"]}, r"spec.dnsConfig.nameservers\[0\]"),
        ("ClusterFirst", {"searches": ["a b"]}, r"spec.dnsConfig.searches\[0\]"),
        ("ClusterFirst", {"options": [{"name": "ndots", "value": "1\noptions debug"}]}, r"spec.dnsConfig.options\[0\].value"),
        ("ClusterFirst", {"options": [{"name": "x y"}]}, r"spec.dnsConfig.options\[0\].name"),
        ("ClusterFirst", {"nameserver": ["1.1.1.1"]}, "spec.dnsConfig.nameserver"),
        ("ClusterFirst", {"nameservers": ["1.1.1.1", "1.1.1.2", "1.1.1.3"]}, "spec.dnsConfig.nameservers"),
        ("Default", {"nameservers": ["1.1.1.1"]}, "spec.dnsConfig"),
    ],
)
def test_a_bad_dns_policy_or_config_is_refused_naming_the_field(policy, config, field):
    with pytest.raises(dns.DnsError, match=field):
        dns.resolv_conf_text(NODE, "default", policy, config)


# ------------------------------------------------------------------------------------------------ properties

_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_RE = re.compile(rf"{_OCTET}(\.{_OCTET}){{3}}")
HOSTILE = ["", "a b", "a\nb", "A", "a.b", "a#b", "-a", "a-", "x" * 64, "ü", "10.0.0.1 evil", "evil\n10.0.0.1 evil", "*", "a\r", "a\tb", "..", "#"]
labels = st.one_of(st.sampled_from(["web", "store", "store-0", "a", "x" * 63, "0"]), st.from_regex(r"[a-z0-9]([-a-z0-9]{0,5}[a-z0-9])?", fullmatch=True))
maybe_labels = st.one_of(labels, labels, st.sampled_from(HOSTILE), st.text(max_size=8), st.none(), st.integers(0, 9))
addresses = st.builds("10.{}.{}.{}".format, st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))
BAD_ADDRESSES = ["010.1.2.3", "1.2.3", "1.2.3.4 evil", "1.2.3.4\n5.6.7.8 evil", "::1", "256.1.1.1", ""]
maybe_addresses = st.one_of(addresses, addresses, st.sampled_from(BAD_ADDRESSES), st.text(max_size=8), st.none())


@st.composite
def services(draw):
    name, namespace = draw(maybe_labels), draw(st.one_of(st.just("default"), maybe_labels))
    headless = draw(st.booleans())
    eps = []
    for i in range(draw(st.integers(0, 3))):
        hostname = draw(st.one_of(st.none(), maybe_labels))
        subdomain = draw(st.sampled_from([name, None, "other"]))
        node = draw(st.sampled_from(["node2", "node3"]))
        eps.append(endpoint(f"p{i}", draw(maybe_addresses), node=node, ready=draw(st.booleans()), hostname=hostname, subdomain=subdomain))
    return service(name, namespace, None if headless else draw(maybe_addresses), eps, publish=draw(st.booleans()))


def _valid_label(value):
    return isinstance(value, str) and len(value) <= 63 and bool(_LABEL_RE.fullmatch(value))


def _valid_ipv4(value):
    return isinstance(value, str) and bool(_IPV4_RE.fullmatch(value))


def model(items):
    """(records, Services left out) as Kubernetes' DNS specification gives them, from first principles: a Service
    with any bad value that would be rendered is left out whole."""
    out, left_out = set(), 0
    for svc in items:
        if not (_valid_label(svc["name"]) and _valid_label(svc["namespace"])):
            left_out += 1
            continue
        fqdn = f"{svc['name']}.{svc['namespace']}.svc.cluster.local"
        if svc["cluster_ip"] is not None:
            if _valid_ipv4(svc["cluster_ip"]):
                out.add((fqdn, svc["cluster_ip"]))
            else:
                left_out += 1
            continue
        mine = set()
        good = True
        for ep in svc["endpoints"]:
            if not (ep["ready"] or svc["publish_not_ready_addresses"]):
                continue
            good = good and _valid_ipv4(ep["ip"])
            mine.add((fqdn, ep["ip"]))
            if ep["hostname"] and ep["subdomain"] == svc["name"]:
                good = good and _valid_label(ep["hostname"])
                mine.add((f"{ep['hostname']}.{fqdn}", ep["ip"]))
        if good:
            out |= mine
        else:
            left_out += 1
    return out, left_out


def expected_records(items):
    return model(items)[0]


_LINE = re.compile(r"(\d{1,3}(\.\d{1,3}){3}) ([a-z0-9.-]{1,253})")


@settings(max_examples=300, deadline=None)
@given(st.lists(services(), max_size=4))
def test_no_value_of_a_service_file_adds_a_line_or_a_name_of_its_own(items):
    service_lines, _nodes, problems = dns.records(NODE, items)
    text = dns.render_hosts(service_lines)
    body = text.splitlines()[1:]
    assert all(_LINE.fullmatch(line) for line in body), body
    assert set(dns.parse_hosts(text)) == expected_records(items)
    assert len(body) == len(expected_records(items))
    # Every Service left out is named, and only those.
    assert len(problems) == model(items)[1]


# ------------------------------------------------------------------------------------------------ dnsmasq itself


def dns_query(server, port, name, timeout=2.0):
    """(rcode, sorted A addresses) of one A query: a minimal stub resolver (no dig on the hosts)."""
    ident = random.randrange(65536)
    question = b"".join(bytes([len(part)]) + part.encode("ascii") for part in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question, (server, port))
        data = sock.recv(65535)
    rid, flags, qdcount, ancount = struct.unpack(">HHHH", data[:8])
    assert rid == ident

    def skip(pos):
        while data[pos] and data[pos] < 0xC0:
            pos += data[pos] + 1
        return pos + (2 if data[pos] else 1)

    pos = 12
    for _attempt in range(qdcount):
        pos = skip(pos) + 4
    found = []
    for _attempt in range(ancount):
        pos = skip(pos)
        rtype, _klass, _ttl, length = struct.unpack(">HHIH", data[pos : pos + 10])
        pos += 10
        if rtype == 1:
            found.append(socket.inet_ntoa(data[pos : pos + length]))
        pos += length
    return flags & 0xF, sorted(found)


def _free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def dnsmasq(tmp_path_factory):
    """The hosts' dnsmasq with the unit's own options, on loopback and a free port instead of the pod bridge."""
    if not os.path.exists(dns.DNSMASQ):
        pytest.fail(f"{dns.DNSMASQ} is missing: scripts/setup installs dnsmasq-base")
    state = str(tmp_path_factory.mktemp("dns-state"))
    dns.refresh(state, NODE, [], [])
    port = _free_udp_port()
    log = os.path.join(state, "dnsmasq.log")
    argv = [word for word in dns.dnsmasq_argv(dict(NODE, dns_ip="127.0.0.1"), state) if word not in ("--bind-dynamic", "--log-facility=-")]
    # No upstream (nothing but the cluster domain is asked here) and root kept: the test's files are root's, 0700.
    argv += [f"--port={port}", "--bind-interfaces", "--no-resolv", "--user=root", f"--log-facility={log}"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            dns_query("127.0.0.1", port, "node1", timeout=0.2)
            break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "dnsmasq did not start"
    yield state, port, log
    process.terminate()
    process.wait(10)
    shutil.rmtree(state, ignore_errors=True)


MARKERS = itertools.count()


def _read_counts(log):
    with open(log) as handle:
        return re.findall(r"read \S+/services\.hosts - (\d+) names", handle.read())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(services(), max_size=3))
def test_dnsmasq_reads_back_exactly_the_records(dnsmasq, items):
    state, port, log = dnsmasq
    # A marker Service makes every example's file differ from the one before: dnsmasq re-reads on every example.
    serial = next(MARKERS)
    marker = ("marker.default.svc.cluster.local", f"10.255.{serial // 250}.{serial % 250 + 1}")
    items = items + [service("marker", cluster_ip=marker[1])]
    reads_before = len(_read_counts(log))
    dns.refresh(state, NODE, items, [])
    wanted = by_name(expected_records(items))
    deadline = time.monotonic() + 5
    while dns_query("127.0.0.1", port, marker[0]) != (0, [marker[1]]):
        assert time.monotonic() < deadline, "dnsmasq never re-read the records"
        time.sleep(0.01)
    for name, addresses in wanted.items():
        assert dns_query("127.0.0.1", port, name) == (0, sorted(addresses)), name
    # dnsmasq counted exactly our lines (a hostile value that had become a line of its own would count).
    deadline = time.monotonic() + 5
    while len(_read_counts(log)) <= reads_before:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert int(_read_counts(log)[-1]) == sum(len(addresses) for addresses in wanted.values())
    # A name in the cluster domain that is not ours: NXDOMAIN, at once (never forwarded).
    assert dns_query("127.0.0.1", port, "nothing-here.default.svc.cluster.local") == (3, [])
    assert dns_query("127.0.0.1", port, "node2") == (0, ["10.77.5.12"])


# ------------------------------------------------------------------------------------------------ pods' resolv.conf

PY = "/usr/bin/python3"
NETWORK = podnet.validate_config({"cidr": "10.244.1.0/24"})
NODE_JSON = dict(NODE, cidr="10.244.1.0/24", bridge="hf0")


def pod_entry(name, image=False, **spec):
    container = {"name": "main", "command": ["/bin/sleep", "inf"]}
    if image:
        container["image"] = "localhost/busybox:1"
    return podspec.validate_pod({"name": name, "spec": dict({"containers": [container]}, **spec)}, "pods[0]", pod_network=True)


@pytest.fixture
def host(tmp_path):
    return converge.Host(str(tmp_path / "state"), unit_dir=str(tmp_path / "units"), wants_dir=str(tmp_path / "wants"), run_dir=str(tmp_path / "run"))


_NODE_JSON = object()  # the default: NODE_JSON (None means a node without the cluster network)


def plan(host, pods, node_config=_NODE_JSON):
    node_config = NODE_JSON if node_config is _NODE_JSON else node_config
    return converge.plan(host, "Deployment", "web", pods, "present", PY, network=NETWORK, node_config=node_config)


def write(plan_):
    """What converge.apply does with the files (no systemctl here)."""
    for path in plan_.removals:
        if os.path.lexists(path):
            os.unlink(path)
    for path, (content, mode) in plan_.writes.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(content)
        os.chmod(path, mode)


def unit_lines(plan_, unit, key):
    content = next(text for path, (text, _mode) in plan_.writes.items() if path.endswith("/" + unit))
    return [line[len(key) + 1 :] for line in content.splitlines() if line.startswith(key + "=")]


def test_a_pod_on_the_pod_network_gets_the_cluster_resolv_conf_bound_on_etc_resolv_conf(host):
    first = plan(host, [pod_entry("a"), pod_entry("shop_b"), pod_entry("h", hostNetwork=True)])
    path_a, path_b = dns.resolv_conf_path(host.state_dir, "a"), dns.resolv_conf_path(host.state_dir, "shop_b")
    assert first.writes[path_a] == (dns.resolv_conf_text(NODE_JSON, "default"), 0o644)
    # A pod outside default searches its own namespace first (node name <namespace>_<name>).
    assert "search shop.svc.cluster.local svc.cluster.local cluster.local\n" in first.writes[path_b][0]
    assert unit_lines(first, "hf-a.main.service", "BindReadOnlyPaths") == [f"{path_a}:/etc/resolv.conf"]
    # A pod on the host's network keeps the host's (dnsPolicy ClusterFirst, as the kubelet).
    assert dns.resolv_conf_path(host.state_dir, "h") not in first.writes
    assert unit_lines(first, "hf-h.main.service", "BindReadOnlyPaths") == []
    write(first)
    assert not plan(host, [pod_entry("a"), pod_entry("shop_b"), pod_entry("h", hostNetwork=True)]).changed


def test_a_podman_pod_gets_it_as_a_read_only_mount(host):
    first = plan(host, [pod_entry("a", image=True)])
    path = dns.resolv_conf_path(host.state_dir, "a")
    start = unit_lines(first, "hf-a.main.service", "ExecStart")[0]
    assert f'"--mount=\\"type=bind\\",\\"source={path}\\",\\"destination=/etc/resolv.conf\\",\\"ro\\""' in start


def test_dns_policy_default_keeps_the_hosts_and_removes_the_file(host):
    write(plan(host, [pod_entry("a")]))
    path = dns.resolv_conf_path(host.state_dir, "a")
    assert os.path.exists(path)
    moved = plan(host, [pod_entry("a", dnsPolicy="Default")])
    assert path in moved.removals and "BindReadOnlyPaths" not in next(t for p, (t, _m) in moved.writes.items() if p.endswith("hf-a.main.service"))


def test_without_cluster_dns_on_the_node_pods_keep_the_hosts(host):
    assert dns.resolv_conf_path(host.state_dir, "a") not in plan(host, [pod_entry("a")], node_config=None).writes
    only = plan(host, [pod_entry("a", dnsPolicy="None", dnsConfig={"nameservers": ["10.0.0.53"]})], node_config=None)
    assert only.writes[dns.resolv_conf_path(host.state_dir, "a")][0].splitlines()[1:] == ["nameserver 10.0.0.53"]


def test_a_template_with_dns_config_passes_the_controller_sides_check():
    # Controllers validate templates without knowing the node (pod_network False): the converge decides.
    spec = {"containers": [{"name": "main", "command": ["/bin/true"]}], "dnsConfig": {"options": [{"name": "ndots", "value": "2"}]}}
    assert podspec.validate_pod_spec(spec, "spec.template.spec")["dnsConfig"] == spec["dnsConfig"]


def test_a_dns_config_a_host_network_pod_cannot_have_fails_its_converge_naming_the_field(host):
    pod = podspec.validate_pod({"name": "a", "spec": {"containers": [{"name": "main", "command": ["/bin/true"]}], "dnsConfig": {"searches": ["x.example"]}}},
                               "pods[0]")
    with pytest.raises(SpecError) as error:
        converge.plan(host, "Deployment", "web", [pod], "present", PY, node_config=NODE_JSON)
    assert error.value.path == "pods[0].spec.dnsConfig"


def test_pod_spec_dns_fields_are_checked_naming_the_field_and_kept_only_when_set():
    plain = pod_entry("a")["spec"]
    assert not {"subdomain", "dnsPolicy", "dnsConfig"} & set(plain)
    # ClusterFirst is the default: saying it changes no spec (nor its hash).
    assert pod_entry("a", dnsPolicy="ClusterFirst")["spec"] == plain
    kept = pod_entry("a", subdomain="store", dnsPolicy="None", dnsConfig={"nameservers": ["1.1.1.1"]})["spec"]
    assert (kept["subdomain"], kept["dnsPolicy"], kept["dnsConfig"]) == ("store", "None", {"nameservers": ["1.1.1.1"]})
    for spec, field in [
        ({"subdomain": "Store"}, "pods[0].spec.subdomain"),
        ({"dnsPolicy": "Cluster"}, "pods[0].spec.dnsPolicy"),
        ({"dnsConfig": {"nameservers": ["1.1.1.1 x"]}}, "pods[0].spec.dnsConfig.nameservers[0]"),
        ({"dnsConfig": {"options": [{"name": "ndots", "value": "1\nnameserver 6.6.6.6"}]}}, "pods[0].spec.dnsConfig.options[0].value"),
        ({"hostNetwork": True, "dnsConfig": {"searches": ["corp.example"]}}, "pods[0].spec.dnsConfig"),
    ]:
        with pytest.raises(SpecError) as error:
            pod_entry("a", **spec)
        assert error.value.path == field, spec


def test_statefulset_pods_get_the_service_name_as_subdomain_as_kubernetes_sets_it():
    template = {"metadata": {"labels": {"app": "store"}}, "spec": {"containers": [{"name": "main", "command": ["/bin/sleep", "inf"]}]}}
    spec = parse_statefulset_spec("store", {"replicas": 1, "selector": {"matchLabels": {"app": "store"}}, "serviceName": "store", "template": template})
    pod = identity.pod_template(spec.template, spec.template.hash, spec.name, 0, (), spec.service_name)
    assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("store-0", "store")
    # The template's own subdomain wins; no serviceName, no subdomain.
    own = parse_statefulset_spec("store", {"replicas": 1, "selector": {"matchLabels": {"app": "store"}}, "serviceName": "store",
                                           "template": dict(template, spec=dict(template["spec"], subdomain="other"))})
    assert identity.pod_template(own.template, own.template.hash, own.name, 0, (), own.service_name)["spec"]["subdomain"] == "other"
    assert "subdomain" not in identity.pod_template(spec.template, spec.template.hash, spec.name, 0, ())["spec"]


_RESOLV_LINE = re.compile(r"nameserver (\d{1,3}(\.\d{1,3}){3})|search( [a-z0-9.-]+)+|options( [A-Za-z0-9_-]+(:[A-Za-z0-9._-]+)?)+")
hostile_text = st.one_of(st.sampled_from(HOSTILE + ["1.1.1.1", "corp.example", "ndots", "2", "edns0"]), st.text(max_size=8))


option_names = st.one_of(st.sampled_from(["ndots", "edns0", "timeout"]), hostile_text)
option_values = st.one_of(st.sampled_from(["1", "2"]), hostile_text, st.none())


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([None, *dns.DNS_POLICIES]),
    st.fixed_dictionaries(
        {},
        optional={
            # Mostly good values, so that a hostile one is often the only bad one.
            "nameservers": st.lists(st.one_of(addresses, addresses, addresses, hostile_text), max_size=2),
            "searches": st.lists(st.one_of(labels, labels, hostile_text), max_size=2),
            "options": st.lists(st.fixed_dictionaries({"name": option_names}, optional={"value": option_values}), max_size=2),
        },
    ),
    st.booleans(),
)
def test_no_dns_config_value_adds_a_resolv_conf_line_of_its_own(policy, config, host_network):
    try:
        text = dns.resolv_conf_text(NODE, "default", policy, config, host_network)
    except dns.DnsError as exc:
        assert str(exc).startswith(("spec.dnsPolicy", "spec.dnsConfig")), exc
        return
    if text is None:
        return
    lines = text.splitlines()
    assert lines[0].startswith("# ") and all(_RESOLV_LINE.fullmatch(line) for line in lines[1:]), lines
    servers = [line.split(" ")[1] for line in lines if line.startswith("nameserver ")]
    assert 1 <= len(servers) <= 3 and set(servers) <= {NODE["dns_ip"], *(config.get("nameservers") or [])}
