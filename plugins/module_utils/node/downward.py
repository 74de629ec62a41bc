# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The downward API and the per-pod volumes of a host: field and resource values, and the files of ``downwardAPI``,
``projected`` and ``configMap``/``secret`` volumes with ``items`` or a ``defaultMode``. Stdlib only.

Validation follows Kubernetes' (pkg/apis/core/validation: validateObjectFieldSelector,
validateContainerResourceFieldSelector, validateContainerResourceDivisor, validateDownwardAPIVolumeFile,
validateProjectionSources), with its messages. Values follow the kubelet's (podFieldSelectorRuntimeValue,
ExtractContainerResourceValue: a limit not set is the node's allocatable, values are rounded up to the divisor).

A per-pod volume lives in ``<state_dir>/pods/<pod>/volumes/<volume>/`` and is written as the kubelet's AtomicWriter
writes it: the files in a hidden ``..<timestamp>`` directory, ``..data`` a symlink to it, and each top-level name a
symlink into ``..data``; an update writes a new directory and renames a new ``..data`` over the old one, so a reader
sees the old files or the new ones, never a mix or half a file. The converge of a pod writes them (labels and
annotations that change in place are rewritten, the containers keep running), and ``config_data`` rewrites the
volumes of the ConfigMap or Secret it changed. A ``subPath`` mount binds the file itself and does not follow.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import stat
import time
import uuid
from decimal import Decimal

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import fileio, namespaces, quantity
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import (
    SpecError,
    _bool,
    _expect,
    _int,
    _known,
    _label_key,
    _missing,
    _or_empty,
    _str,
    config_key,
    dns_label,
)

# Kubernetes' validEnvDownwardAPIFieldPathExpressions and validVolumeDownwardAPIFieldPathExpressions (sorted, as
# its messages list them); labels and annotations take a subscript (metadata.labels['app']) in both.
ENV_FIELD_PATHS = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
)
VOLUME_FIELD_PATHS = ("metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid")
# What ConvertDownwardAPIFieldLabel knows for v1: any other path is "field label not supported".
_CONVERTIBLE = ENV_FIELD_PATHS + ("metadata.annotations", "metadata.labels", "spec.restartPolicy", "spec.schedulerName", "status.phase")
_SUBSCRIPTABLE = ("metadata.annotations", "metadata.labels")
RESOURCES = ("limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu", "requests.ephemeral-storage", "requests.memory")
_MEMORY_DIVISORS = ("1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei")
_DIVISOR_VALUES = {
    "cpu": {Decimal("0.001"), Decimal(1)},
    "memory": {quantity.parse_quantity(d) for d in _MEMORY_DIVISORS},
}
_DIVISOR_MESSAGES = {
    "cpu": "only divisor's values 1m and 1 are supported with the cpu resource",
    "memory": f"only divisor's values {', '.join(_MEMORY_DIVISORS)} are supported with the memory resource",
    "ephemeral-storage": f"only divisor's values {', '.join(_MEMORY_DIVISORS)} are supported with the local ephemeral storage resource",
}
# Kubernetes' default file mode of every projection; the node keeps Secret files root-only unless a mode says otherwise
# (docs/security.md).
DEFAULT_MODE = 0o644
SECRET_DEFAULT_MODE = 0o600
# The mode of a file in the node's shared tree of a ConfigMap/Secret (configdata.py): a volume without items whose
# defaultMode says just that is that tree, bind-mounted, as before projections existed.
TREE_MODE = {"configMap": 0o644, "secret": 0o600}
PROJECTED_KINDS = ("downwardAPI", "projected")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
DATA_DIR = "..data"


# --- validation (called by podspec) --------------------------------------------------------------------------------


def _quote(value):
    """Go's %q of a string (strconv.Quote), as Kubernetes' messages and label files write values."""
    out = ['"']
    for char in value:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif char in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}[char])
        elif char == " " or char.isprintable():
            out.append(char)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")  # Go's UTF-8 decoding of a lone surrogate gives the replacement character
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out) + '"'


def _supported(value, supported):
    return f"Unsupported value: {_quote(value)}: supported values: {', '.join(_quote(s) for s in supported)}"


def split_subscript(field_path):
    """(path, subscript) of ``metadata.labels['key']``, else None (Kubernetes' SplitMaybeSubscriptedPath)."""
    if not field_path.endswith("']"):
        return None
    head, sep, subscript = field_path[:-2].partition("['")
    if not sep or not head:
        return None
    return head, subscript


def field_ref(ref, path, volume=False):
    """An ObjectFieldSelector of env (``volume`` False) or of a downwardAPI volume file: its normal form."""
    _known(_expect(ref, dict, path), {"fieldPath", "apiVersion"}, path)
    api_version = ref.get("apiVersion")
    if api_version not in (None, "", "v1"):
        raise SpecError(f"{path}.apiVersion", f"Invalid value: {_quote(str(api_version))}: error converting fieldPath: unsupported pod version: {api_version}")
    field_path = _str(ref, "fieldPath", path, required=True)
    if field_path == "":
        raise SpecError(f"{path}.fieldPath", "Required value")
    split = split_subscript(field_path)
    if split is not None:
        head, subscript = split
        if head not in _SUBSCRIPTABLE:
            message = f"error converting fieldPath: field label does not support subscript: {field_path}"
            raise SpecError(f"{path}.fieldPath", f"Invalid value: {_quote(field_path)}: {message}")
        try:
            _label_key(subscript.lower() if head == "metadata.annotations" else subscript, path)
        except SpecError as exc:
            raise SpecError(path, f"Invalid value: {_quote(subscript)}: {exc.message}") from None
        return {"kind": "field", "fieldPath": field_path}
    if field_path == "spec.host":
        field_path = "spec.nodeName"  # Kubernetes' alias of old v1 clients
    if field_path not in _CONVERTIBLE:
        raise SpecError(f"{path}.fieldPath", f"Invalid value: {_quote(field_path)}: error converting fieldPath: field label not supported: {field_path}")
    supported = VOLUME_FIELD_PATHS if volume else ENV_FIELD_PATHS
    if field_path not in supported:
        raise SpecError(f"{path}.fieldPath", _supported(field_path, supported))
    return {"kind": "field", "fieldPath": field_path}


def resource_field_ref(ref, path, volume=False):
    """A ResourceFieldSelector: containerName (required in a volume), resource, divisor (base units: CPU millicores,
    bytes otherwise; default 1)."""
    _known(_expect(ref, dict, path), {"containerName", "resource", "divisor"}, path)
    container = _str(ref, "containerName", path, default="")
    if volume and not container:
        raise SpecError(f"{path}.containerName", "Required value")
    if container:
        dns_label(container, f"{path}.containerName")
    resource = _str(ref, "resource", path, required=True)
    if resource not in RESOURCES:
        raise SpecError(f"{path}.resource", _supported(resource, RESOURCES))
    name = resource.split(".", 1)[1]
    kind = "cpu" if name == "cpu" else "memory"
    raw = ref.get("divisor")
    value = Decimal(0)
    if raw is not None:
        try:
            value = quantity.parse_quantity(raw)
        except quantity.QuantityError as exc:
            raise SpecError(f"{path}.divisor", str(exc)) from None
    if value == 0:
        value = Decimal(1)  # an unset (zero) divisor is 1, as in Kubernetes
    elif value not in _DIVISOR_VALUES[kind]:
        raise SpecError(f"{path}.divisor", f"Invalid value: {_quote(str(raw))}: {_DIVISOR_MESSAGES[name]}")
    divisor = int(value * 1000) if kind == "cpu" else int(value)
    return {"kind": "resource", "containerName": container, "resource": resource, "divisor": divisor}


def _mode(body, key, path):
    mode = _int(body, key, path, minimum=None, maximum=None)
    if mode is not None and not 0 <= mode <= 0o777:
        raise SpecError(f"{path}.{key}", f"Invalid value: {mode}: must be a number between 0 and 0777 (octal), both inclusive")
    return mode


def local_path(value, path):
    """A file's path inside a volume (Kubernetes' validateLocalNonReservedPath), normalised: relative, no '..' element,
    not starting with '..'; no control characters, components of at most 255 bytes (a file name)."""
    _expect(value, str, path)
    if not value:
        raise SpecError(path, "Required value")
    if value.startswith("/"):
        raise SpecError(path, f"Invalid value: {_quote(value)}: must be a relative path")
    parts = value.split("/")
    if ".." in parts:
        raise SpecError(path, f"Invalid value: {_quote(value)}: must not contain '..'")
    if value.startswith(".."):
        raise SpecError(path, f"Invalid value: {_quote(value)}: must not start with '..'")
    parts = [p for p in parts if p not in ("", ".")]
    too_long = any(len(p.encode("utf-8", "surrogatepass")) > 255 for p in parts) or len(value.encode("utf-8", "surrogatepass")) > 1024
    if not parts or _CONTROL.search(value) or too_long:
        raise SpecError(path, f"Invalid value: {_quote(value)}: must be a file path of names of at most 255 bytes without control characters")
    return "/".join(parts)


def _items(value, path, kind):
    """items of a configMap/secret (key, path, mode) or of a downwardAPI volume (path, fieldRef|resourceFieldRef, mode)."""
    result = []
    for i, item in enumerate(_expect(_or_empty(value, list), list, path)):
        ipath = f"{path}[{i}]"
        if kind == "downwardAPI":
            _known(item, {"path", "fieldRef", "resourceFieldRef", "mode"}, ipath)
            entry = {"path": local_path(item.get("path") if item.get("path") is not None else _missing(f"{ipath}.path"), f"{ipath}.path")}
            if item.get("fieldRef") is not None and item.get("resourceFieldRef") is not None:
                raise SpecError(ipath, "fieldRef and resourceFieldRef can not be specified simultaneously")
            if item.get("fieldRef") is not None:
                entry["fieldRef"] = field_ref(item["fieldRef"], f"{ipath}.fieldRef", volume=True)
            elif item.get("resourceFieldRef") is not None:
                entry["resourceFieldRef"] = resource_field_ref(item["resourceFieldRef"], f"{ipath}.resourceFieldRef", volume=True)
            else:
                raise SpecError(ipath, "one of fieldRef or resourceFieldRef is required")
        else:
            _known(item, {"key", "path", "mode"}, ipath)
            entry = {
                "key": config_key(item.get("key") if item.get("key") is not None else _missing(f"{ipath}.key"), f"{ipath}.key"),
                "path": local_path(item.get("path") if item.get("path") is not None else _missing(f"{ipath}.path"), f"{ipath}.path"),
            }
        mode = _mode(item, "mode", ipath)
        if mode is not None:
            entry["mode"] = mode
        result.append(entry)
    return result


def _check_paths(paths, path):
    """Two files at one path, or a file where another needs a directory: Kubernetes' "conflicting duplicate paths"."""
    seen = set()
    for where, file_path in paths:
        if file_path in seen:
            raise SpecError(where, f"Invalid value: {_quote(file_path)}: conflicting duplicate paths")
        seen.add(file_path)
    for where, file_path in paths:
        parts = file_path.split("/")
        for n in range(1, len(parts)):
            if "/".join(parts[:n]) in seen:
                raise SpecError(where, f"Invalid value: {_quote(file_path)}: conflicting duplicate paths (a file of the volume is one of its directories)")


def config_volume_extras(kind, body, path, result):
    """``items`` and ``defaultMode`` of a configMap/secret volume, added to its normal form ``result`` when they make
    the volume the pod's own projection (see is_projected). A volume without items whose defaultMode reads as the node's
    tree mode (the same read and execute bits: the mount is read-only, write bits show nothing) keeps its normal form
    and the bind of the shared tree, as before projections existed (so its revision hash stays)."""
    mode = _mode(body, "defaultMode", path)
    if body.get("items") is not None:
        result["items"] = _items(body["items"], f"{path}.items", kind)
        _check_paths([(f"{path}.items[{i}].path", item["path"]) for i, item in enumerate(result["items"])], path)
        if mode is not None:
            result["defaultMode"] = mode
    elif mode is not None and mode & 0o555 != TREE_MODE[kind] & 0o555:
        result["defaultMode"] = mode
    return result


def _source_ref(kind, body, path):
    name_field = "name"
    _known(body, {name_field, "optional", "items"}, path)
    return {
        "kind": kind,
        "sourceName": dns_label(body.get(name_field) if body.get(name_field) is not None else _missing(f"{path}.{name_field}"), f"{path}.{name_field}"),
        "optional": _bool(body, "optional", path),
        "items": _items(body.get("items"), f"{path}.items", kind),
    }


def downward_volume(body, path):
    """A downwardAPI volume's normal form."""
    _known(body, {"items", "defaultMode"}, path)
    mode = _mode(body, "defaultMode", path)
    items = _items(body.get("items"), f"{path}.items", "downwardAPI")
    _check_paths([(f"{path}.items[{i}].path", item["path"]) for i, item in enumerate(items)], path)
    return {"kind": "downwardAPI", "items": items, "defaultMode": DEFAULT_MODE if mode is None else mode, "readOnly": True}


PROJECTION_SOURCES = ("configMap", "secret", "downwardAPI", "serviceAccountToken", "clusterTrustBundle")


def projected_volume(body, path):
    """A projected volume's normal form: configMap, secret and downwardAPI sources. A serviceAccountToken is not
    applicable on hosts (no API server issues tokens): apply takes it out and lists it in ignored_fields; given to
    a module directly, it is refused naming it. clusterTrustBundle is refused (no API server holds bundles)."""
    _known(body, {"sources", "defaultMode"}, path)
    mode = _mode(body, "defaultMode", path)
    sources = []
    paths = []
    for i, source in enumerate(_expect(_or_empty(body.get("sources"), list), list, f"{path}.sources")):
        spath = f"{path}.sources[{i}]"
        _known(source, set(PROJECTION_SOURCES), spath)
        present = [k for k in PROJECTION_SOURCES if source.get(k) is not None]
        if len(present) != 1:
            raise SpecError(spath, "may not specify more than 1 volume type per source" if present else "must specify one volume type per source")
        kind = present[0]
        sub = f"{spath}.{kind}"
        if kind == "serviceAccountToken":
            raise SpecError(sub, "is not applicable on hosts: no API server issues service account tokens (apply lists it in ignored_fields; remove it here)")
        if kind == "clusterTrustBundle":
            raise SpecError(sub, "is not supported on hosts: there is no API server holding ClusterTrustBundles (put the certificates in a ConfigMap)")
        if kind == "downwardAPI":
            _known(source[kind], {"items"}, sub)
            entry = {"kind": "downwardAPI", "items": _items(source[kind].get("items"), f"{sub}.items", "downwardAPI")}
        else:
            entry = _source_ref(kind, source[kind], sub)
        paths += [(f"{sub}.items[{j}].path", item["path"]) for j, item in enumerate(entry["items"])]
        sources.append(entry)
    _check_paths(paths, path)
    return {"kind": "projected", "sources": sources, "defaultMode": DEFAULT_MODE if mode is None else mode, "readOnly": True}


def is_projected(volume):
    """Whether the node writes the volume for the pod (its own directory) rather than binding a shared tree."""
    return volume["kind"] in PROJECTED_KINDS or (volume["kind"] in TREE_MODE and ("items" in volume or "defaultMode" in volume))


def _refs_of_volume(volume):
    """The downwardAPI items of a volume's normal form (for the containerName check)."""
    if volume["kind"] == "downwardAPI":
        return volume["items"]
    if volume["kind"] == "projected":
        return [item for source in volume["sources"] if source["kind"] == "downwardAPI" for item in source["items"]]
    return []


def uses_service_account(spec):
    containers = list(spec["containers"]) + list(spec.get("initContainers") or [])
    return any((item.get("valueFrom") or {}).get("fieldPath") == "spec.serviceAccountName" for c in containers for item in c.get("env") or [])


def check_references(spec, path):
    """Pod-level checks of a normal form: a resourceFieldRef's containerName names a container of the pod; a container
    that runs as another user than root can read the Secret volumes it mounts (the pod's fsGroup counts)."""
    fs_group = (spec.get("securityContext") or {}).get("fsGroup")
    for list_name in ("containers", "initContainers"):
        for c_index, container in enumerate(spec.get(list_name) or []):
            user = container["securityContext"].get("runAsUser")
            for m_index, mount in enumerate(container["volumeMounts"] if user else []):
                if not secret_readable_by(spec["volumes"][mount["name"]], user, fs_group):
                    raise SpecError(
                        f"{path}.{list_name}[{c_index}].volumeMounts[{m_index}].name",
                        f"secret volume {mount['name']!r}: Secret files on hosts are readable by root only, and this container runs as user "
                        f"{user} (use secretKeyRef/envFrom, which the root-only environment file carries, run as root, or give the files "
                        "a defaultMode/mode that others may read, e.g. 0444, as Kubernetes' default 0644 does, or 0440 with the pod's fsGroup)",
                    )
    names = [c["name"] for c in spec["containers"]] + [c["name"] for c in spec.get("initContainers") or []]
    for list_name, c_index, container in [(n, i, c) for n in ("containers", "initContainers") for i, c in enumerate(spec.get(n) or [])]:
        for item in container["env"]:
            ref = item.get("valueFrom") or {}
            if ref.get("kind") == "resource" and ref["containerName"] and ref["containerName"] not in names:
                raise SpecError(
                    f"{path}.{list_name}[{c_index}].env[{item['name']}].valueFrom.resourceFieldRef.containerName",
                    f"Unsupported value: {_quote(ref['containerName'])}: supported values: {', '.join(_quote(n) for n in names)}",
                )
    for vname, volume in spec["volumes"].items():
        for item in _refs_of_volume(volume):
            ref = item.get("resourceFieldRef")
            if ref and ref["containerName"] not in names:
                raise SpecError(
                    f"{path}.volumes[{vname}].items[{item['path']}].resourceFieldRef.containerName",
                    f"Unsupported value: {_quote(ref['containerName'])}: supported values: {', '.join(_quote(n) for n in names)}",
                )


def secret_readable_by(volume, uid, fs_group=None):
    """Whether a container running as ``uid`` (not root) can read every Secret file of the volume: the node keeps
    Secret files root-only unless a mode gives others read access (docs/security.md), or the pod's fsGroup owns the
    pod's own projection (group-readable, as the kubelet makes it)."""
    if volume["kind"] in ("secret", "projected") and fs_group is not None and is_projected(volume):
        return True
    if volume["kind"] == "secret":
        sources, default = [volume], volume.get("defaultMode", SECRET_DEFAULT_MODE)
    elif volume["kind"] == "projected":
        sources, default = [s for s in volume["sources"] if s["kind"] == "secret"], volume["defaultMode"]
    else:
        return True
    for source in sources:
        modes = [item.get("mode", default) for item in source.get("items") or []] or [default]
        if any(not mode & 0o004 for mode in modes):
            return False
    return True


# --- values ------------------------------------------------------------------------------------------------------


def pod_uid(existing, name):
    """metadata.uid: made when the pod is created on the node (kept in its record), the same across restarts and
    converges, new when the pod is made again. A record written before uids has none: one is derived from the pod's
    name and creation time, which are as stable (and change together with a re-creation)."""
    if existing is None:
        return str(uuid.uuid4())
    if existing.get("uid"):
        return existing["uid"]
    digest = hashlib.sha256(f"{name}\0{existing.get('created')!r}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def node_name(node_config):
    """spec.nodeName: the node's inventory name (node.json's ``node``), else the host's name."""
    if node_config and node_config.get("node"):
        return node_config["node"]
    return socket.gethostname()


def host_allocatable(state_dir):
    """The node's allocatable CPU (millicores), memory and ephemeral storage (bytes): what a limit not set reads as."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    memory = 0
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    memory = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    storage = 0
    try:
        info = os.statvfs(state_dir if os.path.isdir(state_dir) else "/")
        storage = info.f_blocks * info.f_frsize
    except OSError:
        pass
    return {"cpu": cpus * 1000, "memory": memory, "ephemeral-storage": storage}


def pod_fields(name, namespace, uid, labels, annotations, node, service_account, pod_ip, host_ip, containers, allocatable):
    """Everything a fieldRef or resourceFieldRef of the pod reads (field_value, resource_value)."""
    return {
        "metadata.name": name,
        "metadata.namespace": namespace,
        "metadata.uid": uid,
        "metadata.labels": dict(labels),
        "metadata.annotations": dict(annotations),
        "spec.nodeName": node,
        # Kubernetes' default service account when the spec names none.
        "spec.serviceAccountName": service_account or "default",
        "status.podIP": pod_ip,
        # One address family on hosts: the list is the one address (Kubernetes joins the list with ',').
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
        "resources": {c["name"]: c["resources"] for c in containers},
        "allocatable": allocatable,
    }


def format_map(mapping):
    """A labels/annotations file: ``key="value"`` lines sorted by key, Go-quoted values, no final newline (Kubernetes'
    formatMap)."""
    return "\n".join(f"{key}={_quote(mapping[key])}" for key in sorted(mapping))


def field_value(field_path, fields):
    """The value of a fieldRef, or None when the host does not know it (status.hostIP without node.json)."""
    split = split_subscript(field_path)
    if split is not None:
        return (fields.get(split[0]) or {}).get(split[1], "")
    value = fields.get(field_path)
    if isinstance(value, dict):
        return format_map(value)
    return value


def resource_value(ref, container_name, fields):
    """The kubelet's value of a resourceFieldRef: the container's request or limit (a limit not set is the node's
    allocatable, a request not set is 0), divided by the divisor and rounded up."""
    part, name = ref["resource"].split(".", 1)
    resources = fields["resources"][ref["containerName"] or container_name]
    value = resources.get(part, {}).get(name)
    if value is None:
        value = fields["allocatable"].get(name, 0) if part == "limits" else 0
    return str(-(-value // ref["divisor"]))


def env_value(ref, container_name, fields):
    """An env[].valueFrom fieldRef/resourceFieldRef's value, None when the host does not know it."""
    if ref["kind"] == "resource":
        return resource_value(ref, container_name, fields) if "resources" in fields else None
    value = field_value(ref["fieldPath"], fields)
    if value is not None and "\x00" in value:
        # Only an annotation can hold one; no environment (nor systemd's file of it) can carry it.
        raise SpecError(ref["fieldPath"], "the value contains a NUL character, which an environment variable cannot carry")
    return value


# --- the files of a volume ---------------------------------------------------------------------------------------


def _source_files(kind, source_name, read_source):
    return read_source(kind, source_name)


def volume_payload(volume, fields, read_source, where):
    """{path: (bytes, mode)} of a per-pod volume. ``read_source(kind, name)`` gives a ConfigMap's/Secret's {key: bytes},
    None when the node has no such object. A missing object or key that is not optional raises SpecError at ``where``."""
    payload = {}
    if volume["kind"] == "downwardAPI":
        sources = [{"kind": "downwardAPI", "items": volume["items"]}]
        default = volume["defaultMode"]
    elif volume["kind"] == "projected":
        sources, default = volume["sources"], volume["defaultMode"]
    else:
        sources = [volume]
        default = volume.get("defaultMode", SECRET_DEFAULT_MODE if volume["kind"] == "secret" else DEFAULT_MODE)
    for source in sources:
        if source["kind"] == "downwardAPI":
            for item in source["items"]:
                if "fieldRef" in item:
                    value = field_value(item["fieldRef"]["fieldPath"], fields)
                else:
                    value = resource_value(item["resourceFieldRef"], None, fields)
                payload[item["path"]] = ((value or "").encode("utf-8"), item.get("mode", default))
            continue
        what = "ConfigMap" if source["kind"] == "configMap" else "Secret"
        data = _source_files(source["kind"], source["sourceName"], read_source)
        if data is None:
            if source["optional"]:
                continue
            raise SpecError(where, f"{what} {source['sourceName']!r} does not exist on this host (set optional: true to allow that)")
        items = source.get("items") or [{"key": key, "path": key} for key in sorted(data)]
        for item in items:
            if item["key"] not in data:
                if source["optional"]:
                    continue
                raise SpecError(where, f"{what} {source['sourceName']!r} has no key {item['key']!r} (set optional: true to allow that)")
            payload[item["path"]] = (data[item["key"]], item.get("mode", default))
    return payload


def dir_mode(payload):
    """Root-only when every file is (a Secret's default); else 0755, so that the files' own modes decide."""
    return 0o700 if payload and all(not mode & 0o077 for _data, mode in payload.values()) else 0o755


def current_payload(root):
    """{path: (bytes, mode)} of what ``root`` shows now (through ``..data``), None when it is not a written volume."""
    target = os.path.join(root, DATA_DIR)
    if not os.path.islink(target):
        return None
    base = os.path.join(root, os.readlink(target))
    result = {}
    for directory, _dirs, files in os.walk(base):
        for file_name in files:
            full = os.path.join(directory, file_name)
            info = os.lstat(full)
            if not stat.S_ISREG(info.st_mode):
                continue
            with open(full, "rb") as handle:
                result[os.path.relpath(full, base)] = (handle.read(), stat.S_IMODE(info.st_mode))
    # A top-level name without its link, or a link left of a file gone, is a difference.
    tops = {p.split("/", 1)[0] for p in result}
    for entry in os.listdir(root):
        if not entry.startswith("..") and entry not in tops:
            return None
    for top in tops:
        link = os.path.join(root, top)
        if not os.path.islink(link) or os.readlink(link) != f"{DATA_DIR}/{top}":
            return None
    return result


def with_fs_group(payload, fs_group):
    """The kubelet's ownership of a read-only volume under a pod's fsGroup: group fsGroup, group-readable (0440 added)."""
    if fs_group is None:
        return payload
    return {path: (data, mode | 0o440) for path, (data, mode) in payload.items()}


def plan_volume(root, payload, group=None):
    """None when ``root`` already shows ``payload`` with its modes (and group), else the write to make."""
    try:
        current = current_payload(root)
        info = os.lstat(root)
        mode = stat.S_IMODE(info.st_mode)
        gid = os.stat(os.path.join(root, DATA_DIR)).st_gid
    except OSError:
        current, mode, gid = None, None, None
    if current == payload and mode == dir_mode(payload) and gid == (group or 0):
        return None
    return {"root": root, "payload": payload, "group": group}


def write_volume(root, payload, group=None):
    """The kubelet's AtomicWriter: a new ``..<time>`` directory, ``..data`` renamed to point at it, top-level links.
    ``group``: the pod's fsGroup, which owns the files and directories (else root)."""
    mode = dir_mode(payload)
    fileio.ensure_dir(os.path.dirname(root), 0o700)
    fileio.ensure_dir(root, mode)
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S", time.gmtime()) + f".{os.urandom(6).hex()}"
    new_dir = os.path.join(root, stamp)
    fileio.ensure_dir(new_dir, mode)
    gid = group or 0
    if os.geteuid() == 0:
        for directory in (root, new_dir):
            os.chown(directory, -1, gid)
    for file_path, (data, file_mode) in sorted(payload.items()):
        full = os.path.join(new_dir, file_path)
        parent = os.path.dirname(full)
        if parent != new_dir:
            fileio.ensure_dir(parent, mode, parents_mode=mode)
            if os.geteuid() == 0:
                os.chown(parent, -1, gid)
        fileio.write_atomic(full, data, file_mode, fsync=False, gid=gid)
    tmp_link = os.path.join(root, "..data_tmp")
    if os.path.lexists(tmp_link):
        os.unlink(tmp_link)
    os.symlink(stamp, tmp_link)
    os.replace(tmp_link, os.path.join(root, DATA_DIR))
    tops = {p.split("/", 1)[0] for p in payload}
    for top in sorted(tops):
        link = os.path.join(root, top)
        want = f"{DATA_DIR}/{top}"
        if os.path.islink(link) and os.readlink(link) == want:
            continue
        tmp = os.path.join(root, f"..{top}.tmp")
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(want, tmp)
        if os.path.isdir(link) and not os.path.islink(link):
            shutil.rmtree(link)
        os.replace(tmp, link)
    for entry in os.listdir(root):
        full = os.path.join(root, entry)
        if entry in (DATA_DIR, stamp):
            continue
        if entry.startswith(".."):
            # The previous payload (readers that opened a file there keep it), or what a killed write left.
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full, ignore_errors=True)
            else:
                os.unlink(full)
        elif entry not in tops:
            # A file the volume no longer has (or anything else: the directory is the node's alone).
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full, ignore_errors=True)
            else:
                os.unlink(full)
    os.sync()


# Under a root-only folder: a file a mode lets others read is for the container's users (who see the mounted volume,
# not its host path), never for the host's other users (docs/security.md), as the kubelet's 0750 pods folder does.
PROJECTED_FOLDER = "projected"


def volume_root(state_dir, pod, volume_name):
    return f"{state_dir}/pods/{pod}/{PROJECTED_FOLDER}/{volume_name}"


def source_reader(state_dir, pod):
    """read_source for volume_payload: the node's shared trees of the pod's namespace (configdata.py)."""
    namespace = namespaces.namespace_of(pod)

    def read(kind, name):
        folder = "configmaps" if kind == "configMap" else "secrets"
        tree = os.path.join(state_dir, folder, namespaces.node_name(namespace, name))
        try:
            keys = sorted(os.listdir(tree))
        except (FileNotFoundError, NotADirectoryError):
            return None
        result = {}
        for key in keys:
            if key.startswith(".") and key.endswith(".tmp"):
                continue
            try:
                with open(os.path.join(tree, key), "rb") as handle:
                    result[key] = handle.read()
            except (IsADirectoryError, FileNotFoundError):
                continue
        return result

    return read


def plan_pod_volumes(state_dir, pod, fields, where):
    """The writes the per-pod volumes of ``pod`` (a validated pod entry) need now: a list for apply_volumes."""
    jobs = []
    read = source_reader(state_dir, pod["name"])
    fs_group = (pod["spec"].get("securityContext") or {}).get("fsGroup")
    for vname, volume in sorted(pod["spec"]["volumes"].items()):
        if not is_projected(volume):
            continue
        payload = with_fs_group(volume_payload(volume, fields, read, f"{where}.volumes[{vname}]"), fs_group)
        job = plan_volume(volume_root(state_dir, pod["name"], vname), payload, fs_group)
        if job is not None:
            jobs.append(job)
    return jobs


def apply_volumes(jobs):
    for job in jobs:
        write_volume(job["root"], job["payload"], job.get("group"))


def refresh_for_object(state_dir, kind, name):
    """After ``config_data`` changed ConfigMap/Secret ``name`` (the node's name): rewrite the per-pod volumes that
    project it, as the kubelet does (the containers keep running; a subPath mount keeps its file). A pod whose volume
    cannot be made now (a key gone that is not optional) keeps its files, as in Kubernetes. Returns the pods rewritten."""
    volume_kind = "configMap" if kind == "ConfigMap" else "secret"
    pods_dir = os.path.join(state_dir, "pods")
    try:
        pods = sorted(os.listdir(pods_dir))
    except OSError:
        return []
    node_config = _node_config(state_dir)
    allocatable = None
    rewritten = []
    for pod in pods:
        try:
            with open(os.path.join(pods_dir, pod, "pod.json")) as handle:
                record = json.load(handle)
            volumes = record["spec"]["volumes"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        namespace = namespaces.namespace_of(pod)

        def uses(volume, namespace=namespace):
            refs = [volume] if volume["kind"] in TREE_MODE else volume.get("sources") or []
            return any(r["kind"] == volume_kind and namespaces.node_name(namespace, r["sourceName"]) == name for r in refs)

        wanted = {v: vol for v, vol in volumes.items() if is_projected(vol) and uses(vol)}
        if not wanted:
            continue
        if allocatable is None:
            allocatable = host_allocatable(state_dir)
        kube_namespace, kube_name = namespaces.split(pod)
        network = record.get("network") or {}
        fields = pod_fields(
            kube_name, kube_namespace, pod_uid(record, pod), record.get("labels") or {}, record.get("annotations") or {}, node_name(node_config),
            record["spec"].get("serviceAccountName"), network.get("ip"), (node_config or {}).get("address"), record["spec"]["containers"], allocatable,
        )
        jobs = []
        fs_group = (record["spec"].get("securityContext") or {}).get("fsGroup")
        for vname, volume in sorted(wanted.items()):
            try:
                payload = with_fs_group(volume_payload(volume, fields, source_reader(state_dir, pod), vname), fs_group)
            except SpecError:
                continue
            job = plan_volume(volume_root(state_dir, pod, vname), payload, fs_group)
            if job:
                jobs.append(job)
        if jobs:
            apply_volumes(jobs)
            rewritten.append(pod)
    return rewritten


def _node_config(state_dir):
    try:
        with open(os.path.join(state_dir, "network", "node.json")) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None
