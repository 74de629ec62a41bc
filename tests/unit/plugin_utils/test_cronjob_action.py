"""The CronJob action on the one orchestration path (issue 13): one observation round (its node module's report),
the scheduler's node choice (scheduler/one_node.py), one act; against a simulated fleet."""

from __future__ import annotations

import pytest
from workload_action_helpers import TIMER_MODULE, SimFleet, patch_clock, run_action

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.one_node import rendezvous

JOB_TEMPLATE = {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "x", "command": ["/bin/true"]}]}}}}


@pytest.fixture
def clock(monkeypatch):
    return patch_clock(monkeypatch)


def cronjob(**extra):
    return {"name": "report", "schedule": "*/5 * * * *", "jobTemplate": JOB_TEMPLATE, **extra}


def installed(fleet):
    return sorted(h for h, timers in fleet.timers.items() if "report" in timers)


def test_one_observation_then_one_act_on_the_chosen_node(clock):
    fleet = SimFleet(clock)
    result = run_action(fleet, "cronjob", cronjob())
    chosen = rendezvous("report", ["a", "b", "c"])
    assert not result.get("failed") and result["changed"] and result["nodes"] == [chosen] and installed(fleet) == [chosen], result
    assert [m for m, _hosts in fleet.asked] == [TIMER_MODULE, TIMER_MODULE]
    assert fleet.asked[0][1] == ["a", "b", "c"] and fleet.asked[1][1] == [chosen], "observe every node, act on the chosen one"
    assert result["status"]["active"] == [] and result["on_calendar"]
    again = run_action(fleet, "cronjob", cronjob())
    assert not again["changed"] and again["nodes"] == [chosen] and again["moved_from"] == []


def test_kept_while_eligible_then_moved_and_removed_from_its_old_node(clock):
    fleet = SimFleet(clock)
    for host in fleet.hosts:
        fleet.labels[host] = {"disk": "ssd"}
    template = {"spec": {"template": {"spec": dict(JOB_TEMPLATE["spec"]["template"]["spec"], nodeSelector={"disk": "ssd"})}}}
    # installed on a node rendezvous would not choose: kept there while it stays eligible
    other = next(h for h in fleet.hosts if h != rendezvous("report", fleet.hosts))
    fleet.timers[other]["report"] = {"stale": True}
    kept = run_action(fleet, "cronjob", cronjob(jobTemplate=template))
    assert kept["nodes"] == [other] and installed(fleet) == [other]
    fleet.labels[other] = {"disk": "hdd"}
    moved = run_action(fleet, "cronjob", cronjob(jobTemplate=template))
    remaining = [h for h in fleet.hosts if h != other]
    assert moved["nodes"] == [rendezvous("report", remaining)] and moved["moved_from"] == [other], moved
    assert installed(fleet) == moved["nodes"]


def test_run_on_every_eligible_node_and_no_eligible_node_fails_changing_nothing(clock):
    fleet = SimFleet(clock)
    fleet.labels["b"] = {"zone": "x"}
    every = run_action(fleet, "cronjob", cronjob(run_on="every"))
    assert every["nodes"] == ["a", "b", "c"] and installed(fleet) == ["a", "b", "c"]
    template = {"spec": {"template": {"spec": dict(JOB_TEMPLATE["spec"]["template"]["spec"], nodeSelector={"zone": "y"})}}}
    fleet.asked.clear()
    none = run_action(fleet, "cronjob", cronjob(jobTemplate=template))
    assert none["failed"] and "no reachable node matches" in none["msg"] and [m for m, _h in fleet.asked] == [TIMER_MODULE]


def test_check_mode_and_absent(clock):
    fleet = SimFleet(clock)
    check = run_action(fleet, "cronjob", cronjob(), check_mode=True, diff=True)
    assert check["changed"] and installed(fleet) == [] and check["diff"]["before"] == "" and '"schedule": "*/5 * * * *"' in check["diff"]["after"]
    run_action(fleet, "cronjob", cronjob())
    where = installed(fleet)
    gone = run_action(fleet, "cronjob", {"name": "report", "state": "absent"})
    assert gone["changed"] and gone["removed_from"] == where and installed(fleet) == []
    assert not run_action(fleet, "cronjob", {"name": "report", "state": "absent"})["changed"]
