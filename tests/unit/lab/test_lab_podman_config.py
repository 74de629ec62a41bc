"""The podman part of the lab host image (tests/lab/labctl.py), checked without building it."""

import json
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from lab import labctl  # noqa: E402


def test_containers_conf_selects_runc_and_no_pids_limit():
    conf = tomllib.loads(labctl.CONTAINERS_CONF)
    assert conf == {"containers": {"pids_limit": 0}, "engine": {"runtime": "runc"}}


def test_defaults_parse():
    assert tomllib.loads(labctl.REGISTRIES_CONF)["unqualified-search-registries"] == []
    assert json.loads(labctl.POLICY_JSON)["default"] == [{"type": "insecureAcceptAnything"}]


def test_prepare_podman_keeps_shipped_files_and_fills_missing_ones(tmp_path):
    etc = tmp_path / "etc"
    (etc / "containers").mkdir(parents=True)
    (etc / "containers/registries.conf").write_text("# shipped by the package\n")
    labctl._prepare_podman(etc)
    assert (etc / "containers/containers.conf").read_text() == labctl.CONTAINERS_CONF
    assert (etc / "containers/registries.conf").read_text() == "# shipped by the package\n"
    assert (etc / "containers/policy.json").read_text() == labctl.POLICY_JSON


def test_image_has_podman_and_runc_and_busybox():
    for package in ("podman", "runc", "conmon", "netavark", "busybox-static"):
        assert package in labctl.PACKAGES
    assert {"podman-auto-update.timer", "podman-auto-update.service"} <= set(labctl.MASKED_UNITS)
