# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Kubernetes ServiceSpec, checked before any host is touched: what the service task and ``apply`` honour.

``parse_service(name, namespace, spec)`` returns the normal form the Service file is made of (module_utils/network/
services.py) plus the fields listed as ignored; anything hosts cannot honour raises SpecError naming the field.
Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, dns_label, labels

TYPES = ("ClusterIP", "NodePort")
PROTOCOLS = ("TCP", "UDP")
NODE_PORT_RANGE = (30000, 32767)
HEADLESS = "None"
# Kubernetes' IANA_SVC_NAME: at most 15 lowercase alphanumerics and '-', a letter somewhere, no '--', '-' not at an end.
_PORT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")

# Fields accepted and listed as ignored: on IPv4-only hosts with no load balancer they change nothing.
IGNORED_FIELDS = ("ipFamilies", "ipFamilyPolicy", "allocateLoadBalancerNodePorts", "trafficDistribution")
# Fields accepted only at their default value (what every host does): anything else is refused, naming the field.
DEFAULT_ONLY = {"sessionAffinity": "None", "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster"}
# Fields hosts cannot honour at all.
REFUSED_FIELDS = {
    "externalIPs": "no host routes external IPs to Services",
    "externalName": "type ExternalName is not supported",
    "loadBalancerIP": "there is no load balancer",
    "loadBalancerSourceRanges": "there is no load balancer",
    "loadBalancerClass": "there is no load balancer",
    "healthCheckNodePort": "there is no load balancer",
    "sessionAffinityConfig": "sessionAffinity ClientIP is not supported",
}
KNOWN_FIELDS = {"type", "clusterIP", "clusterIPs", "ports", "selector", "publishNotReadyAddresses"}
KNOWN_FIELDS |= set(IGNORED_FIELDS) | set(DEFAULT_ONLY) | set(REFUSED_FIELDS)
PORT_FIELDS = {"name", "protocol", "port", "targetPort", "nodePort", "appProtocol"}


def service_name(value, path="metadata.name"):
    """A Service's name is a DNS-1035 label (it becomes a DNS name and environment variables): it starts with a letter."""
    if not isinstance(value, str) or not value or len(value) > 63 or not _DNS1035.fullmatch(value):
        raise SpecError(path, f"{value!r} is not a DNS-1035 label (lowercase letters, digits and '-', starting with a letter, ending alphanumeric, "
                              "at most 63 characters)")
    return value


def _port_number(value, path, low=1, high=65535):
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(path, f"must be an integer, got {value!r}")
    if not low <= value <= high:
        raise SpecError(path, f"must be between {low} and {high}, inclusive, got {value}")
    return value


def port_name(value, path):
    if not isinstance(value, str) or len(value) > 15 or not _PORT_NAME.fullmatch(value) or "--" in value or not re.search("[a-z]", value):
        raise SpecError(path, f"{value!r} is not a valid port name (at most 15 lowercase letters, digits and '-', with at least one letter, no '--')")
    return value


def _target_port(value, path, default):
    if value is None:
        return default
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, str):
        return port_name(value, path)
    return _port_number(value, path)


def _cluster_ip(spec, path):
    """The clusterIP asked for: None (allocate), HEADLESS, or an IPv4 address (checked against the CIDR later)."""
    value, field = spec.get("clusterIP"), f"{path}.clusterIP"
    ips = spec.get("clusterIPs")
    if ips is not None:
        if not isinstance(ips, list) or len(ips) > 1 or not all(isinstance(ip, str) for ip in ips):
            raise SpecError(f"{path}.clusterIPs", "must be a list of at most one address (hosts are IPv4 only)")
        if ips and ips[0] and value not in (None, "", ips[0]):
            raise SpecError(f"{path}.clusterIPs", f"[0] must equal clusterIP ({value!r}), got {ips[0]!r}")
        if ips and ips[0] and value in (None, ""):
            value, field = ips[0], f"{path}.clusterIPs[0]"
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise SpecError(field, f"must be a string, got {value!r}")
    if value == HEADLESS:
        return value
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise SpecError(field, f"{value!r} is neither an IPv4 address nor None (headless)") from None


def parse_service(name, namespace, spec, path="spec"):
    """(normal form, ignored field paths) of a Service; SpecError naming the field for anything hosts cannot honour.

    The normal form: {"namespace", "name", "type", "cluster_ip" (None: allocate, "None": headless, else the address
    asked for), "ports": [{"name", "protocol", "port", "target_port", "node_port" (asked for or None)}],
    "selector" (None when empty: no endpoints), "publish_not_ready_addresses"}.
    """
    service_name(name)
    dns_label(namespace, "metadata.namespace")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise SpecError(path, f"must be a mapping, got {type(spec).__name__}")
    for key in spec:
        if key not in KNOWN_FIELDS:
            raise SpecError(f"{path}.{key}", f"unknown field (allowed here: {', '.join(sorted(KNOWN_FIELDS))})")
    service_type = spec.get("type") if spec.get("type") is not None else "ClusterIP"
    if service_type not in TYPES:
        why = {"LoadBalancer": "there is no load balancer (use NodePort: every host forwards its node ports)",
               "ExternalName": "no cluster DNS CNAMEs to outside names yet"}.get(service_type, f"must be one of {', '.join(TYPES)}")
        raise SpecError(f"{path}.type", f"{service_type!r} is not supported: {why}")
    for key, reason in REFUSED_FIELDS.items():
        if spec.get(key) not in (None, "", [], {}):
            raise SpecError(f"{path}.{key}", f"is not supported: {reason}")
    for key, default in DEFAULT_ONLY.items():
        if spec.get(key) not in (None, default):
            raise SpecError(f"{path}.{key}", f"only {default!r} is supported, got {spec[key]!r}")
    ignored = [f"{path}.{key}" for key in IGNORED_FIELDS if spec.get(key) is not None]
    cluster_ip = _cluster_ip(spec, path)
    if cluster_ip == HEADLESS and service_type == "NodePort":
        raise SpecError(f"{path}.clusterIP", "may not be None (headless) for type NodePort")
    raw_ports = spec.get("ports") if spec.get("ports") is not None else []
    if not isinstance(raw_ports, list):
        raise SpecError(f"{path}.ports", f"must be a list, got {type(raw_ports).__name__}")
    if not raw_ports and cluster_ip != HEADLESS:
        raise SpecError(f"{path}.ports", "is required (at least one port) unless the Service is headless (clusterIP: None)")
    ports, names, keys, node_ports = [], set(), set(), set()
    for i, item in enumerate(raw_ports):
        ppath = f"{path}.ports[{i}]"
        if not isinstance(item, dict):
            raise SpecError(ppath, f"must be a mapping, got {type(item).__name__}")
        for key in item:
            if key not in PORT_FIELDS:
                raise SpecError(f"{ppath}.{key}", f"unknown field (allowed here: {', '.join(sorted(PORT_FIELDS))})")
        port = _port_number(item.get("port"), f"{ppath}.port") if item.get("port") is not None else None
        if port is None:
            raise SpecError(f"{ppath}.port", "is required")
        protocol = item.get("protocol") if item.get("protocol") is not None else "TCP"
        if protocol not in PROTOCOLS:
            raise SpecError(f"{ppath}.protocol", f"{protocol!r} is not supported: must be one of {', '.join(PROTOCOLS)}")
        port_label = port_name(item["name"], f"{ppath}.name") if item.get("name") not in (None, "") else None
        if port_label is None and len(raw_ports) > 1:
            raise SpecError(f"{ppath}.name", "is required when the Service has more than one port")
        if port_label is not None:
            if port_label in names:
                raise SpecError(f"{ppath}.name", f"duplicate port name {port_label!r}")
            names.add(port_label)
        if (port, protocol) in keys:
            raise SpecError(f"{ppath}", f"duplicate port {port}/{protocol}")
        keys.add((port, protocol))
        node_port = item.get("nodePort")
        if node_port in (None, 0):
            node_port = None
        else:
            if service_type != "NodePort":
                raise SpecError(f"{ppath}.nodePort", f"may only be set for type NodePort, not {service_type}")
            node_port = _port_number(node_port, f"{ppath}.nodePort", *NODE_PORT_RANGE)
            if (node_port, protocol) in node_ports:
                raise SpecError(f"{ppath}.nodePort", f"duplicate node port {node_port}/{protocol}")
            node_ports.add((node_port, protocol))
        if item.get("appProtocol") is not None:
            ignored.append(f"{ppath}.appProtocol")
        ports.append({"name": port_label, "protocol": protocol, "port": port, "target_port": _target_port(item.get("targetPort"), f"{ppath}.targetPort", port),
                      "node_port": node_port})
    selector = labels(spec.get("selector"), f"{path}.selector") or None
    publish = spec.get("publishNotReadyAddresses", False)
    if publish is None:
        publish = False
    if not isinstance(publish, bool):
        raise SpecError(f"{path}.publishNotReadyAddresses", f"must be a boolean, got {publish!r}")
    parsed = {"namespace": namespace, "name": name, "type": service_type, "cluster_ip": cluster_ip, "ports": ports, "selector": selector,
              "publish_not_ready_addresses": publish}
    return parsed, ignored
