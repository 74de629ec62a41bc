"""ReplicationController (core v1): the ReplicaSet controller behind a spec with a label-map selector."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plugin_utils_helpers import make_nodes, template
from workload_action_helpers import SimFleet, patch_clock, run_action

from ansible_collections.hostfleet.workloads.plugins.action.replicationcontroller import ActionModule
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.records import RecordError, load_record
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.registry import controller
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.replicaset import parse_replicaset_spec, reconcile_replicaset
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.replicationcontroller import (
    ReplicationControllerRecord,
    parse_replicationcontroller_spec,
    reconcile_replicationcontroller,
)
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.manifests import load
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.manifests.objects import ManifestErrors, build

LABELS = {"app": "web", "tier": "front"}


def rc(replicas=None, command=None, labels=None, **fields):
    raw = {"template": template(command, labels=labels or LABELS), **fields}
    if replicas is not None:
        raw["replicas"] = replicas
    return parse_replicationcontroller_spec("web", raw)


def refused(raw, stored_selector=None):
    with pytest.raises(SpecError) as caught:
        parse_replicationcontroller_spec("web", raw, stored_selector)
    return caught.value


# -- the spec ------------------------------------------------------------------------------------------------


def test_the_selector_defaults_to_the_template_labels_and_replicas_to_one():
    spec = rc()
    assert spec.selector.to_json() == {"matchLabels": LABELS}
    assert spec.replicas == 1 and spec.min_ready_seconds == 0
    assert rc(selector={}).selector.to_json() == {"matchLabels": LABELS}  # empty: defaulted, as Kubernetes does


def test_a_selector_is_a_label_map_matching_the_template():
    assert rc(3, selector={"app": "web"}).selector.to_json() == {"matchLabels": {"app": "web"}}
    assert rc(3, selector={"app": "web"}).replicas == 3


@pytest.mark.parametrize("selector", [{"app": "api"}, {"app": "web", "zone": "a"}, {"tier": "back"}])
def test_a_selector_that_does_not_match_the_template_names_spec_selector(selector):
    error = refused({"selector": selector, "template": template(labels=LABELS)})
    assert error.path == "spec.selector"
    assert "does not match the template's labels" in error.message


def test_a_label_selector_is_not_a_replication_controller_selector():
    error = refused({"selector": {"matchLabels": {"app": "web"}}, "template": template(labels=LABELS)})
    assert error.path == "spec.selector" and "plain label map" in error.message


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"selector": "app=web", "template": template(labels=LABELS)}, "spec.selector"),
        ({"selector": {"app": "we b"}, "template": template(labels=LABELS)}, "spec.selector['app']"),
        ({"selector": {"app": "web"}}, "spec.template"),
        ({"template": template(labels=LABELS), "strategy": {"type": "Recreate"}}, "spec.strategy"),
        ({"template": template(labels=LABELS), "replicas": -1}, "spec.replicas"),
        ({"template": template(labels=LABELS), "minReadySeconds": "5"}, "spec.minReadySeconds"),
    ],
)
def test_bad_input_names_the_field(raw, path):
    assert refused(raw).path == path


def test_no_selector_and_no_template_labels_is_refused():
    bare = {"spec": template()["spec"]}
    assert refused({"template": bare}).path == "spec.selector"


def test_the_selector_cannot_change():
    stored = rc().selector.to_json()
    error = refused({"selector": {"app": "web"}, "template": template(labels=LABELS)}, stored_selector=stored)
    assert error.path == "spec.selector" and "immutable" in error.message
    assert parse_replicationcontroller_spec("web", {"template": template(labels=LABELS)}, stored).selector.to_json() == stored


label_values = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?\Z")
label_maps = st.dictionaries(st.sampled_from(["app", "tier", "zone", "team", "x.io/role"]), label_values, min_size=1)


@settings(max_examples=60, deadline=None)
@given(labels=label_maps, data=st.data())
def test_property_any_sub_map_of_the_labels_selects_and_anything_else_is_refused(labels, data):
    chosen = data.draw(st.lists(st.sampled_from(sorted(labels)), unique=True))
    selector = {k: labels[k] for k in chosen}
    spec = parse_replicationcontroller_spec("web", {"selector": selector, "template": template(labels=labels)})
    assert spec.selector.to_json() == {"matchLabels": selector or labels}
    assert spec.selector.matches(labels)
    # One pair the template does not have makes it a mismatch, named at spec.selector.
    key = data.draw(st.sampled_from(["app", "tier", "zone", "team", "other"]))
    wrong = dict(selector, **{key: labels.get(key, "x") + "-other"})
    with pytest.raises(SpecError) as caught:
        parse_replicationcontroller_spec("web", {"selector": wrong, "template": template(labels=labels)})
    assert caught.value.path == "spec.selector"


def test_the_same_template_makes_the_same_revision_as_a_replicaset():
    # Reused, not copied: the ReplicaSet parser builds the spec, so the template hash is the ReplicaSet's.
    as_rs = parse_replicaset_spec("web", {"selector": {"matchLabels": LABELS}, "template": template(labels=LABELS)})
    assert rc() == as_rs


# -- the controller ------------------------------------------------------------------------------------------


class Fleet:
    def __init__(self, nodes):
        self.nodes, self.pods, self.record, self.now = nodes, [], None, 100.0

    def step(self, spec):
        step = reconcile_replicationcontroller(spec, self.record, self.nodes, self.pods, None, self.now)
        stopped = {s.name for s in step.stops}
        self.pods = [p for p in self.pods if p.name not in stopped]
        self.pods += [ObservedPod(s.name, s.node, s.revision, "Running", True, self.now, self.now) for s in step.starts]
        self.record = copy.deepcopy(step.record)
        self.now += 1
        return step


def test_its_record_is_of_its_own_kind_and_loads_as_such():
    fleet = Fleet(make_nodes(2))
    fleet.step(rc(2))
    assert fleet.record["kind"] == "ReplicationController"
    loaded = load_record("ReplicationController", fleet.record, "web")
    assert isinstance(loaded, ReplicationControllerRecord) and loaded.current_revision == rc().template_hash
    assert controller("ReplicationController").record_type is ReplicationControllerRecord
    # A ReplicaSet's record is not a ReplicationController's, nor the other way round.
    with pytest.raises(RecordError):
        reconcile_replicaset(rc(2), fleet.record, fleet.nodes, fleet.pods, None, fleet.now)
    with pytest.raises(RecordError):
        reconcile_replicationcontroller(rc(2), dict(fleet.record, kind="ReplicaSet"), fleet.nodes, fleet.pods, None, fleet.now)


def test_scale_three_to_one_and_a_template_change_replaces_no_running_pod():
    fleet = Fleet(make_nodes(3))
    assert len(fleet.step(rc(3)).starts) == 3
    assert fleet.step(rc(3)).done
    old = {p.name for p in fleet.pods}
    changed = rc(3, ["/bin/sleep", "10"])
    step = fleet.step(changed)
    assert step.empty and step.done, "no rollout: running pods stay on their template"
    step = fleet.step(rc(1, ["/bin/sleep", "10"]))
    assert len(step.stops) == 2 and not step.starts and {p.name for p in fleet.pods} <= old
    step = fleet.step(rc(2, ["/bin/sleep", "10"]))
    assert [s.revision for s in step.starts] == [changed.template_hash], "new pods use the new template"


def test_progress_line_counts_replicas():
    step = Fleet(make_nodes(2)).step(rc(2))
    line = controller("ReplicationController").progress_line("web", {"replicas": 2}, step, 1)
    assert line == "replicationcontroller web: step 1: ready 0/2, available 0 (2 started, 0 stopped)"


# -- the task and the manifest -------------------------------------------------------------------------------


def test_the_action_leaves_an_absent_selector_to_the_parser():
    action = object.__new__(ActionModule)  # spec_fields reads only the registry and the task's arguments
    args = {"name": "web", "replicas": 2, "selector": None, "template": template(labels=LABELS), "minReadySeconds": 0}
    fields = action.spec_fields(args, None)
    assert "selector" not in fields
    assert controller("ReplicationController").parse_spec("web", fields).selector.to_json() == {"matchLabels": LABELS}
    given = action.spec_fields(dict(args, selector={"app": "web"}), None)
    assert given["selector"] == {"app": "web"}


def manifest(api_version="v1", **spec):
    body = {"apiVersion": api_version, "kind": "ReplicationController", "metadata": {"name": "web", "namespace": "x"}}
    body["spec"] = {"replicas": 2, "selector": {"app": "web"}, "template": template(labels={"app": "web"}), **spec}
    return load.from_definition(body)


def test_a_manifest_becomes_the_module_s_arguments():
    (obj,) = build(manifest())
    assert obj.kind == "ReplicationController" and obj.name == "web"
    assert obj.args["selector"] == {"app": "web"} and obj.args["replicas"] == 2
    assert obj.ignored == [] and obj.namespace == "x"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (manifest("apps/v1"), "apiVersion: must be 'v1' for a ReplicationController"),
        (manifest(strategy={"type": "Recreate"}), "spec.strategy: unknown field"),
    ],
)
def test_a_manifest_of_another_version_or_with_other_fields_is_refused(document, message):
    with pytest.raises(ManifestErrors) as caught:
        build(document)
    assert message in str(caught.value)


# -- the task over a simulated fleet (the shared action): check mode, diff, idempotence -----------------------


def test_the_task_check_mode_diff_and_idempotence(monkeypatch):
    fleet = SimFleet(patch_clock(monkeypatch))
    args = {"name": "web", "replicas": 3, "template": template(["/bin/sleep", "1"], labels=LABELS)}
    check = run_action(fleet, "replicationcontroller", args, check_mode=True, diff=True)
    assert check["changed"] and not any(fleet.pods.values()), "check mode changes nothing"
    assert json.loads(check["diff"]["after"])["spec"]["containers"][0]["command"] == ["/bin/sleep", "1"]
    first = run_action(fleet, "replicationcontroller", args)
    assert first["changed"] and first["status"]["availableReplicas"] == 3, first.get("msg")
    assert {r["kind"] for host in fleet.records.values() for r in host.values()} == {"ReplicationController"}
    pods = {h: dict(p) for h, p in fleet.pods.items()}
    assert run_action(fleet, "replicationcontroller", args)["changed"] is False
    changed = dict(args, template=template(["/bin/sleep", "2"], labels=LABELS))
    diff = run_action(fleet, "replicationcontroller", changed, check_mode=True, diff=True)["diff"]
    assert json.loads(diff["before"])["spec"]["containers"][0]["command"] == ["/bin/sleep", "1"]
    assert json.loads(diff["after"])["spec"]["containers"][0]["command"] == ["/bin/sleep", "2"]
    result = run_action(fleet, "replicationcontroller", changed)
    assert result["plan"] == [] and fleet.pods == pods, "no rollout: no pod stopped or started"
