# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DaemonSet controller: one pod per eligible node, rolled out within maxUnavailable / maxSurge."""

from __future__ import annotations

import pytest
from daemonset_helpers import DaemonWorld, ds, ds_raw, nodes, rolling

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.spec import parse_daemonset_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.sync import STATUS_KEYS, reconcile_daemonset
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.records import RecordError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Resources

EDGE = {"role": "edge"}


def converge(world, spec, rounds=30):
    step = world.run(spec, rounds)
    assert step.done and step.finished and step.complete, step.waiting_for
    return step


# -- spec --------------------------------------------------------------------------


def test_defaults_and_normal_form():
    spec = ds()
    assert spec.strategy == "RollingUpdate" and spec.max_unavailable == 1 and spec.max_surge == 0
    assert spec.min_ready_seconds == 0 and spec.revision_history_limit == 10 and spec.progress_deadline_seconds == 600
    assert spec.to_json()["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert ds(strategy={"type": "OnDelete"}).to_json()["updateStrategy"] == {"type": "OnDelete"}


@pytest.mark.parametrize(
    "fields, path",
    [
        ({"replicas": 3}, "spec.replicas"),
        ({"paused": False}, "spec.paused"),
        ({"updateStrategy": {"type": "Recreate"}}, "spec.updateStrategy.type"),
        ({"updateStrategy": {"type": "OnDelete", "rollingUpdate": {}}}, "spec.updateStrategy.rollingUpdate"),
        ({"updateStrategy": rolling(0, 0)}, "spec.updateStrategy.rollingUpdate.maxUnavailable"),
        ({"updateStrategy": {"rollingUpdate": {"maxSurg": 1}}}, "spec.updateStrategy.rollingUpdate.maxSurg"),
        ({"updateStrategy": rolling("150%", 0)}, "spec.updateStrategy.rollingUpdate.maxUnavailable"),
        ({"updateStrategy": rolling(1, "x")}, "spec.updateStrategy.rollingUpdate.maxSurge"),
        ({"minReadySeconds": -1}, "spec.minReadySeconds"),
        ({"revisionHistoryLimit": "3"}, "spec.revisionHistoryLimit"),
        ({"minReadySeconds": 30, "progressDeadlineSeconds": 30}, "spec.progressDeadlineSeconds"),
    ],
)
def test_invalid_specs_name_the_field(fields, path):
    with pytest.raises(SpecError) as info:
        parse_daemonset_spec("agent", ds_raw(**fields))
    assert info.value.path == path


def test_selector_must_match_and_is_immutable_and_restart_policy_always():
    raw = ds_raw()
    raw["selector"] = {"matchLabels": {"app": "other"}}
    with pytest.raises(SpecError) as info:
        parse_daemonset_spec("agent", raw)
    assert info.value.path == "spec.template.metadata.labels"
    with pytest.raises(SpecError) as info:
        parse_daemonset_spec("agent", ds_raw(), stored_selector={"matchLabels": {"app": "x"}})
    assert info.value.path == "spec.selector"
    raw = ds_raw()
    raw["template"]["spec"]["restartPolicy"] = "Never"
    with pytest.raises(SpecError) as info:
        parse_daemonset_spec("agent", raw)
    assert info.value.path == "spec.template.spec.restartPolicy"


def test_budgets_round_up_over_eligible_nodes():
    assert ds(strategy=rolling("10%", 0)).budgets(3) == (0, 1)
    assert ds(strategy=rolling("34%", 0)).budgets(3) == (0, 2)
    assert ds(strategy=rolling("0%", "25%")).budgets(10) == (3, 0)
    assert ds(strategy=rolling(0, "1%")).budgets(0) == (0, 0)
    assert ds(strategy={"type": "OnDelete"}).budgets(5) == (0, 0)


def test_foreign_record_refused():
    with pytest.raises(RecordError):
        reconcile_daemonset(ds(), {"kind": "Deployment", "name": "agent"}, nodes(1), [])


# -- placement ---------------------------------------------------------------------


def test_pods_on_exactly_the_labelled_nodes_then_follow_labels():
    world = DaemonWorld(nodes(3, labelled={"node1", "node2"}))
    spec = ds(node_selector=EDGE)
    first = world.step(spec)
    assert sorted(s.node for s in first.starts) == ["node1", "node2"]
    assert all(s.name.startswith("agent-") and len(s.name) == len("agent-") + 5 for s in first.starts)
    step = converge(world, spec)
    assert world.per_node() == {"node1": 1, "node2": 1, "node3": 0}
    assert {k: step.status[k] for k in STATUS_KEYS if k != "conditions"} == {
        "desiredNumberScheduled": 2,
        "currentNumberScheduled": 2,
        "numberReady": 2,
        "updatedNumberScheduled": 2,
        "numberAvailable": 2,
        "numberUnavailable": 0,
        "numberMisscheduled": 0,
        "observedGeneration": 1,
    }
    assert set(step.status) == set(STATUS_KEYS)
    # label the third node: it gets a pod
    world.set_labels("node3", {"kubernetes.io/hostname": "node3", **EDGE})
    step = world.step(spec)
    assert [(s.node, s.revision) for s in step.starts] == [("node3", spec.template_hash)] and not step.stops
    converge(world, spec)
    assert world.per_node() == {"node1": 1, "node2": 1, "node3": 1}
    # remove a label: numberMisscheduled is reported while the pod is still there, and the pod goes
    world.set_labels("node1", {"kubernetes.io/hostname": "node1"})
    step = world.step(spec)
    assert step.status["numberMisscheduled"] == 1 and step.status["desiredNumberScheduled"] == 2
    assert [s.node for s in step.stops] == ["node1"] and not step.starts
    step = converge(world, spec)
    assert world.per_node() == {"node1": 0, "node2": 1, "node3": 1} and step.status["numberMisscheduled"] == 0


def test_replan_of_converged_state_is_empty_and_names_are_stable():
    world = DaemonWorld(nodes(3))
    spec = ds()
    again = reconcile_daemonset(spec, None, world.nodes, [], None, world.now)
    first = world.step(spec)
    assert [s.name for s in again.starts] == [s.name for s in first.starts]
    converge(world, spec)
    step = world.step(spec)
    assert step.empty and step.done and step.record["generation"] == 1


def test_notready_node_keeps_its_pod_and_nothing_starts_elsewhere():
    world = DaemonWorld(nodes(3))
    spec = ds()
    converge(world, spec)
    world.set_ready("node2", False)
    step = world.step(spec)
    assert step.empty and step.lost == tuple(p.name for p in world.pods if p.node == "node2")
    assert step.status["numberAvailable"] == 2 and step.status["numberUnavailable"] == 1 and step.status["currentNumberScheduled"] == 3
    assert step.finished and not step.done and not step.failed  # nothing can be done until node2 returns
    assert any("node2" in line and "NotReady" in line for line in step.waiting_for)
    world.set_ready("node2", True)
    step = converge(world, spec)
    assert world.per_node() == {"node1": 1, "node2": 1, "node3": 1}


def test_new_node_and_finished_pod_get_a_pod():
    world = DaemonWorld(nodes(2))
    spec = ds()
    converge(world, spec)
    world.nodes = nodes(3)
    dead = world.pods[0]
    world.pods[0] = dead.__class__(dead.name, dead.node, dead.revision, "Failed", False, None, dead.created)
    step = world.step(spec)
    assert sorted(s.node for s in step.starts) == sorted(["node3", dead.node]) and [s.name for s in step.stops] == [dead.name]
    converge(world, spec)


def test_capacity_pending_names_the_node():
    world = DaemonWorld(nodes(2))
    world.nodes[1] = world.nodes[1].__class__("node2", True, world.nodes[1].labels, Resources(100, None, None))
    raw = ds_raw()
    raw["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "500m"}}
    spec = parse_daemonset_spec("agent", raw)
    step = world.step(spec)
    assert [s.node for s in step.starts] == ["node1"]
    assert len(step.pending) == 1 and step.pending[0].reason.startswith("node node2:") and "Insufficient cpu" in step.pending[0].reason
    step = world.run(spec)
    assert step.finished and not step.done and step.pending and world.per_node() == {"node1": 1, "node2": 0}
    assert any(c["type"] == "ReplicaFailure" for c in step.status["conditions"])


# -- updates -----------------------------------------------------------------------


def test_rolling_update_max_unavailable_1_one_node_at_a_time():
    world = DaemonWorld(nodes(4))
    converge(world, ds("v1"))
    spec = ds("v2")
    waves = []
    while True:
        step = world.step(spec)
        if step.stops:
            waves.append(sorted(s.node for s in step.stops))
            assert all(s.node == t.node for s, t in zip(step.stops, step.starts, strict=True))  # stop old, start new in one node call
        unavailable = sum(1 for n in world.nodes if not world.available_on(n.name))
        assert unavailable <= 1
        if step.finished:
            break
    assert waves == [["node1"], ["node2"], ["node3"], ["node4"]]
    assert step.done and world.per_node(spec.template_hash) == {f"node{i}": 1 for i in range(1, 5)}
    assert step.record["revisions"][spec.template_hash]["revision"] == 2


def test_max_surge_starts_new_before_stopping_old_on_the_same_node():
    world = DaemonWorld(nodes(3))
    converge(world, ds("v1", strategy=rolling(0, 1)))
    spec = ds("v2", strategy=rolling(0, 1))
    step = world.step(spec)
    assert [s.node for s in step.starts] == ["node1"] and not step.stops
    assert world.per_node() == {"node1": 2, "node2": 1, "node3": 1}
    step = world.step(spec)  # new pod on node1 available: its old pod goes, node2 surges
    assert [s.node for s in step.stops] == ["node1"] and [s.node for s in step.starts] == ["node2"]
    step = converge(world, spec)
    assert world.per_node(spec.template_hash) == {"node1": 1, "node2": 1, "node3": 1} and world.per_node() == {"node1": 1, "node2": 1, "node3": 1}


def test_on_delete_keeps_old_pods_until_deleted():
    world = DaemonWorld(nodes(3))
    on_delete = {"type": "OnDelete"}
    converge(world, ds("v1", strategy=on_delete))
    spec = ds("v2", strategy=on_delete)
    step = world.step(spec)
    assert step.empty and step.done and step.status["updatedNumberScheduled"] == 0
    world.pods = [p for p in world.pods if p.node != "node2"]  # the user deletes one pod
    step = world.step(spec)
    assert [(s.node, s.revision) for s in step.starts] == [("node2", spec.template_hash)]
    step = converge(world, spec)
    assert step.status["updatedNumberScheduled"] == 1 and world.per_node() == {"node1": 1, "node2": 1, "node3": 1}


def test_notready_node_consumes_the_budget_first():
    world = DaemonWorld(nodes(3))
    converge(world, ds("v1"))
    world.set_ready("node3", False)
    step = world.step(ds("v2"))
    assert step.empty and step.finished and not step.failed
    world.set_ready("node3", True)
    step = world.step(ds("v2"))
    assert [s.node for s in step.stops] == ["node1"]


def test_stuck_node_does_not_hold_the_others_and_the_deadline_is_reported():
    world = DaemonWorld(nodes(4))
    converge(world, ds("v1"))
    spec = ds("v2", strategy=rolling(2), progressDeadlineSeconds=30)
    world.stuck = {("node1", spec.template_hash)}
    step = world.run(spec, rounds=100, tick=5.0)
    assert step.finished and step.failed and not step.done
    assert world.per_node(spec.template_hash) == {f"node{i}": 1 for i in range(1, 5)}  # every other node was updated
    assert all(world.available_on(f"node{i}") for i in (2, 3, 4))
    progressing = next(c for c in step.status["conditions"] if c["type"] == "Progressing")
    assert progressing["status"] == "False" and progressing["reason"] == "ProgressDeadlineExceeded" and "node1" in progressing["message"]
    assert "node2" not in progressing["message"]
    # a later run keeps reporting the failure at once, without acting
    step = world.step(spec)
    assert step.finished and step.failed and step.empty


def test_stuck_node_with_max_unavailable_1_times_out():
    world = DaemonWorld(nodes(3))
    converge(world, ds("v1"))
    spec = ds("v2", progressDeadlineSeconds=20)
    world.stuck = {("node1", spec.template_hash)}
    step = world.run(spec, rounds=100, tick=5.0)
    assert step.failed and step.finished and "node1" in step.message
    assert world.per_node(spec.template_hash) == {"node1": 1, "node2": 0, "node3": 0}


def test_history_is_trimmed_to_the_limit():
    world = DaemonWorld(nodes(2))
    for version in range(5):
        converge(world, ds(f"v{version}", revisionHistoryLimit=2))
    numbers = sorted(e["revision"] for e in world.record["revisions"].values())
    assert numbers == [3, 4, 5]
    # a template that comes back gets a new, higher number
    converge(world, ds("v3", revisionHistoryLimit=2))
    assert world.record["revisions"][ds("v3").template_hash]["revision"] == 6


def test_min_ready_seconds_counts():
    world = DaemonWorld(nodes(2))
    spec = ds(minReadySeconds=10)
    step = world.run(spec, rounds=30, tick=2.0)
    assert step.done and world.now >= 1010
