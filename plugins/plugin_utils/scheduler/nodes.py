# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Nodes as the scheduler sees them: a name, readiness, labels and capacity.

Nodes are inventory hosts. Their labels come from the inventory:

* the host var ``hostfleet_node_labels`` (a mapping of label → value),
* one ``hostfleet.io/group.<group>: "true"`` per inventory group of the host,
* ``kubernetes.io/hostname: <inventory name>``,
* the labels of the node's facts (``well_known_labels.py``: ``kubernetes.io/os``, ``kubernetes.io/arch``, their
  beta aliases, ``node.kubernetes.io/instance-type``, Node Feature Discovery's ``feature.node.kubernetes.io/...``),
  read by the run's first observation; an inventory label of the same key wins.

Their capacity comes from the host var ``hostfleet_node_capacity``
(``{cpu: "2", memory: "4Gi", pods: 110, ephemeral-storage: 100Gi, nvidia.com/gpu: 2}``); a missing capacity (or
key) means "unlimited" for cpu, memory, pods and ephemeral-storage, and none at all for an extended resource
(``<domain>/<name>``), as Kubernetes counts a resource a node does not advertise.
Their taints come from ``hostfleet_node_taints`` (scheduler/taints.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import quantity
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import labels as parse_labels
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.taints import TAINTS_VAR, Taint, parse_taints
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.well_known_labels import labels_from_facts

HOSTNAME_LABEL = "kubernetes.io/hostname"
GROUP_LABEL_PREFIX = "hostfleet.io/group."
LABELS_VAR = "hostfleet_node_labels"
CAPACITY_VAR = "hostfleet_node_capacity"
_RESOURCE_KEYS = ("cpu", "memory", "pods", "ephemeral-storage")
EPHEMERAL_STORAGE = "ephemeral-storage"


@dataclass(frozen=True)
class Resources:
    """An amount of resources; ``None`` means "not given" (unlimited as a capacity, zero as a request)."""

    cpu_millis: int | None = None
    memory_bytes: int | None = None
    pods: int | None = None
    # ephemeral-storage (bytes) and extended resources (counts) by their Kubernetes names, sorted: (name, amount).
    # As a capacity, ephemeral-storage absent is unlimited and an extended resource absent is none.
    extended: tuple[tuple[str, int], ...] = ()

    def to_json(self) -> dict:
        extended = {"extended": dict(self.extended)} if self.extended else {}
        return {"cpu_millis": self.cpu_millis, "memory_bytes": self.memory_bytes, "pods": self.pods, **extended}

    @classmethod
    def from_json(cls, data: dict | None) -> Resources:
        data = data or {}
        extended = tuple(sorted((str(k), int(v)) for k, v in (data.get("extended") or {}).items()))
        return cls(data.get("cpu_millis"), data.get("memory_bytes"), data.get("pods"), extended)


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
    extended: tuple[tuple[str, int], ...] = ()  # ephemeral-storage and extended resources they request, sorted

    def to_json(self) -> dict:
        data = {
            "pods": self.pods,
            "cpu_millis": self.cpu_millis,
            "memory_bytes": self.memory_bytes,
            "labels": [dict(x) for x in self.labels],
            "host_ports": [list(p) for p in self.host_ports],
        }
        if self.extended:
            data["extended"] = dict(self.extended)
        return data

    @classmethod
    def from_json(cls, data: dict | None) -> NodeUsage:
        data = data or {}
        labels = tuple(dict(x) for x in data.get("labels") or ())
        ports = tuple((str(p[0]), int(p[1])) for p in data.get("host_ports") or ())
        extended = tuple(sorted((str(k), int(v)) for k, v in (data.get("extended") or {}).items()))
        return cls(int(data.get("pods") or 0), int(data.get("cpu_millis") or 0), int(data.get("memory_bytes") or 0), labels, ports, extended)


def add_extended(total: tuple[tuple[str, int], ...], more) -> tuple[tuple[str, int], ...]:
    """Two amounts of ephemeral-storage and extended resources added up ((name, amount) pairs or a mapping)."""
    result = dict(total)
    for key, amount in more.items() if isinstance(more, dict) else more:
        result[key] = result.get(key, 0) + amount
    return tuple(sorted((k, v) for k, v in result.items() if v))


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


def extended_resource_name(key) -> bool:
    """Kubernetes' extended resource names: ``<domain>/<name>`` outside ``kubernetes.io`` (``nvidia.com/gpu``)."""
    if not isinstance(key, str) or "/" not in key:
        return False
    domain = key.split("/", 1)[0]
    if domain == "kubernetes.io" or domain.endswith(".kubernetes.io") or domain.startswith("requests."):
        return False
    try:
        parse_labels({key: ""}, "name")
    except SpecError:
        return False
    return True


def parse_extended(value, path: str) -> int:
    """An extended resource amount: a whole number ("2", 2, "1k"), as Kubernetes requires."""
    try:
        amount = quantity.parse_quantity(value)
    except quantity.QuantityError as exc:
        raise SpecError(path, str(exc)) from None
    if amount != amount.to_integral_value() or amount > quantity.MAX_VALUE:
        raise SpecError(path, f"must be a whole number (an extended resource is counted in units), got {value!r}")
    return int(amount)


def parse_capacity(value, path: str = CAPACITY_VAR) -> Resources | None:
    """``{cpu: "2", memory: "4Gi", pods: 110, ephemeral-storage: 100Gi, nvidia.com/gpu: 2}`` → Resources; ``None`` → None (unlimited)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SpecError(path, f"must be a mapping such as {{cpu: '2', memory: '4Gi', pods: 110}}, got {type(value).__name__}")
    extended = {}
    for key in value:
        if key not in _RESOURCE_KEYS and not extended_resource_name(key):
            allowed = ", ".join(_RESOURCE_KEYS)
            raise SpecError(f"{path}.{key}", f"unknown resource (allowed: {allowed}, or an extended resource <domain>/<name> such as nvidia.com/gpu)")
        if key == EPHEMERAL_STORAGE and value[key] is not None:
            extended[key] = parse_memory(value[key], f"{path}.{key}")
        elif key not in _RESOURCE_KEYS and value[key] is not None:
            extended[key] = parse_extended(value[key], f"{path}.{key}")
    cpu = parse_cpu(value["cpu"], f"{path}.cpu") if value.get("cpu") is not None else None
    memory = parse_memory(value["memory"], f"{path}.memory") if value.get("memory") is not None else None
    pods = value.get("pods")
    if pods is not None and (isinstance(pods, bool) or not isinstance(pods, int) or pods < 0):
        raise SpecError(f"{path}.pods", f"must be a non-negative integer, got {pods!r}")
    return Resources(cpu, memory, pods, tuple(sorted(extended.items())))


def group_label(group: str) -> str:
    return f"{GROUP_LABEL_PREFIX}{group}"


def node_from_inventory(name: str, ready: bool, host_vars: dict, groups: list[str], facts: dict | None = None) -> Node:
    """Build the scheduler's Node from an inventory host and its facts (``node_facts.py``; None: not read).

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
    # The facts' labels first: the inventory's win (an instance type, or a fact to correct).
    labels = {**labels_from_facts(facts), **labels}
    for group in groups:
        labels[group_label(group)] = "true"
    labels[HOSTNAME_LABEL] = name
    capacity = parse_capacity(host_vars.get(CAPACITY_VAR), f"{prefix}{CAPACITY_VAR}")
    taints = parse_taints(host_vars.get(TAINTS_VAR), name)
    return Node(name=name, ready=bool(ready), labels=dict(sorted(labels.items())), capacity=capacity, taints=taints)
