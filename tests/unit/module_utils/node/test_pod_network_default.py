"""Pods on the node's pod network by default once the node has node.json (issue 14): the upgrade rule, hostNetwork:
true's host ports, status.podIP/hostIP in the status and the downward API."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from node_helpers import MAIN, parse_env_file, write_plan

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, podnet, podspec, runner, status
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError

PY = "/usr/bin/python3"
NETWORK = podnet.validate_config({"cidr": "10.244.3.0/24"})
HOST_IP = "10.77.3.11"


def raw(name, host_network=None, **main):
    spec = {"containers": [dict(MAIN, **main)]}
    if host_network is not None:
        spec["hostNetwork"] = host_network
    return {"name": name, "spec": spec}


def make_host(base):
    return converge.Host(str(base / "state"), unit_dir=str(base / "units"), wants_dir=str(base / "wants"), run_dir=str(base / "run"))


@pytest.fixture
def host(tmp_path):
    return make_host(tmp_path)


_NODE_NETWORK = object()  # the default: NETWORK (None means no pod network)


def plan(host, pods, owner="web", network=_NODE_NETWORK, host_ip=HOST_IP):
    network = NETWORK if network is _NODE_NETWORK else network
    return converge.plan(host, "Deployment", owner, pods, "present", PY, network=network, host_ip=host_ip)


def before_upgrade(host, raw_pods, owner="web"):
    """The pods as they run on a node without a pod network (no node.json): on the host's network."""
    write_plan(host, plan(host, [podspec.validate_pod(p, f"pods[{i}]") for i, p in enumerate(raw_pods)], owner, network=None, host_ip=None))


def on_node_network(host, raw_pods):
    return runner._validate_pods_on_node_network(raw_pods, host.records())


# --- the upgrade rule ---------------------------------------------------------------------------------


def test_unchanged_host_network_pod_is_left_running_changed_and_new_pods_join_the_pod_network(host):
    before_upgrade(host, [raw("a"), raw("b"), raw("h", host_network=True, ports=[{"containerPort": 80}])])
    same = plan(host, on_node_network(host, [raw("a"), raw("b"), raw("h", host_network=True, ports=[{"containerPort": 80}])]))
    assert not same.changed and not same.restart_units and not same.start_units, same.summary()
    assert all("network" not in r for r in host.records().values())
    # b's spec changed: it moves to the pod network (restarted); c is new: it starts there; a stays as it runs.
    moved = plan(host, on_node_network(host, [raw("a"), raw("b", args=["2"]), raw("c")]))
    assert moved.created == ["c"] and moved.updated == ["b"] and moved.deleted == ["h"]
    assert "hf-b.main.service" in moved.restart_units and not any(u.startswith("hf-a.") for u in moved.restart_units | moved.start_units)
    write_plan(host, moved)
    records = host.records()
    assert "network" not in records["a"] and records["b"]["network"]["ip"] == "10.244.3.2" and records["c"]["network"]["ip"] == "10.244.3.3"
    # Stable: the next run changes nothing either.
    assert not plan(host, on_node_network(host, [raw("a"), raw("b", args=["2"]), raw("c")])).changed


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.booleans(), st.sampled_from([None, True]), st.booleans()), min_size=1, max_size=5))
def test_upgrade_property_only_changed_specs_move(tmp_path_factory, pods):
    """Whatever the pods: after node.json, a pod restarts or moves iff its spec changed (or it is new)."""
    host = make_host(tmp_path_factory.mktemp("node"))
    names = [f"p{i}" for i in range(len(pods))]
    existing = [raw(n, host_network=hn) for n, (exists, hn, _changed) in zip(names, pods, strict=True) if exists]
    before_upgrade(host, existing)
    wanted = [raw(n, host_network=hn, **({"args": ["x"]} if changed else {})) for n, (_e, hn, changed) in zip(names, pods, strict=True)]
    result = plan(host, on_node_network(host, wanted))
    write_plan(host, result)
    records = host.records()
    for name, (exists, host_network, changed) in zip(names, pods, strict=True):
        touched = any(u.startswith(f"hf-{name}.") for u in result.restart_units | result.start_units)
        assert touched == (not exists or changed), (name, result.summary())
        on_pod_network = host_network is None and (not exists or changed)
        assert ("network" in records[name]) == on_pod_network, name


def test_either_network_check_names_the_field_before_the_host_is_read():
    # hostNetwork: false is valid for a node with a pod network; whichever network, a bad name is refused.
    assert runner._validate_pods_either_network([raw("a", host_network=False)])[0]["spec"]["hostNetwork"] is False
    # A hostPort on the pod network is forwarded from the host (network/nftables.py), no longer refused.
    forwarded = runner._validate_pods_either_network([raw("a", host_network=False, ports=[{"containerPort": 80, "hostPort": 80}])])
    assert forwarded[0]["spec"]["containers"][0]["ports"][0]["hostPort"] == 80
    for pod, field in [
        ({"name": "A", "spec": {"containers": [MAIN]}}, "pods[0].name"),
        (raw("a", env=[{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.restartPolicy"}}}]),
         "pods[0].spec.containers[0].env[0].valueFrom.fieldRef.fieldPath"),
    ]:
        with pytest.raises(SpecError) as error:
            runner._validate_pods_either_network([pod])
        assert error.value.path == field


# --- hostNetwork: true takes its containerPorts on the host --------------------------------------------


def test_host_network_pods_take_their_container_ports(host):
    pods = runner._validate_pods_on_node_network([raw("h", host_network=True, ports=[{"containerPort": 80}])], {})
    assert pods[0]["spec"]["hostNetwork"] is True
    write_plan(host, plan(host, pods, owner="one"))
    assert status.pod_status(host.records()["h"], {}, host, 0)["host_ports"] == [("TCP", 80)]
    other = runner._validate_pods_on_node_network([raw("g", host_network=True, ports=[{"containerPort": 80}])], {})
    with pytest.raises(SpecError) as error:
        plan(host, other, owner="two")
    assert error.value.path == "pods[0].spec.containers[0].ports[0].containerPort" and "'h'" in error.value.message
    # On the pod network the same port is the pod's own.
    write_plan(host, plan(host, runner._validate_pods_on_node_network([raw("p", ports=[{"containerPort": 80}])], {}), owner="three"))
    assert status.pod_status(host.records()["p"], {}, host, 0)["host_ports"] == []


# --- status.podIP / status.hostIP --------------------------------------------------------------------


FIELDS = [
    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    {"name": "HOST_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.hostIP"}}},
    {"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    {"name": "URL", "value": "http://$(POD_IP):8080"},
]


def env_of(host, pod, container="main"):
    with open(host.env_path(pod, container)) as handle:
        return parse_env_file(handle.read())


def test_downward_api_pod_and_host_ip(host):
    pods = on_node_network(host, [raw("a", env=FIELDS), raw("h", host_network=True, env=FIELDS)])
    write_plan(host, plan(host, pods))
    a, h = env_of(host, "a"), env_of(host, "h")
    assert (a["POD_IP"], a["HOST_IP"], a["ME"], a["URL"]) == ("10.244.3.2", HOST_IP, "a", "http://10.244.3.2:8080")
    assert (h["POD_IP"], h["HOST_IP"], h["ME"]) == (HOST_IP, HOST_IP, "h")
    by_name = {p["name"]: p for p in converge.observe(host, units={}, host_ip=HOST_IP)}
    assert (by_name["a"]["pod_ip"], by_name["a"]["host_ip"]) == ("10.244.3.2", HOST_IP)
    assert (by_name["h"]["pod_ip"], by_name["h"]["host_ip"]) == (HOST_IP, HOST_IP)


def test_downward_api_without_node_json_names_the_field_and_changes_nothing(host):
    with pytest.raises(SpecError) as error:
        plan(host, [podspec.validate_pod(raw("a", env=FIELDS[:1]), "pods[0]")], network=None, host_ip=None)
    assert error.value.path == "containers[main].env[POD_IP].valueFrom.fieldRef.fieldPath" and "node.json" in error.value.message
    assert host.records() == {} and host.unit_files() == {}
    # Without node.json the status is as it was: no address known for a pod on the host's network.
    write_plan(host, plan(host, [podspec.validate_pod(raw("b", env=FIELDS[2:3]), "pods[0]")], network=None, host_ip=None))
    assert [(p["pod_ip"], p["host_ip"]) for p in converge.observe(host, units={})] == [(None, None)]


def test_field_ref_refusals_name_the_field():
    for value_from, field in [
        ({"fieldRef": {"fieldPath": "spec.restartPolicy"}}, "valueFrom.fieldRef.fieldPath"),
        ({"fieldRef": {}}, "valueFrom.fieldRef.fieldPath"),
        ({"fieldRef": {"fieldPath": "status.podIP", "apiVersion": "v2"}}, "valueFrom.fieldRef.apiVersion"),
        ({"fieldRef": {"fieldPath": "status.podIP", "x": 1}}, "valueFrom.fieldRef.x"),
        ({"fieldRef": {"fieldPath": "status.podIP"}, "secretKeyRef": {"name": "s", "key": "k"}}, "valueFrom"),
        ({"resourceFieldRef": {"resource": "limits.cpu", "divisor": "2"}}, "valueFrom.resourceFieldRef.divisor"),
    ]:
        with pytest.raises(SpecError) as error:
            podspec.validate_pod(raw("a", env=[{"name": "X", "valueFrom": value_from}]), "pods[0]")
        assert error.value.path == f"pods[0].spec.containers[0].env[0].{field}", value_from
