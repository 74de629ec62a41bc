# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Service's virtual IP (from the service CIDR) and node ports (30000-32767): allocated once, then kept.

There is no API server to hold the allocations: they live in the Service files on the hosts (every host holds every
Service), so the service task reads them back each run and passes them here as ``current`` (this Service's) and
``used`` (every other Service's). A new Service gets an address derived from a hash of its namespace and name
(the first free one from there), so that re-creating it tends to give it its old address. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import ipaddress

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError

NODE_PORT_RANGE = (30000, 32767)


def _start(key, size):
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % size


def usable_range(service_cidr):
    """(first, last) addresses a Service may get: not the network or broadcast address, and not the CIDR's first host
    (Kubernetes gives it to the ``kubernetes`` Service; kept free so a cluster's addresses look familiar)."""
    network = ipaddress.IPv4Network(service_cidr)
    if network.num_addresses < 8:
        raise SpecError("service_cidr", f"{service_cidr} is too small for Services (at least a /29)")
    return int(network.network_address) + 2, int(network.broadcast_address) - 1


def allocate_cluster_ip(service_cidr, key, requested, current, used, path="spec.clusterIP"):
    """The Service's cluster IP (a string), or None when it is headless.

    ``requested``: None (any), ``"None"`` (headless) or an address; ``current``: what the Service holds now (None for
    a new or headless one); ``used``: the addresses of the other Services. A Service keeps its address; an address asked
    for must be in the CIDR and free; a Service's address never changes (Kubernetes: the field is immutable).
    """
    if requested == "None":
        if current is not None:
            raise SpecError(path, f"is immutable: the Service has cluster IP {current}; delete it first to make it headless")
        return None
    first, last = usable_range(service_cidr)
    used = {int(ipaddress.IPv4Address(ip)) for ip in used if ip}
    if requested is not None:
        if current is not None and requested != current:
            raise SpecError(path, f"is immutable: the Service has {current}, asked for {requested}; delete it first")
        value = int(ipaddress.IPv4Address(requested))
        if not first <= value <= last:
            raise SpecError(path, f"{requested} is not a usable address of the service CIDR {service_cidr} "
                                  f"({ipaddress.IPv4Address(first)} to {ipaddress.IPv4Address(last)})")
        if value in used and requested != current:
            raise SpecError(path, f"{requested} is already allocated to another Service")
        return requested
    if current is not None:
        value = int(ipaddress.IPv4Address(current))
        if first <= value <= last and value not in used:
            return current
        # The service CIDR changed under it (or another Service took it while a host was down): a new address.
    size = last - first + 1
    start = _start(key, size)
    for step in range(size):
        candidate = first + (start + step) % size
        if candidate not in used:
            return str(ipaddress.IPv4Address(candidate))
    raise SpecError(path, f"no free address left in the service CIDR {service_cidr}")


def port_id(port):
    """What identifies a Service port across runs: its name, else its number and protocol."""
    return port["name"] or f"{port['port']}/{port['protocol']}"


def allocate_node_ports(key, ports, current_ports, used, path="spec.ports"):
    """The node port of each of ``ports`` (normal form, ``node_port`` asked for or None), as a list in their order.

    ``current_ports``: this Service's ports as its file holds them (their node ports are kept); ``used``: the node
    ports of the other Services. A node port asked for must be free; a port with none asked keeps its own, else gets
    the first free one from a hash of the Service and the port.
    """
    low, high = NODE_PORT_RANGE
    taken = set(used)
    kept = {port_id(p): p.get("node_port") for p in current_ports or [] if p.get("node_port")}
    result = [None] * len(ports)
    for i, port in enumerate(ports):
        if port["node_port"] is not None:
            if port["node_port"] in taken:
                raise SpecError(f"{path}[{i}].nodePort", f"{port['node_port']} is already allocated")
            taken.add(port["node_port"])
            result[i] = port["node_port"]
    for i, port in enumerate(ports):
        if result[i] is None and kept.get(port_id(port)) not in (None, *taken):
            result[i] = kept[port_id(port)]
            taken.add(result[i])
    size = high - low + 1
    for i, port in enumerate(ports):
        if result[i] is not None:
            continue
        start = _start(f"{key}/{port_id(port)}", size)
        for step in range(size):
            candidate = low + (start + step) % size
            if candidate not in taken:
                result[i] = candidate
                taken.add(candidate)
                break
        else:
            raise SpecError(f"{path}[{i}].nodePort", f"no free node port left in {low}-{high}")
    return result
