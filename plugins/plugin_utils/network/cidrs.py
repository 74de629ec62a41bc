# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster network's plan, controller side and pure: one pod CIDR per node, how each pair of nodes is linked,
and each node's node.json (``module_utils/network/config.py``).

Stability is the point: a node keeps the range its node.json records, also while it is unreachable (the other nodes'
``peers`` lists remember it), and a new node takes the lowest free index. Pods keep their addresses only as long as
their node keeps its range.
"""

from __future__ import annotations

import ipaddress
import re
import typing as t
from dataclasses import dataclass

from ansible_collections.hostfleet.workloads.plugins.module_utils.network import config

# Service traffic carries the node's index in the low 16 bits of its mark (config.service_mark): no more nodes than that.
MAX_NODES = 0x10000
# A node's CIDR holds its gateway (the bridge) and at least 5 pods, as the pod module's pod_network requires.
LARGEST_NODE_PREFIX = 29
SMALLEST_PREFIX = 8
MODES = config.MODES
_IFNAME = re.compile(r"[a-z][a-z0-9_-]{0,14}")
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


class CidrError(ValueError):
    """A bad option or an impossible allocation; ``field`` names the option."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Settings:
    cluster_cidr: ipaddress.IPv4Network
    node_prefix: int
    service_cidr: ipaddress.IPv4Network
    cluster_domain: str
    bridge: str
    mode: str

    @property
    def capacity(self) -> int:
        """How many node CIDRs the cluster CIDR holds (capped by the Service marks' 16 bits)."""
        return min(1 << (self.node_prefix - self.cluster_cidr.prefixlen), MAX_NODES)

    def node_cidr(self, index: int) -> str:
        size = 1 << (32 - self.node_prefix)
        return str(ipaddress.IPv4Network((int(self.cluster_cidr.network_address) + index * size, self.node_prefix)))


def _network(value: t.Any, field: str) -> ipaddress.IPv4Network:
    if not isinstance(value, str):
        raise CidrError(field, f"must be an IPv4 network like 10.244.0.0/16, got {value!r}")
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise CidrError(field, f"{value!r} is not an IPv4 network ({exc})") from None
    if "/" not in value:
        raise CidrError(field, f"{value!r} has no prefix length (write it as {value}/16, for example)")
    return network


def settings(cluster_cidr: t.Any = config.DEFAULT_CLUSTER_CIDR, node_prefix: t.Any = config.DEFAULT_NODE_PREFIX,
             service_cidr: t.Any = config.DEFAULT_SERVICE_CIDR, cluster_domain: t.Any = config.DEFAULT_CLUSTER_DOMAIN,
             bridge: t.Any = config.DEFAULT_BRIDGE, mode: t.Any = "auto") -> Settings:
    """The options checked, each error naming its option."""
    cluster = _network(cluster_cidr, "cluster_cidr")
    if not SMALLEST_PREFIX <= cluster.prefixlen <= LARGEST_NODE_PREFIX - 1:
        raise CidrError("cluster_cidr", f"{cluster} must be a /{SMALLEST_PREFIX} to /{LARGEST_NODE_PREFIX - 1} (it holds the nodes' CIDRs)")
    if isinstance(node_prefix, bool) or not isinstance(node_prefix, int):
        raise CidrError("node_prefix", f"must be an integer, got {node_prefix!r}")
    if not cluster.prefixlen < node_prefix <= LARGEST_NODE_PREFIX:
        raise CidrError("node_prefix", f"{node_prefix} must be longer than cluster_cidr's /{cluster.prefixlen} and at most {LARGEST_NODE_PREFIX} "
                        "(a node's CIDR holds its gateway and at least 5 pods)")
    service = _network(service_cidr, "service_cidr")
    if not SMALLEST_PREFIX <= service.prefixlen <= 30:
        raise CidrError("service_cidr", f"{service} must be a /{SMALLEST_PREFIX} to /30")
    if service.overlaps(cluster):
        raise CidrError("service_cidr", f"{service} overlaps cluster_cidr {cluster}: Service addresses and pod addresses must differ")
    if not isinstance(cluster_domain, str) or len(cluster_domain) > 200 or not all(_DNS_LABEL.fullmatch(label) for label in cluster_domain.split(".")):
        raise CidrError("cluster_domain", f"{cluster_domain!r} is not a DNS domain of lowercase labels (like cluster.local)")
    if not isinstance(bridge, str) or not _IFNAME.fullmatch(bridge) or bridge == config.VXLAN_DEVICE:
        raise CidrError("bridge", f"{bridge!r} is not an interface name (1-15 of [a-z0-9_-], a letter first, not {config.VXLAN_DEVICE})")
    if mode not in MODES:
        raise CidrError("mode", f"{mode!r} is not one of {', '.join(MODES)}")
    return Settings(cluster, node_prefix, service, cluster_domain, bridge, mode)


def gateway(cidr: str) -> str:
    """A node CIDR's first address: its bridge's address, its pods' gateway and its DNS server's address."""
    return str(ipaddress.IPv4Network(cidr).network_address + 1)


def _valid_claim(conf: Settings, index: t.Any, cidr: t.Any) -> bool:
    # A claim made under other settings (another cluster CIDR or prefix) is not a range of this cluster: dropped.
    return isinstance(index, int) and not isinstance(index, bool) and 0 <= index < conf.capacity and cidr == conf.node_cidr(index)


def allocate(conf: Settings, nodes: t.Sequence[str], own: t.Mapping[str, t.Mapping[str, t.Any]]) -> dict[str, int]:
    """{node: node_index} for ``nodes`` (the cluster), stable.

    ``own``: the node.json of each node that answered. Each file states its node's index and, in ``peers``, the
    others' (also of nodes that did not answer this run). The newest file (``written_at``) is believed first, a
    node's word on itself before its peers' memory of it, so a node that stayed in the cluster keeps its range even
    when a node that left came back with an old file claiming the same index. Statements made under other settings
    (another cluster CIDR or prefix) are no claim. Nodes left without a range get the lowest free index, in the
    order of ``nodes``; nodes not in ``nodes`` (they left the cluster) free theirs.
    """
    wanted = list(dict.fromkeys(nodes))
    if len(wanted) > conf.capacity:
        raise CidrError("cluster_cidr", f"{conf.cluster_cidr} holds {conf.capacity} node CIDRs of /{conf.node_prefix}, not enough for "
                        f"{len(wanted)} nodes (use a larger cluster_cidr or a longer node_prefix)")
    members = set(wanted)
    statements: list[tuple[float, int, t.Any, t.Any, t.Any]] = []  # (-age, rank, node, index, cidr)
    for owner in wanted:
        data = own.get(owner)
        if data is None:
            continue
        written = data.get("written_at")
        written = float(written) if isinstance(written, (int, float)) and not isinstance(written, bool) else 0.0
        statements.append((-written, 0, owner, data.get("node_index"), data.get("cidr")))
        for peer in data.get("peers") or ():
            if isinstance(peer, t.Mapping):
                statements.append((-written, 1, peer.get("node"), peer.get("node_index"), peer.get("cidr")))
    assigned: dict[str, int] = {}
    taken: set[int] = set()
    for _age, _rank, node, index, cidr in sorted(statements, key=lambda s: (s[0], s[1], str(s[2]))):
        if node in members and node not in assigned and _valid_claim(conf, index, cidr) and index not in taken:
            assigned[node] = int(index)
            taken.add(int(index))
    free = (index for index in range(conf.capacity) if index not in taken)
    for node in wanted:
        if node not in assigned:
            assigned[node] = next(free)
    return {node: assigned[node] for node in wanted}


def shares_link(networks: t.Iterable[str], address: str) -> bool:
    """Whether ``address`` is on one of ``networks`` (a host's connected subnets, like 10.77.2.11/24)."""
    target = ipaddress.IPv4Address(address)
    return any(target in ipaddress.IPv4Interface(network).network for network in networks)


def via(mode: str, networks_a: t.Iterable[str] | None, address_a: str, networks_b: t.Iterable[str] | None, address_b: str,
        remembered: str | None = None) -> str:
    """How nodes a and b reach each other's pods: ``direct`` (a route via the peer's address) when each is on a link
    of the other, else ``vxlan``. A node whose networks are unknown (unreachable) keeps what was ``remembered``."""
    if mode != "auto":
        return mode
    if networks_a is None or networks_b is None:
        if remembered in config.VIA:
            return remembered
        known = networks_a if networks_a is not None else networks_b
        other = address_b if networks_a is not None else address_a
        return "direct" if known is not None and shares_link(known, other) else "vxlan"
    return "direct" if shares_link(networks_a, address_b) and shares_link(networks_b, address_a) else "vxlan"


def check_addresses(conf: Settings, addresses: t.Mapping[str, str]) -> None:
    """A host address inside the pod or Service ranges would be shadowed by their routes: refused naming the option."""
    for node, address in sorted(addresses.items()):
        ip = ipaddress.IPv4Address(address)
        if ip in conf.cluster_cidr:
            raise CidrError("cluster_cidr", f"{conf.cluster_cidr} contains {node}'s address {address}: choose a range no host uses")
        if ip in conf.service_cidr:
            raise CidrError("service_cidr", f"{conf.service_cidr} contains {node}'s address {address}: choose a range no host uses")


def node_configs(conf: Settings, indexes: t.Mapping[str, int], addresses: t.Mapping[str, str],
                 vias: t.Mapping[tuple[str, str], str], written_at: float) -> dict[str, dict[str, t.Any]]:
    """Each node's node.json: its range and every other node of the cluster as a peer. ``vias`` is keyed by sorted
    pairs; ``written_at`` (the controller's clock) orders the files when they disagree (``allocate``)."""
    entries: dict[str, dict[str, t.Any]] = {}
    for node, index in indexes.items():
        cidr = conf.node_cidr(index)
        entries[node] = {"node": node, "node_index": index, "address": addresses[node], "cidr": cidr, "gateway": gateway(cidr)}
    configs = {}
    in_order = sorted(indexes, key=lambda name: indexes[name])
    for node, entry in entries.items():
        peers = [dict(entries[name], via=vias[(min(node, name), max(node, name))]) for name in in_order if name != node]
        configs[node] = {
            "schema": config.SCHEMA,
            **entry,
            "cluster_cidr": str(conf.cluster_cidr),
            "bridge": conf.bridge,
            "service_cidr": str(conf.service_cidr),
            "cluster_domain": conf.cluster_domain,
            "dns_ip": entry["gateway"],
            "peers": peers,
            "written_at": written_at,
        }
    return configs
