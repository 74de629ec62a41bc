# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scaling without rolling (Kubernetes' sync.go ``scale``): paused Deployments and scaling events.

When ``replicas`` changes while several revisions have pods (mid-rollout),
every revision is scaled in proportion to its size, so that the mix of old
and new stays what it was (the risk the user accepted does not change)::

    allowed = replicas + maxSurge          (0 when replicas is 0)
    to_add  = allowed - pods
    share(revision) = round(size * allowed / previous_allowed) - size

bounded by what is left to add (or remove); the leftover goes to the
largest revision (newest first when adding, oldest first when removing).

Better than Kubernetes: when scaling down, the stops are then rebalanced so
that availability never drops below ``replicas - maxUnavailable`` when it
was not already below it: an available victim is swapped for an
unavailable pod of another revision (the total stays the same).
"""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.intstr import round_half_away
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import is_available
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.step import Planner


def scale(
    planner: Planner, new: str | None, replicas: int, max_surge: int, max_unavailable: int, previous_allowed: int | None, exclusive: bool = False
) -> None:
    """Scale without rolling. ``exclusive`` (Recreate): never add pods while another revision has pods anywhere."""
    revisions = planner.revisions()
    if exclusive:
        everywhere = set(revisions) | {p.revision for p in planner.view.lost}
        if len(everywhere) > 1:
            return  # Recreate, paused mid-way: nothing may start until the old revision is gone
        revisions = sorted(everywhere)
    if len(revisions) <= 1:
        # One revision with pods (or none): it simply gets `replicas` pods (Kubernetes' FindActiveOrLatest).
        only = revisions[0] if revisions else new
        if only is not None:
            planner.scale_to(only, replicas, "scaled down")
        return
    if new is not None and planner.size(new) == replicas and planner.available(new) == replicas:
        # The new revision is saturated: old revisions go entirely.
        for revision in revisions:
            if revision != new:
                planner.scale_to(revision, 0, "old revision, new revision saturated")
        return
    proportional(planner, revisions, replicas, max_surge, max_unavailable, previous_allowed)


def proportional_targets(sizes: dict[str, int], order: list[str], replicas: int, max_surge: int, previous_allowed: int | None) -> dict[str, int]:
    """Target size per revision; ``order`` lists revisions oldest first."""
    total = sum(sizes.values())
    allowed = replicas + max_surge if replicas > 0 else 0
    to_add = allowed - total
    targets = dict(sizes)
    if to_add == 0:
        return targets
    rank = {r: i for i, r in enumerate(order)}
    if to_add > 0:
        ordered = sorted(sizes, key=lambda r: (-sizes[r], -rank[r]))  # largest first, newer first
    else:
        ordered = sorted(sizes, key=lambda r: (-sizes[r], rank[r]))  # largest first, older first
    base = previous_allowed if previous_allowed else total
    added = 0
    for revision in ordered:
        size = sizes[revision]
        if size == 0 or added == to_add:
            continue
        fraction = -size if replicas == 0 else round_half_away(size * allowed / base) - size
        left = to_add - added
        # Never against the direction of the scaling (possible when the previous size is stale):
        # a scale-up only starts pods, a scale-down only stops them, so the budgets hold while both run.
        share = max(0, min(fraction, left)) if to_add > 0 else min(0, max(fraction, left))
        targets[revision] = size + share
        added += share
    first = ordered[0]
    targets[first] = max(0, targets[first] + to_add - added)
    return targets


def proportional(planner: Planner, revisions: list[str], replicas: int, max_surge: int, max_unavailable: int, previous_allowed: int | None) -> None:
    sizes = {r: planner.size(r) for r in revisions}
    targets = proportional_targets(sizes, revisions, replicas, max_surge, previous_allowed)
    min_available = replicas - max_unavailable
    available_before = planner.available()
    stops_before = len(planner.stops)
    for revision in revisions:
        planner.scale_to(revision, targets[revision], "scaled down proportionally")
    if planner.available() < min(min_available, available_before):
        _rebalance(planner, min(min_available, available_before), stops_before)


def _rebalance(planner: Planner, floor: int, first_stop: int) -> None:
    """Swap available victims for unavailable survivors until availability is back at ``floor``."""
    active = {p.name: p for p in planner.view.active}
    victims = [active[s.name] for s in planner.stops[first_stop:] if s.name in active]
    available_victims = [p for p in victims if is_available(p, planner.min_ready_seconds, planner.now)]
    for victim in available_victims:
        if planner.available() >= floor:
            return
        spare = [p for p in planner.staying() if p.revision != victim.revision and not is_available(p, planner.min_ready_seconds, planner.now)]
        if not spare:
            return
        planner.unstop(victim)
        planner.scale_down(spare, 1, "scaled down proportionally (unavailable first)")
