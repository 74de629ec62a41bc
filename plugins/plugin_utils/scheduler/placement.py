# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where new pods go, and which pods go when scaling down.

A ``PlacementState`` is the scheduler's picture of the nodes during ONE reconcile
step: the pods of the workload being planned (existing ones on ready nodes,
plus the starts already planned in this step) and what other owners use.

Placing a pod = filter, then rank (lowest key wins):

1. filters: node Ready; no untolerated NoSchedule/NoExecute taint (the
   message names it, as the scheduler's); ``nodeSelector`` and required node affinity;
   requests against capacity (cpu, memory, and ``pods`` which counts the pods
   of ALL owners; ephemeral-storage; extended resources such as ``nvidia.com/gpu``,
   none on a node whose capacity does not name them); required pod anti-affinity
   and pod affinity (hostname); topology spread constraints with
   ``whenUnsatisfiable: DoNotSchedule``;
2. rank: untolerated PreferNoSchedule taints (Kubernetes' heaviest score);
   skew beyond ``maxSkew`` of ``ScheduleAnyway`` constraints (the
   user's explicit wish first); weight of violated preferred anti-affinity
   less that of matched preferred pod affinity;
   fewest pods of the same revision on the node, then of the whole workload
   (even spread, and a rollout ends as evenly spread as it began); emptiest
   topology domains; preferred node affinity; node name (determinism).

A pod that fits nowhere is reported with the reasons per node, the way the
Kubernetes scheduler words them ("0/3 nodes are available: 1 Insufficient
cpu, 2 node(s) didn't match Pod's node affinity/selector.").

Scale-down victims (``choose_victims``): least healthy first (Pending or
Unknown, then Running but not ready, then ready), then older revision, then
the node with most pods of the workload (keeps the spread), then youngest.
Pods on NotReady nodes are never candidates: they cannot be stopped now and
the controllers already do not count them.

Planned stops stay on their node for capacity and anti-affinity (they are
still running while the step is being applied, in parallel with the starts)
but no longer count for spreading.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.constraints import Constraints, SpreadConstraint
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import EPHEMERAL_STORAGE, Node, NodeUsage, Resources
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.taints import intolerable_preferences, untolerated

NOT_READY = "node(s) were not ready"
NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
INSUFFICIENT_CPU = "Insufficient cpu"
INSUFFICIENT_MEMORY = "Insufficient memory"
TOO_MANY_PODS = "Too many pods"
ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
POD_AFFINITY = "node(s) didn't match pod affinity rules"
SPREAD = "node(s) didn't match pod topology spread constraints"
SPREAD_MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
HOST_PORTS = "node(s) didn't have free ports for the requested pod ports"


@dataclass(frozen=True)
class PlacedPod:
    """A pod of the workload being planned that occupies a node (observed, or planned in this step)."""

    name: str
    node: str
    revision: str
    labels: Mapping[str, str] = field(default_factory=dict)
    requests: Resources = Resources(0, 0, 1)
    host_ports: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class PodTemplate:
    """What the scheduler needs to know about the pods of one revision."""

    revision: str
    labels: Mapping[str, str]
    constraints: Constraints = Constraints()


@dataclass(frozen=True)
class Candidate:
    """A pod that may be stopped, with what ranks it (lower health / revision_order goes first)."""

    pod: PlacedPod
    health: int
    revision_order: int
    created: float


class PlacementState:
    """Mutable placement state for one step. Deterministic: nodes are visited in name order.

    Planning 10,000 pods over hundreds of nodes must stay near-linear, so the per-node figures the filters
    and ranks read (pods staying per node and per revision, resources and host ports taken) are kept up to
    date on every change instead of being recounted; placing pods without spread constraints takes the best
    node from a heap, where only the nodes changed since the last pick are ranked again (a node's filters
    and rank then depend on that node alone); scale-down victims come from a heap as well.
    """

    def __init__(self, nodes: Iterable[Node], pods: Iterable[PlacedPod] = (), other_usage: Mapping[str, NodeUsage] | None = None):
        self.nodes: dict[str, Node] = {n.name: n for n in sorted(nodes, key=lambda n: n.name)}
        self.other = {name: (other_usage or {}).get(name) or NodeUsage() for name in self.nodes}
        self._pods: dict[str, dict[str, PlacedPod]] = {name: {} for name in self.nodes}
        self._leaving: set[str] = set()
        # Where each pod name is placed (a name is leaving on every node that has it), and the running figures.
        self._where: dict[str, set[str]] = {}
        self._staying: Counter[str] = Counter()
        self._staying_revision: Counter[tuple[str, str]] = Counter()
        self._taken = {name: [0, 0, 0] for name in self.nodes}  # cpu, memory, pods of this workload (leaving ones included)
        self._ports: dict[str, Counter[tuple[str, int]]] = {name: Counter() for name in self.nodes}
        self._taken_extended: dict[str, Counter[str]] = {name: Counter() for name in self.nodes}  # ephemeral-storage, nvidia.com/gpu, ...
        # Nodes in the order they changed: a placement index catches up from its position in it.
        self._changes: list[str] = []
        self._indexes: dict[object, _PlacementIndex] = {}
        self._index_of: dict[int, tuple[PodTemplate, _PlacementIndex]] = {}
        for pod in pods:
            if pod.node in self._pods:
                self.add(pod)

    # -- bookkeeping -------------------------------------------------------
    def _account(self, pod: PlacedPod, sign: int) -> None:
        taken = self._taken[pod.node]
        taken[0] += sign * (pod.requests.cpu_millis or 0)
        taken[1] += sign * (pod.requests.memory_bytes or 0)
        taken[2] += sign
        for key, amount in pod.requests.extended:
            self._taken_extended[pod.node][key] += sign * amount
        ports = self._ports[pod.node]
        for port in pod.host_ports:
            ports[port] += sign
        if pod.name not in self._leaving:
            self._staying[pod.node] += sign
            self._staying_revision[(pod.node, pod.revision)] += sign

    def _mark_leaving(self, name: str, sign: int) -> None:
        for node in self._where.get(name, ()):
            pod = self._pods[node][name]
            self._staying[node] += sign
            self._staying_revision[(node, pod.revision)] += sign
            self._changes.append(node)

    def add(self, pod: PlacedPod) -> None:
        pods = self._pods[pod.node]
        old = pods.get(pod.name)
        if old is not None:
            self._account(old, -1)
        pods[pod.name] = pod
        self._where.setdefault(pod.name, set()).add(pod.node)
        self._account(pod, 1)
        self._changes.append(pod.node)

    def remove(self, pod: PlacedPod) -> None:
        """Plan a stop: the pod keeps its resources for this step but no longer counts for spreading."""
        if pod.name not in self._leaving:
            self._leaving.add(pod.name)
            self._mark_leaving(pod.name, -1)

    def unremove(self, pod: PlacedPod) -> None:
        """Take back a planned stop."""
        if pod.name in self._leaving:
            self._leaving.discard(pod.name)
            self._mark_leaving(pod.name, 1)

    def staying(self, node: str) -> list[PlacedPod]:
        return [p for p in self._pods.get(node, {}).values() if p.name not in self._leaving]

    def count(self, node: str, revision: str | None = None) -> int:
        return self._staying[node] if revision is None else self._staying_revision[(node, revision)]

    def _all_labels(self, node: str, include_leaving: bool) -> list[Mapping[str, str]]:
        ours = self._pods.get(node, {}).values()
        result = [p.labels for p in ours if include_leaving or p.name not in self._leaving]
        result.extend(self.other[node].labels)
        return result

    def _used(self, node: str) -> tuple[int, int, int]:
        other = self.other[node]
        cpu, memory, pods = self._taken[node]
        return other.cpu_millis + cpu, other.memory_bytes + memory, other.pods + pods

    def _ports_used(self, node: str) -> set[tuple[str, int]]:
        """Host ports taken on a node: by other owners' pods and by this workload's (a leaving pod still holds its own)."""
        used = set(self.other[node].host_ports)
        used.update(port for port, n in self._ports[node].items() if n > 0)
        return used

    # -- filters -----------------------------------------------------------
    def _resource_reason(self, node: Node, requests: Resources) -> str | None:
        capacity = node.capacity
        if capacity is not None:
            cpu, memory, pods = self._used(node.name)
            if capacity.cpu_millis is not None and cpu + (requests.cpu_millis or 0) > capacity.cpu_millis:
                return INSUFFICIENT_CPU
            if capacity.memory_bytes is not None and memory + (requests.memory_bytes or 0) > capacity.memory_bytes:
                return INSUFFICIENT_MEMORY
            if capacity.pods is not None and pods + 1 > capacity.pods:
                return TOO_MANY_PODS
        if requests.extended:
            return self._extended_reason(node, requests)
        return None

    def _extended_reason(self, node: Node, requests: Resources) -> str | None:
        """ephemeral-storage (unlimited unless the capacity names it) and extended resources (none unless it does)."""
        have = dict(node.capacity.extended) if node.capacity is not None else {}
        other = dict(self.other[node.name].extended)
        taken = self._taken_extended[node.name]
        for key, amount in requests.extended:
            limit = have.get(key)
            if limit is None and key == EPHEMERAL_STORAGE:
                continue
            if other.get(key, 0) + taken[key] + amount > (limit or 0):
                return insufficient(key)
        return None

    def _domain_counts(self, constraint: SpreadConstraint, template: PodTemplate) -> dict[str, int]:
        selector = constraint.selector_for(dict(template.labels))
        counts: dict[str, int] = {}
        for node in self.nodes.values():
            if not self._in_domains(constraint, template, node):
                continue
            domain = node.labels[constraint.topology_key]
            counts[domain] = counts.get(domain, 0) + sum(1 for labels in self._all_labels(node.name, False) if selector.matches(labels))
        return counts

    @staticmethod
    def _in_domains(constraint: SpreadConstraint, template: PodTemplate, node: Node) -> bool:
        """Whether the pods on ``node`` count in the domains of ``constraint``."""
        if not node.ready or constraint.topology_key not in node.labels:
            return False
        if constraint.node_taints_policy == "Honor" and untolerated(node.taints, template.constraints.tolerations) is not None:
            return False
        return constraint.node_affinity_policy != "Honor" or template.constraints.matches_node_affinity(node)

    def _skew(self, constraint: SpreadConstraint, template: PodTemplate, node: Node, counts: dict[str, int]) -> int | None:
        """The skew after placing the pod on ``node``; None when the node has no such domain."""
        domain = node.labels.get(constraint.topology_key)
        if domain is None or domain not in counts:
            return None
        self_match = 1 if constraint.selector_for(dict(template.labels)).matches(template.labels) else 0
        minimum = min(counts.values())
        if constraint.min_domains is not None and len(counts) < constraint.min_domains:
            minimum = 0
        return counts[domain] + self_match - minimum

    def reason(self, node: Node, template: PodTemplate, spread_counts: list[dict[str, int]] | None = None) -> str | None:
        """Why ``node`` cannot take one more pod of ``template`` (None: it can)."""
        constraints = template.constraints
        why = self._local_reason(node, constraints) or self._affinity_reason(node, template)
        if why is not None:
            return why
        if spread_counts is None:
            spread_counts = [self._domain_counts(c, template) for c in constraints.spread]
        for constraint, counts in zip(constraints.spread, spread_counts, strict=True):
            if not constraint.hard:
                continue
            skew = self._skew(constraint, template, node, counts)
            if skew is None:
                return SPREAD_MISSING_LABEL
            if skew > constraint.max_skew:
                return SPREAD
        return None

    def _local_reason(self, node: Node, constraints: Constraints) -> str | None:
        """The filters that read ``node`` alone (every one but topology spread), in the scheduler's order."""
        if not node.ready:
            return NOT_READY
        taint = untolerated(node.taints, constraints.tolerations) if node.taints else None
        if taint is not None:
            return taint.message()
        if not constraints.matches_node_affinity(node):
            return NODE_AFFINITY
        resources = self._resource_reason(node, constraints.requests)
        if resources:
            return resources
        if constraints.host_ports and set(constraints.host_ports) & self._ports_used(node.name):
            return HOST_PORTS
        if constraints.anti_affinity:
            present = self._all_labels(node.name, True)
            if any(selector.matches(labels) for selector in constraints.anti_affinity for labels in present):
                return ANTI_AFFINITY
        return None

    def _affinity_here(self, node: str, constraints: Constraints) -> bool:
        """Whether a pod on ``node`` (a leaving one too, like anti-affinity) matches one of the required podAffinity terms."""
        present = self._all_labels(node, True)
        return any(selector.matches(labels) for selector in constraints.affinity for labels in present)

    def _affinity_reason(self, node: Node, template: PodTemplate, anywhere: bool | None = None) -> str | None:
        """Required pod affinity: each term's selector matches a pod on the node. As Kubernetes, a pod that matches
        all its own terms may go anywhere while no pod anywhere matches any of them (the first of its group).
        ``anywhere``: whether some pod matches a term on some node (None: look)."""
        constraints = template.constraints
        if not constraints.affinity:
            return None
        present = self._all_labels(node.name, True)
        if all(any(selector.matches(labels) for labels in present) for selector in constraints.affinity):
            return None
        if anywhere is None:
            anywhere = any(self._affinity_here(name, constraints) for name in self.nodes)
        if not anywhere and all(selector.matches(template.labels) for selector in constraints.affinity):
            return None
        return POD_AFFINITY

    def _rank(self, node: Node, template: PodTemplate, spread_counts: list[dict[str, int]]) -> tuple:
        constraints = template.constraints
        excess = 0
        domain_load = 0
        for constraint, counts in zip(constraints.spread, spread_counts, strict=True):
            skew = self._skew(constraint, template, node, counts)
            if skew is None:
                excess += constraint.max_skew + 1
                continue
            domain_load += counts[node.labels[constraint.topology_key]]
            if not constraint.hard:
                excess += max(0, skew - constraint.max_skew)
        avoid, anti, same_revision, pods, preference, name = self._local_rank(node, template)
        return (avoid, excess, anti, same_revision, pods, domain_load, preference, name)

    def _local_rank(self, node: Node, template: PodTemplate) -> tuple:
        """The parts of the rank that read ``node`` alone, in their order: all but the spread's excess and domain load."""
        constraints = template.constraints
        present = self._all_labels(node.name, True) if constraints.anti_affinity_preferred or constraints.affinity_preferred else []
        anti = sum(weight for weight, selector in constraints.anti_affinity_preferred if any(selector.matches(labels) for labels in present))
        # Kubernetes' InterPodAffinity score: matched preferred affinity weights count for the node, anti-affinity's against.
        anti -= sum(weight for weight, selector in constraints.affinity_preferred if any(selector.matches(labels) for labels in present))
        # Untolerated PreferNoSchedule taints first: such a node is taken only when no other fits (taints.py).
        avoid = intolerable_preferences(node.taints, constraints.tolerations) if node.taints else 0
        return (avoid, anti, self.count(node.name, template.revision), self.count(node.name), -constraints.preference(node), node.name)

    # -- decisions ---------------------------------------------------------
    def best_node(self, template: PodTemplate) -> tuple[str | None, str]:
        """The node for one more pod, or (None, why-not message): the lowest rank among the nodes that pass
        every filter (what ``reason`` and ``_rank`` say of each node, kept in ``_PlacementIndex``)."""
        return self._index(template).best()

    def _index(self, template: PodTemplate) -> _PlacementIndex:
        """The placement index of ``template``, kept for the step (found by the template object first)."""
        known = self._index_of.get(id(template))
        if known is not None and known[0] is template:
            return known[1]
        try:
            key = (template.revision, tuple(sorted(template.labels.items())), template.constraints)
            index = self._indexes.get(key)
        except TypeError:  # an unhashable constraint: a fresh index, same answer
            return _PlacementIndex(self, template)
        if index is None:
            index = self._indexes[key] = _PlacementIndex(self, template)
        self._index_of[id(template)] = (template, index)  # the template is kept: its id stays its own
        return index

    def place(
        self, template: PodTemplate, count: int, names: Iterator[str] | Callable[[], str], requests: Resources | None = None
    ) -> tuple[list[PlacedPod], str]:
        """Place up to ``count`` pods of ``template``; returns the placed pods and, if some did not fit, why."""
        placed: list[PlacedPod] = []
        next_name = names if callable(names) else names.__next__
        index = self._index(template)
        for _round in range(count):
            node, why = index.best()
            if node is None:
                return placed, why
            pod = PlacedPod(
                next_name(), node, template.revision, dict(template.labels), requests or template.constraints.requests, template.constraints.host_ports
            )
            self.add(pod)
            placed.append(pod)
        return placed, ""

    def choose_victims(self, candidates: Sequence[Candidate], count: int) -> list[PlacedPod]:
        """Pick ``count`` pods to stop among ``candidates`` (see the module docstring for the order).

        The key is (health, revision order, most pods on the node, most pods of its revision on the node,
        youngest, name). Candidates that share all but the last two (same node, health, revision) are a group
        sorted once, so only each group's first candidate is in the heap. A stop only lowers the counts of its
        node, so a stored key never exceeds the true one: an entry pushed before its node changed is ranked
        again when it comes out, and the first up-to-date entry out is the minimum.
        """
        groups: dict[tuple, list[Candidate]] = {}
        for c in candidates:
            if c.pod.name not in self._leaving:
                groups.setdefault((c.pod.node, c.health, c.revision_order, c.pod.revision), []).append(c)
        for members in groups.values():
            # Youngest (then name) last: popped first. Stable, as min() over the list was.
            members.sort(key=lambda c: (-c.created, c.pod.name), reverse=True)
        versions: Counter[str] = Counter()

        def entry(group: tuple) -> tuple:
            node, health, revision_order, revision = group
            head = groups[group][-1]
            return (health, revision_order, -self.count(node), -self.count(node, revision), -head.created, head.pod.name, group, versions[node])

        heap = [entry(g) for g in groups]
        heapq.heapify(heap)
        chosen: list[PlacedPod] = []
        while heap and len(chosen) < count:
            item = heapq.heappop(heap)
            group, version = item[-2], item[-1]
            if version != versions[group[0]]:
                heapq.heappush(heap, entry(group))
                continue
            victim = groups[group].pop()
            already = victim.pod.name in self._leaving
            self.remove(victim.pod)
            chosen.append(victim.pod)
            if not already:
                for node in self._where.get(victim.pod.name, {victim.pod.node}):
                    versions[node] += 1
            if groups[group]:
                heapq.heappush(heap, entry(group))
        return chosen


class _PlacementIndex:
    """The nodes that can take one more pod of a template, ranked, kept up to date as the fleet changes.

    A node's filters and rank split in two: what reads the node alone (readiness, affinity, resources, host
    ports, anti-affinity, pods of the workload on it, preference) and what reads its topology domains (the
    spread constraints' skew, excess and domain load), the same for every node of the same domains. So the
    nodes are grouped by their domains (one group without spread constraints); each group keeps a heap of
    its nodes that pass the node's own filters, by the node's own rank (within a group the spread parts are
    equal, so that order is the full rank's order); the groups that pass the spread filters are in a heap by
    the full rank of their best node. After a change only the nodes changed (``PlacementState._changes``) are ranked
    again, with the groups that share a domain with them, and every group when a domain minimum moved.
    Entries from before a change are dropped when they come out (versions).
    """

    def __init__(self, fleet: PlacementState, template: PodTemplate):
        self.fleet = fleet
        self.template = template
        self.spread = template.constraints.spread
        selectors = [c.selector_for(dict(template.labels)) for c in self.spread]
        self.selectors = selectors
        self.self_match = [1 if selector.matches(template.labels) else 0 for selector in selectors]
        # Per constraint: the domain of each node that counts in it, the pods each such node adds, the totals.
        self.domain_of: list[dict[str, str]] = [
            {n.name: n.labels[c.topology_key] for n in fleet.nodes.values() if fleet._in_domains(c, template, n)} for c in self.spread
        ]
        self.contribution: list[dict[str, int]] = [dict.fromkeys(domains, 0) for domains in self.domain_of]
        self.counts: list[dict[str, int]] = [dict.fromkeys(domains.values(), 0) for domains in self.domain_of]
        self.group_of: dict[str, tuple] = {
            name: tuple(node.labels.get(c.topology_key) if node.labels.get(c.topology_key) in self.counts[i] else None for i, c in enumerate(self.spread))
            for name, node in fleet.nodes.items()
        }
        self.groups_with: list[dict[str, list[tuple]]] = [{} for _c in self.spread]
        for group in dict.fromkeys(self.group_of.values()):
            for i, domain in enumerate(group):
                if domain is not None:
                    self.groups_with[i].setdefault(domain, []).append(group)
        self.local_reason: dict[str, str | None] = {}
        self.local_heaps: dict[tuple, list[tuple]] = {group: [] for group in self.group_of.values()}
        self.versions: Counter[str] = Counter()
        self.group_reason: dict[tuple, str | None] = {}
        self.group_versions: Counter[tuple] = Counter()
        self.group_heap: list[tuple] = []
        self.minimums: tuple | None = None
        self.position = len(fleet._changes)
        # Required pod affinity: the nodes with a pod matching a term. Whether there is any is the one part of a
        # node's filters that reads other nodes (the first pod of a self-affine group goes anywhere).
        self.affine = bool(template.constraints.affinity)
        self.affinity_nodes = {name for name in fleet.nodes if fleet._affinity_here(name, template.constraints)} if self.affine else set()
        for node in fleet.nodes.values():
            self._node(node)
            self._count(node.name)

    def _node(self, node: Node) -> None:
        """Rank ``node`` afresh on its own filters and rank (a new entry in its group's heap when it passes)."""
        why = self.fleet._local_reason(node, self.template.constraints) or self.fleet._affinity_reason(node, self.template, bool(self.affinity_nodes))
        self.local_reason[node.name] = why
        self.versions[node.name] += 1
        if why is None:
            heapq.heappush(self.local_heaps[self.group_of[node.name]], (self.fleet._local_rank(node, self.template), self.versions[node.name]))

    def _count(self, name: str) -> set[tuple]:
        """Count again the pods of ``name`` in the domains; the groups whose counts changed."""
        changed: set[tuple] = set()
        for i, domains in enumerate(self.domain_of):
            domain = domains.get(name)
            if domain is None:
                continue
            selector = self.selectors[i]
            now = sum(1 for labels in self.fleet._all_labels(name, False) if selector.matches(labels))
            delta = now - self.contribution[i][name]
            if delta:
                self.contribution[i][name] = now
                self.counts[i][domain] += delta
                changed.update(self.groups_with[i][domain])
        return changed

    def _minimums(self) -> tuple:
        result = []
        for constraint, counts in zip(self.spread, self.counts, strict=True):
            if not counts or (constraint.min_domains is not None and len(counts) < constraint.min_domains):
                result.append(0)
            else:
                result.append(min(counts.values()))
        return tuple(result)

    def _group(self, group: tuple, minimums: tuple) -> None:
        """Judge ``group`` on the spread constraints and push its best node with the full rank."""
        self.group_versions[group] += 1
        why = None
        excess = domain_load = 0
        for i, constraint in enumerate(self.spread):
            domain = group[i]
            skew = None if domain is None else self.counts[i][domain] + self.self_match[i] - minimums[i]
            if constraint.hard and why is None:
                if skew is None:
                    why = SPREAD_MISSING_LABEL
                elif skew > constraint.max_skew:
                    why = SPREAD
            if skew is None:
                excess += constraint.max_skew + 1
                continue
            domain_load += self.counts[i][domain]
            if not constraint.hard:
                excess += max(0, skew - constraint.max_skew)
        self.group_reason[group] = why
        if why is not None:
            return
        heap = self.local_heaps[group]
        while heap and heap[0][1] != self.versions[heap[0][0][-1]]:  # [0][-1]: the node's name
            heapq.heappop(heap)
        if heap:
            avoid, anti, same_revision, pods, preference, name = heap[0][0]
            rank = (avoid, excess, anti, same_revision, pods, domain_load, preference, name)
            heapq.heappush(self.group_heap, (rank, group, self.group_versions[group]))

    def best(self) -> tuple[str | None, str]:
        fleet = self.fleet
        dirty: set[tuple] = set()
        changed = list(dict.fromkeys(fleet._changes[self.position :]))
        if self.affine and changed:
            before = bool(self.affinity_nodes)
            for name in changed:
                if fleet._affinity_here(name, self.template.constraints):
                    self.affinity_nodes.add(name)
                else:
                    self.affinity_nodes.discard(name)
            if bool(self.affinity_nodes) != before:
                changed = list(fleet.nodes)  # the first matching pod (or the last one gone): every node's filter changed
        for name in changed:
            self._node(fleet.nodes[name])
            dirty.add(self.group_of[name])
            dirty |= self._count(name)
        self.position = len(fleet._changes)
        minimums = self._minimums()
        if minimums != self.minimums:
            self.minimums = minimums
            dirty = set(self.local_heaps)
        for group in dirty:
            self._group(group, minimums)
        heap = self.group_heap
        while heap:
            rank, group, version = heap[0]
            if version == self.group_versions[group]:
                return rank[-1], ""  # the node's name
            heapq.heappop(heap)
        reasons = Counter(self.local_reason[name] or self.group_reason[self.group_of[name]] for name in fleet.nodes)
        # (never None here: with the heap empty, a node that passed its own filters is in a group that failed the spread)
        return None, unschedulable_message(len(fleet.nodes), reasons)  # type: ignore[arg-type]


def insufficient(resource: str) -> str:
    """The scheduler's words for a resource a node lacks ("Insufficient nvidia.com/gpu")."""
    return f"Insufficient {resource}"


def unschedulable_message(total: int, reasons: Mapping[str, int]) -> str:
    if total == 0:
        return "0/0 nodes are available: no nodes to schedule on."
    parts = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
    return f"0/{total} nodes are available: {parts}."
