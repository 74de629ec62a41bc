"""workload_info's pure side: nodes' reports grouped into workloads, counted like kubectl, printed as a table."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.action import workload_info as wi
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.labels import parse_label_selector

NOW = 1_800_000_000.0


def container(name="main", state="running", ready=True, restarts=0, reason=None, exit_code=None):
    states = {
        "running": {"running": {"startedAt": NOW - 100}},
        "waiting": {"waiting": {"reason": reason or "ContainerCreating"}},
        "terminated": {"terminated": {"exitCode": exit_code, "reason": reason or "Completed", "finishedAt": NOW - 5}},
    }
    return {
        "name": name,
        "unit": f"hf-x.{name}.service",
        "unit_state": "active/running" if state == "running" else "inactive/dead",
        "state": states[state],
        "ready": ready,
        "started": state == "running",
        "restart_count": restarts,
        "last_exit_code": exit_code,
    }


def pod(name, kind, owner, revision="h1", phase="Running", ready=True, restarts=0, created=NOW - 600, ready_since=NOW - 500, labels=None, containers=None):
    return {
        "name": name,
        "owner": {"kind": kind, "name": owner},
        "labels": labels or {"app": owner},
        "revision": revision,
        "created": created,
        "phase": phase,
        "ready": ready,
        "ready_since": ready_since if ready else None,
        "restart_count": restarts,
        "containers": containers or [container(ready=ready, restarts=restarts)],
    }


def deployment_record(seq=2, replicas=3, current="h2"):
    return {
        "kind": "Deployment",
        "name": "web",
        "seq": seq,
        "replicas": replicas,
        "current_hash": current,
        "revisions": {"h1": {"revision": 1, "created": NOW - 3600}, "h2": {"revision": 2, "created": NOW - 60}},
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "lastTransitionTime": NOW - 50}],
    }


def fleet():
    """Two nodes with a Deployment mid-rollout (2 new, 1 old of which one is not ready), a DaemonSet, a Job and a CronJob run."""
    ds = {"kind": "DaemonSet", "name": "agent", "seq": 1, "current_hash": "d1", "observed": {"desired": 2},
          "revisions": {"d1": {"revision": 1, "created": NOW - 7200}}, "conditions": []}
    job = {"kind": "Job", "name": "batch", "seq": 3, "immutable": {"completions": 2}, "succeeded": 1, "failed": 0, "start_time": NOW - 30,
           "conditions": [], "template_hash": "j1"}
    node1 = {
        "observed_at": NOW,
        "pods": [
            pod("web-h2-a", "Deployment", "web", "h2"),
            pod("web-h1-c", "Deployment", "web", "h1", ready=False, restarts=4,
                containers=[container(state="waiting", ready=False, restarts=4, reason="CrashLoopBackOff")]),
            pod("agent-1", "DaemonSet", "agent", "d1"),
            pod("batch-0", "Job", "batch", "j1", phase="Succeeded", ready=False, containers=[container(state="terminated", ready=False, exit_code=0)]),
        ],
        "owner_records": {"Deployment/web": deployment_record(seq=1, replicas=2), "DaemonSet/agent": ds, "Job/batch": job},
        "cronjobs": {},
    }
    node2 = {
        # this node's clock is 10 s ahead: its times come back onto the controller's
        "observed_at": NOW + 10,
        "pods": [
            pod("web-h2-b", "Deployment", "web", "h2", created=NOW - 50, ready_since=NOW - 40),
            pod("agent-2", "DaemonSet", "agent", "d1", ready=False, containers=[container(ready=False)]),
            pod("batch-1", "Job", "batch", "j1"),
            pod("tick-100-0", "Job", "tick-100", "t1", phase="Failed", ready=False,
                containers=[container(state="terminated", ready=False, exit_code=2, reason="Error")]),
        ],
        "owner_records": {"Deployment/web": deployment_record(seq=2, replicas=3), "DaemonSet/agent": ds},
        "cronjobs": {"tick": {"config": {"schedule": "*/5 * * * *", "timeZone": "UTC", "suspend": False}, "last_schedule": NOW - 120,
                              "runs": [{"name": "tick-100", "scheduled": "x", "active": False, "outcome": "Failed"}]}},
    }
    return {"node1": node1, "node2": node2}


def by_name(workloads):
    return {(w["kind"], w["name"]): w for w in workloads}


def test_counts_like_kubectl_from_the_newest_record_and_the_pods_that_run():
    found = by_name(wi.summarize(fleet(), NOW))
    web = found[("Deployment", "web")]
    # desired from the newest record (seq 2): 3; up-to-date = pods of h2; the crash-looping old pod is neither ready nor available
    assert (web["desired"], web["current"], web["ready"], web["up_to_date"], web["available"], web["revision"]) == (3, 3, 2, 2, 2, 2)
    assert web["nodes"] == ["node1", "node2"]
    assert [(p["name"], p["node"], p["revision"], p["status"], p["restarts"]) for p in web["pods"]] == [
        ("web-h1-c", "node1", 1, "CrashLoopBackOff", 4),
        ("web-h2-a", "node1", 2, "Running", 0),
        ("web-h2-b", "node2", 2, "Running", 0),
    ]
    assert web["conditions"][0]["lastTransitionTime"] == wi.rfc3339(NOW - 50)
    assert web["age"] == pytest.approx(3600)
    agent = found[("DaemonSet", "agent")]
    assert (agent["desired"], agent["current"], agent["ready"], agent["up_to_date"], agent["available"]) == (2, 2, 1, 2, 1)
    batch = found[("Job", "batch")]
    assert batch["desired"] == 2 and batch["status"]["status"] == "Running" and batch["status"]["succeeded"] == 1 and batch["current"] == 1
    tick = found[("CronJob", "tick")]
    assert [p["name"] for p in tick["pods"]] == ["tick-100-0"] and tick["status"]["schedule"] == "*/5 * * * *" and tick["desired"] is None


def test_host_clock_skew_is_corrected():
    web_b = next(p for w in wi.summarize(fleet(), NOW) for p in w["pods"] if p["name"] == "web-h2-b")
    assert web_b["age"] == pytest.approx(60)  # created 50 s before node2's clock, which is 10 s ahead


def test_selection_by_kind_name_and_labels():
    assert [(w["kind"], w["name"]) for w in wi.summarize(fleet(), NOW, kinds=["DaemonSet", "Job"])] == [("DaemonSet", "agent"), ("Job", "batch")]
    assert [(w["kind"], w["name"]) for w in wi.summarize(fleet(), NOW, name="web")] == [("Deployment", "web")]
    selector = parse_label_selector({"matchExpressions": [{"key": "app", "operator": "In", "values": ["agent", "batch"]}]}, "selector")
    assert [w["name"] for w in wi.summarize(fleet(), NOW, selector=selector)] == ["agent", "batch"]
    assert wi.summarize(fleet(), NOW, name="nothing") == []


def test_table_sections_and_rows():
    workloads = wi.summarize(fleet(), NOW)
    table = wi.render_table(workloads, [], {"node3": "Failed to connect"}, NOW)
    text = "\n".join(table)
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "REVISION", "AGE"]
    assert table[1].split() == ["deployment/web", "2/3", "2", "2", "2", "60m"]
    assert "daemonset/agent   2         2         1       2            1           1          120m" in text
    assert re.search(r"^job/batch\s+Running\s+1/2\s+30s\s+10m$", text, re.M)
    # node2's clock is 10 s ahead: its last schedule was 130 s ago on the controller's clock
    assert re.search(r"^cronjob/tick\s+\*/5 \* \* \* \*\s+UTC\s+False\s+0\s+2m10s\s+10m$", text, re.M)
    pods = [line.split() for line in table if line.startswith("pod/")]
    assert [p[0] for p in pods] == ["pod/agent-1", "pod/batch-0", "pod/web-h1-c", "pod/web-h2-a", "pod/agent-2", "pod/batch-1", "pod/tick-100-0",
                                    "pod/web-h2-b"]
    assert pods[2] == ["pod/web-h1-c", "0/1", "CrashLoopBackOff", "4", "10m", "node1", "1", "deployment/web"]
    assert pods[6][:3] == ["pod/tick-100-0", "0/1", "Error"] and pods[6][-1] == "cronjob/tick"
    assert table[-1] == "UNREACHABLE NODE node3: Failed to connect"
    assert all(line == line.rstrip() for line in table)


def test_empty_fleet_says_so():
    assert wi.render_table([], None, {}, NOW) == ["No resources found."]


def test_events_are_merged_across_nodes_in_time_order_and_kept_to_the_selection():
    results = fleet()
    results["node1"]["events"] = [
        {"time": NOW - 20, "type": "Warning", "reason": "Killed", "pod": "web-h1-c", "container": "main", "owner": "", "message": "killed"},
        {"time": NOW - 5, "type": "Normal", "reason": "Started", "pod": "agent-1", "container": "main", "owner": "", "message": "started"},
        {"time": NOW - 30, "type": "Normal", "reason": "SuccessfulDelete", "pod": "web-h1-z", "container": "", "owner": "Deployment/web",
         "message": "Deleted pod: web-h1-z"},
    ]
    results["node2"]["events"] = [
        # node2's clock is 10 s ahead: this happened at NOW - 25 on the controller's clock, between the two above
        {"time": NOW - 15, "type": "Normal", "reason": "Restarted", "pod": "web-h2-b", "container": "main", "owner": "", "message": "r", "count": 2},
        {"time": NOW - 14, "type": "Normal", "reason": "RolloutStep", "pod": "", "container": "", "owner": "Deployment/web", "message": "step"},
    ]
    workloads = wi.summarize(results, NOW, name="web")
    found = wi.collect_events(results, workloads, NOW)
    assert [(e["reason"], e["object"], e["node"]) for e in found] == [
        ("SuccessfulDelete", "pod/web-h1-z", "node1"),
        ("Restarted", "pod/web-h2-b", "node2"),
        ("RolloutStep", "deployment/web", "node2"),
        ("Killed", "pod/web-h1-c", "node1"),
    ]
    assert found[1]["count"] == 2 and found[1]["timestamp"] == pytest.approx(NOW - 25)
    table = wi.render_table(workloads, found, {}, NOW)
    assert table[-5].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "NODE", "MESSAGE"]
    assert table[-1].split() == ["20s", "Warning", "Killed", "pod/web-h1-c", "node1", "killed"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59, "59s"), (119, "119s"), (120, "2m"), (125, "2m5s"), (599, "9m59s"), (600, "10m"), (10799, "179m"), (10800, "3h"),
     (3 * 3600 + 60, "3h1m"), (8 * 3600, "8h"), (47 * 3600, "47h"), (48 * 3600, "2d"), (50 * 3600, "2d2h"), (8 * 86400, "8d"), (800 * 86400, "2y70d"),
     (9 * 365 * 86400, "9y"), (None, "<unknown>"), (-1, "0s")],
)
def test_human_duration_is_kubectls(seconds, text):
    assert wi.human_duration(seconds) == text


@given(st.integers(0, 20 * 365 * 86400))
def test_human_duration_shape(seconds):
    assert re.fullmatch(r"\d+(s|m|h|d|y)(\d+(s|m|h|d))?", wi.human_duration(seconds))


@given(st.lists(st.lists(st.text(alphabet="abc/-:0123456789 ", min_size=0, max_size=12), min_size=3, max_size=3), min_size=1, max_size=8))
def test_columns_line_up(rows):
    rows = [[cell.strip() or "-" for cell in row] for row in rows]
    lines = wi.columns(rows)
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for line, row in zip(lines, rows, strict=True):
        assert line == line.rstrip()
        # each cell starts where the widest cell of the columns before it (plus three spaces each) ends
        assert line.startswith(row[0])
        assert line[widths[0] + 3:].startswith(row[1])
        assert line[widths[0] + widths[1] + 6:].startswith(row[2])


def test_pod_status_text():
    assert wi.pod_status_text(pod("a", "Pod", "x")) == "Running"
    assert wi.pod_status_text(pod("a", "Pod", "x", phase="Pending", ready=False, containers=[container(state="waiting", ready=False)])) == "ContainerCreating"
    image = container(state="waiting", ready=False, reason="ErrImagePull")
    assert wi.pod_status_text(pod("a", "Pod", "x", phase="Pending", ready=False, containers=[image])) == "ErrImagePull"
    done = container(state="terminated", ready=False, exit_code=0)
    assert wi.pod_status_text(pod("a", "Pod", "x", phase="Succeeded", ready=False, containers=[done])) == "Completed"
