# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pod hook: a standalone stdlib script that systemd runs around each container.

The node module installs this file's own source on the host (as
``<state>/bin/hostfleet-hook``) and the rendered units call it:

- ``pre``: before each start; counts starts and sleeps the crash-loop backoff
  (systemd 252 has no RestartSteps=, and its start limit would leave a
  crash-looping unit failed for good, unlike Kubernetes).
- ``post``: after the process started; records the start time.
- ``exited``: after the process ended (ExecStopPost); records the exit.
- ``probe KIND``: run by a timer per probe (startup, liveness, readiness);
  liveness/startup failures restart the container through systemctl, so
  liveness needs no daemon of ours.
- ``handler postStart|preStop``: lifecycle handlers of kind httpGet/tcpSocket/sleep.

Runtime state lives in /run/hostfleet/pods/<pod>/<container>/ (volatile, like
a container's state after a reboot); the spec is read from the pod's record
under the state directory.
"""

from __future__ import annotations

# A standalone script run by systemd, not by AnsibleModule: print, sys.exit and subprocess are its tools.
# pylint: disable=ansible-bad-function
import json
import os
import signal
import socket
import subprocess
import sys
import time

# Both inlined by the node layer when it installs this script (converge.hook_script_source): the fence of pods a
# host back from a long absence must not serve (fence.py), and one atomic-write helper. Inlined too: the gRPC health
# check of probes of type grpc (grpc_probe.py) and the pods' registry auth files (registry_auth.py).
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.fence import FENCE_REASON, beat, pod_fence
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.fileio import ensure_dir, write_atomic
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.grpc_probe import grpc_health_check
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.registry_auth import registry_auth_write

RUN_DIR = "/run/hostfleet/pods"
BACKOFF_BASE = 10.0
BACKOFF_CAP = 300.0
# A container that ran this long without failing starts over with no backoff (as the kubelet does).
BACKOFF_RESET_AFTER = 600.0
PODMAN = "/usr/bin/podman"
# podman run's exit status for an error of podman itself (not of the container's process).
PODMAN_ERROR = 125
# What podman says when a pull fails (4.3: "initializing source docker://...", "pinging container registry", ...).
# What the runAsNonRoot check of an image container's user prints (security_context.NONROOT_MARKER).
NONROOT_ERROR = "Error: container has runAsNonRoot and image"
# What podman 4.3 says when a seccompProfile Localhost file cannot be read.
SECCOMP_ERROR = "opening seccomp profile failed"
PULL_ERROR_MARKERS = ("initializing source", "pinging container registry", "manifest unknown", "unable to pull", "image not known", "reading manifest")


def runtime_dir(pod, container):
    return os.path.join(RUN_DIR, pod, container)


def read_json(path, default=None):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return default


def write_json(path, data):
    # /run is tmpfs: nothing to fsync.
    write_atomic(path, json.dumps(data, sort_keys=True), 0o644, fsync=False)


def event(reason, pod, container, message, event_type="Normal"):
    """One structured journal entry that workload_info reads back as an event (module_utils/node/events.py)."""
    fields = {"MESSAGE": message, "SYSLOG_IDENTIFIER": "hostfleet-event", "PRIORITY": "4" if event_type == "Warning" else "6",
              "HF_REASON": reason, "HF_TYPE": event_type, "HF_POD": pod, "HF_CONTAINER": container}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto("".join(f"{k}={v}\n" for k, v in fields.items()).encode("utf-8", "replace"), "/run/systemd/journal/socket")
    except OSError:
        pass  # an event lost must not stop a container


# The host's network sync (module_utils/network/sync.py), installed next to this hook by the node layer.
NETWORK_SYNC = "hostfleet-net"


def network_sync(state_dir):
    """Run the network sync after a readiness transition of a container, so that this node's level 2 of the
    Services (nftables) and its DNS records follow at once (docs/network.md). Nothing to do without the cluster
    network (no node.json); a failed sync must not stop a container: it says why in the journal."""
    script = os.path.join(state_dir, "bin", NETWORK_SYNC)
    if not os.path.exists(os.path.join(state_dir, "network", "node.json")) or not os.path.exists(script):
        return
    # The runtime root is the one this hook keeps the containers' readiness in (RUN_DIR is its pods/ directory).
    argv = [sys.executable, "-I", "-S", script, "sync", state_dir, os.path.dirname(RUN_DIR)]
    try:
        # systemd runs a pod-network container's '+' hooks in the pod's network namespace (NetworkNamespacePath=
        # applies to them too), where nft would load the rules into a table of the pod's: the host's is PID 1's.
        if os.readlink("/proc/self/ns/net") != os.readlink("/proc/1/ns/net"):
            argv = ["nsenter", "--net=/proc/1/ns/net"] + argv
    except OSError:
        pass  # PID 1's namespace cannot be read: not a pod's hook run by systemd
    try:
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"network sync failed: {exc}", file=sys.stderr)
        return
    if done.returncode != 0 or done.stderr:
        print(f"network sync: {done.stderr.strip()}", file=sys.stderr)


def backoff_delay(consecutive_failures):
    """Seconds to wait before the next start: the first restart is immediate, then 10 s doubling, capped at 5 min."""
    if consecutive_failures < 2:
        return 0.0
    # Exponent capped first: 2**1024 no longer converts to a float (after days of crash loop).
    return min(BACKOFF_BASE * (2 ** min(consecutive_failures - 2, 32)), BACKOFF_CAP)


def load_container(state_dir, pod, container):
    record = read_json(os.path.join(state_dir, "pods", pod, "pod.json"), {})
    pod_spec = record.get("spec", {})
    # Init containers and sidecars (init_containers.py) have their runtime files like the app containers.
    for spec in pod_spec.get("containers", []) + (pod_spec.get("initContainers") or []):
        if spec.get("name") == container:
            return record, spec
    return record, None


def cmd_init_start(pod, container):
    """A plain init container's process starts now (ExecStartPre=, after 'pre' and its backoff): its oneshot unit
    never runs ExecStartPost= before the process ended, so the start is recorded here."""
    rdir = runtime_dir(pod, container)
    status = read_json(os.path.join(rdir, "status.json"), {})
    status.update(started_at=time.time(), running=True, backoff_until=None)
    status.pop("completed", None)
    status.pop("image_error", None)
    write_json(os.path.join(rdir, "status.json"), status)


def cmd_init_done(pod, container):
    """A plain init container exited 0 (its oneshot unit's ExecStartPost=): Completed; the units after it start now."""
    rdir = runtime_dir(pod, container)
    status = read_json(os.path.join(rdir, "status.json"), {})
    now = time.time()
    status.update(running=False, completed=now, consecutive_failures=0)
    status["last_exit"] = {"exit_code": 0, "code": "exited", "status": "0", "result": "success", "reason": "Completed", "finished_at": now,
                           "started_at": status.get("started_at")}
    write_json(os.path.join(rdir, "status.json"), status)


def cmd_sidecar_started(pod, container):
    """A sidecar with a startup probe (its ExecStartPost=): its start ends once the probe passed, so the containers
    after it start then (Kubernetes' rule); 1 when its process ended meanwhile (systemd restarts it)."""
    rdir = runtime_dir(pod, container)
    main_pid = os.environ.get("MAINPID", "")
    while not os.path.exists(os.path.join(rdir, "startup_ok")):
        if main_pid and not os.path.exists(f"/proc/{main_pid}"):
            return 1
        time.sleep(0.2)
    return 0


def stop_sidecars_when_done(state_dir, pod, record):
    """Once the app containers of a pod with restartPolicy Never or OnFailure are done for good (a Job's pod), its
    sidecars (init containers with restartPolicy Always) are stopped, as Kubernetes does: they must not keep the pod
    from completing. One systemctl call: their After= ordering stops them in reverse order."""
    spec = record.get("spec") or {}
    sidecars = [c["name"] for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    policy = spec.get("restartPolicy")
    if not sidecars or policy not in ("Never", "OnFailure"):
        return
    for app in spec.get("containers") or []:
        status = read_json(os.path.join(runtime_dir(pod, app["name"]), "status.json"), {})
        last = status.get("last_exit")
        if status.get("running") or not last or (policy == "OnFailure" and last.get("exit_code") != 0):
            return
    event("Killing", pod, sidecars[0], "Stopping sidecar containers: the pod's containers completed")
    subprocess.run(["systemctl", "--no-block", "stop"] + [f"hf-{pod}.{name}.service" for name in sidecars], check=False)


def load_env(state_dir, pod, container):
    """Parse the container's env file (written by the node module in systemd's double-quoted form)."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    try:
        # newline="": universal newlines would turn a '\r' in a value into '\n'.
        with open(os.path.join(state_dir, "pods", pod, "env", f"{container}.env"), newline="") as handle:
            text = handle.read()
    except OSError:
        return env
    i = 0
    while i < len(text):
        eq = text.find("=", i)
        if eq < 0:
            break
        name = text[i:eq].strip()
        i = eq + 2  # skip '="'
        value = []
        while i < len(text) and text[i] != '"':
            if text[i] == "\\" and i + 1 < len(text):
                i += 1
            value.append(text[i])
            i += 1
        env[name] = "".join(value)
        i = text.find("\n", i) + 1 if text.find("\n", i) >= 0 else len(text)
    return env


def cmd_pre(state_dir, pod, container):
    rdir = runtime_dir(pod, container)
    ensure_dir(rdir, 0o755)
    status = read_json(os.path.join(rdir, "status.json"), {})
    fenced = pod_fence(state_dir, pod)
    if fenced:
        hold_fenced(pod, container, rdir, status, fenced)
    status.pop("fenced", None)
    status["starts"] = status.get("starts", 0) + 1
    reset_marker = os.path.join(rdir, "reset")
    if os.path.exists(reset_marker):
        # The node module (re)started this container on purpose: no backoff, restart count from zero.
        status = {"starts": 1}
        os.unlink(reset_marker)
    pull_auth_missing(state_dir, pod, container, rdir, status)
    delay = backoff_delay(status.get("consecutive_failures", 0))
    status["backoff_until"] = time.time() + delay if delay else None
    was_running = status.get("running", False)
    write_json(os.path.join(rdir, "status.json"), status)
    was_ready = os.path.exists(os.path.join(rdir, "ready"))
    for name in ("ready", "startup_ok", "probe-startup.json", "probe-liveness.json", "probe-readiness.json", "kill_reason", "terminating"):
        try:
            os.unlink(os.path.join(rdir, name))
        except FileNotFoundError:
            pass
    if was_running or was_ready:
        network_sync(state_dir)  # readiness cleared: the pod leaves this node's Service rules
    if delay:
        event("BackOff", pod, container, f"Back-off {delay:g}s restarting failed container {container}", "Warning")
        time.sleep(delay)


def pull_auth_missing(state_dir, pod, container, rdir, status):
    """Before each start of an image container of a pod with imagePullSecrets: its auth file from the Secrets as they
    are now, as the kubelet reads them at each pull (registry_auth.py); those it could not use go in ``status``."""
    record, spec = load_container(state_dir, pod, container)
    secrets = ((record or {}).get("spec") or {}).get("imagePullSecrets")
    status.pop("pull_secrets_missing", None)
    if not secrets or not (spec or {}).get("image"):
        return
    try:
        missing = registry_auth_write(state_dir, pod, secrets, os.path.dirname(rdir))
    except OSError as exc:
        missing = [f"{', '.join(secrets)} (the auth file could not be written: {exc.strerror})"]
    if missing:
        status["pull_secrets_missing"] = missing
        message = f"Unable to retrieve some image pull secrets ({', '.join(missing)}); attempting to pull the image may not succeed."
        event("FailedToRetrieveImagePullSecret", pod, container, message, "Warning")


def hold_fenced(pod, container, rdir, status, message):
    """Do not start this container (fence.py): no process, no restart, Pending/NodeFenced until a run lifts the fence."""
    status["fenced"] = {"reason": FENCE_REASON, "message": message}
    write_json(os.path.join(rdir, "status.json"), status)
    event(FENCE_REASON, pod, container, f"Container {container} not started: {message}", "Warning")
    # An explicit stop cancels this start job: Restart= does not apply. Its SIGTERM ends this hook cleanly, so the
    # unit ends inactive, not failed (a failed unit would mark the whole host degraded).
    signal.signal(signal.SIGTERM, lambda *_args: os._exit(0))
    subprocess.run(["systemctl", "--no-block", "stop", f"hf-{pod}.{container}.service"], check=False)
    time.sleep(30)  # ended by that stop meanwhile; a failed start after it (stop refused) is retried no faster
    sys.exit(1)


def cmd_post(state_dir, pod, container):
    rdir = runtime_dir(pod, container)
    ensure_dir(rdir, 0o755)
    status = read_json(os.path.join(rdir, "status.json"), {})
    status["started_at"] = time.time()
    status["running"] = True
    status["backoff_until"] = None
    status.pop("image_error", None)
    write_json(os.path.join(rdir, "status.json"), status)
    network_sync(state_dir)  # running now: ready at once when the container has no readiness or startup probe


def cmd_exited(state_dir, pod, container):
    rdir = runtime_dir(pod, container)
    ensure_dir(rdir, 0o755)
    status = read_json(os.path.join(rdir, "status.json"), {})
    now = time.time()
    code, value, result = os.environ.get("EXIT_CODE", ""), os.environ.get("EXIT_STATUS", ""), os.environ.get("SERVICE_RESULT", "")
    try:
        with open(os.path.join(rdir, "kill_reason")) as handle:
            reason = handle.read().strip()
    except OSError:
        reason = ""
    if not status.get("running") and not code and result == "exit-code" and nonroot_check_failed(unit_error_line(f"hf-{pod}.{container}.service")):
        # The runAsNonRoot check (an ExecStartPre=) refused the image's user or could not pull the image: podman run never
        # ran, so systemd gives no exit status; taken as podman's own error, so the backoff and the waiting reason
        # follow as for a missing image.
        code, value = "exited", str(PODMAN_ERROR)
    if not status.get("running") and (not code or status.get("fenced")):
        return  # the start itself failed (or was fenced) before the process ran: 'pre' will count the next try
    if status.get("completed") and not status.get("running"):
        return  # a plain init container's unit stopped after it completed (init-done): nothing ended now
    if not status.get("running") and code == "exited" and value == str(PODMAN_ERROR):
        record, spec = load_container(state_dir, pod, container)
        error = image_error(spec or {}, unit_error_line(f"hf-{pod}.{container}.service")) if podman_prefix(record, pod, container, spec) else None
        if error is not None:
            # As the kubelet: a container whose image is missing never ran, so this is no restart and no exit.
            status["starts"] = max(0, status.get("starts", 1) - 1)
            status["consecutive_failures"] = status.get("consecutive_failures", 0) + 1
            if error["reason"] == "ErrImagePull" and status.get("pull_secrets_missing"):
                # The kubelet pulls without the Secrets it could not retrieve: the failure names them.
                error["message"] += f" (image pull secrets not retrieved: {', '.join(status['pull_secrets_missing'])})"
            status["image_error"] = error
            write_json(os.path.join(rdir, "status.json"), status)
            return
    exit_code = int(value) if code == "exited" and value.isdigit() else (128 + _signal_number(value) if code in ("killed", "dumped") else None)
    ran = now - status.get("started_at", now)
    # A stop that systemd was asked for (TERM from `systemctl stop/restart`) is no crash; any other end of the
    # process feeds the crash-loop backoff, whatever its exit code, as with the kubelet.
    requested_stop = result == "success" and code == "killed" and value == "TERM" and not reason
    if os.path.exists(os.path.join(rdir, "reset")):
        status["consecutive_failures"] = 0
    elif not requested_stop:
        status["consecutive_failures"] = 1 if ran >= BACKOFF_RESET_AFTER else status.get("consecutive_failures", 0) + 1
    status["running"] = False
    status["last_exit"] = {
        "exit_code": exit_code,
        "code": code,
        "status": value,
        "result": result,
        "reason": reason or ("Completed" if exit_code == 0 else "Error"),
        "finished_at": now,
        "started_at": status.get("started_at"),
    }
    write_json(os.path.join(rdir, "status.json"), status)
    network_sync(state_dir)  # the process ended (a kill -9 too): no longer ready
    record, spec = load_container(state_dir, pod, container)
    if spec is not None and any(c.get("name") == container for c in (record.get("spec") or {}).get("containers") or []):
        stop_sidecars_when_done(state_dir, pod, record)


def _signal_number(name):
    import signal

    try:
        return int(getattr(signal, name if name.startswith("SIG") else f"SIG{name}"))
    except (AttributeError, TypeError, ValueError):
        return 0


def unit_error_line(unit):
    """podman's last 'Error: ...' line in the unit's journal ('' when there is none)."""
    try:
        out = subprocess.run(["journalctl", "-u", unit, "-n", "20", "-o", "cat", "--no-pager"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    # (ExecStop/ExecStopPost's podman stop/rm complain after podman run when it never wrote the container-ID file)
    errors = [line.strip() for line in out.splitlines() if line.strip().startswith("Error:") and "CIDFile" not in line]
    return errors[-1] if errors else ""


def nonroot_check_failed(error_line):
    """True when the journal's last error line is the runAsNonRoot check's (security_context.NONROOT_SCRIPT): its verdict,
    or the failed pull of the image it checks."""
    return error_line.startswith(NONROOT_ERROR) or any(marker in error_line for marker in PULL_ERROR_MARKERS)


def image_exists(image):
    try:
        return subprocess.run([PODMAN, "image", "exists", image], capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return True  # unknown: not reported as an image problem


def image_error(spec, error_line, exists=None):
    """Kubernetes' waiting reason when podman could not start a container for its image, else None.

    podman run ends with PODMAN_ERROR for any error of its own; only a missing image or a failed pull is an image
    problem (ErrImageNeverPull / ErrImagePull, then ImagePullBackOff while the backoff waits).
    """
    image, policy = spec.get("image"), spec.get("imagePullPolicy")
    if not image:
        return None
    if error_line.startswith(NONROOT_ERROR):
        # The unit's runAsNonRoot check of the image's user (security_context.NONROOT_SCRIPT), as the kubelet's.
        return {"reason": "CreateContainerConfigError", "message": error_line[len("Error: "):]}
    if SECCOMP_ERROR in error_line:
        # A seccompProfile Localhost file missing or unreadable on this host: the kubelet's CreateContainerError.
        return {"reason": "CreateContainerError", "message": error_line[len("Error: "):]}
    exists = exists or image_exists
    pull_failed = any(marker in error_line for marker in PULL_ERROR_MARKERS)
    if policy == "Never" and not exists(image):
        return {"reason": "ErrImageNeverPull", "message": f'Container image "{image}" is not present with pull policy of Never'}
    if policy != "Never" and (pull_failed or not exists(image)):
        detail = f": {error_line[len('Error:'):].strip()}" if error_line else ""
        return {"reason": "ErrImagePull", "message": f'failed to pull image "{image}"{detail}'}
    return None


def podman_prefix(record, pod, container, spec):
    """argv prefix that runs a command inside the pod's podman container (exec probes), or None for a process pod."""
    if (record.get("spec") or {}).get("runtimeClassName") != "podman":
        return None
    security = (spec or {}).get("securityContext") or {}
    argv = [PODMAN, "exec"]
    if security.get("runAsUser") is not None:
        group = f":{security['runAsGroup']}" if security.get("runAsGroup") is not None else ""
        argv.append(f"--user={security['runAsUser']}{group}")
    return argv + [f"hf-{pod}.{container}"]


# The namespaces of a process container that its exec probes join (when they differ from the hook's): the mount
# namespace holds its volumes (BindPaths=); net once a pod has its own. Not pid/user/cgroup: systemd gives it none.
NAMESPACE_FLAGS = {"mnt": 0x00020000, "net": 0x40000000, "ipc": 0x08000000, "uts": 0x04000000}


def process_credentials(status_text):
    """(uid, gid, supplementary groups) from the text of /proc/PID/status (effective IDs), or None."""
    fields = {}
    for line in status_text.splitlines():
        key, _sep, value = line.partition(":")
        fields[key.strip()] = value.split()
    try:
        return int(fields["Uid"][1]), int(fields["Gid"][1]), [int(group) for group in fields.get("Groups", [])]
    except (KeyError, IndexError, ValueError):
        return None


def container_process(pod, container, spec, proc="/proc"):
    """Where an exec probe of a process container runs, as Kubernetes runs it inside the container: the namespaces,
    credentials (those of its main process) and working directory (spec.workingDir); None when the container has no
    running main process (the probe then fails, as Kubernetes')."""
    try:
        shown = subprocess.run(["systemctl", "show", "--property=MainPID", "--value", f"hf-{pod}.{container}.service"],
                               capture_output=True, text=True, timeout=10, check=False).stdout
        pid = int((shown or "").strip() or 0)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        with open(f"{proc}/{pid}/status") as handle:
            credentials = process_credentials(handle.read())
        namespaces = [kind for kind in NAMESPACE_FLAGS if os.readlink(f"{proc}/{pid}/ns/{kind}") != os.readlink(f"{proc}/self/ns/{kind}")]
    except OSError:
        return None  # ended meanwhile
    if credentials is None:
        return None
    uid, gid, groups = credentials
    return {"pid": pid, "namespaces": namespaces, "uid": uid, "gid": gid, "groups": groups, "cwd": spec.get("workingDir") or "/"}


def _setns(fd, flag):
    if hasattr(os, "setns"):  # Python 3.12+
        os.setns(fd, flag)
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, flag) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def enter_container(target, proc="/proc"):
    """A preexec_fn that puts the probe's process into the container ``target`` (container_process) before exec.

    Done in the child rather than with nsenter: the container's environment (its env file, user-defined, may hold
    LD_PRELOAD) must reach only the probe's command, after the credentials change, never a program run as root.
    The namespace files are opened at once (the process could end before the fork) and joined in the child; then
    the working directory (inside the container's mounts) and the credentials, which drop root last.
    """
    fds = [(os.open(f"{proc}/{target['pid']}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC), NAMESPACE_FLAGS[kind]) for kind in target["namespaces"]]

    def enter():
        for fd, flag in fds:
            _setns(fd, flag)
            os.close(fd)
        os.chdir(target["cwd"])
        if (os.geteuid(), os.getegid(), sorted(os.getgroups())) != (target["uid"], target["gid"], sorted(target["groups"])):
            os.setgroups(target["groups"])
            os.setgid(target["gid"])
            os.setuid(target["uid"])

    def close():
        for fd, _flag in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    return enter, close


def _exits_zero(argv, timeout, **kwargs):
    """True when ``argv`` exits 0 within ``timeout`` (output discarded); False when it fails or cannot run."""
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
            **kwargs,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def probe_host(host, pod_ip):
    """Where an httpGet/tcpSocket handler connects: a pod on the pod network is reached at its own address (as the
    kubelet's default host, the pod IP) when the spec names no other host; the hook itself runs in the host's network."""
    return pod_ip if pod_ip and host in LOOPBACK_HOSTS else host


def pod_ip_of(record):
    """The pod's address on the pod network (its record's, podnet.py), or None on the host's network."""
    network = (record or {}).get("network")
    return network.get("ip") if isinstance(network, dict) else None


def run_handler(handler, env, spec, timeout, exec_prefix=None, target=None, pod_ip=None):
    """Run an exec/httpGet/tcpSocket/sleep handler; True on success. ``exec_prefix``: run exec inside a podman
    container; ``target``: inside a process container (container_process); ``pod_ip``: the pod's own address."""
    if "exec" in handler and target is not None:
        try:
            enter, close = enter_container(target)
        except OSError:
            return False  # the process ended: no namespace to join
        try:
            return _exits_zero(handler["exec"]["command"], timeout, env=env, preexec_fn=enter)  # noqa: PLW1509 - the hook is single-threaded
        finally:
            close()
    if "exec" in handler and exec_prefix is not None:
        return _exits_zero(exec_prefix + handler["exec"]["command"], timeout)
    if "exec" in handler:
        security = spec.get("securityContext") or {}
        kwargs = {}
        if security.get("runAsGroup") is not None:
            kwargs["group"] = security["runAsGroup"]
        if security.get("runAsUser") is not None:
            kwargs["user"] = security["runAsUser"]
            kwargs.setdefault("extra_groups", [])
        return _exits_zero(handler["exec"]["command"], timeout, env=env, cwd=spec.get("workingDir") or "/", **kwargs)
    if "httpGet" in handler:
        import http.client
        import ssl

        get = handler["httpGet"]
        try:
            if get["scheme"] == "HTTPS":
                conn = http.client.HTTPSConnection(probe_host(get["host"], pod_ip), get["port"], timeout=timeout, context=ssl._create_unverified_context())  # noqa: S323 - probes skip verification, as the kubelet does
            else:
                conn = http.client.HTTPConnection(probe_host(get["host"], pod_ip), get["port"], timeout=timeout)
            headers = {h["name"]: h["value"] for h in get.get("httpHeaders", [])}
            headers.setdefault("User-Agent", "hostfleet-probe/1.0")
            conn.request("GET", get["path"], headers=headers)
            response = conn.getresponse()
            conn.close()
            return 200 <= response.status < 400
        except (OSError, http.client.HTTPException):
            return False
    if "tcpSocket" in handler:
        try:
            with socket.create_connection((probe_host(handler["tcpSocket"]["host"], pod_ip), handler["tcpSocket"]["port"]), timeout=timeout):
                return True
        except OSError:
            return False
    if "sleep" in handler:
        time.sleep(handler["sleep"]["seconds"])
        return True
    return False


def cmd_probe(state_dir, pod, container, kind):
    rdir = runtime_dir(pod, container)
    record, spec = load_container(state_dir, pod, container)
    status = read_json(os.path.join(rdir, "status.json"), {})
    probe = (spec or {}).get(f"{kind}Probe")
    if not probe or not status.get("running"):
        return
    now = time.time()
    if now - status.get("started_at", now) < probe["initialDelaySeconds"]:
        return
    startup_done = os.path.exists(os.path.join(rdir, "startup_ok"))
    if kind == "startup" and startup_done:
        return
    if kind != "startup" and spec.get("startupProbe") and not startup_done:
        return  # the startup probe holds off the others
    exec_prefix = podman_prefix(record, pod, container, spec)
    target = container_process(pod, container, spec) if "exec" in probe and exec_prefix is None else None
    detail = None  # the kubelet's words for a failure, where the probe gives them (grpc)
    if "grpc" in probe:
        # As the kubelet: the pod's own address (the host's loopback for a pod on the host's network), from the host.
        host = probe_host(LOOPBACK_HOSTS[0], pod_ip_of(record))
        ok, detail = grpc_health_check(host, probe["grpc"]["port"], probe["grpc"]["service"], probe["timeoutSeconds"])
    elif "exec" in probe and exec_prefix is None and target is None:
        ok = False  # no running process to exec in (as Kubernetes): never on the host
    elif target is not None:
        ok = run_handler(probe, load_env(state_dir, pod, container), spec, probe["timeoutSeconds"], target=target)
    else:
        ok = run_handler(probe, load_env(state_dir, pod, container), spec, probe["timeoutSeconds"], exec_prefix, pod_ip=pod_ip_of(record))
    counters_path = os.path.join(rdir, f"probe-{kind}.json")
    counters = read_json(counters_path, {"successes": 0, "failures": 0})
    if ok:
        counters = {"successes": counters["successes"] + 1, "failures": 0, "last": now}
    else:
        counters = {"successes": 0, "failures": counters["failures"] + 1, "last": now}
    write_json(counters_path, counters)
    if not ok:
        failed = f"{kind.capitalize()} probe failed ({counters['failures']}/{probe['failureThreshold']})"
        event("Unhealthy", pod, container, f"{failed}: {detail}" if detail else failed, "Warning")
    if kind == "readiness":
        ready_path = os.path.join(rdir, "ready")
        if ok and counters["successes"] >= probe["successThreshold"] and not os.path.exists(ready_path):
            write_json(ready_path, {"since": now})
            network_sync(state_dir)
        elif not ok and counters["failures"] >= probe["failureThreshold"] and os.path.exists(ready_path):
            os.unlink(ready_path)
            network_sync(state_dir)
        return
    if kind == "startup" and ok:
        write_json(os.path.join(rdir, "startup_ok"), {"since": now})
        if not spec.get("readinessProbe"):
            network_sync(state_dir)  # the startup probe was what held readiness
        return
    if not ok and counters["failures"] >= probe["failureThreshold"]:
        reason = "StartupProbeFailed" if kind == "startup" else "LivenessProbeFailed"
        write_atomic(os.path.join(rdir, "kill_reason"), reason, 0o644, fsync=False)
        unit = f"hf-{pod}.{container}.service"
        # As the kubelet: the container is killed and restartPolicy decides; Never means it stays down.
        # (A sidecar restarts whatever the pod's policy: init_containers.restart_setting.)
        verb = "stop" if record.get("spec", {}).get("restartPolicy") == "Never" and spec.get("restartPolicy") != "Always" else "restart"
        event("Killing", pod, container, f"Container {container} failed {kind} probe, will be {'stopped' if verb == 'stop' else 'restarted'}")
        subprocess.run(["systemctl", "--no-block", verb, unit], check=False)
        print(f"{kind} probe failed {counters['failures']} times: {verb} {unit}", file=sys.stderr)


def cmd_handler(state_dir, pod, container, which):
    record, spec = load_container(state_dir, pod, container)
    handler = ((spec or {}).get("lifecycle") or {}).get(which)
    if not handler:
        return 0
    if which == "preStop" and not os.environ.get("MAINPID"):
        return 0  # the process already ended by itself: nothing to stop gracefully
    grace = 30
    return 0 if run_handler(handler, load_env(state_dir, pod, container), spec, grace, pod_ip=pod_ip_of(record)) else 1


def main(argv):
    usage = "usage: hostfleet-hook pre|post|init-start|init-done|sidecar-started|exited|heartbeat|probe KIND|handler NAME STATE_DIR POD CONTAINER"
    if len(argv) < (5 if argv and argv[0] in ("probe", "handler") else 4):
        print(usage, file=sys.stderr)
        return 2
    action = argv[0]
    if action in ("probe", "handler"):
        extra, state_dir, pod, container = argv[1], argv[2], argv[3], argv[4]
    else:
        extra, state_dir, pod, container = None, argv[1], argv[2], argv[3]
    if action == "heartbeat":
        beat(state_dir)
    elif action == "pre":
        cmd_pre(state_dir, pod, container)
    elif action == "post":
        cmd_post(state_dir, pod, container)
    elif action == "init-start":
        cmd_init_start(pod, container)
    elif action == "init-done":
        cmd_init_done(pod, container)
    elif action == "sidecar-started":
        return cmd_sidecar_started(pod, container)
    elif action == "exited":
        cmd_exited(state_dir, pod, container)
    elif action == "probe":
        cmd_probe(state_dir, pod, container, extra)
    elif action == "handler":
        return cmd_handler(state_dir, pod, container, extra)
    else:
        print(f"unknown action {action!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
