# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A replicated workload's pods counted from one observation (before the step's actions).

The numbers behind the status (Deployment, ReplicaSet) and the progress check
(``conditions.has_progressed``), recorded as ``record["observed"]``.
"""

from __future__ import annotations

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
