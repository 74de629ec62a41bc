"""Typed controller records: records captured from the current release (fixtures/records, schema 1) load,
migrate and round-trip; every kind answers the base fields; bad records are refused naming what is wrong."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.job import tracking
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.record import DaemonSetRecord
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.spec import parse_daemonset_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.sync import reconcile_daemonset
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.record import DeploymentRecord
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.spec import parse_deployment_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.sync import reconcile
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.job.record import JobRecord
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.job.spec import parse_job_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.job.sync import reconcile_job
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.records import Record, RecordError, begin_step, load_record, record_types
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.replicaset import ReplicaSetRecord, parse_replicaset_spec, reconcile_replicaset
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.record import StatefulSetRecord
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.spec import parse_statefulset_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.sync import reconcile_statefulset
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.unreachable import RECORD_KEY
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node

FIXTURES = Path(__file__).parent / "fixtures" / "records"
V1 = {p.name: json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*-v1-*.json"))}
TYPES = {"Deployment": DeploymentRecord, "ReplicaSet": ReplicaSetRecord, "StatefulSet": StatefulSetRecord, "DaemonSet": DaemonSetRecord, "Job": JobRecord}
# Where each kind kept the revision running / being rolled out in schema 1.
V1_CURRENT_KEY = {
    "Deployment": "current_hash",
    "DaemonSet": "current_hash",
    "StatefulSet": "update_revision",
    "ReplicaSet": "template_hash",
    "Job": "template_hash",
}
# Keys schema 1 had that schema 2 calls otherwise.
RENAMED = {
    "StatefulSet": {"minReadySeconds": "min_ready_seconds", "current_revision": "stable_revision"},
    "ReplicaSet": {"minReadySeconds": "min_ready_seconds"},
}


def test_the_fixtures_cover_every_kind_with_a_record():
    # Kinds added since (ReplicationController) have no records of the current release.
    assert {r["kind"] for r in V1.values()} == set(TYPES) and set(TYPES) <= set(record_types())
    assert all(r["schema"] == 1 and RECORD_KEY in r or r["kind"] == "Job" for r in V1.values())
    assert all("seq" in r for r in V1.values())


@pytest.mark.parametrize("fixture", sorted(V1))
def test_records_of_the_current_release_load_and_answer_the_base(fixture):
    old = V1[fixture]
    kind = old["kind"]
    record = load_record(kind, old, old["name"])
    assert record.__class__ is TYPES[kind]  # exactly this kind's class, not a subclass
    assert (record.kind, record.name, record.schema) == (kind, old["name"], TYPES[kind].SCHEMA)
    assert record.generation == (old.get("generation") or 1 if kind == "Job" else old["generation"])
    assert record.seq == old["seq"]
    current = old[V1_CURRENT_KEY[kind]]
    assert record.current_revision == current and current
    assert record.revision_number(current) == (1 if kind == "Job" else old["revisions"][current]["revision"])
    assert record.revision_number("no-such-hash") is None
    assert record.min_ready_seconds == int(old.get("minReadySeconds") or 0)
    assert record.conditions == old["conditions"]
    if kind != "Job":
        assert record.selector == old["selector"] and record.revisions == old["revisions"]
        assert record.template(current) == old["revisions"][current]["template"]
    # Nothing is lost: every key is kept (the loop's fleet and seq, the action's restarted_at), renamed ones renamed.
    renamed = RENAMED.get(kind, {})
    for key, value in old.items():
        if key != "schema":
            assert record.data[renamed.get(key, key)] == value, key
    # Also from its JSON text, as a node returns it.
    assert load_record(kind, json.dumps(old), old["name"]) == record


@pytest.mark.parametrize("fixture", sorted(V1))
def test_migrated_records_round_trip(fixture):
    old = V1[fixture]
    record = load_record(old["kind"], old, old["name"])
    stored = record.to_json()
    again = type(record).from_json(stored, old["name"])
    assert again == record and again.to_json() == stored
    stored["generation"] = 99
    assert record.data.get("generation") != 99  # to_json is a copy


def test_deployment_and_daemonset_records_gain_min_ready_seconds():
    for fixture in ("deployment-v1-complete.json", "daemonset-v1-complete.json"):
        assert "min_ready_seconds" not in V1[fixture]
        record = load_record(V1[fixture]["kind"], V1[fixture], V1[fixture]["name"])
        assert record.data["min_ready_seconds"] == 0 and record.schema == 2


def test_statefulset_keeps_its_stable_revision_apart_from_the_current_one():
    old = V1["statefulset-v1-update-in-progress.json"]
    record = load_record("StatefulSet", old, "web")
    assert old["current_revision"] != old["update_revision"]
    assert record.current_revision == old["update_revision"]
    assert record.stable_revision == old["current_revision"]
    assert "current_revision" not in record.data
    assert record.pins == {0: "node1", 1: "node2", 2: "node3"}


def test_job_record_answers_counts_and_indexes_from_the_tracking_record():
    finished = load_record("Job", V1["job-v1-indexed-finished.json"], "batch")
    assert (finished.succeeded, finished.failed, finished.completed_indexes, finished.failed_indexes) == (4, 1, "0-3", "")
    assert finished.completions == 4 and finished.indexed and finished.finished["type"] == tracking.COMPLETE
    assert finished.selector == {"matchLabels": {tracking.JOB_NAME_LABEL: "batch"}}
    assert finished.template(finished.current_revision) == V1["job-v1-indexed-finished.json"]["immutable"]["template"]
    running = load_record("Job", V1["job-v1-indexed-in-progress.json"], "batch")
    assert running.completed_indexes == "0" and running.active >= 1 and running.finished is None
    # The host side reads what the typed record writes: the same keys, no schema bump.
    assert tracking.load_record(running.to_json(), "batch") == running.to_json()


def test_load_record_without_data_and_for_an_unknown_kind():
    assert load_record("Deployment", None, "api") is None
    assert load_record("Deployment", {}, "api") is None
    with pytest.raises(RecordError, match="CronJob"):
        load_record("CronJob", {"kind": "CronJob"}, "nightly")


def test_a_partial_record_without_schema_loads_as_the_first_schema():
    # deployment.py's restart request, written before the Deployment's first step.
    record = DeploymentRecord.from_json({"kind": "Deployment", "name": "api", "restarted_at": "2026-12-04T22:00:00Z"}, "api")
    assert record.schema == 2 and record.data["restarted_at"] == "2026-12-04T22:00:00Z" and record.generation == 0


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"kind": "ReplicaSet", "name": "api", "schema": 1}, "is a ReplicaSet, not a Deployment"),
        ({"kind": "Deployment", "name": "web", "schema": 1}, "is for 'web', not 'api'"),
        ({"kind": "Deployment", "name": "api", "schema": 3}, "schema 3, newer than this collection understands \\(2\\)"),
        ({"kind": "Deployment", "name": "api", "schema": "2"}, "schema '2', not a version number"),
        ({"kind": "Deployment", "name": "api", "schema": 0}, "schema 0, not a version number"),
        ({"kind": "Deployment", "name": "api", "schema": True}, "not a version number"),
        ("{not json", "is not JSON"),
        (b"[1, 2]", "not a JSON object but list"),
        (["kind", "Deployment"], "not a JSON object but list"),
        ({"kind": "Deployment", "name": "api", "held": {1, 2}}, "is not JSON"),
    ],
)
def test_unusable_records_are_refused(data, match):
    with pytest.raises(RecordError, match=match):
        load_record("Deployment", data, "api")


def test_record_error_is_a_value_error_and_job_records_refuse_the_same_way():
    assert issubclass(RecordError, ValueError)
    with pytest.raises(RecordError, match="newer"):
        JobRecord.from_json({"kind": "Job", "name": "batch", "schema": tracking.SCHEMA + 1}, "batch")
    with pytest.raises(RecordError, match="not a Job"):
        JobRecord.from_json(V1["deployment-v1-complete.json"], "api")


# -- records of the current release are a steady state for this release's controllers ------------------------

NODES = [Node(f"node{i}", True, {"kubernetes.io/hostname": f"node{i}", "role": "edge"}, None) for i in (1, 2, 3)]


def _template(command, app):
    return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "main", "command": command}]}}


def _placed_pods(record):
    """The pods the record's fleet part places, running and ready for long."""
    return [ObservedPod(p, n, r, "Running", True, 0.0, 0.0) for n, pods in record[RECORD_KEY]["placement"].items() for p, r in pods.items()]


def _sts_raw():
    container = {"name": "main", "command": ["/bin/sleep", "v1"], "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    return {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "serviceName": "web",
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}],
        "minReadySeconds": 2,
    }


# The specs the fixtures were captured with (fixtures/records/README.md).
STEADY = {
    "deployment-v1-complete.json": lambda rec, now: reconcile(
        parse_deployment_spec(
            "api",
            {
                "replicas": 4,
                "selector": {"matchLabels": {"app": "api"}},
                "template": _template(["/bin/sleep", "v1"], "api"),
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "minReadySeconds": 0,
            },
        ),
        rec, NODES, _placed_pods(rec), None, now,
    ),
    "replicaset-v1-complete.json": lambda rec, now: reconcile_replicaset(
        parse_replicaset_spec(
            "web", {"replicas": 3, "selector": {"matchLabels": {"app": "api"}}, "template": _template(["/bin/sleep", "infinity"], "api"), "minReadySeconds": 5}
        ),
        rec, NODES, _placed_pods(rec), None, now,
    ),
    "statefulset-v1-complete-pins.json": lambda rec, now: reconcile_statefulset(
        parse_statefulset_spec("web", _sts_raw()), rec, NODES, _placed_pods(rec), None, now
    ),
    "daemonset-v1-complete.json": lambda rec, now: reconcile_daemonset(
        parse_daemonset_spec(
            "agent",
            {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": _template(["/bin/sleep", "v1"], "agent"),
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                "minReadySeconds": 3,
            },
        ),
        rec, NODES, _placed_pods(rec), None, now,
    ),
}


@pytest.mark.parametrize("fixture", sorted(STEADY))
def test_a_settled_record_of_the_current_release_stays_settled(fixture):
    """After an upgrade, a workload that had settled is left alone: same generation, same revision, no action."""
    old = V1[fixture]
    step = STEADY[fixture](copy.deepcopy(old), 10_000.0)
    assert not step.starts and not step.stops and step.done, step.description
    new = load_record(old["kind"], step.record, old["name"])
    assert new.generation == old["generation"] and new.spec_hash == old["spec_hash"]
    assert new.current_revision == old[V1_CURRENT_KEY[old["kind"]]]
    assert new.revision_number(new.current_revision) == old["revisions"][new.current_revision]["revision"]


def test_a_finished_job_record_of_the_current_release_stays_finished():
    old = V1["job-v1-indexed-finished.json"]
    template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "command": ["/bin/sh", "-c", "work"]}]}}
    spec = parse_job_spec("batch", {"completions": 4, "parallelism": 2, "completionMode": "Indexed", "backoffLimitPerIndex": 1, "template": template})
    step = reconcile_job(spec, copy.deepcopy(old), NODES[:2], {"node1": [], "node2": []}, None, old["finished_time"] + 1)
    assert step.done and step.complete and not step.starts
    assert load_record("Job", step.record, "batch").succeeded == 4


# -- the regression: every kind's record answers min_ready_seconds (workload_info counts availability with it) --

def _replicated(**fields):
    return {"replicas": 2, "selector": {"matchLabels": {"app": "api"}}, "template": _template(["/bin/true"], "api"), **fields}


MIN_READY = {
    "Deployment": lambda: reconcile(parse_deployment_spec("api", _replicated(minReadySeconds=30)), None, NODES, [], None, 0.0),
    "ReplicaSet": lambda: reconcile_replicaset(parse_replicaset_spec("api", _replicated(minReadySeconds=30)), None, NODES, [], None, 0.0),
    "StatefulSet": lambda: reconcile_statefulset(parse_statefulset_spec("web", dict(_sts_raw(), minReadySeconds=30)), None, NODES, [], None, 0.0),
    "DaemonSet": lambda: reconcile_daemonset(
        parse_daemonset_spec("agent", {"selector": {"matchLabels": {"app": "agent"}}, "template": _template(["/bin/true"], "agent"), "minReadySeconds": 30}),
        None, NODES, [], None, 0.0,
    ),
}


@pytest.mark.parametrize("kind", sorted(MIN_READY))
def test_every_kind_stores_min_ready_seconds(kind):
    step = MIN_READY[kind]()
    record = load_record(kind, step.record, step.record["name"])
    assert record.min_ready_seconds == 30
    assert record.observed_generation == record.generation == 1


def test_begin_step_counts_generations_only_when_the_spec_changes():
    spec = parse_replicaset_spec("api", {"replicas": 2, "selector": {"matchLabels": {"app": "api"}}, "template": _template(["/bin/true"], "api")})
    record, new = begin_step(ReplicaSetRecord, None, spec)
    assert new and record.generation == 1 and record.spec_hash == spec.spec_hash() and record.selector == spec.selector.to_json()
    again, new = begin_step(ReplicaSetRecord, record.to_json(), spec)
    assert not new and again.generation == 1
    scaled = parse_replicaset_spec("api", {"replicas": 3, "selector": {"matchLabels": {"app": "api"}}, "template": _template(["/bin/true"], "api")})
    third, new = begin_step(ReplicaSetRecord, again.to_json(), scaled)
    assert new and third.generation == 2 and third.observed_generation == 0
    third.note_observed({"replicas": 0})
    assert third.observed_generation == 2 and third.observed == {"replicas": 0}


# -- properties: any record of a schema written so far, with keys missing or added, loads and round-trips --------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
KNOWN = set().union(*(set(t.fresh("x")) for t in TYPES.values()), *(set(r) for r in V1.values()), {"minReadySeconds"})


@st.composite
def old_records(draw):
    """A schema-1 record of the current release with some optional keys missing and others added."""
    old = copy.deepcopy(V1[draw(st.sampled_from(sorted(V1)))])
    optional = sorted(set(old) - {"kind", "name", "schema", "seq", V1_CURRENT_KEY[old["kind"]]})
    for key in draw(st.lists(st.sampled_from(optional), unique=True, max_size=4)):
        del old[key]
    extra = draw(st.dictionaries(st.text(min_size=1, max_size=10).filter(lambda k: k not in KNOWN), JSON_VALUES, max_size=3))
    old.update(extra)
    if old["kind"] in ("ReplicaSet", "StatefulSet") and draw(st.booleans()):
        old["minReadySeconds"] = draw(st.integers(0, 3600))
    if draw(st.booleans()):
        del old["schema"]
    return old, extra


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(old_records())
def test_any_old_record_migrates_keeps_unknown_keys_and_round_trips(case):
    old, extra = case
    kind = old["kind"]
    record = load_record(kind, old, old["name"])
    assert record.schema == TYPES[kind].SCHEMA
    assert all(record.data[k] == v for k, v in extra.items())
    assert set(TYPES[kind].fresh(old["name"])) <= set(record.data)
    assert record.current_revision == old[V1_CURRENT_KEY[kind]]
    assert record.min_ready_seconds == int(old.get("minReadySeconds") or 0)
    assert record.seq == old["seq"]
    again = load_record(kind, json.loads(json.dumps(record.to_json())), old["name"])
    assert again == record
    # Loading never changes the input.
    assert old == case[0]


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(sorted(TYPES)),
    st.integers(0, 10**6),
    st.integers(0, 3600),
    st.dictionaries(st.text(alphabet="0123456789abcdef", min_size=10, max_size=10), st.integers(1, 50), max_size=4),
)
def test_records_of_this_release_round_trip(kind, generation, min_ready, numbers):
    record = TYPES[kind].new("w")
    record.data.update(generation=generation, min_ready_seconds=min_ready, revisions={h: {"revision": n, "template": {}} for h, n in numbers.items()})
    again = load_record(kind, record.to_json(), "w")
    assert again == record
    if kind != "Job":
        assert again.min_ready_seconds == min_ready and again.generation == generation
        assert again.revision_numbers() == numbers
        assert all(again.revision_number(h) == n for h, n in numbers.items())


def test_every_type_is_a_record_with_its_own_kind():
    for kind, record_type in record_types().items():
        assert issubclass(record_type, Record) and record_type.KIND == kind
        assert sorted(record_type.MIGRATIONS) == list(range(1, record_type.SCHEMA))
