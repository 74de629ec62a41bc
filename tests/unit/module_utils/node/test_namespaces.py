"""Namespaces on the hosts (issue 14 item 4): how (namespace, name) becomes the node layer's one name, and what the
pod sees of it (its Kubernetes name and namespace), its record and its claims' volumes."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from node_helpers import MAIN, parse_env_file, validated, write_plan

from ansible_collections.hostfleet.workloads.plugins.module_utils.job import tracking
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, namespaces
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import units as render
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import DNS1123_LABEL, SpecError, node_name

PY = "/usr/bin/python3"

labels = st.from_regex(DNS1123_LABEL, fullmatch=True).filter(lambda s: len(s) <= 63)


@given(labels, labels)
def test_a_node_name_gives_back_its_namespace_and_name(namespace, name):
    on_node = namespaces.node_name(namespace, name)
    assert namespaces.split(on_node) == (namespace, name)
    assert node_name(on_node, "x") == on_node  # the node layer accepts every name it makes


@given(labels)
def test_default_keeps_the_names_of_before_namespaces(name):
    assert namespaces.node_name("default", name) == name == namespaces.node_name(None, name)
    assert namespaces.split(name) == ("default", name)


@given(st.tuples(labels, labels), st.tuples(labels, labels))
def test_two_objects_never_share_a_node_name(first, second):
    if first != second:
        assert namespaces.node_name(*first) != namespaces.node_name(*second)


@pytest.mark.parametrize("bad", ["default_web", "_web", "prod_", "a_b_c", "Prod_web", "prod_Web", "prod_-web", "a" * 64 + "_web"])
def test_a_name_that_is_no_namespaced_label_is_refused_naming_the_field(bad):
    with pytest.raises(SpecError) as info:
        node_name(bad, "pods[0].name")
    assert info.value.path == "pods[0].name"


@pytest.fixture
def host(tmp_path):
    return converge.Host(str(tmp_path / "state"), unit_dir=str(tmp_path / "units"), wants_dir=str(tmp_path / "wants"), run_dir=str(tmp_path / "run"))


def web_pod(name):
    env = [
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    mounts = [{"name": "data", "mountPath": "/data"}]
    return {"name": name, "labels": {"app": "web"}, "spec": {"containers": [dict(MAIN, env=env, volumeMounts=mounts)], "volumes": volumes}}


def env_of(plan, host, pod):
    path = host.env_path(pod, MAIN["name"])
    return dict(parse_env_file(plan.writes[path][0]))


def test_the_same_pod_name_in_two_namespaces_is_two_pods_with_their_own_units_volumes_and_records(host):
    default = converge.plan(host, "Deployment", "web", validated(web_pod("web-1")), "present", PY)
    write_plan(host, default)
    prod = converge.plan(host, "Deployment", "prod_web", validated(web_pod("prod_web-1")), "present", PY)
    write_plan(host, prod)
    assert prod.created == ["prod_web-1"] and default.created == ["web-1"]
    records = host.records()
    assert records["web-1"]["namespace"] == "default" and records["prod_web-1"]["namespace"] == "prod"
    assert records["prod_web-1"]["owner"] == {"kind": "Deployment", "name": "prod_web"}
    # The pod sees its Kubernetes name and its namespace.
    assert env_of(prod, host, "prod_web-1")["NS"] == "prod" and env_of(prod, host, "prod_web-1")["ME"] == "web-1"
    assert env_of(prod, host, "prod_web-1")["POD_NAME"] == "web-1" and env_of(prod, host, "prod_web-1")["HOSTNAME"] == "web-1"
    assert env_of(default, host, "web-1")["NS"] == "default" and env_of(default, host, "web-1")["POD_NAME"] == "web-1"
    # A claim is the namespace's: prod's `data` is not default's.
    assert any(path.endswith("/volumes/prod_data") for path, *_rest in prod.volume_dirs)
    assert any(path.endswith("/volumes/data") for path, *_rest in default.volume_dirs)
    # Units of both exist side by side; deleting prod's owner leaves default's pod.
    units = set(host.unit_files())
    assert render.container_unit("web-1", MAIN["name"]) in units and render.container_unit("prod_web-1", MAIN["name"]) in units
    gone = converge.plan(host, "Deployment", "prod_web", [], "absent", PY)
    assert gone.deleted == ["prod_web-1"]


def test_a_podman_pods_hostname_is_its_kubernetes_name():
    pod = validated({"name": "prod_web-1", "spec": {"runtimeClassName": "podman", "containers": [{"name": "main", "image": "busybox"}]}})[0]
    units = render.render_pod(pod, "Deployment/prod_web", {"main": []}, "/var/lib/hostfleet", PY)
    service = units[render.container_unit("prod_web-1", "main")]
    assert "--hostname=web-1" in service and "--hostname=prod_web" not in service


def test_a_claim_to_delete_is_the_owners_namespaces(host):
    os.makedirs(os.path.join(host.state_dir, "volumes", "prod_data-web-0"))
    os.makedirs(os.path.join(host.state_dir, "volumes", "data-web-0"))
    result = converge.plan(host, "StatefulSet", "prod_web", [], "absent", PY, delete_volumes=["data-web-0"])
    assert result.volumes_deleted == ["prod_data-web-0"]


def test_a_pod_reads_the_configmaps_of_its_own_namespace(host):
    for name, value in (("cfg", "default-value"), ("prod_cfg", "prod-value")):
        path = render.config_env_file(host.state_dir, "configMap", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(f'VALUE="{value}"\n')
    volumes = [{"name": "conf", "configMap": {"name": "cfg"}}]

    def pod(name):
        container = dict(MAIN, envFrom=[{"configMapRef": {"name": "cfg"}}], volumeMounts=[{"name": "conf", "mountPath": "/conf"}])
        return {"name": name, "spec": {"containers": [container], "volumes": volumes}}

    prod = converge.plan(host, "Deployment", "prod_web", validated(pod("prod_web-1")), "present", PY)
    default = converge.plan(host, "Deployment", "web", validated(pod("web-1")), "present", PY)
    assert env_of(prod, host, "prod_web-1")["VALUE"] == "prod-value" and env_of(default, host, "web-1")["VALUE"] == "default-value"
    spec = validated(pod("prod_web-1"))[0]["spec"]
    conf = dict(spec["volumes"]["conf"], name="conf")
    assert render.volume_source(conf, "/s", "prod_web-1") == render.config_tree("/s", "configMap", "prod_cfg")
    assert render.volume_source(conf, "/s", "web-1") == render.config_tree("/s", "configMap", "cfg")


def test_a_job_outside_default_labels_its_pods_with_its_kubernetes_name():
    labels = tracking.pod_template({"metadata": {"labels": {"app": "work"}}, "spec": {"containers": []}}, "prod_work", None)["metadata"]["labels"]
    assert labels["batch.kubernetes.io/job-name"] == labels["job-name"] == "work"
