"""Services on the control side (issue 14): the spec, stable cluster IPs and node ports, endpoints, the file."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.action.service import current_copy, plan
from ansible_collections.hostfleet.workloads.plugins.module_utils.network import services as service_files
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.network import clusterips, endpoints
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.network.servicespec import parse_service

SPEC = {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}


# -- the spec ------------------------------------------------------------------------------------------


def test_normal_form():
    parsed, ignored = parse_service("web", "default", dict(SPEC, ipFamilies=["IPv4"], sessionAffinity="None"))
    assert parsed == {"namespace": "default", "name": "web", "type": "ClusterIP", "cluster_ip": None, "selector": {"app": "web"},
                      "ports": [{"name": "http", "protocol": "TCP", "port": 80, "target_port": "http", "node_port": None}],
                      "publish_not_ready_addresses": False}
    assert ignored == ["spec.ipFamilies"]
    headless, _ignored = parse_service("nginx", "default", {"clusterIP": "None", "selector": {"app": "nginx"}, "ports": [{"port": 80, "name": "web"}]})
    assert headless["cluster_ip"] == "None" and headless["ports"][0]["target_port"] == 80


@pytest.mark.parametrize(
    ("name", "spec", "field"),
    [
        ("web", {"ports": [{"port": 70000}]}, "spec.ports[0].port"),
        ("web", {"ports": [{"port": 80}], "sessionAfinity": "None"}, "spec.sessionAfinity"),
        ("web", {"ports": [{"port": 80, "tragetPort": 8080}]}, "spec.ports[0].tragetPort"),
        ("Web", {"ports": [{"port": 80}]}, "metadata.name"),
        ("1web", {"ports": [{"port": 80}]}, "metadata.name"),
        ("web", {"type": "LoadBalancer", "ports": [{"port": 80}]}, "spec.type"),
        ("web", {"type": "ExternalName", "externalName": "x.example"}, "spec.type"),
        ("web", {"ports": [{"port": 80}], "externalIPs": ["1.2.3.4"]}, "spec.externalIPs"),
        ("web", {"ports": [{"port": 80}], "sessionAffinity": "ClientIP"}, "spec.sessionAffinity"),
        ("web", {"ports": [{"port": 80, "protocol": "SCTP"}]}, "spec.ports[0].protocol"),
        ("web", {"ports": [{"port": 80}, {"port": 81}]}, "spec.ports[0].name"),
        ("web", {"ports": [{"port": 80, "nodePort": 30080}]}, "spec.ports[0].nodePort"),
        ("web", {"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}, "spec.ports[0].nodePort"),
        ("web", {"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80}]}, "spec.clusterIP"),
        ("web", {"ports": [{"port": 80, "targetPort": "Bad_Name"}]}, "spec.ports[0].targetPort"),
        ("web", {"ports": [{"port": 80, "targetPort": 0}]}, "spec.ports[0].targetPort"),
        ("web", {"clusterIP": "10.96.0.300", "ports": [{"port": 80}]}, "spec.clusterIP"),
        ("web", {}, "spec.ports"),
        ("web", {"ports": [{"port": 80}], "selector": {"app": "x y"}}, "spec.selector['app']"),
    ],
)
def test_what_hosts_cannot_honour_is_refused_naming_the_field(name, spec, field):
    with pytest.raises(SpecError) as caught:
        parse_service(name, "default", spec)
    assert caught.value.path == field


# -- cluster IPs ---------------------------------------------------------------------------------------

CIDR = "10.96.0.0/28"  # 13 usable addresses: allocation runs out in the properties
KEYS = st.lists(st.text("abcdefgh", min_size=1, max_size=4), unique=True, min_size=1, max_size=20)


@settings(max_examples=150, deadline=None)
@given(KEYS)
def test_cluster_ips_are_distinct_usable_and_stable(keys):
    held = {}
    for key in keys:
        try:
            held[key] = clusterips.allocate_cluster_ip(CIDR, key, None, None, set(held.values()))
        except SpecError as exc:
            assert len(held) == 13 and "no free address" in str(exc)
            break
    first, last = clusterips.usable_range(CIDR)
    assert len(set(held.values())) == len(held)
    assert all(first <= int(ipaddress.IPv4Address(ip)) <= last for ip in held.values())
    # A re-run (the address read back from the files) keeps every address.
    for key, ip in held.items():
        assert clusterips.allocate_cluster_ip(CIDR, key, None, ip, set(held.values()) - {ip}) == ip


def test_explicit_cluster_ip_is_honoured_when_free_in_cidr_and_unchanged():
    assert clusterips.allocate_cluster_ip(CIDR, "a", "10.96.0.5", None, {"10.96.0.6"}) == "10.96.0.5"
    with pytest.raises(SpecError, match="already allocated"):
        clusterips.allocate_cluster_ip(CIDR, "a", "10.96.0.6", None, {"10.96.0.6"})
    with pytest.raises(SpecError, match="not a usable address"):
        clusterips.allocate_cluster_ip(CIDR, "a", "10.97.0.6", None, set())
    with pytest.raises(SpecError, match="not a usable address"):
        clusterips.allocate_cluster_ip(CIDR, "a", "10.96.0.1", None, set())  # reserved, as Kubernetes' own Service's
    with pytest.raises(SpecError, match="immutable"):
        clusterips.allocate_cluster_ip(CIDR, "a", "10.96.0.5", "10.96.0.7", set())
    with pytest.raises(SpecError, match="immutable"):
        clusterips.allocate_cluster_ip(CIDR, "a", "None", "10.96.0.7", set())
    assert clusterips.allocate_cluster_ip(CIDR, "a", "None", None, set()) is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([None, 30000, 30001, 32767]), min_size=1, max_size=4), st.sets(st.integers(30000, 30010), max_size=5))
def test_node_ports_distinct_in_range_stable_and_explicit_honoured(asked, used):
    ports = [{"name": f"p{i}", "protocol": "TCP", "port": 80 + i, "target_port": 80, "node_port": n} for i, n in enumerate(asked)]
    explicit = [n for n in asked if n is not None]
    if len(set(explicit)) < len(explicit) or set(explicit) & used:
        with pytest.raises(SpecError, match=r"spec.ports\[\d\].nodePort"):
            clusterips.allocate_node_ports("ns.web", ports, None, used)
        return
    got = clusterips.allocate_node_ports("ns.web", ports, None, used)
    assert len(set(got)) == len(got) and not set(got) & used
    assert all(30000 <= n <= 32767 for n in got)
    assert all(g == a for g, a in zip(got, asked, strict=True) if a is not None)
    current = [dict(p, node_port=n) for p, n in zip(ports, got, strict=True)]
    unasked = [dict(p, node_port=None) for p in ports]
    assert clusterips.allocate_node_ports("ns.web", unasked, current, used) == got


# -- endpoints and the file ----------------------------------------------------------------------------


def pod_view(name, labels, ip="10.244.1.2", ready=True, host_network=False, ports=(), phase="Running"):
    return {"name": name, "labels": labels, "ip": None if host_network else ip, "host_network": host_network, "ready": ready, "phase": phase,
            "hostname": None, "subdomain": None, "ports": list(ports)}


def test_endpoints_select_resolve_named_ports_and_use_the_host_address_for_host_network_pods():
    ports = [{"name": "http", "port": 80, "targetPort": "http"}, {"name": "raw", "port": 81, "targetPort": 9000}]
    parsed, _ignored = parse_service("web", "default", {"selector": {"app": "web"}, "ports": ports})
    nodes = {
        "node2": {"node_index": 2, "address": "10.77.6.12", "pods": [
            pod_view("web-b", {"app": "web"}, ip="10.244.2.3", ready=False, ports=[{"name": "http", "protocol": "TCP", "containerPort": 8080}]),
            pod_view("db", {"app": "db"}, ip="10.244.2.4"),
            dict(pod_view("web-elsewhere", {"app": "web"}, ip="10.244.2.5"), namespace="other"),
            pod_view("web-done", {"app": "web"}, phase="Succeeded")]},
        "node1": {"node_index": 1, "address": "10.77.6.11", "pods": [pod_view("web-a", {"app": "web", "x": "y"}, host_network=True)]},
    }
    found = endpoints.endpoints(parsed, nodes)
    assert [(e["node"], e["pod"], e["ip"], e["ready"], e["ports"]) for e in found] == [
        ("node1", "web-a", "10.77.6.11", True, {"raw": 9000}),  # declares no port named http: that port leaves it out
        ("node2", "web-b", "10.244.2.3", False, {"http": 8080, "raw": 9000}),
    ]
    data = endpoints.service_file(parsed, "10.96.0.20", None, found)
    assert service_files.check_service(data) is data and data["endpoints"] == found
    no_selector, _ignored = parse_service("ext", "default", {"ports": [{"port": 80}]})
    assert endpoints.service_file(no_selector, "10.96.0.21", None, endpoints.endpoints(no_selector, nodes))["endpoints"] == []


def report(node_index, services=(), pods=(), cidr="10.96.0.0/12"):
    return {"node": {"node": f"node{node_index}", "node_index": node_index, "address": f"10.77.6.1{node_index}", "service_cidr": cidr},
            "services": list(services), "pods": list(pods)}


def test_plan_keeps_the_cluster_ip_of_the_hosts_files_and_drops_endpoints_of_nodes_not_reached():
    parsed, _ignored = parse_service("web", "default", {"selector": {"app": "web"}, "ports": [{"port": 80}]})
    reports = {f"node{i}": report(i, pods=[pod_view(f"web-{i}", {"app": "web"}, ip=f"10.244.{i}.2")]) for i in (1, 2, 3)}
    first, current = plan(parsed, reports, {})
    assert current is None and [e["node"] for e in first["endpoints"]] == ["node1", "node2", "node3"]
    held = {h: dict(r, services=[first]) for h, r in reports.items()}
    again, current = plan(parsed, held, {})
    assert again == first and current == first
    # node3 lost: its copy is not read, its pods are not endpoints; the address stays.
    lost, _ignored = plan(parsed, {h: r for h, r in held.items() if h != "node3"}, {})
    assert lost["cluster_ip"] == first["cluster_ip"]
    assert [e["node"] for e in lost["endpoints"]] == ["node1", "node2"]


def test_plan_refuses_an_address_another_service_holds_and_disagreeing_cidrs():
    other, _ignored = plan(parse_service("other", "default", {"ports": [{"port": 80}]})[0], {"node1": report(1)}, {})
    parsed, _ignored = parse_service("web", "default", {"clusterIP": other["cluster_ip"], "ports": [{"port": 80}]})
    with pytest.raises(SpecError, match="already allocated"):
        plan(parsed, {"node1": report(1, services=[other]), "node2": report(2)}, {})
    with pytest.raises(SpecError, match="disagree"):
        plan(parse_service("web", "default", {"ports": [{"port": 80}]})[0], {"node1": report(1), "node2": report(2, cidr="10.100.0.0/16")}, {})


def test_current_copy_is_the_majoritys():
    a, b = {"cluster_ip": "10.96.0.5"}, {"cluster_ip": "10.96.0.9"}
    assert current_copy({"n1": {"k": b}, "n2": {"k": a}, "n3": {"k": a}, "n4": {}}, "k") == a
    assert current_copy({"n1": {}}, "k") is None


# -- workload_info -------------------------------------------------------------------------------------


def test_workload_info_lists_services_and_endpoints_as_kubectl_get_svc_endpoints():
    from ansible_collections.hostfleet.workloads.plugins.action.workload_info import render_table, service_views

    spec = {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    web, _ignored = parse_service("web", "default", spec)
    nodes = {"node1": {"node_index": 1, "address": "10.77.6.11", "pods": [pod_view("web-a", {"app": "web"}, ip="10.244.1.2"),
                                                                          pod_view("web-b", {"app": "web"}, ip="10.244.1.3", ready=False)]}}
    data = endpoints.service_file(web, "10.96.0.20", [30080], endpoints.endpoints(web, nodes))
    headless = endpoints.service_file(parse_service("db", "shop", {"clusterIP": "None", "ports": [{"port": 5432}]})[0], None, None, [])
    stale = dict(data, endpoints=[])
    results = {"node1": {"services": [data, headless]}, "node2": {"services": [data]}, "node3": {"services": [stale]}}
    views = service_views(results)
    assert [(v["namespace"], v["name"]) for v in views] == [("default", "web"), ("shop", "db")]
    assert views[0]["endpoints"] == data["endpoints"]  # the copy two nodes of three hold, not node3's stale one
    assert views[0]["ready_addresses"] == ["10.244.1.2:8080"] and views[0]["not_ready_addresses"] == ["10.244.1.3:8080"]
    assert service_views(results, kinds=["Deployment"]) == [] and [v["name"] for v in service_views(results, namespace="shop")] == ["db"]
    table = render_table([], services=views, now=0)
    assert table == [
        "NAME              TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)        SELECTOR",
        "service/web       NodePort    10.96.0.20   <none>        80:30080/TCP   app=web",
        "service/shop/db   ClusterIP   None         <none>        5432/TCP       <none>",
        "",
        "NAME                ENDPOINTS         NOT READY",
        "endpoints/web       10.244.1.2:8080   10.244.1.3:8080",
        "endpoints/shop/db   <none>            <none>",
    ]
