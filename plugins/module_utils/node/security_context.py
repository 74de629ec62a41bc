# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pod and container security contexts, hostPID/hostIPC/shareProcessNamespace: validation and what they render.

Pure (no I/O). Kubernetes' semantics: a container's securityContext overrides the pod's where both set a field; what
a host cannot honour is refused naming the field and why (docs/podspec-security.md). Every field enters the normal
form only when it is set to something other than Kubernetes' default, so the revision hash of a spec that does not
use it, and its unit files, stay as they were.

- process pods (host processes under systemd): systemd directives (CapabilityBoundingSet=, AmbientCapabilities=,
  NoNewPrivileges=, ProtectSystem=strict, SystemCallFilter=, SupplementaryGroups=) and, for fsGroup, a root
  ExecStartPre= that gives the pod's volumes their group as the kubelet does;
- podman pods: podman run flags (--cap-drop/--cap-add, --security-opt, --read-only, --privileged, --group-add,
  --sysctl, --pid, --ipc) and, for runAsNonRoot without runAsUser, a check of the image's user before each start.
"""

from __future__ import annotations

import re

# podspec imports this module: podspec's names are looked up at call time (podspec.SpecError, ...).
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import podspec, registry_auth

# Linux capabilities by number (linux/capability.h, 6.x): systemd 252 and podman 4.3 know them all.
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT",
    "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE",
    "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
    "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)  # fmt: skip
ALL = "ALL"
# The container runtime's default set that Kubernetes' containers start with (containerd's and Docker's: CapPrm
# 00000000a80425fb in kubernetes.io's "Configure a Security Context" page). A container whose securityContext says
# `capabilities` gets exactly this set minus `drop` plus `add`, on both runtimes.
DEFAULT_CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE",
    "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)  # fmt: skip
SECCOMP_TYPES = ("RuntimeDefault", "Unconfined", "Localhost")
APPARMOR_TYPES = ("RuntimeDefault", "Unconfined", "Localhost")
PROC_MOUNT_TYPES = ("Default", "Unmasked")
FS_GROUP_CHANGE_POLICIES = ("OnRootMismatch", "Always")
# Kubernetes' safe sysctls (pkg/kubelet/sysctl/safe_sysctls.go): namespaced, allowed by default.
SAFE_SYSCTLS = (
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
)
# The values of those sysctls: numbers, ranges and lists of them ("32768 60999", "8080,9148-9150").
_SYSCTL_VALUE = re.compile(r"[0-9][0-9 ,\t-]{0,255}")
# A seccomp Localhost profile: a relative path under <state_dir>/seccomp (the kubelet's <root-dir>/seccomp).
_PROFILE_PART = re.compile(r"[A-Za-z0-9._-]+")
# An AppArmor profile name as podman's --security-opt=apparmor= takes it.
_APPARMOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,252}")
GID_MAX = 4294967294
# Kubernetes' "kubelet validates the image" errors (kuberuntime_container_linux.go verifyRunAsNonRoot), the waiting
# reason the hook reports for them (hook.py), and the marker it finds in the unit's journal.
CONFIG_ERROR_REASON = "CreateContainerConfigError"
NONROOT_MARKER = "Error: container has runAsNonRoot and image"
NSENTER = "/usr/bin/nsenter"
SHELL = "/bin/sh"

CONTAINER_CONTEXT_FIELDS = {
    "runAsUser", "runAsGroup", "runAsNonRoot", "capabilities", "allowPrivilegeEscalation", "privileged", "readOnlyRootFilesystem",
    "procMount", "seccompProfile", "appArmorProfile", "seLinuxOptions", "windowsOptions",
}  # fmt: skip
POD_CONTEXT_FIELDS = {
    "runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "fsGroupChangePolicy", "supplementalGroups", "sysctls", "seccompProfile",
    "appArmorProfile", "seLinuxOptions", "windowsOptions",
}  # fmt: skip
# Fields of the pod's securityContext that are the defaults of its containers' (container values override them).
INHERITED = ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile", "appArmorProfile")


def _error(path, message):
    return podspec.SpecError(path, message)


def _id(value, key, path):
    return podspec._int(value, key, path, minimum=0, maximum=GID_MAX)


def capability_name(value, path):
    """A capability as Kubernetes takes it (``NET_ADMIN``, ``CAP_NET_ADMIN``, any case): its name without ``CAP_``, or ALL."""
    if not isinstance(value, str):
        raise _error(path, f"must be a string, got {podspec._type_name(value)}")
    name = value.upper()
    if name.startswith("CAP_"):
        name = name[4:]
    if name != ALL and name not in CAPABILITIES:
        raise _error(path, f"{value!r} is not a Linux capability (e.g. NET_ADMIN or CAP_NET_ADMIN; ALL stands for every one)")
    return name


def _capabilities(value, path):
    podspec._known(value, {"add", "drop"}, path)
    result = {}
    for part in ("add", "drop"):
        names = []
        for i, item in enumerate(podspec._expect(podspec._or_empty(value.get(part), list), list, f"{path}.{part}")):
            name = capability_name(item, f"{path}.{part}[{i}]")
            if name not in names:
                names.append(name)
        if names:
            result[part] = [ALL] if ALL in names else sorted(names, key=CAPABILITIES.index)
    return result


def _profile(value, path, types, kind):
    """seccompProfile / appArmorProfile: {type, localhostProfile only for Localhost}."""
    podspec._known(value, {"type", "localhostProfile"}, path)
    profile_type = podspec._str(value, "type", path, required=True)
    if profile_type not in types:
        raise _error(f"{path}.type", f"Unsupported value: {profile_type!r}: supported values: {', '.join(types)}")
    local = podspec._str(value, "localhostProfile", path)
    if profile_type != "Localhost":
        if local is not None:
            raise _error(f"{path}.localhostProfile", "can only be set when type is Localhost")
        return {"type": profile_type}
    if not local:
        raise _error(f"{path}.localhostProfile", "is required when type is Localhost")
    if kind == "seccomp":
        parts = local.split("/")
        if local.startswith("/") or any(part in ("", ".", "..") or not _PROFILE_PART.fullmatch(part) for part in parts) or len(local) > 1024:
            raise _error(
                f"{path}.localhostProfile",
                f"{local!r} must be a relative path of [A-Za-z0-9._-] names without '..', under the node's <state_dir>/seccomp "
                "(the kubelet's <root-dir>/seccomp)",
            )
    elif not _APPARMOR_NAME.fullmatch(local):
        raise _error(f"{path}.localhostProfile", f"{local!r} must be an AppArmor profile name ([A-Za-z0-9._/-], starting alphanumeric)")
    return {"type": profile_type, "localhostProfile": local}


def _refused_options(value, path):
    """seLinuxOptions: hosts run without SELinux labels (Debian's kernel has SELinux off): a label asked for is refused."""
    options = podspec._expect(value, dict, path)
    podspec._known(options, {"user", "role", "type", "level"}, path)
    if any(options.get(key) not in (None, "") for key in options):
        raise _error(path, "is not supported on hosts: they run without SELinux (podman and systemd would not apply the label)")


def _windows_options(value, path):
    # Kubernetes: "ignored on Linux" (only spec.os.name windows uses it); checked for its type, never rendered.
    podspec._known(podspec._expect(value, dict, path), {"gmsaCredentialSpecName", "gmsaCredentialSpec", "runAsUserName", "hostProcess"}, path)
    if value.get("hostProcess") is True:
        raise _error(f"{path}.hostProcess", "is for Windows nodes only; hosts are Linux")


def _common(value, path, result):
    for key in ("runAsUser", "runAsGroup"):
        number = _id(value, key, path)
        if number is not None:
            result[key] = number
    if podspec._bool(value, "runAsNonRoot", path):
        result["runAsNonRoot"] = True
    if value.get("seccompProfile") is not None:
        result["seccompProfile"] = _profile(podspec._expect(value["seccompProfile"], dict, f"{path}.seccompProfile"), f"{path}.seccompProfile",
                                            SECCOMP_TYPES, "seccomp")
    if value.get("appArmorProfile") is not None:
        result["appArmorProfile"] = _profile(podspec._expect(value["appArmorProfile"], dict, f"{path}.appArmorProfile"), f"{path}.appArmorProfile",
                                             APPARMOR_TYPES, "apparmor")
    if value.get("seLinuxOptions") is not None:
        _refused_options(value["seLinuxOptions"], f"{path}.seLinuxOptions")
    if value.get("windowsOptions") is not None:
        _windows_options(value["windowsOptions"], f"{path}.windowsOptions")
    return result


def container_context(value, path):
    """A container's securityContext, normalised: only the fields set to something other than Kubernetes' default."""
    if value is None:
        return {}
    podspec._known(value, CONTAINER_CONTEXT_FIELDS, path)
    result = _common(value, path, {})
    if value.get("capabilities") is not None:
        capabilities = _capabilities(podspec._expect(value["capabilities"], dict, f"{path}.capabilities"), f"{path}.capabilities")
        if capabilities:
            result["capabilities"] = capabilities
    if podspec._bool(value, "privileged", path):
        result["privileged"] = True
    if not podspec._bool(value, "allowPrivilegeEscalation", path, default=True):
        # Kubernetes' validation: privileged and CAP_SYS_ADMIN always allow privilege escalation.
        if result.get("privileged"):
            raise _error(f"{path}.allowPrivilegeEscalation", "cannot be false when privileged is true (a privileged container can always escalate)")
        added = result.get("capabilities", {}).get("add", [])
        if "SYS_ADMIN" in added or ALL in added:
            raise _error(f"{path}.allowPrivilegeEscalation", "cannot be false when capabilities.add has CAP_SYS_ADMIN (it can always escalate)")
        result["allowPrivilegeEscalation"] = False
    if podspec._bool(value, "readOnlyRootFilesystem", path):
        result["readOnlyRootFilesystem"] = True
    proc_mount = podspec._str(value, "procMount", path, default="Default")
    if proc_mount not in PROC_MOUNT_TYPES:
        raise _error(f"{path}.procMount", f"Unsupported value: {proc_mount!r}: supported values: {', '.join(PROC_MOUNT_TYPES)}")
    if proc_mount == "Unmasked":
        # Kubernetes allows Unmasked only with hostUsers: false (a user namespace), which hosts do not give.
        raise _error(f"{path}.procMount", "Unmasked needs hostUsers: false (a user namespace for the pod), which hosts do not give; use Default")
    return result


def pod_context(value, path):
    """A pod's securityContext: (the defaults of its containers' contexts, the pod-only fields), both normalised."""
    if value is None:
        return {}, {}
    podspec._known(value, POD_CONTEXT_FIELDS, path)
    inherited = _common(value, path, {})
    pod_only = {}
    fs_group = _id(value, "fsGroup", path)
    if fs_group is not None:
        pod_only["fsGroup"] = fs_group
    policy = podspec._str(value, "fsGroupChangePolicy", path)
    if policy is not None:
        if policy not in FS_GROUP_CHANGE_POLICIES:
            raise _error(f"{path}.fsGroupChangePolicy", f"Unsupported value: {policy!r}: supported values: {', '.join(FS_GROUP_CHANGE_POLICIES)}")
        if fs_group is not None and policy != "Always":
            pod_only["fsGroupChangePolicy"] = policy  # Always is the default
    groups = []
    for i, item in enumerate(podspec._expect(podspec._or_empty(value.get("supplementalGroups"), list), list, f"{path}.supplementalGroups")):
        group = item
        if isinstance(group, bool) or not isinstance(group, int) or not 0 <= group <= GID_MAX:
            raise _error(f"{path}.supplementalGroups[{i}]", f"must be a group ID (an integer from 0 to {GID_MAX})")
        if group not in groups:
            groups.append(group)
    if groups:
        pod_only["supplementalGroups"] = groups
    sysctls = []
    seen = set()
    for i, item in enumerate(podspec._expect(podspec._or_empty(value.get("sysctls"), list), list, f"{path}.sysctls")):
        ipath = f"{path}.sysctls[{i}]"
        podspec._known(item, {"name", "value"}, ipath)
        name = podspec._str(item, "name", ipath, required=True).replace("/", ".")
        if name not in SAFE_SYSCTLS:
            raise _error(f"{ipath}.name", f"{name!r} is not one of Kubernetes' safe, namespaced sysctls that hosts set: {', '.join(SAFE_SYSCTLS)}")
        if name in seen:
            raise _error(f"{ipath}.name", f"duplicate sysctl {name!r}")
        seen.add(name)
        raw = item.get("value")
        text = podspec._text(raw, f"{ipath}.value") if isinstance(raw, (str, int)) and not isinstance(raw, bool) else None
        if text is None or not _SYSCTL_VALUE.fullmatch(text) or text != text.strip():
            raise _error(f"{ipath}.value", "must be a number, a range or a list of them (digits, spaces, ',' and '-')")
        sysctls.append({"name": name, "value": text})
    if sysctls:
        pod_only["sysctls"] = sysctls
    return inherited, pod_only


def merge(pod_inherited, own):
    """A container's effective context: the pod's defaults, each overridden by the container's own field."""
    merged = dict(pod_inherited)
    merged.update(own)
    return merged


def pod_fields(spec, path, runtime, host_network, pod_only):
    """The pod-level normal form this module adds (only what is set) and the checks across fields; raises SpecError.

    ``host_network``: the pod surely uses its host's network (None/False where the node decides: a controller's template).
    """
    result = {}
    for key in ("hostPID", "hostIPC", "shareProcessNamespace"):
        if podspec._bool(spec, key, path):
            result[key] = True
    if result.get("hostPID") and result.get("shareProcessNamespace"):
        raise _error(f"{path}.shareProcessNamespace", "cannot be true when hostPID is true (Kubernetes' validation)")
    for i, item in enumerate(pod_only.get("sysctls", ())):
        name = item["name"]
        where = f"{path}.securityContext.sysctls[{i}].name"
        if name.startswith("net.") and host_network:
            raise _error(where, f"{name!r} needs the pod's own network namespace: the pod uses its host's network (as the kubelet refuses it)")
        if name.startswith("kernel.") and (runtime == podspec.RUNTIME_PROCESS or result.get("hostIPC")):
            why = "a process pod shares its host's IPC namespace" if runtime == podspec.RUNTIME_PROCESS else "the pod uses hostIPC"
            raise _error(where, f"{name!r} would change the host's IPC namespace: {why}")
    return result


def check_container(security, own, path, pod_path, runtime):
    """What a container's effective context (``security``, its ``own`` part) cannot be on its pod's runtime; raises SpecError.

    A field is named where the user wrote it: the container's own securityContext, else the pod's.
    """

    def where(key):
        return f"{path}.securityContext.{key}" if key in own else f"{pod_path}.securityContext.{key}"

    if runtime == podspec.RUNTIME_PROCESS:
        if security.get("seccompProfile", {}).get("type") == "Localhost":
            raise _error(where("seccompProfile"), "Localhost profiles are OCI seccomp files for podman: systemd cannot load them for a process pod "
                         "(RuntimeDefault maps to SystemCallFilter=@system-service)")
        apparmor = security.get("appArmorProfile", {}).get("type")
        if apparmor in ("RuntimeDefault", "Localhost"):
            raise _error(where("appArmorProfile"), f"{apparmor} is not supported for process pods (no AppArmor profile confines a host "
                         "process here); use Unconfined, or an image container")
        if security.get("runAsNonRoot") and not security.get("runAsUser"):
            raise _error(where("runAsNonRoot"), "requires a non-zero runAsUser in a process pod (a host process has no image user to check)")
    elif security.get("runAsNonRoot") and security.get("runAsUser") == 0:
        raise _error(where("runAsUser"), "0 breaks runAsNonRoot (the container would run as root)")


# ----------------------------------------------------------------------------------------------- rendering


def capability_set(security):
    """The capabilities a container gets, or None for the runtime's own default (no `capabilities` or privileged)."""
    capabilities = security.get("capabilities")
    if not capabilities or security.get("privileged"):
        return None
    drop, add = capabilities.get("drop", []), capabilities.get("add", [])
    if ALL in add:
        return list(CAPABILITIES)
    base = set() if ALL in drop else set(DEFAULT_CAPABILITIES) - set(drop)
    return [name for name in CAPABILITIES if name in base or name in add]


def supplementary_groups(spec, security):
    """The container's supplementary groups: the pod's fsGroup and supplementalGroups, and its runAsGroup among them (as
    the CRI runtimes put the primary group in the process's groups: `id` shows groups=2000,3000); [] when none is set."""
    pod_only = spec.get("securityContext") or {}
    groups = [pod_only["fsGroup"]] if "fsGroup" in pod_only else []
    groups += pod_only.get("supplementalGroups", [])
    if groups and security.get("runAsGroup") is not None:
        groups.append(security["runAsGroup"])
    return sorted(set(groups))


def unit_lines(spec, container, pod, mounts, exec_line, run_dir="/run/hostfleet"):
    """The [Service] lines of one container's unit for its security context ([] when it sets nothing).

    ``mounts`` are the container's (source, target, read_only) volumes, in the order of its volumeMounts; ``exec_line`` is
    units.py's renderer, passed in (units imports this module); ``run_dir`` holds the pod's registry credentials.
    """
    security = container["securityContext"]
    cname = container["name"]
    field = f"containers[{cname}].securityContext"
    lines = []
    fs_group = (spec.get("securityContext") or {}).get("fsGroup")
    if fs_group is not None:
        sources = sorted(
            {
                # The volume itself (a subPath's too), as the kubelet's ownership change is the volume's.
                mounts[i][0][: len(mounts[i][0]) - len(mount["subPath"]) - 1] if mount["subPath"] else mounts[i][0]
                for i, mount in enumerate(container["volumeMounts"])
                if spec["volumes"][mount["name"]]["kind"] in FS_GROUP_VOLUMES
            }
        )
        if sources:
            policy = (spec.get("securityContext") or {}).get("fsGroupChangePolicy", "Always")
            argv = [SHELL, "-c", FS_GROUP_SCRIPT, "fsgroup", str(fs_group), policy] + sources
            lines.append(f"ExecStartPre=+{exec_line(argv, field='securityContext.fsGroup')}\n")
    if podspec.RUNTIME_PODMAN == spec.get("runtimeClassName"):
        if security.get("runAsNonRoot") and security.get("runAsUser") is None:
            # The pod's imagePullSecrets (registry_auth.py) for the pull, as podman run would use them.
            auth = registry_auth.registry_auth_file(f"{run_dir}/pods/{pod}") if spec.get("imagePullSecrets") else ""
            argv = [SHELL, "-c", NONROOT_SCRIPT, "nonroot", container["image"], container["imagePullPolicy"], pod, cname, auth]
            lines.append(f"ExecStartPre={exec_line(argv, field=f'{field}.runAsNonRoot')}\n")
        return lines
    capabilities = capability_set(security)
    if capabilities is not None:
        lines.append(f"CapabilityBoundingSet={' '.join('CAP_' + name for name in capabilities)}\n")
        added = [name for name in capabilities if name in security["capabilities"].get("add", []) or ALL in security["capabilities"].get("add", [])]
        if security.get("runAsUser") and added:
            # A non-root user keeps no capability across execve() but ambient ones.
            lines.append(f"AmbientCapabilities={' '.join('CAP_' + name for name in added)}\n")
    if security.get("allowPrivilegeEscalation") is False:
        lines.append("NoNewPrivileges=yes\n")
    if security.get("readOnlyRootFilesystem"):
        # The host's file system is the process's root file system: read-only but its writable volumes.
        # (BindPaths= volumes stay writable: systemd mounts them over the read-only tree.)
        lines.append("ProtectSystem=strict\n")
    if security.get("seccompProfile", {}).get("type") == "RuntimeDefault" and not security.get("privileged"):
        # systemd's counterpart of the runtime's default profile: the calls of ordinary services, EPERM for the rest.
        lines += ["SystemCallFilter=@system-service\n", "SystemCallErrorNumber=EPERM\n"]
    groups = supplementary_groups(spec, security)
    if groups:
        lines.append(f"SupplementaryGroups={' '.join(str(group) for group in groups)}\n")
    return lines


# The volumes fsGroup owns: emptyDir and claims (as the kubelet: not hostPath; ConfigMap and Secret trees are the node's,
# shared by its pods, and keep their modes).
FS_GROUP_VOLUMES = ("emptyDir", "persistentVolumeClaim")


# The kubelet's SetVolumeOwnership: group fsGroup, group rw (and x where the owner has it), setgid directories;
# OnRootMismatch skips a volume whose root already has the group and those bits.
FS_GROUP_SCRIPT = (
    'group=$1 policy=$2; shift 2; for dir in "$@"; do [ -d "$dir" ] || continue; '
    'if [ "$policy" = OnRootMismatch ] && [ "$(stat -c %g "$dir")" = "$group" ] && [ -n "$(find "$dir" -maxdepth 0 -perm -2070)" ]; then continue; fi; '
    'chgrp -R -h "$group" "$dir" && chmod -R g+rwX "$dir" && find "$dir" -type d -exec chmod g+s {} + || exit 1; done'
)
# The kubelet's verifyRunAsNonRoot for an image container without runAsUser: the image's user must be numeric and not 0.
# An image not there yet is pulled first (as the kubelet pulls before it checks; with the pod's credentials), unless the
# policy is Never (nothing runs: podman run fails with ErrImageNeverPull). A failed pull fails the start with podman's
# own error line (the hook reports ErrImagePull): never run an image whose user was not checked.
NONROOT_SCRIPT = (
    'image=$1 policy=$2 pod=$3 name=$4 auth=$5; set --; if [ -n "$auth" ] && [ -f "$auth" ]; then set -- "--authfile=$auth"; fi; '
    'if ! user=$(podman image inspect --format "{{.Config.User}}" "$image" 2>/dev/null); then '
    '[ "$policy" = Never ] && exit 0; podman pull -q "$@" "$image" >/dev/null || exit 125; '
    'user=$(podman image inspect --format "{{.Config.User}}" "$image") || exit 125; fi; uid=${user%%:*}; '
    'case "$uid" in "" | 0) echo "Error: container has runAsNonRoot and image will run as root (pod: \\"$pod\\", container: $name)" >&2; exit 125;; '
    '*[!0-9]*) echo "Error: container has runAsNonRoot and image has non-numeric user ($uid), cannot verify user is non-root '
    '(pod: \\"$pod\\", container: $name)" >&2; exit 125;; esac'
)
# A sysctl written inside the pod's network namespace: /proc/sys/net is the writer's own namespace's.
SYSCTL_SCRIPT = 'printf "%s\\n" "$2" >"/proc/sys/$(printf %s "$1" | tr . /)"'


def podman_flags(spec, container, pod, state_dir, podman_name):
    """The podman run options of one container's security context and the pod's PID/IPC namespaces ([] when none)."""
    security = container["securityContext"]
    flags = []
    if security.get("privileged"):
        flags.append("--privileged")
    capabilities = capability_set(security)
    if capabilities is not None:
        # Exactly the set Kubernetes gives (the CRI runtimes' default, not podman's own smaller one).
        flags.append("--cap-drop=all")
        if capabilities:
            flags.append(f"--cap-add={','.join(capabilities)}")
    if security.get("allowPrivilegeEscalation") is False:
        flags.append("--security-opt=no-new-privileges")
    if security.get("readOnlyRootFilesystem"):
        # As Kubernetes: no tmpfs of podman's own on /tmp, /run and /var/tmp.
        flags += ["--read-only", "--read-only-tmpfs=false"]
    seccomp = security.get("seccompProfile", {})
    if seccomp.get("type") == "Unconfined":
        flags.append("--security-opt=seccomp=unconfined")
    elif seccomp.get("type") == "Localhost":
        flags.append(f"--security-opt=seccomp={state_dir}/seccomp/{seccomp['localhostProfile']}")
    apparmor = security.get("appArmorProfile", {})
    if apparmor.get("type") == "Unconfined":
        flags.append("--security-opt=apparmor=unconfined")
    elif apparmor.get("type") == "Localhost":
        flags.append(f"--security-opt=apparmor={apparmor['localhostProfile']}")
    flags += [f"--group-add={group}" for group in supplementary_groups(spec, security)]
    for item in (spec.get("securityContext") or {}).get("sysctls", ()):
        if not item["name"].startswith("net."):
            # (net.* ones are the pod's network namespace's, set once by its unit: netns_lines)
            flags.append(f"--sysctl={item['name']}={item['value']}")
    if spec.get("hostPID"):
        flags.append("--pid=host")
    elif spec.get("shareProcessNamespace") and container["name"] in [other["name"] for other in spec["containers"][1:]]:
        # The pod's app containers see each other's processes: they join the first one's PID namespace (init containers,
        # which run before it, keep their own).
        flags.append(f"--pid=container:{podman_name(pod, spec['containers'][0]['name'])}")
    if spec.get("hostIPC"):
        flags.append("--ipc=host")
    return flags


def unit_dependencies(spec, container, container_unit, pod):
    """[Unit] lines: with shareProcessNamespace, a podman pod's later containers start after the first (whose PID
    namespace they join) and stop with it."""
    if not spec.get("shareProcessNamespace") or spec.get("runtimeClassName") != podspec.RUNTIME_PODMAN:
        return []
    first = spec["containers"][0]["name"]
    if container["name"] not in [other["name"] for other in spec["containers"][1:]]:
        return []
    unit = container_unit(pod, first)
    return [f"BindsTo={unit}\n", f"After={unit}\n"]


def netns_lines(spec, netns_path, exec_line):
    """ExecStart= lines of the pod's network namespace unit that set its net.* sysctls (process and podman pods alike)."""
    lines = []
    for item in (spec.get("securityContext") or {}).get("sysctls", ()):
        if item["name"].startswith("net."):
            argv = [NSENTER, f"--net={netns_path}", SHELL, "-c", SYSCTL_SCRIPT, "sysctl", item["name"], item["value"]]
            lines.append(f"ExecStart={exec_line(argv, field='securityContext.sysctls')}\n")
    return lines
