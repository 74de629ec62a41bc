"""docs/apply.md's PodSpec tables say which fields are honoured, ignored and refused: checked against the code.

Every field the PodSpec parser takes (podspec.POD_FIELDS, CONTAINER_FIELDS, VOLUME_SOURCES) or the manifest layer
drops as meaningless (objects.POD_IGNORED, CONTAINER_IGNORED) must be in a table with that status, and every field the
tables call refused must really be refused by the parser, the error naming it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import podspec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.manifests import objects

DOC = Path(__file__).resolve().parents[2] / "docs" / "apply.md"
STATUSES = ("honoured", "ignored", "refused")


def _table(name):
    """{field: status} of the table after `<!-- podspec-table: name -->` (a row may name several fields)."""
    text = DOC.read_text()
    marker = f"<!-- podspec-table: {name} -->"
    assert marker in text, f"docs/apply.md lost its {name} table"
    rows = {}
    for line in text.split(marker, 1)[1].lstrip().splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        status = cells[1]
        assert status in STATUSES, line
        for field in re.findall(r"`([^`]+)`", cells[0]):
            assert field not in rows, f"{field} is twice in the {name} table"
            rows[field] = status
    return rows


def _by_status(table, status):
    return sorted(field for field, value in table.items() if value == status)


def _pod(**fields):
    return dict({"containers": [{"name": "app", "command": ["/bin/true"]}]}, **fields)


def _refusal(spec):
    with pytest.raises(podspec.SpecError) as caught:
        podspec.validate_pod_spec(spec)
    return caught.value


POD = _table("pod")
CONTAINER = _table("container")
VOLUME = _table("volume")
# Pod fields the manifest layer takes out before the parser sees them: nodeName of a bare Pod (apply places it).
POD_FIELDS_OF_APPLY = {"nodeName"}
# Container fields the parser reads besides CONTAINER_FIELDS: an image container's, and an init container's own.
CONTAINER_EXTRA = {"image", "imagePullPolicy", "restartPolicy"}
REFUSED_VALUES = {
    "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["a"]}],
    "hostUsers": False,
    "os": {"name": "linux"},
    "ephemeralContainers": [{"name": "debug", "image": "busybox:1.28"}],
    "overhead": {"cpu": "1"},
    "resources": {"limits": {"cpu": "1"}},
    "resourceClaims": [{"name": "gpu"}],
    "readinessGates": [{"conditionType": "x"}],
    "schedulingGates": [{"name": "x"}],
    "setHostnameAsFQDN": True,
    "nodeName": "node1",
    "stdin": True,
    "stdinOnce": True,
    "tty": True,
    "volumeDevices": [{"name": "v", "devicePath": "/dev/x"}],
    "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
}


def test_every_field_the_code_knows_is_in_the_tables_with_its_status():
    assert set(_by_status(POD, "honoured")) - POD_FIELDS_OF_APPLY == set(podspec.POD_FIELDS) - set(_by_status(POD, "ignored"))
    # Honoured fields that apply still drops where they mean nothing (no fieldRef reads it; a pod without images).
    assert set(_by_status(POD, "ignored")) | {"serviceAccountName", "imagePullSecrets"} == set(objects.POD_IGNORED)
    assert set(_by_status(CONTAINER, "honoured")) == set(podspec.CONTAINER_FIELDS) | CONTAINER_EXTRA
    assert set(_by_status(CONTAINER, "ignored")) == set(objects.CONTAINER_IGNORED)
    assert set(_by_status(VOLUME, "honoured")) == set(podspec.VOLUME_SOURCES)


@pytest.mark.parametrize("field", _by_status(POD, "refused"))
def test_a_refused_pod_field_is_refused_naming_it(field):
    error = _refusal(_pod(**{field: REFUSED_VALUES[field]}))
    assert field in f"{error.path}: {error.message}"


@pytest.mark.parametrize("field", _by_status(CONTAINER, "refused"))
def test_a_refused_container_field_is_refused_naming_it(field):
    error = _refusal({"containers": [{"name": "app", "command": ["/bin/true"], field: REFUSED_VALUES[field]}]})
    assert field in f"{error.path}: {error.message}"


def test_a_bare_pods_node_name_is_apply_s_and_refused_in_a_template():
    error = _refusal(_pod(nodeName="node1"))
    assert "nodeName" in f"{error.path}: {error.message}"


@pytest.mark.parametrize("source", ["nfs", "csi", "ephemeral", "image", "iscsi"])
def test_other_volume_sources_are_refused(source):
    error = _refusal(_pod(volumes=[{"name": "v", source: {}}]))
    assert "volumes[0]" in error.path


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mountPropagation", "HostToContainer"),
        ("subPathExpr", "$(POD_NAME)"),
        ("recursiveReadOnly", "Enabled"),
    ],
)
def test_refused_volume_mount_fields(field, value):
    container = {"name": "app", "command": ["/bin/true"], "volumeMounts": [{"name": "v", "mountPath": "/v", field: value}]}
    error = _refusal({"containers": [container], "volumes": [{"name": "v", "emptyDir": {}}]})
    assert field in f"{error.path}: {error.message}"


def test_refused_security_context_values():
    for spec, field in (
        (_pod(securityContext={"seLinuxOptions": {"level": "s0:c123,c456"}}), "seLinuxOptions"),
        (_pod(securityContext={"sysctls": [{"name": "kernel.msgmax", "value": "65536"}]}), "sysctls"),
        ({"containers": [{"name": "app", "command": ["/bin/true"], "securityContext": {"procMount": "Unmasked"}}]}, "procMount"),
        ({"containers": [{"name": "app", "command": ["/bin/true"], "resources": {"limits": {"hugepages-2Mi": "1Gi"}}}]}, "hugepages-2Mi"),
    ):
        error = _refusal(spec)
        assert field in f"{error.path}: {error.message}", error


def test_the_readme_summary_lists_the_same_fields():
    text = (DOC.parents[1] / "README.md").read_text()
    rows = {}
    for line in text.split("<!-- podspec-summary -->", 1)[1].lstrip().splitlines()[2:]:
        if not line.startswith("|"):
            break
        status, fields = (cell.strip() for cell in line.strip("|").split("|"))
        rows[status] = set(re.findall(r"`([^`]+)`", fields))
    assert rows["honoured (pod)"] == set(_by_status(POD, "honoured"))
    assert rows["honoured (container)"] == set(_by_status(CONTAINER, "honoured"))
    assert rows["honoured (volumes)"] == set(_by_status(VOLUME, "honoured"))
    assert rows["ignored"] == set(_by_status(POD, "ignored")) | set(_by_status(CONTAINER, "ignored"))
    assert rows["refused"] == set(_by_status(POD, "refused")) | set(_by_status(CONTAINER, "refused"))
