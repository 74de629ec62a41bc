"""The downward API (issue 15): fieldRef/resourceFieldRef values and Kubernetes' validation messages, downwardAPI and
projected volumes, configMap/secret items and modes, the atomic ..data writer, the converge and config_data that
rewrite the files in place, and Kubernetes' $(VAR) expansion against a port of its reference implementation."""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from node_helpers import MAIN, write_plan

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import configdata, converge, downward, podspec, units
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.manifests import objects

PY = "/usr/bin/python3"
ALLOCATABLE = {"cpu": 4000, "memory": 8 * 2**30, "ephemeral-storage": 100 * 2**30}


def spec_with(env=None, volumes=None, mounts=None, resources=None, **pod):
    container = dict(MAIN, env=env or [], volumeMounts=mounts or [])
    if resources is not None:
        container["resources"] = resources
    return dict({"containers": [container], "volumes": volumes or []}, **pod)


def fields_for(normal, labels=None, annotations=None, node="node1", pod_ip="10.244.1.5", host_ip="10.77.4.11"):
    return downward.pod_fields(
        "web", "prod", "0f9b7f6e-0000-4000-8000-000000000001", labels or {}, annotations or {}, node, normal.get("serviceAccountName"), pod_ip, host_ip,
        normal["containers"], ALLOCATABLE,
    )


def env_of(raw_env, **kwargs):
    normal = podspec.validate_pod_spec(spec_with(env=raw_env, **{k: v for k, v in kwargs.items() if k in ("resources", "serviceAccountName")}))
    extra = {k: v for k, v in kwargs.items() if k not in ("resources", "serviceAccountName")}
    variables, _skipped, _defined = units.container_env(normal["containers"][0], {}, "web", "web", fields_for(normal, **extra))
    return variables


# --- env fieldRef -----------------------------------------------------------------------------------------------


def test_every_env_field_path_of_kubernetes_has_its_value():
    paths = {
        "NAME": "metadata.name", "NS": "metadata.namespace", "UID": "metadata.uid", "NODE": "spec.nodeName", "HOST_ALIAS": "spec.host",
        "SA": "spec.serviceAccountName", "POD_IP": "status.podIP", "POD_IPS": "status.podIPs", "HOST_IP": "status.hostIP", "HOST_IPS": "status.hostIPs",
        "APP": "metadata.labels['app']", "MISSING": "metadata.labels['none']", "NOTE": "metadata.annotations['example.com/note']",
    }
    env = [{"name": n, "valueFrom": {"fieldRef": {"fieldPath": p}}} for n, p in paths.items()]
    variables = env_of(env, labels={"app": "web"}, annotations={"example.com/note": "a b"}, serviceAccountName="builder")
    assert {n: variables[n] for n in paths} == {
        "NAME": "web", "NS": "prod", "UID": "0f9b7f6e-0000-4000-8000-000000000001", "NODE": "node1", "HOST_ALIAS": "node1", "SA": "builder",
        "POD_IP": "10.244.1.5", "POD_IPS": "10.244.1.5", "HOST_IP": "10.77.4.11", "HOST_IPS": "10.77.4.11", "APP": "web", "MISSING": "",
        "NOTE": "a b",
    }


def test_service_account_is_default_when_unset_and_in_the_normal_form_only_when_read():
    assert env_of([{"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}}])["SA"] == "default"
    # Not read: the field has no meaning on hosts, so the normal form (and the revision hash) is as without it.
    assert "serviceAccountName" not in podspec.validate_pod_spec(spec_with(serviceAccountName="builder"))
    read = spec_with(env=[{"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}}], serviceAccountName="builder")
    assert podspec.validate_pod_spec(read)["serviceAccountName"] == "builder"
    with pytest.raises(SpecError) as error:
        podspec.validate_pod_spec(spec_with(serviceAccountName="Not_A_Name"))
    assert error.value.path == "spec.serviceAccountName"


ENV_SUPPORTED = (
    '"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", '
    '"status.podIP", "status.podIPs"'
)


@pytest.mark.parametrize(
    "ref,path,message",
    [
        ({"fieldPath": "spec.restartPolicy"}, "fieldRef.fieldPath", f'Unsupported value: "spec.restartPolicy": supported values: {ENV_SUPPORTED}'),
        ({"fieldPath": "metadata.labels"}, "fieldRef.fieldPath", 'Unsupported value: "metadata.labels"'),
        ({"fieldPath": "status.nope"}, "fieldRef.fieldPath", '"status.nope": error converting fieldPath: field label not supported: status.nope'),
        ({"fieldPath": "metadata.name['x']"}, "fieldRef.fieldPath", "field label does not support subscript: metadata.name['x']"),
        ({"fieldPath": "metadata.labels['bad key']"}, "fieldRef", 'Invalid value: "bad key"'),
        ({"fieldPath": "metadata.name", "apiVersion": "v2"}, "fieldRef.apiVersion", "unsupported pod version: v2"),
        ({}, "fieldRef.fieldPath", "is required"),
    ],
)
def test_field_ref_refusals_are_kubernetes_messages(ref, path, message):
    with pytest.raises(SpecError) as error:
        podspec.validate_pod_spec(spec_with(env=[{"name": "X", "valueFrom": {"fieldRef": ref}}]))
    assert error.value.path == f"spec.containers[0].env[0].valueFrom.{path}"
    assert message in error.value.message


# --- resourceFieldRef ---------------------------------------------------------------------------------------------


def test_resource_values_are_rounded_up_to_the_divisor_and_unset_limits_are_the_node_allocatable():
    refs = {
        "CPU_REQUEST": ("requests.cpu", "1m"), "CPU_LIMIT": ("limits.cpu", "1m"), "MEM_REQUEST": ("requests.memory", "1Mi"),
        "MEM_LIMIT": ("limits.memory", "1Mi"), "CPU_CORES": ("limits.cpu", None), "MEM_BYTES": ("limits.memory", "1"),
        "EPH_LIMIT": ("limits.ephemeral-storage", "1Gi"), "EPH_REQUEST": ("requests.ephemeral-storage", None),
    }
    env = [{"name": n, "valueFrom": {"resourceFieldRef": dict({"resource": r}, **({"divisor": d} if d else {}))}} for n, (r, d) in refs.items()]
    # dapi-envars-resourcefieldref's resources: requests 125m/32Mi, limits 250m/64Mi.
    resources = {"requests": {"cpu": "125m", "memory": "32Mi"}, "limits": {"cpu": "250m", "memory": "64Mi"}}
    variables = env_of(env, resources=resources)
    assert {n: variables[n] for n in refs} == {
        "CPU_REQUEST": "125", "CPU_LIMIT": "250", "MEM_REQUEST": "32", "MEM_LIMIT": "64", "CPU_CORES": "1", "MEM_BYTES": str(64 * 2**20),
        "EPH_LIMIT": "100", "EPH_REQUEST": "0",
    }
    # No limits at all: the node's allocatable, as the kubelet merges it.
    unset = env_of([{"name": "C", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
                    {"name": "M", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}}])
    assert (unset["C"], unset["M"]) == ("4000", "8192")


@given(value=st.integers(min_value=0, max_value=2**62), divisor=st.sampled_from(sorted(downward._DIVISOR_VALUES["memory"])))
def test_memory_values_are_the_ceiling_of_the_quotient(value, divisor):
    fields = {"resources": {"main": {"requests": {}, "limits": {"memory": value}}}, "allocatable": ALLOCATABLE}
    result = int(downward.resource_value({"resource": "limits.memory", "containerName": "", "divisor": int(divisor)}, "main", fields))
    assert (result - 1) * int(divisor) < value <= result * int(divisor) or value == result == 0


@pytest.mark.parametrize(
    "ref,path,message",
    [
        ({"resource": "limits.cpu", "divisor": "2"}, "divisor", "only divisor's values 1m and 1 are supported with the cpu resource"),
        ({"resource": "limits.memory", "divisor": "3Mi"}, "divisor", "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi"),
        ({"resource": "limits.ephemeral-storage", "divisor": "2k"}, "divisor", "with the local ephemeral storage resource"),
        ({"resource": "limits.gpu"}, "resource", 'Unsupported value: "limits.gpu": supported values: "limits.cpu", "limits.ephemeral-storage"'),
        ({"resource": "limits.cpu", "containerName": "other"}, "containerName", 'Unsupported value: "other": supported values: "main"'),
    ],
)
def test_resource_field_ref_refusals_are_kubernetes_messages(ref, path, message):
    with pytest.raises(SpecError) as error:
        podspec.validate_pod_spec(spec_with(env=[{"name": "X", "valueFrom": {"resourceFieldRef": ref}}]))
    assert error.value.path.endswith(f".resourceFieldRef.{path}")
    assert message in error.value.message


def test_divisors_kubernetes_writes_another_way_are_the_same():
    # "1000m" is Kubernetes' "1", "1000" its "1k": both valid, both one normal form.
    one = podspec.validate_pod_spec(spec_with(env=[{"name": "X", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1000m"}}}]))
    assert one["containers"][0]["env"][0]["valueFrom"]["divisor"] == 1000
    k = podspec.validate_pod_spec(spec_with(env=[{"name": "X", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": 1000}}}]))
    assert k["containers"][0]["env"][0]["valueFrom"]["divisor"] == 1000


# --- volumes: validation and the normal form ------------------------------------------------------------------------


PODINFO = {
    "name": "podinfo",
    "downwardAPI": {
        "items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
            {"path": "cpu_limit", "resourceFieldRef": {"containerName": "main", "resource": "limits.cpu", "divisor": "1m"}, "mode": 0o600},
        ]
    },
}


def test_config_volumes_without_items_keep_their_normal_form_and_shared_tree():
    # defaultMode 0444 or 0644 reads as the tree's 0644 (the mount is read-only): no new normal form, no new revision.
    for mode in (None, 0o444, 0o644):
        body = {"name": "cfg"} if mode is None else {"name": "cfg", "defaultMode": mode}
        normal = podspec.validate_pod_spec(spec_with(volumes=[{"name": "c", "configMap": body}]))
        assert normal["volumes"]["c"] == {"kind": "configMap", "sourceName": "cfg", "optional": False, "readOnly": True}

    # Execute bits (refused before) or a Secret readable by others: the pod's own projection.
    def projected(kind, body):
        return downward.is_projected(podspec.validate_pod_spec(spec_with(volumes=[{"name": "v", kind: body}]))["volumes"]["v"])

    assert projected("configMap", {"name": "cfg", "defaultMode": 0o755})
    assert projected("secret", {"secretName": "s", "defaultMode": 0o644})
    assert not projected("secret", {"secretName": "s", "defaultMode": 0o400})


@pytest.mark.parametrize(
    "volume,path,message",
    [
        ({"downwardAPI": {"items": [{"path": "/abs", "fieldRef": {"fieldPath": "metadata.name"}}]}}, "downwardAPI.items[0].path", "must be a relative path"),
        ({"downwardAPI": {"items": [{"path": "..x", "fieldRef": {"fieldPath": "metadata.name"}}]}}, "downwardAPI.items[0].path", "must not start with '..'"),
        ({"downwardAPI": {"items": [{"path": "a", "fieldRef": {"fieldPath": "spec.nodeName"}}]}}, "downwardAPI.items[0].fieldRef.fieldPath",
         'Unsupported value: "spec.nodeName": supported values: "metadata.annotations", "metadata.labels", "metadata.name"'),
        ({"downwardAPI": {"items": [{"path": "a", "resourceFieldRef": {"resource": "limits.cpu"}}]}}, "downwardAPI.items[0].resourceFieldRef.containerName",
         "Required value"),
        ({"downwardAPI": {"items": [{"path": "a"}]}}, "downwardAPI.items[0]", "one of fieldRef or resourceFieldRef is required"),
        ({"downwardAPI": {"items": [{"path": "a", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o1000}]}}, "downwardAPI.items[0].mode",
         "must be a number between 0 and 0777 (octal), both inclusive"),
        ({"projected": {"sources": [{"configMap": {"name": "a", "items": [{"key": "k", "path": "x"}]}},
                                    {"secret": {"name": "b", "items": [{"key": "k", "path": "x"}]}}]}},
         "projected.sources[1].secret.items[0].path", "conflicting duplicate paths"),
        ({"projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}, "projected.sources[0].serviceAccountToken", "not applicable on hosts"),
        ({"projected": {"sources": [{"clusterTrustBundle": {"path": "ca"}}]}}, "projected.sources[0].clusterTrustBundle", "not supported on hosts"),
        ({"projected": {"sources": [{"configMap": {"name": "a"}, "secret": {"name": "b"}}]}}, "projected.sources[0]", "more than 1 volume type"),
    ],
)
def test_volume_refusals_name_the_field(volume, path, message):
    with pytest.raises(SpecError) as error:
        podspec.validate_pod_spec(spec_with(volumes=[dict(volume, name="v")]))
    assert error.value.path == f"spec.volumes[0].{path}"
    assert message in error.value.message


def test_a_secret_volume_is_refused_to_a_non_root_container_unless_its_mode_lets_others_read():
    mounts = [{"name": "s", "mountPath": "/s"}]
    with pytest.raises(SpecError, match="readable by root only"):
        podspec.validate_pod_spec(spec_with(volumes=[{"name": "s", "secret": {"secretName": "s"}}], mounts=mounts, securityContext={"runAsUser": 1000}))
    readable = [{"name": "s", "secret": {"secretName": "s", "defaultMode": 0o444}}]
    podspec.validate_pod_spec(spec_with(volumes=readable, mounts=mounts, securityContext={"runAsUser": 1000}))
    projected = {"projected": {"sources": [{"secret": {"name": "s", "items": [{"key": "k", "path": "k", "mode": 0o400}]}}]}}
    with pytest.raises(SpecError, match="readable by root only"):
        podspec.validate_pod_spec(spec_with(volumes=[dict(projected, name="s")], mounts=mounts, securityContext={"runAsUser": 1000}))


# --- the files: payload, the atomic writer ------------------------------------------------------------------------


def test_labels_and_annotations_files_are_kubernetes_format_map():
    assert downward.format_map({"b": "2", "a": 'say "hi"\n', "z": "é\x01"}) == 'a="say \\"hi\\"\\n"\nb="2"\nz="é\\x01"'


def reader(objects_):
    return lambda kind, name: objects_.get((kind, name))


def test_projected_payload_items_modes_and_optional_sources():
    volume = podspec.validate_pod_spec(spec_with(volumes=[{
        "name": "all", "projected": {"defaultMode": 0o640, "sources": [
            {"configMap": {"name": "cfg", "items": [{"key": "a", "path": "dir/a.conf", "mode": 0o444}]}},
            {"secret": {"name": "sec"}},
            {"secret": {"name": "gone", "optional": True}},
            {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
        ]}}]))["volumes"]["all"]
    normal = podspec.validate_pod_spec(spec_with())
    data = {("configMap", "cfg"): {"a": b"A", "b": b"B"}, ("secret", "sec"): {"token": b"t0p"}}
    payload = downward.volume_payload(volume, fields_for(normal), reader(data), "spec.volumes[all]")
    assert payload == {"dir/a.conf": (b"A", 0o444), "token": (b"t0p", 0o640), "name": (b"web", 0o640)}
    missing_key = dict(volume, sources=[{"kind": "configMap", "sourceName": "cfg", "optional": False, "items": [{"key": "zz", "path": "z"}]}])
    with pytest.raises(SpecError, match="ConfigMap 'cfg' has no key 'zz'"):
        downward.volume_payload(missing_key, fields_for(normal), reader(data), "spec.volumes[all]")


def listing(root):
    return sorted(os.listdir(root))


def test_writer_swaps_data_atomically_and_removes_what_the_volume_no_longer_has(tmp_path):
    root = str(tmp_path / "pods" / "p" / "projected" / "v")
    downward.write_volume(root, {"labels": (b'app="web"', 0o644), "sub/x": (b"1", 0o600)})
    first = os.readlink(os.path.join(root, "..data"))
    assert [e for e in listing(root) if not e.startswith("..")] == ["labels", "sub"]
    assert os.readlink(os.path.join(root, "labels")) == "..data/labels"
    assert open(os.path.join(root, "labels"), "rb").read() == b'app="web"'
    assert stat.S_IMODE(os.stat(os.path.join(root, "sub", "x")).st_mode) == 0o600
    # Root-only: the folder of the pod's projected volumes (host users never read what a mode opens to containers).
    assert stat.S_IMODE(os.stat(os.path.dirname(root)).st_mode) == 0o700
    assert downward.plan_volume(root, {"labels": (b'app="web"', 0o644), "sub/x": (b"1", 0o600)}) is None
    job = downward.plan_volume(root, {"labels": (b'app="web"\nv="2"', 0o644)})
    assert job is not None
    downward.apply_volumes([job])
    assert os.readlink(os.path.join(root, "..data")) != first
    assert [e for e in listing(root) if not e.startswith("..")] == ["labels"]
    assert [e for e in listing(root) if e.startswith("..")] == sorted(["..data", os.readlink(os.path.join(root, "..data"))])
    assert open(os.path.join(root, "labels"), "rb").read() == b'app="web"\nv="2"'


def test_a_reader_never_sees_half_a_file_while_it_is_rewritten(tmp_path):
    root = str(tmp_path / "v")
    payloads = [{f"f{n}": (bytes([c]) * 200_000, 0o644) for n in range(3)} for c in (65, 66)]
    downward.write_volume(root, payloads[0])
    seen, stop = [], threading.Event()

    def read():
        while not stop.is_set():
            try:
                data = open(os.path.join(root, "f1"), "rb").read()
            except FileNotFoundError:
                continue  # resolved into the previous directory just as it went (the kubelet's writer has the same window)
            seen.append(data)

    thread = threading.Thread(target=read)
    thread.start()
    for i in range(20):
        downward.write_volume(root, payloads[i % 2])
    stop.set()
    thread.join()
    assert seen and all(d in (payloads[0]["f1"][0], payloads[1]["f1"][0]) for d in seen)


# --- the converge: written with the pod, rewritten in place when labels change ------------------------------------


def make_host(base):
    return converge.Host(str(base / "state"), unit_dir=str(base / "units"), wants_dir=str(base / "wants"), run_dir=str(base / "run"))


def converge_pods(host, pods):
    plan = converge.plan(host, "Pod", "web", [podspec.validate_pod(p, f"pods[{i}]") for i, p in enumerate(pods)], "present", PY)
    write_plan(host, plan)
    downward.apply_volumes(plan.projections)
    return plan


def test_a_relabelled_pod_gets_new_label_files_without_a_restart_and_keeps_its_uid(tmp_path):
    host = make_host(tmp_path)
    raw = {"name": "web", "labels": {"app": "web"}, "annotations": {"build": "1"},
           "spec": spec_with(volumes=[PODINFO], mounts=[{"name": "podinfo", "mountPath": "/etc/podinfo"}],
                             env=[{"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}}])}
    first = converge_pods(host, [raw])
    root = downward.volume_root(host.state_dir, "web", "podinfo")
    service = open(os.path.join(host.unit_dir, "hf-web.main.service")).read()
    assert f"BindReadOnlyPaths={root}:/etc/podinfo\n" in service
    assert open(os.path.join(root, "labels")).read() == 'app="web"'
    assert open(os.path.join(root, "cpu_limit")).read() == str(downward.host_allocatable(host.state_dir)["cpu"])
    uid = host.records()["web"]["uid"]
    assert first.created == ["web"] and len(uid) == 36
    again = converge_pods(host, [raw])
    assert not again.changed, again.summary()
    relabelled = converge_pods(host, [dict(raw, labels={"app": "web", "tier": "front"}, annotations={"build": "2"})])
    assert relabelled.relabelled == ["web"] and not relabelled.restart_units and not relabelled.start_units
    assert open(os.path.join(root, "labels")).read() == 'app="web"\ntier="front"'
    assert open(os.path.join(root, "annotations")).read() == 'build="2"'
    assert host.records()["web"]["uid"] == uid
    env = open(host.env_path("web", "main")).read()
    assert f'UID="{uid}"' in env


def test_a_record_from_before_uids_keeps_a_stable_uid_without_a_rewrite(tmp_path):
    record = {"name": "web", "created": 1700000000.5}
    assert downward.pod_uid(record, "web") == downward.pod_uid(dict(record), "web")
    assert downward.pod_uid(record, "web") != downward.pod_uid({"name": "web", "created": 1700000001.5}, "web")
    assert downward.pod_uid(dict(record, uid="u-1"), "web") == "u-1"


def test_config_data_rewrites_the_pods_projections_of_the_object_it_changed(tmp_path):
    host = make_host(tmp_path)
    state = host.state_dir

    def write_config(files):
        configdata.apply(configdata.plan(state, "ConfigMap", "app-config", files, False, "present"))

    write_config({"app.conf": b"v1", "other": b"x"})
    raw = {"name": "web", "spec": spec_with(
        volumes=[{"name": "cfg", "configMap": {"name": "app-config", "items": [{"key": "app.conf", "path": "conf/app.conf"}]}}],
        mounts=[{"name": "cfg", "mountPath": "/etc/app"}])}
    converge_pods(host, [raw])
    root = downward.volume_root(state, "web", "cfg")
    assert open(os.path.join(root, "conf", "app.conf")).read() == "v1"
    assert not os.path.exists(os.path.join(root, "other"))
    write_config({"app.conf": b"v2", "other": b"x"})
    assert open(os.path.join(root, "conf", "app.conf")).read() == "v2"
    # Nothing for the converge to do afterwards: the files are what the pod wants.
    assert not converge_pods(host, [raw]).changed


def test_a_missing_config_map_that_is_not_optional_fails_the_pod_naming_the_volume(tmp_path):
    host = make_host(tmp_path)
    raw = {"name": "web", "spec": spec_with(volumes=[{"name": "cfg", "configMap": {"name": "nope", "items": [{"key": "k", "path": "k"}]}}])}
    with pytest.raises(SpecError) as error:
        converge_pods(host, [raw])
    assert error.value.path == "pods[0].spec.volumes[cfg]"
    assert "ConfigMap 'nope' does not exist on this host" in error.value.message


# --- apply: serviceAccountToken and serviceAccountName ------------------------------------------------------------


def test_apply_drops_token_sources_and_keeps_service_account_name_only_when_read():
    out = objects._Collector()
    namespace_file = {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}
    spec = spec_with(volumes=[{"name": "api", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}, namespace_file]}}],
                     serviceAccountName="builder")
    objects._pod_spec(spec, "spec", out)
    assert out.ignored == ["spec.serviceAccountName", "spec.volumes[0].projected.sources[0].serviceAccountToken"]
    assert [list(s) for s in spec["volumes"][0]["projected"]["sources"]] == [["downwardAPI"]]
    podspec.validate_pod_spec(spec)
    read = spec_with(env=[{"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}}], serviceAccount="old-name")
    out = objects._Collector()
    objects._pod_spec(read, "spec", out)
    assert out.ignored == ["spec.serviceAccount"] and read["serviceAccountName"] == "old-name"


# --- $(VAR): Kubernetes' expansion ------------------------------------------------------------------------------


def reference_expand(text, mapping):
    """A line-by-line port of Kubernetes' third_party/forked/golang/expansion Expand and tryReadVariableName."""
    out = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            rest = text[cursor + 1:]
            if rest[0] == "$":
                read, is_var, advance = "$", False, 1
            elif rest[0] == "(":
                close = rest.find(")", 1)
                if close >= 1:
                    read, is_var, advance = rest[1:close], True, close + 1
                else:
                    read, is_var, advance = "$(", False, 1
            else:
                read, is_var, advance = "$" + rest[0], False, 1
            out.append((mapping[read] if read in mapping else "$(" + read + ")") if is_var else read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + text[checkpoint:]


EXPANSION_TEXT = st.text(alphabet=st.sampled_from(list("$()AB_x ")), max_size=24)


@settings(max_examples=400)
@given(text=EXPANSION_TEXT, mapping=st.dictionaries(st.sampled_from(["A", "B", "", "A)", "$A", "x"]), st.text(alphabet="$()ab", max_size=4), max_size=4))
def test_expand_is_kubernetes_expansion(text, mapping):
    assert units.expand(text, mapping) == reference_expand(text, mapping)


@pytest.mark.parametrize(
    "text,expected",
    [("$(A)", "1"), ("$$(A)", "$(A)"), ("$$$(A)", "$1"), ("$(UNKNOWN)", "$(UNKNOWN)"), ("$(A", "$(A"), ("a$", "a$"), ("$x$$", "$x$"), ("$()", "$()")],
)
def test_expand_examples_of_kubernetes_docs(text, expected):
    assert units.expand(text, {"A": "1"}) == expected == reference_expand(text, {"A": "1"})


def test_env_values_see_only_earlier_entries_and_field_values():
    variables = env_of([
        {"name": "LATER_REF", "value": "$(NODE)-$(B)"},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "B", "value": "b"},
        {"name": "BOTH", "value": "$(NODE)/$(B)/$$(B)"},
    ])
    assert variables["LATER_REF"] == "$(NODE)-$(B)"
    assert variables["BOTH"] == "node1/b/$(B)"


def test_pod_record_carries_the_uid_and_json_round_trips(tmp_path):
    host = make_host(tmp_path)
    converge_pods(host, [{"name": "web", "spec": spec_with()}])
    record = json.load(open(os.path.join(host.pod_dir("web"), "pod.json")))
    assert record["uid"] == host.records()["web"]["uid"]


def test_fs_group_owns_the_pods_projections_and_lets_its_non_root_containers_read_a_secret(tmp_path):
    mounts = [{"name": "s", "mountPath": "/s"}]
    secret = [{"name": "s", "secret": {"secretName": "s", "defaultMode": 0o400}}]
    # 0400 without fsGroup: the shared root-only tree, refused to a container of user 1000 ...
    with pytest.raises(SpecError, match="readable by root only") as error:
        podspec.validate_pod_spec(spec_with(volumes=secret, mounts=mounts, securityContext={"runAsUser": 1000}))
    assert error.value.path == "spec.containers[0].volumeMounts[0].name"
    # ... with the pod's fsGroup and a mode of its own, the pod's projection, group fsGroup and group-readable.
    secret = [{"name": "s", "secret": {"secretName": "s", "items": [{"key": "token", "path": "token"}]}}]
    raw = spec_with(volumes=secret, mounts=mounts, securityContext={"runAsUser": 1000, "fsGroup": 2000})
    normal = podspec.validate_pod_spec(raw)
    fields = fields_for(normal)
    payload = downward.with_fs_group(downward.volume_payload(normal["volumes"]["s"], fields, reader({("secret", "s"): {"token": b"x"}}), "v"), 2000)
    assert payload == {"token": (b"x", 0o640)}
    root = str(tmp_path / "v")
    job = downward.plan_volume(root, payload, 2000)
    assert job["group"] == 2000
    if os.geteuid() == 0:
        downward.apply_volumes([job])
        assert os.stat(os.path.join(root, "token")).st_gid == 2000
        assert stat.S_IMODE(os.stat(os.path.join(root, "token")).st_mode) == 0o640
        assert downward.plan_volume(root, payload, 2000) is None
        assert downward.plan_volume(root, payload, None) is not None


ANNOTATION_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00").filter(lambda c: not podspec._UNWRITABLE.match(c)),
                          max_size=20)


@settings(max_examples=150, deadline=None)
@given(value=ANNOTATION_TEXT)
def test_an_annotation_in_the_environment_reads_back_exactly_through_systemds_parser(value):
    from node_helpers import parse_env_file

    variables = env_of([{"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}}], annotations={"note": value})
    assert parse_env_file(units.render_env_file(variables))["NOTE"] == value


def test_an_annotation_with_a_nul_is_refused_for_the_environment():
    with pytest.raises(SpecError, match="NUL"):
        env_of([{"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}}], annotations={"note": "a\x00b"})


FILE_PATHS = st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/"), min_size=1, max_size=8)
                      .filter(lambda p: p not in (".", "..") and not p.startswith("..")), min_size=1, max_size=2).map("/".join)


@settings(max_examples=60, deadline=None)
@given(files=st.dictionaries(FILE_PATHS, st.tuples(st.binary(max_size=64), st.sampled_from([0o400, 0o444, 0o600, 0o644, 0o755])), max_size=4))
def test_written_files_read_back_exactly_with_their_modes(tmp_path_factory, files):
    paths = sorted(files)
    if any(b.startswith(a + "/") for a in paths for b in paths):
        return  # a file where another needs a directory: refused by validation (_check_paths)
    root = str(tmp_path_factory.mktemp("v") / "vol")
    downward.write_volume(root, files)
    assert downward.current_payload(root) == files
    for path, (data, _mode) in files.items():
        with open(os.path.join(root, path), "rb") as handle:
            assert handle.read() == data


def test_init_containers_read_the_downward_api_and_name_containers_of_the_pod():
    init = {"name": "setup", "command": ["/bin/true"], "env": [
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"containerName": "main", "resource": "limits.cpu", "divisor": "1m"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}
    normal = podspec.validate_pod_spec(dict(spec_with(resources={"limits": {"cpu": "500m"}}), initContainers=[init]))
    variables, _skipped, _defined = units.container_env(normal["initContainers"][0], {}, "web", "web", fields_for(normal))
    assert (variables["CPU"], variables["NODE"]) == ("500", "node1")
    bad = dict(init, env=[{"name": "X", "valueFrom": {"resourceFieldRef": {"containerName": "nope", "resource": "limits.cpu"}}}])
    with pytest.raises(SpecError) as error:
        podspec.validate_pod_spec(dict(spec_with(), initContainers=[bad]))
    assert error.value.path == "spec.initContainers[0].env[X].valueFrom.resourceFieldRef.containerName"
