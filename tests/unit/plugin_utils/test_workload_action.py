"""The one orchestration path of every kind (issue 13), each kind's action plugin run against a simulated fleet:
--check forecasts a whole rollout whatever minReadySeconds, --check --diff shows each kind's templates, a stored
record that cannot be used is a clean failure that changes nothing, a Job is observed once per run."""

from __future__ import annotations

import json

import pytest
from workload_action_helpers import SimFleet, patch_clock, run_action, template

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_task import INFO_MODULE

V1 = ["/bin/sleep", "3600"]
V2 = ["/bin/sleep", "7200"]


@pytest.fixture
def clock(monkeypatch):
    return patch_clock(monkeypatch)


def moved(plan, key):
    return sum(len(names) for wave in plan for names in wave[key].values())


def kind_args(module, command, **extra):
    args = {"name": "web", "template": template(command), **extra}
    if module == "statefulset":
        args["serviceName"] = "web"
    if module == "job":
        args["template"]["spec"]["restartPolicy"] = "Never"
        args.setdefault("wait", False)  # its pod runs for an hour: the simulated fleet never ends it
    return args


# -- --check with minReadySeconds: the whole rollout ------------------------------------------------------------


@pytest.mark.parametrize(
    "module, extra",
    [
        ("deployment", {"replicas": 4, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}),
        ("replicaset", {"replicas": 4}),
        ("statefulset", {"replicas": 3}),
        ("daemonset", {}),
    ],
)
def test_check_mode_forecasts_the_whole_rollout_with_min_ready_seconds(clock, module, extra):
    fleet = SimFleet(clock)
    first = run_action(fleet, module, kind_args(module, V1, minReadySeconds=30, **extra))
    assert not first.get("failed"), first.get("msg")
    pods = {h: dict(p) for h, p in fleet.pods.items()}
    if module == "replicaset":
        # A ReplicaSet never replaces pods for a template change: its forecast is a scale-up from one node's pods.
        fleet.pods = {h: (p if h == "a" else {}) for h, p in fleet.pods.items()}
        expected = sum(len(p) for h, p in pods.items() if h != "a")
        check = run_action(fleet, module, kind_args(module, V1, minReadySeconds=30, **extra), check_mode=True)
        assert moved(check["plan"], "start") == expected, check["plan"]
        return
    check = run_action(fleet, module, kind_args(module, V2, minReadySeconds=30, **extra), check_mode=True)
    assert not check.get("failed"), check.get("msg")
    count = sum(len(p) for p in pods.values())
    assert len(check["plan"]) > 1 and moved(check["plan"], "start") == count and moved(check["plan"], "stop") == count, check["plan"]
    assert fleet.pods == pods, "check mode changes nothing"


# -- --check --diff: the templates of every kind ---------------------------------------------------------------


@pytest.mark.parametrize("module", ["deployment", "replicaset", "statefulset", "daemonset", "job"])
def test_check_diff_shows_the_running_and_the_requested_template(clock, module):
    fleet = SimFleet(clock)
    new = run_action(fleet, module, kind_args(module, V1), check_mode=True, diff=True)
    assert new["diff"]["before"] == "" and json.loads(new["diff"]["after"])["spec"]["containers"][0]["command"] == V1
    assert not run_action(fleet, module, kind_args(module, V1)).get("failed")
    if module == "job":
        diff = run_action(fleet, module, kind_args(module, V1), check_mode=True, diff=True)["diff"]
        assert diff["before"] == diff["after"] != ""
        return
    diff = run_action(fleet, module, kind_args(module, V2), check_mode=True, diff=True)["diff"]
    assert json.loads(diff["before"])["spec"]["containers"][0]["command"] == V1, diff
    assert json.loads(diff["after"])["spec"]["containers"][0]["command"] == V2, diff


# -- a stored record that cannot be used -----------------------------------------------------------------------


@pytest.mark.parametrize("module, kind", [("deployment", "Deployment"), ("statefulset", "StatefulSet"), ("daemonset", "DaemonSet"), ("job", "Job")])
@pytest.mark.parametrize("check_mode", [False, True])
def test_a_record_of_a_newer_schema_is_a_clean_failure_that_changes_nothing(clock, module, kind, check_mode):
    fleet = SimFleet(clock)
    fleet.plant(f"{kind}/web", {"schema": 99, "kind": kind, "name": "web"})
    result = run_action(fleet, module, kind_args(module, V1), check_mode=check_mode)
    assert result["failed"] and not result["changed"]
    assert result["msg"].startswith(f"the stored record of {kind} web on the nodes cannot be used: "), result["msg"]
    assert "schema 99" in result["msg"] and "invalid" not in result["msg"]
    assert "field" not in result
    assert not fleet.acts(), "nothing was acted on"
    assert all(not pods for pods in fleet.pods.values())


def test_a_record_error_raised_inside_reconcile_is_a_clean_failure(clock, monkeypatch):
    """Whatever raises it: here the controller's reconcile itself, after the record loaded."""
    from ansible_collections.hostfleet.workloads.plugins.action.replicaset import ActionModule
    from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers import records

    def broken(self, spec, record, observation, now):
        raise records.RecordError("the record says nonsense")

    monkeypatch.setattr(ActionModule, "reconcile", broken)
    fleet = SimFleet(clock)
    for check_mode in (False, True):
        result = run_action(fleet, "replicaset", kind_args("replicaset", V1), check_mode=check_mode)
        assert result["failed"] and result["msg"] == "the stored record of ReplicaSet web on the nodes cannot be used: the record says nonsense"
    assert not fleet.acts()


def test_another_value_error_is_a_bug_not_an_invalid_spec(clock, monkeypatch):
    from ansible_collections.hostfleet.workloads.plugins.action.replicaset import ActionModule

    def buggy(self, spec, record, observation, now):
        raise ValueError("a bug")

    monkeypatch.setattr(ActionModule, "reconcile", buggy)
    with pytest.raises(ValueError, match="a bug"):
        run_action(SimFleet(clock), "replicaset", kind_args("replicaset", V1))


def test_an_invalid_spec_still_names_its_field(clock):
    fleet = SimFleet(clock)
    result = run_action(fleet, "deployment", kind_args("deployment", V1, rollback_to=0))
    assert result["failed"] and result["msg"].startswith("invalid Deployment spec: ") and result["field"] == "rollback_to", result
    assert not fleet.acts()


# -- Job: one observation per run, its checks as a hook ------------------------------------------------------


def test_a_job_run_observes_the_fleet_once_before_its_first_step(clock):
    fleet = SimFleet(clock)
    result = run_action(fleet, "job", kind_args("job", V1), check_mode=True)
    assert not result.get("failed") and result["plan"], result
    assert [m for m, _hosts in fleet.asked] == [INFO_MODULE], "check mode: one observation, nothing else"
    fleet.asked.clear()
    run_action(fleet, "job", kind_args("job", V1))
    modules = [m for m, _hosts in fleet.asked]
    assert modules[0] == INFO_MODULE and modules.count(INFO_MODULE) == 1, modules


def test_a_job_refuses_a_changed_immutable_field_and_replaces_when_asked(clock):
    fleet = SimFleet(clock)
    run_action(fleet, "job", kind_args("job", V1))
    refused = run_action(fleet, "job", kind_args("job", V2))
    assert refused["failed"] and not refused["changed"] and refused["field"] == "spec.template" and "immutable" in refused["msg"]
    would = run_action(fleet, "job", kind_args("job", V2, replace=True), check_mode=True)
    assert would["replaced"] and would["changed"] and "would be deleted" in would["msg"]
    fleet.asked.clear()
    replaced = run_action(fleet, "job", kind_args("job", V2, replace=True))
    assert replaced["replaced"] and not replaced.get("failed"), replaced
    modules = [m for m, _hosts in fleet.asked]
    # observe, delete the old Job, observe what is left, start the new one
    assert modules[:2] == [INFO_MODULE, "hostfleet.workloads.pod"] and modules[2] == INFO_MODULE, modules
    revisions = {p["revision"] for pods in fleet.pods.values() for p in pods.values()}
    assert len(revisions) == 1


def test_a_deployments_result_names_the_revision_it_runs(clock):
    """The Deployment's `revision` (kubectl's deployment.kubernetes.io/revision) comes from the typed record."""
    fleet = SimFleet(clock)
    assert run_action(fleet, "deployment", kind_args("deployment", V1))["revision"] == 1
    assert run_action(fleet, "deployment", kind_args("deployment", V2))["revision"] == 2
    assert run_action(fleet, "deployment", kind_args("deployment", V2))["revision"] == 2
