# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Nodes as the scheduler sees them: a name, readiness, labels and capacity.

Nodes are inventory hosts. Their labels come from the inventory:

* the host var ``hostfleet_node_labels`` (a mapping of label → value),
* one ``hostfleet.io/group.<group>: "true"`` per inventory group of the host,
* ``kubernetes.io/hostname: <inventory name>``.

Their capacity comes from the host var ``hostfleet_node_capacity``
(``{cpu: "2", memory: "4Gi", pods: 110}``); a missing capacity (or key) means
"unlimited" for that resource. Their taints come from ``hostfleet_node_taints`` (scheduler/taints.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import quantity
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import labels as parse_labels
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.taints import TAINTS_VAR, Taint, parse_taints

HOSTNAME_LABEL = "kubernetes.io/hostname"
GROUP_LABEL_PREFIX = "hostfleet.io/group."
LABELS_VAR = "hostfleet_node_labels"
CAPACITY_VAR = "hostfleet_node_capacity"
_RESOURCE_KEYS = ("cpu", "memory", "pods")


@dataclass(frozen=True)
class Resources:
    """An amount of resources; ``None`` means "not given" (unlimited as a capacity, zero as a request)."""

    cpu_millis: int | None = None
    memory_bytes: int | None = None
    pods: int | None = None

    def to_json(self) -> dict:
        return {"cpu_millis": self.cpu_millis, "memory_bytes": self.memory_bytes, "pods": self.pods}

    @classmethod
    def from_json(cls, data: dict | None) -> Resources:
        data = data or {}
        return cls(data.get("cpu_millis"), data.get("memory_bytes"), data.get("pods"))


@dataclass(frozen=True)
class Node:
    name: str
    ready: bool
    labels: dict[str, str] = field(default_factory=dict)
    capacity: Resources | None = None
    taints: tuple[Taint, ...] = ()  # from hostfleet_node_taints (scheduler/taints.py)

    def to_json(self) -> dict:
        data = {"name": self.name, "ready": self.ready, "labels": dict(self.labels), "capacity": self.capacity.to_json() if self.capacity else None}
        if self.taints:
            data["taints"] = [t.to_json() for t in self.taints]
        return data

    @classmethod
    def from_json(cls, data: dict) -> Node:
        capacity = data.get("capacity")
        taints = tuple(Taint.from_json(t) for t in data.get("taints") or ())
        return cls(data["name"], bool(data["ready"]), dict(data.get("labels") or {}), Resources.from_json(capacity) if capacity is not None else None, taints)


@dataclass(frozen=True)
class NodeUsage:
    """What pods of OTHER owners take on a node (they count against its capacity and, when their labels
    are given, towards pod anti-affinity and topology spread)."""

    pods: int = 0
    cpu_millis: int = 0
    memory_bytes: int = 0
    labels: tuple[dict, ...] = ()
    host_ports: tuple[tuple[str, int], ...] = ()  # (protocol, port) taken by their containers' hostPort

    def to_json(self) -> dict:
        return {
            "pods": self.pods,
            "cpu_millis": self.cpu_millis,
            "memory_bytes": self.memory_bytes,
            "labels": [dict(x) for x in self.labels],
            "host_ports": [list(p) for p in self.host_ports],
        }

    @classmethod
    def from_json(cls, data: dict | None) -> NodeUsage:
        data = data or {}
        labels = tuple(dict(x) for x in data.get("labels") or ())
        ports = tuple((str(p[0]), int(p[1])) for p in data.get("host_ports") or ())
        return cls(int(data.get("pods") or 0), int(data.get("cpu_millis") or 0), int(data.get("memory_bytes") or 0), labels, ports)


def parse_cpu(value, path: str) -> int:
    """CPU quantity → millicores ("500m" → 500, "2" → 2000, 0.5 → 500)."""
    try:
        return quantity.cpu_millis(value)
    except quantity.QuantityError as exc:
        raise SpecError(path, str(exc)) from None


def parse_memory(value, path: str) -> int:
    """Memory quantity → bytes ("1Gi" → 1073741824, "500M" → 500000000)."""
    try:
        return quantity.memory_bytes(value)
    except quantity.QuantityError as exc:
        raise SpecError(path, str(exc)) from None


def parse_capacity(value, path: str = CAPACITY_VAR) -> Resources | None:
    """``{cpu: "2", memory: "4Gi", pods: 110}`` → Resources; ``None`` → None (unlimited)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SpecError(path, f"must be a mapping such as {{cpu: '2', memory: '4Gi', pods: 110}}, got {type(value).__name__}")
    for key in value:
        if key not in _RESOURCE_KEYS:
            raise SpecError(f"{path}.{key}", f"unknown resource (allowed: {', '.join(_RESOURCE_KEYS)})")
    cpu = parse_cpu(value["cpu"], f"{path}.cpu") if value.get("cpu") is not None else None
    memory = parse_memory(value["memory"], f"{path}.memory") if value.get("memory") is not None else None
    pods = value.get("pods")
    if pods is not None and (isinstance(pods, bool) or not isinstance(pods, int) or pods < 0):
        raise SpecError(f"{path}.pods", f"must be a non-negative integer, got {pods!r}")
    return Resources(cpu, memory, pods)


def group_label(group: str) -> str:
    return f"{GROUP_LABEL_PREFIX}{group}"


def node_from_inventory(name: str, ready: bool, host_vars: dict, groups: list[str]) -> Node:
    """Build the scheduler's Node from an inventory host.

    Raises SpecError (path = the host var and key) for malformed labels or capacity.
    """
    prefix = f"hostvars[{name!r}]."
    raw_labels = host_vars.get(LABELS_VAR)
    if raw_labels is not None and not isinstance(raw_labels, dict):
        raise SpecError(f"{prefix}{LABELS_VAR}", f"must be a mapping of label: value, got {type(raw_labels).__name__}")
    labels = parse_labels(raw_labels or {}, f"{prefix}{LABELS_VAR}")
    for key in labels:
        if key == HOSTNAME_LABEL or key.startswith(GROUP_LABEL_PREFIX):
            raise SpecError(f"{prefix}{LABELS_VAR}[{key!r}]", f"is reserved: {HOSTNAME_LABEL} and {GROUP_LABEL_PREFIX}<group> are set from the inventory")
    for group in groups:
        labels[group_label(group)] = "true"
    labels[HOSTNAME_LABEL] = name
    capacity = parse_capacity(host_vars.get(CAPACITY_VAR), f"{prefix}{CAPACITY_VAR}")
    taints = parse_taints(host_vars.get(TAINTS_VAR), name)
    return Node(name=name, ready=bool(ready), labels=dict(sorted(labels.items())), capacity=capacity, taints=taints)
