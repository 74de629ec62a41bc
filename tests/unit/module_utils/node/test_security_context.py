"""security_context: pod and container security contexts, hostPID/hostIPC/shareProcessNamespace (issue 15).

Validation (normal form only when set, refusals naming the field), the systemd directives of process pods and the
podman flags of image pods, read back through the models of systemd's parsers (node_helpers); the two shell scripts
the units run (fsGroup ownership, runAsNonRoot image check) are run here against a temporary tree and a fake podman.
"""

from __future__ import annotations

import os
import stat
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from node_helpers import MAIN, parse_exec_line, unit_values

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import hook, units
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import security_context as sc
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, validate_pod_spec

STATE = "/var/lib/hostfleet"
RUN = "/run/hostfleet"
PY = "/usr/bin/python3"
BOX = {"name": "box", "image": "busybox:1.28", "command": ["sh", "-c", "sleep 1h"]}
NETWORK = {"ip": "10.88.0.5", "prefix": 24, "gateway": "10.88.0.1", "bridge": "hf0"}


def normal(spec, pod_network=False):
    return validate_pod_spec(spec, pod_network=pod_network)


def refused(spec, pod_network=False):
    with pytest.raises(SpecError) as info:
        validate_pod_spec(spec, pod_network=pod_network)
    return info.value


def rendered(spec, name="p", pod_network=False):
    pod = {"name": name, "labels": {}, "annotations": {}, "revision": "", "spec": normal(spec, pod_network)}
    return units.render_pod(pod, "Pod/p", {}, STATE, PY, RUN, network=NETWORK if pod_network else None)


def service(spec, container="main", **kwargs):
    return rendered(spec, **kwargs)[f"hf-p.{container}.service"]


def words(line):
    """The whole argv systemd runs for an Exec*= value (program first)."""
    program, argv = parse_exec_line(line)
    return [program] + argv


def podman_argv(spec, container="box", **kwargs):
    (line,) = unit_values(service(spec, container, **kwargs), "ExecStart")
    return words(line)


# ---------------------------------------------------------------------------------------------- normal form


def test_a_spec_without_the_new_fields_keeps_its_normal_form_and_units():
    """Revision hashes and unit files of existing specs must not change: nothing new enters when nothing is set."""
    spec = {"securityContext": {"runAsUser": 1000}, "containers": [dict(MAIN, securityContext={"runAsGroup": 5})]}
    form = normal(spec)
    assert "securityContext" not in form and not {"hostPID", "hostIPC", "shareProcessNamespace"} & set(form)
    assert form["containers"][0]["securityContext"] == {"runAsUser": 1000, "runAsGroup": 5}
    # Kubernetes' defaults spelled out are the same normal form.
    spelled = {
        "securityContext": {"runAsUser": 1000, "fsGroupChangePolicy": "Always", "supplementalGroups": [], "sysctls": []},
        "hostPID": False,
        "hostIPC": False,
        "shareProcessNamespace": False,
        "containers": [dict(MAIN, securityContext={"runAsGroup": 5, "privileged": False, "allowPrivilegeEscalation": True, "procMount": "Default",
                                                   "readOnlyRootFilesystem": False, "capabilities": {}})],
    }
    assert normal(spelled) == form
    text = service(spec)
    for directive in ("CapabilityBoundingSet", "NoNewPrivileges", "ProtectSystem", "SystemCallFilter", "SupplementaryGroups", "AmbientCapabilities"):
        assert not unit_values(text, directive)
    assert service(spelled) == text


def test_container_fields_override_the_pods():
    spec = {
        "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [dict(MAIN, securityContext={"runAsUser": 2000, "seccompProfile": {"type": "Unconfined"}}), dict(MAIN, name="other")],
    }
    first, other = normal(spec)["containers"]
    assert first["securityContext"] == {"runAsUser": 2000, "runAsGroup": 3000, "seccompProfile": {"type": "Unconfined"}}
    assert other["securityContext"] == {"runAsUser": 1000, "runAsGroup": 3000, "seccompProfile": {"type": "RuntimeDefault"}}


CAPABILITY_SPELLINGS = st.sampled_from(sc.CAPABILITIES).flatmap(
    lambda name: st.sampled_from([name, "CAP_" + name, name.lower(), "cap_" + name.lower()]).map(lambda text: (name, text))
)


@settings(max_examples=150, deadline=None)
@given(
    add=st.lists(CAPABILITY_SPELLINGS, max_size=6),
    drop=st.lists(CAPABILITY_SPELLINGS, max_size=6),
    drop_all=st.booleans(),
    user=st.sampled_from([None, 0, 1000]),
)
def test_capabilities_render_kubernetes_set_on_both_runtimes(add, drop, drop_all, user):
    """The set is the CRI runtimes' default minus drop plus add; systemd and podman read back exactly that set."""
    drops = [text for _name, text in drop] + (["ALL"] if drop_all else [])
    context = {"capabilities": {"add": [text for _name, text in add], "drop": drops}}
    if user is not None:
        context["runAsUser"] = user
    added = {name for name, _text in add}
    base = set() if drop_all else set(sc.DEFAULT_CAPABILITIES) - {name for name, _text in drop}
    expected = base | added
    process = service({"containers": [dict(MAIN, securityContext=context)]})
    if not add and not drops:
        assert not unit_values(process, "CapabilityBoundingSet")
        return
    (bounding,) = unit_values(process, "CapabilityBoundingSet")
    assert set(bounding.split()) == {"CAP_" + name for name in expected}
    ambient = unit_values(process, "AmbientCapabilities")
    assert ambient == ([" ".join("CAP_" + n for n in sc.CAPABILITIES if n in added)] if user and added else [])
    argv = podman_argv({"containers": [dict(BOX, securityContext=context)]})
    assert "--cap-drop=all" in argv
    adds = [word for word in argv if word.startswith("--cap-add=")]
    assert set(adds[0][len("--cap-add="):].split(",")) == expected if expected else not adds


def test_the_kubernetes_default_set_is_capprm_a80425fb():
    # kubernetes.io "Configure a Security Context": security-context-3's CapPrm, and -4's with NET_ADMIN and SYS_TIME.
    assert sum(1 << sc.CAPABILITIES.index(name) for name in sc.DEFAULT_CAPABILITIES) == 0xA80425FB
    four = sc.capability_set({"capabilities": {"add": ["NET_ADMIN", "SYS_TIME"]}})
    assert sum(1 << sc.CAPABILITIES.index(name) for name in four) == 0xAA0435FB


@pytest.mark.parametrize(
    ("context", "path", "message"),
    [
        ({"capabilities": {"add": ["NET_ADMN"]}}, "capabilities.add[0]", "not a Linux capability"),
        ({"capabilities": {"drop": ["ALL", 7]}}, "capabilities.drop[1]", "must be a string"),
        ({"capabilities": {"keep": []}}, "capabilities.keep", "unknown field"),
        ({"allowPrivilegeEscalation": False, "privileged": True}, "allowPrivilegeEscalation", "privileged"),
        ({"allowPrivilegeEscalation": False, "capabilities": {"add": ["CAP_SYS_ADMIN"]}}, "allowPrivilegeEscalation", "CAP_SYS_ADMIN"),
        ({"procMount": "Unmasked"}, "procMount", "hostUsers"),
        ({"procMount": "Masked"}, "procMount", "Unsupported value"),
        ({"seccompProfile": {"type": "Localhost"}}, "seccompProfile.localhostProfile", "is required"),
        ({"seccompProfile": {"type": "Localhost", "localhostProfile": "../etc/x.json"}}, "seccompProfile.localhostProfile", "relative path"),
        ({"seccompProfile": {"type": "Localhost", "localhostProfile": "/etc/x.json"}}, "seccompProfile.localhostProfile", "relative path"),
        ({"seccompProfile": {"type": "RuntimeDefault", "localhostProfile": "x"}}, "seccompProfile.localhostProfile", "only be set"),
        ({"seccompProfile": {"type": "Other"}}, "seccompProfile.type", "Unsupported value"),
        ({"seLinuxOptions": {"level": "s0:c123,c456"}}, "seLinuxOptions", "without SELinux"),
        ({"windowsOptions": {"hostProcess": True}}, "windowsOptions.hostProcess", "Windows"),
        ({"privileged": "yes"}, "privileged", "must be a boolean"),
    ],
)
def test_container_context_refusals_name_the_field(context, path, message):
    error = refused({"containers": [dict(BOX, securityContext=context)]})
    assert error.path == f"spec.containers[0].securityContext.{path}"
    assert message in error.message


@pytest.mark.parametrize(
    ("context", "path", "message"),
    [
        ({"fsGroup": -1}, "fsGroup", "at least 0"),
        ({"fsGroup": 1, "fsGroupChangePolicy": "Sometimes"}, "fsGroupChangePolicy", "Unsupported value"),
        ({"supplementalGroups": [1, True]}, "supplementalGroups[1]", "group ID"),
        ({"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}, "sysctls[0].name", "safe"),
        ({"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1; reboot"}]}, "sysctls[0].value", "a number"),
        ({"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}] * 2}, "sysctls[1].name", "duplicate"),
        ({"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}]}, "sysctls[0].name", "own network namespace"),
    ],
)
def test_pod_context_refusals_name_the_field(context, path, message):
    error = refused({"securityContext": context, "containers": [BOX]})
    assert error.path == f"spec.securityContext.{path}"
    assert message in error.message


def test_runtime_specific_refusals():
    # A process pod: no image user to check, no OCI seccomp file, no AppArmor profile, the host's IPC namespace.
    assert refused({"securityContext": {"runAsNonRoot": True}, "containers": [MAIN]}).path == "spec.securityContext.runAsNonRoot"
    local = {"type": "Localhost", "localhostProfile": "profiles/audit.json"}
    assert refused({"containers": [dict(MAIN, securityContext={"seccompProfile": local})]}).path == "spec.containers[0].securityContext.seccompProfile"
    assert refused({"containers": [dict(MAIN, securityContext={"appArmorProfile": {"type": "RuntimeDefault"}})]}).path.endswith("appArmorProfile")
    shm = {"securityContext": {"sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"}]}}
    assert "IPC" in refused(dict(shm, containers=[MAIN])).message
    assert "hostIPC" in refused(dict(shm, containers=[BOX], hostIPC=True)).message
    # An image pod: runAsUser 0 contradicts runAsNonRoot.
    error = refused({"securityContext": {"runAsNonRoot": True}, "containers": [dict(BOX, securityContext={"runAsUser": 0})]})
    assert error.path == "spec.containers[0].securityContext.runAsUser"
    assert refused({"hostPID": True, "shareProcessNamespace": True, "containers": [BOX]}).path == "spec.shareProcessNamespace"
    # A controller's template (pod_network None): net.* sysctls are the node's to judge.
    assert normal(dict(shm, containers=[BOX], securityContext={"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}]}), pod_network=None)


# ---------------------------------------------------------------------------------------------- process pods


def test_process_pod_directives():
    spec = {
        "securityContext": {
            "runAsUser": 65534, "runAsGroup": 65534, "fsGroup": 100, "supplementalGroups": [4000], "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumes": [{"name": "v", "emptyDir": {}}, {"name": "h", "hostPath": {"path": "/srv/h"}}],
        "containers": [
            dict(MAIN, securityContext={"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
                 volumeMounts=[{"name": "v", "mountPath": "/data/demo"}, {"name": "h", "mountPath": "/h"}])
        ],
    }
    text = service(spec)
    assert unit_values(text, "NoNewPrivileges") == ["yes"]
    assert unit_values(text, "ProtectSystem") == ["strict"]
    assert unit_values(text, "SystemCallFilter") == ["@system-service"]
    assert unit_values(text, "SupplementaryGroups") == ["100 4000 65534"]
    (script,) = [words(line[1:]) for line in unit_values(text, "ExecStartPre") if "fsgroup" in line]
    assert script[:2] == [sc.SHELL, "-c"] and script[3:] == ["fsgroup", "100", "Always", f"{STATE}/pods/p/volumes/v"]  # not the hostPath
    # privileged: a process pod runs as root with its host's capabilities already; no seccomp filter then either.
    privileged = service({"containers": [dict(MAIN, securityContext={"privileged": True, "seccompProfile": {"type": "RuntimeDefault"},
                                                                     "capabilities": {"drop": ["ALL"]}})]})
    assert not unit_values(privileged, "CapabilityBoundingSet") and not unit_values(privileged, "SystemCallFilter")


def test_host_pid_and_ipc_change_nothing_for_a_process_pod():
    """Process pods already share the host's PID and IPC namespaces (and so each other's processes)."""
    plain = rendered({"containers": [MAIN, dict(MAIN, name="two")]})
    shared = rendered({"hostPID": True, "hostIPC": True, "containers": [MAIN, dict(MAIN, name="two")]})
    assert shared == plain
    assert rendered({"shareProcessNamespace": True, "containers": [MAIN, dict(MAIN, name="two")]}) == plain
    assert normal({"hostPID": True, "hostIPC": True, "containers": [MAIN]})["hostPID"] is True


def test_net_sysctls_are_written_in_the_pods_network_namespace():
    sysctls = [{"name": "net.ipv4.ip_local_port_range", "value": "32768 60999"}, {"name": "net.ipv4.tcp_syncookies", "value": 0}]
    units_ = rendered({"securityContext": {"sysctls": sysctls}, "hostNetwork": False, "containers": [MAIN]}, pod_network=True)
    lines = [words(line) for line in unit_values(units_["hf-p._netns.service"], "ExecStart") if "nsenter" in line]
    assert [line[-2:] for line in lines] == [["net.ipv4.ip_local_port_range", "32768 60999"], ["net.ipv4.tcp_syncookies", "0"]]
    assert lines[0][:2] == [sc.NSENTER, "--net=/run/netns/hf-p"]


# ---------------------------------------------------------------------------------------------- podman pods


def test_podman_flags():
    spec = {
        "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000, "supplementalGroups": [4000],
                            "sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"}]},
        "hostIPC": False,
        "volumes": [{"name": "sec-ctx-vol", "emptyDir": {}}],
        "containers": [dict(BOX, volumeMounts=[{"name": "sec-ctx-vol", "mountPath": "/data/demo"}],
                            securityContext={"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                             "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/audit.json"}})],
    }
    argv = podman_argv(spec)
    for flag in ("--user=1000:3000", "--security-opt=no-new-privileges", "--read-only", "--read-only-tmpfs=false", "--group-add=2000",
                 "--group-add=3000", "--group-add=4000", "--sysctl=kernel.shm_rmid_forced=1", f"--security-opt=seccomp={STATE}/seccomp/profiles/audit.json"):
        assert flag in argv
    assert argv.index("--read-only") < argv.index("localhost/busybox:1.28" if "localhost/busybox:1.28" in argv else "busybox:1.28")
    assert "--privileged" in podman_argv({"containers": [dict(BOX, securityContext={"privileged": True})]})
    assert "--security-opt=seccomp=unconfined" in podman_argv({"containers": [dict(BOX, securityContext={"seccompProfile": {"type": "Unconfined"}})]})
    host = podman_argv({"hostPID": True, "hostIPC": True, "containers": [BOX]})
    assert "--pid=host" in host and "--ipc=host" in host


def test_share_process_namespace_joins_the_first_containers():
    spec = {"shareProcessNamespace": True, "containers": [dict(BOX, name="nginx"), dict(BOX, name="shell")]}
    assert not [word for word in podman_argv(spec, "nginx") if word.startswith("--pid")]
    assert "--pid=container:hf-p.nginx" in podman_argv(spec, "shell")
    text = service(spec, "shell")
    assert "hf-p.nginx.service" in unit_values(text, "BindsTo") and "hf-p.nginx.service" in unit_values(text, "After")


def test_run_as_non_root_checks_the_image_user_before_each_start():
    text = service({"securityContext": {"runAsNonRoot": True}, "containers": [BOX]}, "box")
    (check,) = [words(line) for line in unit_values(text, "ExecStartPre") if "nonroot" in line]
    assert check[3:] == ["nonroot", "busybox:1.28", "IfNotPresent", "p", "box", ""]
    # With imagePullSecrets, the pull uses the pod's auth file (registry_auth.py), as podman run does.
    text = service({"securityContext": {"runAsNonRoot": True}, "imagePullSecrets": [{"name": "regcred"}], "containers": [BOX]}, "box")
    (check,) = [words(line) for line in unit_values(text, "ExecStartPre") if "nonroot" in line]
    assert check[-1] == f"{RUN}/pods/p/auth.json"
    # With a runAsUser, podman runs as that user: no check.
    text = service({"securityContext": {"runAsNonRoot": True, "runAsUser": 5}, "containers": [BOX]}, "box")
    assert not [line for line in unit_values(text, "ExecStartPre") if "nonroot" in line]


@pytest.fixture
def fake_podman(tmp_path):
    """A podman on PATH whose image has the user in $FAKE_USER (exit 1 for 'inspect' while the file $FAKE_MISSING
    exists, which a pull removes; a pull fails as podman's does when $FAKE_PULL_FAILS is set). Its argv goes to $FAKE_LOG."""
    tool = tmp_path / "podman"
    tool.write_text('#!/bin/sh\necho "$*" >>"${FAKE_LOG:-/dev/null}"\n'
                    'if [ "$1" = pull ]; then [ -n "$FAKE_PULL_FAILS" ] && { echo "Error: initializing source docker://img: pinging container registry" >&2; '
                    'exit 125; }; rm -f "$FAKE_MISSING"; exit 0; fi\n'
                    '[ -n "$FAKE_MISSING" ] && [ -e "$FAKE_MISSING" ] && exit 1\nprintf "%s\\n" "$FAKE_USER"\n')
    tool.chmod(0o755)
    return tmp_path


@pytest.mark.parametrize(
    ("user", "code", "message"),
    [("", 125, "image will run as root"), ("0:0", 125, "image will run as root"), ("nobody", 125, "non-numeric user (nobody)"),
     ("1000", 0, ""), ("1000:3000", 0, "")],
)
def test_non_root_script_verdicts(fake_podman, user, code, message):
    env = dict(os.environ, PATH=f"{fake_podman}:{os.environ['PATH']}", FAKE_USER=user)
    done = subprocess.run([sc.SHELL, "-c", sc.NONROOT_SCRIPT, "nonroot", "img", "IfNotPresent", "p", "box"], env=env, capture_output=True, text=True,
                          check=False)
    assert done.returncode == code
    assert message in done.stderr
    if code:
        line = done.stderr.strip()
        assert line.startswith(sc.NONROOT_MARKER)
        # The hook turns it into the kubelet's waiting reason (the image is there: not an image problem).
        error = hook.image_error({"image": "img", "imagePullPolicy": "IfNotPresent"}, line, exists=lambda _image: True)
        assert error["reason"] == sc.CONFIG_ERROR_REASON and "runAsNonRoot" in error["message"]


def test_non_root_script_pulls_a_missing_image_first_unless_never(fake_podman, tmp_path):
    marker, log, auth = tmp_path / "missing", tmp_path / "log", tmp_path / "auth.json"
    env = dict(os.environ, PATH=f"{fake_podman}:{os.environ['PATH']}", FAKE_USER="0", FAKE_MISSING=str(marker), FAKE_LOG=str(log))
    marker.write_text("")
    auth.write_text("{}")

    def check(policy, **extra):
        argv = [sc.SHELL, "-c", sc.NONROOT_SCRIPT, "n", "img", policy, "p", "box", str(auth)]
        return subprocess.run(argv, env=dict(env, **extra), capture_output=True, text=True, check=False)

    never = check("Never")
    assert never.returncode == 0 and marker.exists()  # nothing runs: podman run fails with ErrImageNeverPull
    # A failed pull fails the start with podman's error (never run an image whose user was not checked): ErrImagePull.
    failed = check("IfNotPresent", FAKE_PULL_FAILS="1")
    assert failed.returncode == 125 and marker.exists()
    line = failed.stderr.strip().splitlines()[-1]
    assert hook.nonroot_check_failed(line)
    assert hook.image_error({"image": "img", "imagePullPolicy": "IfNotPresent"}, line, exists=lambda _image: False)["reason"] == "ErrImagePull"
    pulled = check("IfNotPresent")
    assert pulled.returncode == 125 and not marker.exists() and "will run as root" in pulled.stderr
    assert f"pull -q --authfile={auth} img" in log.read_text()


def test_hook_and_module_agree_on_the_marker():
    assert hook.NONROOT_ERROR == sc.NONROOT_MARKER


def test_a_missing_seccomp_profile_is_create_container_error():
    # podman 4.3's words on a lab host for --security-opt=seccomp=<a missing file>.
    line = "Error: opening seccomp profile failed: open /var/lib/hostfleet/seccomp/audit.json: no such file or directory"
    error = hook.image_error({"image": "img", "imagePullPolicy": "IfNotPresent"}, line, exists=lambda _image: True)
    assert error == {"reason": "CreateContainerError", "message": line[len("Error: "):]}


@pytest.mark.parametrize("policy", ["Always", "OnRootMismatch"])
def test_fs_group_script_gives_the_volume_its_group_as_the_kubelet(tmp_path, policy):
    volume = tmp_path / "vol"
    (volume / "sub").mkdir(parents=True)
    (volume / "file").write_text("x")
    os.chmod(volume / "file", 0o600)
    group = os.getgid()
    done = subprocess.run([sc.SHELL, "-c", sc.FS_GROUP_SCRIPT, "fsgroup", str(group), policy, str(volume), str(tmp_path / "absent")], check=False)
    assert done.returncode == 0
    for directory in (volume, volume / "sub"):
        mode = os.stat(directory).st_mode
        assert mode & stat.S_ISGID and mode & 0o070 == 0o070 and os.stat(directory).st_gid == group
    assert os.stat(volume / "file").st_mode & 0o060 == 0o060


def test_fs_group_on_root_mismatch_skips_a_volume_whose_root_matches(tmp_path):
    volume = tmp_path / "vol"
    volume.mkdir()
    (volume / "file").write_text("x")
    os.chmod(volume / "file", 0o600)
    os.chmod(volume, 0o2770)
    subprocess.run([sc.SHELL, "-c", sc.FS_GROUP_SCRIPT, "fsgroup", str(os.getgid()), "OnRootMismatch", str(volume)], check=True)
    assert os.stat(volume / "file").st_mode & 0o777 == 0o600  # root matched: the tree was left alone
    subprocess.run([sc.SHELL, "-c", sc.FS_GROUP_SCRIPT, "fsgroup", str(os.getgid()), "Always", str(volume)], check=True)
    assert os.stat(volume / "file").st_mode & 0o060 == 0o060


PROFILE_PARTS = st.text(alphabet="abcXYZ019._-", min_size=1, max_size=12).filter(lambda part: part not in (".", ".."))


@settings(max_examples=100, deadline=None)
@given(parts=st.lists(PROFILE_PARTS, min_size=1, max_size=4), state=st.sampled_from([STATE, "/srv/state dir/100%"]))
def test_seccomp_profile_paths_read_back_exactly(parts, state):
    """A Localhost profile reaches podman as exactly <state_dir>/seccomp/<profile>, whatever the state_dir."""
    profile = "/".join(parts)
    spec = {"containers": [dict(BOX, securityContext={"seccompProfile": {"type": "Localhost", "localhostProfile": profile}})]}
    pod = {"name": "p", "labels": {}, "annotations": {}, "revision": "", "spec": normal(spec)}
    text = units.render_pod(pod, "Pod/p", {}, state, PY, RUN)["hf-p.box.service"]
    (line,) = unit_values(text, "ExecStart")
    assert f"--security-opt=seccomp={state}/seccomp/{profile}" in words(line)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.from_regex(r"[0-9][0-9 ,-]{0,20}", fullmatch=True).map(str.strip).filter(bool), min_size=1, max_size=1))
def test_sysctl_values_read_back_exactly(values):
    spec = {"securityContext": {"sysctls": [{"name": "kernel.shm_rmid_forced", "value": values[0]}]}, "containers": [BOX]}
    assert f"--sysctl=kernel.shm_rmid_forced={values[0]}" in podman_argv(spec)


def test_a_refused_image_user_backs_off_and_waits_with_create_container_config_error(tmp_path, monkeypatch):
    """The check is an ExecStartPre=: podman run never ran and systemd sets no EXIT_CODE. Without this, the hook took it
    for a start that failed before the process (no backoff: systemd restarted the unit dozens of times a second)."""
    import json

    run_dir = tmp_path / "run" / "pods"
    monkeypatch.setattr(hook, "RUN_DIR", str(run_dir))
    sleeps = []
    monkeypatch.setattr(hook.time, "sleep", sleeps.append)
    state = tmp_path / "state"
    (state / "pods" / "web").mkdir(parents=True)
    spec = {"name": "main", "image": "busybox:1.28", "imagePullPolicy": "IfNotPresent", "securityContext": {"runAsNonRoot": True}}
    (state / "pods" / "web" / "pod.json").write_text(json.dumps({"spec": {"runtimeClassName": "podman", "containers": [spec]}}))
    line = 'Error: container has runAsNonRoot and image will run as root (pod: "web", container: main)'
    monkeypatch.setattr(hook, "unit_error_line", lambda unit: line)
    monkeypatch.setattr(hook, "image_exists", lambda image: True)
    monkeypatch.delenv("EXIT_CODE", raising=False)
    monkeypatch.delenv("EXIT_STATUS", raising=False)
    monkeypatch.setenv("SERVICE_RESULT", "exit-code")
    for attempt in (1, 2):
        hook.cmd_pre(str(state), "web", "main")
        hook.cmd_exited(str(state), "web", "main")
        got = json.loads((run_dir / "web" / "main" / "status.json").read_text())
        assert got["consecutive_failures"] == attempt and got["starts"] == 0 and "last_exit" not in got
        assert got["image_error"] == {"reason": sc.CONFIG_ERROR_REASON, "message": line[len("Error: "):]}
    hook.cmd_pre(str(state), "web", "main")
    assert sleeps == [10]  # the crash-loop backoff, as for a missing image


def test_the_normal_form_is_valid_input_and_its_own_normal_form():
    """Nodes validate what controllers send: every field kept must read back as itself."""
    spec = {
        "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000, "fsGroupChangePolicy": "OnRootMismatch",
                            "supplementalGroups": [4000, 4000], "seccompProfile": {"type": "RuntimeDefault"},
                            "sysctls": [{"name": "kernel.shm_rmid_forced", "value": 1}]},
        "shareProcessNamespace": True,
        "hostIPC": False,
        "containers": [dict(BOX, securityContext={"capabilities": {"add": ["cap_net_admin"], "drop": ["all"]}, "readOnlyRootFilesystem": True,
                                                  "allowPrivilegeEscalation": False, "appArmorProfile": {"type": "Unconfined"}}),
                       dict(BOX, name="two", securityContext={"privileged": True, "runAsUser": 0})],
    }
    form = normal(spec)
    assert form["securityContext"] == {"fsGroup": 2000, "fsGroupChangePolicy": "OnRootMismatch", "supplementalGroups": [4000],
                                       "sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"}]}
    assert form["containers"][0]["securityContext"]["capabilities"] == {"add": ["NET_ADMIN"], "drop": ["ALL"]}
    assert form["shareProcessNamespace"] is True and "hostIPC" not in form
    again = dict(form, volumes=[])
    assert normal(again) == form
