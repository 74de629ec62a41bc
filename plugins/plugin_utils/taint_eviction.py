# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NoExecute taints in the fleet loop (workload_task.py): which running pods they evict, for every kind.

Kubernetes' taint manager deletes a pod whose node has a NoExecute taint it does not tolerate, and one that
tolerates it with ``tolerationSeconds`` once that time has passed; its controller then replaces it, and the
scheduler puts the replacement on a node it tolerates. Here each observation does the same: the evicted pods are
taken out of the observation (the kind's controller sees them gone, as a lost node's, and replaces them within its
own budget: a Deployment's new pods go elsewhere, a Job counts the pod failed, a StatefulSet identity pinned to
its volume's node waits, Pending, for the taint to go) and the next act removes them from their node.

There is no agent: when a NoExecute taint was first seen on a node is kept in the workload's record
(``taints_since``: node → taint id → time, only while there are such taints, so nothing changes for a fleet
without them) and each run, and each observation of a waiting run, evaluates the deadlines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ansible.utils.display import Display

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import namespaces
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.records import RecordError, load_record
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.taints import (
    NO_EXECUTE,
    Taint,
    Toleration,
    daemonset_tolerations,
    eviction_time,
    first_seen,
    parse_tolerations,
)

display = Display()

RECORD_KEY = "taints_since"
ENDED = ("Succeeded", "Failed")


@dataclass(frozen=True)
class Eviction:
    pod: ObservedPod
    taint: Taint
    tolerated_seconds: int | None  # None: the taint was not tolerated at all


def pod_tolerations(kind: str, template: Mapping | None) -> tuple[Toleration, ...]:
    """The tolerations a pod of ``template`` has: its spec's, and a DaemonSet's daemon pod tolerations."""
    spec = (template or {}).get("spec") or {}
    own = parse_tolerations(spec.get("tolerations") if isinstance(spec.get("tolerations"), list) else None)
    return daemonset_tolerations(own, spec.get("hostNetwork") is True) if kind == "DaemonSet" else own


def evictions(
    kind: str,
    taints: Mapping[str, tuple[Taint, ...]],
    pods: list[ObservedPod],
    templates: Mapping[str, Mapping | None],
    since: Mapping[str, Mapping[str, float]],
    now: float,
) -> list[Eviction]:
    """The pods to evict now: running (not ended) pods on nodes with NoExecute taints whose eviction time has come.
    ``templates``: revision → pod template; a pod whose revision the record does not hold is left alone."""
    found = []
    for pod in pods:
        node_taints = taints.get(pod.node) or ()
        if pod.phase in ENDED or pod.unknown or not node_taints or pod.revision not in templates:
            continue
        tolerations = pod_tolerations(kind, templates[pod.revision])
        due = eviction_time(node_taints, tolerations, since.get(pod.node) or {}, pod.created)
        if due is not None and due[0] <= now:
            used = next((t.seconds for t in tolerations if t.tolerates(due[1])), None)
            found.append(Eviction(pod, due[1], used))
    return found


class TaintEvictions:
    """The taint part of one WorkloadTask: the times taints were first seen, the evictions of each observation."""

    def __init__(self, kind: str, name: str):
        self.kind = kind
        self.name = name
        self.first: dict[str, dict[str, float]] = {}
        self.reported: set[str] = set()

    def apply(self, observation, now: float) -> None:
        """Set ``observation.taints_since`` and ``observation.evicted``; take the evicted pods out of its pods."""
        tainted = {n.name: n.taints for n in observation.nodes if n.ready and any(t.effect == NO_EXECUTE for t in n.taints)}
        record = observation.record() or {}
        stored = record.get(RECORD_KEY)
        if not isinstance(stored, Mapping):
            stored = {}
        # The earliest of what the nodes' record and this task remember.
        known = {str(n): dict(t) for n, t in stored.items() if isinstance(t, Mapping)}
        for node, times in self.first.items():
            for taint_id, at in times.items():
                before = known.setdefault(node, {}).get(taint_id)
                if isinstance(before, (int, float)) and not isinstance(before, bool):
                    known[node][taint_id] = min(float(before), at)
                else:
                    known[node][taint_id] = at
        self.first = since = first_seen(known, tainted, now)
        observation.taints_since = since
        if not tainted:
            return
        try:
            typed = load_record(self.kind, record, self.name) if record else None
        except RecordError:
            typed = None  # the task fails on it later, naming it
        templates = {h: typed.template(h) for h in typed.revisions} if typed is not None else {}
        observation.evicted = evictions(self.kind, tainted, observation.pods, templates, since, now)
        gone = {e.pod.name for e in observation.evicted}
        observation.pods = [p for p in observation.pods if p.name not in gone]
        # A Job plans from the node layer's statuses: there too the pod is gone (a failed pod, run again elsewhere).
        observation.details = {n: [p for p in pods if p.get("name") not in gone] for n, pods in observation.details.items()}

    def with_times(self, record: dict, observation) -> dict:
        """The record to store, with since when the NoExecute taints are known (the key only while there are some)."""
        stored = {k: v for k, v in record.items() if k != RECORD_KEY}
        if observation.taints_since:
            stored[RECORD_KEY] = observation.taints_since
        return stored

    def report(self, evicted: list[Eviction]) -> None:
        for e in evicted:
            if e.pod.name in self.reported:
                continue
            self.reported.add(e.pod.name)
            why = f"tolerationSeconds {e.tolerated_seconds} ran out" if e.tolerated_seconds is not None else "not tolerated"
            display.warning(
                f"{self.kind} {namespaces.display(self.name)}: evicting pod {namespaces.kube_name(e.pod.name)} from {e.pod.node}: "
                f"its taint {{{e.taint.key}: {e.taint.value}}} (NoExecute) is {why}"
            )
