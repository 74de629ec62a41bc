"""Where a CronJob's timer (and apply's bare Pod) goes: scheduler/one_node.py, pure."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.templates import parse_pod_template
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.one_node import choose_nodes, eligible_nodes, rendezvous

NODES = [f"node{i}" for i in range(1, 8)]


def constraints(node_selector=None):
    spec = {"restartPolicy": "Never", "containers": [{"name": "x", "command": ["/bin/true"]}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    return parse_pod_template({"spec": spec}, "spec.jobTemplate.spec.template", ("Never", "OnFailure")).constraints


def test_eligible_nodes_are_the_ready_ones_the_constraints_accept():
    nodes = [Node("a", True, {"disk": "ssd"}), Node("b", True, {"disk": "hdd"}), Node("c", False, {"disk": "ssd"}), Node("d", True, {"disk": "ssd"})]
    assert eligible_nodes(nodes, constraints({"disk": "ssd"})) == ["a", "d"]
    assert eligible_nodes(nodes, constraints()) == ["a", "b", "d"]


def test_the_installed_node_is_kept_while_eligible_else_rendezvous():
    assert choose_nodes("report", "one", ["a", "b", "c"], ["b"]) == ["b"]
    assert choose_nodes("report", "one", ["a", "c"], ["b"]) == [rendezvous("report", ["a", "c"])], "b is no longer eligible or reachable"
    assert choose_nodes("report", "one", ["a", "b", "c"], []) == [rendezvous("report", ["a", "b", "c"])]
    assert choose_nodes("report", "one", ["a", "b", "c"], ["c", "a"]) == ["c"], "installed twice (a split run): the first in fleet order"
    assert choose_nodes("report", "every", ["a", "b"], ["c"]) == ["a", "b"]
    assert choose_nodes("report", "one", [], ["a"]) == [] and choose_nodes("report", "every", [], []) == []
    with pytest.raises(ValueError, match="run_on"):
        choose_nodes("report", "some", ["a"], [])


@settings(max_examples=200, deadline=None)
@given(name=st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\Z"), nodes=st.lists(st.sampled_from(NODES), min_size=2, unique=True), gone=st.sampled_from(NODES))
def test_rendezvous_moves_only_the_workloads_of_a_node_that_leaves(name, nodes, gone):
    chosen = rendezvous(name, nodes)
    assert chosen in nodes and rendezvous(name, list(reversed(nodes))) == chosen, "the order of the nodes does not matter"
    remaining = [n for n in nodes if n != gone]
    if chosen != gone and remaining:
        assert rendezvous(name, remaining) == chosen, "a node leaving moves only its own workloads"
    if gone not in nodes:
        joined = rendezvous(name, nodes + [gone])
        assert joined in (chosen, gone), "a node joining takes workloads only to itself"


@settings(max_examples=200, deadline=None)
@given(
    eligible=st.lists(st.sampled_from(NODES), unique=True),
    installed=st.lists(st.sampled_from(NODES), unique=True),
    run_on=st.sampled_from(["one", "every"]),
)
def test_choice_is_eligible_and_stable(eligible, installed, run_on):
    chosen = choose_nodes("job", run_on, eligible, installed)
    assert set(chosen) <= set(eligible) and (bool(chosen) == bool(eligible))
    assert len(chosen) == (1 if eligible else 0) if run_on == "one" else chosen == eligible
    assert choose_nodes("job", run_on, eligible, chosen) == chosen, "once placed, a second run keeps it there"
