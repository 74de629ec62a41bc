"""The cluster network's plan (plugin_utils/network/cidrs.py): options, per-node CIDR allocation, direct or VXLAN."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.network import config
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.network import cidrs

CONF = cidrs.settings()


def own(conf, indexes, peers=(), written_at=1.0):
    return {node: {"node": node, "node_index": i, "cidr": conf.node_cidr(i), "peers": list(peers), "written_at": written_at} for node, i in indexes.items()}


def test_defaults_give_one_slash24_per_node_from_the_lowest():
    assert CONF.capacity == 256
    assert cidrs.allocate(CONF, ["node1", "node2", "node3"], {}) == {"node1": 0, "node2": 1, "node3": 2}
    assert CONF.node_cidr(3) == "10.244.3.0/24"
    assert cidrs.gateway("10.244.3.0/24") == "10.244.3.1"


def test_recorded_ranges_are_kept_and_a_new_node_takes_the_lowest_free_index():
    recorded = own(CONF, {"node1": 5, "node3": 0})
    assert cidrs.allocate(CONF, ["node1", "node2", "node3"], recorded) == {"node1": 5, "node2": 1, "node3": 0}


def test_an_unreachable_node_keeps_the_range_its_peers_remember():
    # node2 did not answer: only node1's and node3's files are read, and their peers lists name node2's index.
    recorded = own(CONF, {"node1": 0, "node3": 2}, peers=[{"node": "node2", "node_index": 7, "cidr": CONF.node_cidr(7)}])
    assert cidrs.allocate(CONF, ["node1", "node2", "node3", "node4"], recorded) == {"node1": 0, "node2": 7, "node3": 2, "node4": 1}


def test_a_node_that_left_frees_its_index():
    recorded = own(CONF, {"node1": 0, "node2": 1}, peers=[{"node": "node2", "node_index": 1, "cidr": CONF.node_cidr(1)}])
    assert cidrs.allocate(CONF, ["node1", "node3"], recorded) == {"node1": 0, "node3": 1}


def test_claims_made_under_another_cluster_cidr_are_reallocated():
    other = cidrs.settings(cluster_cidr="10.200.0.0/16")
    assert cidrs.allocate(CONF, ["node1"], own(other, {"node1": 4})) == {"node1": 0}
    # The same index with a CIDR of another prefix is no claim either.
    assert cidrs.allocate(CONF, ["node1"], {"node1": {"node_index": 4, "cidr": "10.244.4.0/25"}}) == {"node1": 0}


def test_two_nodes_claiming_one_index_the_newest_file_wins():
    # node1 left, node2 took its index, node1 came back with its old file: node2 keeps the range.
    recorded = {**own(CONF, {"node1": 3}, written_at=10.0), **own(CONF, {"node2": 3}, written_at=20.0)}
    assert cidrs.allocate(CONF, ["node1", "node2"], recorded) == {"node1": 0, "node2": 3}
    # The newest file's memory of a peer outweighs an older file's word on itself.
    memory = [{"node": "node2", "node_index": 3, "cidr": CONF.node_cidr(3)}]
    recorded = {**own(CONF, {"node1": 3}, written_at=10.0), **own(CONF, {"node4": 1}, peers=memory, written_at=20.0)}
    assert cidrs.allocate(CONF, ["node1", "node2", "node4"], recorded) == {"node1": 0, "node2": 3, "node4": 1}
    # Same age: the node's own word first, then node order.
    assert cidrs.allocate(CONF, ["node1", "node2"], own(CONF, {"node1": 3, "node2": 3})) == {"node1": 3, "node2": 0}


def test_a_full_cluster_cidr_is_refused_naming_the_option():
    small = cidrs.settings(cluster_cidr="10.244.0.0/23", node_prefix=24)
    assert small.capacity == 2
    with pytest.raises(cidrs.CidrError, match=r"^cluster_cidr: 10.244.0.0/23 holds 2 node CIDRs of /24, not enough for 3 nodes") as err:
        cidrs.allocate(small, ["a", "b", "c"], {})
    assert err.value.field == "cluster_cidr"


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        ({"cluster_cidr": "10.244.1.0/16"}, "cluster_cidr", "host bits set"),
        ({"cluster_cidr": "10.244.0.0"}, "cluster_cidr", "no prefix length"),
        ({"cluster_cidr": "fd00::/64"}, "cluster_cidr", "not an IPv4 network"),
        ({"cluster_cidr": 7}, "cluster_cidr", "must be an IPv4 network"),
        ({"cluster_cidr": "10.0.0.0/7"}, "cluster_cidr", "/8 to /28"),
        ({"node_prefix": 16}, "node_prefix", "longer than cluster_cidr's /16"),
        ({"node_prefix": 30}, "node_prefix", "at most 29"),
        ({"node_prefix": "24"}, "node_prefix", "must be an integer"),
        ({"service_cidr": "10.244.128.0/20"}, "service_cidr", "overlaps cluster_cidr 10.244.0.0/16"),
        ({"service_cidr": "10.0.0.0/8"}, "service_cidr", "overlaps"),
        ({"service_cidr": "10.96.0.0/31"}, "service_cidr", "/8 to /30"),
        ({"cluster_domain": "Cluster.Local"}, "cluster_domain", "not a DNS domain"),
        ({"cluster_domain": "cluster..local"}, "cluster_domain", "not a DNS domain"),
        ({"bridge": "hfvx"}, "bridge", "not an interface name"),
        ({"bridge": "a-very-long-bridge-name"}, "bridge", "not an interface name"),
        ({"mode": "wireguard"}, "mode", "not one of auto, direct, vxlan"),
    ],
)
def test_bad_options_are_refused_naming_the_option(options, field, message):
    with pytest.raises(cidrs.CidrError, match=message) as err:
        cidrs.settings(**options)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")


def test_host_addresses_inside_the_ranges_are_refused():
    with pytest.raises(cidrs.CidrError, match=r"^cluster_cidr: 10.244.0.0/16 contains node2's address 10.244.7.9"):
        cidrs.check_addresses(CONF, {"node1": "10.77.2.11", "node2": "10.244.7.9"})
    with pytest.raises(cidrs.CidrError, match=r"^service_cidr: "):
        cidrs.check_addresses(CONF, {"node1": "10.100.0.1"})
    cidrs.check_addresses(CONF, {"node1": "10.77.2.11"})


def test_via_direct_on_a_shared_link_vxlan_otherwise():
    lan = ["10.77.2.11/24"]
    assert cidrs.via("auto", lan, "10.77.2.11", ["10.77.2.13/24"], "10.77.2.13") == "direct"
    assert cidrs.via("auto", lan, "10.77.2.11", ["192.168.5.3/24"], "192.168.5.3") == "vxlan"
    # One-sided (a /16 on one host, a /24 on the other that does not contain the first): not a shared link.
    assert cidrs.via("auto", ["10.77.0.5/16"], "10.77.0.5", ["10.77.2.13/24"], "10.77.2.13") == "vxlan"
    assert cidrs.via("vxlan", lan, "10.77.2.11", lan, "10.77.2.12") == "vxlan"
    assert cidrs.via("direct", lan, "10.77.2.11", ["192.168.5.3/24"], "192.168.5.3") == "direct"
    # An unreachable peer: what was remembered, else judged from the side that answered.
    assert cidrs.via("auto", lan, "10.77.2.11", None, "10.77.2.13", remembered="vxlan") == "vxlan"
    assert cidrs.via("auto", lan, "10.77.2.11", None, "10.77.2.13") == "direct"


def test_node_configs_are_valid_node_json_with_every_other_node_as_peer():
    indexes = {"node1": 0, "node2": 4, "node3": 1}
    addresses = {"node1": "10.77.2.11", "node2": "10.77.2.12", "node3": "10.77.2.13"}
    vias = {("node1", "node2"): "direct", ("node1", "node3"): "vxlan", ("node2", "node3"): "direct"}
    configs = cidrs.node_configs(CONF, indexes, addresses, vias, 5.0)
    for node, data in configs.items():
        config.check_node_config(data, node)
        assert [p["node"] for p in data["peers"]] == sorted((n for n in indexes if n != node), key=indexes.get)
    node2 = configs["node2"]
    assert (node2["cidr"], node2["gateway"], node2["dns_ip"], node2["address"]) == ("10.244.4.0/24", "10.244.4.1", "10.244.4.1", "10.77.2.12")
    assert configs["node1"]["peers"] == [
        {"node": "node3", "node_index": 1, "address": "10.77.2.13", "cidr": "10.244.1.0/24", "gateway": "10.244.1.1", "via": "vxlan"},
        {"node": "node2", "node_index": 4, "address": "10.77.2.12", "cidr": "10.244.4.0/24", "gateway": "10.244.4.1", "via": "direct"},
    ]


# -- properties over runs: nodes join, leave, go unreachable ------------------------------------------------------------

NAMES = [f"n{i}" for i in range(8)]
conf_strategy = st.sampled_from([cidrs.settings(), cidrs.settings(cluster_cidr="10.244.0.0/21", node_prefix=24),
                                 cidrs.settings(cluster_cidr="172.16.0.0/24", node_prefix=27)])
runs_strategy = st.lists(st.tuples(st.sets(st.sampled_from(NAMES), min_size=1), st.sets(st.sampled_from(NAMES))), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(conf=conf_strategy, runs=runs_strategy)
def test_ranges_are_distinct_in_the_cluster_and_never_change_while_recorded(conf, runs):
    disks: dict[str, dict] = {}  # each node's node.json as the last run that reached it wrote it
    previous: dict[str, int] = {}  # the last run's cluster
    for run, (members, down) in enumerate(runs, start=1):
        reachable = [n for n in sorted(members) if n not in down]
        files = {n: disks[n] for n in reachable if n in disks}
        remembered = set(files) | {p["node"] for data in files.values() for p in data["peers"]}
        # Unreachable nodes nobody remembers are left out (their address is unknown); the rest is the cluster.
        cluster = [n for n in sorted(members) if n in reachable or n in remembered]
        if len(cluster) > conf.capacity:
            with pytest.raises(cidrs.CidrError):
                cidrs.allocate(conf, cluster, files)
            continue
        indexes = cidrs.allocate(conf, cluster, files)
        assert sorted(indexes) == sorted(cluster)
        assert len(set(indexes.values())) == len(indexes), "two nodes share a range"
        networks = [ipaddress.IPv4Network(conf.node_cidr(i)) for i in indexes.values()]
        assert all(net.subnet_of(conf.cluster_cidr) and net.prefixlen == conf.node_prefix for net in networks)
        if files and max(data["written_at"] for data in files.values()) == run - 1:
            # Some node reached now was written by the last run: every node of that run still here keeps its range.
            for node in cluster:
                if node in previous:
                    assert indexes[node] == previous[node], f"{node}'s range changed while recorded"
        free = sorted(set(range(conf.capacity)) - {indexes[n] for n in cluster if n in remembered})
        new = [indexes[n] for n in cluster if n not in remembered]
        assert new == free[: len(new)], "a new node did not take the lowest free index"
        configs = cidrs.node_configs(conf, indexes, {n: f"192.168.0.{i + 1}" for i, n in enumerate(NAMES) if n in indexes},
                                     {(a, b): "direct" for a in indexes for b in indexes if a < b}, float(run))
        for node in reachable:
            if node in configs:
                disks[node] = configs[node]
        previous = dict(indexes)


def test_the_address_peers_reach_a_node_at():
    from ansible_collections.hostfleet.workloads.plugins.action.cluster_network import AddressError, node_address

    nets = ["10.77.2.11/24", "192.168.9.4/24"]
    assert node_address("node1", {"ansible_host": "10.77.2.11"}, nets) == "10.77.2.11"
    assert node_address("node1", {"ansible_host": "10.77.2.11", "hostfleet_node_address": "192.168.9.4"}, nets) == "192.168.9.4"
    assert node_address("node1", {"ansible_host": "node1.example"}, ["10.77.2.11/24"]) == "10.77.2.11"
    with pytest.raises(AddressError, match=r"^node1: cannot tell which of its addresses \(10.77.2.11, 192.168.9.4\).*set hostfleet_node_address"):
        node_address("node1", {"ansible_host": "node1.example"}, nets)
    with pytest.raises(AddressError, match=r"^hostfleet_node_address of node1: '10.1.1.1' is not one of its IPv4 addresses"):
        node_address("node1", {"hostfleet_node_address": "10.1.1.1"}, nets)
