"""Faults in the task's loop (issue 12): a node lost while acting, the grace before pods of an unreachable node are
replaced, what the record keeps across runs. The loop runs against a simulated fleet with a simulated clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plugin_utils_helpers import spec
from workload_action_helpers import Clock

from ansible_collections.hostfleet.workloads.plugins.plugin_utils import workload_task
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.sync import reconcile
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod, classify
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.unreachable import (
    first_unreachable,
    next_placement,
    toleration_seconds,
    unseen_pods,
)
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_task import INFO_MODULE, NODE_MODULE, WorkloadError, WorkloadTask, lost_connection

# -- the pure parts ---------------------------------------------------------------------------------


def test_toleration_seconds_of_the_unreachable_taint():
    def tmpl(*tolerations):
        return {"spec": {"tolerations": list(tolerations)}}

    assert toleration_seconds(None) is None and toleration_seconds(tmpl()) is None
    assert toleration_seconds(tmpl({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 7})) == 7
    assert toleration_seconds(tmpl({"key": "node.kubernetes.io/unreachable", "operator": "Exists"})) == float("inf")
    assert toleration_seconds(tmpl({"operator": "Exists"})) == float("inf")  # tolerates every taint
    assert toleration_seconds(tmpl({"key": "node.kubernetes.io/not-ready", "tolerationSeconds": 3})) is None
    assert toleration_seconds(tmpl({"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "tolerationSeconds": 3})) is None


def test_unseen_pods_are_unknown_within_their_grace_then_lost():
    placement = {"b": {"web-1": "r1", "web-2": "r2"}}
    templates = {"r2": {"spec": {"tolerations": [{"key": "node.kubernetes.io/unreachable", "tolerationSeconds": 100}]}}}
    at_10 = {p.name: p.unknown for p in unseen_pods(placement, {"b": 0.0}, templates, 40, now=10)}
    at_50 = {p.name: p.unknown for p in unseen_pods(placement, {"b": 0.0}, templates, 40, now=50)}
    assert at_10 == {"web-1": True, "web-2": True}
    assert at_50 == {"web-1": False, "web-2": True}, "a pod's own tolerationSeconds replaces the grace"
    # A kind that never replaces pods: they are plain lost pods for its planner.
    assert not any(p.unknown for p in unseen_pods(placement, {"b": 0.0}, templates, None, now=1))
    pods = unseen_pods(placement, {"b": 0.0}, templates, 40, now=10)
    view = classify(pods, [Node("a", True), Node("b", False)])
    assert [p.name for p in view.active] == ["web-1", "web-2"] and not view.lost
    view = classify(unseen_pods(placement, {"b": 0.0}, {}, 40, now=41), [Node("a", True), Node("b", False)])
    assert [p.name for p in view.lost] == ["web-1", "web-2"] and not view.active


def test_the_first_time_a_node_was_unreachable_survives_runs():
    assert first_unreachable({"b": 5.0}, ["b", "c"], {"c": 9.0}, now=20) == {"b": 5.0, "c": 9.0}
    assert first_unreachable({}, ["b"], {}, now=20) == {"b": 20}
    assert first_unreachable({"b": 5.0}, [], {}, now=20) == {}, "a node that answers again starts afresh"


names = st.sampled_from([f"p{i}" for i in range(8)])
node_names = st.sampled_from(["a", "b", "c"])


@settings(max_examples=200, deadline=None)
@given(
    stored=st.dictionaries(node_names, st.dictionaries(names, st.just("r1"), max_size=4), max_size=3),
    seen_nodes=st.sets(node_names),
    seen_pods=st.dictionaries(names, node_names, max_size=6),
    starts=st.lists(st.tuples(node_names, names), max_size=4),
    stops=st.lists(st.tuples(node_names, names), max_size=4),
)
def test_next_placement_forgets_nothing_it_cannot_see(stored, seen_nodes, seen_pods, starts, stops):
    seen = {n: [ObservedPod(p, n, "r0", "Running", True, 0.0, 0.0) for p, on in seen_pods.items() if on == n] for n in seen_nodes}
    after = next_placement(stored, seen, [(n, p, "r2") for n, p in starts], stops)
    for node, pods in stored.items():
        if node not in seen_nodes:
            assert after.get(node, {}) == pods, "an unseen node keeps what the record placed there; no stop reaches it"
    for node in seen_nodes:
        expected = {p.name for p in seen[node]} - {p for n, p in stops if n == node} | {p for n, p in starts if n == node}
        assert set(after.get(node, {})) == expected


def test_what_counts_as_a_lost_connection():
    assert lost_connection({"unreachable": True, "msg": "Failed to connect to the host via ssh"})
    assert lost_connection({"failed": True, "msg": "Module result deserialization failed: No start of json char found"})
    assert lost_connection({"failed": True, "rc": 255, "msg": "MODULE FAILURE"})
    assert lost_connection({"failed": True, "msg": "Shared connection to 10.77.17.12 closed."})
    assert lost_connection({"failed": True, "msg": "pod web-1: spec.containers[0].image: invalid"}) is None
    assert lost_connection({"changed": True}) is None


# -- the loop against a simulated fleet ---------------------------------------------------------------


class SimFleet:
    """Nodes that run the pod module's and pod_info's contracts in memory; a node may be down, or drop mid-act."""

    def __init__(self, clock, hosts=("a", "b", "c")):
        self.clock = clock
        self.hosts = list(hosts)
        self.pods = {h: {} for h in hosts}
        self.records = dict.fromkeys(hosts)
        self.down = set()
        self.drop_while_acting = set()  # the act runs there, then the connection dies (no result)
        self.module_failure = {}
        self.going_down = set()  # the module fails (e.g. systemd refuses jobs during shutdown), then the host is gone
        self.asked = []

    def groups_of(self, host):
        return ["lab"]

    def host_vars(self, host):
        return {}

    def emit_warnings(self, results):
        pass

    def run_module(self, module, args_per_host, check_mode=None):
        self.asked.append((module, sorted(args_per_host)))
        out = {}
        for host, args in args_per_host.items():
            if host in self.down:
                out[host] = {"unreachable": True, "msg": "Failed to connect to the host via ssh: Connection timed out"}
                continue
            if module == INFO_MODULE:
                pods = [dict(p, owner={"kind": "Deployment", "name": "web"}) for p in self.pods[host].values()]
                out[host] = {"pods": pods, "owner_records": {"Deployment/web": self.records[host]}, "observed_at": self.clock.now}
                continue
            assert module == NODE_MODULE
            if host in self.module_failure:
                out[host] = {"failed": True, "msg": self.module_failure[host]}
                if host in self.going_down:
                    self.down.add(host)
                continue
            for name in args.get("remove", ()):
                self.pods[host].pop(name, None)
            for pod in args.get("pods", ()):
                self.pods[host][pod["name"]] = {
                    "name": pod["name"],
                    "revision": pod["revision"],
                    "phase": "Running",
                    "ready": True,
                    "ready_since": self.clock.now,
                    "created": self.clock.now,
                }
            self.records[host] = args["owner_record"]
            if host in self.drop_while_acting:
                self.drop_while_acting.discard(host)
                self.down.add(host)
                out[host] = {"failed": True, "msg": "Module result deserialization failed: No start of json char found"}
            else:
                out[host] = {"changed": True}
        return out

    def where(self):
        return {h: len(p) for h, p in self.pods.items()}


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(workload_task, "time", clock)
    return clock


def run(fleet, deployment, grace=40, wait=True, timeout=300):
    task = WorkloadTask(fleet, "Deployment", "web", "/var/lib/hostfleet", check_mode=False, grace=grace, track_placement=True)
    observation = task.observe()

    def plan(rec, obs, at):
        return reconcile(deployment, rec, obs.nodes, obs.pods, obs.usage, at)

    step, observation, _steps, timed_out = task.converge(plan, wait, timeout, lambda s, n: "", observation, observation.record())
    return task, step, observation, timed_out


def test_a_stopped_node_keeps_its_replicas_for_the_grace_then_they_move(clock):
    fleet = SimFleet(clock)
    deployment = spec(replicas=6, name="web")
    run(fleet, deployment)
    assert fleet.where() == {"a": 2, "b": 2, "c": 2}
    fleet.down.add("b")
    started = clock.now
    task, step, observation, timed_out = run(fleet, deployment, grace=40)
    assert not timed_out and step.done
    assert fleet.where() == {"a": 3, "b": 2, "c": 3}
    assert clock.now - started >= 40, "not replaced before the grace ran out"
    # b was asked again during the grace, not at every round, and not after it.
    tries = [asked for module, asked in fleet.asked if module == INFO_MODULE and "b" in asked]
    assert 5 <= len(tries) <= 10, len(tries)
    # b's pods are still counted where the record placed them: lost now, never claimed gone.
    assert sorted(p.name for p in observation.unseen) == sorted(fleet.pods["b"]) and not any(p.unknown for p in observation.unseen)


def test_the_grace_continues_across_runs(clock):
    fleet = SimFleet(clock)
    deployment = spec(replicas=6, name="web")
    run(fleet, deployment)
    fleet.down.add("b")
    down_at = clock.now
    # A run without waiting (the controller role's timer) only notes since when b is unreachable.
    task, step, observation, _steps = run(fleet, deployment, wait=False)
    assert fleet.where() == {"a": 2, "b": 2, "c": 2} and step.status["availableReplicas"] == 4
    assert sorted(p.name for p in observation.unseen if p.unknown) == sorted(fleet.pods["b"])
    assert all(r["fleet"]["unreachable_since"] == {"b": down_at} for h, r in fleet.records.items() if h != "b")
    clock.now += 30
    run(fleet, deployment, wait=False)
    assert fleet.where() == {"a": 2, "b": 2, "c": 2}, "30 s into a 40 s grace: nothing moves"
    clock.now += 15
    run(fleet, deployment, wait=False)
    assert fleet.where() == {"a": 3, "b": 2, "c": 3}, "the next run after the grace replaces them at once"


def test_a_blip_shorter_than_the_grace_replaces_nothing(clock):
    fleet = SimFleet(clock)
    deployment = spec(replicas=6, name="web")
    run(fleet, deployment)
    fleet.down.add("b")
    original_sleep = clock.sleep

    def sleep(seconds):
        original_sleep(seconds)
        if clock.now > 1020:
            fleet.down.discard("b")

    clock.sleep = sleep
    task, step, observation, timed_out = run(fleet, deployment)
    assert step.done and fleet.where() == {"a": 2, "b": 2, "c": 2}
    assert not observation.unseen and not observation.unreachable_since
    assert all(r["fleet"]["unreachable_since"] == {} for r in fleet.records.values())


def test_a_node_lost_while_acting_is_a_new_observation_not_a_failure(clock):
    fleet = SimFleet(clock)
    run(fleet, spec(replicas=6, name="web"))
    fleet.drop_while_acting.add("b")
    task, step, observation, timed_out = run(fleet, spec(replicas=6, version="v2", name="web"), grace=5)
    assert step.done and not timed_out
    assert "b" in task.lost or "b" in observation.unreachable
    revisions = {p["revision"] for h in ("a", "c") for p in fleet.pods[h].values()}
    assert len(revisions) == 1 and sum(len(fleet.pods[h]) for h in ("a", "c")) == 6


def test_a_module_failure_on_a_reachable_node_still_fails_the_task(clock):
    fleet = SimFleet(clock)
    fleet.module_failure["b"] = "pod web-x: could not write the unit file: Permission denied"
    with pytest.raises(WorkloadError, match="acting on nodes failed.*Permission denied"):
        run(fleet, spec(replicas=6, name="web"))


def test_a_node_that_fails_an_act_and_then_does_not_answer_is_lost_not_a_failure(clock):
    fleet = SimFleet(clock)
    run(fleet, spec(replicas=6, name="web"))
    fleet.module_failure["b"] = "converging pods failed: systemctl start failed (4): something odd"
    fleet.going_down.add("b")
    task, step, observation, timed_out = run(fleet, spec(replicas=6, version="v2", name="web"), grace=5)
    assert step.done and "b" in observation.unreachable
    assert sum(len(fleet.pods[h]) for h in ("a", "c")) == 6


def test_a_rollout_completes_while_old_pods_sit_on_a_node_past_its_grace(clock):
    fleet = SimFleet(clock)
    run(fleet, spec(replicas=6, name="web"))
    fleet.down.add("b")
    task, step, observation, timed_out = run(fleet, spec(replicas=6, version="v2", name="web"), grace=5)
    assert step.done and not timed_out, step.waiting_for
    assert len(observation.unseen) == 2 and not any(p.unknown for p in observation.unseen)
    assert sum(len(fleet.pods[h]) for h in ("a", "c")) == 6 and len({p["revision"] for p in fleet.pods["a"].values()}) == 1
