"""Taints and tolerations (issue 15): the inventory's taints, Kubernetes' ToleratesTaint, placement of every kind,
the DaemonSet's own tolerations and NoExecute evictions."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plugin_utils_helpers import raw_spec
from plugin_utils_helpers import template as deployment_template
from test_workload_task_faults import Clock, SimFleet, run

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, validate_pod_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils import workload_task
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.spec import parse_deployment_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.registry import controller
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.constraints import parse_constraints
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node, node_from_inventory
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.one_node import eligible_nodes
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.placement import PlacementState, PodTemplate
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.taints import (
    EFFECTS,
    Taint,
    Toleration,
    admission_refusal,
    daemonset_tolerations,
    eviction_time,
    first_seen,
    intolerable_preferences,
    parse_taints,
    parse_tolerations,
    untolerated,
)
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.taint_eviction import RECORD_KEY, TaintEvictions, evictions
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_task import Observation


@pytest.fixture(name="clock")
def simulated_clock(monkeypatch):
    """The simulated clock of the fault tests (test_workload_task_faults): the task's time, advanced by the fleet."""
    clock = Clock()
    monkeypatch.setattr(workload_task, "time", clock)
    return clock


CONTAINER = {"name": "main", "command": ["/bin/sleep", "infinity"]}
KEY1 = Taint("key1", "value1", "NoSchedule")


def node(name, *taints, ready=True):
    return Node(name, ready, {"kubernetes.io/hostname": name}, None, tuple(taints))


# -- the inventory's taints ----------------------------------------------------------------------------------------


def test_taints_in_kubernetes_form_from_the_inventory():
    host_vars = {"hostfleet_node_taints": [{"key": "key1", "value": "value1", "effect": "NoSchedule"}, {"key": "example.com/gpu", "effect": "NoExecute"}]}
    built = node_from_inventory("node1", True, host_vars, [])
    assert built.taints == (Taint("key1", "value1", "NoSchedule"), Taint("example.com/gpu", "", "NoExecute"))
    assert Node.from_json(built.to_json()) == built
    assert "taints" not in node_from_inventory("node2", True, {}, []).to_json()  # a node without taints is as before


@pytest.mark.parametrize(
    ("value", "path", "words"),
    [
        ({"key": "a"}, "hostvars['node1'].hostfleet_node_taints", "must be a list"),
        ([{"key": "a", "effect": "NoSchedule"}, "a=b:NoSchedule"], "hostvars['node1'].hostfleet_node_taints[1]", "must be a mapping"),
        ([{"value": "b", "effect": "NoSchedule"}], "hostvars['node1'].hostfleet_node_taints[0].key", "is required"),
        ([{"key": "a b", "effect": "NoSchedule"}], "hostvars['node1'].hostfleet_node_taints[0].key", ""),
        ([{"key": "a", "value": "-bad-", "effect": "NoSchedule"}], "hostvars['node1'].hostfleet_node_taints[0].value", "not a valid label value"),
        ([{"key": "a", "value": ["x"], "effect": "NoSchedule"}], "hostvars['node1'].hostfleet_node_taints[0].value", "must be a string"),
        ([{"key": "a"}], "hostvars['node1'].hostfleet_node_taints[0].effect", "is required"),
        ([{"key": "a", "effect": "NoRun"}], "hostvars['node1'].hostfleet_node_taints[0].effect", "Unsupported value: 'NoRun'"),
        ([{"key": "a", "effect": "NoSchedule", "timeAdded": "x"}], "hostvars['node1'].hostfleet_node_taints[0].timeAdded", "unknown field"),
        (
            [{"key": "a", "value": "1", "effect": "NoSchedule"}, {"key": "a", "value": "2", "effect": "NoSchedule"}],
            "hostvars['node1'].hostfleet_node_taints[1]",
            "unique by key and effect",
        ),
    ],
)
def test_bad_taints_are_refused_naming_host_index_and_field(value, path, words):
    with pytest.raises(SpecError) as err:
        node_from_inventory("node1", True, {"hostfleet_node_taints": value}, [])
    assert err.value.path == path
    assert words in err.value.message


def test_same_key_with_two_effects_is_allowed():
    assert len(parse_taints([{"key": "a", "effect": "NoSchedule"}, {"key": "a", "effect": "NoExecute"}], "n")) == 2


# -- ToleratesTaint ------------------------------------------------------------------------------------------------


def test_the_kubernetes_io_example_tolerations():
    """kubectl taint nodes node1 key1=value1:NoSchedule, and the two tolerations of the docs' pod."""
    equal = parse_tolerations([{"key": "key1", "operator": "Equal", "value": "value1", "effect": "NoSchedule"}])
    exists = parse_tolerations([{"key": "key1", "operator": "Exists", "effect": "NoSchedule"}])
    assert untolerated([KEY1], equal) is None and untolerated([KEY1], exists) is None
    assert untolerated([KEY1], ()) == KEY1
    assert untolerated([KEY1], parse_tolerations([{"key": "key1", "operator": "Equal", "value": "other", "effect": "NoSchedule"}])) == KEY1
    assert untolerated([KEY1], parse_tolerations([{"key": "key1", "operator": "Exists", "effect": "NoExecute"}])) == KEY1
    # The operator defaults to Equal; an empty effect matches every effect; an empty key with Exists every taint.
    assert untolerated([KEY1], parse_tolerations([{"key": "key1", "value": "value1"}])) is None
    assert untolerated([KEY1, Taint("other", "", "NoExecute")], parse_tolerations([{"operator": "Exists"}])) is None


def reference_tolerates(toleration, taint):
    """Kubernetes' v1.Toleration.ToleratesTaint, transcribed from k8s.io/api/core/v1/toleration.go."""
    if len(toleration.effect) > 0 and toleration.effect != taint.effect:
        return False
    if len(toleration.key) > 0 and toleration.key != taint.key:
        return False
    if toleration.operator in ("", "Equal"):
        return toleration.value == taint.value
    if toleration.operator == "Exists":
        return True
    return False


KEYS = st.sampled_from(["", "key1", "key2", "example.com/gpu"])
VALUES = st.sampled_from(["", "value1", "value2"])
TAINTS = st.builds(Taint, KEYS.filter(bool), VALUES, st.sampled_from(EFFECTS))
TOLERATIONS = st.builds(
    Toleration, KEYS, st.sampled_from(["Equal", "Exists"]), VALUES, st.sampled_from(("",) + EFFECTS), st.one_of(st.none(), st.integers(0, 100))
)


@given(TOLERATIONS, TAINTS)
def test_tolerates_is_kubernetes_toleratestaint(toleration, taint):
    assert toleration.tolerates(taint) == reference_tolerates(toleration, taint)
    if toleration.key == "" and toleration.operator == "Exists" and toleration.effect == "":
        assert toleration.tolerates(taint)  # tolerates everything
    if toleration.effect and toleration.effect != taint.effect:
        assert not toleration.tolerates(taint)


@given(st.lists(TAINTS, max_size=4), st.lists(TOLERATIONS, max_size=3))
def test_untolerated_and_preferences_follow_tolerates(taints, tolerations):
    blocking = [t for t in taints if t.effect != "PreferNoSchedule" and not any(x.tolerates(t) for x in tolerations)]
    assert untolerated(taints, tolerations) == (blocking[0] if blocking else None)
    preferring = [x for x in tolerations if x.effect in ("", "PreferNoSchedule")]
    assert intolerable_preferences(taints, tolerations) == sum(
        1 for t in taints if t.effect == "PreferNoSchedule" and not any(x.tolerates(t) for x in preferring)
    )


def test_tolerations_parsed_from_the_validated_spec():
    spec = {"containers": [CONTAINER], "tolerations": [{"key": "key1", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]}
    validate_pod_spec(spec, pod_network=None)
    assert parse_constraints(spec).tolerations == (Toleration("key1", "Exists", "", "NoExecute", 30),)
    assert parse_constraints({"containers": [CONTAINER]}).tolerations == ()


# -- placement -----------------------------------------------------------------------------------------------------


def template(tolerations=None, revision="r1"):
    spec = {"containers": [CONTAINER], **({"tolerations": tolerations} if tolerations is not None else {})}
    return PodTemplate(revision, {"app": "x", "pod-template-hash": revision}, parse_constraints(spec))


def names():
    counter = itertools.count()
    return lambda: f"p{next(counter)}"


def test_no_schedule_filters_the_node_and_the_message_names_the_taint():
    fleet = PlacementState([node("node1", KEY1), node("node2"), node("node3")])
    placed, why = fleet.place(template(), 4, names())
    assert sorted({p.node for p in placed}) == ["node2", "node3"] and why == ""
    only = PlacementState([node("node1", KEY1), node("node2", Taint("key2", "", "NoExecute")), node("node3", ready=False)])
    placed, why = only.place(template(), 1, names())
    assert placed == []
    assert why == "0/3 nodes are available: 1 node(s) had untolerated taint {key1: value1}, 1 node(s) had untolerated taint {key2: }, 1 node(s) were not ready."


def test_a_tolerating_pod_may_go_to_the_tainted_node():
    fleet = PlacementState([node("node1", KEY1)])
    placed, why = fleet.place(template([{"key": "key1", "operator": "Equal", "value": "value1", "effect": "NoSchedule"}]), 2, names())
    assert [p.node for p in placed] == ["node1", "node1"] and why == ""


def test_prefer_no_schedule_is_avoided_while_another_node_fits():
    prefer = Taint("key1", "value1", "PreferNoSchedule")
    fleet = PlacementState([node("node1", prefer), node("node2"), node("node3")])
    placed, _why = fleet.place(template(), 4, names())
    assert [p.node for p in placed] == ["node2", "node3", "node2", "node3"]  # even spread yields to the taint
    alone = PlacementState([node("node1", prefer)])
    assert [p.node for p in alone.place(template(), 1, names())[0]] == ["node1"]  # ... but it is not a filter
    tolerated = PlacementState([node("node1", prefer), node("node2")])
    placed, _why = tolerated.place(template([{"key": "key1", "operator": "Exists"}]), 2, names())
    assert sorted(p.node for p in placed) == ["node1", "node2"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(TAINTS, max_size=2), min_size=1, max_size=5),
    st.lists(TOLERATIONS.map(lambda t: t if t.effect == "NoExecute" or t.seconds is None else Toleration(t.key, t.operator, t.value, t.effect)), max_size=2),
    st.integers(1, 12),
)
def test_no_pod_is_ever_placed_on_a_node_with_an_untolerated_noschedule_taint(node_taints, tolerations, count):
    fleet_nodes = [node(f"n{i}", *taints) for i, taints in enumerate(node_taints)]
    raw = [{"key": t.key, "operator": t.operator, **({"value": t.value} if t.value else {}), **({"effect": t.effect} if t.effect else {})} for t in tolerations]
    tmpl = template(raw or None)
    placed, why = PlacementState(fleet_nodes).place(tmpl, count, names())

    def blocks(taint):
        return taint.effect in ("NoSchedule", "NoExecute") and not any(reference_tolerates(x, taint) for x in tolerations)

    allowed = {n.name for n in fleet_nodes if not any(blocks(t) for t in n.taints)}
    assert {p.node for p in placed} <= allowed
    assert (len(placed) == count) == bool(allowed)  # nothing else limits this fleet
    if not allowed:
        assert "untolerated taint" in why
    # PreferNoSchedule: a node with fewer untolerated ones is always used before one with more.
    score = {n.name: intolerable_preferences(n.taints, tmpl.constraints.tolerations) for n in fleet_nodes}
    if placed:
        assert score[placed[0].node] == min(score[n] for n in allowed)


def test_one_node_workloads_cronjob_and_pod_skip_untolerated_nodes():
    fleet = [node("node1", KEY1), node("node2", Taint("key2", "", "NoExecute")), node("node3", Taint("soft", "", "PreferNoSchedule"))]
    assert eligible_nodes(fleet, template().constraints) == ["node3"]
    assert eligible_nodes(fleet, template([{"operator": "Exists"}]).constraints) == ["node1", "node2", "node3"]


# -- every kind, at the planner level ------------------------------------------------------------------------------

POD = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [CONTAINER]}}
JOB_POD = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "main", "command": ["/bin/true"]}], "restartPolicy": "Never"}}
KINDS = {
    "Deployment": {"replicas": 4, "selector": {"matchLabels": {"app": "x"}}, "template": POD},
    "ReplicaSet": {"replicas": 4, "selector": {"matchLabels": {"app": "x"}}, "template": POD},
    "ReplicationController": {"replicas": 4, "selector": {"app": "x"}, "template": POD},
    "StatefulSet": {"replicas": 4, "serviceName": "x", "selector": {"matchLabels": {"app": "x"}}, "template": POD},
    "DaemonSet": {"selector": {"matchLabels": {"app": "x"}}, "template": POD},
    "Job": {"completions": 4, "parallelism": 4, "template": JOB_POD},
}


def first_step(kind, fleet, pods=(), record=None, details=None):
    ctl = controller(kind)
    spec = ctl.parse_spec("x", KINDS[kind])
    observation = Observation(fleet, list(pods), {}, {n.name: None for n in fleet}, {}, details or {})
    return ctl.reconcile(spec, record, observation, 1000.0)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_honours_no_schedule(kind):
    step = first_step(kind, [node("node1", KEY1), node("node2"), node("node3")])
    started = {s.node for s in step.starts}
    assert started and "node1" not in started
    everywhere = first_step(kind, [node("node1", KEY1)])
    assert not everywhere.starts
    if kind != "DaemonSet":  # a DaemonSet has no pod to place on an ineligible node
        assert any("untolerated taint {key1: value1}" in (p.reason if hasattr(p, "reason") else str(p)) for p in everywhere.pending), everywhere.pending


def test_a_cronjob_timer_node_is_eligible_only_when_tolerated():
    spec = controller("CronJob").parse_spec("x", {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": JOB_POD}}})
    constraints = spec.job.template.constraints
    assert eligible_nodes([node("node1", KEY1), node("node2")], constraints) == ["node2"]


# -- the DaemonSet's own tolerations -------------------------------------------------------------------------------


def test_daemon_pods_get_the_tolerations_kubernetes_adds():
    added = daemonset_tolerations((), host_network=False)
    for key, effect in [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ]:
        assert untolerated([Taint(key, "", effect)], added) is None
        assert eviction_time([Taint(key, "", effect)], added, {}, 0.0) is None  # never evicted
    network = Taint("node.kubernetes.io/network-unavailable", "", "NoSchedule")
    assert untolerated([network], added) == network
    assert untolerated([network], daemonset_tolerations((), host_network=True)) is None
    # The pod's own toleration of unreachable with seconds is replaced, as Kubernetes does: daemon pods stay.
    own = (Toleration("node.kubernetes.io/unreachable", "Exists", "", "NoExecute", 30), Toleration("key1", "Exists"))
    merged = daemonset_tolerations(own, host_network=False)
    assert Toleration("key1", "Exists") in merged and own[0] not in merged


def running(name, node_name, revision, created=0.0):
    return ObservedPod(name=name, node=node_name, revision=revision, phase="Running", ready=True, ready_since=created, created=created)


def test_a_daemonset_stays_on_a_node_tainted_with_what_it_tolerates_and_leaves_an_untolerated_noexecute():
    fleet = [node("node1", Taint("node.kubernetes.io/unschedulable", "", "NoSchedule")), node("node2", Taint("key2", "", "NoExecute")), node("node3")]
    step = first_step("DaemonSet", fleet)
    assert sorted(s.node for s in step.starts) == ["node1", "node3"]
    # Pods already running: a NoSchedule taint that came later lets it run on; an untolerated NoExecute one does not.
    current = first_step("DaemonSet", [node("a")]).record
    revision = current["current_hash"]
    pods = [running(f"x-{n}", n, revision) for n in ("node1", "node2", "node3")]
    later = [node("node1", KEY1), node("node2", Taint("key2", "", "NoExecute")), node("node3")]
    step = first_step("DaemonSet", later, pods, current)
    assert [s.node for s in step.stops] == ["node2"] and not step.starts
    assert step.status["desiredNumberScheduled"] == 1


# -- NoExecute -----------------------------------------------------------------------------------------------------


def test_eviction_time_as_the_taint_manager():
    taint = Taint("key1", "value1", "NoExecute")
    since = {taint.id: 100.0}
    assert eviction_time([taint], (), since, 50.0) == (-math.inf, taint)
    assert eviction_time([taint], (Toleration("key1", "Exists", "", "NoExecute"),), since, 50.0) is None  # forever
    timed = (Toleration("key1", "Equal", "value1", "NoExecute", 30),)
    assert eviction_time([taint], timed, since, 50.0) == (130.0, taint)  # from when the taint was first seen
    assert eviction_time([taint], timed, since, 200.0) == (230.0, taint)  # or the pod came, if later
    other = Taint("key2", "", "NoExecute")
    both = timed + (Toleration("key2", "Exists", "", "", 10),)
    assert eviction_time([taint, other], both, {taint.id: 100.0, other.id: 150.0}, 0.0) == (110.0, other)  # the smallest seconds
    assert eviction_time([Taint("key1", "value1", "NoSchedule")], (), {}, 0.0) is None  # NoSchedule evicts nothing


@given(st.lists(TAINTS, max_size=3), st.lists(TOLERATIONS, max_size=3), st.floats(0, 1000), st.floats(0, 1000))
def test_an_untolerated_noexecute_evicts_at_once_and_seconds_never_before_they_run_out(taints, tolerations, created, seen):
    since = {t.id: seen for t in taints}
    due = eviction_time(taints, tolerations, since, created)
    executing = [t for t in taints if t.effect == "NoExecute"]
    if any(not any(reference_tolerates(x, t) for x in tolerations) for t in executing):
        assert due is not None and due[0] == -math.inf
    elif due is not None:
        assert due[0] >= max(created, seen) and due[1] in executing


def test_first_seen_keeps_the_record_times_and_forgets_removed_taints():
    taint = Taint("key1", "value1", "NoExecute")
    assert first_seen({}, {"node1": (taint, KEY1)}, 10.0) == {"node1": {"key1=value1:NoExecute": 10.0}}
    assert first_seen({"node1": {taint.id: 5.0}}, {"node1": (taint,)}, 10.0) == {"node1": {taint.id: 5.0}}
    assert first_seen({"node1": {taint.id: 5.0}}, {"node1": ()}, 10.0) == {}


def deployment_record():
    return first_step("Deployment", [node("a")]).record


def test_taint_evictions_take_pods_out_of_the_observation_and_remember_when():
    record = deployment_record()
    revision = record["current_hash"]
    taint = Taint("key1", "value1", "NoExecute")
    fleet = [node("node1", taint), node("node2")]
    pods = [running("x-1", "node1", revision), running("x-2", "node2", revision)]
    observation = Observation(fleet, list(pods), {}, {"node1": record, "node2": record}, {})
    tracker = TaintEvictions("Deployment", "x")
    tracker.apply(observation, 1000.0)
    assert [e.pod.name for e in observation.evicted] == ["x-1"] and [p.name for p in observation.pods] == ["x-2"]
    assert tracker.with_times({"a": 1}, observation) == {"a": 1, RECORD_KEY: {"node1": {taint.id: 1000.0}}}
    # The replacement goes elsewhere: the Deployment's next step starts one pod, not on node1.
    spec = controller("Deployment").parse_spec("x", KINDS["Deployment"])
    step = controller("Deployment").reconcile(spec, record, observation, 1000.0)
    assert step.starts and all(s.node == "node2" for s in step.starts)
    # No NoExecute taint: the key goes away (a fleet without taints stores what it always stored).
    clean = Observation([node("node1")], list(pods), {}, {}, {})
    TaintEvictions("Deployment", "x").apply(clean, 1.0)
    assert clean.evicted == [] and TaintEvictions("Deployment", "x").with_times({"a": 1, RECORD_KEY: {}}, clean) == {"a": 1}


def test_toleration_seconds_count_from_the_first_run_that_saw_the_taint():
    tolerating = {**POD, "spec": {**POD["spec"], "tolerations": [{"key": "key1", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]}}
    spec = controller("Deployment").parse_spec("x", {**KINDS["Deployment"], "template": tolerating})
    record = controller("Deployment").reconcile(spec, None, Observation([node("a")], [], {}, {}, {}), 0.0).record
    revision = record["current_hash"]
    taint = Taint("key1", "", "NoExecute")
    pods = [running("x-1", "node1", revision)]
    first = Observation([node("node1", taint)], list(pods), {}, {"node1": record}, {})
    TaintEvictions("Deployment", "x").apply(first, 1000.0)
    assert first.evicted == []
    stored = dict(record, **{RECORD_KEY: first.taints_since})
    # A later run (a new task) reads the time from the record: 29 s on, the pod stays; 30 s on, it goes.
    for now, gone in ((1029.0, []), (1030.0, ["x-1"])):
        later = Observation([node("node1", taint)], list(pods), {}, {"node1": stored}, {})
        TaintEvictions("Deployment", "x").apply(later, now)
        assert [e.pod.name for e in later.evicted] == gone


def test_ended_job_pods_and_pods_of_unknown_revisions_are_not_evicted():
    taint = Taint("key1", "", "NoExecute")
    done = ObservedPod(name="j-1", node="node1", revision="r", phase="Succeeded", ready=False, ready_since=None, created=0.0)
    assert evictions("Job", {"node1": (taint,)}, [done], {"r": POD}, {}, 10.0) == []
    assert evictions("Deployment", {"node1": (taint,)}, [running("x-1", "node1", "gone")], {"r": POD}, {}, 10.0) == []
    assert [e.pod.name for e in evictions("DaemonSet", {"node1": (taint,)}, [running("d-1", "node1", "r")], {"r": POD}, {}, 10.0)] == ["d-1"]
    unreachable = Taint("node.kubernetes.io/unreachable", "", "NoExecute")
    assert evictions("DaemonSet", {"node1": (unreachable,)}, [running("d-1", "node1", "r")], {"r": POD}, {}, 10.0) == []


# -- the fleet loop: evicted pods are removed from their node and replaced elsewhere --------------------------------


class TaintedFleet(SimFleet):
    def __init__(self, clock, taints):
        super().__init__(clock)
        self.taints = taints

    def host_vars(self, host):
        return {"hostfleet_node_taints": self.taints[host]} if self.taints.get(host) else {}


def test_noexecute_evicts_running_replicas_which_run_again_elsewhere(clock):
    fleet = TaintedFleet(clock, {})
    deployment = parse_deployment_spec("web", raw_spec(6))
    run(fleet, deployment)
    assert fleet.where() == {"a": 2, "b": 2, "c": 2}
    fleet.taints["b"] = [{"key": "key1", "value": "value1", "effect": "NoExecute"}]
    _task, step, _observation, _timed_out = run(fleet, deployment)
    assert fleet.where() == {"a": 3, "b": 0, "c": 3} and step.done
    assert all(r[RECORD_KEY] == {"b": {"key1=value1:NoExecute": pytest.approx(clock.now, abs=60)}} for h, r in fleet.records.items())
    fleet.taints["b"] = [{"key": "key1", "value": "value1", "effect": "NoSchedule"}]
    run(fleet, deployment)
    assert fleet.where() == {"a": 3, "b": 0, "c": 3}  # NoSchedule evicts nothing, and takes nothing new
    assert not any(RECORD_KEY in r for r in fleet.records.values())


def test_toleration_seconds_run_across_runs_of_the_loop(clock):
    fleet = TaintedFleet(clock, {})
    tolerations = [{"key": "key1", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]
    deployment = parse_deployment_spec("web", dict(raw_spec(6), template=deployment_template(["/bin/sleep", "v1"], tolerations=tolerations)))
    run(fleet, deployment)
    fleet.taints["b"] = [{"key": "key1", "effect": "NoExecute"}]
    run(fleet, deployment, wait=False)
    assert fleet.where() == {"a": 2, "b": 2, "c": 2}
    clock.now += 25
    run(fleet, deployment, wait=False)
    assert fleet.where() == {"a": 2, "b": 2, "c": 2}, "25 s into 30: the pods stay"
    old = set(fleet.pods["b"])
    clock.now += 6
    run(fleet, deployment, wait=False)
    assert not old & set(fleet.pods["b"]), "the first run after the 30 s evicts them"
    # Their replacements may go to b (they tolerate the taint), for 30 s of their own, counted from their start.
    new = set(fleet.pods["b"])
    clock.now += 25
    run(fleet, deployment, wait=False)
    assert not new or new <= set(fleet.pods["b"])


def test_a_job_pod_evicted_by_noexecute_counts_failed_and_runs_again_on_a_tolerated_node():
    spec = controller("Job").parse_spec("x", {**KINDS["Job"], "completions": 2, "parallelism": 2, "backoffLimit": 3})
    fleet = [node("node1"), node("node2")]
    first = controller("Job").reconcile(spec, None, Observation(fleet, [], {}, {}, {}, {}), 1000.0)
    started = {s.name: s.node for s in first.starts}
    assert sorted(started.values()) == ["node1", "node2"]
    revision = first.record["template_hash"]
    details = {
        n: [{"name": name, "revision": revision, "phase": "Running", "ready": True, "created": 1000.0} for name, on in started.items() if on == n]
        for n in ("node1", "node2")
    }
    tainted = [node("node1", Taint("key1", "value1", "NoExecute")), node("node2")]
    pods = [running(name, on, revision, 1000.0) for name, on in started.items()]
    observation = Observation(tainted, pods, {}, {"node1": first.record, "node2": first.record}, {}, details)
    TaintEvictions("Job", "x").apply(observation, 1010.0)
    assert [e.pod.node for e in observation.evicted] == ["node1"] and details["node2"] == observation.details["node2"] and not observation.details["node1"]
    step = controller("Job").reconcile(spec, first.record, observation, 1010.0)
    assert step.status["failed"] == 1 and not step.starts, step.waiting_for  # Kubernetes' backoff after a failure
    later = controller("Job").reconcile(spec, step.record, observation, 1040.0)
    assert [s.node for s in later.starts] == ["node2"], later.waiting_for


def test_a_pod_bound_by_node_name_is_refused_only_by_an_untolerated_noexecute_taint():
    execute = Taint("key1", "value1", "NoExecute")
    assert admission_refusal("node1", [KEY1], ()) is None  # no scheduler: NoSchedule does not apply
    assert admission_refusal("node1", [KEY1, execute], ()) == (
        "spec.nodeName: node1 has untolerated taint {key1: value1} (NoExecute): the pod would be evicted at once"
    )
    assert admission_refusal("node1", [execute], (Toleration("key1", "Exists", "", "NoExecute", 60),)) is None


@pytest.mark.parametrize(("policy", "placed"), [(None, 1), ("Ignore", 1), ("Honor", 2)])
def test_spread_counts_tainted_nodes_unless_node_taints_policy_honor(policy, placed):
    """Kubernetes' nodeTaintsPolicy (default Ignore): zone a's only node is tainted; with Honor it is no domain."""
    constraint = {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "x"}}}
    if policy:
        constraint["nodeTaintsPolicy"] = policy
    spec = {"containers": [CONTAINER], "topologySpreadConstraints": [constraint]}
    tmpl = PodTemplate("r1", {"app": "x", "pod-template-hash": "r1"}, parse_constraints(spec))
    fleet = [Node("n1", True, {"zone": "a"}, None, (KEY1,)), Node("n2", True, {"zone": "b"})]
    got, why = PlacementState(fleet).place(tmpl, 2, names())
    assert len(got) == placed and all(p.node == "n2" for p in got)
    if placed == 1:
        assert "untolerated taint {key1: value1}" in why and "topology spread" in why
