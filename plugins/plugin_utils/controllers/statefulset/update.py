# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rolling a new revision over the identities (Kubernetes' updateStatefulSet, second half).

RollingUpdate: identities at or above ``partition`` whose pod is not of the
update revision are stopped, HIGHEST ordinal first, within ``maxUnavailable``
(unavailable identities, missing ones included, count against it); a stopped
identity is started again from the update revision in a later step (same
name, same node, same volumes). A stale pod that is not available anyway is
replaced without spending the budget. OnDelete: nothing here; only missing
identities get the update revision.
"""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import is_available
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.fencing import Identities
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.spec import StatefulSetSpec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.step import Planner


def unavailable(spec: StatefulSetSpec, planner: Planner, idents: Identities) -> int:
    """Identities of the ordinals that are not available once this step's stops are applied."""
    stopped = {s.name for s in planner.stops}
    count = 0
    for ordinal in spec.ordinals:
        pod = idents.get(ordinal, spec.name).pod
        if pod is None or pod.name in stopped or not is_available(pod, spec.min_ready_seconds, planner.now):
            count += 1
    return count


def rolling_update(spec: StatefulSetSpec, planner: Planner, idents: Identities, update: str) -> list[str]:
    """Stop stale identities within the budget; returns what the rollout waits for."""
    if not spec.rolling:
        return []
    stopped = {s.name for s in planner.stops}
    stale = [
        i.pod
        for i in (idents.get(o, spec.name) for o in reversed(spec.ordinals))
        if i.ordinal >= spec.partition and i.pod is not None and i.pod.revision != update and i.pod.name not in stopped
    ]
    budget = spec.max_unavailable_for() - unavailable(spec, planner, idents)
    waiting = []
    for pod in stale:
        if not is_available(pod, spec.min_ready_seconds, planner.now):
            planner.stop([pod], "rolling update: not available, replaced at once")
        elif budget > 0:
            planner.stop([pod], "rolling update")
            budget -= 1
        else:
            waiting.append(f"{len(stale)} pod(s) to update to the update revision (maxUnavailable {spec.max_unavailable_for()})")
            break
    return waiting
