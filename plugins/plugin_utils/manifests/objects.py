# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes manifest documents → the arguments of this collection's kind modules. Pure: no I/O.

A document is checked for its ``apiVersion``/``kind``, its ``metadata.name`` (a DNS-1123 label) and its top-level
fields; its ``spec`` becomes the kind module's arguments (the same Kubernetes field names). Fields that mean
nothing on plain hosts are taken out and reported (``ignored``); every other field goes to the kind's own parser,
which refuses what it does not know. ConfigMaps and Secrets become the data the ``config_data`` node module writes.
A PersistentVolumeClaim names the volume its pods' ``persistentVolumeClaim.claimName`` binds to (a directory on the
pod's host, made by the node layer): it is checked and its spec listed as ignored. Documents of the kinds in
``skipped_kinds.SKIPPED_KINDS`` (meaningless on hosts) are checked for their basics and marked not applied.

Every problem of every document is collected (``ManifestErrors``) so that one run names them all, before any
host is touched.
"""

from __future__ import annotations

import base64
import binascii
import copy
from dataclasses import dataclass, field

from ansible_collections.hostfleet.workloads.plugins.module_utils.kinds import KINDS, kind_info
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.configdata import env_text
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.namespaces import DEFAULT as DEFAULT_NAMESPACE
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, config_key, dns_label
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.manifests.skipped_kinds import SKIPPED_KINDS, name_problem
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.network.servicespec import service_name
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.labels import parse_label_selector

# kind -> (apiVersion, the kind module's argument spec), from the registry of kinds (module_utils/kinds.py)
WORKLOADS = {kind.name: (kind.api_version, kind.argument_spec) for kind in KINDS}
API_VERSIONS = {
    **{kind: version for kind, (version, _args) in WORKLOADS.items()},
    "Pod": "v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "PersistentVolumeClaim": "v1",
    "Service": "v1",
}
CONFIG_KINDS = ("ConfigMap", "Secret")
CLAIM_KIND = "PersistentVolumeClaim"
SERVICE_KIND = "Service"

# Options of the kind modules that are this collection's own, not Kubernetes fields: a manifest cannot set them.
EXTENSION_ARGS = {"auto_rollback", "rollback_to", "restart", "replace", "run_on", "unsafeMoveOnNodeLoss", "node_grace_seconds"}
# Apply order: what pods read first, then the workloads (StatefulSets before what may talk to them); absent: reversed.
# Every kind of API_VERSIONS exactly once (tests/unit/test_registry.py).
ORDER = (
    "ConfigMap",
    "Secret",
    "PersistentVolumeClaim",
    "StatefulSet",
    "Deployment",
    "ReplicaSet",
    "ReplicationController",
    "DaemonSet",
    "Pod",
    "Job",
    "CronJob",
    # After the workloads, so that its endpoints are their pods of this run (absent: reversed, so deleted first).
    "Service",
)

# Object metadata that the API server keeps and hosts have no use for (reported, never an error).
METADATA_IGNORED = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink", "deletionGracePeriodSeconds")
# Pod template metadata besides labels/annotations.
TEMPLATE_METADATA_IGNORED = ("name", "namespace", "creationTimestamp", "uid", "resourceVersion", "generation")
# PodSpec fields without meaning on plain hosts: no API server to authenticate to, no image pull secrets (the
# host's podman uses its own registry credentials), no Service environment, no other scheduler. (dnsPolicy and
# dnsConfig are honoured: the cluster DNS, module_utils/network/dns.py.)
POD_IGNORED = (
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
    "imagePullSecrets",
    "schedulerName",
    "enableServiceLinks",
    "preemptionPolicy",
    "priority",
)
# Container fields without meaning on hosts (there is no pod status message to fill: the output is in the journal).
CONTAINER_IGNORED = ("terminationMessagePath", "terminationMessagePolicy")
# What `kubectl get -o yaml` puts in a volumeClaimTemplate besides metadata.name/labels/annotations and spec.
CLAIM_IGNORED = ("apiVersion", "kind", "status")
CLAIM_METADATA_IGNORED = ("namespace", "creationTimestamp", "uid", "resourceVersion")
# PersistentVolumeClaimSpec: kept with the StatefulSet (no effect on hosts), so checked against Kubernetes' types.
CLAIM_ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
CLAIM_VOLUME_MODES = ("Filesystem", "Block")
CLAIM_STRING_FIELDS = ("storageClassName", "volumeName", "volumeAttributesClassName")
# A standalone claim's spec fields that would change what its pods see, which a host directory cannot give.
CLAIM_REFUSED = {
    "dataSource": "a volume pre-filled from another object needs a provisioner; a claim on hosts starts as an empty directory",
    "dataSourceRef": "a volume pre-filled from another object needs a provisioner; a claim on hosts starts as an empty directory",
}
# A ConfigMap or Secret is at most 1 MiB, as in Kubernetes.
MAX_CONFIG_BYTES = 1024 * 1024


class ManifestErrors(ValueError):
    """Every problem found in the documents: ``errors`` is a list of ``"<document> (<Kind> <name>): <path>: <message>"``."""

    def __init__(self, errors, objects=()):
        super().__init__("\n".join(errors))
        self.errors = list(errors)
        # The objects that could be built (their fields in error left out), for the kinds' own checks.
        self.objects = list(objects)


@dataclass
class ManifestObject:
    kind: str
    name: str
    source: str  # the document it came from (file#index)
    args: dict  # workloads: the kind module's spec arguments; Pod: {labels, annotations, spec}; config: {files, immutable}
    ignored: list = field(default_factory=list)  # field paths reported as ignored
    secret_values: list = field(default_factory=list)  # Secret values (plain and base64), to keep out of every output
    skipped_because: str = ""  # a kind of SKIPPED_KINDS: why hosts have no use for it (never applied)
    namespace: str = DEFAULT_NAMESPACE  # metadata.namespace: with kind and name, the object's identity

    @property
    def title(self):
        return f"{self.kind} {self.name}" if self.namespace == DEFAULT_NAMESPACE else f"{self.kind} {self.namespace}/{self.name}"

    @property
    def key(self):
        """What names the object, as in Kubernetes: (kind, namespace, name)."""
        return (self.kind, self.namespace, self.name)

    @property
    def is_config(self):
        return self.kind in CONFIG_KINDS

    @property
    def is_claim(self):
        return self.kind == CLAIM_KIND


def spec_keys(kind):
    """The Kubernetes spec fields a manifest of ``kind`` may set: its task's spec fields but this collection's own options."""
    return sorted(set(kind_info(kind).spec_fields) - EXTENSION_ARGS)


def _where(source, kind, name):
    return f"{source} ({kind} {name})" if kind and name else source


def _type(value):
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


class _Collector:
    """The errors and ignored fields of one document."""

    def __init__(self):
        self.errors = []
        self.ignored = []

    def error(self, path, message):
        self.errors.append(f"{path}: {message}")

    def drop(self, mapping, keys, path):
        """Take ``keys`` out of ``mapping`` (in place) and report those present as ignored."""
        for key in keys:
            if isinstance(mapping, dict) and key in mapping:
                del mapping[key]
                self.ignored.append(f"{path}.{key}")


def _pod_spec(spec, path, out):
    """Take the ignored fields out of a PodSpec (in place); the node layer's validator refuses what remains unknown."""
    if not isinstance(spec, dict):
        return
    if _reads_service_account(spec):
        # Honoured when a fieldRef reads it (spec.serviceAccountName); serviceAccount is its deprecated alias.
        if spec.get("serviceAccountName") in (None, "") and isinstance(spec.get("serviceAccount"), str):
            spec["serviceAccountName"] = spec["serviceAccount"]
        out.drop(spec, [k for k in POD_IGNORED if k != "serviceAccountName"], path)
    else:
        out.drop(spec, POD_IGNORED, path)
    _drop_token_sources(spec, path, out)
    pod_containers = [c for name in ("containers", "initContainers") if isinstance(spec.get(name), list) for c in spec[name]]
    if not any(isinstance(c, dict) and c.get("image") is not None for c in pod_containers):
        # A process pod (no container names an image) pulls nothing: its pull secrets mean nothing on hosts.
        out.drop(spec, ["imagePullSecrets"], path)
    for list_name in ("containers", "initContainers"):
        containers = spec.get(list_name)
        if isinstance(containers, list):
            for i, container in enumerate(containers):
                out.drop(container, CONTAINER_IGNORED, f"{path}.{list_name}[{i}]")


def _reads_service_account(spec):
    containers = [c for name in ("containers", "initContainers") if isinstance(spec.get(name), list) for c in spec[name]]
    return any(
        isinstance(env, dict) and isinstance(env.get("valueFrom"), dict) and isinstance(env["valueFrom"].get("fieldRef"), dict)
        and env["valueFrom"]["fieldRef"].get("fieldPath") == "spec.serviceAccountName"
        for c in containers if isinstance(c, dict) and isinstance(c.get("env"), list) for env in c["env"]
    )


def _drop_token_sources(spec, path, out):
    """A projected volume's serviceAccountToken sources are not applicable on hosts (no API server issues tokens): taken
    out and reported as ignored, the volume keeps its other sources (module_utils/node/downward.py)."""
    volumes = spec.get("volumes")
    for i, volume in enumerate(volumes if isinstance(volumes, list) else []):
        projected = volume.get("projected") if isinstance(volume, dict) else None
        sources = projected.get("sources") if isinstance(projected, dict) else None
        if not isinstance(sources, list):
            continue
        kept = []
        for j, source in enumerate(sources):
            if isinstance(source, dict) and "serviceAccountToken" in source and len(source) == 1:
                out.ignored.append(f"{path}.volumes[{i}].projected.sources[{j}].serviceAccountToken")
            else:
                kept.append(source)
        projected["sources"] = kept


def _pod_template(template, path, out):
    if not isinstance(template, dict):
        return
    metadata = template.get("metadata")
    if isinstance(metadata, dict):
        out.drop(metadata, TEMPLATE_METADATA_IGNORED, f"{path}.metadata")
        if not metadata:
            del template["metadata"]
    _pod_spec(template.get("spec"), f"{path}.spec", out)


def _claim_spec(spec, path, out):
    """Report every field of a volumeClaimTemplate's spec that is not of Kubernetes' type (it is kept verbatim)."""
    if spec is None:
        return
    if not isinstance(spec, dict):
        out.error(path, f"must be a mapping, got {_type(spec)}")
        return
    for key, value in spec.items():
        where = f"{path}.{key}"
        if value is None:
            continue
        if key in CLAIM_STRING_FIELDS:
            if not isinstance(value, str):
                out.error(where, f"must be a string, got {_type(value)}")
        elif key == "accessModes":
            if not isinstance(value, list):
                out.error(where, f"must be a list, got {_type(value)}")
                continue
            for i, mode in enumerate(value):
                if mode not in CLAIM_ACCESS_MODES:
                    shown = repr(mode) if isinstance(mode, str) else _type(mode)
                    out.error(f"{where}[{i}]", f"Unsupported value: {shown}: supported values: {', '.join(CLAIM_ACCESS_MODES)}")
        elif key == "volumeMode":
            if value not in CLAIM_VOLUME_MODES:
                shown = repr(value) if isinstance(value, str) else _type(value)
                out.error(where, f"Unsupported value: {shown}: supported values: {', '.join(CLAIM_VOLUME_MODES)}")
        elif key == "resources":
            if not isinstance(value, dict):
                out.error(where, f"must be a mapping, got {_type(value)}")
                continue
            for part, amounts in value.items():
                if part not in ("requests", "limits"):
                    out.error(f"{where}.{part}", "unknown field (allowed here: limits, requests)")
                elif amounts is not None and not isinstance(amounts, dict):
                    out.error(f"{where}.{part}", f"must be a mapping, got {_type(amounts)}")
                else:
                    for resource, amount in (amounts or {}).items():
                        if not isinstance(resource, str) or isinstance(amount, bool) or not isinstance(amount, (str, int, float)):
                            out.error(f"{where}.{part}[{resource!r}]", "must be a resource name and a quantity (e.g. storage: 1Gi)")
        elif key == "selector":
            try:
                parse_label_selector(value, where)
            except SpecError as exc:
                out.error(exc.path, exc.message)
        elif key in ("dataSource", "dataSourceRef"):
            allowed = ("apiGroup", "kind", "name") + (("namespace",) if key == "dataSourceRef" else ())
            if not isinstance(value, dict):
                out.error(where, f"must be a mapping, got {_type(value)}")
                continue
            for field_name, text in value.items():
                if field_name not in allowed:
                    out.error(f"{where}.{field_name}", f"unknown field (allowed here: {', '.join(allowed)})")
                elif text is not None and not isinstance(text, str):
                    out.error(f"{where}.{field_name}", f"must be a string, got {_type(text)}")
        else:
            allowed = sorted(CLAIM_STRING_FIELDS + ("accessModes", "volumeMode", "resources", "selector", "dataSource", "dataSourceRef"))
            out.error(where, f"unknown field (allowed here: {', '.join(allowed)})")


def _workload(kind, name, doc, out):
    spec = doc.get("spec")
    if spec is None:
        out.error("spec", "is required")
        return {}
    if not isinstance(spec, dict):
        out.error("spec", f"must be a mapping, got {_type(spec)}")
        return {}
    spec = copy.deepcopy(spec)
    allowed = spec_keys(kind)
    args = {}
    for key, value in spec.items():
        if key not in allowed:
            out.error(f"spec.{key}", f"unknown field: hosts cannot honour it for a {kind} (allowed here: {', '.join(allowed)})")
            continue
        args[key] = value
    if kind == "CronJob":
        job = args.get("jobTemplate")
        if isinstance(job, dict):
            if isinstance(job.get("metadata"), dict):
                out.drop(job["metadata"], TEMPLATE_METADATA_IGNORED, "spec.jobTemplate.metadata")
            if isinstance(job.get("spec"), dict):
                _pod_template(job["spec"].get("template"), "spec.jobTemplate.spec.template", out)
    else:
        _pod_template(args.get("template"), "spec.template", out)
    if kind == "StatefulSet" and isinstance(args.get("volumeClaimTemplates"), list):
        for i, claim in enumerate(args["volumeClaimTemplates"]):
            out.drop(claim, CLAIM_IGNORED, f"spec.volumeClaimTemplates[{i}]")
            if isinstance(claim, dict) and isinstance(claim.get("metadata"), dict):
                out.drop(claim["metadata"], CLAIM_METADATA_IGNORED, f"spec.volumeClaimTemplates[{i}].metadata")
            if isinstance(claim, dict):
                _claim_spec(claim.get("spec"), f"spec.volumeClaimTemplates[{i}].spec", out)
    return args


def _pod(doc, metadata, out):
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        out.error("spec", "is required" if spec is None else f"must be a mapping, got {_type(spec)}")
        return {}
    spec = copy.deepcopy(spec)
    _pod_spec(spec, "spec", out)
    node_name = spec.pop("nodeName", None)
    args = {"labels": metadata.get("labels") or {}, "annotations": metadata.get("annotations") or {}, "spec": spec}
    if node_name is not None:
        if not isinstance(node_name, str) or not node_name:
            out.error("spec.nodeName", "must be the inventory name of a host")
        else:
            args["nodeName"] = node_name
    return args


def _claim(doc, out):
    """A standalone PersistentVolumeClaim: its name is the volume (``<state_dir>/volumes/<name>`` on each pod's host,
    made by the node layer when a pod mounts it). Its spec is checked against Kubernetes' types, then listed as
    ignored (class, access modes, size: a host directory has none), but for the fields a directory cannot honour."""
    spec = doc.get("spec")
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        out.error("spec", f"must be a mapping, got {_type(spec)}")
        return {}
    _claim_spec(spec, "spec", out)
    for key in spec:
        if key in CLAIM_REFUSED and spec[key] is not None:
            out.error(f"spec.{key}", f"is not supported on hosts: {CLAIM_REFUSED[key]}")
        elif key == "volumeMode" and spec[key] == "Block":
            out.error("spec.volumeMode", "Block is not supported on hosts: a claim is a directory (Filesystem)")
        else:
            out.ignored.append(f"spec.{key}")
    return {}


def _service(doc, name, out):
    """A Service: its spec goes whole to the service task's parser (plugin_utils/network/servicespec.py), which names
    what it ignores or refuses; its name is a DNS-1035 label (a letter first), as Kubernetes checks it."""
    try:
        service_name(name)
    except SpecError as exc:
        out.error(exc.path, exc.message)
    spec = doc.get("spec")
    return {"spec": copy.deepcopy(spec) if spec is not None else {}}


def _skipped(document, doc, kind):
    """A document of a kind hosts have no use for: (its name, None) when its basics hold, else (None, the error)."""
    version = doc.get("apiVersion")
    known = SKIPPED_KINDS[kind]
    if version not in known.api_versions:
        expected = " or ".join(repr(v) for v in known.api_versions)
        return None, f"{document.source} ({kind}): apiVersion: must be {expected} for a {kind}, got {version!r}"
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    problem = name_problem(kind, name)
    if problem:
        return None, f"{document.source} ({kind}): metadata.name: {problem}"
    return name, None


def _decoded(text, path, out):
    if not isinstance(text, str):
        out.error(path, f"must be a base64 string, got {_type(text)}")
        return None
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        out.error(path, "is not valid base64")
        return None


def _config(kind, doc, out):
    """{files: {key: base64 bytes}, immutable} and the values to keep secret."""
    files, secrets = {}, []
    sections = ("data", "binaryData") if kind == "ConfigMap" else ("data", "stringData")
    for section in sections:
        body = doc.get(section)
        if body is None:
            continue
        if not isinstance(body, dict):
            out.error(section, f"must be a mapping, got {_type(body)}")
            continue
        for key, value in body.items():
            path = f"{section}[{key!r}]"
            try:
                config_key(key, path)
            except SpecError as exc:
                out.error(exc.path, exc.message)
                continue
            raw = None
            plain = (kind == "ConfigMap" and section == "data") or section == "stringData"
            if plain:
                if not isinstance(value, str):
                    out.error(path, f"must be a string, got {_type(value)} (quote it in YAML)")
                    continue
                raw = value.encode("utf-8")
            else:
                raw = _decoded(value, path, out)
                if raw is None:
                    continue
                if kind == "Secret":
                    secrets.append(value)
            if kind == "ConfigMap" and key in files:
                out.error(path, "duplicate key: it is also in data")
                continue
            # A Secret's stringData is merged over its data (stringData wins), as the API server does.
            files[key] = base64.b64encode(raw).decode("ascii")
            if kind == "Secret":
                secrets.append(files[key])
                try:
                    secrets.append(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    pass
    if sum(len(base64.b64decode(v)) for v in files.values()) > MAX_CONFIG_BYTES:
        out.error("data", f"the {kind} is larger than 1 MiB")
    immutable = doc.get("immutable")
    if immutable is not None and not isinstance(immutable, bool):
        out.error("immutable", f"must be a boolean, got {_type(immutable)}")
    secret_type = doc.get("type")
    if kind == "Secret" and secret_type is not None:
        if not isinstance(secret_type, str):
            out.error("type", f"must be a string, got {_type(secret_type)}")
        elif secret_type == "kubernetes.io/service-account-token":
            out.error("type", "kubernetes.io/service-account-token needs an API server to fill it; hosts have none")
    # Values of one character or fewer would scrub unrelated text; they are never shown anyway (no diff, no result).
    return {"files": files, "immutable": bool(immutable)}, sorted({s for s in secrets if len(s) > 1}, key=len, reverse=True)


TOP_LEVEL = {
    "ConfigMap": {"apiVersion", "kind", "metadata", "data", "binaryData", "immutable"},
    "Secret": {"apiVersion", "kind", "metadata", "data", "stringData", "type", "immutable"},
}


def build(documents, default_namespace=DEFAULT_NAMESPACE):
    """ManifestObjects of the documents in apply order; raises ManifestErrors naming every problem of every document.

    A document without ``metadata.namespace`` is in ``default_namespace`` (as ``kubectl apply -n``)."""
    errors, objects, seen = [], [], {}
    for document in documents:
        doc, out = document.body, _Collector()
        kind = name = None
        if not isinstance(doc, dict):
            errors.append(f"{document.source}: a manifest must be a mapping, got {_type(doc)}")
            continue
        kind, version = doc.get("kind"), doc.get("apiVersion")
        if isinstance(kind, str) and kind in SKIPPED_KINDS:
            name, problem = _skipped(document, doc, kind)
            if problem:
                errors.append(problem)
            else:
                objects.append(ManifestObject(kind, name, document.source, {}, skipped_because=SKIPPED_KINDS[kind].reason))
            continue
        if kind not in API_VERSIONS:
            errors.append(
                f"{document.source}: kind: {kind!r} is not supported (supported: {', '.join(sorted(API_VERSIONS))}; "
                f"reported and not applied: {', '.join(sorted(SKIPPED_KINDS))})"
            )
            continue
        if version != API_VERSIONS[kind]:
            errors.append(f"{document.source} ({kind}): apiVersion: must be {API_VERSIONS[kind]!r} for a {kind}, got {version!r}")
            continue
        metadata = doc.get("metadata")
        if not isinstance(metadata, dict):
            errors.append(f"{document.source} ({kind}): metadata.name: is required")
            continue
        metadata = copy.deepcopy(metadata)
        if metadata.get("name") is None and metadata.get("generateName") is not None:
            out.error("metadata.generateName", "is not supported: a re-run must find the same object, give metadata.name")
        try:
            name = dns_label(metadata.get("name") if metadata.get("name") is not None else "", "metadata.name")
        except SpecError as exc:
            errors.append(f"{document.source} ({kind}): {exc}")
            continue
        out.drop(metadata, METADATA_IGNORED, "metadata")
        try:
            # As in Kubernetes, an empty namespace is the default one.
            namespace = dns_label(metadata["namespace"], "metadata.namespace") if metadata.get("namespace") not in (None, "") else default_namespace
        except SpecError as exc:
            errors.append(f"{document.source} ({kind} {name}): {exc}")
            continue
        keep = {"name", "namespace", "labels", "annotations"} if kind == "Pod" else {"name", "namespace"}
        if kind != "Pod":
            out.drop(metadata, ("labels", "annotations"), "metadata")
        for key in sorted(set(metadata) - keep):
            out.error(f"metadata.{key}", "unknown field: hosts cannot honour it")
        allowed = TOP_LEVEL.get(kind, {"apiVersion", "kind", "metadata", "spec", "status"})
        body = dict(doc)
        out.drop(body, ("status",), "")
        for key in sorted(set(body) - allowed - {"status"}, key=str):
            out.error(str(key), "unknown field")
        secret_values = []
        if kind in CONFIG_KINDS:
            args, secret_values = _config(kind, doc, out)
        elif kind == "Pod":
            args = _pod(doc, metadata, out)
        elif kind == CLAIM_KIND:
            args = _claim(doc, out)
        elif kind == SERVICE_KIND:
            args = _service(doc, name, out)
        else:
            args = _workload(kind, name, doc, out)
        where = _where(document.source, kind, name)
        if (kind, namespace, name) in seen:
            also = f" (namespace {namespace})" if namespace != DEFAULT_NAMESPACE else ""
            out.error("metadata.name", f"{kind} {name} is also defined in {seen[(kind, namespace, name)]}{also}")
        seen.setdefault((kind, namespace, name), document.source)
        errors += [f"{where}: {e}" for e in out.errors]
        ignored = [i.lstrip(".") for i in out.ignored]
        objects.append(ManifestObject(kind, name, document.source, args, ignored, secret_values, namespace=namespace))
    # Stable: documents keep their order within a kind; the skipped kinds (never applied) come last.
    objects.sort(key=lambda o: ORDER.index(o.kind) if o.kind in ORDER else len(ORDER))
    try:
        check_references(objects)
    except ManifestErrors as exc:
        errors += exc.errors
    if errors:
        raise ManifestErrors(errors, objects)
    return objects


def _at(mapping, *keys):
    """mapping[k1][k2]..., or None where a level is missing or not a mapping (the kinds' parsers name wrong types)."""
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def _containers(obj):
    """(path, container) of every container of a workload or Pod object."""
    if obj.kind == "Pod":
        spec, path = obj.args.get("spec"), "spec"
    elif obj.kind == "CronJob":
        spec, path = _at(obj.args, "jobTemplate", "spec", "template", "spec"), "spec.jobTemplate.spec.template.spec"
    else:
        spec, path = _at(obj.args, "template", "spec"), "spec.template.spec"
    containers = spec.get("containers") if isinstance(spec, dict) else None
    for i, container in enumerate(containers if isinstance(containers, list) else []):
        if isinstance(container, dict):
            yield f"{path}.containers[{i}]", container


def check_references(objects):
    """A key that a workload takes from a ConfigMap/Secret of the same apply must exist, and fit an environment file.

    Objects applied before (not in these documents) are checked on the host, when the pod starts.
    """
    data = {(o.kind, o.namespace, o.name): o.args["files"] for o in objects if o.is_config}
    errors = []
    for obj in objects:
        if obj.is_config:
            continue
        for path, container in _containers(obj):
            env = container.get("env")
            for i, item in enumerate(env if isinstance(env, list) else []):
                ref = (item.get("valueFrom") or {}) if isinstance(item, dict) else {}
                for ref_kind, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                    target = ref.get(ref_kind) if isinstance(ref, dict) else None
                    if not isinstance(target, dict) or not isinstance(target.get("name"), str) or (kind, obj.namespace, target["name"]) not in data:
                        continue
                    files = data[(kind, obj.namespace, target.get("name"))]
                    key = target.get("key")
                    where = f"{obj.source} ({obj.title}): {path}.env[{i}].valueFrom.{ref_kind}.key"
                    if key not in files:
                        if not target.get("optional"):
                            errors.append(f"{where}: {kind} {target.get('name')} has no key {key!r}")
                    elif env_value(files[key]) is None:
                        errors.append(f"{where}: the value of {key!r} is not one line of UTF-8 text, which an environment variable on a host cannot carry")
    if errors:
        raise ManifestErrors(errors)


def env_value(encoded):
    """The text of a key's value when an environment file can carry it (see configdata.env_text), else None."""
    try:
        raw = base64.b64decode(encoded)
    except (binascii.Error, ValueError):
        return None
    return env_text(raw)


def _pod_spec_of(obj):
    """(path, PodSpec) of a workload or Pod object, or (path, None)."""
    if obj.kind == "Pod":
        return "spec", obj.args.get("spec")
    if obj.kind == "CronJob":
        return "spec.jobTemplate.spec.template.spec", _at(obj.args, "jobTemplate", "spec", "template", "spec")
    return "spec.template.spec", _at(obj.args, "template", "spec")


def references(obj):
    """The (kind, name) of every ConfigMap, Secret and PersistentVolumeClaim the pods of ``obj`` read, by name."""
    found = set()
    _path, spec = _pod_spec_of(obj)
    if not isinstance(spec, dict) or obj.is_config or obj.is_claim or obj.skipped_because:
        return found

    def add(kind, ref, key):
        if isinstance(ref, dict) and isinstance(ref.get(key), str):
            found.add((kind, ref[key]))

    for volume in spec.get("volumes") if isinstance(spec.get("volumes"), list) else []:
        if isinstance(volume, dict):
            add("ConfigMap", volume.get("configMap"), "name")
            add("Secret", volume.get("secret"), "secretName")
            add(CLAIM_KIND, volume.get("persistentVolumeClaim"), "claimName")
    for pull_secret in spec.get("imagePullSecrets") if isinstance(spec.get("imagePullSecrets"), list) else []:
        add("Secret", pull_secret, "name")  # the pods' pulls read it (node/registry_auth.py)
    for list_name in ("containers", "initContainers"):
        containers = spec.get(list_name)
        for container in containers if isinstance(containers, list) else []:
            if not isinstance(container, dict):
                continue
            for source in container.get("envFrom") if isinstance(container.get("envFrom"), list) else []:
                if isinstance(source, dict):
                    add("ConfigMap", source.get("configMapRef"), "name")
                    add("Secret", source.get("secretRef"), "name")
            for item in container.get("env") if isinstance(container.get("env"), list) else []:
                ref = item.get("valueFrom") if isinstance(item, dict) else None
                if isinstance(ref, dict):
                    add("ConfigMap", ref.get("configMapKeyRef"), "name")
                    add("Secret", ref.get("secretKeyRef"), "name")
    return found


def dependencies(objects, state):
    """{object title: titles of the objects of this apply it must wait for}: what "independent" means for apply.

    present: an object depends on the ConfigMaps, Secrets and PersistentVolumeClaims of this apply its pods read (a
    pod started without them would fail or run on the wrong data). absent: the reverse: a ConfigMap, Secret or
    claim stays while an object that reads it could not be deleted (its pods still run, and restart with it).
    Nothing else orders objects: a failed Deployment does not keep a Job that reads nothing from it from running.
    """
    # A pod reads the objects of its own namespace.
    present = {o.key: o.title for o in objects if not o.skipped_because}
    needs = {o.title: [] for o in objects}
    for obj in objects:
        for kind, name in sorted(references(obj)):
            ref = (kind, obj.namespace, name)
            if ref in present:
                if state == "present":
                    needs[obj.title].append(present[ref])
                else:
                    needs[present[ref]].append(obj.title)
    return needs
