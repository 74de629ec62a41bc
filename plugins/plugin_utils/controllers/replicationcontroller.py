# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A ReplicationController (core ``v1``): the ReplicaSet's predecessor, run by the ReplicaSet controller.

Kubernetes' own ReplicationManager is the ReplicaSet controller behind an adapter, and so is this one: the same
pods, placement, scaling, lost and dead pod replacement (``replicaset.py``). What differs is the spec:

* ``selector`` is a plain label map (``app: web``), not a LabelSelector; empty or absent, it defaults to the
  template's labels, and it must match them (an error names ``spec.selector``). It becomes ``matchLabels``.
* ``replicas`` defaults to 1; ``minReadySeconds`` as for a ReplicaSet.
* No rollout: a template change affects only the pods started afterwards; running pods are not replaced.

The record is a ReplicaSet's, of kind ``ReplicationController``. Unlike Kubernetes, where a changed selector
orphans the pods it no longer selects, the selector cannot change here (pods belong to their owner by name).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import labels as parse_labels
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.replicaset import (
    ReplicaSetRecord,
    ReplicaSetSpec,
    parse_replicaset_spec,
    reconcile_replicaset,
)
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.step import Step
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.templates import parse_pod_template
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.labels import known_fields
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node, NodeUsage

KIND = "ReplicationController"
FIELDS = {"replicas", "selector", "template", "minReadySeconds"}
# What a LabelSelector has and a ReplicationController's selector has not.
_SELECTOR_FIELDS = ("matchLabels", "matchExpressions")


class ReplicationControllerRecord(ReplicaSetRecord):
    """A ReplicaSet's record under its own kind (its file on the nodes is ``replicationcontroller.<name>.json``)."""

    KIND = KIND


def selector_labels(spec: dict, template_labels: Mapping[str, str], path: str = "spec") -> dict:
    """The selector as a label map: the given one (which must match the template's labels) or those labels."""
    raw = spec.get("selector")
    if isinstance(raw, dict) and any(isinstance(raw.get(key), (dict, list)) for key in _SELECTOR_FIELDS):
        raise SpecError(f"{path}.selector", "a ReplicationController's selector is a plain label map (app: web), not matchLabels/matchExpressions")
    # Kubernetes defaults an absent or empty selector (a wrong type is refused by the label parser).
    selector = dict(template_labels) if raw is None or raw == {} else parse_labels(raw, f"{path}.selector")
    if not selector:
        raise SpecError(f"{path}.selector", "is required: the template has no labels to default it to")
    unmatched = {k: v for k, v in selector.items() if template_labels.get(k) != v}
    if unmatched:
        raise SpecError(
            f"{path}.selector",
            f"does not match the template's labels ({path}.template.metadata.labels): {', '.join(f'{k}={v}' for k, v in sorted(unmatched.items()))}",
        )
    return selector


def parse_replicationcontroller_spec(name: str, spec: dict, stored_selector: dict | None = None, path: str = "spec") -> ReplicaSetSpec:
    """The spec as the ReplicaSet controller runs it; a SpecError naming the field for bad input."""
    if spec is None:
        raise SpecError(path, "is required")
    known_fields(spec, FIELDS, path)
    template = parse_pod_template(spec.get("template"), f"{path}.template", ("Always",))
    selector = selector_labels(spec, template.labels, path)
    return parse_replicaset_spec(name, dict(spec, selector={"matchLabels": selector}), stored_selector, path)


def reconcile_replicationcontroller(
    spec: ReplicaSetSpec,
    record: dict | None,
    nodes: Iterable[Node | dict],
    pods: Iterable[ObservedPod | dict],
    other_usage: Mapping[str, NodeUsage | dict] | None = None,
    now: float = 0.0,
) -> Step:
    """The ReplicaSet controller's step, keeping a ReplicationController's record."""
    return reconcile_replicaset(spec, record, nodes, pods, other_usage, now, record_type=ReplicationControllerRecord)
