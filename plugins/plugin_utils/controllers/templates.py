# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pod templates (``metadata.labels/annotations`` + ``spec``), validated once.

The PodSpec itself is the node layer's: it is validated (and normalised) by
``module_utils.node.podspec.validate_pod_spec``, through ``_validate_pod_spec``
only. The controllers add what a workload needs on top: the restart policies
the kind allows, labels for the selector, and the scheduling constraints.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import annotations as parse_annotations
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import labels as parse_labels
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.revisions import (
    POD_TEMPLATE_HASH_LABEL,
    REVISION_ANNOTATION,
    canonical_json,
    template_hash,
)
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.constraints import Constraints, parse_constraints
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.labels import known_fields


def _validate_pod_spec(spec, path: str) -> dict:
    """The one door to the node layer's PodSpec validator.

    Whether a node has a pod network is the node's to say (its node.json): a template may say ``hostNetwork: false``.
    """
    from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import validate_pod_spec

    return validate_pod_spec(spec, path, pod_network=None)


@dataclass(frozen=True)
class TemplateInfo:
    """A validated pod template.

    ``template`` is what pods are started from (labels/annotations normalised,
    ``spec`` as the user wrote it: the node layer validates it again on the
    host); ``normal`` is the normal form whose hash is the revision.
    """

    template: dict
    normal: dict
    hash: str
    labels: dict
    constraints: Constraints

    def pod_template(self, revision_hash: str | None = None) -> dict:
        """The template for the node layer: the labels get ``pod-template-hash``.

        ``revision_hash`` is the key the revision is known by (the hash when it was first seen).
        As in Kubernetes, the revision number is not put on pods: it changes with an undo.
        """
        template = json.loads(canonical_json(self.template))
        metadata = template.setdefault("metadata", {})
        metadata.setdefault("labels", {})[POD_TEMPLATE_HASH_LABEL] = revision_hash or self.hash
        return template


def parse_pod_template(template, path: str = "spec.template", restart_policies: tuple[str, ...] = ("Always",)) -> TemplateInfo:
    if template is None:
        raise SpecError(path, "is required")
    known_fields(template, {"metadata", "spec"}, path)
    metadata = template.get("metadata") or {}
    known_fields(metadata, {"labels", "annotations"}, f"{path}.metadata")
    labels = parse_labels(metadata.get("labels"), f"{path}.metadata.labels")
    if POD_TEMPLATE_HASH_LABEL in labels:
        raise SpecError(f"{path}.metadata.labels[{POD_TEMPLATE_HASH_LABEL!r}]", "is reserved: the controller sets it")
    annotations = parse_annotations(metadata.get("annotations"), f"{path}.metadata.annotations")
    if REVISION_ANNOTATION in annotations:
        raise SpecError(f"{path}.metadata.annotations[{REVISION_ANNOTATION!r}]", "is reserved: the controller sets it")
    raw_spec = template.get("spec")
    if raw_spec is None:
        raise SpecError(f"{path}.spec", "is required")
    normal_spec = _validate_pod_spec(raw_spec, f"{path}.spec")
    policy = normal_spec.get("restartPolicy", "Always")
    if policy not in restart_policies:
        raise SpecError(f"{path}.spec.restartPolicy", f"Unsupported value: {policy!r}: supported values: {', '.join(repr(p) for p in restart_policies)}")
    constraints = parse_constraints(raw_spec, f"{path}.spec")
    meta = {"labels": labels}
    if annotations:
        meta["annotations"] = annotations
    normal = {"metadata": meta, "spec": normal_spec}
    given = {"metadata": meta, "spec": json.loads(canonical_json(raw_spec))}
    return TemplateInfo(template=given, normal=normal, hash=template_hash(normal), labels=labels, constraints=constraints)


def try_parse_stored(template: Mapping | None, restart_policies: tuple[str, ...] = ("Always",)) -> TemplateInfo | None:
    """A template from the revision history, or None if it is missing or no longer valid."""
    if not template:
        return None
    try:
        return _parse_stored(canonical_json(template), restart_policies)
    except (TypeError, ValueError):
        return None


@functools.lru_cache(maxsize=256)
def _parse_stored(text: str, restart_policies: tuple[str, ...]) -> TemplateInfo | None:
    # Pure and deterministic, so safe to memoise: every step re-reads the same history.
    try:
        return parse_pod_template(json.loads(text), "revision.template", restart_policies)
    except SpecError:
        return None
