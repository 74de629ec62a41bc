"""The controllers at the largest size they accept (issue 11): 10,000 replicas over 1,000 nodes.

The replicas bound is checked for every kind that has ``replicas``; at that size every budget invariant
still holds (few examples: each one plans 10,000 pods several times), and each step takes seconds of CPU
at most (the planners were quadratic: 10,000 replicas took 30 s, 100,000 did not finish in 120 s).
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common.preamble import MAX_REPLICAS
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.spec import parse_daemonset_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.sync import reconcile_daemonset
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.spec import parse_deployment_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.sync import reconcile
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod, is_available
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.replicaset import parse_replicaset_spec, reconcile_replicaset
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.spec import parse_statefulset_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.sync import reconcile_statefulset
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node

NODES = 1_000
# CPU seconds for one step: generous for a shared machine, far below what the quadratic planners took.
STEP_BUDGET = 10.0
SETTINGS = {"deadline": None, "max_examples": 3, "suppress_health_check": list(HealthCheck), "derandomize": True}
ZONES = ("a", "b", "c")


def fleet(count=NODES):
    return [Node(f"n{i:04d}", True, {"kubernetes.io/hostname": f"n{i:04d}", "zone": ZONES[i % 3]}) for i in range(count)]


def pod_template(version, **pod_spec):
    return {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "main", "command": ["/bin/sleep", version]}], **pod_spec}}


def timed(plan, *args):
    start = time.process_time()
    step = plan(*args)
    spent = time.process_time() - start
    assert spent < STEP_BUDGET, f"one step took {spent:.1f} s of CPU"
    return step


class Hosts:
    """Applies steps as the action plugin and the nodes would; new pods are ready when ``ready()`` says so."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.pods: dict[str, ObservedPod] = {}
        self.record = None
        self.now = 1000.0

    def ready_nodes(self):
        return {n.name for n in self.nodes if n.ready}

    def apply(self, step):
        ready = self.ready_nodes()
        for stop in step.stops:
            assert stop.node in ready, f"stop on NotReady node {stop.node}"
            del self.pods[stop.name]
        for start in step.starts:
            assert start.node in ready, f"start on NotReady node {start.node}"
            assert start.name not in self.pods, f"name collision {start.name}"
            self.pods[start.name] = ObservedPod(start.name, start.node, start.revision, "Running", False, None, self.now)
        self.record = step.record
        self.now += 1

    def ready(self, fraction=1.0):
        waiting = [name for name, pod in sorted(self.pods.items()) if not pod.ready]
        for name in waiting[: int(len(waiting) * fraction)]:
            pod = self.pods[name]
            self.pods[name] = ObservedPod(pod.name, pod.node, pod.revision, "Running", True, self.now, pod.created)

    def fail(self, names):
        self.nodes = [Node(n.name, n.name not in names, n.labels, n.capacity) for n in self.nodes]

    def active(self):
        ready = self.ready_nodes()
        return [p for p in self.pods.values() if p.node in ready]


# -- the bound -------------------------------------------------------------------------


def deployment_raw(replicas, version="v1", surge="25%", unavailable="25%"):
    return {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "api"}},
        "template": pod_template(version),
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
    }


def statefulset_raw(replicas, version="v1"):
    return {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "api"}},
        "serviceName": "api",
        "podManagementPolicy": "Parallel",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
        "template": pod_template(version),
    }


def replicaset_raw(replicas):
    return {"replicas": replicas, "selector": {"matchLabels": {"app": "api"}}, "template": pod_template("v1")}


PARSERS = {
    "Deployment": lambda replicas: parse_deployment_spec("api", deployment_raw(replicas)),
    "ReplicaSet": lambda replicas: parse_replicaset_spec("api", replicaset_raw(replicas)),
    "StatefulSet": lambda replicas: parse_statefulset_spec("api", statefulset_raw(replicas)),
}


@pytest.mark.parametrize("kind", sorted(PARSERS))
def test_replicas_are_bounded(kind):
    assert MAX_REPLICAS == 10_000
    assert PARSERS[kind](MAX_REPLICAS).replicas == MAX_REPLICAS
    with pytest.raises(SpecError, match=r"^spec\.replicas: must be at most 10000 .*got 10001$"):
        PARSERS[kind](MAX_REPLICAS + 1)
    with pytest.raises(SpecError, match=r"^spec\.replicas: must be at most 10000 .*got 100000$"):
        PARSERS[kind](100_000)


# -- budgets at scale ---------------------------------------------------------------------


def check_budgets(hosts, spec, step):
    """RollingUpdate's budgets, judged on the observation the step was planned from."""
    max_total = spec.replicas + spec.max_surge_for()
    min_available = spec.replicas - spec.max_unavailable_for()
    active = hosts.active()
    stopped = {s.name for s in step.stops}
    available_before = sum(1 for p in active if is_available(p, spec.min_ready_seconds, hosts.now))
    available_after = sum(1 for p in active if p.name not in stopped and is_available(p, spec.min_ready_seconds, hosts.now))
    assert available_after >= min(available_before, min_available)
    assert len(active) + len(step.starts) <= max(len(active), max_total)


@settings(**SETTINGS)
@given(
    st.integers(9_000, MAX_REPLICAS),
    st.sampled_from(["10%", "25%", 500, 0]),
    st.sampled_from(["10%", "25%", 1_000, 1]),
    st.integers(0, 40),
    st.sampled_from([0.3, 0.7, 1.0]),
)
def test_rolling_update_budgets_hold_at_10000_replicas_over_1000_nodes(replicas, surge, unavailable, lost, ready_fraction):
    hosts = Hosts(fleet())
    v1 = parse_deployment_spec("api", deployment_raw(replicas, "v1", surge, unavailable))
    step = timed(reconcile, v1, None, hosts.nodes, [], None, hosts.now)
    assert len(step.starts) == replicas and not step.pending
    hosts.apply(step)
    hosts.ready()
    v2 = parse_deployment_spec("api", deployment_raw(replicas, "v2", surge, unavailable))
    for round_ in range(4):
        if round_ == 1 and lost:
            hosts.fail({n.name for n in hosts.nodes[::25][:lost]})  # spread over the zones
        step = timed(reconcile, v2, hosts.record, hosts.nodes, list(hosts.pods.values()), None, hosts.now)
        check_budgets(hosts, v2, step)
        hosts.apply(step)
        hosts.ready(ready_fraction)
    per_node = Counter(p.node for p in hosts.active() if p.revision == v2.template_hash)
    assert max(per_node.values()) - min(per_node.get(n, 0) for n in hosts.ready_nodes()) <= 2 + replicas // len(hosts.ready_nodes())


def test_replicaset_scales_10000_pods_evenly_over_1000_nodes():
    hosts = Hosts(fleet())
    for replicas in (MAX_REPLICAS, 3_333, MAX_REPLICAS):
        spec = parse_replicaset_spec("api", replicaset_raw(replicas))
        step = timed(reconcile_replicaset, spec, hosts.record, hosts.nodes, list(hosts.pods.values()), None, hosts.now)
        hosts.apply(step)
        hosts.ready()
        per_node = Counter(p.node for p in hosts.pods.values())
        assert len(hosts.pods) == replicas
        assert max(per_node.values()) - min(per_node.get(n.name, 0) for n in hosts.nodes) <= 1


def test_statefulset_of_10000_identities_over_1000_nodes():
    hosts = Hosts(fleet())
    spec = parse_statefulset_spec("api", statefulset_raw(MAX_REPLICAS))
    step = timed(reconcile_statefulset, spec, None, hosts.nodes, [], None, hosts.now)
    assert sorted(s.name for s in step.starts) == sorted(f"api-{i}" for i in range(MAX_REPLICAS))
    assert max(Counter(s.node for s in step.starts).values()) == MAX_REPLICAS // NODES
    hosts.apply(step)
    hosts.ready()
    update = parse_statefulset_spec("api", statefulset_raw(MAX_REPLICAS, "v2"))
    step = timed(reconcile_statefulset, update, hosts.record, hosts.nodes, list(hosts.pods.values()), None, hosts.now)
    assert 0 < len(step.stops) <= update.max_unavailable_for() == 1_000
    assert not step.starts


def test_daemonset_over_2000_nodes():
    hosts = Hosts(fleet(2_000))
    rolling = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}}
    spec = parse_daemonset_spec("agent", {"selector": {"matchLabels": {"app": "api"}}, "template": pod_template("v1"), "updateStrategy": rolling})
    step = timed(reconcile_daemonset, spec, None, hosts.nodes, [], None, hosts.now)
    assert sorted(s.node for s in step.starts) == sorted(n.name for n in hosts.nodes)
    hosts.apply(step)
    hosts.ready()
    update = parse_daemonset_spec("agent", {"selector": {"matchLabels": {"app": "api"}}, "template": pod_template("v2"), "updateStrategy": rolling})
    step = timed(reconcile_daemonset, update, hosts.record, hosts.nodes, list(hosts.pods.values()), None, hosts.now)
    assert len(step.stops) == len(step.starts) == 200
    assert {s.node for s in step.stops} == {s.node for s in step.starts}
