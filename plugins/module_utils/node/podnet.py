# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pod network of one node (opt-in, the pod module's ``pod_network``): configuration, names and addresses.

A pod on the pod network has its own network namespace ``hf-<pod>`` with one address from the node's CIDR, on a
bridge whose address (the CIDR's first) is the pods' gateway. The namespace, the veth pair and the bridge are made
by the pod's oneshot unit (units.render_netns_unit); nothing here runs on its own.

Addresses are allocated here, purely, from the pod records of the host: a pod's record (written atomically with the
rest of its converge) holds its address, so a pod keeps it across restarts and re-runs, and removing the pod (its
record) frees it. Concurrent converges on one host serialise on ``lock`` while they plan and apply.
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import os
import re

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import fileio
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError

DEFAULT_BRIDGE = "hf0"
CONFIG_FIELDS = ("cidr", "bridge")
# A Linux interface name: at most 15 bytes; kept to characters no tool quotes or reads as an option.
_IFNAME = re.compile(r"[a-z][a-z0-9_-]{0,14}")
NETNS_DIR = "/run/netns"
IP = "/usr/sbin/ip"


def validate_config(value, field="pod_network"):
    """The normal form of the pod module's ``pod_network``: cidr (an IPv4 network, /8 to /29), bridge."""
    if not isinstance(value, dict):
        raise SpecError(field, f"must be a mapping with cidr (and bridge), got {type(value).__name__}")
    unknown = sorted(set(value) - set(CONFIG_FIELDS))
    if unknown:
        raise SpecError(f"{field}.{unknown[0]}", f"unknown field (known: {', '.join(CONFIG_FIELDS)})")
    cidr = value.get("cidr")
    if not isinstance(cidr, str) or not cidr:
        raise SpecError(f"{field}.cidr", "is required: the node's pod CIDR, such as 10.244.3.0/24")
    try:
        network = ipaddress.IPv4Network(cidr, strict=True)
    except ValueError as exc:
        raise SpecError(f"{field}.cidr", f"{cidr!r} is not an IPv4 network in CIDR notation with no host bits set ({exc})") from None
    if not 8 <= network.prefixlen <= 29:
        raise SpecError(f"{field}.cidr", f"{cidr} must have a prefix length between /8 and /29 (a gateway and at least one pod address)")
    bridge = value.get("bridge")
    bridge = DEFAULT_BRIDGE if bridge is None else bridge
    if not isinstance(bridge, str) or not _IFNAME.fullmatch(bridge):
        raise SpecError(f"{field}.bridge", f"{bridge!r} is not an interface name (1-15 of [a-z0-9_-], a letter first)")
    return {"cidr": str(network), "bridge": bridge}


def gateway(cidr):
    """The bridge's address: the CIDR's first address."""
    return str(ipaddress.IPv4Network(cidr)[1])


def pod_addresses(cidr):
    """How many addresses pods can have: all but the network, the gateway and the broadcast address."""
    return ipaddress.IPv4Network(cidr).num_addresses - 3


def netns_name(pod):
    return f"hf-{pod}"


def netns_path(pod):
    return f"{NETNS_DIR}/{netns_name(pod)}"


def pod_mac(address):
    """The MAC of a pod's eth0, a function of its address (0a:58 + its 4 bytes, as the CNI bridge plugin's): an
    address given to a new pod soon after an old one's keeps its MAC, so the host's and the other pods' neighbour
    entries for it stay right (with a random MAC, frames went to the old pod's for up to a minute: lost)."""
    return "0a:58:" + ":".join(f"{int(octet):02x}" for octet in address.split("."))


def veth_name(pod):
    """The host end of the pod's veth pair: 15 bytes at most whatever the pod name (63), so a digest of it."""
    return "hfv" + hashlib.sha256(pod.encode()).hexdigest()[:12]


def held_addresses(records):
    """{pod: address} of every pod record on the host that has a pod-network address."""
    held = {}
    for name, record in records.items():
        network = record.get("network") if isinstance(record, dict) else None
        if isinstance(network, dict) and isinstance(network.get("ip"), str):
            held[name] = network["ip"]
    return held


def allocate(cidr, held, wanted, field="pod_network.cidr"):
    """{pod: address} for the ``wanted`` pods (names, in order), given ``held`` ({pod: address} on the host). Pure.

    A wanted pod keeps the address it holds when that is still a pod address of ``cidr`` and no other pod holds it;
    the others get the lowest free address. Pods not wanted keep what they hold (they belong to other owners, or stay
    as they are). Raises SpecError naming ``field`` when ``cidr`` has no free address left.
    """
    network = ipaddress.IPv4Network(cidr)
    first, last = int(network.network_address) + 2, int(network.broadcast_address) - 1
    wanted_set = set(wanted)
    taken = {}
    for name in sorted(held):
        if name not in wanted_set:
            taken.setdefault(held[name], name)
    result = {}
    for name in wanted:
        address = held.get(name)
        try:
            number = int(ipaddress.IPv4Address(address)) if address is not None else None
        except ValueError:
            number = None
        if number is not None and first <= number <= last and address not in taken:
            result[name] = address
            taken[address] = name
    candidate = first
    for name in wanted:
        if name in result:
            continue
        while candidate <= last and str(ipaddress.IPv4Address(candidate)) in taken:
            candidate += 1
        if candidate > last:
            full = f"all {pod_addresses(cidr)} pod addresses are taken on this host (a larger CIDR, or fewer pods)"
            raise SpecError(field, f"{cidr} has no free address for pod {name!r}: {full}")
        address = str(ipaddress.IPv4Address(candidate))
        result[name] = address
        taken[address] = name
    return result


def pod_network_record(config, address):
    """What a pod's record keeps of its network (and the units are rendered from)."""
    network = ipaddress.IPv4Network(config["cidr"])
    return {"ip": address, "cidr": config["cidr"], "prefix": network.prefixlen, "gateway": gateway(config["cidr"]), "bridge": config["bridge"]}


class lock:
    """An exclusive lock of the host's pod network, held while a converge plans and applies addresses."""

    def __init__(self, state_dir):
        self.path = os.path.join(state_dir, "network", "lock")
        self.fd = None

    def __enter__(self):
        fileio.ensure_dir(os.path.dirname(self.path), 0o755)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)
        self.fd = None
        return False
