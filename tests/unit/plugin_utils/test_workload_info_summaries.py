"""workload_info's per-kind summaries, from records the controllers themselves produced: the numbers agree with the controller's status."""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.action import workload_info as wi
from ansible_collections.hostfleet.workloads.plugins.module_utils.job import tracking
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.job.spec import parse_job_spec
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
