# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recreate: every old pod is gone before any new one starts (Kubernetes' recreate.go).

1. Stop every old pod (all at once).
2. While any old pod is still observed, wait. A pod on a NotReady node
   counts as still there: it may well be running behind a network
   partition, and Recreate promises old and new never run together. Such a
   rollout waits for the node (or its deadline).
3. Scale the new revision to ``replicas``.
"""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.step import Planner


def rollout(planner: Planner, new: str, replicas: int) -> list[str]:
    """Plan the step; return what it waits for (empty when the new revision may scale)."""
    old = [p for p in planner.staying() if p.revision != new]
    planner.stop(old, "Recreate: old revision")
    lost_old = sorted({p.node for p in planner.view.lost if p.revision != new})
    waiting = []
    if old:
        waiting.append(f"{len(old)} old pod(s) to stop before the new revision starts")
    if lost_old:
        waiting.append(f"old pods on NotReady node(s) {', '.join(lost_old)} (Recreate never runs old and new pods together)")
    if waiting:
        return waiting
    planner.scale_to(new, replicas, "more pods than replicas")
    return []
