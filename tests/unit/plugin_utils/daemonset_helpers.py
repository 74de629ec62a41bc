# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small simulated fleet for the DaemonSet tests: applies Steps like the action plugin + node layer would."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

from plugin_utils_helpers import template

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.spec import parse_daemonset_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.sync import reconcile_daemonset
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod, is_available
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node


def ds_raw(version="v1", node_selector=None, strategy=None, **fields):
    pod_spec = {"nodeSelector": node_selector} if node_selector else {}
    raw = {"selector": {"matchLabels": {"app": "agent"}}, "template": template(["/bin/sleep", version], labels={"app": "agent"}, **pod_spec)}
    if strategy is not None:
        raw["updateStrategy"] = strategy
    raw.update(fields)
    return raw


def ds(version="v1", node_selector=None, strategy=None, **fields):
    return parse_daemonset_spec("agent", ds_raw(version, node_selector, strategy, **fields))


def rolling(max_unavailable=1, max_surge=0):
    return {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": max_unavailable, "maxSurge": max_surge}}


def nodes(count=3, labelled=None, capacity=None):
    """node1..nodeN; ``labelled``: names that get ``role: edge``."""
    result = []
    for i in range(1, count + 1):
        name = f"node{i}"
        labels = {"kubernetes.io/hostname": name}
        if labelled is None or name in labelled:
            labels["role"] = "edge"
        result.append(Node(name, True, labels, capacity))
    return result


@dataclass
class DaemonWorld:
    """Pods become ready one round after they start, except ``broken`` revisions and ``stuck`` (node, revision) pairs."""

    nodes: list[Node]
    pods: list[ObservedPod] = field(default_factory=list)
    record: dict | None = None
    now: float = 1000.0
    stuck: set[tuple[str, str]] = field(default_factory=set)
    broken: set[str] = field(default_factory=set)  # revisions that never get ready
    steps: list = field(default_factory=list)

    def step(self, spec, apply=True, tick=1.0):
        step = reconcile_daemonset(spec, self.record, self.nodes, list(self.pods), None, self.now)
        self.steps.append(step)
        if apply:
            self.apply(step, tick)
        return step

    def apply(self, step, tick=1.0):
        ready_nodes = {n.name for n in self.nodes if n.ready}
        stopped = {s.name for s in step.stops}
        assert all(s.node in ready_nodes for s in step.stops), "acted on a NotReady node"
        assert all(s.node in ready_nodes for s in step.starts), "started on a NotReady node"
        self.pods = [p for p in self.pods if p.name not in stopped]
        self.pods += [ObservedPod(s.name, s.node, s.revision, "Running", False, None, self.now) for s in step.starts]
        self.record = copy.deepcopy(step.record)
        self.now += tick
        self.pods = [self._ripen(p, ready_nodes) for p in self.pods]

    def _ripen(self, pod, ready_nodes):
        never = pod.revision in self.broken or (pod.node, pod.revision) in self.stuck
        if pod.ready or pod.node not in ready_nodes or never:
            return pod
        return replace(pod, ready=True, ready_since=self.now)

    def run(self, spec, rounds=60, tick=1.0):
        step = None
        for _round in range(rounds):
            step = self.step(spec, tick=tick)
            if step.finished:
                break
        return step

    def set_ready(self, name, ready):
        self.nodes = [replace(n, ready=ready) if n.name == name else n for n in self.nodes]

    def set_labels(self, name, labels):
        self.nodes = [replace(n, labels=dict(labels)) if n.name == name else n for n in self.nodes]

    def per_node(self, revision=None):
        counts = {n.name: 0 for n in self.nodes}
        for p in self.pods:
            if revision is None or p.revision == revision:
                counts[p.node] = counts.get(p.node, 0) + 1
        return counts

    def available_on(self, name, min_ready=0):
        return any(p.node == name and is_available(p, min_ready, self.now) for p in self.pods)
