"""--check's forecast, ONE path for every kind (controllers/preview.py, as workload_task.simulate calls it): the waves
of a whole rollout against a fleet where every started pod is available at once."""

from __future__ import annotations

from plugin_utils_helpers import World, make_nodes, rolling, spec

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.sync import reconcile
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.preview import apply_step, waves


def converge(world, deployment, rounds=60):
    step = world.run(deployment, rounds)
    assert step.done, step.waiting_for
    return step


def preview(deployment, world, min_ready_seconds=None):
    """The waves of ``deployment`` from the world's state (minReadySeconds: the spec's, unless given)."""
    min_ready = deployment.min_ready_seconds if min_ready_seconds is None else min_ready_seconds
    return waves(lambda rec, pods, at: reconcile(deployment, rec, world.nodes, pods, None, at), world.record, world.pods, world.now, min_ready)


def moved(plan, key):
    return [sum(len(v) for v in w[key].values()) for w in plan]


def test_preview_lists_the_waves_of_a_rollout():
    world = World(make_nodes(3))
    converge(world, spec(6, "v1", rolling(1, 0)))
    _step, plan = preview(spec(6, "v2", rolling(1, 0)), world)
    assert moved(plan, "start") == [1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0]
    assert moved(plan, "stop") == [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1]
    assert plan[0]["description"][0].startswith("start api-")
    # deterministic: the first wave names what a real step starts
    step = reconcile(spec(6, "v2", rolling(1, 0)), world.record, world.nodes, world.pods, None, world.now)
    assert plan[0]["start"] == step.wave()["start"]


def test_preview_of_a_converged_deployment_is_empty():
    world = World(make_nodes(2))
    v1 = spec(2)
    converge(world, v1)
    assert preview(v1, world)[1] == []


def test_the_waves_of_a_4_replica_deployment_with_min_ready_seconds_30_list_the_whole_rollout():
    """Issue 13: with minReadySeconds the forecast stopped after the first wave (its started pods never became
    available in the what-if world); they are available for the spec's minReadySeconds already."""
    world = World(make_nodes(2))
    v1, v2 = spec(4, "v1", rolling(1, 0), minReadySeconds=30), spec(4, "v2", rolling(1, 0), minReadySeconds=30)
    first = reconcile(v1, None, world.nodes, [], None, world.now)
    world.pods, world.record = apply_step([], first, world.now, 30), first.record
    step, plan = preview(v2, world)
    assert step.done, step.waiting_for
    assert sum(moved(plan, "start")) == 4 and sum(moved(plan, "stop")) == 4 and moved(plan, "start") == [1, 0, 1, 0, 1, 0, 1, 0]
    # What the check mode showed before: the first wave only.
    _step, short = preview(v2, world, min_ready_seconds=0)
    assert len(short) == 1
