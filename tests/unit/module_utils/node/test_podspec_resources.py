"""podspec resources (issue 15): ephemeral-storage, extended resources, hugepages refused, CPU limits below 10m clamped
as the kubelet clamps them (with a warning beside, never inside, the normal form)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from node_helpers import parse_exec_line, pod, spec_with, unit_values

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import podspec, units
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, validate_pod, validate_pod_spec

STATE = "/var/lib/hostfleet"


def resources(raw):
    return validate_pod_spec(spec_with(resources=raw))["containers"][0]["resources"]


def spec_error(raw):
    with pytest.raises(SpecError) as info:
        validate_pod_spec(spec_with(resources=raw))
    return info.value


def main_unit(raw_pod):
    normal = validate_pod(raw_pod, "pods[0]")
    return units.render_pod(normal, "Pod/web", {}, STATE, "/usr/bin/python3", "/run/hostfleet")[units.container_unit(raw_pod["name"], "main")]


def test_ephemeral_storage_and_extended_resources_in_the_normal_form():
    got = resources({"requests": {"ephemeral-storage": "1Gi", "cpu": "250m"}, "limits": {"ephemeral-storage": "2Gi", "nvidia.com/gpu": 1}})
    # A limit alone implies the request (Kubernetes' defaulting), for extended resources too.
    assert got == {
        "requests": {"ephemeral-storage": 2**30, "cpu": 250, "nvidia.com/gpu": 1},
        "limits": {"ephemeral-storage": 2 * 2**30, "nvidia.com/gpu": 1},
    }
    assert resources({"requests": {"example.com/dongle": "2"}, "limits": {"example.com/dongle": "2000m"}})["requests"] == {"example.com/dongle": 2}


def test_a_spec_without_them_keeps_its_normal_form():
    # Only what is set enters the normal form: existing specs keep their revision hashes (see also the golden test).
    assert resources({"limits": {"cpu": "1", "memory": "1Gi", "pids": 10}}) == {
        "requests": {"cpu": 1000, "memory": 2**30},
        "limits": {"cpu": 1000, "memory": 2**30, "pids": 10},
    }
    assert resources(None) == {"requests": {}, "limits": {}}


@pytest.mark.parametrize("raw,path,fragment", [
    ({"limits": {"nvidia.com/gpu": "0.5"}}, "limits.nvidia.com/gpu", "must be an integer"),
    ({"limits": {"nvidia.com/gpu": "1500m"}}, "limits.nvidia.com/gpu", "must be an integer"),
    ({"requests": {"nvidia.com/gpu": 1}}, "limits.nvidia.com/gpu", "Limit must be set for non overcommitable resources"),
    ({"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 2}}, "requests.nvidia.com/gpu", "must be equal to nvidia.com/gpu limit of 2"),
    ({"requests": {"nvidia.com/gpu": 2}, "limits": {"nvidia.com/gpu": 1}}, "requests.nvidia.com/gpu", "must be equal to nvidia.com/gpu limit of 1"),
    ({"requests": {"ephemeral-storage": "2Gi"}, "limits": {"ephemeral-storage": "1Gi"}}, "requests.ephemeral-storage",
     "must be less than or equal to ephemeral-storage limit of 1Gi"),
    ({"limits": {"ephemeral-storage": "lots"}}, "limits.ephemeral-storage", "not a quantity"),
    ({"limits": {"hugepages-2Mi": "100Mi"}}, "limits.hugepages-2Mi", "huge pages are not supported"),
    ({"requests": {"hugepages-1Gi": "1Gi"}}, "requests.hugepages-1Gi", "huge pages are not supported"),
    ({"limits": {"gpu": 1}}, "limits.gpu", "must be a standard resource for containers"),
    ({"requests": {"pids": 1}}, "requests.pids", "must be a standard resource for containers"),
    ({"limits": {"nvidia.com/-gpu": 1}}, "limits.nvidia.com/-gpu", "doesn't follow extended resource name standard"),
    ({"limits": {"Nvidia.com/gpu": 1}}, "limits.Nvidia.com/gpu", "doesn't follow extended resource name standard"),
    ({"limits": {"a/b/c": 1}}, "limits.a/b/c", "doesn't follow extended resource name standard"),
    ({"limits": {"kubernetes.io/gpu": 1}}, "limits.kubernetes.io/gpu", "must be a standard resource"),
    ({"limits": {"x.kubernetes.io/gpu": 1}}, "limits.x.kubernetes.io/gpu", "must be a standard resource"),
])
def test_kubernetes_validation_messages(raw, path, fragment):
    error = spec_error(raw)
    assert error.path == f"spec.containers[0].resources.{path}"
    assert fragment in error.message


def test_the_input_is_not_changed():
    raw = {"limits": {"nvidia.com/gpu": 1, "cpu": "1"}}
    resources(raw)
    assert raw == {"limits": {"nvidia.com/gpu": 1, "cpu": "1"}}


CPU_CLAMPS = [
    ("1m", 1, "1%", "0.01"),
    ("5m", 5, "1%", "0.01"),
    ("9m", 9, "1%", "0.01"),
    ("0.001", 1, "1%", "0.01"),
    ("10m", 10, "1%", "0.01"),
    ("11m", 11, "2%", "0.011"),
]


@pytest.mark.parametrize("cpu,millis,quota,cpus", CPU_CLAMPS)
def test_cpu_limits_below_10m_are_clamped_on_the_host_not_in_the_normal_form(cpu, millis, quota, cpus):
    raw = {"limits": {"cpu": cpu}}
    # The normal form keeps what the user said (as the API server stores it); the host gets the kubelet's minimum.
    assert resources(raw)["limits"]["cpu"] == millis
    content = main_unit(pod(resources=raw))
    assert unit_values(content, "CPUQuota") == [quota]
    podman = pod(spec={"containers": [{"name": "main", "image": "localhost/web:v2", "resources": raw}]})
    _exe, argv = parse_exec_line(unit_values(main_unit(podman), "ExecStart")[0])
    assert f"--cpus={cpus}" in argv
    warnings = podspec.resource_warnings(validate_pod(pod(resources=raw), "pods[0]")["spec"], "pods[0].spec")
    if millis < 10:
        assert warnings == [
            f"pods[0].spec.containers[main].resources.limits.cpu: {millis}m is below the smallest CPU quota (1 ms per 100 ms period): "
            "clamped to 10m, as the kubelet does"
        ]
    else:
        assert warnings == []


def test_a_zero_cpu_limit_sets_no_quota():
    raw = {"limits": {"cpu": 0}}
    assert resources(raw) == {"requests": {"cpu": 0}, "limits": {"cpu": 0}}
    assert unit_values(main_unit(pod(resources=raw)), "CPUQuota") == []
    podman = pod(spec={"containers": [{"name": "main", "image": "localhost/w:1", "resources": raw}]})
    _exe, argv = parse_exec_line(unit_values(main_unit(podman), "ExecStart")[0])
    assert not any(a.startswith("--cpus") for a in argv)
    assert "sets no CPU quota" in podspec.resource_warnings(validate_pod_spec(spec_with(resources=raw)))[0]


def test_warnings_are_not_in_the_normal_form():
    normal = validate_pod_spec(spec_with(resources={"limits": {"cpu": "5m"}}))
    assert "clamped" not in json.dumps(normal)


_DOMAINS = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?){0,2}\Z")
_NAMES = st.from_regex(r"\A[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?\Z")


@settings(max_examples=200, deadline=None)
@given(_DOMAINS, _NAMES, st.integers(0, 2**40), st.sampled_from(["limits", "both"]))
def test_extended_resources_property(domain, name, count, where):
    key = f"{domain}/{name}"
    raw = {"limits": {key: count}} if where == "limits" else {"limits": {key: count}, "requests": {key: str(count)}}
    if domain == "kubernetes.io" or domain.endswith(".kubernetes.io"):
        assert spec_error(raw).path.endswith(key)
        return
    got = resources(raw)
    assert got == {"requests": {key: count}, "limits": {key: count}}
    # Any other request is refused: extended resources cannot be overcommitted.
    error = spec_error({"limits": {key: count}, "requests": {key: count + 1}})
    assert error.path == f"spec.containers[0].resources.requests.{key}" and f"must be equal to {key} limit of {count}" in error.message


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_ephemeral_storage_request_limit_property(request, limit):
    raw = {"requests": {"ephemeral-storage": request}, "limits": {"ephemeral-storage": limit}}
    if request <= limit:
        assert resources(raw) == {"requests": {"ephemeral-storage": request}, "limits": {"ephemeral-storage": limit}}
    else:
        assert spec_error(raw).path == "spec.containers[0].resources.requests.ephemeral-storage"
