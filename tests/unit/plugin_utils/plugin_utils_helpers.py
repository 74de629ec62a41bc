"""Builders and a small simulated fleet for the controller tests.

``World`` applies a Step the way the action plugin + node layer would: stops
remove pods, starts create pods that become ready after ``ready_after``
rounds (or never: a broken revision), on nodes that may fail and return.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.spec import parse_deployment_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.sync import reconcile
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod, is_available
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node, Resources

COMMAND = ["/bin/sleep", "infinity"]


def template(command=None, labels=None, annotations=None, **pod_spec):
    meta = {"labels": labels or {"app": "api"}}
    if annotations:
        meta["annotations"] = annotations
    spec = {"containers": [{"name": "main", "command": command or COMMAND}]}
    spec.update(pod_spec)
    return {"metadata": meta, "spec": spec}


def raw_spec(replicas=6, version="v1", strategy=None, **fields):
    raw = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "api"}},
        "template": template(["/bin/sleep", version]),
    }
    if strategy is not None:
        raw["strategy"] = strategy
    raw.update(fields)
    return raw


def spec(replicas=6, version="v1", strategy=None, name="api", **fields):
    return parse_deployment_spec(name, raw_spec(replicas, version, strategy, **fields))


def rolling(max_surge, max_unavailable):
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable}}


def make_nodes(count=3, zones=None, capacity=None, labels=None):
    result = []
    for i in range(1, count + 1):
        name = f"node{i}"
        node_labels = {"kubernetes.io/hostname": name}
        if zones:
            node_labels["zone"] = zones[(i - 1) % len(zones)]
        node_labels.update((labels or {}).get(name, {}))
        result.append(Node(name, True, node_labels, capacity))
    return result


NO_REQUESTS = Resources(0, 0, 1)


def running(name, node, revision, ready=True, since=0.0, created=0.0, phase="Running", requests=NO_REQUESTS):
    return ObservedPod(name, node, revision, phase, ready, since if ready else None, created, 0, requests)


@dataclass
class World:
    """A fleet driven by Steps. ``broken`` revisions never get ready; others after ``ready_after`` rounds."""

    nodes: list[Node]
    pods: list[ObservedPod] = field(default_factory=list)
    now: float = 1000.0
    ready_after: int = 1
    broken: set[str] = field(default_factory=set)
    record: dict | None = None
    hidden: dict[str, list[ObservedPod]] = field(default_factory=dict)
    age: dict[str, int] = field(default_factory=dict)
    steps: list = field(default_factory=list)

    def observe(self):
        return list(self.pods)

    def reconcile(self, spec, other_usage=None):
        step = reconcile(spec, self.record, self.nodes, self.observe(), other_usage, self.now)
        self.steps.append(step)
        return step

    def apply(self, step, min_ready_seconds=0, tick=1.0):
        """Apply a step (what the action plugin does), then let time pass by ``tick`` seconds."""
        stopped = {s.name for s in step.stops}
        self.pods = [p for p in self.pods if p.name not in stopped]
        for start in step.starts:
            self.pods.append(ObservedPod(start.name, start.node, start.revision, "Running", False, None, self.now))
            self.age[start.name] = 0
        self.record = copy.deepcopy(step.record)
        self.now += tick
        pods = []
        for pod in self.pods:
            if not pod.ready and pod.phase == "Running" and pod.revision not in self.broken:
                self.age[pod.name] = self.age.get(pod.name, 0) + 1
                if self.age[pod.name] >= self.ready_after:
                    pod = replace(pod, ready=True, ready_since=self.now)
            pods.append(pod)
        self.pods = pods

    def run(self, spec, rounds=50, other_usage=None, tick=1.0):
        """Reconcile and apply until the step is finished; return the last step."""
        step = None
        for _round in range(rounds):
            step = self.reconcile(spec, other_usage)
            self.apply(step, spec.min_ready_seconds, tick)
            if step.finished:
                break
        return step

    def fail(self, node_name):
        """The node becomes NotReady: its pods stay visible but are lost."""
        self.nodes = [replace(n, ready=False) if n.name == node_name else n for n in self.nodes]

    def recover(self, node_name):
        self.nodes = [replace(n, ready=True) if n.name == node_name else n for n in self.nodes]

    def per_node(self, revision=None):
        counts = {n.name: 0 for n in self.nodes}
        for pod in self.pods:
            if revision is None or pod.revision == revision:
                counts[pod.node] += 1
        return counts

    def available(self, min_ready=0):
        ready_nodes = {n.name for n in self.nodes if n.ready}
        return sum(1 for p in self.pods if p.node in ready_nodes and is_available(p, min_ready, self.now))
