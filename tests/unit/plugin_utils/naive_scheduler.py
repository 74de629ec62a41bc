"""The scheduler as it was before issue 11, kept as the reference the indexed one must agree with.

Each pick scans every node and recounts the pods on it, each victim is a min() over every candidate:
quadratic, but plainly what the module docstring of ``placement.py`` says. ``test_sched_scale.py``
checks that ``placement.PlacementState`` gives the same placements, messages and victims on random inputs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.constraints import SpreadConstraint
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node, NodeUsage, Resources
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.placement import (
    ANTI_AFFINITY,
    HOST_PORTS,
    INSUFFICIENT_CPU,
    INSUFFICIENT_MEMORY,
    NODE_AFFINITY,
    NOT_READY,
    POD_AFFINITY,
    SPREAD,
    SPREAD_MISSING_LABEL,
    TOO_MANY_PODS,
    Candidate,
    PlacedPod,
    PodTemplate,
    insufficient,
    unschedulable_message,
)


class NaiveFleet:
    """The scheduler before issue 11 (every pick scans every node and recounts every pod on it): the reference."""

    def __init__(self, nodes: Iterable[Node], pods: Iterable[PlacedPod] = (), other_usage: Mapping[str, NodeUsage] | None = None):
        self.nodes: dict[str, Node] = {n.name: n for n in sorted(nodes, key=lambda n: n.name)}
        self.other = {name: (other_usage or {}).get(name) or NodeUsage() for name in self.nodes}
        self._pods: dict[str, dict[str, PlacedPod]] = {name: {} for name in self.nodes}
        self._leaving: set[str] = set()
        for pod in pods:
            if pod.node in self._pods:
                self._pods[pod.node][pod.name] = pod

    # -- bookkeeping -------------------------------------------------------
    def add(self, pod: PlacedPod) -> None:
        self._pods[pod.node][pod.name] = pod

    def remove(self, pod: PlacedPod) -> None:
        """Plan a stop: the pod keeps its resources for this step but no longer counts for spreading."""
        self._leaving.add(pod.name)

    def unremove(self, pod: PlacedPod) -> None:
        """Take back a planned stop."""
        self._leaving.discard(pod.name)

    def staying(self, node: str) -> list[PlacedPod]:
        return [p for p in self._pods.get(node, {}).values() if p.name not in self._leaving]

    def count(self, node: str, revision: str | None = None) -> int:
        return sum(1 for p in self.staying(node) if revision is None or p.revision == revision)

    def _all_labels(self, node: str, include_leaving: bool) -> list[Mapping[str, str]]:
        ours = self._pods.get(node, {}).values()
        result = [p.labels for p in ours if include_leaving or p.name not in self._leaving]
        result.extend(self.other[node].labels)
        return result

    def _used(self, node: str) -> tuple[int, int, int]:
        ours = list(self._pods[node].values())
        other = self.other[node]
        cpu = other.cpu_millis + sum(p.requests.cpu_millis or 0 for p in ours)
        memory = other.memory_bytes + sum(p.requests.memory_bytes or 0 for p in ours)
        return cpu, memory, other.pods + len(ours)

    def _ports_used(self, node: str) -> set[tuple[str, int]]:
        """Host ports taken on a node: by other owners' pods and by this workload's (a leaving pod still holds its own)."""
        used = set(self.other[node].host_ports)
        for pod in self._pods[node].values():
            used.update(pod.host_ports)
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
        # issue 15: ephemeral-storage (unlimited unless named) and extended resources (none unless named), all pods counted.
        have = dict(capacity.extended) if capacity is not None else {}
        for key, amount in requests.extended:
            if key not in have and key == "ephemeral-storage":
                continue
            used = dict(self.other[node.name].extended).get(key, 0) + sum(dict(p.requests.extended).get(key, 0) for p in self._pods[node.name].values())
            if used + amount > have.get(key, 0):
                return insufficient(key)
        return None

    def _domain_counts(self, constraint: SpreadConstraint, template: PodTemplate) -> dict[str, int]:
        selector = constraint.selector_for(dict(template.labels))
        counts: dict[str, int] = {}
        for node in self.nodes.values():
            if not node.ready or constraint.topology_key not in node.labels:
                continue
            if constraint.node_affinity_policy == "Honor" and not template.constraints.matches_node_affinity(node):
                continue
            domain = node.labels[constraint.topology_key]
            counts[domain] = counts.get(domain, 0) + sum(1 for labels in self._all_labels(node.name, False) if selector.matches(labels))
        return counts

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
        if not node.ready:
            return NOT_READY
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
        if constraints.affinity:
            # Each required term matched on the node; or no pod anywhere matches any term and the pod matches them all.
            present = self._all_labels(node.name, True)
            if not all(any(selector.matches(labels) for labels in present) for selector in constraints.affinity):
                anywhere = any(selector.matches(labels) for name in self.nodes for labels in self._all_labels(name, True) for selector in constraints.affinity)
                if anywhere or not all(selector.matches(template.labels) for selector in constraints.affinity):
                    return POD_AFFINITY
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
        present = self._all_labels(node.name, True)
        anti = sum(weight for weight, selector in constraints.anti_affinity_preferred if any(selector.matches(labels) for labels in present))
        anti -= sum(weight for weight, selector in constraints.affinity_preferred if any(selector.matches(labels) for labels in present))
        return (excess, anti, self.count(node.name, template.revision), self.count(node.name), domain_load, -constraints.preference(node), node.name)

    # -- decisions ---------------------------------------------------------
    def best_node(self, template: PodTemplate) -> tuple[str | None, str]:
        """The node for one more pod, or (None, why-not message)."""
        spread_counts = [self._domain_counts(c, template) for c in template.constraints.spread]
        best = None
        reasons: Counter[str] = Counter()
        for node in self.nodes.values():
            why = self.reason(node, template, spread_counts)
            if why is not None:
                reasons[why] += 1
                continue
            rank = self._rank(node, template, spread_counts)
            if best is None or rank < best[0]:
                best = (rank, node.name)
        if best is not None:
            return best[1], ""
        return None, unschedulable_message(len(self.nodes), reasons)

    def place(
        self, template: PodTemplate, count: int, names: Iterator[str] | Callable[[], str], requests: Resources | None = None
    ) -> tuple[list[PlacedPod], str]:
        """Place up to ``count`` pods of ``template``; returns the placed pods and, if some did not fit, why."""
        placed: list[PlacedPod] = []
        next_name = names if callable(names) else names.__next__
        for _round in range(count):
            node, why = self.best_node(template)
            if node is None:
                return placed, why
            pod = PlacedPod(
                next_name(), node, template.revision, dict(template.labels), requests or template.constraints.requests, template.constraints.host_ports
            )
            self.add(pod)
            placed.append(pod)
        return placed, ""

    def choose_victims(self, candidates: Sequence[Candidate], count: int) -> list[PlacedPod]:
        """Pick ``count`` pods to stop among ``candidates`` (see the module docstring for the order)."""
        remaining = [c for c in candidates if c.pod.name not in self._leaving]
        chosen: list[PlacedPod] = []
        while remaining and len(chosen) < count:

            def key(c: Candidate):
                return (c.health, c.revision_order, -self.count(c.pod.node), -self.count(c.pod.node, c.pod.revision), -c.created, c.pod.name)

            victim = min(remaining, key=key)
            remaining.remove(victim)
            self.remove(victim.pod)
            chosen.append(victim.pod)
        return chosen
