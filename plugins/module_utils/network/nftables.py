# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Service data path of one host as one nftables table, ``ip hostfleet`` (docs/network.md). Pure: no I/O.

render() turns node.json, the Service files and the local pods (with their live readiness) into one ``nft -f``
transaction that replaces the whole table atomically. Two levels:

- Level 1 (from the Service files, the same on every host): a new connection to VIP:port (or to a local
  address:nodePort) picks a node at random, weighted by that node's count of ready endpoints. Another node: the
  connection gets mark config.service_mark(i) (meta mark for routing, ct mark so that its later packets get it
  again) and the policy routing of the cluster network carries it, still to VIP:port, to node i.
- Level 2 (from this host's pods and their live readiness, re-rendered by the pod hook): VIP:port is DNATed to one
  of the local ready pods. With none, a connection gets one more hop (tagged with a DSCP code point so that it is
  never sent on again) to another node with ready endpoints, else it is refused (TCP reset, ICMP port unreachable).

Every value that reaches a rule is checked first: a bad Service is left out whole and named in the problems
returned; a bad node.json raises NftablesInputError.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.hostfleet.workloads.plugins.module_utils.network import config, services

TABLE = "hostfleet"
# DSCP code point of a connection already sent on once by a node without ready endpoints (unassigned: between
# AF31 and AF32). The node that serves it clears it again.
HOP_DSCP = 0x1B
PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_IFNAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$")
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$")
MAX_NODE_INDEX = 0xFFFF


class NftablesInputError(ValueError):
    """A value that would reach the rules is not what it must be: the message names the field."""


def _ipv4(value, field):
    if not isinstance(value, str):
        raise NftablesInputError(f"{field}: {value!r} is not an IPv4 address")
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        raise NftablesInputError(f"{field}: {value!r} is not an IPv4 address") from None
    return str(address)


def _net4(value, field):
    if not isinstance(value, str):
        raise NftablesInputError(f"{field}: {value!r} is not an IPv4 network")
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        raise NftablesInputError(f"{field}: {value!r} is not an IPv4 network (address/prefix, host bits zero)") from None


def _port(value, field):
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise NftablesInputError(f"{field}: {value!r} is not a port number (1-65535)")
    return value


def _index(value, field):
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_NODE_INDEX:
        raise NftablesInputError(f"{field}: {value!r} is not a node index (0-{MAX_NODE_INDEX})")
    return value


def _label(value, field):
    if not isinstance(value, str) or not _LABEL.match(value):
        raise NftablesInputError(f"{field}: {value!r} is not a DNS-1123 label")
    return value


def _protocol(value, field):
    if value not in PROTOCOLS:
        raise NftablesInputError(f"{field}: {value!r} is not one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[value]


def check_node(node_config):
    """What the rules use of node.json, checked: {index, address, cidr, gateway, cluster_cidr, service_cidr, bridge, peers:
    {index: {address, cidr}}}."""
    if not isinstance(node_config, dict):
        raise NftablesInputError("node.json: not an object")
    for field in ("node_index", "address", "cidr", "gateway", "cluster_cidr", "service_cidr", "bridge", "peers"):
        if field not in node_config:
            raise NftablesInputError(f"node.json: {field} is missing")
    bridge = node_config["bridge"]
    if not isinstance(bridge, str) or not _IFNAME.match(bridge):
        raise NftablesInputError(f"node.json: bridge: {bridge!r} is not an interface name")
    node = {
        "index": _index(node_config["node_index"], "node.json: node_index"),
        "address": _ipv4(node_config["address"], "node.json: address"),
        "cidr": _net4(node_config["cidr"], "node.json: cidr"),
        "gateway": _ipv4(node_config["gateway"], "node.json: gateway"),
        "cluster_cidr": _net4(node_config["cluster_cidr"], "node.json: cluster_cidr"),
        "service_cidr": _net4(node_config["service_cidr"], "node.json: service_cidr"),
        "bridge": bridge,
        "peers": {},
    }
    if ipaddress.IPv4Address(node["gateway"]) not in node["cidr"]:
        raise NftablesInputError(f"node.json: gateway: {node['gateway']} is not in the node's cidr {node['cidr']}")
    if not isinstance(node_config["peers"], list):
        raise NftablesInputError("node.json: peers is not a list")
    for i, peer in enumerate(node_config["peers"]):
        if not isinstance(peer, dict):
            raise NftablesInputError(f"node.json: peers[{i}] is not an object")
        index = _index(peer.get("node_index"), f"node.json: peers[{i}].node_index")
        if index == node["index"] or index in node["peers"]:
            raise NftablesInputError(f"node.json: peers[{i}].node_index: {index} is already another node's")
        node["peers"][index] = {"address": _ipv4(peer.get("address"), f"node.json: peers[{i}].address"),
                                "cidr": _net4(peer.get("cidr"), f"node.json: peers[{i}].cidr")}
    return node


def _endpoint_weights(service, port, key, node, where):
    """{node index: ready endpoints serving this port} from the Service file (level 1); endpoints on nodes this
    host does not know are left out (no route to them)."""
    weights = {}
    for i, endpoint in enumerate(service["endpoints"]):
        if not isinstance(endpoint, dict):
            raise NftablesInputError(f"{where}: endpoints[{i}] is not an object")
        if not (endpoint.get("ready") is True or service["publish_not_ready_addresses"] is True):
            continue
        if key not in (endpoint.get("ports") or {}):
            continue
        index = endpoint.get("node_index")
        if index is None:
            continue
        index = _index(index, f"{where}: endpoints[{i}].node_index")
        _ipv4(endpoint.get("ip"), f"{where}: endpoints[{i}].ip")
        _port(endpoint["ports"][key], f"{where}: endpoints[{i}].ports[{key}]")
        if index == node["index"] or index in node["peers"]:
            weights[index] = weights.get(index, 0) + 1
    return weights


def _local_endpoints(service, port, pods, where):
    """[(pod, ip, target port)] of this host's pods that serve the Service port now (live readiness), by pod name."""
    result = []
    for pod in pods:
        if (pod.get("namespace") or "default") != service["namespace"] or not services.selects(service["selector"], pod.get("labels")):
            continue
        if not (pod.get("ready") is True or (service["publish_not_ready_addresses"] is True and pod.get("running") is True)):
            continue
        target = services.resolve_target_port(pod.get("spec") or {}, port["target_port"], port["protocol"])
        if target is None:
            continue
        name = pod.get("pod")
        result.append((name, _ipv4(pod.get("ip"), f"{where}: local pod {name}.ip"), _port(target, f"{where}: local pod {name} target port")))
    return sorted(result)


def service_entries(service, node, pods):
    """The rules' view of one Service file: [{key, vip, proto, port, node_port, weights, local, comment}] per port
    with a cluster IP (a headless Service has none); NftablesInputError naming the field when a value is bad."""
    where = f"Service {service.get('namespace')}/{service.get('name')}"
    namespace = _label(service.get("namespace"), f"{where}: namespace")
    name = _label(service.get("name"), f"{where}: name")
    where = f"Service {namespace}/{name}"
    if service.get("cluster_ip") is None:
        return []
    vip = _ipv4(service["cluster_ip"], f"{where}: cluster_ip")
    if ipaddress.IPv4Address(vip) not in node["service_cidr"]:
        raise NftablesInputError(f"{where}: cluster_ip: {vip} is not in the service CIDR {node['service_cidr']}")
    if not isinstance(service.get("ports"), list) or not isinstance(service.get("endpoints"), list):
        raise NftablesInputError(f"{where}: ports or endpoints is not a list")
    entries = []
    for i, port in enumerate(service["ports"]):
        field = f"{where}: ports[{i}]"
        if not isinstance(port, dict):
            raise NftablesInputError(f"{field} is not an object")
        proto = _protocol(port.get("protocol"), f"{field}.protocol")
        number = _port(port.get("port"), f"{field}.port")
        if port.get("name") is not None and (not isinstance(port["name"], str) or not _PORT_NAME.match(port["name"])):
            raise NftablesInputError(f"{field}.name: {port['name']!r} is not a port name")
        target = port.get("target_port")
        if not (isinstance(target, str) and _PORT_NAME.match(target)):
            _port(target, f"{field}.target_port")
        node_port = port.get("node_port")
        if node_port is not None:
            node_port = _port(node_port, f"{field}.node_port")
        key = services.port_key(port)
        entries.append(
            {
                "vip": vip,
                "proto": proto,
                "port": number,
                "node_port": node_port if service.get("type") == "NodePort" else None,
                "weights": _endpoint_weights(service, port, key, node, where),
                "local": _local_endpoints(service, port, pods, where),
                "comment": f"{namespace}/{name} {key}/{port['protocol']}",
            }
        )
    return entries


def host_port_entries(node, pods):
    """[(proto, hostPort, pod ip, containerPort, pod name)] of this host's pods on the pod network, and problems."""
    entries, problems, seen = [], [], set()
    for pod in sorted(pods, key=lambda p: str(p.get("pod"))):
        if pod.get("host_network", False):
            continue  # the pod binds the host's port itself
        name = pod.get("pod")
        try:
            ip = _ipv4(pod.get("ip"), f"pod {name}: ip")
            for container in (pod.get("spec") or {}).get("containers") or []:
                for j, declared in enumerate(container.get("ports") or []):
                    if not declared.get("hostPort"):
                        continue
                    field = f"pod {name}: containers[{container.get('name')}].ports[{j}]"
                    proto = _protocol(declared.get("protocol") or "TCP", f"{field}.protocol")
                    host_port = _port(declared["hostPort"], f"{field}.hostPort")
                    container_port = _port(declared.get("containerPort"), f"{field}.containerPort")
                    if (proto, host_port) in seen:
                        problems.append(f"{field}.hostPort: {host_port}/{proto} is already forwarded to another pod: left out")
                        continue
                    seen.add((proto, host_port))
                    entries.append((proto, host_port, ip, container_port, name))
        except NftablesInputError as exc:
            problems.append(f"hostPorts of pod {name} left out: {exc}")
    return entries, problems


def _elements(items):
    return "{ " + ", ".join(items) + " }" if items else None


def _map(name, key_type, items):
    elements = _elements(items)
    body = f"type {key_type} : verdict;" + (f" elements = {elements}" if elements else "")
    return f"\tmap {name} {{ {body} }}\n"


def _chain(name, rules, base=None):
    head = f"\t\t{base}\n" if base else ""
    return f"\tchain {name} {{\n{head}" + "".join(f"\t\t{rule}\n" for rule in rules) + "\t}\n"


def _numgen(weights):
    """``numgen random mod N vmap {...}`` sending to each target in proportion to its weight: [(target, weight)]."""
    total = sum(weight for _target, weight in weights)
    elements, n = [], 0
    for target, weight in weights:
        for _copy in range(weight):
            elements.append(f"{n} : goto {target}")
            n += 1
    return f"numgen random mod {total} vmap {{ {', '.join(elements)} }}"


def render(node_config, service_list, pods):
    """(the nft -f text that replaces table ip hostfleet, [problems]). ``pods``: this host's pods as the sync lists
    them ({pod, namespace, ip, ready, running, labels, spec, host_network}). Deterministic: the same input gives the
    same text, so that the sync can tell a change by comparing."""
    node = check_node(node_config)
    mask, base = config.SERVICE_MARK_MASK, config.SERVICE_MARK_BASE
    marked = f"meta mark & {mask:#x} == {base:#x}"
    problems = []
    entries, vips, node_ports = [], set(), set()
    for service in sorted(service_list, key=lambda s: (str(s.get("namespace")), str(s.get("name")))):
        try:
            found = service_entries(service, node, pods)
        except (NftablesInputError, KeyError, TypeError, AttributeError) as exc:
            problems.append(f"Service {service.get('namespace')}/{service.get('name')} left out of nftables: {exc}")
            continue
        clash = [e for e in found if (e["vip"], e["proto"], e["port"]) in vips or (e["node_port"] and (e["proto"], e["node_port"]) in node_ports)]
        if clash:
            taken = clash[0]["comment"]
            problems.append(f"Service {service.get('namespace')}/{service.get('name')} left out of nftables: {taken} uses a VIP:port or nodePort already taken")
            continue
        for entry in found:
            vips.add((entry["vip"], entry["proto"], entry["port"]))
            if entry["node_port"]:
                node_ports.add((entry["proto"], entry["node_port"]))
            entries.append(entry)
    host_ports, port_problems = host_port_entries(node, pods)
    problems += port_problems
    kept_host_ports = []
    for entry in host_ports:
        if (entry[0], entry[1]) in node_ports:
            problems.append(f"pod {entry[4]}: hostPort {entry[1]}/{entry[0]} is a Service's nodePort: left out")
        else:
            kept_host_ports.append(entry)

    l1, here, nodeport_l1, nat_vip, nat_port = [], [], [], [], []
    chains, used_nodes, comments = [], set(), []
    for k, entry in enumerate(entries):
        comments.append(f"# svc{k}: {entry['comment']} -> {entry['vip']}:{entry['port']}" + (f", nodePort {entry['node_port']}" if entry["node_port"] else ""))
        key = f"{entry['vip']} . {entry['proto']} . {entry['port']}"
        l1.append(f"{key} : goto svc{k}")
        here.append(f"{key} : goto here{k}")
        if entry["node_port"]:
            nodeport_l1.append(f"{entry['proto']} . {entry['node_port']} : goto svc{k}")
            nat_port.append(f"{entry['proto']} . {entry['node_port']} : goto np{k}")
        # Level 1: this node (its own level 2) or another, by ready endpoints in the Service file.
        weights = [(f"here{k}" if index == node["index"] else f"node{index}", weight) for index, weight in sorted(entry["weights"].items())]
        used_nodes.update(index for index in entry["weights"] if index != node["index"])
        # No endpoint known anywhere: this node decides (a pod that just turned ready here is served, else refused).
        chains.append(_chain(f"svc{k}", [_numgen(weights) if weights else f"goto here{k}"]))
        # Level 2, the filter half: serve here, send on once, or refuse.
        if entry["local"]:
            chains.append(_chain(f"here{k}", [f"ip dscp {HOP_DSCP:#x} ip dscp set cs0"]))
        else:
            others = [(index, weight) for index, weight in sorted(entry["weights"].items()) if index != node["index"]]
            rules = [f"ip dscp {HOP_DSCP:#x} goto refuse"]
            if others:
                rules.append(f"ip dscp set {HOP_DSCP:#x}")
                # Never back to the node the connection came from (its source is in that node's CIDR, or is its
                # address after a masquerade): its conntrack would take the packet for its own and send it here again.
                for origin, _weight in others:
                    rest = [(f"node{index}", weight) for index, weight in others if index != origin]
                    peer = node["peers"][origin]
                    rules.append(f"ip saddr {{ {peer['cidr']}, {peer['address']} }} " + (_numgen(rest) if rest else "goto refuse"))
                rules.append(_numgen([(f"node{index}", weight) for index, weight in others]))
            else:
                rules.append("goto refuse")
            chains.append(_chain(f"here{k}", rules))
        # Level 2, the NAT half: DNAT to a local ready pod.
        if entry["local"]:
            nat_vip.append(f"{key} : goto lb{k}")
            chains.append(_chain(f"lb{k}", [_numgen([(f"ep{k}_{j}", 1) for j in range(len(entry["local"]))])]))
            for j, (_pod, ip, target) in enumerate(entry["local"]):
                chains.append(_chain(f"ep{k}_{j}", [f"meta l4proto {entry['proto']} dnat to {ip}:{target}"]))
        if entry["node_port"]:
            rules = [f"{marked} meta l4proto {entry['proto']} dnat to {entry['vip']}:{entry['port']}"]
            if entry["local"]:
                rules.append(f"goto lb{k}")
            chains.append(_chain(f"np{k}", rules))
    for j, (proto, host_port, ip, container_port, pod) in enumerate(kept_host_ports):
        comments.append(f"# hp{j}: pod {pod} hostPort {host_port}/{proto} -> {ip}:{container_port}")
        nat_port.append(f"{proto} . {host_port} : goto hp{j}")
        chains.append(_chain(f"hp{j}", [f"meta l4proto {proto} dnat to {ip}:{container_port}"]))
    for index in sorted(used_nodes):
        mark = config.service_mark(index)
        chains.append(_chain(f"node{index}", [f"meta mark set {mark:#x} ct mark set meta mark"]))
    chains.append(_chain("refuse", ["meta l4proto tcp reject with tcp reset", "reject"]))

    bridge = node["bridge"]
    local_dst = "fib daddr type local ip daddr != 127.0.0.0/8"
    vip_key = "ip daddr . meta l4proto . th dport"
    restore = f"ct direction original ct mark & {mask:#x} == {base:#x} meta mark set ct mark return"
    text = [
        "# hostfleet.workloads: the Service data path of this host (module_utils/network/nftables.py); replaced whole by each sync.\n",
        *(line + "\n" for line in comments),
        f"table ip {TABLE}\n",
        f"delete table ip {TABLE}\n",
        f"table ip {TABLE} {{\n",
        _map("l1", "ipv4_addr . inet_proto . inet_service", l1),
        _map("here", "ipv4_addr . inet_proto . inet_service", here),
        _map("nodeport_l1", "inet_proto . inet_service", nodeport_l1),
        _map("nat_vip", "ipv4_addr . inet_proto . inet_service", nat_vip),
        _map("nat_port", "inet_proto . inet_service", nat_port),
        # Level 1 before routing; later packets of a connection get its mark again (original direction only: the
        # replies go to the client, wherever it is).
        _chain("mark_prerouting", [restore, "ct state new jump decide_in"], "type filter hook prerouting priority mangle; policy accept;"),
        _chain(
            "decide_in",
            [
                'iifname "lo" return',
                f'iifname "{bridge}" {vip_key} vmap @l1',
                # From another node (level 1 chose this one) or from outside: served here or sent on once.
                f'iifname != "{bridge}" {vip_key} vmap @here',
                f"{local_dst} meta l4proto . th dport vmap @nodeport_l1",
            ],
        ),
        # Locally generated: a route chain, so that the mark re-routes the packet.
        _chain("mark_output", [restore, "ct state new jump decide_out"], "type route hook output priority mangle; policy accept;"),
        _chain("decide_out", [f"{vip_key} vmap @l1", f"{local_dst} meta l4proto . th dport vmap @nodeport_l1"]),
        _chain("nat_prerouting", [f"{local_dst} meta l4proto . th dport vmap @nat_port", f"{marked} return", f"{vip_key} vmap @nat_vip"],
               "type nat hook prerouting priority dstnat; policy accept;"),
        _chain("nat_output", [f"{local_dst} meta l4proto . th dport vmap @nat_port", f"{marked} return", f"{vip_key} vmap @nat_vip"],
               "type nat hook output priority -100; policy accept;"),
        _chain(
            "nat_postrouting",
            [
                # Sent on once by this node (level 2 without ready pods): the reply must come back through here, or
                # this node's conntrack, which saw only the client's side, would drop the client's next packets.
                f"ct mark & {mask:#x} == {base:#x} ip dscp {HOP_DSCP:#x} snat to {node['gateway']}",
                # Carried to another node from a host process or from outside the cluster: the reply must come back here.
                f"ct mark & {mask:#x} == {base:#x} ip saddr != {node['cluster_cidr']} masquerade",
                # Hairpin: a local pod reached a pod on the same bridge through a Service or a hostPort.
                f'ct status dnat ip saddr {node["cidr"]} oifname "{bridge}" masquerade',
                # Pod traffic leaving the cluster.
                f'ip saddr {node["cidr"]} ip daddr != {{ {node["cluster_cidr"]}, {node["service_cidr"]} }} oifname != "{bridge}" masquerade',
            ],
            "type nat hook postrouting priority srcnat; policy accept;",
        ),
        *chains,
        "}\n",
    ]
    return "".join(text), problems
