# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The start every workload kind's spec parser shares, in Kubernetes' order of checks.

``parse_preamble`` checks the name, that the spec is there with only the kind's fields,
``replicas`` (for the kinds that have it), the selector, the pod template, that the selector
selects the template's labels, and that the selector is the stored one (it is immutable, as
in Kubernetes). Jobs and CronJobs have no selector: they start with ``spec_mapping``.

A ReplicationController (core/v1) reads its plain label-map selector itself, then goes through
the ReplicaSet's parser with it as ``matchLabels`` (``replicationcontroller.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.namespaces import split
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common.fields import integer_field
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.revisions import HASH_LENGTH, SUFFIX_LENGTH, canonical_json
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.templates import TemplateInfo, parse_pod_template
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.labels import LabelSelector, known_fields, parse_label_selector

# Pod names are <name>-<10-char hash>-<5 chars> and must stay a DNS-1123 label (63 characters).
MAX_NAME_LENGTH = 63 - HASH_LENGTH - SUFFIX_LENGTH - 2
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# One workload's pods at most: what one group of hosts can carry with room to spare (Kubernetes' default is 110
# pods a node: 10,000 fill about 90 hosts), and the size the planners are measured at (benchmarks/bench_plan.py).
MAX_REPLICAS = 10_000


@dataclass(frozen=True)
class Preamble:
    name: str
    replicas: int | None  # None: the kind has no replicas (DaemonSet)
    selector: LabelSelector
    template: TemplateInfo

    @property
    def replica_count(self) -> int:
        """``replicas`` of a kind that has them (parsed with ``replicas=True``)."""
        if self.replicas is None:
            raise ValueError("this kind has no replicas")
        return self.replicas


def validate_name(name) -> str:
    """The name of a Deployment, ReplicaSet, StatefulSet or DaemonSet: room is left for the pod names' suffix.

    The node layer's ``<namespace>_<name>`` (node/namespaces.py) is checked by its name in the namespace."""
    if not isinstance(name, str) or not name:
        raise SpecError("metadata.name", "is required")
    namespace, own = split(name)
    if len(own) > MAX_NAME_LENGTH or not _NAME.match(own) or not _NAME.match(namespace):
        raise SpecError(
            "metadata.name",
            f"{name!r} must be lowercase letters, digits and '-', start and end alphanumeric, at most {MAX_NAME_LENGTH} characters"
            " (pod names add a 17-character suffix)",
        )
    return name


def spec_mapping(spec, fields, path: str = "spec") -> dict:
    """The spec is given, and has only ``fields``."""
    if spec is None:
        raise SpecError(path, "is required")
    known_fields(spec, fields, path)
    return spec


def parse_replicas(spec, path):
    """``replicas``: 0 to ``MAX_REPLICAS``, default 1."""
    replicas = integer_field(spec, "replicas", path, 1)
    if replicas > MAX_REPLICAS:
        raise SpecError(f"{path}.replicas", f"must be at most {MAX_REPLICAS} (the pods of one workload over one group of hosts), got {replicas}")
    return replicas


def check_selector(selector: LabelSelector, template: TemplateInfo, stored_selector: dict | None, path: str) -> None:
    """The selector selects the template's pods, and is the one the workload was created with."""
    if not selector.matches(template.labels):
        raise SpecError(f"{path}.template.metadata.labels", f"`selector` does not match template `labels` (selector: {canonical_json(selector.to_json())})")
    if stored_selector is not None and canonical_json(stored_selector) != canonical_json(selector.to_json()):
        raise SpecError(f"{path}.selector", f"field is immutable (stored: {canonical_json(stored_selector)})")


def parse_preamble(
    name,
    spec,
    fields,
    stored_selector: dict | None = None,
    path: str = "spec",
    *,
    replicas: bool = True,
    prepare_template: Callable[[object], object] | None = None,
) -> Preamble:
    """Name, spec, replicas, selector and template of a replicated workload, checked in that order.

    ``replicas=False``: the kind has none (DaemonSet), or reads them itself. ``prepare_template``
    turns the raw template into the one to parse, once the selector is read (a StatefulSet adds its
    claims' volumes: they are part of the revision).
    """
    name = validate_name(name)
    spec = spec_mapping(spec, fields, path)
    count = parse_replicas(spec, path) if replicas else None
    selector = parse_label_selector(spec.get("selector"), f"{path}.selector", required=True)
    raw_template = spec.get("template")
    if prepare_template is not None:
        raw_template = prepare_template(raw_template)
    template = parse_pod_template(raw_template, f"{path}.template", ("Always",))
    check_selector(selector, template, stored_selector, path)
    return Preamble(name, count, selector, template)
