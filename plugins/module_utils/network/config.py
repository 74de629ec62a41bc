# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A node's part of the cluster network: the file every network piece on the host reads (docs/network.md).

``<state_dir>/network/node.json`` is written by the cluster_network task (its CIDR, its peers and how to reach them)
and read by the pod converge (pods join the node's pod network), the network sync (nftables, DNS) and the Service
files' consumers. One pod CIDR per node, allocated stably by the controller side and kept here, so a node keeps its
range. Stdlib only: it runs on the hosts, also inlined into the standalone network sync script.
"""

from __future__ import annotations

import json
import os

SCHEMA = 1
NETWORK_DIR = "network"
NODE_FILE = "node.json"
SERVICES_DIR = "services"
DEFAULT_CLUSTER_CIDR = "10.244.0.0/16"
DEFAULT_NODE_PREFIX = 24
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
DEFAULT_BRIDGE = "hf0"
VXLAN_DEVICE = "hfvx"
VXLAN_VNI = 4244
VXLAN_PORT = 4789
# Service traffic sent to another node for that node's ready endpoints carries fwmark SERVICE_MARK_BASE + the node's
# index; a policy rule per peer routes that mark through routing table SERVICE_TABLE_BASE + index (to the peer).
SERVICE_MARK_BASE = 0x1F0000
SERVICE_MARK_MASK = 0xFFFF0000
SERVICE_TABLE_BASE = 20000
# The fields of node.json (all required), and of each entry of its ``peers``.
NODE_FIELDS = ("schema", "node", "node_index", "address", "cluster_cidr", "cidr", "gateway", "bridge", "service_cidr",
               "cluster_domain", "dns_ip", "peers")
PEER_FIELDS = ("node", "node_index", "address", "cidr", "gateway", "via")
VIA = ("direct", "vxlan")


class NetworkConfigError(ValueError):
    """node.json is unreadable or not of this schema: the message says which file and field."""


def network_dir(state_dir):
    return os.path.join(state_dir, NETWORK_DIR)


def node_config_path(state_dir):
    return os.path.join(state_dir, NETWORK_DIR, NODE_FILE)


def services_dir(state_dir):
    return os.path.join(state_dir, NETWORK_DIR, SERVICES_DIR)


def service_file_name(namespace, name):
    # Both are DNS-1123 labels: '.' cannot occur in either, so the file name is unambiguous.
    return f"{namespace}.{name}.json"


def service_mark(node_index):
    return SERVICE_MARK_BASE + int(node_index)


def service_table(node_index):
    return SERVICE_TABLE_BASE + int(node_index)


def check_object(value, fields, where, error):
    """Raise ``error`` naming ``where`` unless ``value`` is a JSON object with every one of ``fields``."""
    if not isinstance(value, dict):
        raise error(f"{where} is not an object")
    missing = [field for field in fields if field not in value]
    if missing:
        raise error(f"{where}.{missing[0]} is missing")


def check_node_config(data, path="node.json"):
    """``data`` if it is a node.json of this schema, else NetworkConfigError naming the field."""
    if not isinstance(data, dict):
        raise NetworkConfigError(f"{path}: not a JSON object")
    if data.get("schema") != SCHEMA:
        raise NetworkConfigError(f"{path}: schema {data.get('schema')!r} is not {SCHEMA} (written by another version of hostfleet.workloads)")
    missing = [field for field in NODE_FIELDS if field not in data]
    if missing:
        raise NetworkConfigError(f"{path}: field {missing[0]} is missing")
    if not isinstance(data["peers"], list):
        raise NetworkConfigError(f"{path}: field peers is not a list")
    for i, peer in enumerate(data["peers"]):
        check_object(peer, PEER_FIELDS, f"{path}: peers[{i}]", NetworkConfigError)
        if peer["via"] not in VIA:
            raise NetworkConfigError(f"{path}: peers[{i}].via is {peer['via']!r}, not one of {', '.join(VIA)}")
    return data


def read_node_config(state_dir):
    """The node's network (node.json, checked), or None when the cluster network was never set up on this host."""
    path = node_config_path(state_dir)
    try:
        with open(path) as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise NetworkConfigError(f"{path}: {exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise NetworkConfigError(f"{path}: not JSON ({exc})") from None
    return check_node_config(data, path)


# Routes the cluster network sets carry this routing protocol number, so a run finds its own (and only those) to remove.
ROUTE_PROTOCOL = 147
# Priority of the per-peer Service policy rules (before the main table's 32766).
SERVICE_RULE_PRIORITY = 1000
# The oneshot unit that re-applies the routes and the network sync at boot, and the script it runs (under <state_dir>/bin).
NETWORK_UNIT = "hostfleet-network.service"
ROUTES_SCRIPT = "hostfleet-routes"
# VXLAN adds 50 bytes (outer IPv4 20, UDP 8, VXLAN 8, inner Ethernet 14) to every packet.
VXLAN_OVERHEAD = 50
# How the cluster_network task links two nodes: auto is direct when they share a link, VXLAN otherwise.
MODES = ("auto",) + VIA
# The cluster_network task's options (its action plugin and its module's documentation both follow these).
CLUSTER_NETWORK_ARGS = {
    "cluster_cidr": {"type": "str", "default": DEFAULT_CLUSTER_CIDR},
    "node_prefix": {"type": "int", "default": DEFAULT_NODE_PREFIX},
    "service_cidr": {"type": "str", "default": DEFAULT_SERVICE_CIDR},
    "cluster_domain": {"type": "str", "default": DEFAULT_CLUSTER_DOMAIN},
    "bridge": {"type": "str", "default": DEFAULT_BRIDGE},
    "mode": {"type": "str", "default": "auto", "choices": list(MODES)},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    "nodes": {"type": "str"},
    "state_dir": {"type": "path", "default": "/var/lib/hostfleet"},
}
