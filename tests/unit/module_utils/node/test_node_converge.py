"""converge.plan on tmp dirs: creation, idempotence, targeted restarts, relabelling, deletion, refusals.

apply is simulated by node_helpers.write_plan (this machine's PID 1 is not systemd); one test runs the real
converge.apply with the systemctl calls recorded instead of run.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
from node_helpers import MAIN, validated, write_plan

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, fence, fileio, grpc_probe, hook, registry_auth, systemctl
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError

PY = "/usr/bin/python3"


@pytest.fixture
def host(tmp_path):
    return converge.Host(str(tmp_path / "state"), unit_dir=str(tmp_path / "units"), wants_dir=str(tmp_path / "wants"), run_dir=str(tmp_path / "run"))


def plan(host, *pods, owner="web", kind="Deployment", **kwargs):
    return converge.plan(host, kind, owner, validated(*pods), kwargs.pop("state", "present"), PY, **kwargs)


def converged(host, *pods, **kwargs):
    result = plan(host, *pods, **kwargs)
    write_plan(host, result)
    return result


def raw_pod(name="a", labels=None, restart_policy="Always", **main):
    containers = [dict(MAIN, **main), {"name": "side", "command": ["/bin/sleep", "inf"], "env": [{"name": "ROLE", "value": "side"}]}]
    return {"name": name, "labels": labels or {"app": "x"}, "spec": {"containers": containers, "restartPolicy": restart_policy}}


def full_pod(tmp_path, name="full"):
    """Volumes of every kind (under tmp_path), probes, envFrom: what a real pod looks like."""
    return {
        "name": name,
        "labels": {"app": "full"},
        "spec": {
            "volumes": [
                {"name": "host", "hostPath": {"path": str(tmp_path / "host" / "data"), "type": "DirectoryOrCreate"}},
                {"name": "sock", "hostPath": {"path": str(tmp_path / "host" / "app.sock"), "type": "FileOrCreate"}},
                {"name": "scratch", "emptyDir": {}},
                {"name": "mem", "emptyDir": {"medium": "Memory"}},
                {"name": "claim", "persistentVolumeClaim": {"claimName": "db"}},
            ],
            "containers": [dict(MAIN, args=["$(GREETING)"], env=[{"name": "GREETING", "value": "hi $(CFG_USER)"}],
                                envFrom=[{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}, {"secretRef": {"name": "absent", "optional": True}}],
                                livenessProbe={"tcpSocket": {"port": 80}}, readinessProbe={"httpGet": {"port": 80}},
                                volumeMounts=[{"name": v, "mountPath": f"/mnt/{v}"} for v in ("host", "sock", "scratch", "mem", "claim")])],
        },
    }


def write_config_map(host, name, text):
    path = os.path.join(host.state_dir, "configmaps", f"{name}.env")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def all_files(root):
    found = []
    for directory, dirs, files in os.walk(root):
        found += [os.path.relpath(os.path.join(directory, name), root) for name in files + [d for d in dirs if os.path.islink(os.path.join(directory, d))]]
    return sorted(found)


def assert_nothing_to_do(result):
    assert result.writes == {} and result.removals == [] and result.tree_removals == [] and result.links == {} and result.volume_dirs == []
    assert result.start_units == set() and result.restart_units == set() and result.stop_units == set() and result.reset_runtime == set()
    assert not result.reload and not result.changed
    assert result.summary() == {"created": [], "updated": [], "relabelled": [], "deleted": [], "started": [], "daemon_reload": False, "volumes_deleted": []}


# --- creation and idempotence ----------------------------------------------------------------------


def test_new_pod_is_created_started_and_written(host, tmp_path):
    result = plan(host, raw_pod())
    assert not tmp_path.joinpath("state").exists() and not tmp_path.joinpath("units").exists()  # planning reads only
    assert result.created == ["a"] and result.changed and result.reload
    assert result.start_units == {"hf-a.main.service", "hf-a.side.service"}
    assert result.restart_units == {"hostfleet-heartbeat.timer"} and result.stop_units == set()  # fence.py's heartbeat, installed once
    assert result.reset_runtime == {("a", "main"), ("a", "side")}
    assert set(result.writes) == {
        host.hook_path, host.record_path("a"), host.env_path("a", "main"), host.env_path("a", "side"),
        os.path.join(host.unit_dir, "hf-a.main.service"), os.path.join(host.unit_dir, "hf-a.side.service"),
        *(os.path.join(host.unit_dir, u) for u in ("hostfleet-heartbeat.service", "hostfleet-heartbeat.timer")),
    }
    assert result.writes[host.hook_path] == (converge.hook_script_source(), 0o755)
    assert result.writes[host.env_path("a", "main")][1] == 0o600 and result.writes[host.record_path("a")][1] == 0o600
    assert result.writes[host.env_path("a", "side")][0] == 'HOSTNAME="a"\nPOD_NAME="a"\nROLE="side"\n'
    record = json.loads(result.writes[host.record_path("a")][0])
    assert record["owner"] == {"kind": "Deployment", "name": "web"} and record["labels"] == {"app": "x"}
    assert record["spec_hash"] == converge.spec_hash(record["spec"])
    assert result.links == {
        os.path.join(host.wants_dir, u): os.path.join(host.unit_dir, u) for u in ("hf-a.main.service", "hf-a.side.service", "hostfleet-heartbeat.timer")
    }
    assert result.summary()["created"] == ["a"] and result.summary()["daemon_reload"]


def test_second_plan_is_empty(host, tmp_path):
    write_config_map(host, "cfg", "USER=bob\n")
    first = converged(host, raw_pod("a"), raw_pod("b"), full_pod(tmp_path))
    assert sorted(first.created) == ["a", "b", "full"]
    assert {p for p, *_unused in first.volume_dirs} == {
        str(tmp_path / "host" / "data"), str(tmp_path / "host" / "app.sock"), f"{host.state_dir}/pods/full/volumes/scratch",
        f"{host.run_dir}/volumes/full/mem", f"{host.state_dir}/volumes/db"}
    assert_nothing_to_do(plan(host, raw_pod("a"), raw_pod("b"), full_pod(tmp_path)))
    # The same pods in another order (and their dict keys in another order) are still nothing to do.
    assert_nothing_to_do(plan(host, full_pod(tmp_path), raw_pod("b"), dict(reversed(list(raw_pod("a").items())))))


def test_full_pod_env_file_and_units(host, tmp_path):
    write_config_map(host, "cfg", "# comment\nexport USER='bob'\nbad-key=1\nEMPTY=\n")
    result = plan(host, full_pod(tmp_path))
    env = result.writes[host.env_path("full", "main")][0]
    assert env == 'HOSTNAME="full"\nPOD_NAME="full"\nCFG_EMPTY=""\nCFG_USER="bob"\nGREETING="hi bob"\n'
    units = {os.path.basename(p) for p in result.writes if p.startswith(host.unit_dir) and "heartbeat" not in p}
    assert units == {"hf-full.main.service"} | {f"hf-full.main.{k}.{s}" for k in ("liveness", "readiness") for s in ("timer", "service")}
    assert result.start_units == {"hf-full.main.service"}  # timers come with the service (Wants=)


# --- targeted changes ------------------------------------------------------------------------------


def test_changed_env_var_restarts_only_that_container(host):
    converged(host, raw_pod("a", env=[{"name": "LEVEL", "value": "1"}]), raw_pod("b", env=[{"name": "LEVEL", "value": "1"}]))
    result = plan(host, raw_pod("a", env=[{"name": "LEVEL", "value": "2"}]), raw_pod("b", env=[{"name": "LEVEL", "value": "1"}]))
    assert result.restart_units == {"hf-a.main.service"}
    assert result.reset_runtime == {("a", "main")}
    assert result.start_units == set() and result.stop_units == set()
    assert result.updated == ["a"] and result.created == [] and result.relabelled == []
    assert set(result.writes) == {host.env_path("a", "main"), host.record_path("a")}
    assert not result.reload  # the unit files did not change
    assert "LEVEL=\"2\"" in result.writes[host.env_path("a", "main")][0]
    assert "(environment" in result.diff[0]["after"] and "2" not in result.diff[0]["after"]  # the diff never shows values


def test_changed_config_map_restarts_its_users(host):
    write_config_map(host, "cfg", "A=1\n")
    uses = {"envFrom": [{"configMapRef": {"name": "cfg"}}]}
    converged(host, raw_pod("a", **uses), raw_pod("b"))
    write_config_map(host, "cfg", "A=2\n")
    result = plan(host, raw_pod("a", **uses), raw_pod("b"))
    assert result.restart_units == {"hf-a.main.service"} and result.updated == ["a"]
    assert set(result.writes) == {host.env_path("a", "main")}


def test_changed_args_rewrite_the_unit(host):
    converged(host, raw_pod("a"))
    result = plan(host, raw_pod("a", args=["--verbose"]))
    assert set(result.writes) == {os.path.join(host.unit_dir, "hf-a.main.service"), host.record_path("a")}
    assert result.reload and result.restart_units == {"hf-a.main.service"} and result.updated == ["a"]
    assert result.diff[0]["before"] != result.diff[0]["after"]


def test_probe_changes(host):
    converged(host, raw_pod("a", livenessProbe={"tcpSocket": {"port": 80}}))
    result = plan(host, raw_pod("a", livenessProbe={"tcpSocket": {"port": 80}, "periodSeconds": 3}))
    assert result.restart_units == {"hf-a.main.liveness.timer"}  # the timer's schedule changed, not the container
    write_plan(host, result)
    result = plan(host, raw_pod("a"))
    gone = {"hf-a.main.liveness.timer", "hf-a.main.liveness.service"}
    assert result.stop_units == gone
    assert sorted(result.removals) == sorted(os.path.join(host.unit_dir, u) for u in gone)
    assert result.restart_units == {"hf-a.main.service"}  # its Wants= changed
    assert result.updated == ["a"]


def test_labels_only_change_relabels_without_restart(host):
    converged(host, raw_pod("a"))
    result = plan(host, raw_pod("a", labels={"app": "x", "tier": "web"}))
    assert result.relabelled == ["a"] and result.updated == [] and result.created == []
    assert set(result.writes) == {host.record_path("a")}
    assert result.restart_units == set() and result.start_units == set() and result.stop_units == set() and not result.reload
    assert json.loads(result.writes[host.record_path("a")][0])["labels"] == {"app": "x", "tier": "web"}
    write_plan(host, result)
    assert_nothing_to_do(plan(host, raw_pod("a", labels={"app": "x", "tier": "web"})))


def test_created_time_survives_updates(host):
    converged(host, raw_pod("a"))
    created = json.loads(open(host.record_path("a")).read())["created"]
    converged(host, raw_pod("a", labels={"app": "y"}))
    assert json.loads(open(host.record_path("a")).read())["created"] == created


def test_restart_policy_change_moves_the_wants_links(host):
    converged(host, raw_pod("a"))
    result = plan(host, raw_pod("a", restart_policy="Never"))
    assert result.links == {os.path.join(host.wants_dir, u): None for u in ("hf-a.main.service", "hf-a.side.service")}
    assert result.restart_units == {"hf-a.main.service", "hf-a.side.service"}  # Restart= changed


def test_stopped_containers_are_started_again(host):
    converged(host, raw_pod("a"))
    observed = {"hf-a.main.service": ("loaded", "inactive", "dead"), "hf-a.side.service": ("loaded", "active", "running")}
    result = plan(host, raw_pod("a"), observed_units=observed)
    assert result.start_units == {"hf-a.main.service"} and result.started == ["a"] and result.changed
    converged(host, raw_pod("b", restart_policy="OnFailure"))
    assert plan(host, raw_pod("b", restart_policy="OnFailure"), observed_units={"hf-b.main.service": ("loaded", "inactive", "dead")}).start_units == set()


def test_removed_container_leaves_no_env_file(host):
    converged(host, raw_pod("a"))
    assert os.path.exists(host.env_path("a", "side"))
    only_main = {"name": "a", "labels": {"app": "x"}, "spec": {"containers": [MAIN]}}
    result = plan(host, only_main)
    assert host.env_path("a", "side") in result.removals and host.env_path("a", "main") not in result.removals
    assert "hf-a.side.service" in result.stop_units and result.updated == ["a"]
    write_plan(host, result)
    assert not os.path.exists(host.env_path("a", "side")) and os.path.exists(host.env_path("a", "main"))
    assert_nothing_to_do(plan(host, only_main))


def test_pod_name_and_hostname_references_need_a_definition(host):
    result = plan(host, raw_pod("a", args=["$(POD_NAME)", "$(HOSTNAME)"]))
    unit = result.writes[os.path.join(host.unit_dir, "hf-a.main.service")][0]
    assert '"/bin/sleep" "inf" "$$(POD_NAME)" "$$(HOSTNAME)"' in unit  # left as written, as Kubernetes does
    assert result.writes[host.env_path("a", "main")][0] == 'HOSTNAME="a"\nPOD_NAME="a"\n'  # still exported
    result = plan(host, raw_pod("a", args=["$(POD_NAME)"], env=[{"name": "POD_NAME", "value": "mine"}]))
    assert '"/bin/sleep" "inf" "${POD_NAME}"' in result.writes[os.path.join(host.unit_dir, "hf-a.main.service")][0]


# --- deletion ----------------------------------------------------------------------------------------


def test_removed_pod_is_deleted_but_claims_stay(host, tmp_path):
    write_config_map(host, "cfg", "USER=bob\n")
    converged(host, raw_pod("a"), full_pod(tmp_path))
    claim_dir = f"{host.state_dir}/volumes/db"
    assert os.path.isdir(claim_dir)
    result = plan(host, raw_pod("a"))
    assert result.deleted == ["full"] and result.created == [] and result.updated == []
    units = {"hf-full.main.service"} | {f"hf-full.main.{k}.{s}" for k in ("liveness", "readiness") for s in ("timer", "service")}
    assert result.stop_units == units
    assert sorted(result.removals) == sorted(os.path.join(host.unit_dir, u) for u in units)
    assert result.links == {os.path.join(host.wants_dir, "hf-full.main.service"): None}
    assert result.tree_removals == [host.pod_dir("full"), host.runtime_dir("full"), f"{host.run_dir}/volumes/full"]
    assert not any(p.startswith(f"{host.state_dir}/volumes") for p in result.tree_removals + result.removals)
    assert not any(p.startswith(str(tmp_path / "host")) for p in result.tree_removals + result.removals)  # hostPath data stays too
    write_plan(host, result)
    assert os.path.isdir(claim_dir) and os.path.isdir(tmp_path / "host" / "data")
    assert not os.path.exists(host.pod_dir("full"))
    assert_nothing_to_do(plan(host, raw_pod("a")))


def test_prune_false_deletes_only_what_remove_names(host):
    converged(host, raw_pod("a"), raw_pod("b"), raw_pod("c"))
    result = plan(host, raw_pod("a"), prune=False, remove=["c"])
    assert result.deleted == ["c"] and result.created == []
    assert result.stop_units == {"hf-c.main.service", "hf-c.side.service"}


def test_state_absent_deletes_every_pod_of_the_owner_only(host):
    converged(host, raw_pod("a"), raw_pod("b"))
    converged(host, raw_pod("z"), owner="other")
    result = plan(host, state="absent")
    assert result.deleted == ["a", "b"]
    assert not any("hf-z." in u for u in result.stop_units)


# --- refusals ----------------------------------------------------------------------------------------


def test_pod_name_owned_by_another_owner(host):
    converged(host, raw_pod("a"), raw_pod("shared"), owner="other", kind="ReplicaSet")
    with pytest.raises(SpecError) as info:
        plan(host, raw_pod("b"), raw_pod("shared"))
    assert info.value.path == "pods[1].name"
    assert "ReplicaSet/other" in info.value.message and "Deployment/web" in info.value.message
    # The other owner's pods are no business of this one: not pruned either.
    assert plan(host, raw_pod("b")).deleted == []


@pytest.mark.parametrize("ref,field,where", [
    ({"configMapRef": {"name": "cfg"}}, "configMapRef", "configmaps/cfg.env"),
    ({"secretRef": {"name": "token"}}, "secretRef", "secrets/token.env"),
    ({"fileRef": {"path": "/nonexistent/hostfleet.env"}}, "fileRef", "/nonexistent/hostfleet.env"),
])
def test_missing_env_from_source(host, ref, field, where):
    with pytest.raises(SpecError) as info:
        plan(host, raw_pod("a"), raw_pod("b", envFrom=[{"configMapRef": {"name": "here", "optional": True}}, ref]))
    assert info.value.path == f"pods[1].spec.containers[0].envFrom[1].{field}"
    assert where in info.value.message and "optional" in info.value.message


def test_optional_env_from_source_may_be_missing(host):
    result = plan(host, raw_pod("a", envFrom=[{"configMapRef": {"name": "cfg", "optional": True}}, {"secretRef": {"name": "s", "optional": True}}]))
    assert result.writes[host.env_path("a", "main")][0] == 'HOSTNAME="a"\nPOD_NAME="a"\n'
    write_config_map(host, "cfg", "LATE=1\n")
    result = plan(host, raw_pod("a", envFrom=[{"configMapRef": {"name": "cfg", "optional": True}}, {"secretRef": {"name": "s", "optional": True}}]))
    assert 'LATE="1"' in result.writes[host.env_path("a", "main")][0]


def test_host_path_of_the_wrong_type(host, tmp_path):
    (tmp_path / "afile").write_text("")
    for host_type, path in (("Directory", tmp_path / "missing"), ("Directory", tmp_path / "afile"), ("File", tmp_path), ("Socket", tmp_path / "afile")):
        raw = {"name": "a", "spec": {"volumes": [{"name": "v", "hostPath": {"path": str(path), "type": host_type}}], "containers": [MAIN]}}
        with pytest.raises(SpecError) as info:
            plan(host, raw)
        assert info.value.path.startswith("pods[0].spec.volumes[") and info.value.path.endswith("].hostPath.path")
    raw = {"name": "a", "spec": {"volumes": [{"name": "v", "hostPath": {"path": str(tmp_path), "type": "Directory"}}], "containers": [MAIN]}}
    assert plan(host, raw).created == ["a"]


def test_host_path_error_names_the_input_field(host, tmp_path):
    raw = {"name": "a", "spec": {"volumes": [{"name": "v", "hostPath": {"path": str(tmp_path / "missing"), "type": "Directory"}}], "containers": [MAIN]}}
    with pytest.raises(SpecError) as info:
        plan(host, raw)
    assert info.value.path == "pods[0].spec.volumes[0].hostPath.path"


# --- the real apply, systemctl recorded ---------------------------------------------------------------


def test_apply_writes_what_write_plan_writes_and_batches_systemctl(host, tmp_path, monkeypatch):
    calls = []

    def fake_run(args, check=True):
        # Recorded, not run: this machine's PID 1 is not systemd.
        calls.append(args[0] if len(args) == 1 else tuple(args))
        return 0, "", ""

    monkeypatch.setattr(systemctl, "_run", fake_run)
    other = converge.Host(str(tmp_path / "s2"), str(tmp_path / "u2"), str(tmp_path / "w2"), str(tmp_path / "r2"))
    result = plan(host, raw_pod("a"))
    converge.apply(host, result)
    write_plan(other, plan(other, raw_pod("a")))

    def strip(root):  # records differ by their creation time
        return [f for f in all_files(root) if not f.endswith("pod.json")]
    assert strip(str(tmp_path / "state")) == strip(str(tmp_path / "s2"))
    assert all_files(str(tmp_path / "units")) == all_files(str(tmp_path / "u2"))
    assert all_files(str(tmp_path / "wants")) == all_files(str(tmp_path / "w2")) == ["hf-a.main.service", "hf-a.side.service", "hostfleet-heartbeat.timer"]
    assert os.stat(host.hook_path).st_mode & 0o777 == 0o755 and os.stat(host.env_path("a", "main")).st_mode & 0o777 == 0o600
    assert os.path.exists(os.path.join(host.runtime_dir("a", "main"), "reset"))
    both = ("hf-a.main.service", "hf-a.side.service")
    assert calls == ["daemon-reload", ("reset-failed", *both, "hostfleet-heartbeat.timer"), ("start", "--no-block", *both),
                     ("restart", "--no-block", "hostfleet-heartbeat.timer")]
    calls.clear()
    result = plan(host)
    converge.apply(host, result)
    assert calls[0] == ("stop", "hf-a.main.service", "hf-a.side.service") and calls[1] == "daemon-reload"
    assert all_files(str(tmp_path / "units")) == ["hostfleet-heartbeat.service", "hostfleet-heartbeat.timer"]
    assert all_files(str(tmp_path / "wants")) == ["hostfleet-heartbeat.timer"]
    assert not os.path.exists(host.pod_dir("a"))


def test_apply_under_umask_0_gives_every_directory_and_file_its_own_mode(host, tmp_path, monkeypatch):
    """Issue 11 item 11: `umask 0` (a become shell) made state directories 0777, where anyone could plant files."""
    monkeypatch.setattr(systemctl, "_run", lambda args, check=True: (0, "", ""))
    volumes = [
        {"name": "scratch", "emptyDir": {}},
        {"name": "made", "hostPath": {"path": str(tmp_path / "hp" / "dir"), "type": "DirectoryOrCreate"}},
        {"name": "file", "hostPath": {"path": str(tmp_path / "hp" / "f" / "file"), "type": "FileOrCreate"}},
    ]
    mounts = [{"name": "scratch", "mountPath": "/scratch"}, {"name": "made", "mountPath": "/made"}, {"name": "file", "mountPath": "/file"}]
    pod = raw_pod("a", env=[{"name": "TOKEN", "value": "s3cret"}], volumeMounts=mounts)
    pod["spec"]["volumes"] = volumes
    old = os.umask(0)
    try:
        converge.apply(host, plan(host, pod))
    finally:
        os.umask(old)
    modes = {}
    for root in ("state", "run", "units", "wants", "hp"):
        for directory, _dirs, files in os.walk(tmp_path / root):
            modes[os.path.relpath(directory, tmp_path)] = stat.S_IMODE(os.lstat(directory).st_mode)
            for name in files:
                info = os.lstat(os.path.join(directory, name))
                if not stat.S_ISLNK(info.st_mode):  # a symlink's own mode is always 0777 and means nothing
                    modes[os.path.relpath(os.path.join(directory, name), tmp_path)] = stat.S_IMODE(info.st_mode)
    assert not [path for path, mode in modes.items() if mode & 0o022], modes
    assert modes["state/pods/a/env/main.env"] == modes["state/pods/a/pod.json"] == modes["run/pods/a/main/reset"] == 0o600
    assert modes["state/bin/hostfleet-hook"] == 0o755 and modes["units/hf-a.main.service"] == 0o644 and modes["hp/f/file"] == 0o644
    assert {modes[d] for d in ("state", "state/pods", "state/pods/a", "state/pods/a/env", "run/pods/a/main", "units", "hp/dir", "hp/f")} == {0o755}


def test_a_state_directory_loosened_by_an_older_run_is_tightened(host, monkeypatch):
    monkeypatch.setattr(systemctl, "_run", lambda args, check=True: (0, "", ""))
    for directory in (host.state_dir, os.path.join(host.state_dir, "pods"), host.run_dir):
        os.makedirs(directory)
        os.chmod(directory, 0o777)
    converge.apply(host, plan(host, raw_pod("a")))
    assert {stat.S_IMODE(os.stat(d).st_mode) for d in (host.state_dir, os.path.join(host.state_dir, "pods"), host.run_dir)} == {0o755}


def test_hook_script_source_is_the_hook_module_with_fileio_inlined():
    with open(hook.__file__) as handle:
        own = handle.read()
    with open(fileio.__file__) as handle:
        helper = handle.read()
    with open(fence.__file__) as handle:
        fencing = handle.read()
    with open(grpc_probe.__file__) as handle:
        grpc_code = handle.read().replace("from __future__ import annotations\n", "")
    source = converge.hook_script_source()
    assert converge.HOOK_FILEIO_IMPORT in own and converge.HOOK_FENCE_IMPORT in own and "ansible_collections" not in source
    own = own.replace(converge.HOOK_GRPC_IMPORT, grpc_code)
    with open(registry_auth.__file__) as handle:
        own = own.replace(converge.HOOK_AUTH_IMPORT, handle.read().replace("from __future__ import annotations\n", ""))
    before, _sep, after = own.partition(converge.HOOK_FILEIO_IMPORT)
    before = before.replace(converge.HOOK_FENCE_IMPORT, fencing.replace("from __future__ import annotations\n", "").replace(converge.HOOK_FILEIO_IMPORT, ""))
    assert source == before + helper.replace("from __future__ import annotations\n", "") + after


def test_the_installed_hook_runs_standalone_and_writes_with_its_own_modes_under_umask_0(tmp_path):
    """The script systemd runs has no collection on its path: fileio's code must be in it (issue 11 item 11)."""
    script = tmp_path / "hostfleet-hook"
    script.write_text(converge.hook_script_source())
    code = (
        "import os, sys; os.umask(0); ns = {'__name__': 'installed'}; exec(open(sys.argv[1]).read(), ns);"
        "d = os.path.join(sys.argv[2], 'pods', 'p', 'c'); ns['ensure_dir'](d, 0o755);"
        "ns['write_json'](os.path.join(d, 'status.json'), {'starts': 1})"
    )
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(script), str(tmp_path / "run")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    status = tmp_path / "run" / "pods" / "p" / "c" / "status.json"
    assert json.loads(status.read_text()) == {"starts": 1} and stat.S_IMODE(os.stat(status).st_mode) == 0o644
    for directory in (tmp_path / "run" / "pods", tmp_path / "run" / "pods" / "p", status.parent):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o755


def test_records_skip_broken_json(host):
    os.makedirs(host.pod_dir("bad"))
    with open(host.record_path("bad"), "w") as handle:
        handle.write("{not json")
    os.makedirs(host.pod_dir("empty"))
    assert host.records() == {}


def claim_pod(name, claim):
    pod = raw_pod(name)
    pod["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    return pod


def test_volumes_are_deleted_only_when_named_and_unused(host):
    converged(host, claim_pod("a", "data-a"), claim_pod("b", "data-b"))
    for claim in ("data-a", "data-b"):
        os.makedirs(os.path.join(host.state_dir, "volumes", claim), exist_ok=True)
    # Removing a pod never removes its volume by itself.
    kept = plan(host, claim_pod("a", "data-a"))
    assert kept.deleted == ["b"] and kept.volumes_deleted == []
    assert all(os.path.join(host.state_dir, "volumes") not in path for path in kept.tree_removals)
    # A volume a staying pod uses is refused, naming the field.
    with pytest.raises(SpecError) as refused:
        plan(host, claim_pod("a", "data-a"), delete_volumes=["data-a"])
    assert refused.value.path == "delete_volumes[0]"
    # The volume of a pod that goes is deleted when named, and only that one.
    gone = plan(host, claim_pod("a", "data-a"), delete_volumes=["data-b"])
    assert gone.deleted == ["b"] and gone.volumes_deleted == ["data-b"] and gone.changed
    assert plan(host, claim_pod("a", "data-a"), claim_pod("b", "data-b"), delete_volumes=["no-such"]).volumes_deleted == []


def test_a_host_port_is_taken_by_one_pod_per_host(host):
    ports = [{"containerPort": 8080, "hostPort": 8080}]
    converged(host, raw_pod("a", ports=ports), owner="one")
    with pytest.raises(SpecError) as info:
        plan(host, raw_pod("b", ports=ports), owner="two")
    assert info.value.path == "pods[0].spec.containers[0].ports[0].hostPort" and "pod 'a'" in info.value.message
    # Another port, or the same pod again, or the owner replacing its own pod: fine.
    plan(host, raw_pod("b", ports=[{"containerPort": 8081, "hostPort": 8081}]), owner="two")
    plan(host, raw_pod("a", ports=ports), owner="one")
    plan(host, raw_pod("c", ports=ports), owner="one", prune=False, remove=["a"])
