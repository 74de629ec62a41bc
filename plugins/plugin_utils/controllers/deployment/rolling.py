# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""RollingUpdate: replace old pods with new ones within maxSurge / maxUnavailable (Kubernetes' rolling.go).

The budgets are global across hosts. With ``R`` replicas, ``S`` = maxSurge
(rounded up) and ``U`` = maxUnavailable (rounded down):

* never more than ``R + S`` pods (on ready nodes);
* never fewer than ``R - U`` available pods because of a stop we decide.

One step scales the new revision up if it can, then scales old revisions
down if it can. Kubernetes does the two in separate syncs; doing them in one
step is equally safe (the scale-down below counts the pods just started as
existing and unavailable) and saves one wait per wave.

Worked example (Kubernetes' own): 10 replicas, maxSurge 3, maxUnavailable 2,
so at most 13 pods and at least 8 available.

* Step 1: 10 old pods, all available. Scale up: 13 - 10 = 3 new pods.
  Scale down: may remove ``all - minAvailable - newUnavailable`` =
  13 - 8 - 3 = 2 old pods (availability 10 - 8 = 2 allows it too): 8 old, 3 new.
* Step 2, the new pods crash-loop: 11 pods, scale up 13 - 11 = 2 more new
  (8 old, 5 new); scale down: 13 - 8 - 5 = 0, nothing. The rollout stops
  there, 8 pods still available, until the new pods become available, the
  progress deadline passes, or the template changes.
* Step 3, a node fails taking an old pod: 7 old pods are available, below 8.
  Nothing old is stopped (13 - 8 - 5 ≤ 0); the lost pod is not counted, so
  the budget allows one new pod to take its place.
* Instead (no node failure), the user pushes a third template ("roll
  over"): the 5 crash-looping pods are now old and unhealthy, so they go
  first: 13 - 8 - 0 = 5 may be removed, all 5 unavailable ones; the 8
  available pods stay, and the third template scales up in their place.
"""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import is_available
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.step import Planner


def rollout(planner: Planner, new: str, replicas: int, max_surge: int, max_unavailable: int) -> None:
    """Scale up if we can; then scale down if we can."""
    reconcile_new(planner, new, replicas, max_surge)
    reconcile_old(planner, new, replicas, max_unavailable)


def new_replicas(planner: Planner, new: str, replicas: int, max_surge: int) -> int:
    """How many pods the new revision may have now (Kubernetes' NewRSNewReplicas)."""
    current_total = planner.size()
    max_total = replicas + max_surge
    new_size = planner.size(new)
    if current_total >= max_total:
        return new_size
    return new_size + min(max_total - current_total, replicas - new_size)


def reconcile_new(planner: Planner, new: str, replicas: int, max_surge: int) -> None:
    size = planner.size(new)
    if size == replicas:
        return
    if size > replicas:
        planner.scale_down(planner.staying(new), size - replicas, "more pods than replicas")
        return
    planner.start(new, new_replicas(planner, new, replicas, max_surge) - size)


def reconcile_old(planner: Planner, new: str, replicas: int, max_unavailable: int) -> None:
    old_revisions = [r for r in planner.revisions() if r != new]
    if not any(planner.size(r) for r in old_revisions):
        return
    min_available = replicas - max_unavailable
    new_unavailable = planner.size(new) - planner.available(new)
    # Pods that may go without going below minAvailable, counting the new
    # revision's unavailable pods as if they were never going to be ready.
    max_scaled_down = planner.size() - min_available - new_unavailable
    if max_scaled_down <= 0:
        return
    cleanup_unhealthy(planner, old_revisions, max_scaled_down)
    scale_down_old(planner, old_revisions, min_available)


def cleanup_unhealthy(planner: Planner, old_revisions: list[str], max_cleanup: int) -> int:
    """Unavailable old pods go first: removing them does not lower availability (kubernetes#16737)."""
    removed = 0
    for revision in old_revisions:
        if removed >= max_cleanup:
            break
        unhealthy = [p for p in planner.staying(revision) if not is_available(p, planner.min_ready_seconds, planner.now)]
        removed += planner.scale_down(unhealthy, min(max_cleanup - removed, len(unhealthy)), "old revision, unavailable")
    return removed


def scale_down_old(planner: Planner, old_revisions: list[str], min_available: int) -> int:
    """Remove old pods, oldest revision first, as long as availability stays at minAvailable."""
    available = planner.available()
    if available <= min_available:
        return 0
    budget = available - min_available
    removed = 0
    for revision in old_revisions:
        if removed >= budget:
            break
        pods = planner.staying(revision)
        removed += planner.scale_down(pods, min(len(pods), budget - removed), "old revision, replaced")
    return removed
