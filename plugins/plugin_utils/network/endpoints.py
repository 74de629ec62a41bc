# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Service's endpoints, from the pods every reachable node reported, and the Service file made of them.

As Kubernetes' EndpointSlice controller: the pods of the Service's namespace that the selector picks, each with its address (its pod IP; a
``hostNetwork`` pod's is its host's address), its node, its readiness and, per Service port, the port the
``targetPort`` means on that pod (a name the pod does not declare leaves that port out for it). Pods that finished
(Succeeded, Failed) are not endpoints. Nodes not reached this run contribute none: their endpoints leave the Service
files of every other host. Pure: no I/O.
"""

from __future__ import annotations

import json

from ansible_collections.hostfleet.workloads.plugins.module_utils.network import services as service_files

FINISHED = ("Succeeded", "Failed")


def pod_endpoint(service, node, node_info, pod):
    """The endpoint ``pod`` (a node module's pod view) gives ``service`` (normal form), or None."""
    if pod.get("phase") in FINISHED or (pod.get("namespace") or "default") != service["namespace"]:
        return None  # a Service selects the pods of its own namespace only
    if not service_files.selects(service["selector"], pod.get("labels")):
        return None
    ip = node_info.get("address") if pod.get("host_network") else pod.get("ip")
    if not ip:
        return None  # a pod without an address of its own yet (or a host whose address is unknown)
    spec = {"containers": [{"ports": pod.get("ports") or []}]}
    ports = {}
    for port in service["ports"]:
        number = service_files.resolve_target_port(spec, port["target_port"], port["protocol"])
        if number is not None:
            ports[service_files.port_key(port)] = number
    return {
        "pod": pod["name"],
        "node": node,
        "node_index": node_info.get("node_index"),
        "ip": ip,
        "ready": bool(pod.get("ready")),
        "hostname": pod.get("hostname"),
        "subdomain": pod.get("subdomain"),
        "ports": ports,
    }


def endpoints(service, nodes):
    """Every endpoint of ``service`` over ``nodes`` ({node: {"node_index", "address", "pods": [pod view]}}, the
    reachable ones), sorted by node and pod so that an unchanged fleet gives an unchanged file."""
    found = []
    for node in sorted(nodes):
        info = nodes[node]
        for pod in info.get("pods") or []:
            endpoint = pod_endpoint(service, node, info, pod)
            if endpoint is not None:
                found.append(endpoint)
    return sorted(found, key=lambda e: (e["node"], e["pod"]))


def service_file(service, cluster_ip, node_ports, found):
    """The Service file (module_utils/network/services.py, schema 1) of ``service`` (normal form)."""
    ports = [
        {"name": p["name"], "protocol": p["protocol"], "port": p["port"], "target_port": p["target_port"], "node_port": node_ports[i] if node_ports else None}
        for i, p in enumerate(service["ports"])
    ]
    data = {
        "schema": service_files.SCHEMA,
        "namespace": service["namespace"],
        "name": service["name"],
        "type": service["type"],
        "cluster_ip": cluster_ip,
        "ports": ports,
        "selector": dict(service["selector"]) if service["selector"] else None,
        "publish_not_ready_addresses": service["publish_not_ready_addresses"],
        "endpoints": [dict(e) for e in found] if service["selector"] else [],
    }
    return service_files.check_service(data, f"Service {service['namespace']}/{service['name']}")


# -- workload_info: Services as `kubectl get svc,endpoints` shows them ------------------------------------


def newest_services(files_by_node):
    """{(namespace, name): Service file} over the nodes' copies ({node: [Service file]}): the copy most nodes hold
    (a node that was down during the last service run has an older one), the first node's on a tie."""
    copies = {}
    for node in sorted(files_by_node):
        for data in files_by_node[node] or []:
            copies.setdefault((data["namespace"], data["name"]), []).append(json.dumps(data, sort_keys=True))
    return {key: json.loads(max(texts, key=texts.count)) for key, texts in copies.items()}


def ports_text(service):
    """PORT(S) as kubectl prints it: 80/TCP, or 80:30080/TCP for a node port; <none> without ports."""
    texts = [f"{p['port']}:{p['node_port']}/{p['protocol']}" if p.get("node_port") else f"{p['port']}/{p['protocol']}" for p in service["ports"]]
    return ",".join(texts) or "<none>"


def endpoint_addresses(service, ready=True):
    """ip:port of the endpoints (ready, or not ready), one per endpoint and resolved port, as kubectl's ENDPOINTS."""
    out = []
    for endpoint in service["endpoints"]:
        if endpoint["ready"] is not ready:
            continue
        numbers = sorted(set(endpoint["ports"].values())) or [None]
        out += [f"{endpoint['ip']}:{n}" if n is not None else endpoint["ip"] for n in numbers]
    return out


def service_view(service):
    """One Service of workload_info's result."""
    return {
        "kind": "Service",
        "namespace": service["namespace"],
        "name": service["name"],
        "type": service["type"],
        "cluster_ip": service["cluster_ip"],
        "ports": service["ports"],
        "ports_text": ports_text(service),
        "selector": service["selector"],
        "endpoints": service["endpoints"],
        "ready_addresses": endpoint_addresses(service, True),
        "not_ready_addresses": endpoint_addresses(service, False),
    }


def _named(view):
    return view["name"] if view["namespace"] == "default" else f"{view['namespace']}/{view['name']}"


def service_tables(views):
    """Two kubectl-like sections, [[row], ...] each with its header: the Services, then their endpoints."""
    services = [["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "SELECTOR"]]
    services += [[f"service/{_named(v)}", v["type"], v["cluster_ip"] or "None", "<none>", v["ports_text"],
                  ",".join(f"{k}={val}" for k, val in sorted((v["selector"] or {}).items())) or "<none>"] for v in views]
    endpoints = [["NAME", "ENDPOINTS", "NOT READY"]]
    endpoints += [[f"endpoints/{_named(v)}", ",".join(v["ready_addresses"]) or "<none>", ",".join(v["not_ready_addresses"]) or "<none>"] for v in views]
    return [services, endpoints]
