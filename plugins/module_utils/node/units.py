# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render a validated pod into systemd unit files: pure, deterministic, no I/O.

One pod container is one service ``hf-<pod>.<container>.service`` (names are
DNS-1123 labels, so the dot cannot be ambiguous). Each probe is a timer plus a
oneshot service that runs the pod hook. Environment goes to a root-only file,
never into the unit (unit properties are world-readable over D-Bus).
"""

from __future__ import annotations

import json
import re

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import downward, init_containers, namespaces, podnet, security_context
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import registry_auth as pull_auth
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import CPU_MIN_QUOTA_MILLIS, SpecError, unit_value_problem

UNIT_PREFIX = "hf-"
UNIT_DIR = "/etc/systemd/system"
WANTS_DIR = "/etc/systemd/system/multi-user.target.wants"
HEADER = "# Managed by hostfleet.workloads; changes here are overwritten.\n"
PROBE_UNIT_KIND = {"startupProbe": "startup", "livenessProbe": "liveness", "readinessProbe": "readiness"}
PODMAN = "/usr/bin/podman"
PODMAN_PULL = {"Always": "always", "IfNotPresent": "missing", "Never": "never"}
_SYSTEMD_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def container_unit(pod, container):
    return f"{UNIT_PREFIX}{pod}.{container}.service"


def probe_units(pod, container, kind):
    base = f"{UNIT_PREFIX}{pod}.{container}.{kind}"
    return f"{base}.timer", f"{base}.service"


# The unit of a pod's network namespace (podnet.py). '_' is in no DNS-1123 label, so no container unit is named so.
NETNS_UNIT_KIND = "_netns"


def netns_unit(pod):
    return f"{UNIT_PREFIX}{pod}.{NETNS_UNIT_KIND}.service"


def podman_name(pod, container):
    """The podman container of a pod container (podman names allow the dot)."""
    return f"{UNIT_PREFIX}{pod}.{container}"


def is_podman(spec):
    return spec.get("runtimeClassName") == "podman"


def _podman_user(security):
    """``--user=uid[:gid]`` for podman run/exec, or nothing."""
    if security.get("runAsUser") is None:
        return []
    group = f":{security['runAsGroup']}" if security.get("runAsGroup") is not None else ""
    return [f"--user={security['runAsUser']}{group}"]


def podman_exec(pod, container, security, command):
    """argv that runs ``command`` inside a running podman container, as its user."""
    return [PODMAN, "exec"] + _podman_user(security) + [podman_name(pod, container)] + list(command)


def _podman_run(spec, container, pod, cid, env_names, volumes, network=None, state_dir="/var/lib/hostfleet"):
    """The ``podman run`` of one container, in the style of ``podman generate systemd --new``."""
    name = container["name"]
    argv = [
        PODMAN,
        "run",
        f"--cidfile={cid}",
        "--cgroups=no-conmon",
        "--rm",
        "--sdnotify=conmon",
        "-d",
        "--replace",
        # The grace period for every stop podman makes by itself: `rm --force` after conmon was killed (systemd skips
        # ExecStop= then) and --replace would otherwise wait podman's 10 s with the old container still serving.
        f"--stop-timeout={spec['terminationGracePeriodSeconds']}",
        f"--name={podman_name(pod, name)}",
        # The host's network (hostNetwork: true), or the pod's namespace (podnet.py): the pod's containers share it.
        f"--network=ns:{podnet.netns_path(pod)}" if network else "--network=host",
        f"--hostname={spec.get('hostname') or namespaces.kube_name(pod)}",
        f"--pull={PODMAN_PULL[container['imagePullPolicy']]}",
        "--log-driver=journald",
        f"--log-opt=tag={pod}/{name}",
    ]
    if spec.get("imagePullSecrets"):
        # The pod's registry credentials (registry_auth.py): a root-only file the hook's pre writes before each start.
        argv.append(f"--authfile={pull_auth.registry_auth_file(cid.rsplit('/', 2)[0])}")
    # Values come from the unit's EnvironmentFile= through podman's own environment: never on a command line.
    argv += [f"--env={variable}" for variable in ["POD_NAME"] + sorted(set(env_names) - {"POD_NAME"})]
    security = container["securityContext"]
    argv += _podman_user(security)
    # Capabilities, no-new-privileges, read-only root, seccomp, groups, sysctls, PID/IPC namespaces: only what is set.
    argv += security_context.podman_flags(spec, container, pod, state_dir, podman_name)
    if container["workingDir"]:
        argv.append(f"--workdir={container['workingDir']}")
    limits = container["resources"]["limits"]
    if "memory" in limits:
        argv.append(f"--memory={limits['memory']}")
    if limits.get("cpu"):
        argv.append(f"--cpus={max(limits['cpu'], CPU_MIN_QUOTA_MILLIS) / 1000:g}")
    if "pids" in limits:
        argv.append(f"--pids-limit={limits['pids']}")
    for source, target, read_only in volumes:
        # --mount reads CSV (podman 4.3): quoted fields keep ':' and ',' (--volume would read "/data:U" as an option).
        fields = ["type=bind", f"source={source}", f"destination={target}"] + (["ro"] if read_only else [])
        argv.append("--mount=" + ",".join('"' + field.replace('"', '""') + '"' for field in fields))
    command = container["command"]
    if command:
        # The JSON form: podman splits a value starting with '[' as a JSON list. As for a process's program, only
        # Kubernetes' '$$' is honoured there (a value substituted into the JSON could break it).
        argv.append("--entrypoint=" + json.dumps([expand(command[0], {})]))
    return argv + [container["image"]] + command[1:] + container["args"]


def parse_unit_name(unit):
    """(pod, container, probe kind or None, suffix) for one of our unit names, else None.

    A pod's network namespace unit is (pod, None, "netns", "service").
    """
    if not unit.startswith(UNIT_PREFIX):
        return None
    stem, _sep, suffix = unit[len(UNIT_PREFIX) :].rpartition(".")
    parts = stem.split(".")
    if len(parts) == 2 and parts[1] == NETNS_UNIT_KIND and suffix == "service":
        return parts[0], None, "netns", suffix
    if len(parts) == 2 and suffix == "service":
        return parts[0], parts[1], None, suffix
    if len(parts) == 3 and parts[2] in PROBE_UNIT_KIND.values() and suffix in ("service", "timer"):
        return parts[0], parts[1], parts[2], suffix
    return None


def valid_env_name(name):
    """systemd accepts only shell-style variable names in environment files."""
    return bool(_SYSTEMD_ENV_NAME.fullmatch(name))


def expand(text, variables):
    """Kubernetes' $(VAR) expansion: known names are replaced, unknown ones kept, $$ escapes a dollar."""
    out = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end >= 0:
                    name = text[i + 2 : end]
                    out.append(variables[name] if name in variables else text[i : end + 1])
                    i = end + 1
                    continue
        out.append(char)
        i += 1
    return "".join(out)


def container_env(container, sources, pod_name, hostname, fields=None):
    """The container's environment in Kubernetes' order: envFrom sources, then env (which may use $(VAR)).

    ``sources`` maps ("configMap"|"secret", name) or ("file", path) to a dict of
    variables, or None when missing (already checked by the caller for
    non-optional sources). Keys systemd cannot carry are skipped, as the
    kubelet skips invalid keys. Returns (variables as an ordered dict, skipped
    keys, the names the user defined). HOSTNAME and POD_NAME are exported too,
    but Kubernetes does not define them for $(VAR): only the user's names are
    known to the expansion, here and in command/args. ``fields`` maps the
    downward API's field paths (podspec.FIELD_PATHS but metadata.name) to
    their values on this host; a field without one is an error naming it.
    """
    variables = {"HOSTNAME": hostname, "POD_NAME": pod_name}
    defined = {}
    skipped = []
    for entry in container["envFrom"]:
        if entry.get("keysOnly"):
            continue  # only read for env[].valueFrom (see podspec._value_from_sources)
        key = ("file", entry["path"]) if entry["kind"] == "file" else (entry["kind"], entry["name"])
        for name, value in sorted((sources.get(key) or {}).items()):
            full = entry["prefix"] + name
            if valid_env_name(full):
                variables[full] = defined[full] = value
            else:
                skipped.append(full)
    for item in container["env"]:
        ref = item.get("valueFrom")
        if ref is None:
            variables[item["name"]] = defined[item["name"]] = expand(item["value"], defined)
            continue
        if ref["kind"] in ("field", "resource"):
            # The downward API (downward.py); $(VAR) is not expanded in its values either.
            value = pod_name if ref.get("fieldPath") == "metadata.name" else downward.env_value(ref, container["name"], fields or {})
            if value is None:
                raise SpecError(
                    f"containers[{container['name']}].env[{item['name']}].valueFrom.fieldRef.fieldPath",
                    f"{ref['fieldPath']} is not known on this host: it needs the node's cluster network (the cluster_network task's node.json)",
                )
            variables[item["name"]] = defined[item["name"]] = value
            continue
        # As in Kubernetes, a value from a ConfigMap or Secret is taken as it is ($(VAR) is not expanded in it).
        data = sources.get((ref["kind"], ref["name"]))
        if data is None or ref["key"] not in data:
            if ref["optional"]:
                continue
            what = "ConfigMap" if ref["kind"] == "configMap" else "Secret"
            problem = f"{what} {ref['name']!r} does not exist on this host" if data is None else f"{what} {ref['name']!r} has no key {ref['key']!r}"
            raise SpecError(f"containers[{container['name']}].env[{item['name']}].valueFrom", f"{problem} (set optional: true to allow that)")
        variables[item["name"]] = defined[item["name"]] = data[ref["key"]]
    return variables, skipped, list(defined)


def resolve_env(container, sources, pod_name, hostname, fields=None):
    """(variables, skipped keys) of container_env."""
    variables, skipped, _defined = container_env(container, sources, pod_name, hostname, fields)
    return variables, skipped


def render_env_file(variables):
    """systemd EnvironmentFile= syntax, double-quoted with the escapes systemd's parser knows."""
    lines = []
    for name, value in variables.items():
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")
        lines.append(f'{name}="{escaped}"\n')
    return "".join(lines)


_ESCAPES = {"%": "%%", "\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape_char(char):
    """One character inside a quoted Exec*= word (not '$', whose handling depends on the word)."""
    if char in _ESCAPES:
        return _ESCAPES[char]
    if char < " " or char == "\x7f":
        # Raw, a '\r' would end the unit file line; other control characters are no better kept raw.
        return "\\x%02x" % ord(char)
    return char


def _quote_word(word, variables=None, first=False):
    """One ExecStart= word: quoted, with systemd's escapes; $(VAR) of a known variable becomes ${VAR}."""
    if first:
        # systemd substitutes nothing in the executable path, so '$' stays as is (and $(VAR) cannot be
        # honoured there); Kubernetes' '$$' still stands for one '$'.
        text = expand(word, {}) if variables is not None else word
        return '"' + "".join(_escape_char(char) for char in text) + '"'
    out = []
    i = 0
    while i < len(word):
        char = word[i]
        if char == "$":
            if variables is not None and word.startswith("$(", i):
                end = word.find(")", i + 2)
                if end >= 0:
                    name = word[i + 2 : end]
                    if name in variables:
                        # systemd substitutes it from the environment file as exactly one word part.
                        out.append("${" + name + "}")
                    else:
                        # Kubernetes keeps an unknown reference verbatim, a '$$' inside it included.
                        out.append("".join("$$" if c == "$" else _escape_char(c) for c in word[i : end + 1]))
                    i = end + 1
                    continue
            if variables is not None and word.startswith("$$", i):
                out.append("$$")
                i += 2
                continue
            out.append("$$")
        else:
            out.append(_escape_char(char))
        i += 1
    return '"' + "".join(out) + '"'


def exec_line(argv, variables=None, field="command", literal=0):
    """An Exec*= command line; with ``variables``, Kubernetes $(VAR) references are honoured from word ``literal`` on.

    The one renderer of every command line: its words are checked as systemd will read them (the program too, after
    the '$$' of Kubernetes is undone), a SpecError naming ``field`` otherwise. (Validation checks the user's words
    first, naming each; this guards the rendered line as a whole, whose word i may be one of ours.)
    """
    program = expand(argv[0], {}) if variables is not None and not literal else argv[0]
    problem = unit_value_problem("executable", program)
    _check(problem and f"the program {problem}", field)
    for i, word in enumerate(argv):
        problem = unit_value_problem("word", word)
        _check(problem and f"word {i} of the command line {problem}", field)
    return " ".join("\\;" if word == ";" else _quote_word(word, variables if i >= literal else None, first=i == 0) for i, word in enumerate(argv))


def _check(problem, field):
    if problem:
        raise SpecError(field, problem)


def unit_value(syntax, value, field):
    """The text of one value in a unit file, escaped for its directive's syntax (see podspec.unit_value_problem).

    The one way a value enters a unit file: Exec*= lines go through exec_line, everything else through here. What
    systemd could not read back exactly is refused, naming ``field``.
    """
    _check(unit_value_problem(syntax, value), field)
    if syntax == "bind":
        # BindPaths= knows no C escapes: a backslash takes the next character literally, so the separators (':',
        # space, tab), the quotes (an unescaped one drops the whole line) and the backslash itself are escaped that way.
        value = re.sub(r"""([\\:'" \t])""", r"\\\1", value)
    elif syntax not in ("path", "text"):
        raise ValueError(f"unknown unit value syntax {syntax!r}")
    # Specifiers are expanded in all of them, after any unquoting.
    return value.replace("%", "%%")


def _cpu_quota(millis):
    # CPUQuota= is a percentage of one CPU; round up so a limit is never tighter than asked. Below 10m (1 %), the
    # kubelet's minimum quota (1 ms per 100 ms); a zero limit sets no quota (the callers), as with the kubelet.
    return f"{-(-max(millis, CPU_MIN_QUOTA_MILLIS) // 10)}%"


def volume_source(volume, state_dir, pod_name, run_dir="/run/hostfleet"):
    """Where a volume lives on the host. An emptyDir with medium Memory lives under /run (a tmpfs)."""
    if volume["kind"] == "hostPath":
        return volume["path"]
    if volume["kind"] == "emptyDir":
        if volume.get("medium") == "Memory":
            return f"{run_dir}/volumes/{pod_name}/{volume['name']}"
        return f"{state_dir}/pods/{pod_name}/volumes/{volume['name']}"
    if downward.is_projected(volume):
        # The pod's own files (downwardAPI, projected, configMap/secret items or modes), written by the node (downward.py).
        return downward.volume_root(state_dir, pod_name, volume["name"])
    if volume["kind"] in CONFIG_FOLDERS:
        # The object's file tree (one file per key), written by the config_data module; mounted read-only.
        return config_tree(state_dir, volume["kind"], namespaces.node_name(namespaces.namespace_of(pod_name), volume["sourceName"]))
    # A claim is a namespaced object: outside `default` its volume is <namespace>_<claim> (namespaces.py).
    return f"{state_dir}/volumes/{namespaces.node_name(namespaces.namespace_of(pod_name), volume['claimName'])}"


# Where the node keeps ConfigMaps and Secrets: <folder>/<name>.env (KEY="value" lines, for env and envFrom) and
# <folder>/<name>/<key> (one file per key, for volumes).
CONFIG_FOLDERS = {"configMap": "configmaps", "secret": "secrets"}


def config_tree(state_dir, kind, name):
    return f"{state_dir}/{CONFIG_FOLDERS[kind]}/{name}"


def config_env_file(state_dir, kind, name):
    return f"{state_dir}/{CONFIG_FOLDERS[kind]}/{name}.env"


def render_netns_unit(pod, owner, network):
    """The oneshot unit that makes (and, stopped, removes) a pod's network namespace: the pod's own end of a veth pair
    as eth0 with the pod's address, loopback up, a default route via the bridge, which it also makes if missing.

    ``network`` is the pod record's (podnet.pod_network_record). The namespace outlives container restarts (they
    only bind to it) and goes with the pod's units.
    """
    netns, veth, bridge = podnet.netns_name(pod), podnet.veth_name(pod), network["bridge"]
    address, gateway = f"{network['ip']}/{network['prefix']}", network["gateway"]
    bridge_address = f"{gateway}/{network['prefix']}"
    field = "pod_network"

    def ip(*argv, ignore=False):
        return ("-" if ignore else "") + exec_line([podnet.IP] + list(argv), field=field)

    return (
        HEADER
        + "[Unit]\n"
        + f"Description={unit_value('text', f'hostfleet network namespace of pod {pod}', 'name')}\n"
        + f"X-HostfleetOwner={unit_value('text', owner, 'owner')}\n"
        + "StartLimitIntervalSec=0\n"
        + "\n[Service]\n"
        + "Type=oneshot\n"
        + "RemainAfterExit=yes\n"
        # What an unclean end (a killed host, a failed start) left would make the adds fail with "File exists".
        + f"ExecStartPre={ip('link', 'delete', veth, ignore=True)}\n"
        + f"ExecStartPre={ip('netns', 'delete', netns, ignore=True)}\n"
        # The node's bridge is shared by its pods: made by whichever pod starts first, kept (an add that finds it fails).
        + f"ExecStartPre={ip('link', 'add', bridge, 'type', 'bridge', ignore=True)}\n"
        + f"ExecStartPre={ip('addr', 'add', bridge_address, 'dev', bridge, ignore=True)}\n"
        + f"ExecStartPre={ip('link', 'set', bridge, 'up')}\n"
        + f"ExecStart={ip('netns', 'add', netns)}\n"
        + f"ExecStart={ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'address', podnet.pod_mac(network['ip']), 'netns', netns)}\n"
        + f"ExecStart={ip('link', 'set', veth, 'master', bridge, 'up')}\n"
        # A pod reaching its own Service may be DNATed back to itself: with bridge netfilter (br_netfilter) the
        # bridge then sends the frame out of the port it came in on, which only a hairpin port does (as kubelet's).
        + f"ExecStart={ip('link', 'set', veth, 'type', 'bridge_slave', 'hairpin', 'on')}\n"
        + f"ExecStart={ip('-n', netns, 'link', 'set', 'lo', 'up')}\n"
        + f"ExecStart={ip('-n', netns, 'addr', 'add', address, 'dev', 'eth0')}\n"
        + f"ExecStart={ip('-n', netns, 'link', 'set', 'eth0', 'up')}\n"
        + f"ExecStart={ip('-n', netns, 'route', 'add', 'default', 'via', gateway)}\n"
        # After a stop and after a failed start alike: deleting the veth removes both ends.
        + f"ExecStopPost={ip('link', 'delete', veth, ignore=True)}\n"
        + f"ExecStopPost={ip('netns', 'delete', netns, ignore=True)}\n"
    )


def render_pod(pod, owner, env_names, state_dir, python, run_dir="/run/hostfleet", network=None, resolv_conf=None):
    """All unit files of one pod: {unit name: content}.

    ``env_names`` maps each container to the names defined in its environment
    file (for $(VAR) in command/args); ``python`` is the target's interpreter
    that runs the hook; ``network`` is the pod's pod-network record (podnet.py),
    None for the host's network; ``resolv_conf`` the pod's own resolv.conf (cluster DNS, network/dns.py), bound
    read-only on /etc/resolv.conf in every container, or None for the host's.
    """
    spec = pod["spec"]
    name = pod["name"]
    hook = f"{state_dir}/bin/hostfleet-hook"
    units = {}
    if network:
        units[netns_unit(name)] = render_netns_unit(name, owner, network) + "".join(security_context.netns_lines(spec, podnet.netns_path(name), exec_line))
    # Init containers first (init_containers.py: their units and how the others are ordered after them).
    for container in init_containers.pod_containers(spec):
        cname = container["name"]
        unit = container_unit(name, cname)
        role = init_containers.role(spec, cname)
        variables = dict.fromkeys(env_names.get(cname, ()), "")
        hook_args = [state_dir, name, cname]
        timers = []
        for field, kind in PROBE_UNIT_KIND.items():
            probe = container.get(field)
            if not probe:
                continue
            timer, service = probe_units(name, cname, kind)
            timers.append(timer)
            first = f"{probe['initialDelaySeconds']}s" if probe["initialDelaySeconds"] else "300ms"
            units[timer] = (
                HEADER
                + "[Unit]\n"
                + f"Description={unit_value('text', f'hostfleet {kind} probe of pod {name} container {cname}', 'name')}\n"
                # Restarted with its container (PartOf=), as often as that is: no start limit.
                + "StartLimitIntervalSec=0\n"
                + f"PartOf={unit}\n"
                # (Not after a sidecar whose start waits for its startup probe: init_containers.waits_for_startup.)
                + ("" if init_containers.waits_for_startup(spec, container) else f"After={unit}\n")
                + "\n[Timer]\n"
                + f"OnActiveSec={first}\n"
                + f"OnUnitActiveSec={probe['periodSeconds']}s\n"
                # systemd's default accuracy (1 min) would make a 10 s probe fire up to a minute late.
                + "AccuracySec=50ms\n"
            )
            units[service] = (
                HEADER
                + "[Unit]\n"
                + f"Description={unit_value('text', f'hostfleet {kind} probe run of pod {name} container {cname}', 'name')}\n"
                # Started every periodSeconds: systemd's default limit (5 starts in 10 s) would fail a 1 s probe.
                + "StartLimitIntervalSec=0\n"
                + "\n[Service]\n"
                + "Type=oneshot\n"
                + f"ExecStart={exec_line([python, '-I', '-S', hook, 'probe', kind] + hook_args)}\n"
                + f"TimeoutStartSec={probe['timeoutSeconds'] + 5}s\n"
            )
        lines = [
            HEADER,
            "[Unit]\n",
            f"Description={unit_value('text', f'hostfleet pod {name} container {cname}', 'name')}\n",
            f"X-HostfleetOwner={unit_value('text', owner, 'owner')}\n",
            # Never give up restarting (Kubernetes keeps retrying a crash-looping container).
            "StartLimitIntervalSec=0\n",
        ]
        lines += init_containers.unit_dependencies(spec, cname, lambda other: container_unit(name, other))
        lines += security_context.unit_dependencies(spec, container, container_unit, name)
        if timers:
            lines.append(f"Wants={' '.join(timers)}\n")
        if network:
            # Stopped with the namespace (the pod goes); a container restart leaves the namespace as it is.
            lines += [f"BindsTo={netns_unit(name)}\n", f"After={netns_unit(name)}\n"]
        mounts = []
        for i, mount in enumerate(container["volumeMounts"]):
            volume = dict(spec["volumes"][mount["name"]], name=mount["name"])
            source = volume_source(volume, state_dir, name, run_dir)
            if mount["subPath"]:
                source = f"{source.rstrip('/')}/{mount['subPath']}"
            mpath = f"containers[{cname}].volumeMounts[{i}]"
            _check(unit_value_problem("bind", source), f"{mpath}.subPath" if mount["subPath"] else f"{mpath}.name")
            _check(unit_value_problem("bind", mount["mountPath"]), f"{mpath}.mountPath")
            mounts.append((source, mount["mountPath"], bool(mount["readOnly"] or volume.get("readOnly"))))
        if resolv_conf and all(target != "/etc/resolv.conf" for _source, target, _ro in mounts):
            mounts.append((resolv_conf, "/etc/resolv.conf", True))
        podman = is_podman(spec)
        security = container["securityContext"]
        cid = f"{run_dir}/pods/{name}/{cname}/ctr-id"
        if podman:
            # Kubernetes' $(VAR) only in command[1:] and args, which follow the image: our options (paths) are literal.
            run = _podman_run(spec, container, name, cid, env_names.get(cname, ()), mounts, network, state_dir)
            if role == init_containers.ROLE_INIT:
                run = init_containers.attached(run)
            # conmon is the main process and tells systemd when the container runs (podman generate systemd --new).
            start = [
                "Type=notify\n",
                "NotifyAccess=all\n",
                # conmon exits with the container's code: 143 is the container ending on podman stop's SIGTERM.
                "SuccessExitStatus=143\n",
                f"ExecStartPre=+{exec_line([python, '-I', '-S', hook, 'pre'] + hook_args)}\n",
                # A container that died (kill -9, OOM) leaves its ID file: podman run refuses to overwrite it.
                f"ExecStartPre={exec_line(['/bin/rm', '-f', cid])}\n",
                f"ExecStart={exec_line(run, variables, f'containers[{cname}]', literal=len(run) - len(container['command'][1:] + container['args']))}\n",
            ]
        else:
            start = [
                "Type=exec\n",
                f"ExecStartPre=+{exec_line([python, '-I', '-S', hook, 'pre'] + hook_args)}\n",
                f"ExecStart={exec_line(container['command'] + container['args'], variables, f'containers[{cname}].command')}\n",
            ]
        if role == init_containers.ROLE_INIT:
            start = init_containers.oneshot_start(start, f"ExecStartPre=+{exec_line([python, '-I', '-S', hook, 'init-start'] + hook_args)}\n")
            if podman:
                # conmon writes the container's output to the journal: the attached copy would be a second one.
                start.append("StandardOutput=null\n")
        # A plain init container's ExecStartPost= runs once it completed (oneshot): the hook records that.
        post = "init-done" if role == init_containers.ROLE_INIT else "post"
        lines += ["\n[Service]\n"] + start + security_context.unit_lines(spec, container, name, mounts, exec_line, run_dir)
        lines += [f"ExecStartPost=+{exec_line([python, '-I', '-S', hook, post] + hook_args)}\n"]
        if init_containers.waits_for_startup(spec, container):
            # The containers after a sidecar start once its startup probe passed: its start ends then.
            lines.append(f"ExecStartPost=+{exec_line([python, '-I', '-S', hook, 'sidecar-started'] + hook_args)}\n")
        lifecycle = container["lifecycle"]
        post_start = lifecycle.get("postStart")
        if post_start:
            if "exec" in post_start:
                command = podman_exec(name, cname, security, post_start["exec"]["command"]) if podman else post_start["exec"]["command"]
                lines.append(f"ExecStartPost={exec_line(command, field=f'containers[{cname}].lifecycle.postStart.exec.command')}\n")
            else:
                lines.append(f"ExecStartPost=+{exec_line([python, '-I', '-S', hook, 'handler', 'postStart'] + hook_args)}\n")
        pre_stop = lifecycle.get("preStop")
        if pre_stop:
            if "exec" in pre_stop:
                # Only when the process still runs: systemd also runs ExecStop= after a crash, Kubernetes does not.
                command = podman_exec(name, cname, security, pre_stop["exec"]["command"]) if podman else pre_stop["exec"]["command"]
                guard = ["/bin/sh", "-c", '[ -n "$MAINPID" ] || exit 0; exec "$@"', "prestop"] + command
                lines.append(f"ExecStop={exec_line(guard, field=f'containers[{cname}].lifecycle.preStop.exec.command')}\n")
            else:
                lines.append(f"ExecStop=+{exec_line([python, '-I', '-S', hook, 'handler', 'preStop'] + hook_args)}\n")
        grace = spec["terminationGracePeriodSeconds"]
        if podman:
            lines.append(f"ExecStop={exec_line([PODMAN, 'stop', '--ignore', f'--time={grace}', f'--cidfile={cid}'])}\n")
            lines.append(f"ExecStopPost=-{exec_line([PODMAN, 'rm', '--force', '--ignore', f'--cidfile={cid}'])}\n")
        lines.append(f"ExecStopPost=+{exec_line([python, '-I', '-S', hook, 'exited'] + hook_args)}\n")
        restart = init_containers.restart_setting(spec, container)
        if podman:
            # podman stop itself waits the grace period; systemd's own timeout only backs it up.
            stop_timeout = f"TimeoutStopSec={grace + 15}s\n"
        else:
            stop_timeout = f"TimeoutStopSec={grace}s\n" if grace else "TimeoutStopSec=1ms\n"
        lines += [
            f"Restart={restart}\n",
            # No delay of systemd's own (a 100ms one waits for its 250 ms timer tick: kill -9 -> back took 0.4-0.5 s
            # instead of 0.2 s); the crash-loop backoff is the pre hook's, which sleeps before a repeated start.
            "RestartSec=0\n",
            # The crash-loop backoff sleeps in ExecStartPre= (up to 5 min), postStart and image pulls may take a while.
            # (A plain init container runs as long as it takes: its start is its whole run.)
            "TimeoutStartSec=infinity\n" if role == init_containers.ROLE_INIT else "TimeoutStartSec=400s\n",
            stop_timeout,
            # TERM to the main process, then KILL to everything left when the grace period ends.
            "KillMode=mixed\n",
            f"EnvironmentFile={unit_value('path', f'{state_dir}/pods/{name}/env/{cname}.env', 'state_dir')}\n",
        ]
        if network and not podman:
            lines.append(f"NetworkNamespacePath={unit_value('path', podnet.netns_path(name), 'name')}\n")
        if not podman:
            lines.append(f"WorkingDirectory={unit_value('path', container['workingDir'] or '/', f'containers[{cname}].workingDir')}\n")
        lines.append(f"SyslogIdentifier={unit_value('text', f'{name}/{cname}', 'name')}\n")
        if spec.get("activeDeadlineSeconds"):
            lines.append(f"RuntimeMaxSec={spec['activeDeadlineSeconds']}s\n")
        if not podman:
            # (podman applies these to the container itself: --user, --memory, --cpus, --pids-limit, --volume)
            if security.get("runAsUser") is not None:
                lines.append(f"User={security['runAsUser']}\n")
            if security.get("runAsGroup") is not None:
                lines.append(f"Group={security['runAsGroup']}\n")
            limits = container["resources"]["limits"]
            if "memory" in limits:
                lines.append(f"MemoryMax={limits['memory']}\n")
            if limits.get("cpu"):
                lines.append(f"CPUQuota={_cpu_quota(limits['cpu'])}\n")
            if "pids" in limits:
                lines.append(f"TasksMax={limits['pids']}\n")
            for source, target, read_only in mounts:
                key = "BindReadOnlyPaths" if read_only else "BindPaths"
                lines.append(f"{key}={unit_value('bind', source, 'volumeMounts')}:{unit_value('bind', target, 'volumeMounts')}\n")
        if role == init_containers.ROLE_APP:
            # Init containers and sidecars are pulled in by the app containers (init_containers.unit_dependencies).
            lines += ["\n[Install]\n", "WantedBy=multi-user.target\n"]
        units[unit] = "".join(lines)
    return dict(sorted(units.items()))
