# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deployment status, counted from one observation (before the step's actions), in Kubernetes' shape.

* ``replicas``: active pods (all revisions) on ready nodes;
* ``updatedReplicas``: those of the current revision;
* ``readyReplicas`` / ``availableReplicas``: ready / available ones (all revisions);
* ``unavailableReplicas``: ``spec.replicas - availableReplicas`` (not below 0);
* ``observedGeneration``; ``conditions`` with RFC 3339 times;
* extensions: ``revision`` (current revision number) and ``lostReplicas``
  (pods on NotReady nodes, not counted anywhere else).
"""

from __future__ import annotations

from datetime import UTC, datetime

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import PodView, is_available, is_ready


def count(view: PodView, current: str | None, min_ready_seconds: int, now: float) -> dict:
    """The observation as numbers: replicas, updated, ready, available, old (pods not of ``current``), lost."""
    active = view.active
    return {
        "replicas": len(active),
        "updated": sum(1 for p in active if p.revision == current),
        "ready": sum(1 for p in active if is_ready(p)),
        "available": sum(1 for p in active if is_available(p, min_ready_seconds, now)),
        # Lost pods still exist: losing a node is not "fewer old pods" (which would count as progress).
        "old": sum(1 for p in active + view.lost if p.revision != current),
        "lost": len(view.lost),
        "updated_ready": sum(1 for p in active if p.revision == current and is_ready(p)),
        "updated_available": sum(1 for p in active if p.revision == current and is_available(p, min_ready_seconds, now)),
    }


def rfc3339(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_conditions(conditions: list[dict]) -> list[dict]:
    return [{**c, "lastUpdateTime": rfc3339(c.get("lastUpdateTime")), "lastTransitionTime": rfc3339(c.get("lastTransitionTime"))} for c in conditions]


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
