"""The node's pod network (podnet.py and its use in podspec, units, converge, status, hook): pure logic and rendering."""

from __future__ import annotations

import ipaddress
import json
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from node_helpers import MAIN, parse_exec_line, unit_values, write_plan

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, hook, podnet, podspec, status, units
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError

PY = "/usr/bin/python3"
NETWORK = podnet.validate_config({"cidr": "10.244.3.0/24"})


def raw(name, host_network=None, image=False, **main):
    container = dict(MAIN, **main)
    if image:
        container = dict(container, image="localhost/busybox:1")
    spec = {"containers": [container, {"name": "side", "command": ["/bin/sleep", "inf"]}]}
    if image:
        spec["containers"][1]["image"] = "localhost/busybox:1"
    if host_network is not None:
        spec["hostNetwork"] = host_network
    return {"name": name, "spec": spec}


def on_network(*raw_pods):
    return [podspec.validate_pod(p, f"pods[{i}]", pod_network=True) for i, p in enumerate(raw_pods)]


@pytest.fixture
def host(tmp_path):
    return converge.Host(str(tmp_path / "state"), unit_dir=str(tmp_path / "units"), wants_dir=str(tmp_path / "wants"), run_dir=str(tmp_path / "run"))


# --- configuration and validation ---------------------------------------------------------------------


def test_config_normal_form_and_errors_name_the_field():
    assert podnet.validate_config({"cidr": "10.244.3.0/24"}) == {"cidr": "10.244.3.0/24", "bridge": "hf0"}
    assert podnet.validate_config({"cidr": "10.1.0.0/16", "bridge": "pods-1"}) == {"cidr": "10.1.0.0/16", "bridge": "pods-1"}
    for value, field in [
        ({}, "pod_network.cidr"),
        ({"cidr": "10.244.3.1/24"}, "pod_network.cidr"),  # host bits set
        ({"cidr": "fd00::/64"}, "pod_network.cidr"),
        ({"cidr": "10.244.3.0/30"}, "pod_network.cidr"),  # no room for a pod after the gateway
        ({"cidr": "10.244.3.0/24", "bridge": "a-very-long-bridge"}, "pod_network.bridge"),
        ({"cidr": "10.244.3.0/24", "bridge": "-x"}, "pod_network.bridge"),
        ({"cidr": "10.244.3.0/24", "mtu": 1400}, "pod_network.mtu"),
        ("10.244.3.0/24", "pod_network"),
    ]:
        with pytest.raises(SpecError) as error:
            podnet.validate_config(value)
        assert error.value.path == field, value


def test_names_fit_the_kernel_and_systemd():
    long_pod = "p" * 63
    assert len(podnet.veth_name(long_pod)) <= 15 and podnet.veth_name(long_pod) != podnet.veth_name("p" * 62)
    assert podnet.netns_path("web") == "/run/netns/hf-web"
    assert units.netns_unit("web") == "hf-web._netns.service"
    assert units.parse_unit_name("hf-web._netns.service") == ("web", None, "netns", "service")
    # A container named "netns" keeps its own unit name, distinct from the namespace's.
    assert units.parse_unit_name("hf-web.netns.service") == ("web", "netns", None, "service")


def test_host_network_false_needs_the_pod_network_and_the_normal_form_says_so():
    with pytest.raises(SpecError) as error:
        podspec.validate_pod(raw("a", host_network=False), "pods[0]")
    assert error.value.path == "pods[0].spec.hostNetwork" and "pod_network" in error.value.message
    # Without pod_network, a pod's normal form is what it always was (revision hashes unchanged).
    plain = podspec.validate_pod(raw("a"), "pods[0]")
    assert "hostNetwork" not in plain["spec"]
    # Said on a node with a pod network, hostNetwork: true is kept: its containerPorts are then host ports.
    said = podspec.validate_pod(raw("a", host_network=True), "pods[0]", pod_network=True)
    assert said == dict(plain, spec=dict(plain["spec"], hostNetwork=True))
    assert on_network(raw("a"))[0]["spec"] == dict(plain["spec"], hostNetwork=False)
    assert on_network(raw("a", host_network=False))[0]["spec"]["hostNetwork"] is False


@pytest.mark.parametrize("image", [False, True])
def test_host_port_on_the_pod_network_is_kept_for_forwarding(image):
    # Forwarded from the host to the pod's address by the node's nftables table (network/nftables.py); any
    # hostPort then, not only containerPort's (an image container on the host's network must still say the same).
    pod = raw("a", image=image, ports=[{"containerPort": 80, "hostPort": 8080}])
    assert on_network(pod)[0]["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "hostPort": 8080, "protocol": "TCP"}]
    if image:
        with pytest.raises(SpecError) as error:
            podspec.validate_pod(raw("a", image=image, host_network=True, ports=[{"containerPort": 80, "hostPort": 8080}]), "pods[0]", pod_network=True)
        assert error.value.path == "pods[0].spec.containers[0].ports[0].hostPort" and "host's network" in error.value.message
    assert on_network(raw("a", ports=[{"containerPort": 80}]))[0]["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


# --- the allocator ------------------------------------------------------------------------------------


def test_allocate_keeps_held_addresses_and_fills_the_lowest_free():
    held = {"other": "10.244.3.2", "b": "10.244.3.7", "stale": "10.9.9.9"}
    assert podnet.allocate("10.244.3.0/24", held, ["a", "b", "c"]) == {"a": "10.244.3.3", "b": "10.244.3.7", "c": "10.244.3.4"}
    # An address outside the CIDR (it changed) is given up for a new one; the gateway is never a pod's.
    assert podnet.allocate("10.244.4.0/24", {"a": "10.244.3.2"}, ["a"]) == {"a": "10.244.4.2"}


def test_allocate_refuses_a_full_cidr_naming_the_reason():
    held = {f"p{i}": f"10.244.3.{i + 2}" for i in range(5)}  # a /29 has 5 pod addresses
    with pytest.raises(SpecError) as error:
        podnet.allocate("10.244.3.0/29", held, ["new"])
    assert error.value.path == "pod_network.cidr"
    assert "10.244.3.0/29 has no free address for pod 'new'" in error.value.message and "all 5 pod addresses are taken" in error.value.message


operations = st.lists(
    st.tuples(st.sampled_from(["add", "remove", "reload"]), st.lists(st.sampled_from([f"p{i}" for i in range(12)]), min_size=1, max_size=4, unique=True)),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(operations, st.sampled_from(["10.244.3.0/29", "10.244.3.0/28", "192.168.0.0/24"]))
def test_allocator_properties(ops, cidr):
    """Never two pods with one address, always a pod address of the CIDR, stable across re-runs and reloads, freed by
    removal, and a refusal only when the CIDR really is full."""
    network = ipaddress.IPv4Network(cidr)
    usable = {str(a) for a in list(network.hosts())[1:]}
    held = {}
    for op, names in ops:
        if op == "remove":
            for name in names:
                held.pop(name, None)
            continue
        if op == "reload":
            held = json.loads(json.dumps(held))  # what the records say after a write and a read
            names = sorted(held) or names
        wanted = sorted(set(names) | (set(held) if op == "reload" else set()))
        needed = len(set(wanted) - set(held))
        try:
            result = podnet.allocate(cidr, held, wanted)
        except SpecError as exc:
            assert exc.path == "pod_network.cidr" and "no free address" in exc.message
            assert len(held) + needed > len(usable)
            continue
        for name in wanted:
            if name in held:
                assert result[name] == held[name], "a pod keeps its address"
        held.update(result)
        assert len(set(held.values())) == len(held), "two pods with one address"
        assert set(held.values()) <= usable
        assert podnet.allocate(cidr, held, wanted) == result, "a re-run changes nothing"


# --- rendering ------------------------------------------------------------------------------------------


def rendered(pod, network=None):
    return units.render_pod(pod, "Pod/x", {}, "/var/lib/hostfleet", PY, network=network)


def test_without_the_pod_network_nothing_is_rendered_differently():
    for image in (False, True):
        pod = podspec.validate_pod(raw("a", image=image), "pods[0]")
        plain = rendered(pod)
        assert units.netns_unit("a") not in plain
        for content in plain.values():
            assert "NetworkNamespacePath" not in content and "BindsTo" not in content and "_netns" not in content
        if image:
            assert "--network=host" in plain[units.container_unit("a", "main")]


def test_netns_unit_and_containers_that_join_it():
    pod = on_network(raw("a", readinessProbe={"httpGet": {"port": 8080}}))[0]
    network = podnet.pod_network_record(NETWORK, "10.244.3.5")
    out = rendered(pod, network)
    netns = out[units.netns_unit("a")]
    assert unit_values(netns, "Type") == ["oneshot"] and unit_values(netns, "RemainAfterExit") == ["yes"]
    veth = podnet.veth_name("a")
    start = [parse_exec_line(v) for v in unit_values(netns, "ExecStart")]
    assert [[exe] + argv for exe, argv in start] == [
        ["/usr/sbin/ip", "netns", "add", "hf-a"],
        ["/usr/sbin/ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "address", "0a:58:0a:f4:03:05", "netns", "hf-a"],
        ["/usr/sbin/ip", "link", "set", veth, "master", "hf0", "up"],
        ["/usr/sbin/ip", "link", "set", veth, "type", "bridge_slave", "hairpin", "on"],  # a pod reaching its own Service
        ["/usr/sbin/ip", "-n", "hf-a", "link", "set", "lo", "up"],
        ["/usr/sbin/ip", "-n", "hf-a", "addr", "add", "10.244.3.5/24", "dev", "eth0"],
        ["/usr/sbin/ip", "-n", "hf-a", "link", "set", "eth0", "up"],
        ["/usr/sbin/ip", "-n", "hf-a", "route", "add", "default", "via", "10.244.3.1"],
    ]
    pre = [parse_exec_line(v.lstrip("-")) for v in unit_values(netns, "ExecStartPre")]
    assert ("/usr/sbin/ip", ["addr", "add", "10.244.3.1/24", "dev", "hf0"]) in pre
    stop = unit_values(netns, "ExecStopPost")
    assert all(v.startswith("-") for v in stop) and [parse_exec_line(v[1:]) for v in stop] == [
        ("/usr/sbin/ip", ["link", "delete", veth]),
        ("/usr/sbin/ip", ["netns", "delete", "hf-a"]),
    ]
    for cname in ("main", "side"):
        unit = out[units.container_unit("a", cname)]
        assert unit_values(unit, "BindsTo") == ["hf-a._netns.service"] and "hf-a._netns.service" in unit_values(unit, "After")
        assert unit_values(unit, "NetworkNamespacePath") == ["/run/netns/hf-a"]
    # Probes stay in the host's network (the hook connects to the pod's address).
    assert "NetworkNamespacePath" not in out["hf-a.main.readiness.service"]


def test_podman_containers_join_the_namespace():
    pod = on_network(raw("a", image=True))[0]
    out = rendered(pod, podnet.pod_network_record(NETWORK, "10.244.3.2"))
    unit = out[units.container_unit("a", "main")]
    _exe, argv = parse_exec_line(unit_values(unit, "ExecStart")[0])
    assert "--network=ns:/run/netns/hf-a" in argv and "--network=host" not in argv
    assert "NetworkNamespacePath" not in unit and unit_values(unit, "BindsTo") == ["hf-a._netns.service"]


# --- converge -----------------------------------------------------------------------------------------


def plan(host, pods, owner="web", **kwargs):
    network = kwargs.pop("network", NETWORK)  # None: no pod network
    return converge.plan(host, "Deployment", owner, pods, kwargs.pop("state", "present"), PY, network=network, **kwargs)


def test_converge_records_addresses_keeps_them_and_frees_them(host):
    first = plan(host, on_network(raw("a"), raw("b")))
    write_plan(host, first)
    records = host.records()
    assert {n: r["network"]["ip"] for n, r in records.items()} == {"a": "10.244.3.2", "b": "10.244.3.3"}
    assert records["a"]["network"] == {"ip": "10.244.3.2", "cidr": "10.244.3.0/24", "prefix": 24, "gateway": "10.244.3.1", "bridge": "hf0"}
    assert "hf-a._netns.service" in host.unit_files()
    again = plan(host, on_network(raw("a"), raw("b")))
    assert not again.changed
    # Another owner's pod gets the next free address; b leaving (prune) frees its address for c in the same converge.
    write_plan(host, plan(host, on_network(raw("o")), owner="other"))
    assert host.records()["o"]["network"]["ip"] == "10.244.3.4"
    swap = plan(host, on_network(raw("a"), raw("c")))
    assert swap.deleted == ["b"] and "hf-b._netns.service" in swap.stop_units
    write_plan(host, swap)
    assert {n: r["network"]["ip"] for n, r in host.records().items()} == {"a": "10.244.3.2", "c": "10.244.3.3", "o": "10.244.3.4"}
    # A pod moved back to the host's network: its namespace unit goes, its containers restart.
    back = plan(host, [podspec.validate_pod(raw("a", host_network=True), "pods[0]", pod_network=True)] + on_network(raw("c")))
    assert "hf-a._netns.service" in back.stop_units and {"hf-a.main.service", "hf-a.side.service"} <= back.restart_units
    write_plan(host, back)
    assert "network" not in host.records()["a"]


def test_converge_restarts_namespace_and_containers_when_the_cidr_changes(host):
    write_plan(host, plan(host, on_network(raw("a"))))
    moved = plan(host, on_network(raw("a")), network=podnet.validate_config({"cidr": "10.250.0.0/24"}))
    assert moved.restart_units >= {"hf-a._netns.service", "hf-a.main.service", "hf-a.side.service"}
    assert moved.updated == ["a"]


def test_converge_refuses_without_a_network_and_when_full_changing_nothing(host):
    with pytest.raises(SpecError) as error:
        plan(host, on_network(raw("a")), network=None)
    assert error.value.path == "pod_network"
    small = podnet.validate_config({"cidr": "10.244.3.0/29"})
    with pytest.raises(SpecError) as error:
        plan(host, on_network(*[raw(f"p{i}") for i in range(6)]), network=small)
    assert error.value.path == "pod_network.cidr"
    assert host.records() == {} and host.unit_files() == {}


def test_status_reports_the_pod_ip(host):
    write_plan(host, plan(host, on_network(raw("a"))))
    write_plan(host, plan(host, [podspec.validate_pod(raw("h"), "pods[0]")], owner="plain"))
    by_name = {p["name"]: p for p in converge.observe(host, units={})}
    assert by_name["a"]["pod_ip"] == "10.244.3.2" and by_name["h"]["pod_ip"] is None
    assert status.pod_status(host.records()["a"], {}, host, 0)["pod_ip"] == "10.244.3.2"


# --- probes target the pod's address ----------------------------------------------------------------------


def test_tcp_and_http_probes_with_the_default_host_connect_to_the_pod_ip():
    """127.0.0.2 stands for the pod's address: nothing listens on 127.0.0.1 at that port."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.2", 0))
        listener.listen()
        port = listener.getsockname()[1]
        tcp = podspec.validate_pod_spec({"containers": [dict(MAIN, livenessProbe={"tcpSocket": {"port": port}})]})["containers"][0]["livenessProbe"]
        assert hook.run_handler(tcp, {}, {}, 1, pod_ip="127.0.0.2") is True
        assert hook.run_handler(tcp, {}, {}, 1) is False
    assert hook.probe_host("127.0.0.1", "10.244.3.2") == "10.244.3.2"
    assert hook.probe_host("localhost", "10.244.3.2") == "10.244.3.2"
    assert hook.probe_host("db.example", "10.244.3.2") == "db.example"
    assert hook.probe_host("127.0.0.1", None) == "127.0.0.1"
    assert hook.pod_ip_of({"network": {"ip": "10.244.3.9"}}) == "10.244.3.9" and hook.pod_ip_of({}) is None


@given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(min_value=0, max_value=2**32 - 1))
def test_a_pods_mac_is_a_function_of_its_address(a, b):
    # A reused address gets the MAC its previous pod had (neighbour entries stay right); different ones never share.
    mac_a, mac_b = podnet.pod_mac(str(ipaddress.IPv4Address(a))), podnet.pod_mac(str(ipaddress.IPv4Address(b)))
    assert (mac_a == mac_b) == (a == b)
    first = int(mac_a.split(":", maxsplit=1)[0], 16)
    assert len(mac_a.split(":")) == 6 and first & 0x02 and not first & 0x01  # locally administered, unicast
