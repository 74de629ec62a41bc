# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deployment status, from the counts of one observation (``common/counts.py``), in Kubernetes' shape.

* ``replicas``: active pods (all revisions) on ready nodes;
* ``updatedReplicas``: those of the current revision;
* ``readyReplicas`` / ``availableReplicas``: ready / available ones (all revisions);
* ``unavailableReplicas``: ``spec.replicas - availableReplicas`` (not below 0);
* ``observedGeneration``; ``conditions`` with RFC 3339 times;
* extensions: ``revision`` (current revision number) and ``lostReplicas``
  (pods on NotReady nodes, not counted anywhere else).
"""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common.conditions import render_conditions


def render(record: dict, observed: dict, replicas: int) -> dict:
    current = record.get("current_hash")
    revision = record["revisions"].get(current, {}).get("revision") if current else None
    return {
        "observedGeneration": record["observed_generation"],
        "replicas": observed["replicas"],
        "updatedReplicas": observed["updated"],
        "readyReplicas": observed["ready"],
        "availableReplicas": observed["available"],
        "unavailableReplicas": max(0, replicas - observed["available"]),
        "lostReplicas": observed["lost"],
        "revision": revision,
        "conditions": render_conditions(record["conditions"]),
    }
