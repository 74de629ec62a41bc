# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converge the pods of one owner on this host: read, plan, apply, observe.

Reading and planning touch nothing, so check mode is the plan alone. Applying
writes files atomically, reloads systemd at most once, and batches every
start, restart and stop into one systemctl call per verb. Nothing here ever
removes a persistent volume: pods are deleted, their claims' data stays.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import time

from ansible_collections.hostfleet.workloads.plugins.module_utils.network import dns as cluster_dns
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import downward, events, fence, fileio, init_containers, namespaces, podnet, systemctl
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import grpc_probe as grpc_probe_code
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import hook as hook_script
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import registry_auth as registry_auth_code
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import status as pod_status
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import units as render
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError

try:
    from ansible_collections.hostfleet.workloads.plugins.module_utils.network import sync as network_sync
except ImportError:  # the CronJob runner carries only the node layer; the pod converges of the node module install it
    network_sync = None

RUN_DIR = "/run/hostfleet"


class NodeError(RuntimeError):
    """A problem found on the host before anything was changed (missing env source, hostPath, name clash)."""


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _write_atomic(path, content, mode=0o644):
    """Write a file of the node layer atomically, with ``mode`` whatever the umask, into a directory made 0755.

    Durability comes from one filesystem sync per converge (see apply), not one fsync per file.
    """
    fileio.ensure_dir(os.path.dirname(path), 0o755)
    fileio.write_atomic(path, content, mode, fsync=False)


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def owner_id(kind, name):
    return f"{kind}/{name}"


class Host:
    """Paths and on-disk state of the node layer on this host."""

    def __init__(self, state_dir, unit_dir=render.UNIT_DIR, wants_dir=render.WANTS_DIR, run_dir=RUN_DIR):
        self.state_dir = state_dir.rstrip("/") or "/"
        self.unit_dir = unit_dir
        self.wants_dir = wants_dir
        self.run_dir = run_dir

    def pod_dir(self, pod):
        return os.path.join(self.state_dir, "pods", pod)

    def record_path(self, pod):
        return os.path.join(self.pod_dir(pod), "pod.json")

    def env_path(self, pod, container):
        return os.path.join(self.pod_dir(pod), "env", f"{container}.env")

    def env_files(self, pod):
        """The environment files of a pod on this host (of current and removed containers)."""
        directory = os.path.dirname(self.env_path(pod, "x"))
        try:
            return [os.path.join(directory, f) for f in sorted(os.listdir(directory)) if f.endswith(".env")]
        except FileNotFoundError:
            return []

    def runtime_dir(self, pod, container=None):
        base = os.path.join(self.run_dir, "pods", pod)
        return os.path.join(base, container) if container else base

    @property
    def hook_path(self):
        return os.path.join(self.state_dir, "bin", "hostfleet-hook")

    def records(self):
        """Every pod record on this host: {pod name: record}."""
        result = {}
        base = os.path.join(self.state_dir, "pods")
        try:
            names = sorted(os.listdir(base))
        except FileNotFoundError:
            return result
        for name in names:
            text = _read(self.record_path(name))
            if text:
                try:
                    result[name] = json.loads(text)
                except ValueError:
                    continue
        return result

    def unit_files(self):
        """{unit name: content} of every hostfleet unit file."""
        result = {}
        try:
            names = os.listdir(self.unit_dir)
        except FileNotFoundError:
            return result
        for name in names:
            if render.parse_unit_name(name):
                result[name] = _read(os.path.join(self.unit_dir, name))
        return result


def read_env_source(entry):
    """The variables of an envFrom source on this host, or None when it does not exist.

    ConfigMaps and Secrets are `<state>/configmaps/<name>.env` and
    `<state>/secrets/<name>.env` (KEY=VALUE lines); fileRef is any such file.
    """
    text = _read(entry["resolved_path"])
    if text is None:
        return None
    variables = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _sep, value = line.partition("=")
        key = key.strip()
        if key.startswith("export "):
            key = key[len("export ") :].strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        variables[key] = value
    return variables


def _env_sources(host, pods):
    """Read every envFrom source the desired pods use; a missing non-optional one is an error."""
    sources = {}
    for index, pod in enumerate(pods):
        for list_name, cindex, container in init_containers.indexed(pod["spec"]):
            for eindex, entry in enumerate(container["envFrom"]):
                if entry["kind"] == "file":
                    key, path = ("file", entry["path"]), entry["path"]
                else:
                    # The pod's namespace's object (<namespace>_<name> outside default, namespaces.py).
                    own = namespaces.node_name(namespaces.namespace_of(pod["name"]), entry["name"])
                    key, path = (entry["kind"], entry["name"]), render.config_env_file(host.state_dir, entry["kind"], own)
                if key not in sources:
                    sources[key] = read_env_source({"resolved_path": path})
                if sources[key] is None and not entry["optional"]:
                    field = {"file": "fileRef", "configMap": "configMapRef", "secret": "secretRef"}[entry["kind"]]
                    raise SpecError(
                        f"pods[{index}].spec.{list_name}[{cindex}].envFrom[{eindex}].{field}",
                        f"{path} does not exist on this host (set optional: true to allow that)",
                    )
    return sources


def _check_host_paths(pods):
    for index, pod in enumerate(pods):
        # Freshly validated pods keep spec.volumes in input order: the position is the index of the input list.
        for vindex, volume in enumerate(pod["spec"]["volumes"].values()):
            if volume["kind"] != "hostPath" or volume["type"] in ("", "DirectoryOrCreate", "FileOrCreate"):
                continue
            try:
                mode = os.stat(volume["path"]).st_mode
            except FileNotFoundError:
                raise SpecError(
                    f"pods[{index}].spec.volumes[{vindex}].hostPath.path", f"{volume['path']} does not exist on this host (type {volume['type']})"
                ) from None
            check = {"Directory": stat.S_ISDIR, "File": stat.S_ISREG, "Socket": stat.S_ISSOCK, "CharDevice": stat.S_ISCHR, "BlockDevice": stat.S_ISBLK}[
                volume["type"]
            ]
            if not check(mode):
                raise SpecError(f"pods[{index}].spec.volumes[{vindex}].hostPath.path", f"{volume['path']} is not a {volume['type']}")


def _host_ports(spec):
    # A pod that said hostNetwork: true on a node with a pod network (podspec) takes its containerPorts on the host.
    on_host = spec.get("hostNetwork") is True
    for c, container in enumerate(spec.get("containers", [])):
        for p, port in enumerate(container.get("ports", [])):
            if port.get("hostPort"):
                yield (port.get("protocol", "TCP"), port["hostPort"]), f"spec.containers[{c}].ports[{p}].hostPort"
            elif on_host and port.get("containerPort"):
                yield (port.get("protocol", "TCP"), port["containerPort"]), f"spec.containers[{c}].ports[{p}].containerPort"


def _plan_resolv_conf(host, result, name, pod, field, node_config, on_pod_network):
    """Plan the pod's resolv.conf into ``result`` (network/dns.py: Kubernetes' one, for its dnsPolicy, once the node has
    cluster DNS); the path its units bind-mount, or None when the pod keeps the host's /etc/resolv.conf."""
    spec = pod["spec"]
    path = cluster_dns.resolv_conf_path(host.state_dir, name)
    try:
        text = cluster_dns.resolv_conf_text(node_config, namespaces.namespace_of(name), spec.get("dnsPolicy"), spec.get("dnsConfig"), not on_pod_network, field)
    except cluster_dns.DnsError as exc:
        where, _sep, message = str(exc).partition(": ")
        raise SpecError(where, message) from None
    before = _read(path)
    if text is None:
        if before is not None:
            result.removals.append(path)
        return None
    if before != text:
        # Read when a container starts (a bind mount of the file as it is then), as the kubelet's.
        result.writes[path] = (text, 0o644)
        result.diff.append({"before_header": path, "after_header": path, "before": before or "", "after": text})
    return path


def stays_on_host_network(record, host_network_spec):
    """Whether a pod stays on the host's network, as it runs, although the node now has a pod network.

    Once a node has a pod network, a pod without ``hostNetwork`` joins it; but a pod already running on the host's
    network (its ``record`` has no ``network``) whose spec, validated as before the node had one
    (``host_network_spec``), has the record's hash is left as it runs (no restart): only a changed spec moves it.
    """
    return record is not None and "network" not in record and record.get("spec_hash") == spec_hash(host_network_spec)


def _check_host_ports(records, pods, owner_kind, owner_name, prune, remove):
    """One pod per host may take a host port (the scheduler keeps them apart; this guards direct use)."""
    mine = {"kind": owner_kind, "name": owner_name}
    wanted = {pod["name"] for pod in pods}
    taken = {}
    for name, record in sorted(records.items()):
        leaving = record.get("owner") == mine and (name in remove or (prune and name not in wanted))
        if name in wanted or leaving:
            continue
        for key, _path in _host_ports(record.get("spec", {})):
            taken[key] = name
    for index, pod in enumerate(pods):
        for key, path in _host_ports(pod["spec"]):
            if key in taken and taken[key] != pod["name"]:
                raise SpecError(f"pods[{index}].{path}", f"host port {key[1]}/{key[0]} is already taken on this host by pod {taken[key]!r}")
            taken[key] = pod["name"]


def _pod_record(pod, owner_kind, owner_name):
    return {
        "name": pod["name"],
        # Services select pods of their own namespace (a record without it is of `default`, from before namespaces).
        "namespace": namespaces.namespace_of(pod["name"]),
        "owner": {"kind": owner_kind, "name": owner_name},
        "labels": pod["labels"],
        "annotations": pod["annotations"],
        "revision": pod["revision"],
        "spec": pod["spec"],
    }


def spec_hash(spec):
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


class Plan:
    """What one converge does; also the check-mode report."""

    def __init__(self):
        self.created, self.updated, self.relabelled, self.deleted, self.started = [], [], [], [], []
        self.writes = {}  # path -> (content, mode)
        self.network_sync = False  # run the node's network sync after apply (a node of the cluster network)
        self.network_problems = []  # what that sync reported (Services it left out, or its failure)
        self.removals = []  # files
        self.tree_removals = []  # directories owned by deleted pods (never persistent volumes)
        self.volumes_deleted = []  # persistent volumes deleted on request (a retention policy says Delete)
        self.links = {}  # wants symlink -> target, or None to remove
        self.start_units, self.restart_units, self.stop_units = set(), set(), set()
        self.reset_runtime = set()  # (pod, container) whose crash-loop history starts over
        self.volume_dirs = []  # (path, uid, gid, is_file)
        self.projections = []  # per-pod volume files to write (downward.plan_pod_volumes)
        self.diff = []
        self.reload = False
        self.owner = ""  # "Kind/name", for the events the step logs
        self.revisions = {}  # pod -> revision, for the events the step logs
        self.pending_path = None  # the owner's journal of what was written but not yet applied (see carry_over)
        self.unfence = []  # pods held at boot (fence.py) that this run keeps: they may start again
        self.resumed = False  # the plan finishes what an earlier converge wrote but did not apply

    @property
    def changed(self):
        return bool(self.created or self.updated or self.relabelled or self.deleted or self.started or self.writes or self.removals or self.volume_dirs
                    or self.volumes_deleted or self.resumed or self.unfence or self.projections)

    def journal(self):
        """What must still happen once the files are written: the content of the pending journal."""
        return {
            "start": sorted(self.start_units),
            "restart": sorted(self.restart_units - self.start_units),
            "reload": self.reload,
            "reset": sorted([pod, container] for pod, container in self.reset_runtime),
        }

    def summary(self):
        return {
            "created": sorted(self.created),
            "updated": sorted(self.updated),
            "relabelled": sorted(self.relabelled),
            "deleted": sorted(self.deleted),
            "started": sorted(self.started),
            "daemon_reload": self.reload,
            "volumes_deleted": sorted(self.volumes_deleted),
        }


def _volume_dirs(host, pod):
    """Directories (or files) the pod's volumes need: (path, uid, gid, is_file)."""
    spec = pod["spec"]
    owners = {}
    for container in init_containers.pod_containers(spec):
        security = container["securityContext"]
        for mount in container["volumeMounts"]:
            owners.setdefault(mount["name"], (security.get("runAsUser"), security.get("runAsGroup")))
    result = []
    for vname, volume in sorted(spec["volumes"].items()):
        volume = dict(volume, name=vname)
        path = render.volume_source(volume, host.state_dir, pod["name"], host.run_dir)
        uid, gid = owners.get(vname, (None, None))
        if downward.is_projected(volume):
            continue  # written whole, root's, with its modes (downward.write_volume)
        if volume["kind"] == "hostPath":
            if volume["type"] == "DirectoryOrCreate":
                result.append((path, None, None, False))
            elif volume["type"] == "FileOrCreate":
                result.append((path, None, None, True))
        else:
            result.append((path, uid, gid, False))
    return result


def plan(
    host, owner_kind, owner_name, pods, state, python, observed_units=None, prune=True, remove=(), delete_volumes=(), network=None, host_ip=None,
    node_config=None,
):
    """Compare desired pods with the host and return a Plan. Reads only.

    With ``prune`` the owner's pods become exactly ``pods``; without it, only
    the pods named in ``remove`` go (controllers change a few pods per step).
    ``network`` is the node's pod network (podnet.validate_config), for the pods
    whose spec says ``hostNetwork: false``. ``host_ip`` is the node's address (node.json), for the downward API.
    ``node_config`` is node.json (network/config.py) when the node has one: its cluster DNS goes into pods' resolv.conf.
    """
    owner = owner_id(owner_kind, owner_name)
    records = host.records()
    files = host.unit_files()
    result = Plan()
    wanted = {pod["name"]: pod for pod in pods} if state == "present" else {}
    result.owner = owner
    result.revisions = {name: pod.get("revision") or "" for name, pod in wanted.items()}
    kept_units = set()  # every unit of the pods that stay, as they will be after this converge
    for index, pod in enumerate(pods if state == "present" else []):
        existing = records.get(pod["name"])
        if existing and existing.get("owner") != {"kind": owner_kind, "name": owner_name}:
            other = existing.get("owner") or {}
            raise SpecError(
                f"pods[{index}].name", f"pod {pod['name']!r} already exists on this host and belongs to {other.get('kind')}/{other.get('name')}, not {owner}"
            )
    if state == "present":
        _check_host_paths(pods)
        _check_host_ports(records, pods, owner_kind, owner_name, prune, remove)
        sources = _env_sources(host, pods)
    addresses = {}
    on_pod_network = sorted(pod["name"] for pod in pods if state == "present" and pod["spec"].get("hostNetwork", True) is False)
    if on_pod_network:
        if network is None:
            raise SpecError("pod_network", f"is required: pods {', '.join(on_pod_network)} are on the pod network (hostNetwork: false)")
        # The owner's pods that this converge removes free their addresses at once (apply stops them before it starts).
        mine = {"kind": owner_kind, "name": owner_name}
        leaving = {n for n, r in records.items() if r.get("owner") == mine and n not in wanted and (prune or n in remove)}
        held = podnet.held_addresses({n: r for n, r in records.items() if n not in leaving})
        addresses = podnet.allocate(network["cidr"], held, on_pod_network)
    hook_source = hook_script_source()
    if _read(host.hook_path) != hook_source:
        result.writes[host.hook_path] = (hook_source, 0o755)
    _plan_network_sync(host, result)
    _plan_heartbeat(host, python, result)

    units_by_pod = {}
    for unit in files:
        parsed = render.parse_unit_name(unit)
        units_by_pod.setdefault(parsed[0], set()).add(unit)

    allocatable = downward.host_allocatable(host.state_dir) if wanted else None  # what a resourceFieldRef of a limit not set reads
    for name, pod in sorted(wanted.items()):
        env_files, env_names, env_counts = {}, {}, {}
        # The pod sees its Kubernetes name and namespace, not the node layer's <namespace>_<name> (namespaces.py).
        namespace, kube_name = namespaces.split(name)
        pod_uid = downward.pod_uid(records.get(name), name)
        # The downward API (downward.py); status.podIP: the pod's own address, or the host's on the host's network.
        fields = downward.pod_fields(
            kube_name, namespace, pod_uid, pod["labels"], pod["annotations"], downward.node_name(node_config), pod["spec"].get("serviceAccountName"),
            addresses[name] if name in addresses else host_ip, host_ip, pod["spec"]["containers"] + pod["spec"].get("initContainers", []), allocatable,
        )
        for container in init_containers.pod_containers(pod["spec"]):
            variables, _skipped, defined = render.container_env(container, sources, kube_name, pod["spec"].get("hostname") or kube_name, fields)
            env_files[container["name"]] = render.render_env_file(variables)
            env_counts[container["name"]] = len(variables)
            # Only the user's names are known to $(VAR) in command/args (HOSTNAME/POD_NAME are exported, not defined).
            env_names[container["name"]] = defined
        pod_network = podnet.pod_network_record(network, addresses[name]) if name in addresses else None
        pod_index = next(i for i, p in enumerate(pods) if p["name"] == name)
        resolv_conf = _plan_resolv_conf(host, result, name, pod, f"pods[{pod_index}].spec", node_config, pod_network is not None)
        desired_units = render.render_pod(pod, owner, env_names, host.state_dir, python, host.run_dir, pod_network, resolv_conf)
        kept_units |= set(desired_units)
        record = _pod_record(pod, owner_kind, owner_name)
        if pod_network:
            # The pod's address is kept here (podnet.held_addresses): it stays the pod's until the record goes.
            record["network"] = pod_network
        existing = records.get(name)
        if existing is None:
            result.created.append(name)
            record["created"] = time.time()
        else:
            record["created"] = existing.get("created", time.time())
        if existing is None or existing.get("uid"):
            # A record from before uids keeps none (downward.pod_uid derives the same one each time): no rewrite.
            record["uid"] = pod_uid
        record["spec_hash"] = spec_hash(pod["spec"])
        current_units = units_by_pod.get(name, set())
        changed_containers = set()
        for unit, content in desired_units.items():
            before = files.get(unit)
            if before != content:
                result.writes[os.path.join(host.unit_dir, unit)] = (content, 0o644)
                result.reload = True
                result.diff.append(
                    {
                        "before_header": os.path.join(host.unit_dir, unit),
                        "after_header": os.path.join(host.unit_dir, unit),
                        "before": before or "",
                        "after": content,
                    }
                )
                parsed = render.parse_unit_name(unit)
                if parsed[2] is None:
                    changed_containers.add(parsed[1])
                elif parsed[2] == "netns" and existing is not None:
                    # A new address or bridge: the namespace is made again, and the containers (bound to it) with it.
                    result.restart_units.add(unit)
                    changed_containers |= {c["name"] for c in init_containers.pod_containers(pod["spec"])}
                elif parsed[3] == "timer" and existing is not None:
                    result.restart_units.add(unit)
        for container in init_containers.pod_containers(pod["spec"]):
            path = host.env_path(name, container["name"])
            if _read(path) != env_files[container["name"]]:
                result.writes[path] = (env_files[container["name"]], 0o600)
                changed_containers.add(container["name"])
                result.diff.append(
                    {
                        "before_header": path,
                        "after_header": path,
                        "before": "(environment: not shown)\n" if existing else "",
                        "after": f"(environment: {env_counts[container['name']]} variables, not shown)\n",
                    }
                )
        # A container removed from the pod leaves no environment file (it may hold secrets) behind.
        for path in sorted(set(host.env_files(name)) - {host.env_path(name, c["name"]) for c in init_containers.pod_containers(pod["spec"])}):
            result.removals.append(path)
            result.diff.append({"before_header": path, "after_header": "(removed)", "before": "(environment: not shown)\n", "after": ""})
        for unit in sorted(current_units - set(desired_units)):
            result.removals.append(os.path.join(host.unit_dir, unit))
            result.stop_units.add(unit)
            result.reload = True
            result.diff.append({"before_header": os.path.join(host.unit_dir, unit), "after_header": "(removed)", "before": files[unit] or "", "after": ""})
        always = pod["spec"]["restartPolicy"] == "Always"
        for container in pod["spec"]["containers"]:
            unit = render.container_unit(name, container["name"])
            link = os.path.join(host.wants_dir, unit)
            target = os.path.join(host.unit_dir, unit)
            has_link = os.path.islink(link)
            if always and not has_link:
                result.links[link] = target
            elif not always and has_link:
                result.links[link] = None
        for unit in sorted(set(files) - set(desired_units)):
            parsed = render.parse_unit_name(unit)
            if parsed[0] == name and parsed[2] is None:
                link = os.path.join(host.wants_dir, unit)
                if os.path.islink(link):
                    result.links[link] = None
        for path, uid, gid, is_file in _volume_dirs(host, pod):
            if not os.path.lexists(path):
                result.volume_dirs.append((path, uid, gid, is_file))
        # downwardAPI/projected volumes and configMap/secret items: written for the pod, rewritten when their data changes.
        result.projections += downward.plan_pod_volumes(host.state_dir, pod, fields, f"pods[{pod_index}].spec")
        old_record = dict(existing or {})
        old_record.pop("created", None)
        new_record = dict(record)
        new_record.pop("created", None)
        if old_record != new_record:
            result.writes[host.record_path(name)] = (json.dumps(record, sort_keys=True, indent=1) + "\n", 0o600)
        container_units = {render.container_unit(name, c["name"]) for c in pod["spec"]["containers"]}
        if existing is None:
            result.start_units |= container_units
            result.reset_runtime |= {(name, c["name"]) for c in init_containers.pod_containers(pod["spec"])}
        else:
            restart = {render.container_unit(name, c) for c in changed_containers}
            result.restart_units |= restart
            result.reset_runtime |= {(name, c) for c in changed_containers}
            if restart or (current_units - set(desired_units)):
                result.updated.append(name)
            elif old_record != new_record:
                result.relabelled.append(name)
            if always and observed_units is not None:
                # Desired state is "running": a container someone stopped (or that failed for good) is started again.
                down = {u for u in container_units - restart if observed_units.get(u, ("", "inactive", ""))[1] in ("inactive", "failed")}
                # (Not while an init container runs: the app containers' start jobs wait for it.)
                if down and not init_containers.initializing(pod["spec"], name, observed_units, render.container_unit):
                    result.start_units |= down
                    result.started.append(name)

    for name, record in sorted(records.items()):
        if record.get("owner") != {"kind": owner_kind, "name": owner_name} or name in wanted:
            continue
        if state == "present" and not prune and name not in remove:
            continue
        result.deleted.append(name)
        for unit in sorted(units_by_pod.get(name, ())):
            result.removals.append(os.path.join(host.unit_dir, unit))
            result.stop_units.add(unit)
            result.reload = True
            result.diff.append({"before_header": os.path.join(host.unit_dir, unit), "after_header": "(removed)", "before": files[unit] or "", "after": ""})
            link = os.path.join(host.wants_dir, unit)
            if os.path.islink(link):
                result.links[link] = None
        # The pod's own directory (record, env files, emptyDir data) and runtime state go; claims' volumes stay.
        result.tree_removals += [host.pod_dir(name), host.runtime_dir(name), os.path.join(host.run_dir, "volumes", name)]
    _plan_volume_deletions(host, result, records, wanted, delete_volumes, owner_name)
    if state == "present":
        _plan_unfence(host, result, {n: r for n, r in records.items() if r.get("owner") == {"kind": owner_kind, "name": owner_name}}, wanted)
    result.pending_path = pending_path(host, owner_kind, owner_name)
    carry_over(result, _read_pending(result.pending_path), kept_units)
    return result


HEARTBEAT_TIMER = "hostfleet-heartbeat.timer"


def heartbeat_units(host, python):
    """{unit: content} of the heartbeat (fence.py): the hook's ``heartbeat`` every fence.HEARTBEAT_SECONDS."""
    service = (
        render.HEADER
        + "[Unit]\nDescription=hostfleet heartbeat (how long this host was away, for the pods' fence at boot)\n"
        + "\n[Service]\nType=oneshot\n"
        + f"ExecStart={render.exec_line([python, '-I', '-S', host.hook_path, 'heartbeat', host.state_dir, '-', '-'])}\n"
    )
    timer = (
        render.HEADER
        + "[Unit]\nDescription=hostfleet heartbeat timer\n"
        + f"\n[Timer]\nOnActiveSec=0\nOnUnitActiveSec={fence.HEARTBEAT_SECONDS}s\nAccuracySec=1s\n"
        + "\n[Install]\nWantedBy=multi-user.target\n"
    )
    return {"hostfleet-heartbeat.service": service, HEARTBEAT_TIMER: timer}


def _plan_heartbeat(host, python, result):
    """Install (or update) the heartbeat timer, enabled at boot, running from now."""
    written = False
    for unit, content in heartbeat_units(host, python).items():
        path = os.path.join(host.unit_dir, unit)
        if _read(path) != content:
            result.writes[path] = (content, 0o644)
            written = True
    link = os.path.join(host.wants_dir, HEARTBEAT_TIMER)
    if not os.path.islink(link):
        result.links[link] = os.path.join(host.unit_dir, HEARTBEAT_TIMER)
        written = True
    if written:
        result.reload = True
        result.restart_units.add(HEARTBEAT_TIMER)


def _plan_unfence(host, result, mine, wanted):
    """The owner's pods held at boot (fence.py) that this call keeps: the run that decided so lifts their fence and
    starts the containers the hook held. Pods it removes stay down until they go."""
    for name, record in sorted(mine.items()):
        if name in result.deleted or not fence.pod_fence(host.state_dir, name, host.run_dir):
            continue
        result.unfence.append(name)
        spec = wanted[name]["spec"] if name in wanted else record.get("spec") or {}
        for container in init_containers.pod_containers(dict(spec, containers=spec.get("containers") or [])):
            status = _read(os.path.join(host.runtime_dir(name, container["name"]), "status.json")) or ""
            if '"fenced"' in status:
                # (A held init container failed the app containers' start: they start again and pull it in.)
                result.start_units |= init_containers.units_to_start(spec, container["name"], lambda c, pod=name: render.container_unit(pod, c))
                result.reset_runtime.add((name, container["name"]))
        if name not in result.created + result.updated + result.started:
            result.started.append(name)


def pending_path(host, owner_kind, owner_name):
    return os.path.join(host.state_dir, "pending", f"{owner_kind.lower()}.{owner_name}.json")


def _read_pending(path):
    text = _read(path)
    try:
        pending = json.loads(text) if text else None
    except ValueError:
        return None
    return pending if isinstance(pending, dict) else None


def carry_over(result, pending, kept_units):
    """Put back into ``result`` what an earlier converge wrote but did not apply, for the units that stay. Pure.

    apply() journals the starts, restarts, reload and crash-loop resets of a plan before it writes the unit and
    environment files, and drops the journal only once systemctl did them all. A converge that failed half-way (a
    transient D-Bus error, a unit that does not load) leaves the files new and the units old: without the journal
    the next converge saw no difference, and a pod kept its old command or environment for good.
    """
    if not pending:
        return
    # A unit this plan restarts anyway is restarted (which starts it if it is down), never only started.
    start = {u for u in pending.get("start") or () if u in kept_units} - result.restart_units
    restart = {u for u in pending.get("restart") or () if u in kept_units} - start - result.start_units
    containers = {render.parse_unit_name(u)[:2] for u in kept_units if render.parse_unit_name(u)}
    reset = {(p[0], p[1]) for p in pending.get("reset") or () if isinstance(p, list) and len(p) == 2 and (p[0], p[1]) in containers}
    reload = bool(pending.get("reload")) and bool(kept_units)
    new_start, new_restart = start - result.start_units, restart - result.restart_units
    if not (new_start or new_restart or (reload and not result.reload) or reset - result.reset_runtime):
        return
    result.start_units |= start
    result.restart_units |= restart
    result.reset_runtime |= reset
    result.reload = result.reload or reload
    result.resumed = True
    done = set(result.created) | set(result.updated) | set(result.started)
    for pod in sorted({render.parse_unit_name(u)[0] for u in new_restart} - done):
        result.updated.append(pod)
    for pod in sorted({render.parse_unit_name(u)[0] for u in new_start} - done - set(result.updated)):
        result.started.append(pod)


def _plan_network_sync(host, result):
    """On a node of the cluster network, the network sync the hook runs (module_utils/network/sync.py) is installed
    with the hook, and run after apply: the pods this converge started or removed follow in the Service rules."""
    if network_sync is None or not os.path.exists(os.path.join(host.state_dir, "network", "node.json")):
        return
    result.network_sync = True
    source = network_sync.script_source()
    path = network_sync.script_path(host.state_dir)
    if _read(path) != source:
        result.writes[path] = (source, 0o755)


def _leave_services(host, result):
    """The pods this converge deletes leave the Service rules BEFORE their containers get SIGTERM (as Kubernetes takes
    a terminating pod out of its endpoints at once): else new connections reach a process that is exiting, or gone,
    until its hook's sync. Each container's runtime dir gets a ``terminating`` mark that the sync reads as unready."""
    if not result.network_sync or not result.deleted:
        return
    for name in result.deleted:
        try:
            containers = os.listdir(host.runtime_dir(name))
        except OSError:
            continue  # never started here: in no rule
        for container in containers:
            path = os.path.join(host.runtime_dir(name, container), network_sync.TERMINATING)
            if os.path.isdir(os.path.dirname(path)):
                fileio.write_atomic(path, "", 0o644, fsync=False)
    _run_network_sync(host, result)


def _run_network_sync(host, result):
    # After the converge did its work: a failing sync (a bad Service file) is reported, not a failed converge.
    if not result.network_sync:
        return
    try:
        result.network_problems = list(network_sync.run_sync(host.state_dir, host.run_dir).get("problems") or [])
    except (ValueError, OSError, RuntimeError) as exc:
        result.network_problems = [f"network sync failed: {exc}"]


def _plan_volume_deletions(host, result, records, wanted, claims, owner_name):
    """Persistent volumes go only when named AND no pod that stays on this host uses them."""
    if not claims:
        return
    in_use = {}
    for name, record in records.items():
        if name in result.deleted:
            continue
        spec = wanted[name]["spec"] if name in wanted else record.get("spec", {})
        for volume in (spec.get("volumes") or {}).values():
            if volume.get("kind") == "persistentVolumeClaim":
                in_use[namespaces.node_name(namespaces.namespace_of(name), volume["claimName"])] = name
    for index, claim in enumerate(claims):
        # Claims are the owner's namespace's (units.volume_source).
        claim = namespaces.node_name(namespaces.namespace_of(owner_name), claim)
        if claim in in_use:
            raise SpecError(f"delete_volumes[{index}]", f"volume {claim!r} is used by pod {in_use[claim]!r}, which stays on this host")
        if os.path.isdir(os.path.join(host.state_dir, "volumes", claim)):
            result.volumes_deleted.append(claim)


# The hook's import of fileio, replaced by fileio's code in the installed standalone script.
HOOK_FILEIO_IMPORT = "from ansible_collections.hostfleet.workloads.plugins.module_utils.node.fileio import ensure_dir, write_atomic\n"
# ... and of fence, replaced by fence's code (whose own fileio import is then already satisfied).
HOOK_FENCE_IMPORT = "from ansible_collections.hostfleet.workloads.plugins.module_utils.node.fence import FENCE_REASON, beat, pod_fence\n"
# ... and of grpc_probe (probes of type grpc), replaced by its code.
HOOK_GRPC_IMPORT = "from ansible_collections.hostfleet.workloads.plugins.module_utils.node.grpc_probe import grpc_health_check\n"
# ... and of registry_auth (imagePullSecrets), replaced by its code.
HOOK_AUTH_IMPORT = "from ansible_collections.hostfleet.workloads.plugins.module_utils.node.registry_auth import registry_auth_write\n"


def _source(module):
    loader = getattr(module, "__loader__", None)
    source = loader.get_source(module.__name__) if loader is not None and hasattr(loader, "get_source") else None
    if source is None:
        with open(module.__file__) as handle:
            source = handle.read()
    return source


def hook_script_source():
    """The pod hook's own source, installed on the host as a standalone script (fileio's code inlined)."""
    source = _source(hook_script)
    inlined = "".join(line for line in _source(fileio).splitlines(True) if line != "from __future__ import annotations\n")
    fence_code = "".join(line for line in _source(fence).splitlines(True) if line not in ("from __future__ import annotations\n", HOOK_FILEIO_IMPORT))
    grpc_code = "".join(line for line in _source(grpc_probe_code).splitlines(True) if line != "from __future__ import annotations\n")
    auth_code = "".join(line for line in _source(registry_auth_code).splitlines(True) if line != "from __future__ import annotations\n")
    if HOOK_AUTH_IMPORT not in source:
        raise RuntimeError("hook.py no longer imports registry_auth as HOOK_AUTH_IMPORT says: the installed hook would not run")
    if HOOK_FILEIO_IMPORT not in source or HOOK_FENCE_IMPORT not in source or HOOK_GRPC_IMPORT not in source:
        raise RuntimeError("hook.py no longer imports fileio, fence and grpc_probe as HOOK_*_IMPORT say: the installed hook would not run")
    source = source.replace(HOOK_FILEIO_IMPORT, inlined, 1).replace(HOOK_FENCE_IMPORT, fence_code, 1).replace(HOOK_GRPC_IMPORT, grpc_code, 1)
    return source.replace(HOOK_AUTH_IMPORT, auth_code, 1)


def apply(host, result):
    """Carry out a Plan: stop what goes, write what changed, reload once, start what is new.

    What is to start, restart or reload is journaled first (see carry_over): if this call fails half-way, the next
    converge of the owner finishes it."""
    journal = result.journal()
    if result.pending_path and (journal["start"] or journal["restart"] or journal["reload"] or journal["reset"]):
        fileio.ensure_dir(os.path.dirname(result.pending_path), 0o700)
        fileio.write_atomic(result.pending_path, json.dumps(journal, sort_keys=True) + "\n", 0o600, fsync=True)
    if result.stop_units:
        _leave_services(host, result)
        systemctl.stop(result.stop_units)
    for path in result.removals:
        _unlink(path)
    for path, target in sorted(result.links.items()):
        if target is None:
            _unlink(path)
    for path in result.tree_removals:
        shutil.rmtree(path, ignore_errors=True)
    for claim in result.volumes_deleted:
        shutil.rmtree(os.path.join(host.state_dir, "volumes", claim))
    if result.writes or result.reset_runtime:
        # Whatever an older version or a umask of 0 left: the state and runtime roots are root's, 0755.
        for directory in (host.state_dir, os.path.join(host.state_dir, "pods"), host.run_dir, os.path.join(host.run_dir, "pods")):
            fileio.ensure_dir(directory, 0o755)
    for path, (content, mode) in sorted(result.writes.items()):
        _write_atomic(path, content, mode)
    for path, target in sorted(result.links.items()):
        if target is not None:
            fileio.ensure_dir(os.path.dirname(path), 0o755)
            _unlink(path)
            os.symlink(target, path)
    for path, uid, gid, is_file in result.volume_dirs:
        if is_file:
            # A FileOrCreate hostPath: 0644 as the kubelet makes it, in 0755 parents.
            fileio.ensure_dir(os.path.dirname(path), 0o755)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            os.fchmod(fd, 0o644)
            os.close(fd)
        else:
            fileio.ensure_dir(path, 0o755)
        if uid is not None or gid is not None:
            os.chown(path, uid if uid is not None else -1, gid if gid is not None else -1)
    downward.apply_volumes(result.projections)
    for pod in result.unfence:
        fence.unfence(pod, host.run_dir)
    for pod, container in sorted(result.reset_runtime):
        rdir = host.runtime_dir(pod, container)
        fileio.ensure_dir(rdir, 0o755)
        fileio.write_atomic(os.path.join(rdir, "reset"), "", 0o600, fsync=False)
    if result.writes or result.links:
        os.sync()  # one flush for every file written: units, records and env files survive a power cut together
    if result.reload:
        systemctl.daemon_reload()
    # Units that were started again, or removed (a failed unit whose file is gone stays listed as failed otherwise).
    failed = set(result.start_units | result.restart_units | result.stop_units)
    systemctl.reset_failed(failed)
    errors = []
    # One failing verb must not keep the other from running: a failed start leaves the restarts to do.
    for verb, units in ((systemctl.start, result.start_units), (systemctl.restart, result.restart_units - result.start_units)):
        try:
            verb(units)
        except systemctl.SystemctlError as exc:
            errors.append(str(exc))
    if errors:
        raise systemctl.SystemctlError("; ".join(errors))
    if result.pending_path:
        _unlink(result.pending_path)
    _run_network_sync(host, result)
    _log_events(result)


def _log_events(result):
    """The step as the node saw it, in the journal, for workload_info's events."""
    events.log_converge(result.owner, result.created, result.deleted, result.updated, result.revisions)


def observe(host, owner_kind=None, owner_name=None, selector=None, names=None, units=None, host_ip=None):
    """Status of the pods on this host (of one owner, matching labels, or by name); ``host_ip``: the node's address."""
    if units is None:
        units = systemctl.list_units(f"{render.UNIT_PREFIX}*")
    now = time.time()
    result = []
    for name, record in sorted(host.records().items()):
        if owner_name is not None and record.get("owner") != {"kind": owner_kind, "name": owner_name}:
            continue
        if names is not None and name not in names:
            continue
        if selector and any(record.get("labels", {}).get(k) != v for k, v in selector.items()):
            continue
        status = pod_status.pod_status(record, units, host, now)
        # status.hostIP, and status.podIP of a pod on the host's network, as Kubernetes reports them.
        status["host_ip"] = host_ip
        if status["pod_ip"] is None:
            status["pod_ip"] = host_ip
        result.append(status)
    return result
