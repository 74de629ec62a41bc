# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""StatefulSet spec: validation and defaults, in Kubernetes' field names.

Errors are ``SpecError`` (from the node layer) and name the field path.

========================================  ==============  ============================================
field                                     default         rule
========================================  ==============  ============================================
replicas                                  1               integer, 0 to 10000 (MAX_REPLICAS)
selector                                  required        must match the template labels; immutable
template                                  required        labels/annotations + PodSpec (restartPolicy Always)
serviceName                               ""              DNS-1123 label; kept (pods get hostname = pod name)
volumeClaimTemplates                      []              ``[{metadata: {name}, spec: {...}}]``: one claim
                                                          ``<template>-<name>-<ordinal>`` per identity, mounted
                                                          where the containers mount the volume ``<template>``;
                                                          the claim ``spec`` is kept (ignored on hosts)
podManagementPolicy                       OrderedReady    OrderedReady | Parallel
updateStrategy.type                       RollingUpdate   RollingUpdate | OnDelete
updateStrategy.rollingUpdate.partition    0               integer >= 0: only ordinals >= partition update
updateStrategy.rollingUpdate              maxUnavail. 1   int or "N%" of replicas (round down, at least 1)
persistentVolumeClaimRetentionPolicy      Retain/Retain   whenDeleted / whenScaled: Retain | Delete
minReadySeconds                           0               integer >= 0
revisionHistoryLimit                      10              integer >= 0
ordinals.start                            0               integer >= 0
unsafeMoveOnNodeLoss                      false           (extension) an identity whose node is NotReady
                                                          starts FRESH on another node (its local volumes
                                                          do not move) and is pinned there; without it the
                                                          identity waits for its node (at most one pod per
                                                          identity, ever)
========================================  ==============  ============================================
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.namespaces import kube_name
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, dns_label
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common.fields import bool_field, choice_field, integer_field
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common.preamble import parse_preamble
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.intstr import parse_int_or_percent, scaled_value
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.revisions import canonical_json, template_hash
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.templates import TemplateInfo
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.labels import LabelSelector, known_fields

ORDERED_READY = "OrderedReady"
PARALLEL = "Parallel"
POLICIES = (ORDERED_READY, PARALLEL)
ROLLING_UPDATE = "RollingUpdate"
ON_DELETE = "OnDelete"
STRATEGIES = (ROLLING_UPDATE, ON_DELETE)
RETAIN = "Retain"
DELETE = "Delete"
RETENTION = (RETAIN, DELETE)
FIELDS = {
    "replicas",
    "selector",
    "template",
    "serviceName",
    "volumeClaimTemplates",
    "podManagementPolicy",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
    "revisionHistoryLimit",
    "ordinals",
    "unsafeMoveOnNodeLoss",
}


@dataclass(frozen=True)
class StatefulSetSpec:
    name: str
    replicas: int
    selector: LabelSelector
    template: TemplateInfo
    service_name: str = ""
    claim_templates: tuple[dict, ...] = ()
    pod_management_policy: str = ORDERED_READY
    update_strategy: str = ROLLING_UPDATE
    partition: int = 0
    max_unavailable: int | str = 1
    when_deleted: str = RETAIN
    when_scaled: str = RETAIN
    min_ready_seconds: int = 0
    revision_history_limit: int = 10
    ordinals_start: int = 0
    unsafe_move_on_node_loss: bool = False

    @property
    def template_hash(self) -> str:
        return self.template.hash

    @property
    def ordered(self) -> bool:
        return self.pod_management_policy == ORDERED_READY

    @property
    def rolling(self) -> bool:
        return self.update_strategy == ROLLING_UPDATE

    @property
    def ordinals(self) -> range:
        """The ordinals that should run: ``[ordinals.start, ordinals.start + replicas)``."""
        return range(self.ordinals_start, self.ordinals_start + self.replicas)

    @property
    def claim_names(self) -> tuple[str, ...]:
        return tuple(t["metadata"]["name"] for t in self.claim_templates)

    def max_unavailable_for(self) -> int:
        """maxUnavailable as a number of pods: percentages round down, at least 1."""
        return max(1, scaled_value(self.max_unavailable, self.replicas, round_up=False))

    def to_json(self) -> dict:
        strategy: dict = {"type": self.update_strategy}
        if self.rolling:
            strategy["rollingUpdate"] = {"partition": self.partition, "maxUnavailable": self.max_unavailable}
        return {
            "replicas": self.replicas,
            "selector": self.selector.to_json(),
            "template": self.template.normal,
            "serviceName": self.service_name,
            "volumeClaimTemplates": list(self.claim_templates),
            "podManagementPolicy": self.pod_management_policy,
            "updateStrategy": strategy,
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": self.when_deleted, "whenScaled": self.when_scaled},
            "minReadySeconds": self.min_ready_seconds,
            "revisionHistoryLimit": self.revision_history_limit,
            "ordinals": {"start": self.ordinals_start},
            "unsafeMoveOnNodeLoss": self.unsafe_move_on_node_loss,
        }

    def spec_hash(self) -> str:
        return self._spec_hash

    @functools.cached_property
    def _spec_hash(self) -> str:
        return template_hash(self.to_json())


def _claim_templates(raw, path: str) -> tuple[dict, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SpecError(path, f"must be a list, got {type(raw).__name__}")
    result, seen = [], set()
    for i, item in enumerate(raw):
        ipath = f"{path}[{i}]"
        known_fields(item, {"metadata", "spec"}, ipath)
        metadata = item.get("metadata")
        if metadata is None:
            raise SpecError(f"{ipath}.metadata", "is required")
        known_fields(metadata, {"name", "labels", "annotations"}, f"{ipath}.metadata")
        if metadata.get("name") is None:
            raise SpecError(f"{ipath}.metadata.name", "is required")
        name = dns_label(metadata["name"], f"{ipath}.metadata.name")
        if name in seen:
            raise SpecError(f"{ipath}.metadata.name", f"duplicate claim template name {name!r}")
        seen.add(name)
        claim_spec = item.get("spec") or {}
        if not isinstance(claim_spec, dict):
            raise SpecError(f"{ipath}.spec", f"must be a mapping, got {type(claim_spec).__name__}")
        result.append({"metadata": {"name": name}, "spec": json_copy(claim_spec, f"{ipath}.spec")})
    return tuple(result)


def json_copy(value, path: str):
    try:
        return json.loads(canonical_json(value))
    except (TypeError, ValueError) as exc:
        raise SpecError(path, f"must be plain JSON data: {exc}") from None


def with_claim_volumes(template, claim_names: tuple[str, ...], name: str, path: str):
    """The template with one ``persistentVolumeClaim`` volume per claim template (a claim template wins over
    a volume of the same name, as in Kubernetes). The claim name here is ``<template>-<name>``; each pod
    gets its own ``<template>-<name>-<ordinal>`` (identity.pod_template)."""
    if not claim_names or not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return template
    result = copy.deepcopy(template)
    volumes = result["spec"].get("volumes") or []
    if not isinstance(volumes, list):
        raise SpecError(f"{path}.spec.volumes", f"must be a list, got {type(volumes).__name__}")
    kept = [v for v in volumes if not (isinstance(v, dict) and v.get("name") in claim_names)]
    result["spec"]["volumes"] = kept + [{"name": c, "persistentVolumeClaim": {"claimName": f"{c}-{kube_name(name)}"}} for c in claim_names]
    return result


def _update_strategy(raw, path: str) -> tuple[str, int, int | str]:
    raw = {} if raw is None else raw
    known_fields(raw, {"type", "rollingUpdate"}, path)
    kind = choice_field(raw, "type", path, STRATEGIES)
    rolling = raw.get("rollingUpdate")
    if kind == ON_DELETE:
        if rolling is not None:
            raise SpecError(f"{path}.rollingUpdate", "only allowed for updateStrategy 'RollingUpdate'")
        return kind, 0, 1
    rolling = {} if rolling is None else rolling
    known_fields(rolling, {"partition", "maxUnavailable"}, f"{path}.rollingUpdate")
    unavailable = parse_int_or_percent(rolling.get("maxUnavailable", 1), f"{path}.rollingUpdate.maxUnavailable", max_percent=100)
    if unavailable in (0, "0%"):
        raise SpecError(f"{path}.rollingUpdate.maxUnavailable", "must be greater than 0")
    return kind, integer_field(rolling, "partition", f"{path}.rollingUpdate", 0), unavailable


def parse_statefulset_spec(name: str, spec: dict, stored_selector: dict | None = None, path: str = "spec") -> StatefulSetSpec:
    """Validate a StatefulSet spec and fill in defaults (``stored_selector``: the existing one, immutable)."""
    claims: list[dict] = []

    def add_claim_volumes(raw_template):
        # After the selector, before the template: the order Kubernetes reports errors in.
        claims.extend(_claim_templates(spec.get("volumeClaimTemplates"), f"{path}.volumeClaimTemplates"))
        return with_claim_volumes(raw_template, tuple(c["metadata"]["name"] for c in claims), name, f"{path}.template")

    head = parse_preamble(name, spec, FIELDS, stored_selector, path, prepare_template=add_claim_volumes)
    replicas = head.replica_count
    claim_names = tuple(c["metadata"]["name"] for c in claims)
    service = spec.get("serviceName")
    service = dns_label(service, f"{path}.serviceName") if service not in (None, "") else ""
    ordinals = spec.get("ordinals")
    ordinals = {} if ordinals is None else ordinals
    known_fields(ordinals, {"start"}, f"{path}.ordinals")
    start = integer_field(ordinals, "start", f"{path}.ordinals", 0)
    last = start + max(replicas, 1) - 1
    for claim in claim_names:  # the longest names this spec produces must still be DNS-1123 labels (names in its namespace)
        dns_label(f"{claim}-{kube_name(name)}-{last}", f"{path}.volumeClaimTemplates[{claim_names.index(claim)}].metadata.name")
    dns_label(f"{kube_name(name)}-{last}", "metadata.name")
    strategy, partition, unavailable = _update_strategy(spec.get("updateStrategy"), f"{path}.updateStrategy")
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    retention = {} if retention is None else retention
    rpath = f"{path}.persistentVolumeClaimRetentionPolicy"
    known_fields(retention, {"whenDeleted", "whenScaled"}, rpath)
    return StatefulSetSpec(
        name=head.name,
        replicas=replicas,
        selector=head.selector,
        template=head.template,
        service_name=service,
        claim_templates=tuple(claims),
        pod_management_policy=choice_field(spec, "podManagementPolicy", path, POLICIES),
        update_strategy=strategy,
        partition=partition,
        max_unavailable=unavailable,
        when_deleted=choice_field(retention, "whenDeleted", rpath, RETENTION),
        when_scaled=choice_field(retention, "whenScaled", rpath, RETENTION),
        min_ready_seconds=integer_field(spec, "minReadySeconds", path, 0),
        revision_history_limit=integer_field(spec, "revisionHistoryLimit", path, 10),
        ordinals_start=start,
        unsafe_move_on_node_loss=bool_field(spec, "unsafeMoveOnNodeLoss", path),
    )
