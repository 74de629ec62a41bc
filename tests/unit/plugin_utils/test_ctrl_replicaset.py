"""A bare ReplicaSet: keep N pods, placed like a Deployment's."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
from plugin_utils_helpers import make_nodes, template

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.records import RecordError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.replicaset import parse_replicaset_spec, reconcile_replicaset


def rs(replicas=3, command=None, **fields):
    raw = {"replicas": replicas, "selector": {"matchLabels": {"app": "api"}}, "template": template(command)}
    raw.update(fields)
    return parse_replicaset_spec("web", raw)


class Fleet:
    def __init__(self, nodes):
        self.nodes = nodes
        self.pods = []
        self.record = None
        self.now = 100.0

    def step(self, spec, apply=True):
        step = reconcile_replicaset(spec, self.record, self.nodes, self.pods, None, self.now)
        if apply:
            stopped = {s.name for s in step.stops}
            self.pods = [p for p in self.pods if p.name not in stopped]
            self.pods += [ObservedPod(s.name, s.node, s.revision, "Running", True, self.now, self.now) for s in step.starts]
            self.record = copy.deepcopy(step.record)
            self.now += 1
        return step

    def per_node(self):
        counts = {n.name: 0 for n in self.nodes}
        for p in self.pods:
            counts[p.node] += 1
        return counts


def test_keeps_n_pods_spread():
    fleet = Fleet(make_nodes(3))
    step = fleet.step(rs(5))
    assert len(step.starts) == 5 and fleet.per_node() == {"node1": 2, "node2": 2, "node3": 1}
    step = fleet.step(rs(5))
    assert step.empty and step.done and step.finished
    assert step.status["availableReplicas"] == 5 and step.status["observedGeneration"] == 1


def test_scale_down_keeps_spread():
    fleet = Fleet(make_nodes(3))
    fleet.step(rs(6))
    fleet.step(rs(3))
    assert fleet.per_node() == {"node1": 1, "node2": 1, "node3": 1}


def test_template_change_does_not_replace_pods_like_kubernetes():
    fleet = Fleet(make_nodes(2))
    fleet.step(rs(2))
    old = {p.name for p in fleet.pods}
    step = fleet.step(rs(2, ["/bin/sleep", "10"]))
    assert step.empty
    step = fleet.step(rs(3, ["/bin/sleep", "10"]))
    assert len(step.starts) == 1 and step.starts[0].revision == rs(1, ["/bin/sleep", "10"]).template_hash
    # scaling down takes the older template first
    step = fleet.step(rs(1, ["/bin/sleep", "10"]))
    assert {s.name for s in step.stops} == old


def test_lost_pods_are_replaced_and_surplus_removed_when_the_node_returns():
    fleet = Fleet(make_nodes(2))
    fleet.step(rs(2))
    fleet.nodes = [replace(n, ready=False) if n.name == "node2" else n for n in fleet.nodes]
    step = fleet.step(rs(2))
    assert [s.node for s in step.starts] == ["node1"] and len(step.lost) == 1
    fleet.nodes = make_nodes(2)
    step = fleet.step(rs(2))
    assert len(step.stops) == 1 and step.stops[0].node == "node1"
    assert fleet.per_node() == {"node1": 1, "node2": 1}


def test_unplaceable_pods_are_pending_and_finish_the_loop():
    fleet = Fleet(make_nodes(2))
    raw = {"replicas": 3, "selector": {"matchLabels": {"app": "api"}}, "template": template(nodeSelector={"disk": "ssd"})}
    spec = parse_replicaset_spec("web", raw)
    step = fleet.step(spec)
    assert step.empty and step.finished and not step.done
    assert step.pending[0].count == 3
    assert step.status["conditions"][0]["reason"] == "FailedScheduling"


def test_spec_errors():
    with pytest.raises(SpecError) as err:
        parse_replicaset_spec("web", {"selector": {"matchLabels": {"app": "api"}}, "template": template(), "strategy": {}})
    assert err.value.path == "spec.strategy"
    with pytest.raises(SpecError) as err:
        parse_replicaset_spec("web", {"selector": {"matchLabels": {"app": "db"}}, "template": template()})
    assert err.value.path == "spec.template.metadata.labels"
    with pytest.raises(SpecError) as err:
        parse_replicaset_spec("web", {"selector": {"matchLabels": {"app": "api"}}, "template": template()}, stored_selector={"matchLabels": {"x": "y"}})
    assert err.value.path == "spec.selector"


def test_deployment_record_is_refused():
    with pytest.raises(RecordError):
        reconcile_replicaset(rs(1), {"kind": "Deployment", "name": "web"}, make_nodes(1), [], None, 0.0)


def test_observed_pod_carries_why_it_waits_only_when_it_does():
    plain = ObservedPod("web-a", "node1", "r1", "Running", True, 1.0, 1.0)
    assert "reason" not in plain.to_json() and ObservedPod.from_json(dict(plain.to_json(), node="node1")) == plain
    stuck = replace(plain, phase="Pending", ready=False, reason="ErrImageNeverPull", message='Container image "x" is not present')
    data = stuck.to_json()
    assert (data["reason"], data["message"]) == ("ErrImageNeverPull", 'Container image "x" is not present')
    assert ObservedPod.from_json(data) == stuck
