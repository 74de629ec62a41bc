"""The Service file format every host holds (module_utils/network/services.py): reading, selecting, named ports."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.network import config, services


def service(namespace="default", name="backend", **changes):
    data = {
        "schema": 1, "namespace": namespace, "name": name, "type": "ClusterIP", "cluster_ip": "10.96.0.12",
        "ports": [{"name": "http", "protocol": "TCP", "port": 8080, "target_port": "http", "node_port": None}],
        "selector": {"app": "backend"}, "publish_not_ready_addresses": False,
        "endpoints": [{"pod": "backend-x1", "node": "node2", "node_index": 2, "ip": "10.244.2.5", "ready": True, "hostname": None,
                       "subdomain": None, "ports": {"http": 8080}}],
    }
    data.update(changes)
    return data


def write(state_dir, data, file_name=None):
    directory = services.services_dir(str(state_dir))
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, file_name or f"{data['namespace']}.{data['name']}.json")
    with open(path, "w") as handle:
        handle.write(data if isinstance(data, str) else json.dumps(data))
    return path


def test_paths_agree_with_config():
    assert services.services_dir("/s") == config.services_dir("/s")
    assert services.service_path("/s", "ns", "web") == os.path.join(config.services_dir("/s"), config.service_file_name("ns", "web"))


def test_load_services_sorted_and_skips_temporary_files(tmp_path):
    assert services.load_services(str(tmp_path)) == []
    write(tmp_path, service("b", "z"))
    write(tmp_path, service("a", "y"))
    write(tmp_path, "{half", file_name=".a.x.json.tmp123")
    found = services.load_services(str(tmp_path))
    assert [(s["namespace"], s["name"]) for s in found] == [("a", "y"), ("b", "z")]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not JSON"),
        (service(schema=2), "schema 2"),
        ({k: v for k, v in service().items() if k != "ports"}, "field ports is missing"),
        (service(type="LoadBalancer"), "field type"),
        (service(ports=[{"name": None, "protocol": "TCP", "port": 70000, "target_port": 80, "node_port": None}]), "ports[0].port"),
        (service(endpoints=[{"pod": "p"}]), "endpoints[0].node is missing"),
    ],
)
def test_a_bad_file_is_named_never_skipped(tmp_path, content, expected):
    write(tmp_path, service("a", "good"))
    path = write(tmp_path, content, file_name="default.backend.json")
    with pytest.raises(services.ServiceFileError) as caught:
        services.load_services(str(tmp_path))
    assert path in str(caught.value)
    assert expected in str(caught.value)


def test_a_file_under_another_services_name_is_refused(tmp_path):
    write(tmp_path, service("default", "other"), file_name="default.backend.json")
    with pytest.raises(services.ServiceFileError, match="whose file is default.other.json"):
        services.load_services(str(tmp_path))


LABEL = st.text("abc", min_size=1, max_size=2)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(LABEL, LABEL, max_size=3), st.dictionaries(LABEL, LABEL, max_size=4))
def test_selects_is_subset_of_labels_and_nothing_without_selector(selector, labels):
    expected = bool(selector) and set(selector.items()) <= set(labels.items())
    assert services.selects(selector, labels) is expected
    assert services.selects(None, labels) is False


def pod(*ports):
    return {"containers": [{"name": "a", "ports": list(ports[:1])}, {"name": "b", "ports": list(ports[1:])}]}


def test_resolve_target_port_by_name_and_protocol_over_containers():
    spec = pod({"name": "dns", "protocol": "UDP", "containerPort": 53}, {"name": "http", "containerPort": 8080},
               {"name": "dns", "protocol": "TCP", "containerPort": 5353})
    assert services.resolve_target_port(spec, "http", "TCP") == 8080
    assert services.resolve_target_port(spec, "dns", "UDP") == 53
    assert services.resolve_target_port(spec, "dns", "TCP") == 5353
    assert services.resolve_target_port(spec, "http", "UDP") is None
    assert services.resolve_target_port(spec, "metrics", "TCP") is None


@given(st.integers(1, 65535), st.sampled_from(["TCP", "UDP"]))
def test_a_numeric_target_port_is_itself_whatever_the_pod_declares(number, protocol):
    assert services.resolve_target_port(pod(), number, protocol) == number
    assert services.resolve_target_port(pod({"name": "x", "containerPort": 1}), number, protocol) == number


def test_ready_endpoints_follow_publish_not_ready_addresses():
    data = service(endpoints=[dict(service()["endpoints"][0], pod="a", ready=True), dict(service()["endpoints"][0], pod="b", ready=False)])
    assert [e["pod"] for e in services.ready_endpoints(data)] == ["a"]
    assert [e["pod"] for e in services.ready_endpoints(dict(data, publish_not_ready_addresses=True))] == ["a", "b"]
