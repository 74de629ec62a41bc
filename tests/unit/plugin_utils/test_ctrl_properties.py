"""Property tests: the invariants of the Deployment controller and the scheduler, over generated fleets.

A small simulator plays the part of the action plugin and the hosts: it
applies each Step (stops remove pods, starts create pods that become ready
after a few rounds, or never for a broken template), while nodes fail and
come back, templates change, replicas change and Deployments are paused.
The invariants, stated once:

1. RollingUpdate never stops pods so that fewer than ``replicas -
   maxUnavailable`` are available (unless fewer already were), and never
   starts pods beyond ``replicas + maxSurge`` pods on ready nodes.
2. Recreate never has pods of two revisions at the same time (pods on
   NotReady nodes included: they may still run).
3. With healthy nodes and pods that become ready, a rollout converges within
   a bounded number of rounds, whatever happened before.
4. Re-planning a converged state plans nothing.
5. Pods are only ever started on nodes that are eligible (Ready, node
   selector and affinity, capacity, anti-affinity) and never stopped on
   NotReady nodes.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field, replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.spec import parse_deployment_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.sync import reconcile
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod, is_available
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.replicaset import parse_replicaset_spec, reconcile_replicaset
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node, NodeUsage, Resources

SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
# HOSTFLEET_PROPERTY_SCALE=10 runs ten times as many examples (a deeper search than the default run).
SCALE = int(os.environ.get("HOSTFLEET_PROPERTY_SCALE", "1"))
ZONES = ("a", "b", "c")


# -- the simulator ------------------------------------------------------------------


@dataclass
class Sim:
    nodes: list[Node]
    delays: dict[str, int | None]  # version → rounds until ready (None: never)
    usage: dict[str, NodeUsage] = field(default_factory=dict)
    pods: list[ObservedPod] = field(default_factory=list)
    age: dict[str, int] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)  # pod-template hash → version
    record: dict | None = None
    now: float = 1000.0

    def ready_nodes(self):
        return {n.name for n in self.nodes if n.ready}

    def active(self):
        ready = self.ready_nodes()
        return [p for p in self.pods if p.node in ready and p.phase not in ("Succeeded", "Failed")]

    def apply(self, step):
        ready = self.ready_nodes()
        for stop in step.stops:
            assert stop.node in ready, f"stop on NotReady node {stop.node}"
        stopped = {s.name for s in step.stops}
        self.pods = [p for p in self.pods if p.name not in stopped]
        names = {p.name for p in self.pods}
        for start in step.starts:
            assert start.node in ready, f"start on NotReady node {start.node}"
            assert start.name not in names, f"name collision {start.name}"
            names.add(start.name)
            self.pods.append(ObservedPod(start.name, start.node, start.revision, "Running", False, None, self.now))
            self.age[start.name] = 0
        self.record = step.record

    def tick(self, seconds=1.0):
        self.now += seconds
        pods = []
        for pod in self.pods:
            if pod.node in self.ready_nodes() and pod.phase == "Running" and not pod.ready:
                self.age[pod.name] += 1
                delay = self.delays.get(self.versions.get(pod.revision))
                if delay is not None and self.age[pod.name] >= delay:
                    pod = replace(pod, ready=True, ready_since=self.now)
            pods.append(pod)
        self.pods = pods

    def set_ready(self, name, ready):
        self.nodes = [replace(n, ready=ready) if n.name == name else n for n in self.nodes]

    def crash(self, index):
        active = self.active()
        if active:
            victim = active[index % len(active)]
            self.pods = [replace(p, phase="Failed", ready=False, ready_since=None) if p.name == victim.name else p for p in self.pods]


@functools.cache
def _spec(name, replicas, version, strategy, surge, unavailable, min_ready, deadline, paused, rollback, pod_extra):
    pod_spec = {"containers": [{"name": "main", "command": ["/bin/sleep", version]}]}
    pod_spec.update({key: json.loads(value) for key, value in pod_extra})
    raw = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "api"}},
        "template": {"metadata": {"labels": {"app": "api"}}, "spec": pod_spec},
        "minReadySeconds": min_ready,
        "progressDeadlineSeconds": deadline,
        "paused": paused,
        "rollbackOnFailure": rollback,
    }
    if strategy == "Recreate":
        raw["strategy"] = {"type": "Recreate"}
    else:
        raw["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}
    return parse_deployment_spec(name, raw)


# -- generators ------------------------------------------------------------------------

budget = st.one_of(st.integers(0, 3), st.sampled_from(["0%", "10%", "25%", "50%", "100%"]))


@st.composite
def budgets(draw):
    surge, unavailable = draw(budget), draw(budget)
    if surge in (0, "0%") and unavailable in (0, "0%"):
        unavailable = 1
    return surge, unavailable


@st.composite
def fleets(draw, max_nodes=5, capacity=False):
    count = draw(st.integers(1, max_nodes))
    nodes = []
    for i in range(1, count + 1):
        labels = {"kubernetes.io/hostname": f"n{i}", "zone": ZONES[(i - 1) % len(ZONES)]}
        if draw(st.booleans()):
            labels["disk"] = "ssd"
        cap = None
        if capacity and draw(st.booleans()):
            cap = Resources(draw(st.sampled_from([500, 1000, 2000])), None, draw(st.integers(1, 6)))
        nodes.append(Node(f"n{i}", True, labels, cap))
    return nodes


TEMPLATE = st.tuples(st.just("template"), st.sampled_from(["v1", "v2", "v3", "v4"]))
EVENT = st.one_of(
    TEMPLATE,
    TEMPLATE,
    st.tuples(st.just("scale"), st.integers(0, 9)),
    st.tuples(st.just("fail"), st.integers(1, 5)),
    st.tuples(st.just("recover"), st.integers(1, 5)),
    st.tuples(st.just("crash"), st.integers(0, 20)),
    st.tuples(st.just("pause"), st.booleans()),
)


def timeline(max_rounds=30):
    return st.lists(st.one_of(st.none(), st.none(), EVENT), min_size=5, max_size=max_rounds)


def delays(broken):
    """Rounds until a version's pods are ready; v1 (the first rollout) is always healthy, later ones may be broken."""
    choice = st.sampled_from([1, 2, 3, None, None]) if broken else st.sampled_from([1, 2, 3])
    return st.fixed_dictionaries({"v1": st.sampled_from([1, 2]), **dict.fromkeys(("v2", "v3", "v4"), choice)})


def play(sim, events, make_spec, on_step, *, failures=True, pauses=True, quiet=0):
    """Run a timeline: one event (maybe) per round, then reconcile, check, apply, tick; then ``quiet`` calm rounds."""
    state = {"version": "v1", "replicas": None, "paused": False}
    node_names = [n.name for n in sim.nodes]
    for event in list(events) + [None] * quiet:
        if event is not None:
            kind, value = event
            if kind == "template":
                state["version"] = value
            elif kind == "scale":
                state["replicas"] = value
            elif kind in ("fail", "recover") and failures:
                sim.set_ready(node_names[(value - 1) % len(node_names)], kind == "recover")
            elif kind == "crash" and failures:
                sim.crash(value)
            elif kind == "pause" and pauses:
                state["paused"] = value
        spec = make_spec(state)
        sim.versions[spec.template_hash] = state["version"]
        step = reconcile(spec, sim.record, sim.nodes, sim.pods, sim.usage, sim.now)
        on_step(sim, spec, step)
        sim.apply(step)
        sim.tick()
    return state


# -- 1. RollingUpdate budgets -------------------------------------------------------------


def check_budgets(sim, spec, step):
    """Invariant 1, judged on the observation the step was planned from."""
    max_total = spec.replicas + spec.max_surge_for()
    min_available = spec.replicas - spec.max_unavailable_for()
    active = sim.active()
    available_before = sum(1 for p in active if is_available(p, spec.min_ready_seconds, sim.now))
    stopped = {s.name for s in step.stops}
    available_after = sum(1 for p in active if p.name not in stopped and is_available(p, spec.min_ready_seconds, sim.now))
    assert available_after >= min(available_before, min_available), step.description
    assert len(active) + len(step.starts) <= max(len(active), max_total), step.description


@settings(max_examples=300 * SCALE, **SETTINGS)
@given(fleets(), st.integers(0, 8), budgets(), st.integers(0, 2), st.integers(2, 8), st.booleans(), delays(broken=True), timeline())
def test_rolling_update_never_breaks_its_budgets(nodes, replicas, budget_pair, min_ready, deadline, rollback, version_delays, events):
    surge, unavailable = budget_pair
    sim = Sim(nodes, version_delays)

    def make_spec(state):
        return _spec(
            "api",
            state["replicas"] if state["replicas"] is not None else replicas,
            state["version"],
            "RollingUpdate",
            surge,
            unavailable,
            min_ready,
            max(deadline, min_ready + 1),
            state["paused"],
            rollback,
            (),
        )

    play(sim, events, make_spec, check_budgets, quiet=12)


FAILURE_EVENT = st.one_of(
    st.none(),
    st.tuples(st.just("scale"), st.integers(0, 9)),
    st.tuples(st.just("fail"), st.integers(1, 5)),
    st.tuples(st.just("recover"), st.integers(1, 5)),
    st.tuples(st.just("crash"), st.integers(0, 20)),
)


@settings(max_examples=150 * SCALE, **SETTINGS)
@given(
    fleets(),
    st.integers(1, 8),
    budgets(),
    st.integers(2, 6),
    st.booleans(),
    st.sampled_from([None, None, 3]),
    st.lists(FAILURE_EVENT, min_size=10, max_size=30),
)
def test_failed_rollouts_hold_or_roll_back_within_budgets(nodes, replicas, budget_pair, deadline, rollback, new_delay, events):
    """A healthy v1, then a broken (or slow) v2 while nodes fail, pods crash and replicas change."""
    surge, unavailable = budget_pair
    sim = Sim(nodes, {"v1": 1, "v2": new_delay})
    state = {"replicas": replicas}

    def make_spec(version, replicas):
        return _spec("api", replicas, version, "RollingUpdate", surge, unavailable, 0, deadline, False, rollback, ())

    v1 = make_spec("v1", replicas)
    sim.versions[v1.template_hash] = "v1"
    for _round in range(6):
        sim.apply(reconcile(v1, sim.record, sim.nodes, sim.pods, None, sim.now))
        sim.tick()
    node_names = [n.name for n in sim.nodes]
    for event in events:
        if event is not None:
            kind, value = event
            if kind == "scale":
                state["replicas"] = value
            elif kind == "crash":
                sim.crash(value)
            else:
                sim.set_ready(node_names[(value - 1) % len(node_names)], kind == "recover")
        spec = make_spec("v2", state["replicas"])
        sim.versions[spec.template_hash] = "v2"
        step = reconcile(spec, sim.record, sim.nodes, sim.pods, None, sim.now)
        check_budgets(sim, spec, step)
        if step.rolled_back:
            assert step.failed and rollback
        sim.apply(step)
        sim.tick()


# -- 2. Recreate: never two revisions ---------------------------------------------------------


@settings(max_examples=200 * SCALE, **SETTINGS)
@given(fleets(), st.integers(0, 8), delays(broken=True), timeline())
def test_recreate_never_runs_two_revisions(nodes, replicas, version_delays, events):
    sim = Sim(nodes, version_delays)

    def make_spec(state):
        return _spec(
            "api", state["replicas"] if state["replicas"] is not None else replicas, state["version"], "Recreate", 0, 0, 0, 8, state["paused"], True, ()
        )

    def check(sim, spec, step):
        running = [p for p in sim.pods if p.phase not in ("Succeeded", "Failed")]  # NotReady nodes included
        if step.starts:
            started = {s.revision for s in step.starts}
            assert len(started) == 1
            assert {p.revision for p in running} <= started, step.description
        after = {p.revision for p in running if p.name not in {s.name for s in step.stops}} | {s.revision for s in step.starts}
        assert len(after) <= 1

    play(sim, events, make_spec, check, quiet=12)


# -- 3 + 4. Convergence, and a converged plan is empty ------------------------------------------


@settings(max_examples=200 * SCALE, **SETTINGS)
@given(
    fleets(),
    st.integers(0, 10),
    budgets(),
    st.sampled_from(["RollingUpdate", "RollingUpdate", "Recreate"]),
    st.integers(0, 2),
    delays(broken=False),
    timeline(15),
    st.sampled_from(["v1", "v2", "v3", "v4"]),
)
def test_healthy_rollouts_converge_and_then_plan_nothing(nodes, replicas, budget_pair, strategy, min_ready, version_delays, events, final_version):
    surge, unavailable = budget_pair
    sim = Sim(nodes, version_delays)

    def make_spec(state):
        return _spec(
            "api",
            state["replicas"] if state["replicas"] is not None else replicas,
            state["version"],
            strategy,
            surge,
            unavailable,
            min_ready,
            600,
            state["paused"],
            False,
            (),
        )

    # a turbulent past (no node failures: healthy fleet), then the final spec
    state = play(sim, events, make_spec, lambda *_: None, failures=False)
    state.update(version=final_version, paused=False)
    spec = make_spec(state)
    sim.versions[spec.template_hash] = final_version
    bound = 10 + (spec.replicas + 2) * (3 + 2 + min_ready) * 2
    for _round in range(bound):
        step = reconcile(spec, sim.record, sim.nodes, sim.pods, None, sim.now)
        sim.apply(step)
        if step.done:
            break
        sim.tick()
    assert step.done, (step.description, step.waiting_for)
    assert {p.revision for p in sim.pods} <= {spec.template_hash}
    assert len(sim.pods) == spec.replicas
    for _round in range(3):
        sim.tick(50.0)
        again = reconcile(spec, sim.record, sim.nodes, sim.pods, None, sim.now)
        assert again.empty and again.done and not again.pending
        sim.apply(again)


# -- 5. Placement eligibility --------------------------------------------------------------------

ANTI = (
    "affinity",
    {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "api"}}, "topologyKey": "kubernetes.io/hostname"}]
        }
    },
)
SSD_AFFINITY = (
    "affinity",
    {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]},
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["c"]}]},
                ]
            }
        }
    },
)
NOT_A = ("nodeSelector", {"zone": "b"})
SPREAD = (
    "topologySpreadConstraints",
    [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "api"}}}],
)
REQUESTS = ("containers", [{"name": "main", "command": ["/bin/sleep", "x"], "resources": {"requests": {"cpu": "400m"}}}])
POD_EXTRAS = st.sampled_from([(), (ANTI,), (SSD_AFFINITY,), (NOT_A,), (SPREAD,), (REQUESTS,), (REQUESTS, SPREAD), (ANTI, SSD_AFFINITY)])


def eligible(node, extra):
    extra = dict(extra)
    if "nodeSelector" in extra and any(node.labels.get(k) != v for k, v in extra["nodeSelector"].items()):
        return False
    if extra.get("affinity") == SSD_AFFINITY[1]:
        return node.labels.get("disk") == "ssd" or node.labels.get("zone") == "c"
    return node.ready


@settings(max_examples=200 * SCALE, **SETTINGS)
@given(fleets(capacity=True), st.integers(0, 9), budgets(), POD_EXTRAS, st.dictionaries(st.sampled_from(["n1", "n2", "n3"]), st.integers(0, 2)), timeline(20))
def test_pods_only_go_to_eligible_nodes(nodes, replicas, budget_pair, pod_extra, other_pods, events):
    surge, unavailable = budget_pair
    usage = {name: NodeUsage(pods=n, cpu_millis=100 * n) for name, n in other_pods.items()}
    sim = Sim(nodes, {"v1": 1, "v2": 2, "v3": 1, "v4": None}, usage)
    extra_by_version = {}

    def make_spec(state):
        extras = tuple(e if e[0] != "containers" else ("containers", [{**e[1][0], "command": ["/bin/sleep", state["version"]]}]) for e in pod_extra)
        spec = _spec(
            "api",
            state["replicas"] if state["replicas"] is not None else replicas,
            state["version"],
            "RollingUpdate",
            surge,
            unavailable,
            0,
            10,
            state["paused"],
            False,
            _freeze(extras),
        )
        extra_by_version[spec.template_hash] = pod_extra
        return spec

    def check(sim, spec, step):
        by_name = {n.name: n for n in sim.nodes}
        for start in step.starts:
            node = by_name[start.node]
            assert node.ready and eligible(node, extra_by_version[start.revision]), (start, node)
        for node in sim.nodes:
            starts_here = [s for s in step.starts if s.node == node.name]
            if not starts_here:
                continue
            # pods being stopped still hold their resources; dead (Failed) ones do not, as in Kubernetes
            on_node = [p for p in sim.pods if p.node == node.name and p.phase != "Failed"] + starts_here
            extras = dict(extra_by_version[starts_here[0].revision])
            if node.capacity is not None:
                cpu = sum(400 if "containers" in dict(extra_by_version.get(p.revision, ())) else 0 for p in on_node)
                assert cpu + sim.usage.get(node.name, NodeUsage()).cpu_millis <= node.capacity.cpu_millis
                assert len(on_node) + sim.usage.get(node.name, NodeUsage()).pods <= node.capacity.pods
            if "affinity" in extras and "podAntiAffinity" in extras["affinity"]:
                assert len(on_node) == 1, (node.name, [p.name for p in on_node])
        if "topologySpreadConstraints" in dict(pod_extra) and step.starts:
            # Each placement kept its zone within maxSkew 1 of the emptiest zone; counts only grow while
            # placing, so every zone that got a pod ends within 1 of the minimum. (The controllers place
            # before they choose what to stop, so every active pod counts.)
            zone = {n.name: n.labels["zone"] for n in sim.nodes if n.ready}
            counts = dict.fromkeys(zone.values(), 0)
            for p in sim.active():
                counts[zone[p.node]] += 1
            for start in step.starts:
                counts[zone[start.node]] += 1
            for start in step.starts:
                assert counts[zone[start.node]] - min(counts.values()) <= 1, (start, counts)

    play(sim, events, make_spec, check)


def _freeze(extras):
    """Hashable form of pod spec extras for the spec cache."""
    return tuple((k, json.dumps(v, sort_keys=True)) for k, v in extras)


# -- ReplicaSet: exactly N, eligible nodes ------------------------------------------------------------


@settings(max_examples=100 * SCALE, **SETTINGS)
@given(fleets(), st.lists(st.integers(0, 8), min_size=1, max_size=6), st.lists(st.tuples(st.integers(1, 5), st.booleans()), max_size=6))
def test_replicaset_keeps_exactly_n_on_ready_nodes(nodes, sizes, node_events):
    sim = Sim(nodes, {"v1": 1})
    names = [n.name for n in nodes]
    for i, size in enumerate(sizes):
        raw = {
            "replicas": size,
            "selector": {"matchLabels": {"app": "api"}},
            "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "main", "command": ["/bin/sleep", "v1"]}]}},
        }
        spec = parse_replicaset_spec("web", raw)
        sim.versions[spec.template_hash] = "v1"
        if i < len(node_events):
            index, ready = node_events[i]
            sim.set_ready(names[(index - 1) % len(names)], ready)
        for _round in range(3):
            step = reconcile_replicaset(spec, sim.record, sim.nodes, sim.pods, None, sim.now)
            sim.apply(step)
            sim.tick()
        if sim.ready_nodes():
            assert len(sim.active()) == size
        again = reconcile_replicaset(spec, sim.record, sim.nodes, sim.pods, None, sim.now)
        assert again.empty


def test_frozen_extras_are_stable():
    assert _freeze((ANTI,)) == _freeze((ANTI,))
