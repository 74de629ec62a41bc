# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Node taints and pod tolerations, with Kubernetes' semantics. Pure: no I/O.

Taints come from the inventory: the host var ``hostfleet_node_taints``, in Kubernetes' form (what ``kubectl taint
nodes node1 key1=value1:NoSchedule`` puts in ``node.spec.taints``)::

    hostfleet_node_taints:
      - {key: key1, value: value1, effect: NoSchedule}

Their effects, as Kubernetes gives them:

* ``NoSchedule``: no new pod goes to the node unless it tolerates the taint (placement filter; the unschedulable
  message names the taint: ``node(s) had untolerated taint {key1: value1}``). Pods already there stay.
* ``PreferNoSchedule``: the node is avoided when another one fits (first key of the placement rank).
* ``NoExecute``: no new pod goes there, and a running pod that does not tolerate it is evicted at once; one that
  tolerates it with ``tolerationSeconds`` is evicted once that time has passed (``eviction_time``).

There is no agent watching the nodes: "since when" a taint is on a node is the time a run first saw it (kept in the
workload's record, ``first_seen``), and evictions happen when a run (or the controller role's timer run) looks;
a pod evicted "after 30 s" goes at the first run after those 30 s.

DaemonSet pods tolerate what Kubernetes' DaemonSet controller adds to its pods (``daemonset_tolerations``).
``node.kubernetes.io/unschedulable`` (``UNSCHEDULABLE_TAINT``) is the taint a cordon puts on a node (issue 16): a
cordoned node is a node with that NoSchedule taint, and everything here then applies to it unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import TAINT_EFFECTS, SpecError
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import labels as parse_labels

TAINTS_VAR = "hostfleet_node_taints"
NO_SCHEDULE = "NoSchedule"
PREFER_NO_SCHEDULE = "PreferNoSchedule"
NO_EXECUTE = "NoExecute"
EFFECTS = TAINT_EFFECTS
# A pod is not placed on a node with an untolerated taint of these effects (Kubernetes' TaintToleration filter).
SCHEDULING_EFFECTS = (NO_SCHEDULE, NO_EXECUTE)

# The taints Kubernetes' node lifecycle puts on nodes; DaemonSet pods tolerate them.
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
DISK_PRESSURE_TAINT = "node.kubernetes.io/disk-pressure"
MEMORY_PRESSURE_TAINT = "node.kubernetes.io/memory-pressure"
PID_PRESSURE_TAINT = "node.kubernetes.io/pid-pressure"
NETWORK_UNAVAILABLE_TAINT = "node.kubernetes.io/network-unavailable"
# A cordoned node's taint (kubectl cordon; issue 16 adds cordoning): NoSchedule, so the rules here apply to it as is.
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"


@dataclass(frozen=True)
class Taint:
    key: str
    value: str = ""
    effect: str = NO_SCHEDULE

    @property
    def id(self) -> str:
        """``key=value:effect`` (kubectl's notation): the taint's identity in the record of when it was first seen."""
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"

    def message(self) -> str:
        """The scheduler's words for a node that has this taint untolerated."""
        return f"node(s) had untolerated taint {{{self.key}: {self.value}}}"

    def to_json(self) -> dict:
        return {"key": self.key, "value": self.value, "effect": self.effect}

    @classmethod
    def from_json(cls, data: Mapping) -> Taint:
        return cls(str(data["key"]), str(data.get("value") or ""), str(data["effect"]))


@dataclass(frozen=True)
class Toleration:
    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""
    seconds: int | None = None  # tolerationSeconds (NoExecute only)

    def tolerates(self, taint: Taint) -> bool:
        """Kubernetes' ToleratesTaint: an empty effect matches every effect, an empty key (with Exists) every key."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        if self.operator in ("", "Equal"):
            return self.value == taint.value
        return False

    def same(self, other: Toleration) -> bool:
        """Kubernetes' MatchToleration: the same toleration but perhaps its seconds."""
        return (self.key, self.operator, self.value, self.effect) == (other.key, other.operator, other.value, other.effect)


def parse_taints(value, host: str) -> tuple[Taint, ...]:
    """The host var ``hostfleet_node_taints`` of ``host`` → taints; SpecError naming the host, the index and the field."""
    path = f"hostvars[{host!r}].{TAINTS_VAR}"
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SpecError(path, f"must be a list of {{key, value, effect}} (Kubernetes' node.spec.taints), got {type(value).__name__}")
    taints = []
    seen = set()
    for i, item in enumerate(value):
        ipath = f"{path}[{i}]"
        if not isinstance(item, dict):
            raise SpecError(ipath, f"must be a mapping {{key, value, effect}}, got {type(item).__name__}")
        unknown = sorted(str(k) for k in item if k not in ("key", "value", "effect"))
        if unknown:
            raise SpecError(f"{ipath}.{unknown[0]}", "unknown field (a taint has key, value and effect)")
        key, raw_value, effect = item.get("key"), item.get("value"), item.get("effect")
        if not isinstance(key, str) or not key:
            raise SpecError(f"{ipath}.key", "is required: a label key such as 'dedicated' or 'example.com/gpu'")
        if raw_value is not None and (isinstance(raw_value, bool) or not isinstance(raw_value, (str, int, float))):
            raise SpecError(f"{ipath}.value", f"must be a string, got {type(raw_value).__name__}")
        try:
            parsed = parse_labels({key: "" if raw_value is None else raw_value}, ipath)
        except SpecError as exc:
            field = "value" if "label value" in exc.message or "must be strings" in exc.message else "key"
            raise SpecError(f"{ipath}.{field}", exc.message) from None
        if effect is None:
            raise SpecError(f"{ipath}.effect", f"is required: one of {', '.join(EFFECTS)}")
        if effect not in EFFECTS:
            raise SpecError(f"{ipath}.effect", f"Unsupported value: {effect!r}: supported values: {', '.join(EFFECTS)}")
        if (key, effect) in seen:
            raise SpecError(ipath, f"taints must be unique by key and effect: {key}:{effect} is there twice")
        seen.add((key, effect))
        taints.append(Taint(key, parsed[key], effect))
    return tuple(taints)


def parse_tolerations(value) -> tuple[Toleration, ...]:
    """A PodSpec's ``tolerations`` (validated by the node layer's podspec: Kubernetes' rules) → Tolerations."""
    result = []
    for item in value or ():
        if not isinstance(item, Mapping):
            continue
        seconds = item.get("tolerationSeconds")
        result.append(
            Toleration(
                str(item.get("key") or ""),
                str(item.get("operator") or "Equal"),
                str(item.get("value") or ""),
                str(item.get("effect") or ""),
                seconds if isinstance(seconds, int) and not isinstance(seconds, bool) else None,
            )
        )
    return tuple(result)


def untolerated(taints: Iterable[Taint], tolerations: Sequence[Toleration], effects: Sequence[str] = SCHEDULING_EFFECTS) -> Taint | None:
    """The first taint of ``effects`` no toleration tolerates (Kubernetes' FindMatchingUntoleratedTaint), else None."""
    for taint in taints:
        if taint.effect in effects and not any(t.tolerates(taint) for t in tolerations):
            return taint
    return None


def admission_refusal(node: str, taints: Sequence[Taint], tolerations: Sequence[Toleration]) -> str | None:
    """Why the kubelet of ``node`` would not admit a pod bound to it by ``spec.nodeName`` (no scheduler: NoSchedule
    taints do not apply, a NoExecute taint the pod does not tolerate does), None when it would."""
    taint = untolerated(taints, tolerations, (NO_EXECUTE,))
    if taint is None:
        return None
    return f"spec.nodeName: {node} has untolerated taint {{{taint.key}: {taint.value}}} (NoExecute): the pod would be evicted at once"


def intolerable_preferences(taints: Iterable[Taint], tolerations: Sequence[Toleration]) -> int:
    """How many PreferNoSchedule taints the pod does not tolerate (Kubernetes' TaintToleration score: fewer is better;
    only tolerations of that effect or of every effect count)."""
    relevant = [t for t in tolerations if t.effect in ("", PREFER_NO_SCHEDULE)]
    return sum(1 for taint in taints if taint.effect == PREFER_NO_SCHEDULE and not any(t.tolerates(taint) for t in relevant))


def daemonset_tolerations(tolerations: Sequence[Toleration], host_network: bool) -> tuple[Toleration, ...]:
    """The pod's tolerations with those Kubernetes' DaemonSet controller adds to every daemon pod (AddOrUpdateDaemonPodTolerations):
    not-ready and unreachable (NoExecute, forever), disk/memory/pid pressure and unschedulable (NoSchedule), and
    network-unavailable for hostNetwork pods. A toleration of the pod that is the same but for its seconds is replaced,
    as Kubernetes does (daemon pods are never evicted for those two)."""
    added = [
        Toleration(NOT_READY_TAINT, "Exists", "", NO_EXECUTE),
        Toleration(UNREACHABLE_TAINT, "Exists", "", NO_EXECUTE),
        Toleration(DISK_PRESSURE_TAINT, "Exists", "", NO_SCHEDULE),
        Toleration(MEMORY_PRESSURE_TAINT, "Exists", "", NO_SCHEDULE),
        Toleration(PID_PRESSURE_TAINT, "Exists", "", NO_SCHEDULE),
        Toleration(UNSCHEDULABLE_TAINT, "Exists", "", NO_SCHEDULE),
    ]
    if host_network:
        added.append(Toleration(NETWORK_UNAVAILABLE_TAINT, "Exists", "", NO_SCHEDULE))
    return tuple(t for t in tolerations if not any(t.same(a) for a in added)) + tuple(added)


def first_seen(stored: Mapping | None, nodes: Mapping[str, Sequence[Taint]], now: float) -> dict[str, dict[str, float]]:
    """Since when each node's NoExecute taints are known: ``stored`` (the record's {node: {taint id: time}}) for a
    taint still there, ``now`` for a new one; a taint that went away is forgotten (put back, it counts afresh)."""
    result = {}
    for node, taints in sorted(nodes.items()):
        before = (stored or {}).get(node) or {}
        times = {}
        for taint in taints:
            if taint.effect == NO_EXECUTE:
                known = before.get(taint.id)
                times[taint.id] = float(known) if isinstance(known, (int, float)) and not isinstance(known, bool) else now
        if times:
            result[node] = dict(sorted(times.items()))
    return result


def eviction_time(taints: Sequence[Taint], tolerations: Sequence[Toleration], since: Mapping[str, float], created: float) -> tuple[float, Taint] | None:
    """When a pod on a node with ``taints`` is evicted by their NoExecute ones, and for which taint; None: never.

    As Kubernetes' taint manager: an untolerated NoExecute taint evicts at once (time -inf); else the pod stays for
    the smallest ``tolerationSeconds`` among the tolerations used (the first that tolerates each taint), counted from
    when the pod was first on the tainted node: the later of when the taint was first seen (``since``: taint id →
    time) and the pod's creation. Tolerations without seconds tolerate forever.
    """
    executing = [t for t in taints if t.effect == NO_EXECUTE]
    if not executing:
        return None
    used = []
    for taint in executing:
        match = next((t for t in tolerations if t.tolerates(taint)), None)
        if match is None:
            return -math.inf, taint
        used.append((match, taint))
    timed = [(t.seconds, taint) for t, taint in used if t.seconds is not None]
    if not timed:
        return None
    seconds, taint = min(timed, key=lambda pair: pair[0])
    tainted_since = min((since[t.id] for t in executing if t.id in since), default=created)
    start = max(created, tainted_since)
    return start + max(0, seconds), taint
