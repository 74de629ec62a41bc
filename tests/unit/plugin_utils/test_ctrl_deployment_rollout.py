"""Deployment rollouts: the budget arithmetic (Kubernetes' worked examples), Recreate, proportional scaling."""

from __future__ import annotations

import json

from plugin_utils_helpers import World, make_nodes, rolling, running, spec

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.scaling import proportional_targets
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.sync import reconcile


def converge(world, deployment, rounds=50):
    step = world.run(deployment, rounds)
    assert step.done, step.waiting_for
    return step


def revision_counts(world):
    counts = {}
    for pod in world.pods:
        counts[pod.revision] = counts.get(pod.revision, 0) + 1
    return counts


def test_first_rollout_creates_replicas_spread_and_converges():
    world = World(make_nodes(3))
    v1 = spec(6)
    step = world.reconcile(v1)
    assert len(step.starts) == 6 and not step.stops
    assert {n: len(a.start) for n, a in step.actions.items()} == {"node1": 2, "node2": 2, "node3": 2}
    assert step.status["conditions"][1]["reason"] == "NewReplicaSetCreated"
    assert step.templates[v1.template_hash]["metadata"]["labels"]["pod-template-hash"] == v1.template_hash
    world.apply(step)
    step = world.run(v1)
    assert step.done and step.complete and step.finished and not step.failed
    assert step.status["availableReplicas"] == 6 and step.status["updatedReplicas"] == 6
    assert [c["reason"] for c in step.status["conditions"]] == ["MinimumReplicasAvailable", "NewReplicaSetAvailable"]
    assert step.record["revisions"][v1.template_hash]["revision"] == 1


def test_kubernetes_worked_example_crashlooping_new_pods():
    """rolling.go: 10 replicas, maxSurge 3, maxUnavailable 2, the new pods never become available."""
    world = World(make_nodes(5))
    strategy = rolling(3, 2)
    converge(world, spec(10, "v1", strategy))
    v2 = spec(10, "v2", strategy)
    world.broken.add(v2.template_hash)
    # Step 1: 3 new pods (13 in total); 13 - minAvailable 8 - 3 new unavailable = 2 old pods go.
    step = world.reconcile(v2)
    assert (len(step.starts), len(step.stops)) == (3, 2)
    world.apply(step)
    # Step 2: 11 pods → 2 more new ones; 13 - 8 - 5 = 0: no old pod goes.
    step = world.reconcile(v2)
    assert (len(step.starts), len(step.stops)) == (2, 0)
    world.apply(step)
    # Step 3: stuck within budgets: 8 old available, 5 new crash-looping, 13 pods.
    step = world.reconcile(v2)
    assert step.empty
    assert world.available() == 8 and len(world.pods) == 13
    # Case 2 ("roll over"): a third template. The 5 crash-looping pods are now old and unhealthy:
    # 13 - 8 - 0 = 5 of them go first, the 8 available stay.
    v3 = spec(10, "v3", strategy)
    step = world.reconcile(v3)
    assert not step.starts
    assert sorted({s.revision for s in step.stops}) == [v2.template_hash] and len(step.stops) == 5
    world.apply(step)
    step = world.reconcile(v3)
    assert len(step.starts) == 5 and not step.stops
    world.apply(step)
    converge(world, v3)
    assert revision_counts(world) == {v3.template_hash: 10}


def test_kubernetes_worked_example_undo_cleans_up_the_crashlooping_pods():
    """Case 1: the user rolls back; the 5 unhealthy pods go, then the old revision scales back to 10."""
    world = World(make_nodes(5))
    strategy = rolling(3, 2)
    v1 = spec(10, "v1", strategy)
    converge(world, v1)
    v2 = spec(10, "v2", strategy)
    world.broken.add(v2.template_hash)
    world.run(v2, rounds=3)
    assert revision_counts(world) == {v1.template_hash: 8, v2.template_hash: 5}
    # Undo = the template of revision 1 again (what kubectl rollout undo writes into the spec).
    step = world.reconcile(v1)
    assert step.status["conditions"][1]["reason"] == "FoundNewReplicaSet"
    assert not step.starts and len(step.stops) == 5 and {s.revision for s in step.stops} == {v2.template_hash}
    world.apply(step)
    step = converge(world, v1)
    assert revision_counts(world) == {v1.template_hash: 10}
    assert step.record["revisions"][v1.template_hash]["revision"] == 3  # a new revision number, like kubectl


def assert_budgets(world, deployment, steps=60):
    """Drive a rollout and check the two budgets after every step (nodes stable)."""
    replicas = deployment.replicas
    surge, unavailable = deployment.max_surge_for(), deployment.max_unavailable_for()
    for _round in range(steps):
        before = world.available()
        step = world.reconcile(deployment)
        stopped = {s.name for s in step.stops}
        kept_available = sum(1 for p in world.pods if p.name not in stopped and p.ready)
        assert kept_available >= min(before, replicas - unavailable)
        assert len(world.pods) + len(step.starts) <= max(len(world.pods), replicas + surge)
        world.apply(step)
        if step.done:
            return step
    raise AssertionError("did not converge")


def test_default_budgets_25_percent():
    world = World(make_nodes(4))
    converge(world, spec(10))
    step = assert_budgets(world, spec(10, "v2"))
    assert step.done


def test_one_at_a_time_surge_without_unavailability():
    world = World(make_nodes(3))
    converge(world, spec(6, "v1", rolling(1, 0)))
    v2 = spec(6, "v2", rolling(1, 0))
    step = world.reconcile(v2)
    assert len(step.starts) == 1 and not step.stops  # the new pod is not available yet: nothing old goes
    world.apply(step)
    step = world.reconcile(v2)
    # the new pod is available: one old pod goes; no new one yet, 7 pods is the ceiling until the stop is done
    assert not step.starts and len(step.stops) == 1
    world.apply(step)
    step = world.reconcile(v2)
    assert len(step.starts) == 1 and not step.stops
    world.apply(step)
    assert_budgets(world, v2)


def test_no_surge_one_unavailable():
    world = World(make_nodes(3))
    converge(world, spec(6, "v1", rolling(0, 1)))
    v2 = spec(6, "v2", rolling(0, 1))
    step = world.reconcile(v2)
    assert not step.starts and len(step.stops) == 1
    world.apply(step)
    step = world.reconcile(v2)
    assert len(step.starts) == 1 and not step.stops
    world.apply(step)
    assert_budgets(world, v2)


def test_rollout_ends_evenly_spread():
    world = World(make_nodes(3))
    converge(world, spec(6, "v1", rolling(1, 0)))
    v2 = spec(6, "v2", rolling(1, 0))
    converge(world, v2)
    assert world.per_node() == {"node1": 2, "node2": 2, "node3": 2}


def test_recreate_stops_everything_then_starts_when_all_old_are_gone():
    world = World(make_nodes(3))
    recreate = {"type": "Recreate"}
    v1 = spec(4, "v1", recreate)
    converge(world, v1)
    v2 = spec(4, "v2", recreate)
    step = world.reconcile(v2)
    assert len(step.stops) == 4 and not step.starts
    assert step.waiting_for[0] == "4 old pod(s) to stop before the new revision starts"
    # The stops have not completed yet (same observation): still nothing new.
    again = reconcile(v2, step.record, world.nodes, world.pods, None, world.now)
    assert not again.starts
    world.apply(step)
    step = world.reconcile(v2)
    assert len(step.starts) == 4 and not step.stops
    world.apply(step)
    converge(world, v2)


def test_recreate_waits_for_old_pods_on_a_not_ready_node():
    world = World(make_nodes(2))
    recreate = {"type": "Recreate"}
    converge(world, spec(2, "v1", recreate))
    world.fail("node2")
    v2 = spec(2, "v2", recreate)
    step = world.reconcile(v2)
    assert [s.node for s in step.stops] == ["node1"] and not step.starts
    world.apply(step)
    step = world.reconcile(v2)
    assert not step.starts and any("NotReady node(s) node2" in w for w in step.waiting_for)
    world.recover("node2")
    step = world.reconcile(v2)
    assert [s.node for s in step.stops] == ["node2"]
    world.apply(step)
    converge(world, v2)


def test_recreate_replaces_lost_pods_of_the_current_revision():
    world = World(make_nodes(2))
    v1 = spec(2, "v1", {"type": "Recreate"})
    converge(world, v1)
    world.fail("node2")
    step = world.reconcile(v1)
    assert [(s.node, s.revision) for s in step.starts] == [("node1", v1.template_hash)]


def test_proportional_targets_kubernetes_docs_example():
    """10 → 15 replicas mid-rollout (maxSurge 3): 8 old + 5 new → 11 old + 7 new."""
    assert proportional_targets({"old": 8, "new": 5}, ["old", "new"], 15, 3, 13) == {"old": 11, "new": 7}
    # and back down to 10: 13 allowed again
    assert proportional_targets({"old": 11, "new": 7}, ["old", "new"], 10, 3, 18) == {"old": 8, "new": 5}
    # to zero: everything goes
    assert proportional_targets({"old": 3, "new": 2}, ["old", "new"], 0, 0, 5) == {"old": 0, "new": 0}


def test_scaling_mid_rollout_is_proportional():
    world = World(make_nodes(5))
    strategy = rolling(3, 2)
    v1 = spec(10, "v1", strategy)
    converge(world, v1)
    v2 = spec(10, "v2", strategy)
    world.broken.add(v2.template_hash)
    world.run(v2, rounds=3)
    assert revision_counts(world) == {v1.template_hash: 8, v2.template_hash: 5}
    step = world.reconcile(spec(15, "v2", strategy))
    started = {}
    for s in step.starts:
        started[s.revision] = started.get(s.revision, 0) + 1
    assert started == {v1.template_hash: 3, v2.template_hash: 2}
    world.apply(step)
    assert revision_counts(world) == {v1.template_hash: 11, v2.template_hash: 7}


def test_scaling_down_mid_rollout_keeps_availability():
    """Proportional scale-down would take available old pods; unavailable new ones are taken instead."""
    world = World(make_nodes(2))
    v1 = spec(4, "v1")
    converge(world, v1)
    v2 = spec(4, "v2")
    world.broken.add(v2.template_hash)
    world.run(v2, rounds=3)
    assert revision_counts(world) == {v1.template_hash: 3, v2.template_hash: 2}
    smaller = spec(3, "v2")  # maxSurge 1, maxUnavailable 0: at most 4 pods, 3 available
    step = world.reconcile(smaller)
    assert len(step.stops) == 1 and step.stops[0].revision == v2.template_hash
    world.apply(step)
    assert world.available() == 3 and len(world.pods) == 4


def test_failed_pods_are_removed_and_replaced():
    world = World(make_nodes(2))
    v1 = spec(2)
    converge(world, v1)
    dead = world.pods[0]
    world.pods[0] = running(dead.name, dead.node, dead.revision, ready=False, phase="Failed")
    step = world.reconcile(v1)
    assert [s.name for s in step.stops] == [dead.name]
    assert len(step.starts) == 1 and step.starts[0].name != dead.name
    assert step.stops[0].reason == "pod failed"


def test_scale_to_zero_and_back():
    world = World(make_nodes(2))
    converge(world, spec(4))
    step = world.reconcile(spec(0))
    assert len(step.stops) == 4
    world.apply(step)
    assert world.run(spec(0)).done
    converge(world, spec(2))
    assert len(world.pods) == 2


def test_step_is_json_and_inputs_are_untouched():
    world = World(make_nodes(2))
    v1 = spec(3)
    step = world.reconcile(v1)
    world.apply(step)
    record = json.loads(json.dumps(world.record))
    pods = list(world.pods)
    step = reconcile(v1, record, world.nodes, pods, None, world.now)
    assert record == world.record and pods == world.pods
    assert json.loads(json.dumps(step.to_json()))["record"] == step.record


def test_same_inputs_same_step():
    world = World(make_nodes(3))
    converge(world, spec(6))
    v2 = spec(6, "v2")
    a = reconcile(v2, world.record, world.nodes, world.pods, None, world.now)
    b = reconcile(v2, world.record, list(reversed(world.nodes)), list(reversed(world.pods)), None, world.now)
    assert a.to_json() == b.to_json()


def test_observation_as_json_dicts():
    world = World(make_nodes(2))
    v1 = spec(2)
    converge(world, v1)
    a = reconcile(v1, world.record, world.nodes, world.pods, None, world.now)
    b = reconcile(v1, world.record, [n.to_json() for n in world.nodes], [p.to_json() for p in world.pods], {"node1": {"pods": 3}}, world.now)
    assert a.to_json() == b.to_json()
