# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property tests of the DaemonSet controller over a simulated fleet (daemonset_helpers.DaemonWorld).

While nodes fail and return, gain and lose the label, templates change (some
never get ready, some only on one node) and the strategy changes:

1. after every step, a node runs at most one pod of the DaemonSet, or two
   during a surge (one of the current revision, one older);
2. a stop that takes away a node's only available pod (a rolling replacement)
   never leaves more than maxUnavailable eligible nodes without an available pod;
   with maxSurge it never happens;
3. pods are never started or stopped on NotReady nodes (asserted by the world);
4. once every node is Ready and pods get ready, the DaemonSet converges: one
   pod per eligible node (of the current revision unless OnDelete), none on
   other nodes, and re-planning the converged state plans nothing.
"""

from __future__ import annotations

import os

from daemonset_helpers import DaemonWorld, ds, nodes, rolling
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import is_available

SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
SCALE = int(os.environ.get("HOSTFLEET_PROPERTY_SCALE", "1"))
EDGE = {"role": "edge"}

strategies = st.one_of(
    st.just({"type": "OnDelete"}),
    st.builds(rolling, st.sampled_from([1, 2, 3, "34%", "100%", 0]), st.sampled_from([0, 0, 1, 2, "50%"])).filter(
        lambda s: s["rollingUpdate"] != {"maxUnavailable": 0, "maxSurge": 0}
    ),
)
events = st.lists(
    st.one_of(
        st.tuples(st.just("template"), st.integers(0, 3), st.booleans(), st.booleans()),  # version, broken, stuck on node1
        st.tuples(st.just("fail"), st.integers(1, 5)),
        st.tuples(st.just("recover"), st.integers(1, 5)),
        st.tuples(st.just("label"), st.integers(1, 5)),
        st.tuples(st.just("strategy"), strategies),
        st.tuples(st.just("rounds"), st.integers(1, 4)),
    ),
    max_size=12,
)


def _spec(version, strategy, selector, deadline):
    return ds(f"v{version}", node_selector=EDGE if selector else None, strategy=strategy, progressDeadlineSeconds=deadline)


def _check_step(world, step, spec, before):
    """Invariants 1 and 2, on the pods right after ``step`` is applied (before they ripen)."""
    stopped = {s.name for s in step.stops}
    after = [p for p in before if p.name not in stopped]
    started = {s.name for s in step.starts}
    by_node = {}
    for p in after:
        by_node.setdefault(p.node, []).append(p)
    for s in step.starts:
        by_node.setdefault(s.node, []).append(s)
    ready = {n.name for n in world.nodes if n.ready}
    for node, pods in by_node.items():
        if node not in ready:
            continue  # untouchable: what was there stays (a template change may make both surge pods old)
        assert len(pods) <= 2, f"{node}: {[p.name for p in pods]}"
        if len(pods) == 2:
            assert {p.revision == spec.template_hash for p in pods} == {True, False}, f"{node}: {[p.name for p in pods]}"
    eligible = [n.name for n in world.nodes if spec.eligible(n)]
    surge, unavailable = spec.budgets(len(eligible))

    def has_available(node, pods):
        return any(p.node == node and p.name not in started and is_available(p, 0, world.now) for p in pods)

    # stops that took away the last available pod of an eligible node
    costly = {s.node for s in step.stops if s.node in eligible and has_available(s.node, before) and not has_available(s.node, after)}
    if costly:
        assert spec.rolling and surge == 0, f"stopped the only available pod on {costly}"
        lacking = [n for n in eligible if n not in ready or not has_available(n, after)]
        assert len(lacking) <= unavailable, (lacking, unavailable)


@settings(max_examples=60 * SCALE, **SETTINGS)
@given(
    count=st.integers(1, 5),
    labelled=st.sets(st.integers(1, 5)),
    selector=st.booleans(),
    strategy=strategies,
    deadline=st.sampled_from([600, 4]),
    history=events,
)
def test_daemonset_invariants_and_convergence(count, labelled, selector, strategy, deadline, history):
    world = DaemonWorld(nodes(count, labelled={f"node{i}" for i in labelled}))
    version = 0
    spec = _spec(version, strategy, selector, deadline)

    def play(rounds):
        for _unused in range(rounds):
            before = list(world.pods)
            step = world.step(spec)
            _check_step(world, step, spec, before)

    play(3)
    for event in history:
        kind = event[0]
        if kind == "template":
            version = event[1]
            spec = _spec(version, strategy, selector, deadline)
            if event[2]:
                world.broken.add(spec.template_hash)
            if event[3]:
                world.stuck.add(("node1", spec.template_hash))
        elif kind in ("fail", "recover") and event[1] <= count:
            world.set_ready(f"node{event[1]}", kind == "recover")
        elif kind == "label" and event[1] <= count:
            node = next(n for n in world.nodes if n.name == f"node{event[1]}")
            labels = dict(node.labels)
            if labels.pop("role", None) is None:
                labels.update(EDGE)
            world.set_labels(node.name, labels)
        elif kind == "strategy":
            strategy = event[1]
            spec = _spec(version, strategy, selector, deadline)
        elif kind == "rounds":
            play(event[1])
        play(1)

    # heal: every node Ready, every pod gets ready
    for node in list(world.nodes):
        world.set_ready(node.name, True)
    world.broken.clear()
    world.stuck.clear()
    step = None
    for _unused in range(40):
        before = list(world.pods)
        step = world.step(spec)
        _check_step(world, step, spec, before)
        if step.done:
            break
    assert step.done and step.complete and not step.pending, step.waiting_for
    eligible = {n.name for n in world.nodes if spec.eligible(n)}
    assert world.per_node() == {n.name: int(n.name in eligible) for n in world.nodes}
    if spec.rolling:
        assert all(p.revision == spec.template_hash for p in world.pods)
    assert step.status["desiredNumberScheduled"] == step.status["numberAvailable"] == len(eligible)
    assert step.status["numberMisscheduled"] == 0
    again = world.step(spec)
    assert again.empty and again.done and again.finished
