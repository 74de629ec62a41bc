"""The StatefulSet controller: ordered identities pinned to the node that holds their data."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
from plugin_utils_helpers import make_nodes

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.retention import claims_to_delete_on_delete
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.spec import parse_statefulset_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.sync import reconcile_statefulset


def raw(replicas=3, version="v1", claims=("data",), **fields):
    container = {"name": "main", "command": ["/bin/sleep", version]}
    if claims:
        container["volumeMounts"] = [{"name": c, "mountPath": f"/{c}"} for c in claims]
    result = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "serviceName": "web",
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}},
    }
    if claims:
        result["volumeClaimTemplates"] = [{"metadata": {"name": c}, "spec": {"accessModes": ["ReadWriteOnce"]}} for c in claims]
    result.update(fields)
    return result


def sts(replicas=3, version="v1", **fields):
    return parse_statefulset_spec("web", raw(replicas, version, **fields))


class Sim:
    """Applies Steps like the action plugin + node layer. Pods in ``broken`` revisions never get ready."""

    def __init__(self, nodes=None, ready_immediately=True):
        self.nodes = nodes or make_nodes(3)
        self.pods: list[ObservedPod] = []
        self.record = None
        self.now = 100.0
        self.broken: set[str] = set()
        self.ready_immediately = ready_immediately
        self.deleted: dict[str, list[str]] = {}
        self.steps = []

    def step(self, spec, apply=True):
        step = reconcile_statefulset(spec, self.record, self.nodes, self.pods, None, self.now)
        self.steps.append(step)
        if apply:
            self.apply(step)
        return step

    def apply(self, step):
        ready_nodes = {n.name for n in self.nodes if n.ready}
        stopped = {(s.name, s.node) for s in step.stops}
        assert all(n in ready_nodes for _unused, n in stopped)
        self.pods = [p for p in self.pods if (p.name, p.node) not in stopped]
        for start in step.starts:
            assert start.node in ready_nodes
            ready = self.ready_immediately and start.revision not in self.broken
            self.pods.append(ObservedPod(start.name, start.node, start.revision, "Running", ready, self.now if ready else None, self.now))
        for node, claims in step.volumes_to_delete.items():
            self.deleted.setdefault(node, []).extend(claims)
        self.record = copy.deepcopy(step.record)
        self.now += 1

    def run(self, spec, rounds=40):
        for _unused in range(rounds):
            step = self.step(spec)
            if step.finished:
                return step
        raise AssertionError("did not finish")

    def where(self):
        return {p.name: p.node for p in self.pods}

    def set_ready(self, node, ready):
        self.nodes = [replace(n, ready=ready) if n.name == node else n for n in self.nodes]


def names(step):
    return sorted(s.name for s in step.starts)


# -- spec ------------------------------------------------------------------------------------------


def test_spec_defaults_and_normal_form():
    spec = sts()
    body = spec.to_json()
    assert body["podManagementPolicy"] == "OrderedReady"
    assert body["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 1}}
    assert body["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert body["ordinals"] == {"start": 0} and body["serviceName"] == "web"
    assert body["volumeClaimTemplates"] == [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]
    assert list(spec.ordinals) == [0, 1, 2]


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"bogus": 1}, "spec.bogus"),
        ({"podManagementPolicy": "Random"}, "spec.podManagementPolicy"),
        ({"updateStrategy": {"type": "OnDelete", "rollingUpdate": {}}}, "spec.updateStrategy.rollingUpdate"),
        ({"updateStrategy": {"rollingUpdate": {"partition": -1}}}, "spec.updateStrategy.rollingUpdate.partition"),
        ({"updateStrategy": {"rollingUpdate": {"maxUnavailable": 0}}}, "spec.updateStrategy.rollingUpdate.maxUnavailable"),
        ({"updateStrategy": {"rollingUpdate": {"surge": 1}}}, "spec.updateStrategy.rollingUpdate.surge"),
        ({"persistentVolumeClaimRetentionPolicy": {"whenScaled": "Keep"}}, "spec.persistentVolumeClaimRetentionPolicy.whenScaled"),
        ({"ordinals": {"begin": 1}}, "spec.ordinals.begin"),
        ({"unsafeMoveOnNodeLoss": "yes"}, "spec.unsafeMoveOnNodeLoss"),
        ({"volumeClaimTemplates": [{"metadata": {}}]}, "spec.volumeClaimTemplates[0].metadata.name"),
        ({"volumeClaimTemplates": [{"metadata": {"name": "Data"}}]}, "spec.volumeClaimTemplates[0].metadata.name"),
        ({"selector": {"matchLabels": {"app": "other"}}}, "spec.template.metadata.labels"),
    ],
)
def test_spec_errors_name_the_field(fields, path):
    with pytest.raises(SpecError) as error:
        parse_statefulset_spec("web", raw(**fields))
    assert error.value.path == path


def test_mount_of_an_undeclared_claim_is_refused_and_selector_is_immutable():
    with pytest.raises(SpecError) as error:
        parse_statefulset_spec("web", raw(claims=()) | {"template": raw()["template"]})
    assert "volumeMounts[0].name" in error.value.path
    with pytest.raises(SpecError) as error:
        parse_statefulset_spec("web", raw(), stored_selector={"matchLabels": {"app": "x"}})
    assert error.value.path == "spec.selector"


# -- creation ------------------------------------------------------------------------------------


def test_ordered_ready_creates_one_at_a_time_in_order_with_identity_templates():
    sim = Sim(ready_immediately=False)
    spec = sts()
    first = sim.step(spec)
    assert names(first) == ["web-0"] and not first.done
    start = first.starts[0]
    assert start.template_key == "web-0" and start.key == "web-0"
    template = first.templates["web-0"]
    labels = template["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "web-0" and labels["apps.kubernetes.io/pod-index"] == "0"
    assert labels["pod-template-hash"] == start.revision and labels["controller-revision-hash"] == f"web-{start.revision}"
    assert template["spec"]["hostname"] == "web-0"
    assert template["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}}]
    # web-0 not ready: nothing more
    assert sim.step(spec).empty
    assert any("web-0" in w for w in sim.steps[-1].waiting_for)
    sim.pods = [replace(p, ready=True, ready_since=sim.now) for p in sim.pods]
    assert names(sim.step(spec)) == ["web-1"]
    sim.pods = [replace(p, ready=True, ready_since=sim.now) for p in sim.pods]
    assert names(sim.step(spec)) == ["web-2"]
    sim.pods = [replace(p, ready=True, ready_since=sim.now) for p in sim.pods]
    final = sim.step(spec)
    assert final.done and final.finished and final.empty
    assert final.status["replicas"] == final.status["readyReplicas"] == final.status["updatedReplicas"] == 3
    assert final.status["currentRevision"] == final.status["updateRevision"]
    assert len(set(sim.where().values())) == 3  # spread by the scheduler
    assert final.record["pins"] == {str(i): sim.where()[f"web-{i}"] for i in range(3)}


def test_parallel_starts_all_at_once_and_ordinals_start():
    sim = Sim(ready_immediately=False)
    step = sim.step(sts(podManagementPolicy="Parallel", ordinals={"start": 5}))
    assert names(step) == ["web-5", "web-6", "web-7"]


# -- scaling and retention -------------------------------------------------------------------------


def test_scale_down_highest_first_retains_claims_and_scale_up_returns_to_the_same_nodes():
    sim = Sim()
    sim.run(sts(3))
    before = sim.where()
    one = sts(1)
    s1 = sim.step(one)
    assert [s.name for s in s1.stops] == ["web-2"] and not s1.volumes_to_delete
    s2 = sim.step(one)
    assert [s.name for s in s2.stops] == ["web-1"]
    last = sim.run(one)
    assert last.done and sorted(sim.where()) == ["web-0"] and not sim.deleted
    assert sim.record["pins"] == {str(i): before[f"web-{i}"] for i in range(3)}  # retained claims keep their pins
    sim.run(sts(3))
    assert sim.where() == before


def test_delete_when_scaled_names_exactly_the_claims_of_the_removed_ordinals():
    fields = {"persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete"}}
    sim = Sim()
    sim.run(sts(3, **fields))
    before = sim.where()
    sim.run(sts(1, **fields))
    expected: dict[str, list[str]] = {}
    for i in (1, 2):
        expected.setdefault(before[f"web-{i}"], []).append(f"data-web-{i}")
    assert {n: sorted(c) for n, c in sim.deleted.items()} == expected
    assert set(sim.record["pins"]) == {"0"}
    # never named while the pod still runs (it is stopped in an earlier step)
    for step in sim.steps:
        stopping = {f"data-{s.name}" for s in step.stops}
        assert not stopping & {c for claims in step.volumes_to_delete.values() for c in claims}


def test_retain_never_names_a_claim_and_when_deleted_helper():
    sim = Sim()
    spec = sts(3)
    sim.run(spec)
    assert claims_to_delete_on_delete(sim.record, spec) == {}
    deleting = sts(3, persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete"})
    where = sim.where()
    expected = {}
    for i in range(3):
        expected.setdefault(where[f"web-{i}"], []).append(f"data-web-{i}")
    assert claims_to_delete_on_delete(sim.record, deleting) == {n: tuple(sorted(c)) for n, c in expected.items()}


# -- fencing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("visible", [True, False])
def test_identity_waits_for_its_node_unless_unsafe_move(visible):
    sim = Sim()
    sim.run(sts(3))
    node = sim.where()["web-1"]
    sim.set_ready(node, False)
    if not visible:  # the real observation: a NotReady node reports nothing
        sim.pods = [p for p in sim.pods if p.node != node]
    spec = sts(3)
    for _unused in range(3):
        step = sim.step(spec)
        assert "web-1" not in names(step)
    assert f"node {node} holding web-1's volume is not ready" in " ".join(step.waiting_for)
    assert any(f"node {node} holding web-1's volume is not ready" in p.reason for p in step.pending)
    assert "web-1" in step.lost and not step.done
    unsafe = sts(3, unsafeMoveOnNodeLoss=True)
    moved = sim.step(unsafe)
    assert names(moved) == ["web-1"] and moved.starts[0].node != node
    assert sim.record["pins"]["1"] == moved.starts[0].node
    # the node comes back with its stale copy: it is stopped, the moved one stays
    sim.set_ready(node, True)
    if not visible:
        sim.pods.append(ObservedPod("web-1", node, moved.starts[0].revision, "Running", True, 0.0, 0.0))
    back = sim.step(unsafe)
    assert [(s.name, s.node) for s in back.stops] == [("web-1", node)]
    assert sim.run(unsafe).done


def test_node_returning_resumes_in_place():
    sim = Sim()
    sim.run(sts(3))
    where = sim.where()
    node = where["web-1"]
    sim.set_ready(node, False)
    sim.pods = [p for p in sim.pods if p.node != node]  # the pod died with the node
    sim.step(sts(3))
    sim.set_ready(node, True)
    step = sim.step(sts(3))
    assert [(s.name, s.node) for s in step.starts] == [("web-1", node)]


# -- updates -------------------------------------------------------------------------------------


def test_rolling_update_highest_first_with_partition():
    sim = Sim()
    sim.run(sts(4))
    v2 = sts(4, "v2", updateStrategy={"rollingUpdate": {"partition": 2}})
    order = []
    for _unused in range(20):
        step = sim.step(v2)
        order += [s.name for s in step.stops]
        if step.finished:
            break
    assert order == ["web-3", "web-2"]
    assert step.done and step.status["updatedReplicas"] == 2 and step.status["currentReplicas"] == 2
    assert step.status["currentRevision"] != step.status["updateRevision"]
    # partition lowered: the rest follows, highest first
    v2b = sts(4, "v2")
    order = []
    for _unused in range(20):
        step = sim.step(v2b)
        order += [s.name for s in step.stops]
        if step.finished:
            break
    assert order == ["web-1", "web-0"] and step.status["currentRevision"] == step.status["updateRevision"]


def test_max_unavailable_under_parallel():
    sim = Sim()
    sim.run(sts(4, podManagementPolicy="Parallel"))
    step = sim.step(sts(4, "v2", podManagementPolicy="Parallel", updateStrategy={"rollingUpdate": {"maxUnavailable": 2}}))
    assert sorted(s.name for s in step.stops) == ["web-2", "web-3"]


def test_on_delete_only_replaces_missing_pods():
    sim = Sim()
    sim.run(sts(3))
    v2 = sts(3, "v2", updateStrategy={"type": "OnDelete"})
    step = sim.step(v2)
    assert step.empty and step.done
    sim.pods = [p for p in sim.pods if p.name != "web-1"]
    step = sim.step(v2)
    assert names(step) == ["web-1"] and step.starts[0].revision == v2.template_hash


def test_revert_of_a_broken_template_unsticks_ordered_ready():
    sim = Sim()
    v1 = sts(3)
    sim.run(v1)
    v2 = sts(3, "broken")
    sim.broken.add(v2.template_hash)
    for _unused in range(6):
        sim.step(v2)
    stuck = [p for p in sim.pods if p.revision == v2.template_hash]
    assert [p.name for p in stuck] == ["web-2"] and not stuck[0].ready
    assert sim.steps[-1].empty  # Kubernetes would wait here for ever, and so do we while v2 is asked for
    revert = sim.step(v1)
    assert [s.name for s in revert.stops] == ["web-2"]
    last = sim.run(v1)
    assert last.done and all(p.revision == v1.template_hash for p in sim.pods)
    numbers = {e["revision"] for e in last.record["revisions"].values()}
    assert last.record["revisions"][v1.template_hash]["revision"] == max(numbers)


def test_failed_pod_is_recreated_and_strays_removed():
    sim = Sim()
    spec = sts(2)
    sim.run(spec)
    sim.pods = [replace(p, phase="Failed", ready=False) if p.name == "web-1" else p for p in sim.pods]
    sim.pods.append(ObservedPod("web-abc", "node1", "x", "Running", True, 0.0, 0.0))
    step = sim.step(spec)
    assert sorted(s.name for s in step.stops) == ["web-1", "web-abc"]
    assert sim.run(spec).done and sorted(sim.where()) == ["web-0", "web-1"]


def test_step_is_json_and_deterministic():
    import json

    sim = Sim()
    spec = sts(3, podManagementPolicy="Parallel")
    a = reconcile_statefulset(spec, None, sim.nodes, [], None, 1.0)
    b = reconcile_statefulset(spec, None, [n.to_json() for n in sim.nodes], [], None, 1.0)
    assert a.to_json() == b.to_json()
    assert json.loads(json.dumps(a.to_json()))["record"] == a.record
