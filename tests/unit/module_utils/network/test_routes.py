"""A host's routes to the other nodes' pods (module_utils/network/routes.py): what is wanted, the commands, idempotence."""

from __future__ import annotations

import copy
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.network import config, routes

GW = "10.244.0.1"


def peer(index, via="direct", address=None):
    return {"node": f"node{index}", "node_index": index, "address": address or f"10.77.2.{10 + index}", "cidr": f"10.244.{index}.0/24",
            "gateway": f"10.244.{index}.1", "via": via}


def node(peers, address="10.77.2.10", index=0):
    return {"schema": 1, "node": f"node{index}", "node_index": index, "address": address, "cluster_cidr": "10.244.0.0/16", "cidr": f"10.244.{index}.0/24",
            "gateway": f"10.244.{index}.1", "bridge": "hf0", "service_cidr": "10.96.0.0/12", "cluster_domain": "cluster.local",
            "dns_ip": f"10.244.{index}.1", "peers": peers}


def empty_host():
    return {"underlay_mtu": 1500, "bridge": None, "bridge_up": False, "bridge_addresses": [], "bridge_ports": False, "forward": False, "vxlan": None,
            "routes": {}, "rules": set(), "neigh": {}, "fdb": set()}


class Kernel:
    """A model of the kernel's objects that ``plan`` handles, changed by the commands as ip(8) would."""

    def __init__(self, have=None):
        self.have = copy.deepcopy(have or empty_host())

    def run(self, commands):
        h = self.have
        for argv in commands:
            if argv == ["forward"]:
                h["forward"] = True
                continue
            words = argv[1:]
            if argv[0] == routes.BRIDGE:
                mac, dst = words[2], words[6]
                assert h["vxlan"] is not None, argv
                if words[1] == "replace":
                    h["fdb"] = {(m, d) for m, d in h["fdb"] if m != mac} | {(mac, dst)}
                else:
                    h["fdb"].discard((mac, dst))
            elif words[:2] == ["link", "add"] and "bridge" in words:
                assert h["bridge"] is None, argv
                h["bridge"], h["bridge_addresses"] = words[2], []
            elif words[:2] == ["link", "add"]:
                assert h["vxlan"] is None, argv
                h["vxlan"] = {"local": words[words.index("local") + 1], "id": int(words[words.index("id") + 1]), "port": int(words[words.index("dstport") + 1]),
                              "mac": words[words.index("address") + 1], "mtu": 1500, "up": False}
            elif words[:2] == ["link", "del"]:
                if words[2] == config.VXLAN_DEVICE:
                    h["vxlan"], h["neigh"], h["fdb"] = None, {}, set()
                    h["routes"] = {k: v for k, v in h["routes"].items() if v["dev"] != config.VXLAN_DEVICE}
                else:
                    assert not h["bridge_ports"], "a bridge with pods was deleted"
                    sources = {a.split("/")[0] for a in h["bridge_addresses"]}
                    h["bridge"], h["bridge_addresses"], h["bridge_up"] = None, [], False
                    h["routes"] = {k: v for k, v in h["routes"].items() if v["dev"] != words[2] and v["src"] not in sources}
            elif words[:2] == ["link", "set"]:
                if words[2] == config.VXLAN_DEVICE:
                    if "address" in words:
                        h["vxlan"]["mac"] = words[words.index("address") + 1]
                    if "mtu" in words:
                        h["vxlan"]["mtu"] = int(words[words.index("mtu") + 1])
                    h["vxlan"]["up"] = h["vxlan"]["up"] or "up" in words
                else:
                    h["bridge_up"] = True
            elif words[:2] == ["addr", "add"]:
                assert words[2] not in h["bridge_addresses"], argv
                h["bridge_addresses"].append(words[2])
            elif words[:2] == ["addr", "del"]:
                h["bridge_addresses"].remove(words[2])
            elif words[:2] == ["neigh", "replace"]:
                h["neigh"][words[2]] = words[4]
            elif words[:2] == ["neigh", "del"]:
                h["neigh"].pop(words[2], None)
            elif words[0] == "route":
                table, dst = words[words.index("table") + 1], words[2]
                if words[1] == "replace":
                    dev = words[words.index("dev") + 1] if "dev" in words else "eth0"
                    assert dev != config.VXLAN_DEVICE or h["vxlan"] is not None, argv
                    h["routes"][(table, dst)] = {"gateway": words[words.index("via") + 1] if "via" in words else None, "dev": dev,
                                                 "onlink": "onlink" in words, "src": words[words.index("src") + 1] if "src" in words else None}
                else:
                    h["routes"].pop((table, dst), None)
            elif words[0] == "rule":
                rule = (int(words[words.index("fwmark") + 1], 16), int(words[words.index("lookup") + 1]))
                if words[1] == "add":
                    assert rule not in h["rules"], argv
                    h["rules"].add(rule)
                else:
                    h["rules"].discard(rule)
            else:
                raise AssertionError(f"unexpected command {argv}")
        return self


def converge(kernel, wanted, previous=None):
    want = routes.desired(wanted, kernel.have["underlay_mtu"])
    prev = f"{previous['gateway']}/24" if previous and wanted else None
    commands = routes.plan(want, kernel.have, prev)
    kernel.run(commands)
    return commands


def test_direct_and_vxlan_peers_from_nothing():
    wanted = node([peer(1), peer(2, "vxlan")])
    commands = routes.describe(routes.plan(routes.desired(wanted), empty_host()))
    assert commands == [
        "ip link add hf0 type bridge",
        "ip addr add 10.244.0.1/24 dev hf0",
        "ip link set hf0 up",
        "sysctl -w net.ipv4.ip_forward=1",
        "ip link add hfvx address 02:68:66:00:00:00 type vxlan id 4244 local 10.77.2.10 dstport 4789 nolearning",
        "ip link set hfvx mtu 1450 up",
        "ip neigh replace 10.244.2.1 lladdr 02:68:66:00:00:02 dev hfvx nud permanent",
        "bridge fdb replace 02:68:66:00:00:02 dev hfvx dst 10.77.2.12 self permanent",
        "ip route replace default via 10.77.2.11 proto 147 table 20001",
        "ip route replace default via 10.244.2.1 dev hfvx onlink proto 147 table 20002",
        "ip route replace 10.244.1.0/24 via 10.77.2.11 src 10.244.0.1 proto 147 table main",
        "ip route replace 10.244.2.0/24 via 10.244.2.1 dev hfvx onlink src 10.244.0.1 proto 147 table main",
        "ip route replace 10.96.0.0/12 dev hf0 src 10.244.0.1 proto 147 table main",
        "ip rule add priority 1000 fwmark 0x1f0001 lookup 20001",
        "ip rule add priority 1000 fwmark 0x1f0002 lookup 20002",
    ]


def test_rerun_plans_nothing_and_the_kernel_reports_the_device_of_direct_routes():
    kernel = Kernel()
    converge(kernel, node([peer(1), peer(2, "vxlan")]))
    assert kernel.have["routes"][("main", "10.244.1.0/24")]["dev"] == "eth0"  # chosen by the kernel: not compared
    assert converge(kernel, node([peer(1), peer(2, "vxlan")])) == []


def test_a_peer_that_left_loses_its_route_rule_table_and_vxlan_entries():
    kernel = Kernel()
    converge(kernel, node([peer(1), peer(2, "vxlan"), peer(3, "vxlan")]))
    commands = routes.describe(converge(kernel, node([peer(1), peer(2, "vxlan")])))
    assert commands == [
        "ip rule del priority 1000 fwmark 0x1f0003 lookup 20003",
        "ip route del default proto 147 table 20003",
        "ip route del 10.244.3.0/24 proto 147 table main",
        "ip neigh del 10.244.3.1 dev hfvx",
        "bridge fdb del 02:68:66:00:00:03 dev hfvx dst 10.77.2.13 self",
    ]
    # The last VXLAN peer gone: the device goes, after its routes.
    commands = routes.describe(converge(kernel, node([peer(1)])))
    assert commands[-1] == "ip link del hfvx"
    assert kernel.have["vxlan"] is None and ("20002", "default") not in kernel.have["routes"]


def test_a_new_own_address_recreates_the_vxlan_device_with_its_entries():
    kernel = Kernel()
    converge(kernel, node([peer(2, "vxlan")]))
    commands = routes.describe(converge(kernel, node([peer(2, "vxlan")], address="10.77.9.10")))
    assert commands[:2] == ["ip link del hfvx", "ip link add hfvx address 02:68:66:00:00:00 type vxlan id 4244 local 10.77.9.10 dstport 4789 nolearning"]
    assert "ip neigh replace 10.244.2.1 lladdr 02:68:66:00:00:02 dev hfvx nud permanent" in commands
    assert converge(kernel, node([peer(2, "vxlan")], address="10.77.9.10")) == []


def test_a_changed_range_moves_the_bridge_address_and_the_sources():
    kernel = Kernel()
    old = node([peer(1)])
    converge(kernel, old)
    new = node([peer(1)], index=5)
    commands = routes.describe(converge(kernel, new, previous=old))
    assert "ip addr add 10.244.5.1/24 dev hf0" in commands and commands[-1] == "ip addr del 10.244.0.1/24 dev hf0"
    assert "ip route replace 10.244.1.0/24 via 10.77.2.11 src 10.244.5.1 proto 147 table main" in commands


def test_absent_removes_everything_but_a_bridge_that_pods_use():
    kernel = Kernel()
    converge(kernel, node([peer(1), peer(2, "vxlan")]))
    kernel.have["bridge_ports"] = True
    commands = routes.describe(converge(kernel, None))
    assert "ip link del hfvx" in commands and not any(c.startswith("ip link del hf0") for c in commands)
    assert kernel.have["routes"] == {} and kernel.have["rules"] == set() and kernel.have["bridge"] == "hf0"
    kernel.have["bridge_ports"] = False
    assert routes.describe(converge(kernel, None)) == ["ip link del hf0"]
    assert converge(kernel, None) == []


def test_vxlan_mac_is_unicast_locally_administered_and_distinct():
    macs = {routes.vxlan_mac(i) for i in range(0, 70000, 7)}
    assert len(macs) == len(range(0, 70000, 7))
    assert all(int(m.split(":")[0], 16) & 0b11 == 0b10 for m in macs)


peers_strategy = st.dictionaries(st.integers(1, 12), st.sampled_from(config.VIA), max_size=6)
configs_strategy = st.lists(st.tuples(peers_strategy, st.sampled_from(["10.77.2.10", "10.77.3.10"]), st.booleans()), min_size=1, max_size=5)


@settings(max_examples=200, deadline=None)
@given(configs=configs_strategy)
def test_any_sequence_of_node_files_converges_in_one_plan(configs):
    kernel = Kernel()
    previous = None
    for peers, address, present in configs:
        wanted = node([peer(i, via) for i, via in sorted(peers.items())], address=address) if present else None
        converge(kernel, wanted, previous)
        assert converge(kernel, wanted, previous) == [], "a second plan is not empty"
        want = routes.desired(wanted)
        assert set(kernel.have["routes"]) == set(want["routes"])
        assert kernel.have["rules"] == want["rules"]
        assert (kernel.have["vxlan"] is None) == (want["vxlan"] is None)
        if want["vxlan"] is not None:
            assert kernel.have["neigh"] == want["neigh"] and kernel.have["fdb"] == want["fdb"]
        previous = wanted


def test_the_installed_script_stands_alone(tmp_path):
    source = routes.script_source()
    assert not [line for line in source.splitlines() if line.startswith(("from ansible_collections", "import ansible_collections"))]
    script = tmp_path / "hostfleet-routes"
    script.write_text(source)
    # No node.json: nothing to do, and no import of the collection needed to find that out.
    done = subprocess.run([sys.executable, "-I", "-S", str(script), "apply", str(tmp_path)], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    done = subprocess.run([sys.executable, "-I", "-S", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "usage" in done.stderr
