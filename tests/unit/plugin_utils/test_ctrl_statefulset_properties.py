"""StatefulSet properties over a simulated fleet: random node failures and returns, random readiness.

* at most one pod per identity across the fleet at every step, pods on NotReady nodes counted as alive;
* OrderedReady never starts ordinal k while a lower ordinal is not Running+Ready;
* the partition is respected;
* with healthy nodes it converges, and re-planning a converged state is empty.
"""

from __future__ import annotations

import copy
import random
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plugin_utils_helpers import make_nodes
from test_ctrl_statefulset import sts

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.identity import ordinal_of
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.sync import reconcile_statefulset


class ChaosFleet:
    def __init__(self, seed: int, visible: bool, nodes: int = 3):
        self.rng = random.Random(seed)
        self.visible = visible
        self.nodes = make_nodes(nodes)
        self.pods: list[ObservedPod] = []  # ALL pods, NotReady nodes included
        self.record = None
        self.now = 100.0

    def ready_nodes(self):
        return {n.name for n in self.nodes if n.ready}

    def observe(self):
        ready = self.ready_nodes()
        return [p for p in self.pods if self.visible or p.node in ready]

    def step(self, spec, check=None):
        observed = self.observe()
        step = reconcile_statefulset(spec, self.record, self.nodes, observed, None, self.now)
        if check:
            check(step, observed)
        stopped = {(s.name, s.node) for s in step.stops}
        assert all(node in self.ready_nodes() for _unused, node in stopped)
        self.pods = [p for p in self.pods if (p.name, p.node) not in stopped]
        for start in step.starts:
            assert start.node in self.ready_nodes()
            assert step.templates[start.key]["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == start.name
            self.pods.append(ObservedPod(start.name, start.node, start.revision, "Running", False, None, self.now))
        self.record = copy.deepcopy(step.record)
        self.now += 1
        names = [p.name for p in self.pods]
        assert len(names) == len(set(names)), f"two pods of one identity: {sorted(names)}"
        return step

    def chaos(self, healthy=False):
        rng = self.rng
        if not healthy and rng.random() < 0.25:
            node = rng.choice(self.nodes)
            self.nodes = [replace(n, ready=not n.ready) if n is node else n for n in self.nodes]
            if node.ready and rng.random() < 0.3:  # sometimes the pods die with the node (node was ready, now fails)
                self.pods = [p for p in self.pods if p.node != node.name]
        pods = []
        for pod in self.pods:
            if healthy:
                pod = replace(pod, ready=True, ready_since=pod.ready_since or self.now)
            elif rng.random() < 0.5:
                ready = rng.random() < 0.7
                pod = replace(pod, ready=ready, ready_since=(pod.ready_since or self.now) if ready else None)
            pods.append(pod)
        self.pods = pods

    def heal(self):
        self.nodes = [replace(n, ready=True) for n in self.nodes]

    def converge(self, spec, rounds=60):
        self.heal()
        for _unused in range(rounds):
            self.chaos(healthy=True)
            step = self.step(spec)
            if step.done:
                return step
        raise AssertionError(f"no convergence: {step.waiting_for}")


def ordered_check(spec):
    def check(step, observed):
        if not spec.ordered:
            return
        assert len(step.starts) <= 1
        ready_nodes = {n.name for n in step_nodes[0]}
        stopped = {(s.name, s.node) for s in step.stops}
        healthy = {
            ordinal_of("web", p.name)
            for p in observed
            if p.node in ready_nodes and p.phase == "Running" and p.ready and (p.name, p.node) not in stopped
        }
        for start in step.starts:
            k = ordinal_of("web", start.name)
            assert all(j in healthy for j in spec.ordinals if j < k), f"{start.name} started before lower ordinals were ready"

    step_nodes: list = [[]]
    return check, step_nodes


specs = st.tuples(
    st.integers(0, 4),
    st.sampled_from(["OrderedReady", "Parallel"]),
    st.sampled_from(["v1", "v2"]),
    st.sampled_from(["Retain", "Delete"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), visible=st.booleans(), plan=st.lists(specs, min_size=1, max_size=4), rounds=st.integers(3, 12))
def test_one_pod_per_identity_ordering_and_convergence(seed, visible, plan, rounds):
    fleet = ChaosFleet(seed, visible)
    spec = None
    for replicas, policy, version, when_scaled in plan:
        spec = sts(replicas, version, podManagementPolicy=policy, persistentVolumeClaimRetentionPolicy={"whenScaled": when_scaled})
        check, holder = ordered_check(spec)
        for _unused in range(rounds):
            fleet.chaos()
            holder[0] = [n for n in fleet.nodes if n.ready]
            fleet.step(spec, check)
    done = fleet.converge(spec)
    assert sorted(p.name for p in fleet.pods) == sorted(f"web-{o}" for o in spec.ordinals)
    assert all(p.revision == spec.template_hash for p in fleet.pods)
    again = reconcile_statefulset(spec, fleet.record, fleet.nodes, fleet.observe(), None, fleet.now)
    assert again.empty and again.done and not again.volumes_to_delete and not again.pending
    assert done.status["readyReplicas"] == spec.replicas


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), visible=st.booleans(), partition=st.integers(0, 4), policy=st.sampled_from(["OrderedReady", "Parallel"]))
def test_partition_is_respected(seed, visible, partition, policy):
    fleet = ChaosFleet(seed, visible)
    v1 = sts(4, "v1", podManagementPolicy=policy)
    fleet.converge(v1)
    v2 = sts(4, "v2", podManagementPolicy=policy, updateStrategy={"rollingUpdate": {"partition": partition}})

    def check(step, observed):
        for stop in step.stops:
            assert ordinal_of("web", stop.name) >= partition, f"{stop.name} stopped below the partition"
        for start in step.starts:
            assert start.revision != v2.template_hash or ordinal_of("web", start.name) >= partition

    for _unused in range(15):
        fleet.chaos()
        fleet.step(v2, check)
    fleet.heal()
    for _unused in range(60):
        fleet.chaos(healthy=True)
        if fleet.step(v2, check).done:
            break
    by_name = {p.name: p.revision for p in fleet.pods}
    assert all(by_name[f"web-{o}"] == (v2.template_hash if o >= partition else v1.template_hash) for o in range(4))
