"""workload_info's per-kind summaries, from records the controllers themselves produced: the numbers agree with the controller's status."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.action import workload_info as wi
from ansible_collections.hostfleet.workloads.plugins.module_utils.job import tracking
from ansible_collections.hostfleet.workloads.plugins.plugin_utils import summaries
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.spec import parse_deployment_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.sync import reconcile
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.job.spec import parse_job_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.registry import CONTROLLERS
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node

NOW = 1_800_000_000.0
NODES = [Node("node1", True, {"kubernetes.io/hostname": "node1"}), Node("node2", True, {"kubernetes.io/hostname": "node2"})]


def node_pod(name, kind, owner, revision, phase="Running", ready=True, ready_since=None, created=NOW - 60, exit_code=None, index=None):
    """A pod as a node's workload_info module reports it (node/status.py's shape)."""
    if phase in ("Succeeded", "Failed"):
        state = {"terminated": {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error", "finishedAt": NOW - 10}}
    else:
        state = {"running": {"startedAt": created}}
    return {
        "name": name,
        "owner": {"kind": kind, "name": owner},
        "labels": {"app": owner},
        "annotations": {tracking.INDEX_ANNOTATION: str(index)} if index is not None else {},
        "revision": revision,
        "created": created,
        "phase": phase,
        "ready": ready,
        "ready_since": ready_since if ready else None,
        "restart_count": 0,
        "containers": [{"name": "main", "state": state, "ready": ready, "started": phase == "Running", "restart_count": 0,
                        "last_exit_code": exit_code}],
    }


def report(pods, records):
    return {"observed_at": NOW, "pods": pods, "owner_records": records, "cronjobs": {}}


# -- Job: the same status as the Job action's -------------------------------------------------------


def indexed_job_mid_run():
    """An Indexed Job (3 completions, backoffLimitPerIndex 0) driven by tracking's own steps: index 0 succeeded,
    index 1 failed for good, index 2 runs. Returns (spec, record as the controller stores it, the pods the node runs)."""
    spec = parse_job_spec(
        "work",
        {
            "completions": 3,
            "parallelism": 3,
            "completionMode": "Indexed",
            "backoffLimitPerIndex": 0,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "command": ["/bin/true"]}]}},
        },
    )
    first = tracking.sync(spec.normal, None, [], now=NOW - 60, name="work")
    record = first.record
    assert [s["index"] for s in first.start] == [0, 1, 2]
    for start in first.start:
        tracking.commit_start(record, start["name"], start["index"], "node1", NOW - 60)
    names = {s["index"]: s["name"] for s in first.start}
    pods = [
        node_pod(names[0], "Job", "work", spec.template_hash, phase="Succeeded", ready=False, exit_code=0, index=0),
        node_pod(names[1], "Job", "work", spec.template_hash, phase="Failed", ready=False, exit_code=3, index=1),
        node_pod(names[2], "Job", "work", spec.template_hash, ready=True, ready_since=NOW - 50, index=2),
    ]
    second = tracking.sync(spec.normal, record, [tracking.job_pod(p, "node1") for p in pods], now=NOW - 5, name="work")
    record = second.record
    # what the Job controller adds to the tracking record before it stores it (controllers/job/sync.py)
    record["immutable"] = spec.immutable_fields()
    record["template_hash"] = spec.template_hash
    return spec, record, pods


def test_a_jobs_counts_and_indexes_are_the_job_actions():
    spec, record, pods = indexed_job_mid_run()
    expected = tracking.job_status(record, spec.normal)
    assert (expected["succeeded"], expected["failed"], expected["completedIndexes"], expected["failedIndexes"]) == (1, 1, "0", "1")
    (job,) = wi.summarize({"node1": report(pods, {"Job/work": record})}, NOW)
    shown = job["status"]
    for key in ("active", "succeeded", "failed", "completedIndexes", "failedIndexes", "startTime", "completionTime"):
        assert shown[key] == expected[key], key
    assert (job["desired"], shown["completions"], shown["status"]) == (3, 3, "Running")
    assert wi.render_table([job], now=NOW)[1].split()[:3] == ["job/work", "Running", "1/3"]


def test_a_non_indexed_job_has_no_indexes():
    spec = parse_job_spec("once", {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "command": ["/bin/true"]}]}}})
    record = tracking.sync(spec.normal, None, [], now=NOW, name="once").record
    record["immutable"] = spec.immutable_fields()
    (job,) = wi.summarize({"node1": report([], {"Job/once": record})}, NOW)
    assert "completedIndexes" not in job["status"] and "failedIndexes" not in job["status"]
    assert job["status"]["succeeded"] == job["status"]["failed"] == 0
# -- minReadySeconds: every kind's, read from its record ------------------------------------------


def deployment_ready_for(seconds, min_ready_seconds):
    """A Deployment of 2 replicas with ``minReadySeconds``, its pods started by the Deployment controller and ready
    for ``seconds``: (the controller's status, its record, the pods as the nodes report them)."""
    raw = {
        "replicas": 2,
        "minReadySeconds": min_ready_seconds,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "main", "command": ["/bin/sleep", "infinity"]}]}},
    }
    spec = parse_deployment_spec("web", raw)
    first = reconcile(spec, None, NODES, [], now=NOW - 60)
    starts = [start for actions in first.actions.values() for start in actions.start]
    assert len(starts) == 2
    observed = [ObservedPod(s.name, s.node, s.revision, "Running", True, NOW - seconds, NOW - 60) for s in starts]
    second = reconcile(spec, first.record, NODES, observed, now=NOW)
    pods = {node.name: [node_pod(s.name, "Deployment", "web", s.revision, ready_since=NOW - seconds) for s in starts if s.node == node.name] for node in NODES}
    return second.status, second.record, pods


@pytest.mark.parametrize(("ready_for", "available"), [(5, 0), (30, 2), (45, 2)])
def test_deployment_available_counts_the_records_min_ready_seconds(ready_for, available):
    status, record, pods = deployment_ready_for(ready_for, 30)
    # The controller's own verdict: ready for 5 s of the 30 the spec asks is not available.
    assert status["availableReplicas"] == available and status["readyReplicas"] == 2
    results = {node: report(pods[node], {"Deployment/web": record}) for node in pods}
    (web,) = wi.summarize(results, NOW)
    assert (web["ready"], web["available"], web["up_to_date"], web["desired"], web["revision"]) == (2, available, 2, 2, 1)


def test_a_record_no_controller_could_read_is_named_and_its_pods_still_shown():
    _status, record, pods = deployment_ready_for(45, 30)
    newer = dict(record, schema=99)
    problems = []
    (web,) = wi.summarize({"node1": report(pods["node1"], {"Deployment/web": newer})}, NOW, problems=problems)
    assert len(problems) == 1 and problems[0].startswith("the record of Deployment/web cannot be read: ") and "schema 99" in problems[0]
    assert (web["kind"], web["desired"], web["revision"], web["current"]) == ("Deployment", None, None, len(pods["node1"]))


# -- the registry is what workload_info dispatches through ------------------------------------------


def test_every_kind_of_the_registry_has_its_summary_and_display_order():
    assert wi.KIND_ORDER == tuple(c.kind for c in CONTROLLERS) + ("Pod",)
    for ctrl in CONTROLLERS:
        assert ctrl.summarize is not None and ctrl.summarize.kind == ctrl.kind, ctrl.kind
        assert wi.kind_summary(ctrl.kind) is ctrl.summarize
    # bare pods and an owner kind this collection does not know: counted, in a section of their own
    assert wi.kind_summary("Pod").kind == "Pod" and wi.kind_summary("Widget").header == summaries.POD.header


# -- properties of every kind's summary -----------------------------------------------------------

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")


@st.composite
def pod_views(draw, revisions=("h1", "h2")):
    views = []
    for number in range(draw(st.integers(0, 8))):
        phase = draw(st.sampled_from(PHASES))
        ready = phase == "Running" and draw(st.booleans())
        created = NOW - draw(st.integers(0, 10_000))
        views.append(
            {
                "name": f"p{number}",
                "node": draw(st.sampled_from(("node1", "node2", "node3"))),
                "phase": phase,
                "ready": ready,
                "ready_since": (NOW - draw(st.integers(0, 120))) if ready else None,
                "created_at": created,
                "template_hash": draw(st.sampled_from(revisions)),
            }
        )
    return views


@given(st.sampled_from(CONTROLLERS), pod_views(), st.integers(0, 90))
def test_counts_are_consistent_for_every_kind(ctrl, views, min_ready):
    record = None
    if ctrl.record_type is not None:
        data = ctrl.record_type.fresh("w")
        data.update(min_ready_seconds=min_ready, revisions={"h2": {"revision": 2, "created": NOW - 50}})
        data[ctrl.record_type.CURRENT_KEY] = "h2"
        record = ctrl.record_type.from_json(data, "w")
    workload = ctrl.summarize("w", record, views, NOW)
    live = [v for v in views if v["phase"] not in ("Succeeded", "Failed")]
    assert workload["current"] == len(live)
    assert workload["available"] <= workload["ready"] <= workload["current"]
    assert workload["up_to_date"] <= workload["current"]
    if record is not None:
        min_ready = record.min_ready_seconds
        assert workload["available"] == sum(1 for v in live if v["phase"] == "Running" and v["ready"] and v["ready_since"] + min_ready <= NOW)
        assert workload["up_to_date"] == sum(1 for v in live if v["template_hash"] == "h2")
    assert workload["nodes"] == sorted({v["node"] for v in views})
    row = ctrl.summarize.row(workload, NOW)
    assert len(row) == len(ctrl.summarize.header) and row[0] == f"{ctrl.kind.lower()}/w"


@given(st.sets(st.integers(0, 19)), st.data())
def test_a_jobs_indexes_read_back_as_the_record_holds_them(succeeded, data):
    failed = data.draw(st.sets(st.integers(0, 19).filter(lambda i: i not in succeeded)))
    spec = parse_job_spec(
        "work",
        {"completions": 20, "completionMode": "Indexed", "backoffLimitPerIndex": 1,
         "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "command": ["/bin/true"]}]}}},
    )
    record = tracking.new_record("work")
    record.update(succeeded_indexes=sorted(succeeded), failed_indexes=sorted(failed), succeeded=len(succeeded), failed=len(failed),
                  immutable=spec.immutable_fields(), template_hash=spec.template_hash)
    (job,) = wi.summarize({"node1": report([], {"Job/work": record})}, NOW)
    status = job["status"]
    assert (tracking.parse_indexes(status["completedIndexes"], 20) if succeeded else []) == sorted(succeeded)
    assert (tracking.parse_indexes(status["failedIndexes"], 20) if failed else []) == sorted(failed)
    assert (status["succeeded"], status["failed"]) == (len(succeeded), len(failed))
