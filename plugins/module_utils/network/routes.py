# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's links to the other nodes' pods: the bridge, forwarding, routes, VXLAN and the Service policy rules.

Everything follows from node.json (config.py): ``desired`` says what the kernel should hold (pure), ``observe``
reads what it holds of ours (``ip -j``), ``plan`` lists the ``ip``/``bridge`` commands between the two (pure, empty
when nothing differs: a re-run changes nothing), ``apply`` runs them. Ours is recognised without a state file:
routes by their protocol number (config.ROUTE_PROTOCOL, in the main table and the per-peer Service tables), rules
by their priority, and everything on the VXLAN device. So the routes of a peer that left are found and removed.

- Direct (the peer's address is on a shared link): ``<peer cidr> via <peer address> src <own gateway>``, so the
  host's own traffic to pods has a pod-network source that the pods' replies route back to.
- VXLAN (flannel's scheme): one device ``hfvx`` whose MAC follows from the node's index; per peer a permanent
  neighbour entry (the peer's gateway at the peer's MAC), a forwarding entry (that MAC at the peer's address) and
  ``<peer cidr> via <peer gateway> dev hfvx onlink``. No learning, no multicast.
- Services (docs/network.md): per peer ``ip rule fwmark service_mark(i) lookup service_table(i)``, that table's
  default route to the peer; and ``<service cidr> dev <bridge> src <gateway>`` in the main table, so that a host
  process's connection to a ClusterIP has a route (the nftables rules then send it on) and never takes the host's
  default route.

Stdlib only, Python 3.8+: also installed as the standalone script ``<state_dir>/bin/hostfleet-routes`` (config.py
inlined, see ``script_source``) that ``hostfleet-network.service`` runs at boot.
"""

from __future__ import annotations

# A standalone script too (run by systemd at boot): subprocess is its tool, as in the pod hook.
# pylint: disable=ansible-bad-function
import ipaddress
import json
import subprocess
import sys

from ansible_collections.hostfleet.workloads.plugins.module_utils.network.config import (
    ROUTE_PROTOCOL,
    SERVICE_RULE_PRIORITY,
    VXLAN_DEVICE,
    VXLAN_OVERHEAD,
    VXLAN_PORT,
    VXLAN_VNI,
    read_node_config,
    service_mark,
    service_table,
)

IP = "ip"
BRIDGE = "bridge"
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"
MAIN = "main"


class RoutesError(RuntimeError):
    """A command failed: the message has the command and what it said."""


def vxlan_mac(node_index):
    """The node's VXLAN MAC: locally administered, unicast, from its index (the same on every run and every host)."""
    index = int(node_index)
    return f"02:68:66:{(index >> 16) & 0xFF:02x}:{(index >> 8) & 0xFF:02x}:{index & 0xFF:02x}"


def desired(node, underlay_mtu=1500):
    """What the kernel should hold for this node.json (None: nothing of ours at all)."""
    if node is None:
        return {"bridge": None, "address": None, "forward": False, "vxlan": None, "routes": {}, "rules": set(), "neigh": {}, "fdb": set()}
    prefix = ipaddress.IPv4Network(node["cidr"]).prefixlen
    gateway = node["gateway"]
    routes = {(MAIN, node["service_cidr"]): {"gateway": None, "dev": node["bridge"], "onlink": False, "src": gateway}}
    rules, neigh, fdb = set(), {}, set()
    vxlan_peers = [peer for peer in node["peers"] if peer["via"] == "vxlan"]
    for peer in node["peers"]:
        table = str(service_table(peer["node_index"]))
        if peer["via"] == "vxlan":
            hop = {"gateway": peer["gateway"], "dev": VXLAN_DEVICE, "onlink": True}
            neigh[peer["gateway"]] = vxlan_mac(peer["node_index"])
            fdb.add((vxlan_mac(peer["node_index"]), peer["address"]))
        else:
            hop = {"gateway": peer["address"], "dev": None, "onlink": False}
        routes[(MAIN, peer["cidr"])] = dict(hop, src=gateway)
        routes[(table, "default")] = dict(hop, src=None)
        rules.add((service_mark(peer["node_index"]), int(table)))
    vxlan = None
    if vxlan_peers:
        vxlan = {"local": node["address"], "id": VXLAN_VNI, "port": VXLAN_PORT, "mac": vxlan_mac(node["node_index"]), "mtu": underlay_mtu - VXLAN_OVERHEAD}
    return {"bridge": node["bridge"], "address": f"{gateway}/{prefix}", "forward": True, "vxlan": vxlan, "routes": routes, "rules": rules,
            "neigh": neigh, "fdb": fdb}


def _run(argv, check=True):
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    if check and done.returncode != 0:
        raise RoutesError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode('utf-8', 'replace').strip()}")
    return done


def _json(argv):
    done = _run(argv, check=False)
    if done.returncode != 0:
        return None  # a device that does not exist
    text = done.stdout.decode("utf-8", "replace").strip()
    return json.loads(text) if text else []


def observe(bridge, address=None):
    """What the kernel holds of ours (the same shape as ``desired``), plus the facts ``plan`` needs: the bridge's
    addresses and ports, the MTU of the link that holds ``address``."""
    links = _json([IP, "-j", "-d", "addr", "show"]) or []
    by_name = {link.get("ifname"): link for link in links}
    underlay_mtu = 1500
    for link in links:
        if any(info.get("local") == address for info in link.get("addr_info", [])):
            underlay_mtu = int(link.get("mtu") or 1500)
    have = {"underlay_mtu": underlay_mtu}
    br = by_name.get(bridge) if bridge else None
    have["bridge"] = bridge if br is not None else None
    have["bridge_up"] = br is not None and "UP" in br.get("flags", [])
    have["bridge_addresses"] = [f"{info['local']}/{info['prefixlen']}" for info in (br or {}).get("addr_info", []) if info.get("family") == "inet"]
    have["bridge_ports"] = bool(bridge) and any(link.get("master") == bridge for link in links)
    with open(IP_FORWARD) as handle:
        have["forward"] = handle.read().strip() == "1"
    vx = by_name.get(VXLAN_DEVICE)
    have["vxlan"] = None
    if vx is not None:
        data = (vx.get("linkinfo") or {}).get("info_data") or {}
        have["vxlan"] = {"local": data.get("local"), "id": data.get("id"), "port": data.get("port"), "mac": vx.get("address"), "mtu": vx.get("mtu"),
                         "up": "UP" in vx.get("flags", [])}
    routes = {}
    for route in _json([IP, "-j", "route", "show", "table", "all", "proto", str(ROUTE_PROTOCOL)]) or []:
        if route.get("type", "unicast") != "unicast" or ":" in route.get("dst", ""):
            continue
        key = (str(route.get("table", MAIN)), route["dst"])
        routes[key] = {"gateway": route.get("gateway"), "dev": route.get("dev"), "onlink": "onlink" in route.get("flags", []), "src": route.get("prefsrc")}
    have["routes"] = routes
    have["rules"] = set()
    for rule in _json([IP, "-j", "rule", "show"]) or []:
        if rule.get("priority") == SERVICE_RULE_PRIORITY and "fwmark" in rule:
            have["rules"].add((int(str(rule["fwmark"]), 0), int(rule.get("table", 0))))
    have["neigh"], have["fdb"] = {}, set()
    if vx is not None:
        for entry in _json([IP, "-j", "neigh", "show", "dev", VXLAN_DEVICE]) or []:
            have["neigh"][entry["dst"]] = entry.get("lladdr")
        for entry in _json([BRIDGE, "-j", "fdb", "show", "dev", VXLAN_DEVICE]) or []:
            if entry.get("dst"):
                have["fdb"].add((entry["mac"], entry["dst"]))
    return have


def _route_matches(want, have):
    return (have is not None and want["gateway"] == have["gateway"] and want["onlink"] == have["onlink"] and want["src"] == have["src"]
            and (want["dev"] is None or want["dev"] == have["dev"]))


def _route_argv(verb, table, dst, spec=None):
    argv = [IP, "route", verb, dst]
    if spec is not None:
        if spec["gateway"]:
            argv += ["via", spec["gateway"]]
        if spec["dev"]:
            argv += ["dev", spec["dev"]]
        if spec["onlink"]:
            argv.append("onlink")
        if spec["src"]:
            argv += ["src", spec["src"]]
    return argv + ["proto", str(ROUTE_PROTOCOL), "table", table]


def plan(want, have, previous_address=None):
    """The commands (argv lists) that take the kernel from ``have`` to ``want``; ``"forward"`` stands for setting
    net.ipv4.ip_forward. Removals last, so a peer's traffic never finds no route while it is being changed.
    ``previous_address``: the bridge address an older node.json had (removed when it changed). The bridge itself is
    removed only when no pod is attached to it: removing the network never touches a pod."""
    adds, removals, bridge_removals = [], [], []
    bridge = want["bridge"]
    if bridge is not None:
        if have["bridge"] is None:
            adds.append([IP, "link", "add", bridge, "type", "bridge"])
        if want["address"] not in have["bridge_addresses"]:
            adds.append([IP, "addr", "add", want["address"], "dev", bridge])
        if previous_address and previous_address != want["address"] and previous_address in have["bridge_addresses"]:
            bridge_removals.append([IP, "addr", "del", previous_address, "dev", bridge])
        if have["bridge"] is None or not have["bridge_up"]:
            adds.append([IP, "link", "set", bridge, "up"])
    elif have["bridge"] is not None and not have["bridge_ports"]:
        # Last: the routes whose source is its address go with it. A bridge that pods still use (their default
        # route is its address) is kept, with its address.
        bridge_removals.append([IP, "link", "del", have["bridge"]])
    if want["forward"] and not have["forward"]:
        adds.append(["forward"])
    vx_want, vx_have = want["vxlan"], have["vxlan"]
    neigh_have, fdb_have = have["neigh"], have["fdb"]
    routes_have = dict(have["routes"])
    if vx_want is not None:
        same = vx_have is not None and all(vx_have[k] == vx_want[k] for k in ("local", "id", "port"))
        if not same:
            if vx_have is not None:
                adds.append([IP, "link", "del", VXLAN_DEVICE])
                neigh_have, fdb_have = {}, set()
                routes_have = {key: spec for key, spec in routes_have.items() if spec["dev"] != VXLAN_DEVICE}
            adds.append([IP, "link", "add", VXLAN_DEVICE, "address", vx_want["mac"], "type", "vxlan", "id", str(vx_want["id"]), "local",
                         vx_want["local"], "dstport", str(vx_want["port"]), "nolearning"])
            vx_have = None
        if vx_have is not None and vx_have["mac"] != vx_want["mac"]:
            adds.append([IP, "link", "set", VXLAN_DEVICE, "address", vx_want["mac"]])
        if vx_have is None or vx_have["mtu"] != vx_want["mtu"] or not vx_have["up"]:
            adds.append([IP, "link", "set", VXLAN_DEVICE, "mtu", str(vx_want["mtu"]), "up"])
        for gateway, mac in sorted(want["neigh"].items()):
            if neigh_have.get(gateway) != mac:
                adds.append([IP, "neigh", "replace", gateway, "lladdr", mac, "dev", VXLAN_DEVICE, "nud", "permanent"])
        for mac, dst in sorted(want["fdb"]):
            if (mac, dst) not in fdb_have:
                adds.append([BRIDGE, "fdb", "replace", mac, "dev", VXLAN_DEVICE, "dst", dst, "self", "permanent"])
    for (table, dst), spec in sorted(want["routes"].items()):
        if not _route_matches(spec, routes_have.get((table, dst))):
            adds.append(_route_argv("replace", table, dst, spec))
    for mark, table in sorted(want["rules"] - have["rules"]):
        adds.append([IP, "rule", "add", "priority", str(SERVICE_RULE_PRIORITY), "fwmark", hex(mark), "lookup", str(table)])
    for mark, table in sorted(have["rules"] - want["rules"]):
        removals.append([IP, "rule", "del", "priority", str(SERVICE_RULE_PRIORITY), "fwmark", hex(mark), "lookup", str(table)])
    for (table, dst) in sorted(set(routes_have) - set(want["routes"])):
        removals.append(_route_argv("del", table, dst))
    if vx_want is None:
        if vx_have is not None:
            removals.append([IP, "link", "del", VXLAN_DEVICE])  # its neighbour and forwarding entries go with it
    else:
        for gateway in sorted(set(neigh_have) - set(want["neigh"])):
            removals.append([IP, "neigh", "del", gateway, "dev", VXLAN_DEVICE])
        for mac, dst in sorted(fdb_have - want["fdb"]):
            removals.append([BRIDGE, "fdb", "del", mac, "dev", VXLAN_DEVICE, "dst", dst, "self"])
    return adds + removals + bridge_removals


def run(commands):
    for argv in commands:
        if argv == ["forward"]:
            with open(IP_FORWARD, "w") as handle:
                handle.write("1\n")
        else:
            # A removal may find its object already gone with another one (a route with its device): not a failure.
            _run(argv, check="del" not in argv)


def describe(commands):
    """The commands as shell lines, for results and diffs."""
    return ["sysctl -w net.ipv4.ip_forward=1" if argv == ["forward"] else " ".join(argv) for argv in commands]


def converge(node, previous=None, check_mode=False):
    """Bring the kernel in line with ``node`` (a node.json, or None to remove everything of ours); the commands
    (described) that were (or, in check mode, would be) run. ``previous``: the node.json this one replaces."""
    bridge = node["bridge"] if node is not None else (previous or {}).get("bridge")
    have = observe(bridge, node["address"] if node is not None else None)
    want = desired(node, have["underlay_mtu"])
    previous_address = None
    if previous is not None and node is not None and previous.get("bridge") == node["bridge"]:
        previous_address = f"{previous['gateway']}/{ipaddress.IPv4Network(previous['cidr']).prefixlen}"
    commands = plan(want, have, previous_address)
    if not check_mode:
        run(commands)
    return describe(commands)


# ---------------------------------------------------------------- the installed script (hostfleet-network.service)

CONFIG_IMPORT_PREFIX = "from ansible_collections.hostfleet.workloads.plugins.module_utils.network.config import ("


def _module_source(module):
    # Through the loader: in an Ansible module's payload the sources are inside a zip file, not files.
    loader = getattr(module, "__loader__", None)
    source = loader.get_source(module.__name__) if loader is not None and hasattr(loader, "get_source") else None
    if source is None:
        with open(module.__file__) as handle:
            source = handle.read()
    return source


def script_source():
    """This module as a standalone script, config.py's code in place of its import."""
    own = _module_source(sys.modules[__name__])
    config_code = _module_source(sys.modules[read_node_config.__module__]).replace("from __future__ import annotations\n", "", 1)
    start = own.index(CONFIG_IMPORT_PREFIX)
    end = own.index(")\n", start) + 2
    return "#!/usr/bin/python3\n# Generated by hostfleet.workloads from module_utils/network/routes.py: do not edit.\n" + own[:start] + config_code + own[end:]


def main(argv):
    if len(argv) != 2 or argv[0] != "apply":
        print("usage: hostfleet-routes apply STATE_DIR", file=sys.stderr)
        return 2
    node = read_node_config(argv[1])
    if node is None:
        return 0
    for line in converge(node):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
