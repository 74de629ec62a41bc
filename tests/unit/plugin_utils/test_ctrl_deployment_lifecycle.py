"""Deployment over time: minimal movement, NotReady nodes, scaling, pause, undo, history, deadline, rollback."""

from __future__ import annotations

from dataclasses import replace

import pytest
from plugin_utils_helpers import World, make_nodes, raw_spec, rolling, spec

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.rollback import RollbackError, undo
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.spec import parse_deployment_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.sync import reconcile
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.records import RecordError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node, NodeUsage, Resources


def converge(world, deployment, rounds=60):
    step = world.run(deployment, rounds)
    assert step.done, step.waiting_for
    return step


def reason(step, kind="Progressing"):
    return next(c["reason"] for c in step.status["conditions"] if c["type"] == kind)


# -- minimal movement -----------------------------------------------------------


def test_converged_replan_is_empty_again_and_again():
    world = World(make_nodes(3))
    v1 = spec(6)
    converge(world, v1)
    for _round in range(3):
        step = world.reconcile(v1)
        assert step.empty and step.done and not step.pending
        world.apply(step, tick=100.0)


def test_converged_replan_keeps_the_record_as_it_was():
    """Nothing happened, nothing changes: not even the record (the action plugin reports changed=False)."""
    world = World(make_nodes(3))
    v1 = spec(6)
    converge(world, v1)
    world.apply(world.reconcile(v1), tick=30.0)
    before = world.record
    step = reconcile(v1, before, world.nodes, world.pods, None, world.now + 500.0)
    assert step.record == before


def test_a_new_node_does_not_move_running_pods():
    world = World(make_nodes(2))
    v1 = spec(4)
    converge(world, v1)
    world.nodes.append(Node("node3", True, {"kubernetes.io/hostname": "node3"}))
    assert world.reconcile(v1).empty
    # but the next pods go there first
    step = world.reconcile(spec(5))
    assert [s.node for s in step.starts] == ["node3"]


def test_scale_up_keeps_existing_pods_and_spreads():
    world = World(make_nodes(3))
    converge(world, spec(6))
    names = {p.name for p in world.pods}
    step = world.reconcile(spec(9))
    assert not step.stops and {s.node for s in step.starts} == {"node1", "node2", "node3"}
    world.apply(step)
    assert names <= {p.name for p in world.pods}


def test_scale_6_9_3_stays_spread():
    world = World(make_nodes(3))
    converge(world, spec(6))
    assert world.per_node() == {"node1": 2, "node2": 2, "node3": 2}
    converge(world, spec(9))
    assert world.per_node() == {"node1": 3, "node2": 3, "node3": 3}
    step = world.reconcile(spec(3))
    assert len(step.stops) == 6 and not step.starts
    world.apply(step)
    converge(world, spec(3))
    assert world.per_node() == {"node1": 1, "node2": 1, "node3": 1}


def test_scale_down_takes_unhealthy_pods_first_then_youngest():
    world = World(make_nodes(2))
    converge(world, spec(4))
    world.pods[1] = replace(world.pods[1], ready=False, ready_since=None)
    step = world.reconcile(spec(3))
    assert [s.name for s in step.stops] == [world.pods[1].name]


# -- NotReady nodes ---------------------------------------------------------------


def test_not_ready_node_story_2_2_2_then_3_3_then_2_2_2():
    world = World(make_nodes(3))
    v1 = spec(6)
    converge(world, v1)
    assert world.per_node() == {"node1": 2, "node2": 2, "node3": 2}
    lost = {p.name for p in world.pods if p.node == "node3"}

    world.fail("node3")
    step = world.reconcile(v1)
    assert sorted(s.node for s in step.starts) == ["node1", "node2"] and not step.stops
    assert set(step.lost) == lost
    assert step.status["lostReplicas"] == 2 and step.status["replicas"] == 4
    assert not {s.name for s in step.starts} & lost  # names never collide with the lost pods
    world.apply(step)
    step = converge(world, v1)
    assert step.done and step.lost  # converged over the reachable nodes; node3's pods are still remembered as lost
    assert {n: c for n, c in world.per_node().items() if n != "node3"} == {"node1": 3, "node2": 3}

    world.recover("node3")  # its 2 pods are running again: 8 pods
    step = world.reconcile(v1)
    assert len(step.stops) == 2 and not step.starts
    assert sorted(s.node for s in step.stops) == ["node1", "node2"]
    world.apply(step)
    assert world.per_node() == {"node1": 2, "node2": 2, "node3": 2}
    assert world.reconcile(v1).empty


def test_pods_on_a_not_ready_node_are_never_acted_upon():
    world = World(make_nodes(2))
    v1 = spec(2)
    converge(world, v1)
    world.fail("node2")
    for deployment in (spec(0), spec(2, "v2"), spec(2, "v2", {"type": "Recreate"})):
        step = reconcile(deployment, world.record, world.nodes, world.pods, None, world.now)
        assert "node2" not in step.actions


def test_all_nodes_down_everything_pending():
    world = World(make_nodes(2))
    v1 = spec(2)
    converge(world, v1)
    world.fail("node1")
    world.fail("node2")
    step = world.reconcile(v1)
    assert step.empty and not step.done
    assert step.pending[0].count == 2 and step.pending[0].reason == "0/2 nodes are available: 2 node(s) were not ready."
    assert reason(step, "ReplicaFailure") == "FailedScheduling"


def test_lost_pods_during_a_rollout_do_not_count_towards_the_surge():
    world = World(make_nodes(3))
    strategy = rolling(1, 0)
    converge(world, spec(3, "v1", strategy))
    world.fail("node3")
    step = world.reconcile(spec(3, "v2", strategy))
    # 2 active pods, surge ceiling 4: two new pods may start at once (one replaces the lost pod)
    assert len(step.starts) == 2 and not step.stops


# -- capacity and pending --------------------------------------------------------


def test_pods_that_fit_nowhere_are_pending_with_reasons_and_replica_failure():
    nodes = make_nodes(2, capacity=Resources(1000, None, None))
    world = World(nodes)
    raw = raw_spec(5, progressDeadlineSeconds=30)
    raw["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "400m"}}
    deployment = parse_deployment_spec("api", raw)
    step = world.reconcile(deployment, {"node1": NodeUsage(pods=1, cpu_millis=200)})
    assert len(step.starts) == 4
    assert [(p.count, p.reason) for p in step.pending] == [(1, "0/2 nodes are available: 2 Insufficient cpu.")]
    assert reason(step, "ReplicaFailure") == "FailedScheduling"
    assert "1 pod(s) cannot be placed: 0/2 nodes are available: 2 Insufficient cpu." in step.waiting_for
    world.apply(step)
    last = world.run(deployment, rounds=100, other_usage={"node1": NodeUsage(pods=1, cpu_millis=200)}, tick=5.0)
    assert last.finished and last.failed and not last.done
    assert reason(last) == "ProgressDeadlineExceeded"
    # capacity appears: the next run places it
    world.nodes = make_nodes(2, capacity=Resources(2000, None, None))
    step = world.reconcile(deployment)
    assert len(step.starts) == 1 and not step.pending
    world.apply(step)
    assert converge(world, deployment).done


# -- paused --------------------------------------------------------------------


def test_paused_does_not_roll_out_but_scales():
    world = World(make_nodes(3))
    v1 = spec(3)
    converge(world, v1)
    step = world.reconcile(spec(3, "v2", paused=True))
    assert step.empty and step.finished and reason(step) == "DeploymentPaused"
    assert step.status["conditions"][1]["status"] == "Unknown"
    world.apply(step)
    step = world.reconcile(spec(6, "v2", paused=True))
    assert len(step.starts) == 3 and {s.revision for s in step.starts} == {v1.template_hash}
    world.apply(step)
    step = world.run(spec(6, "v2", paused=True))
    assert step.done
    step = world.reconcile(spec(6, "v2"))  # resume: the rollout starts
    assert step.starts and step.starts[0].revision == spec(6, "v2").template_hash
    world.apply(step)
    converge(world, spec(6, "v2"))


def test_created_paused_runs_nothing():
    world = World(make_nodes(2))
    step = world.reconcile(spec(3, paused=True))
    assert step.empty and step.finished and not step.done


def test_resume_restarts_the_deadline_clock():
    world = World(make_nodes(2))
    converge(world, spec(2))
    world.apply(world.reconcile(spec(2, "v2", paused=True)), tick=10_000.0)
    step = world.reconcile(spec(2, "v2"))
    assert not step.failed and step.starts


# -- undo and history ------------------------------------------------------------


def test_undo_to_previous_and_to_a_given_revision():
    world = World(make_nodes(2))
    v1, v2, v3 = spec(2, "v1"), spec(2, "v2"), spec(2, "v3")
    for deployment in (v1, v2, v3):
        converge(world, deployment)
    result = undo(world.record, now=world.now)
    assert result.changed and result.message == "rolled back to revision 2"
    world.record = result.record
    step = converge(world, v3)  # the user's spec still says v3: revision 2's template runs instead
    assert {p.revision for p in world.pods} == {v2.template_hash}
    assert step.rolled_back and not step.failed
    assert step.record["revisions"][v2.template_hash]["revision"] == 4
    assert step.status["revision"] == 4
    result = undo(world.record, to_revision=1, now=world.now)
    world.record = result.record
    converge(world, v3)
    assert {p.revision for p in world.pods} == {v1.template_hash}
    # a new template from the user wins over the undo
    v4 = spec(2, "v4")
    step = converge(world, v4)
    assert {p.revision for p in world.pods} == {v4.template_hash} and not step.rolled_back
    assert step.record["rolled_back_from"] is None


def test_undo_back_to_the_users_template_clears_the_override():
    world = World(make_nodes(2))
    v1, v2 = spec(2, "v1"), spec(2, "v2")
    converge(world, v1)
    converge(world, v2)
    world.record = undo(world.record).record
    converge(world, v2)
    world.record = undo(world.record).record  # previous of revision 3 (v1) is revision 2 (v2): the user's own
    assert world.record["rolled_back_from"] is None
    converge(world, v2)
    assert {p.revision for p in world.pods} == {v2.template_hash}


def test_undo_errors():
    with pytest.raises(RollbackError, match="no rollout history"):
        undo(None)
    world = World(make_nodes(1))
    converge(world, spec(1))
    with pytest.raises(RollbackError, match="only one revision"):
        undo(world.record)
    with pytest.raises(RollbackError, match="unable to find specified revision 7"):
        undo(world.record, to_revision=7)
    assert undo(world.record, to_revision=1).changed is False
    world.apply(world.reconcile(spec(1, "v2", paused=True)))
    with pytest.raises(RollbackError, match="paused"):
        undo(world.record)


def test_revision_history_limit():
    world = World(make_nodes(1))
    for version in range(1, 7):
        converge(world, spec(1, f"v{version}", revisionHistoryLimit=2))
    numbers = sorted(e["revision"] for e in world.record["revisions"].values())
    assert numbers == [4, 5, 6]
    converge(world, spec(1, "v7", revisionHistoryLimit=0))
    assert [e["revision"] for e in world.record["revisions"].values()] == [7]


def test_record_of_another_deployment_is_refused():
    world = World(make_nodes(1))
    converge(world, spec(1))
    with pytest.raises(RecordError):
        reconcile(spec(1, name="other"), world.record, world.nodes, [], None, world.now)


def test_generation_counts_spec_changes():
    world = World(make_nodes(2))
    converge(world, spec(2))
    assert world.record["generation"] == 1
    converge(world, spec(2))
    assert world.record["generation"] == 1
    step = converge(world, spec(3))
    assert step.record["generation"] == 2 and step.status["observedGeneration"] == 2


# -- progress deadline and automatic rollback -----------------------------------


def test_deadline_exceeded_holds_the_rollout_within_budgets():
    world = World(make_nodes(4))
    strategy = rolling(3, 2)
    v1 = spec(10, "v1", strategy, progressDeadlineSeconds=30)
    converge(world, v1)
    v2 = spec(10, "v2", strategy, progressDeadlineSeconds=30)
    world.broken.add(v2.template_hash)
    step = world.run(v2, rounds=100, tick=5.0)
    assert step.finished and step.failed and not step.done and not step.rolled_back
    assert reason(step) == "ProgressDeadlineExceeded"
    condition = next(c for c in step.status["conditions"] if c["type"] == "Progressing")
    assert condition["status"] == "False" and condition["message"] == f'ReplicaSet "api-{v2.template_hash}" has timed out progressing.'
    assert world.available() == 8 and len(world.pods) == 13
    assert world.record["held"] == {v1.template_hash: 8, v2.template_hash: 5}
    # held: a node failure is healed in kind (old pods replace old pods), never beyond the budgets
    world.fail("node1")
    lost = {p.revision: 0 for p in world.pods}
    for p in world.pods:
        if p.node == "node1":
            lost[p.revision] += 1
    step = world.reconcile(v2)
    started = {}
    for s in step.starts:
        started[s.revision] = started.get(s.revision, 0) + 1
    assert started == {k: v for k, v in lost.items() if v} and not step.stops
    world.apply(step)
    world.recover("node1")
    step = world.reconcile(v2)
    assert len(step.stops) == sum(lost.values())
    world.apply(step)
    # the same spec again: still failed and held, nothing to do
    step = world.reconcile(v2)
    assert step.empty and step.failed and step.finished


def test_failed_rollout_resumes_when_its_pods_become_available():
    world = World(make_nodes(2))
    v1 = spec(4, "v1", progressDeadlineSeconds=30)
    converge(world, v1)
    v2 = spec(4, "v2", progressDeadlineSeconds=30)
    world.broken.add(v2.template_hash)
    assert world.run(v2, rounds=100, tick=5.0).failed
    world.broken.clear()  # e.g. the database they wait for came up
    world.apply(world.reconcile(v2))
    step = converge(world, v2)
    assert not step.failed and reason(step) == "NewReplicaSetAvailable"


def test_a_new_template_after_a_failure_rolls_out():
    world = World(make_nodes(2))
    converge(world, spec(4, "v1", progressDeadlineSeconds=30))
    v2 = spec(4, "v2", progressDeadlineSeconds=30)
    world.broken.add(v2.template_hash)
    assert world.run(v2, rounds=100, tick=5.0).failed
    v3 = spec(4, "v3", progressDeadlineSeconds=30)
    step = converge(world, v3)
    assert not step.failed and {p.revision for p in world.pods} == {v3.template_hash}


def test_single_revision_failure_keeps_trying():
    """Nothing to hold when no rollout is in flight: e.g. the first rollout of a broken template."""
    world = World(make_nodes(2))
    v1 = spec(2, "v1", progressDeadlineSeconds=30)
    world.broken.add(v1.template_hash)
    step = world.run(v1, rounds=100, tick=5.0)
    assert step.failed and step.finished and world.record["held"] is None


def test_rollback_on_failure_returns_to_the_last_complete_revision_within_budgets():
    world = World(make_nodes(4))
    strategy = rolling(3, 2)
    v1 = spec(10, "v1", strategy, progressDeadlineSeconds=30, rollbackOnFailure=True)
    converge(world, v1)
    v2 = spec(10, "v2", strategy, progressDeadlineSeconds=30, rollbackOnFailure=True)
    world.broken.add(v2.template_hash)
    rolled = None
    for _round in range(100):
        before = world.available()
        step = world.reconcile(v2)
        stopped = {s.name for s in step.stops}
        assert sum(1 for p in world.pods if p.name not in stopped and p.ready) >= min(before, 8)
        assert len(world.pods) + len(step.starts) <= 13
        if step.rolled_back and rolled is None:
            rolled = step
        world.apply(step, tick=5.0)
        if step.finished:
            break
    assert rolled is not None and rolled.failed and reason(rolled) == "RolledBack"
    assert rolled.message.startswith("progress deadline exceeded for revision 2")
    assert step.done and step.failed and step.rolled_back
    assert {p.revision for p in world.pods} == {v1.template_hash} and len(world.pods) == 10
    override = step.record["rolled_back_from"]
    assert override["reason"] == "RolledBack" and override["hash"] == v2.template_hash and override["to_revision"] == 3
    # the next run with the same spec stays on the good revision and reports the failure again
    step = world.reconcile(v2)
    assert step.empty and step.done and step.failed and step.rolled_back
    # a fixed template rolls out normally
    step = converge(world, spec(10, "v3", strategy, progressDeadlineSeconds=30, rollbackOnFailure=True))
    assert not step.failed and not step.rolled_back


def test_no_rollback_without_a_complete_revision():
    world = World(make_nodes(2))
    v1 = spec(2, "v1", progressDeadlineSeconds=30, rollbackOnFailure=True)
    world.broken.add(v1.template_hash)
    step = world.run(v1, rounds=100, tick=5.0)
    assert step.failed and not step.rolled_back
    assert "Not rolled back: no earlier revision ever completed" in step.message


def test_a_failing_rollback_is_not_rolled_back_again():
    world = World(make_nodes(2))
    v1 = spec(2, "v1", progressDeadlineSeconds=30, rollbackOnFailure=True)
    converge(world, v1)
    v2 = spec(2, "v2", progressDeadlineSeconds=30, rollbackOnFailure=True)
    world.broken.update({v1.template_hash, v2.template_hash})  # the old revision broke too (e.g. its database is gone)
    for p in list(world.pods):
        world.pods.remove(p)  # its pods died with it
    step = world.run(v2, rounds=200, tick=5.0)
    assert step.failed and step.finished and reason(step) == "ProgressDeadlineExceeded"
    assert world.record["rolled_back_from"]["reason"] == "RolledBack"


def test_progress_deadline_applies_after_completion_too():
    """A run waiting for a replacement that never gets ready ends at the deadline."""
    world = World(make_nodes(2))
    v1 = spec(2, "v1", progressDeadlineSeconds=30)
    converge(world, v1)
    world.broken.add(v1.template_hash)
    world.pods = world.pods[:1]
    step = world.run(v1, rounds=100, tick=5.0)
    assert step.finished and step.failed
