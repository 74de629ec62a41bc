"""Issue 13's wrong answers of the shared orchestration, on the lab's 3 real hosts: --check with minReadySeconds
forecasts the whole rollout, --check --diff of a StatefulSet shows its templates, a stored record of a newer schema
is a clean failure that changes nothing."""

from __future__ import annotations

import json

import pytest

NAME = "orch"


def template(version):
    return {
        "metadata": {"labels": {"app": NAME}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "command": ["/bin/sleep", "infinity"], "env": [{"name": "VERSION", "value": version}]}],
        },
    }


def task(lab, module, version="1", check=False, diff=False, **extra):
    args = {"name": NAME, "template": template(version), "wait_timeout": 120, **extra}
    run = lab.run([{"name": "it", f"hostfleet.workloads.{module}": args, "run_once": True}], check=check, diff=diff)
    return run, run.result("it", lab.hosts[0])


def remove(lab, module):
    lab.run([{"name": "cleanup", f"hostfleet.workloads.{module}": {"name": NAME, "state": "absent"}, "run_once": True}])


@pytest.fixture
def clean(lab):
    modules = []
    yield modules.append
    for module in modules:
        remove(lab, module)


def moved(plan, key):
    return sum(len(names) for wave in plan for names in wave[key].values())


def test_check_with_min_ready_seconds_forecasts_the_whole_rollout(lab, clean):
    clean("deployment")
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    run, res = task(lab, "deployment", replicas=2, minReadySeconds=2, strategy=strategy)
    assert run.rc == 0, run.stdout[-3000:]
    run, res = task(lab, "deployment", version="2", check=True, replicas=2, minReadySeconds=2, strategy=strategy)
    assert run.rc == 0 and res["changed"], run.stdout[-3000:]
    assert moved(res["plan"], "start") == 2 and moved(res["plan"], "stop") == 2 and len(res["plan"]) == 4, res["plan"]


def test_check_diff_of_a_statefulset_template_change_shows_both_templates(lab, clean):
    clean("statefulset")
    run, res = task(lab, "statefulset", replicas=1, serviceName=NAME)
    assert run.rc == 0, run.stdout[-3000:]
    run, res = task(lab, "statefulset", version="2", check=True, diff=True, replicas=1, serviceName=NAME)
    assert run.rc == 0 and res["changed"], run.stdout[-3000:]
    before, after = json.loads(res["diff"]["before"]), json.loads(res["diff"]["after"])
    assert before["spec"]["containers"][0]["env"] == [{"name": "VERSION", "value": "1"}], res["diff"]
    assert after["spec"]["containers"][0]["env"] == [{"name": "VERSION", "value": "2"}], res["diff"]


def test_a_stored_record_of_a_newer_schema_fails_cleanly_and_changes_nothing(lab, clean):
    clean("deployment")
    path = f"/var/lib/hostfleet/owners/deployment.{NAME}.json"
    record = json.dumps({"schema": 99, "kind": "Deployment", "name": NAME})
    for host in lab.hosts:
        lab.ssh(host, f"mkdir -p /var/lib/hostfleet/owners && printf '%s' '{record}' > {path}")
    try:
        for check in (False, True):
            run, res = task(lab, "deployment", replicas=2, check=check)
            assert run.rc != 0 and res["failed"] and not res["changed"], res
            assert res["msg"].startswith(f"the stored record of Deployment {NAME} on the nodes cannot be used: ") and "schema 99" in res["msg"], res["msg"]
            # ansible-core adds "(traceback unavailable)" to any failure that raised nothing
            assert "most recent call last" not in str(res.get("exception", "")), res["exception"]
        for host in lab.hosts:
            assert lab.ssh(host, f"ls /etc/systemd/system | grep -c '^hf-{NAME}-' || true").stdout.strip() == "0"
            assert json.loads(lab.ssh(host, f"cat {path}").stdout) == json.loads(record), "the record is left as it was"
    finally:
        for host in lab.hosts:
            lab.ssh(host, f"rm -f {path}", check=False)
