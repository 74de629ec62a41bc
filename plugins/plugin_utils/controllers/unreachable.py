# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pods on nodes a run cannot reach: what the record last placed there, and how long they are waited for.

Kubernetes never reports a pod it cannot see as gone: a node that stops answering is NotReady after the
node-monitor grace (40 s), and its pods are evicted (replaced) only when their toleration of the
``node.kubernetes.io/unreachable`` taint runs out. Here the controller's record keeps, with the pods, where it
placed them (``placement``: node → pod → revision) and since when each node has been unreachable
(``unreachable_since``), so that a later run (the controller role's next timer run) continues the same grace
instead of starting it again. Within its grace a pod of an unreachable node is an ``unknown`` pod: counted, not
available, not replaced; after it, it is lost (replaced by the kinds that replace pods). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod

# Kubernetes' node-monitor-grace-period: how long a node may be silent before it is NotReady.
DEFAULT_GRACE_SECONDS = 40
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
RECORD_KEY = "fleet"


def toleration_seconds(template: Mapping | None) -> float | None:
    """The pod's own ``tolerationSeconds`` for the unreachable taint (NoExecute, or any effect), None when it has none.

    A toleration of the taint without ``tolerationSeconds`` tolerates it forever (Kubernetes never evicts the pod).
    """
    tolerations = (((template or {}).get("spec") or {}).get("tolerations")) or []
    for toleration in tolerations if isinstance(tolerations, list) else []:
        if not isinstance(toleration, Mapping):
            continue
        key, operator = toleration.get("key"), toleration.get("operator") or "Equal"
        matches = key == UNREACHABLE_TAINT or (not key and operator == "Exists")
        if matches and toleration.get("effect") in (None, "", "NoExecute"):
            seconds = toleration.get("tolerationSeconds")
            return float("inf") if seconds is None else max(0.0, float(seconds))
    return None


def fleet_state(record: Mapping | None) -> dict:
    """The record's fleet part: {"placement": {node: {pod: revision}}, "unreachable_since": {node: t}}."""
    stored = (record or {}).get(RECORD_KEY) or {}
    placement = stored.get("placement") or {}
    since = stored.get("unreachable_since") or {}
    return {
        "placement": {str(n): {str(p): str(r or "") for p, r in (pods or {}).items()} for n, pods in placement.items()},
        "unreachable_since": {str(n): float(t) for n, t in since.items()},
    }


def first_unreachable(stored_since: Mapping[str, float], unreachable: Iterable[str], seen: Mapping[str, float], now: float) -> dict[str, float]:
    """When each unreachable node was first seen so: the record's time, else this task's, else now."""
    return {n: min(t for t in (stored_since.get(n), seen.get(n), now) if t is not None) for n in sorted(set(unreachable))}


def unseen_pods(
    placement: Mapping[str, Mapping[str, str]],
    unreachable_since: Mapping[str, float],
    templates: Mapping[str, Mapping | None],
    grace: float | None,
    now: float,
) -> list[ObservedPod]:
    """The pods the record places on the unreachable nodes, as observations of phase Unknown.

    ``templates``: revision → pod template (for its tolerations). ``grace`` None: the kind never replaces pods
    (StatefulSet, DaemonSet): they are all plain lost pods for its planner. Otherwise a pod whose grace (its own
    ``tolerationSeconds`` for the unreachable taint, else ``grace``) has not run out is ``unknown``.
    """
    pods = []
    for node, since in sorted(unreachable_since.items()):
        for name, revision in sorted((placement.get(node) or {}).items()):
            within = False
            if grace is not None:
                own = toleration_seconds(templates.get(revision))
                within = now < since + (grace if own is None else own)
            pods.append(ObservedPod(name=name, node=node, revision=revision, phase="Unknown", ready=False, ready_since=None, created=0.0, unknown=within))
    return pods


def grace_ends(pods: Iterable[ObservedPod], unreachable_since: Mapping[str, float], templates: Mapping[str, Mapping | None], grace: float) -> float | None:
    """The earliest time an ``unknown`` pod's grace runs out (when waiting for it ends), None when none is unknown."""
    ends = []
    for pod in pods:
        if pod.unknown and pod.node in unreachable_since:
            own = toleration_seconds(templates.get(pod.revision))
            ends.append(unreachable_since[pod.node] + (grace if own is None else own))
    return min(ends) if ends else None


def next_placement(
    stored: Mapping[str, Mapping[str, str]],
    seen: Mapping[str, Iterable[ObservedPod]],
    starts: Iterable[tuple[str, str, str]],
    stops: Iterable[tuple[str, str]],
) -> dict[str, dict[str, str]]:
    """Where the workload's pods are once a step is applied.

    ``seen``: node → the pods observed there (nodes that answered); the nodes that did not keep their stored
    entry (what cannot be seen is not forgotten, nor can a stop reach it). ``starts``: (node, pod, revision);
    ``stops``: (node, pod), applied to the nodes that answered only.
    """
    placement = {n: dict(pods) for n, pods in stored.items() if n not in seen}
    for node, pods in seen.items():
        placement[node] = {p.name: p.revision for p in pods}
    for node, name in stops:
        if node in seen:
            placement.get(node, {}).pop(name, None)
    for node, name, revision in starts:
        if node in seen:
            placement.setdefault(node, {})[name] = revision
    return {n: dict(sorted(pods.items())) for n, pods in sorted(placement.items()) if pods}
