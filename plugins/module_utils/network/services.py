# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Services a host knows: ``<state_dir>/network/services/<namespace>.<name>.json`` (docs/network.md).

The service task writes every Service of the cluster to EVERY host (with the endpoints it observed cluster-wide at
its last run); the network sync (nftables, DNS) reads them here. One file per Service, schema 1::

    {"schema": 1, "namespace": "default", "name": "backend", "type": "ClusterIP" | "NodePort",
     "cluster_ip": "10.96.0.12" | null (headless),
     "ports": [{"name": "http" | null, "protocol": "TCP" | "UDP", "port": 8080, "target_port": 8080 | "http",
                "node_port": 30080 | null}],
     "selector": {"app": "backend"} | null (selector-less: no endpoints),
     "publish_not_ready_addresses": false,
     "endpoints": [{"pod": "backend-x1", "node": "node2", "node_index": 2 | null, "ip": "10.244.2.5", "ready": true,
                    "hostname": "store-0" | null, "subdomain": "store" | null,
                    "ports": {"<port_key(port)>": 8080}}]}

An endpoint's ``ports`` has one entry per Service port the pod serves (a named targetPort the pod does not declare
leaves it out, as Kubernetes does). Stdlib only and Python 3.8+: it runs on the hosts, also inlined into the
standalone network sync script (so no import of this collection here, and nothing beyond ``from __future__`` below).
"""

from __future__ import annotations

import json
import os

from ansible_collections.hostfleet.workloads.plugins.module_utils.network import config

SCHEMA = 1
SERVICE_SUFFIX = ".json"
TYPES = ("ClusterIP", "NodePort")
PROTOCOLS = ("TCP", "UDP")
SERVICE_FIELDS = ("schema", "namespace", "name", "type", "cluster_ip", "ports", "selector", "publish_not_ready_addresses", "endpoints")
PORT_FIELDS = ("name", "protocol", "port", "target_port", "node_port")
ENDPOINT_FIELDS = ("pod", "node", "node_index", "ip", "ready", "hostname", "subdomain", "ports")


class ServiceFileError(ValueError):
    """A Service file is unreadable or not of this schema: the message names the file and the field."""


def services_dir(state_dir):
    return config.services_dir(state_dir)


def service_path(state_dir, namespace, name):
    # Both are DNS-1123 labels: '.' occurs in neither, so the file name is unambiguous.
    return os.path.join(services_dir(state_dir), f"{namespace}.{name}{SERVICE_SUFFIX}")


def port_key(port):
    """The key of a Service port in an endpoint's ``ports``: its name, or its number as text when unnamed."""
    return port["name"] if port.get("name") else str(port["port"])


def _is_port(value):
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def check_service(data, path="service"):
    """``data`` if it is a Service file of this schema, else ServiceFileError naming the file and the field."""
    if not isinstance(data, dict):
        raise ServiceFileError(f"{path}: not a JSON object")
    if data.get("schema") != SCHEMA:
        raise ServiceFileError(f"{path}: schema {data.get('schema')!r} is not {SCHEMA} (written by another version of hostfleet.workloads)")
    missing = [field for field in SERVICE_FIELDS if field not in data]
    if missing:
        raise ServiceFileError(f"{path}: field {missing[0]} is missing")
    for field in ("namespace", "name"):
        if not isinstance(data[field], str) or not data[field]:
            raise ServiceFileError(f"{path}: field {field} is not a non-empty string")
    if data["type"] not in TYPES:
        raise ServiceFileError(f"{path}: field type is {data['type']!r}, not one of {', '.join(TYPES)}")
    if data["cluster_ip"] is not None and not isinstance(data["cluster_ip"], str):
        raise ServiceFileError(f"{path}: field cluster_ip is neither an address nor null")
    if not isinstance(data["ports"], list):
        raise ServiceFileError(f"{path}: field ports is not a list")
    for i, port in enumerate(data["ports"]):
        where = f"{path}: ports[{i}]"
        config.check_object(port, PORT_FIELDS, where, ServiceFileError)
        if port["protocol"] not in PROTOCOLS:
            raise ServiceFileError(f"{where}.protocol is {port['protocol']!r}, not one of {', '.join(PROTOCOLS)}")
        if not _is_port(port["port"]):
            raise ServiceFileError(f"{where}.port is {port['port']!r}, not a port number")
        if not (_is_port(port["target_port"]) or (isinstance(port["target_port"], str) and port["target_port"])):
            raise ServiceFileError(f"{where}.target_port is {port['target_port']!r}, neither a port number nor a port name")
        if port["node_port"] is not None and not _is_port(port["node_port"]):
            raise ServiceFileError(f"{where}.node_port is {port['node_port']!r}, neither a port number nor null")
    selector = data["selector"]
    if selector is not None and not (isinstance(selector, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in selector.items())):
        raise ServiceFileError(f"{path}: field selector is neither a map of strings nor null")
    if not isinstance(data["publish_not_ready_addresses"], bool):
        raise ServiceFileError(f"{path}: field publish_not_ready_addresses is not a boolean")
    if not isinstance(data["endpoints"], list):
        raise ServiceFileError(f"{path}: field endpoints is not a list")
    for i, endpoint in enumerate(data["endpoints"]):
        where = f"{path}: endpoints[{i}]"
        config.check_object(endpoint, ENDPOINT_FIELDS, where, ServiceFileError)
        if not isinstance(endpoint["ip"], str) or not endpoint["ip"]:
            raise ServiceFileError(f"{where}.ip is not an address")
        if not isinstance(endpoint["ready"], bool):
            raise ServiceFileError(f"{where}.ready is not a boolean")
        if not isinstance(endpoint["ports"], dict) or not all(_is_port(v) for v in endpoint["ports"].values()):
            raise ServiceFileError(f"{where}.ports is not a map of port numbers")
    return data


def read_service(path):
    """The Service file at ``path``, checked (ServiceFileError naming the file when it is bad)."""
    try:
        with open(path) as handle:
            text = handle.read()
    except OSError as exc:
        raise ServiceFileError(f"{path}: {exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ServiceFileError(f"{path}: not JSON ({exc})") from None
    data = check_service(data, path)
    expected = f"{data['namespace']}.{data['name']}{SERVICE_SUFFIX}"
    if os.path.basename(path) != expected:
        raise ServiceFileError(f"{path}: holds Service {data['namespace']}/{data['name']}, whose file is {expected}")
    return data


def load_services(state_dir):
    """Every Service file of the host, checked, sorted by (namespace, name); [] when there is none.

    Skips nothing silently: a bad file raises ServiceFileError naming it. Temporary files of an atomic write in
    progress (names starting with '.') are not Services.
    """
    directory = services_dir(state_dir)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ServiceFileError(f"{directory}: {exc}") from None
    services = [read_service(os.path.join(directory, name)) for name in sorted(names) if name.endswith(SERVICE_SUFFIX) and not name.startswith(".")]
    return sorted(services, key=lambda service: (service["namespace"], service["name"]))


def selects(selector, labels):
    """Whether a Service's selector picks a pod with ``labels``. No selector (None or empty) picks nothing, as a
    Kubernetes Service without a selector has no endpoints of its own."""
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(key) == value for key, value in selector.items())


def resolve_target_port(pod_spec, target_port, protocol="TCP"):
    """The port number ``target_port`` means on a pod with ``pod_spec``, or None when the pod does not serve it.

    A number is that number (Kubernetes sends to it whatever the pod declares). A name is the ``containerPort`` of
    the pod's first container port with that name and protocol (protocol TCP when a port does not say).
    """
    if isinstance(target_port, int) and not isinstance(target_port, bool):
        return target_port
    if not isinstance(target_port, str):
        return None
    if isinstance(target_port, str) and target_port.isdigit():
        return int(target_port)
    for container in (pod_spec or {}).get("containers") or []:
        for port in (container or {}).get("ports") or []:
            if port.get("name") == target_port and (port.get("protocol") or "TCP") == protocol:
                return port.get("containerPort")
    return None


def ready_endpoints(service):
    """The endpoints traffic may go to: the ready ones, or all with publishNotReadyAddresses (as Kubernetes)."""
    if service["publish_not_ready_addresses"]:
        return list(service["endpoints"])
    return [endpoint for endpoint in service["endpoints"] if endpoint["ready"]]
