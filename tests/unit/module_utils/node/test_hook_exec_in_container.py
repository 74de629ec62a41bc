"""Exec probes of process containers run inside the container (issue 12 item 9): its mount namespace (volumes),
its credentials and working directory, its environment; never on the host when it has no running process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import hook, podspec

ids = st.integers(min_value=0, max_value=2**32 - 2)


@given(real=ids, effective=ids, gid=ids, groups=st.lists(ids, max_size=8))
def test_process_credentials_are_the_effective_ids_and_groups(real, effective, gid, groups):
    text = f"Name:\tsleep\nUmask:\t0022\nUid:\t{real}\t{effective}\t{effective}\t{effective}\nGid:\t{real}\t{gid}\t{gid}\t{gid}\n"
    text += "Groups:\t" + "".join(f"{g} " for g in groups) + "\nNStgid:\t1\n"
    assert hook.process_credentials(text) == (effective, gid, groups)


def test_process_credentials_of_an_unreadable_status():
    assert hook.process_credentials("") is None
    assert hook.process_credentials("Uid:\tx\nGid:\t0 0 0 0\n") is None


def fake_systemctl(monkeypatch, main_pid):
    calls = []
    real_run = subprocess.run

    def fake_run(argv, *args, **kwargs):
        if argv and argv[0] == "systemctl":
            calls.append(list(argv))
            return subprocess.CompletedProcess(argv, 0, stdout=f"{main_pid}\n", stderr="")
        return real_run(argv, *args, **kwargs)  # pylint: disable=subprocess-run-check

    monkeypatch.setattr(hook.subprocess, "run", fake_run)
    return calls


def test_container_process_is_the_units_main_process(monkeypatch):
    calls = fake_systemctl(monkeypatch, os.getpid())
    target = hook.container_process("web", "main", {"workingDir": "/srv"})
    assert calls == [["systemctl", "show", "--property=MainPID", "--value", "hf-web.main.service"]]
    groups = os.getgroups()
    assert target == {"pid": os.getpid(), "namespaces": [], "uid": os.geteuid(), "gid": os.getegid(), "groups": groups, "cwd": "/srv"}
    assert hook.container_process("web", "main", {})["cwd"] == "/"


@pytest.mark.parametrize("main_pid", [0, 2**22 + 12345])
def test_no_running_main_process_means_no_target(monkeypatch, main_pid):
    fake_systemctl(monkeypatch, main_pid)  # never started / ended (a PID above pid_max is no process)
    assert hook.container_process("web", "main", {}) is None


def test_an_exec_probe_of_a_container_without_a_process_fails_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(hook, "RUN_DIR", str(tmp_path / "run"))
    fake_systemctl(monkeypatch, 0)
    marker = tmp_path / "ran"
    raw = {"containers": [{"name": "main", "command": ["/bin/sleep", "inf"], "readinessProbe": {"exec": {"command": ["/bin/touch", str(marker)]}}}]}
    state = tmp_path / "state"
    (state / "pods" / "web").mkdir(parents=True)
    (state / "pods" / "web" / "pod.json").write_text(json.dumps({"name": "web", "spec": podspec.validate_pod_spec(raw)}))
    rdir = tmp_path / "run" / "web" / "main"
    rdir.mkdir(parents=True)
    (rdir / "status.json").write_text(json.dumps({"starts": 1, "running": True, "started_at": time.time() - 100}))
    hook.cmd_probe(str(state), "web", "main", "readiness")
    assert not marker.exists()  # not run on the host, as before the fix
    assert json.loads((rdir / "probe-readiness.json").read_text())["failures"] == 1


@pytest.fixture
def namespaced_container(tmp_path):
    """A process in its own mount namespace with a tmpfs at <tmp>/data holding 'ready' (as BindPaths= gives a unit)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare")
    data = tmp_path / "data"
    data.mkdir()
    script = f"mount -t tmpfs vol {data} && touch {data}/ready && exec sleep 60"
    child = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script])
    try:
        for _attempt in range(100):
            try:
                if os.readlink(f"/proc/{child.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt") and os.readlink(f"/proc/{child.pid}/exe").endswith("sleep"):
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            pytest.skip("unshare --mount is not permitted here")
        yield child.pid, data
    finally:
        child.kill()
        child.wait()


def test_an_exec_probe_runs_in_the_containers_mount_namespace_as_its_user(namespaced_container, monkeypatch, tmp_path):
    pid, data = namespaced_container
    fake_systemctl(monkeypatch, pid)
    target = hook.container_process("web", "main", {"workingDir": str(data)})
    assert target["namespaces"] == ["mnt"] and target["uid"] == 0
    assert not (data / "ready").exists()  # on the host: not there, the probe of the issue failed
    probe = {"exec": {"command": ["test", "-f", str(data / "ready")]}}
    assert hook.run_handler(probe, {"PATH": "/usr/bin:/bin"}, {}, 5, target=target) is True
    assert hook.run_handler({"exec": {"command": ["test", "-f", str(data / "absent")]}}, {"PATH": "/usr/bin:/bin"}, {}, 5, target=target) is False

    # The container's user, groups, working directory (inside its mounts) and environment.
    os.chmod(data, 0o777)  # noqa: S103 - a tmp dir the unprivileged probe user must write in
    check = f'[ "$(id -u)" = 65534 ] && [ "$(id -g)" = 65533 ] && [ "$(id -G)" = 65533 ] && [ "$PWD" = {data} ] && [ "$GREETING" = hi ] && touch mine'
    nobody = dict(target, uid=65534, gid=65533, groups=[])
    assert hook.run_handler({"exec": {"command": ["/bin/sh", "-c", check]}}, {"PATH": "/usr/bin:/bin", "GREETING": "hi"}, {}, 5, target=nobody) is True
    assert not (data / "mine").exists()
    owner = subprocess.run(["nsenter", f"--target={pid}", "--mount", "stat", "-c", "%u", f"{data}/mine"], capture_output=True, text=True, check=True)
    assert owner.stdout == "65534\n"


def test_a_target_that_ended_fails_the_probe(namespaced_container, monkeypatch):
    pid, data = namespaced_container
    fake_systemctl(monkeypatch, pid)
    target = hook.container_process("web", "main", {"workingDir": "/"})
    os.kill(pid, 9)
    for _attempt in range(100):
        if not os.path.exists(f"/proc/{pid}/ns") or open(f"/proc/{pid}/stat").read().split()[2] == "Z":
            break
        time.sleep(0.02)
    assert hook.run_handler({"exec": {"command": ["/bin/true"]}}, {}, {}, 5, target=target) is False
