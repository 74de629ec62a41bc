"""Jobs over the lab's 3 real hosts: Indexed with per-index retries, FailJob exit codes, deadlines, a node lost mid-Job."""

from __future__ import annotations

import pytest

from lab import labctl


def job(lab, name, spec=None, state="present", check=False, diff=False, **extra):
    args = {"name": name, "state": state}
    if state == "present":
        args.update(spec or {})
        args.setdefault("wait_timeout", 180)
    args.update(extra)
    run = lab.run([{"name": "job", "hostfleet.workloads.job": args, "run_once": True}], check=check, diff=diff)
    return run, run.result("job", lab.hosts[0])


def template(script, restart_policy="Never", grace=1):
    return {
        "spec": {
            "restartPolicy": restart_policy,
            "terminationGracePeriodSeconds": grace,
            "containers": [{"name": "main", "command": ["/bin/sh", "-c", script]}],
        }
    }


def job_units(lab, name, state="running"):
    """{host: [unit]} of a Job's pods in ``state`` on each host, read with systemctl."""
    found = {}
    for host in lab.hosts:
        out = lab.ssh(host, f"systemctl list-units --all --state={state} --plain --no-legend 'hf-{name}-*.main.service' | cut -d' ' -f1", check=False).stdout
        found[host] = sorted(out.split())
    return found


def pod_records(lab, name):
    """{host: [pod]} of a Job's pods that exist on each host (the node layer's records)."""
    found = {}
    for host in lab.hosts:
        out = lab.ssh(host, f"ls /var/lib/hostfleet/pods/ | grep '^{name}-' || true").stdout
        found[host] = sorted(out.split())
    return found


@pytest.fixture
def cleanup(lab):
    names = []
    yield names
    for name in names:
        job(lab, name, state="absent")


# Index 2 fails (exit 3) in its first two attempts (pods <job>-2-0 and <job>-2-1), then succeeds.
FLAKY = 'echo "index $JOB_COMPLETION_INDEX pod $POD_NAME"; [ "$JOB_COMPLETION_INDEX" = 2 ] && [ "${POD_NAME##*-}" -lt 2 ] && exit 3; sleep 1'


def test_indexed_job_retries_one_index_and_completes(lab, cleanup):
    cleanup.append("idx")
    spec = {"completions": 6, "parallelism": 3, "completionMode": "Indexed", "backoffLimitPerIndex": 3, "template": template(FLAKY)}
    run, res = job(lab, "idx", spec)
    assert run.rc == 0, run.stdout[-4000:]
    status = res["status"]
    assert status["completedIndexes"] == "0-5" and status["failedIndexes"] == ""
    assert status["succeeded"] == 6 and status["failed"] == 2 and status["active"] == 0
    assert [c["type"] for c in status["conditions"] if c["status"] == "True"] == ["Complete"]
    by_index = {}
    for pod in res["job_pods"]:
        by_index.setdefault(pod["index"], []).append(pod)
    assert sorted(by_index) == [0, 1, 2, 3, 4, 5]
    # Index 2: two failed attempts with exit code 3, then a success; every other index once.
    assert [(p["name"], p["outcome"], p["exit_codes"]) for p in by_index[2]] == [
        ("idx-2-0", "Failed", {"main": 3}),
        ("idx-2-1", "Failed", {"main": 3}),
        ("idx-2-2", "Succeeded", {"main": 0}),
    ]
    assert all(len(by_index[i]) == 1 and by_index[i][0]["outcome"] == "Succeeded" for i in (0, 1, 3, 4, 5))
    # Spread over the 3 hosts, and each pod's output is in its host's journal.
    assert {p["node"] for p in res["job_pods"]} == set(lab.hosts)
    first = by_index[2][0]
    log = lab.ssh(first["node"], f"journalctl --no-pager -o cat {first['logs']['main'].split(' ', 1)[1]}").stdout
    assert "index 2 pod idx-2-0" in log
    # Finished pods stay (inactive, with their records) until the Job is deleted.
    assert sum(len(v) for v in pod_records(lab, "idx").values()) == 8
    assert job_units(lab, "idx") == {h: [] for h in lab.hosts}

    # A re-run of the same playbook does not run the Job again.
    run, again = job(lab, "idx", spec)
    assert run.rc == 0 and again["changed"] is False, run.stdout[-3000:]
    assert again["plan"] == [] and again["status"]["succeeded"] == 6
    assert sum(len(v) for v in pod_records(lab, "idx").values()) == 8


def test_fail_job_exit_code_fails_at_once(lab, cleanup):
    cleanup.append("fatal")
    spec = {
        "completions": 3,
        "parallelism": 3,
        "backoffLimit": 6,
        "podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]},
        "template": template("exit 42"),
    }
    run, res = job(lab, "fatal", spec)
    assert run.rc != 0 and res["failed"] is True
    failed = [c for c in res["status"]["conditions"] if c["type"] == "Failed"]
    assert failed and failed[0]["reason"] == "PodFailurePolicy", res["status"]
    assert "exit code 42" in res["msg"] and "FailJob rule at index 0" in res["msg"]
    # No retry: the backoff limit (6) was not what ended it.
    assert len(res["job_pods"]) == 3 and all(p["exit_codes"] == {"main": 42} for p in res["job_pods"] if p["outcome"] == "Failed")


def test_active_deadline_stops_a_slow_job(lab, cleanup):
    cleanup.append("slow")
    spec = {"completions": 2, "parallelism": 2, "activeDeadlineSeconds": 4, "template": template("sleep 300")}
    run, res = job(lab, "slow", spec)
    assert run.rc != 0
    failed = [c for c in res["status"]["conditions"] if c["type"] == "Failed"]
    assert failed and failed[0]["reason"] == "DeadlineExceeded", res["status"]
    assert res["status"]["active"] == 0
    assert job_units(lab, "slow") == {h: [] for h in lab.hosts}


def test_node_stopped_mid_job_its_index_finishes_elsewhere(lab, cleanup):
    cleanup.append("span")
    spec = {"completions": 3, "parallelism": 3, "completionMode": "Indexed", "template": template("sleep 8")}
    run, res = job(lab, "span", spec, wait=False)
    assert run.rc == 0, run.stdout[-3000:]
    placed = {p["index"]: p["node"] for p in res["job_pods"]}
    assert sorted(placed.values()) == sorted(lab.hosts)
    lost_index = next(i for i, node in placed.items() if node == "node3")
    labctl.stop("node3")
    try:
        run, res = job(lab, "span", spec)
        assert run.rc == 0, run.stdout[-4000:]
        assert res["status"]["completedIndexes"] == "0-2"
        attempts = [p for p in res["job_pods"] if p["index"] == lost_index]
        assert [(p["node"], p["outcome"], p["reason"]) for p in attempts[:1]] == [("node3", "Failed", "NodeLost")]
        assert attempts[-1]["outcome"] == "Succeeded" and attempts[-1]["node"] in ("node1", "node2")
    finally:
        labctl.start("node3")
    lab.ssh("node3", "systemctl is-system-running --wait", check=False, timeout=90)
    # Back: the replaced pod on node3 is removed; the Job stays complete.
    run, res = job(lab, "span", spec)
    assert run.rc == 0, run.stdout[-3000:]
    assert res["status"]["completedIndexes"] == "0-2"
    assert pod_records(lab, "span")["node3"] == []


def test_immutable_change_refused_replace_reruns(lab, cleanup):
    cleanup.append("once")
    spec = {"template": template("echo first")}
    run, res = job(lab, "once", spec)
    assert run.rc == 0 and res["status"]["succeeded"] == 1
    changed_spec = {"template": template("echo second")}
    run, res = job(lab, "once", changed_spec)
    assert run.rc != 0 and res["field"] == "spec.template" and "replace: true" in res["msg"]
    run, res = job(lab, "once", changed_spec, replace=True)
    assert run.rc == 0 and res["replaced"] is True and res["status"]["succeeded"] == 1
    pod = res["job_pods"][0]
    assert "second" in lab.ssh(pod["node"], f"journalctl --no-pager -o cat -u hf-{pod['name']}.main.service").stdout


def test_check_mode_and_bad_input_touch_nothing(lab, cleanup):
    cleanup.append("plan")
    before = pod_records(lab, "plan")
    run, res = job(lab, "plan", {"completions": 4, "parallelism": 2, "completionMode": "Indexed", "template": template("true")}, check=True)
    assert run.rc == 0 and res["changed"] is True
    assert sorted(n for names in res["plan"][0]["start"].values() for n in names) == ["plan-0-0", "plan-1-0"]
    assert pod_records(lab, "plan") == before
    bad = [
        ({"template": template("true", restart_policy="Always")}, "spec.template.spec.restartPolicy"),
        ({"completionMode": "Indexed", "parallelism": 2, "template": template("true")}, "spec.completions"),
        (
            {"podFailurePolicy": {"rules": [{"action": "Explode", "onExitCodes": {"operator": "In", "values": [1]}}]}, "template": template("true")},
            "spec.podFailurePolicy.rules[0].action",
        ),
        (
            {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "Bad_Name", "command": ["/bin/true"]}]}}},
            "spec.template.spec.containers[0].name",
        ),
    ]
    for spec, field in bad:
        run, res = job(lab, "plan", spec)
        assert run.rc != 0 and res.get("field") == field, (field, res.get("msg"))
    assert pod_records(lab, "plan") == before


def test_on_failure_restarts_in_place_and_ttl_removes_pods_but_not_the_verdict(lab, cleanup):
    cleanup.append("again")
    # Fails once (no marker yet), then succeeds in the same pod: restartPolicy OnFailure restarts it in place.
    script = 'm=/var/tmp/hf-test-$POD_NAME; if [ -e $m ]; then rm -f $m; echo second; else touch $m; echo first; exit 5; fi'
    spec = {"backoffLimit": 3, "ttlSecondsAfterFinished": 0, "template": template(script, restart_policy="OnFailure")}
    run, res = job(lab, "again", spec)
    assert run.rc == 0, run.stdout[-3000:]
    assert res["status"]["succeeded"] == 1 and res["status"]["failed"] == 0 and res["status"]["podsRemovedAfterTTL"] is True
    [pod] = res["job_pods"]
    assert pod["name"] == "again-0" and pod["restarts"] == 1 and pod["exit_codes"] == {"main": 0}
    log = lab.ssh(pod["node"], "journalctl --no-pager -o cat -u hf-again-0.main.service").stdout
    assert "first" in log and "second" in log
    # The TTL removed the pods; the record stays, so the same playbook does not run the Job again.
    assert pod_records(lab, "again") == {h: [] for h in lab.hosts}
    run, res = job(lab, "again", spec)
    assert run.rc == 0 and res["changed"] is False and res["status"]["succeeded"] == 1
    assert pod_records(lab, "again") == {h: [] for h in lab.hosts}
