"""ConfigMaps and Secrets on a host (configdata.py), and how pods use them (podspec valueFrom/volumes, units)."""

from __future__ import annotations

import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import configdata
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import units as render
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.converge import read_env_source
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, validate_pod_spec


def converge(state_dir, kind, name, files, immutable=False, state="present"):
    plan = configdata.plan(str(state_dir), kind, name, files, immutable, state)
    configdata.apply(plan)
    return plan


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# -- files on the host ----------------------------------------------------------------------------


def test_secret_files_are_root_only_and_configmap_files_world_readable(tmp_path):
    converge(tmp_path, "Secret", "s", {"P": b"pw", "T": b"tok"})
    converge(tmp_path, "ConfigMap", "c", {"A": b"1"})
    assert mode(tmp_path / "secrets") == 0o700
    assert mode(tmp_path / "secrets" / "s") == 0o700
    assert {mode(tmp_path / "secrets" / "s" / k) for k in ("P", "T")} == {0o600}
    assert mode(tmp_path / "secrets" / "s.env") == 0o600
    assert mode(tmp_path / "secrets" / "s.meta.json") == 0o600
    assert mode(tmp_path / "configmaps" / "c") == 0o755
    assert mode(tmp_path / "configmaps" / "c" / "A") == 0o644
    assert (tmp_path / "secrets" / "s" / "P").read_bytes() == b"pw"


def test_a_second_run_changes_nothing_and_keys_are_added_updated_removed(tmp_path):
    first = converge(tmp_path, "ConfigMap", "c", {"A": b"1", "B": b"2"})
    assert first.changed and first.added == ["A", "B"]
    again = configdata.plan(str(tmp_path), "ConfigMap", "c", {"A": b"1", "B": b"2"}, False, "present")
    assert not again.changed
    update = converge(tmp_path, "ConfigMap", "c", {"A": b"9", "C": b"3"})
    assert (update.added, update.updated, update.removed) == (["C"], ["A"], ["B"])
    assert sorted(os.listdir(tmp_path / "configmaps" / "c")) == ["A", "C"]


def test_a_loosened_mode_is_tightened_again(tmp_path):
    converge(tmp_path, "Secret", "s", {"P": b"pw"})
    os.chmod(tmp_path / "secrets" / "s" / "P", 0o644)
    plan = converge(tmp_path, "Secret", "s", {"P": b"pw"})
    assert plan.changed and mode(tmp_path / "secrets" / "s" / "P") == 0o600


def test_absent_removes_everything_and_then_changes_nothing(tmp_path):
    converge(tmp_path, "Secret", "s", {"P": b"pw"})
    gone = converge(tmp_path, "Secret", "s", {}, state="absent")
    assert gone.changed and gone.removed == ["P"]
    assert os.listdir(tmp_path / "secrets") == []
    assert not configdata.plan(str(tmp_path), "Secret", "s", {}, False, "absent").changed


def test_immutable_data_cannot_change_but_can_be_deleted(tmp_path):
    converge(tmp_path, "ConfigMap", "c", {"A": b"1"}, immutable=True)
    assert not configdata.plan(str(tmp_path), "ConfigMap", "c", {"A": b"1"}, True, "present").changed
    with pytest.raises(configdata.ConfigError, match="immutable"):
        configdata.plan(str(tmp_path), "ConfigMap", "c", {"A": b"2"}, True, "present")
    assert converge(tmp_path, "ConfigMap", "c", {}, state="absent").changed


def test_the_diff_of_a_secret_names_keys_never_values(tmp_path):
    converge(tmp_path, "Secret", "s", {"P": b"old-secret"})
    plan = configdata.plan(str(tmp_path), "Secret", "s", {"P": b"new-secret", "Q": b"other-secret"}, False, "present")
    text = repr(plan.diff())
    assert "P: (value not shown)" in text and "Q: (value not shown)" in text and "P: value changed" in text
    assert "secret" not in text.replace("Secret", "")
    cm = configdata.plan(str(tmp_path), "ConfigMap", "c", {"A": b"shown"}, False, "present")
    assert 'A: "shown"' in cm.diff()["after"]


def test_bad_keys_and_base64_are_refused():
    with pytest.raises(configdata.ConfigError, match="not a valid ConfigMap/Secret key"):
        configdata.decode_files({"../x": "eA=="})
    with pytest.raises(configdata.ConfigError, match="not valid base64"):
        configdata.decode_files({"x": "!!"})


# Issue 11 item 6: a key is a file name and a line of the .env file; the module holds keys to Kubernetes' rule.
@pytest.mark.parametrize(
    "key",
    ["B\nPATH", "A=B", "A\x00B", "a/b", ".", "..", "..x", "", "x" * 254, "A B", "A\rB", "caf\u00e9", "A\u2028B", "$X", "A#"],
)
def test_keys_outside_kubernetes_rule_are_refused_naming_the_field(key):
    with pytest.raises(configdata.ConfigError) as error:
        configdata.decode_files({key: "eA=="})
    assert str(error.value).startswith("files: ") and repr(key) in str(error.value)


def test_a_newline_key_cannot_inject_a_variable_into_the_env_file(tmp_path):
    """Before the fix, {"B\nPATH": "x"} wrote a PATH="x" line that every envFrom reader took as PATH."""
    with pytest.raises(configdata.ConfigError):
        converge(tmp_path, "ConfigMap", "c", configdata.decode_files({"B\nPATH": "eA==", "A=B": "eA=="}))
    assert not (tmp_path / "configmaps").exists()


@pytest.mark.parametrize("key", ["a", "A_1", "my.key", "-x", ".hidden", "x" * 253, "a..b"])
def test_keys_in_kubernetes_rule_are_accepted(key):
    assert configdata.decode_files({key: "eA=="}) == {key: b"x"}


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(min_size=0, max_size=12), st.text(max_size=30).map(str.encode), max_size=4))
def test_property_any_accepted_key_round_trips_with_its_value(tmp_path_factory, raw):
    """Whatever the keys, either decode_files refuses them, or the .env file gives back exactly the keys and values."""
    import base64

    try:
        files = configdata.decode_files({k: base64.b64encode(v).decode() for k, v in raw.items()})
    except configdata.ConfigError:
        assert any(not k or len(k) > 253 or not set(k) <= set("-._" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                   or k in (".", "..") or k.startswith("..") for k in raw)
        return
    text, omitted = configdata.render_env(files)
    path = tmp_path_factory.mktemp("env") / "x.env"
    path.write_text(text, encoding="utf-8")
    assert read_env_source({"resolved_path": str(path)}) == {k: v.decode() for k, v in files.items() if k not in omitted}


# -- the environment file round trip ----------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,20}", fullmatch=True), st.binary(max_size=40) | st.text(max_size=40).map(str.encode)))
def test_property_env_file_round_trips_through_the_node_reader(tmp_path_factory, files):
    """What render_env writes, converge.read_env_source reads back exactly; what it cannot carry is reported."""
    text, omitted = configdata.render_env(files)
    path = tmp_path_factory.mktemp("env") / "x.env"
    path.write_text(text, encoding="utf-8")
    read = read_env_source({"resolved_path": str(path)})
    expected = {k: v.decode("utf-8") for k, v in files.items() if k not in omitted}
    assert read == expected
    for key in omitted:
        assert configdata.env_text(files[key]) is None


# -- pods using them --------------------------------------------------------------------------------


def pod(**container):
    return {"containers": [{"name": "main", "command": ["/bin/true"], **container}]}


def test_value_from_config_map_and_secret_keys():
    spec = validate_pod_spec(
        pod(
            env=[
                {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "a.b"}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "B", "optional": True}}},
            ]
        )
    )
    container = spec["containers"][0]
    assert container["env"][0] == {"name": "A", "valueFrom": {"kind": "configMap", "name": "c", "key": "a.b", "optional": False}}
    # The node reads the sources of valueFrom without importing all their keys.
    assert container["envFrom"] == [
        {"kind": "configMap", "name": "c", "optional": True, "prefix": "", "keysOnly": True},
        {"kind": "secret", "name": "s", "optional": True, "prefix": "", "keysOnly": True},
    ]
    sources = {("configMap", "c"): {"a.b": "1$(X)", "other": "x"}, ("secret", "s"): None}
    variables, _skipped, defined = render.container_env(container, sources, "p", "p")
    assert variables["A"] == "1$(X)"  # not expanded, as in Kubernetes
    assert "B" not in variables and "other" not in variables
    assert defined == ["A"]


def test_a_missing_required_key_names_the_variable():
    container = validate_pod_spec(pod(env=[{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]))["containers"][0]
    with pytest.raises(SpecError, match=r"Secret 's' has no key 'k'"):
        render.container_env(container, {("secret", "s"): {"other": "1"}}, "p", "p")
    with pytest.raises(SpecError, match=r"Secret 's' does not exist on this host"):
        render.container_env(container, {}, "p", "p")


@pytest.mark.parametrize(
    "env,path,message",
    [
        ([{"name": "A", "valueFrom": {"fileKeyRef": {"path": "a", "key": "k", "volumeName": "v"}}}], "env[0].valueFrom.fileKeyRef", "not supported on hosts"),
        ([{"name": "A", "valueFrom": {"resourceFieldRef": {"resource": "limits.gpu"}}}], "env[0].valueFrom.resourceFieldRef.resource", "Unsupported value"),
        ([{"name": "A", "value": "x", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}], "env[0].valueFrom", "may not be specified"),
        ([{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c"}}}], "env[0].valueFrom.configMapKeyRef.key", "is required"),
        ([{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "../x"}}}], "env[0].valueFrom.configMapKeyRef.key", "not a valid"),
    ],
)
def test_value_from_problems_are_named(env, path, message):
    with pytest.raises(SpecError) as info:
        validate_pod_spec(pod(env=env))
    assert info.value.path == f"spec.containers[0].{path}"
    assert message in info.value.message


def test_config_volumes_are_the_object_trees_mounted_read_only():
    spec = validate_pod_spec(
        {
            "containers": [
                {"name": "main", "command": ["/bin/true"], "volumeMounts": [{"name": "c", "mountPath": "/etc/c"}, {"name": "s", "mountPath": "/etc/s"}]}
            ],
            "volumes": [{"name": "c", "configMap": {"name": "cfg", "defaultMode": 0o644}}, {"name": "s", "secret": {"secretName": "sec", "optional": True}}],
        }
    )
    assert spec["volumes"]["c"] == {"kind": "configMap", "sourceName": "cfg", "optional": False, "readOnly": True}
    units = render.render_pod({"name": "p", "spec": spec}, "Deployment/x", {}, "/var/lib/hostfleet", "/usr/bin/python3")
    service = units["hf-p.main.service"]
    assert "BindReadOnlyPaths=/var/lib/hostfleet/configmaps/cfg:/etc/c\n" in service
    assert "BindReadOnlyPaths=/var/lib/hostfleet/secrets/sec:/etc/s\n" in service


@pytest.mark.parametrize(
    "volume,container,path,message",
    [
        ({"configMap": {"name": "c", "items": [{"key": "a", "path": "../b"}]}}, {}, "spec.volumes[0].configMap.items[0].path", "must not contain '..'"),
        ({"configMap": {"name": "c", "defaultMode": 0o1755}}, {}, "spec.volumes[0].configMap.defaultMode", "between 0 and 0777"),
        ({"secret": {"name": "s"}}, {}, "spec.volumes[0].secret.name", "unknown field"),
        ({"secret": {"secretName": "s"}}, {"securityContext": {"runAsUser": 1000}}, "spec.containers[0].volumeMounts[0].name", "readable by root only"),
    ],
)
def test_config_volume_problems_are_named(volume, container, path, message):
    raw = {
        "containers": [{"name": "main", "command": ["/bin/true"], "volumeMounts": [{"name": "v", "mountPath": "/v"}], **container}],
        "volumes": [{"name": "v", **volume}],
    }
    with pytest.raises(SpecError) as info:
        validate_pod_spec(raw)
    assert info.value.path == path
    assert message in info.value.message


def run_config_data(tmp_path, **args):
    """The config_data module as Ansible runs it on a node (its JSON arguments file)."""
    import json
    import subprocess
    import sys

    root = os.path.abspath(os.path.join(os.path.dirname(configdata.__file__), *[".."] * 6))
    (tmp_path / "args.json").write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict({"kind": "ConfigMap", "name": "c"}, **args)}))
    done = subprocess.run(
        [sys.executable, "-m", "ansible_collections.hostfleet.workloads.plugins.modules.config_data", str(tmp_path / "args.json")],
        capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=root), check=False,
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize("key", ["B\nPATH", "A=B", "A\x00B"])
def test_the_module_refuses_a_bad_key_and_writes_nothing(tmp_path, key):
    """Before the fix the module wrote B\\nPATH (a PATH= line in the .env file) and crashed on a NUL."""
    result = run_config_data(tmp_path, state_dir=str(tmp_path / "state"), files={key: "eA=="})
    assert result.get("failed") and result["msg"].startswith(f"files: {key!r} is not a valid ConfigMap/Secret key"), result
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("state_dir", ["state", "/a/../b", "/a/./b"])
def test_the_module_refuses_a_state_dir_that_is_not_clean(tmp_path, state_dir):
    result = run_config_data(tmp_path, state_dir=state_dir, files={"K": "eA=="})
    assert result.get("failed") and result["msg"].startswith("state_dir: "), result
