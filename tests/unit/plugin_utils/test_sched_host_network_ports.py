"""hostNetwork: true pods: hostPort defaults to containerPort for scheduling (issue 14), as Kubernetes defaults it."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.constraints import host_ports, parse_constraints
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.placement import HOST_PORTS, PlacementState, PodTemplate

LABELS = {"app": "web"}


def spec(ports, host_network=None):
    result = {"containers": [{"name": "web", "command": ["/bin/true"], "ports": ports}]}
    if host_network is not None:
        result["hostNetwork"] = host_network
    return result


def place(node_names, pod_spec, count):
    fleet = PlacementState([Node(n, True, {"kubernetes.io/hostname": n}) for n in node_names])
    counter = itertools.count()
    placed, why = fleet.place(PodTemplate("r1", {**LABELS, "pod-template-hash": "r1"}, parse_constraints(pod_spec)), count, lambda: f"p{next(counter)}")
    return sorted(p.node for p in placed), why


def test_host_network_container_port_is_a_host_port():
    assert host_ports(spec([{"containerPort": 80}], host_network=True)) == (("TCP", 80),)
    assert host_ports(spec([{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 8080, "hostPort": 9090}], True)) == (("TCP", 9090), ("UDP", 53))


def test_pod_network_container_port_is_no_host_port():
    # Unset or false: the pod has its own address (or, on a node without a pod network, nothing changes).
    assert host_ports(spec([{"containerPort": 80}])) == ()
    assert host_ports(spec([{"containerPort": 80}], host_network=False)) == ()
    assert host_ports(spec([{"containerPort": 80, "hostPort": 8080}])) == (("TCP", 8080),)


def test_two_host_network_pods_never_share_a_host_pending_with_kubernetes_reason():
    placed, why = place(["n1", "n2", "n3"], spec([{"containerPort": 80}], host_network=True), 4)
    assert placed == ["n1", "n2", "n3"]
    assert why == f"0/3 nodes are available: 3 {HOST_PORTS}."


def test_pod_network_pods_share_a_host():
    placed, why = place(["n1", "n2", "n3"], spec([{"containerPort": 80}]), 6)
    assert placed == ["n1", "n1", "n2", "n2", "n3", "n3"] and why == ""


@given(
    ports=st.lists(st.tuples(st.integers(1, 65535), st.sampled_from(["TCP", "UDP", None]), st.one_of(st.none(), st.integers(1, 65535))), max_size=5),
    host_network=st.sampled_from([True, False, None]),
)
def test_host_ports_property(ports, host_network):
    entries = []
    for container_port, protocol, host_port in ports:
        entry = {"containerPort": container_port}
        if protocol:
            entry["protocol"] = protocol
        if host_port is not None:
            entry["hostPort"] = host_port
        entries.append(entry)
    expected = set()
    for container_port, protocol, host_port in ports:
        if host_port is not None:
            expected.add((protocol or "TCP", host_port))
        elif host_network is True:
            expected.add((protocol or "TCP", container_port))
    assert set(host_ports(spec(entries, host_network))) == expected
    # Placed on n nodes, at most one pod per node whenever the pod takes a host port.
    placed, why = place(["n1", "n2"], spec(entries, host_network), 3)
    if expected:
        assert placed == ["n1", "n2"] and HOST_PORTS in why
    else:
        assert len(placed) == 3 and why == ""
