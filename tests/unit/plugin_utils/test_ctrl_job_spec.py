# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Job spec: Kubernetes' defaults, each validation error with its field path, and the immutable fields."""

from __future__ import annotations

import json

import pytest

from ansible_collections.hostfleet.workloads.plugins.module_utils.job import tracking
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.job.spec import (
    IMMUTABLE,
    changed_immutable_fields,
    parse_job_spec,
    validate_job_name,
)


def template(restart_policy="Never", command=None, containers=("main", "side"), labels=None):
    spec = {"containers": [{"name": c, "command": command or ["/bin/true"]} for c in containers]}
    if restart_policy is not None:
        spec["restartPolicy"] = restart_policy
    result = {"spec": spec}
    if labels is not None:
        result["metadata"] = {"labels": labels}
    return result


def raw(restart_policy="Never", **fields):
    return dict({"template": template(restart_policy)}, **fields)


def job(name="work", restart_policy="Never", **fields):
    return parse_job_spec(name, raw(restart_policy, **fields))


def indexed(completions=4, **fields):
    return job(completionMode="Indexed", completions=completions, **fields)


def exit_codes(operator="In", values=(1,), container=None, action="Count"):
    codes = {"operator": operator, "values": list(values)}
    if container is not None:
        codes["containerName"] = container
    return {"podFailurePolicy": {"rules": [{"action": action, "onExitCodes": codes}]}}


def error_of(name="work", restart_policy="Never", **fields):
    with pytest.raises(SpecError) as info:
        parse_job_spec(name, raw(restart_policy, **fields))
    return info.value


# -- defaults ---------------------------------------------------------------------------------


def test_defaults_one_pod_to_completion():
    spec = job()
    assert spec.name == "work" and not spec.indexed
    normal = dict(spec.normal)
    assert normal.pop("template") == {"metadata": {"labels": {}}, "spec": template()["spec"]}
    assert normal == {
        "completions": 1,
        "parallelism": 1,
        "completionMode": "NonIndexed",
        "backoffLimit": 6,
        "backoffLimitPerIndex": None,
        "maxFailedIndexes": None,
        "podFailurePolicy": None,
        "successPolicy": None,
        "activeDeadlineSeconds": None,
        "ttlSecondsAfterFinished": None,
        "suspend": False,
    }


def test_parallelism_only_is_a_work_queue():
    normal = job(parallelism=3).normal
    assert normal["completions"] is None and normal["parallelism"] == 3


def test_completions_only_runs_one_at_a_time():
    normal = job(completions=5).normal
    assert normal["completions"] == 5 and normal["parallelism"] == 1


def test_zero_values_are_kept():
    normal = job(completions=0, parallelism=0, backoffLimit=0, ttlSecondsAfterFinished=0).normal
    assert (normal["completions"], normal["parallelism"], normal["backoffLimit"], normal["ttlSecondsAfterFinished"]) == (0, 0, 0, 0)


def test_backoff_limit_default_is_max_int32_with_a_per_index_limit():
    assert indexed(backoffLimitPerIndex=1).normal["backoffLimit"] == 2147483647 == tracking.MAX_INT32
    assert indexed(backoffLimitPerIndex=1, backoffLimit=3).normal["backoffLimit"] == 3
    assert indexed().normal["backoffLimit"] == 6


def test_indexed_normal_form():
    spec = indexed(completions=6, parallelism=3, backoffLimitPerIndex=2, maxFailedIndexes=6)
    assert spec.indexed
    normal = spec.normal
    assert (normal["completionMode"], normal["completions"], normal["parallelism"]) == ("Indexed", 6, 3)
    assert (normal["backoffLimitPerIndex"], normal["maxFailedIndexes"]) == (2, 6)


def test_other_fields_are_kept():
    normal = job(activeDeadlineSeconds=30, ttlSecondsAfterFinished=60, suspend=True, restart_policy="OnFailure").normal
    assert (normal["activeDeadlineSeconds"], normal["ttlSecondsAfterFinished"], normal["suspend"]) == (30, 60, True)
    assert normal["template"]["spec"]["restartPolicy"] == "OnFailure"


def test_pod_failure_policy_normal_form():
    policy = {
        "rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42, 3]}},
            {"action": "Ignore", "onExitCodes": {"operator": "NotIn", "values": [0, 1]}},
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {"action": "Count", "onPodConditions": [{"type": "DisruptionTarget", "status": "False"}]},
        ]
    }
    assert job(podFailurePolicy=policy).normal["podFailurePolicy"] == {
        "rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [3, 42]}},
            {"action": "Ignore", "onExitCodes": {"containerName": None, "operator": "NotIn", "values": [0, 1]}},
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "Count", "onPodConditions": [{"type": "DisruptionTarget", "status": "False"}]},
        ]
    }
    assert job(podFailurePolicy={"rules": []}).normal["podFailurePolicy"] == {"rules": []}


def test_fail_index_with_a_per_index_limit():
    spec = indexed(backoffLimitPerIndex=1, **exit_codes(action="FailIndex", values=[3]))
    assert spec.normal["podFailurePolicy"]["rules"][0]["action"] == "FailIndex"


def test_success_policy_normal_form():
    policy = {"rules": [{"succeededIndexes": "0,2-3"}, {"succeededCount": 2}, {"succeededIndexes": "1-3", "succeededCount": 2}]}
    assert indexed(successPolicy=policy).normal["successPolicy"] == {
        "rules": [
            {"succeededIndexes": [0, 2, 3], "succeededCount": None},
            {"succeededIndexes": None, "succeededCount": 2},
            {"succeededIndexes": [1, 2, 3], "succeededCount": 2},
        ]
    }


def test_template_labels_are_kept():
    spec = parse_job_spec("work", {"template": template(labels={"app": "work"})})
    assert spec.normal["template"]["metadata"] == {"labels": {"app": "work"}}
    assert spec.template_hash == spec.template.hash


# -- validation errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "restart_policy, fields, path",
    [
        # the template
        ("Always", {}, "spec.template.spec.restartPolicy"),
        (None, {}, "spec.template.spec.restartPolicy"),  # the pod default, Always
        ("Never", {"template": None}, "spec.template"),
        ("Never", {"template": {"spec": {"restartPolicy": "Never"}}}, "spec.template.spec.containers"),
        # counts
        ("Never", {"completions": -1}, "spec.completions"),
        ("Never", {"completions": "3"}, "spec.completions"),
        ("Never", {"parallelism": -1}, "spec.parallelism"),
        ("Never", {"parallelism": True}, "spec.parallelism"),
        ("Never", {"backoffLimit": -1}, "spec.backoffLimit"),
        ("Never", {"backoffLimit": 1.5}, "spec.backoffLimit"),
        ("Never", {"activeDeadlineSeconds": 0}, "spec.activeDeadlineSeconds"),
        ("Never", {"ttlSecondsAfterFinished": -1}, "spec.ttlSecondsAfterFinished"),
        ("Never", {"suspend": "yes"}, "spec.suspend"),
        ("Never", {"suspend": 1}, "spec.suspend"),
        # completion mode
        ("Never", {"completionMode": "Ordered"}, "spec.completionMode"),
        ("Never", {"completionMode": "Indexed"}, None),  # completions 1 by default: fine
        ("Never", {"completionMode": "Indexed", "parallelism": 2}, "spec.completions"),
        ("Never", {"completionMode": "Indexed", "completions": 100001}, "spec.completions"),
        ("Never", {"completionMode": "Indexed", "completions": 3, "parallelism": 100001}, "spec.parallelism"),
        # per-index backoff
        ("Never", {"backoffLimitPerIndex": 1}, "spec.backoffLimitPerIndex"),
        ("Never", {"backoffLimitPerIndex": 1, "completions": 3}, "spec.backoffLimitPerIndex"),
        ("OnFailure", {"completionMode": "Indexed", "completions": 3, "backoffLimitPerIndex": 1}, "spec.backoffLimitPerIndex"),
        ("Never", {"completionMode": "Indexed", "completions": 3, "backoffLimitPerIndex": -1}, "spec.backoffLimitPerIndex"),
        ("Never", {"completionMode": "Indexed", "completions": 3, "maxFailedIndexes": 1}, "spec.maxFailedIndexes"),
        ("Never", {"completionMode": "Indexed", "completions": 3, "backoffLimitPerIndex": 1, "maxFailedIndexes": 4}, "spec.maxFailedIndexes"),
        ("Never", {"completionMode": "Indexed", "completions": 3, "backoffLimitPerIndex": 1, "maxFailedIndexes": -1}, "spec.maxFailedIndexes"),
        # pod failure policy
        ("OnFailure", exit_codes(), "spec.podFailurePolicy"),
        ("Never", {"podFailurePolicy": {"rules": "x"}}, "spec.podFailurePolicy.rules"),
        ("Never", {"podFailurePolicy": {"rules": [{"action": "Count", "onExitCodes": {"operator": "In", "values": [1]}}] * 21}}, "spec.podFailurePolicy.rules"),
        ("Never", {"podFailurePolicy": {"rule": []}}, "spec.podFailurePolicy.rule"),
        ("Never", exit_codes(action="FailIndex"), "spec.podFailurePolicy.rules[0].action"),
        ("Never", exit_codes(action="Restart"), "spec.podFailurePolicy.rules[0].action"),
        ("Never", exit_codes(values=[1, 0]), "spec.podFailurePolicy.rules[0].onExitCodes.values[1]"),
        ("Never", exit_codes(operator="NotIn", values=[0]), None),  # 0 is fine with NotIn
        ("Never", exit_codes(values=[3, 1, 3]), "spec.podFailurePolicy.rules[0].onExitCodes.values"),
        ("Never", exit_codes(values=[]), "spec.podFailurePolicy.rules[0].onExitCodes.values"),
        ("Never", exit_codes(values=list(range(1, 257))), "spec.podFailurePolicy.rules[0].onExitCodes.values"),
        ("Never", exit_codes(values=[256]), "spec.podFailurePolicy.rules[0].onExitCodes.values[0]"),
        ("Never", exit_codes(values=[1, True]), "spec.podFailurePolicy.rules[0].onExitCodes.values[1]"),
        ("Never", exit_codes(operator="Equals"), "spec.podFailurePolicy.rules[0].onExitCodes.operator"),
        ("Never", exit_codes(container="nope"), "spec.podFailurePolicy.rules[0].onExitCodes.containerName"),
        ("Never", exit_codes(container=["main"]), "spec.podFailurePolicy.rules[0].onExitCodes.containerName"),
        ("Never", exit_codes(container="side"), None),
        ("Never", {"podFailurePolicy": {"rules": [{"action": "Ignore"}]}}, "spec.podFailurePolicy.rules[0]"),
        (
            "Never",
            {"podFailurePolicy": {"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [1]}, "onPodConditions": [{"type": "X"}]}]}},
            "spec.podFailurePolicy.rules[0]",
        ),
        ("Never", {"podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": []}]}}, "spec.podFailurePolicy.rules[0].onPodConditions"),
        ("Never", {"podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{}]}]}}, "spec.podFailurePolicy.rules[0].onPodConditions[0].type"),
        (
            "Never",
            {"podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "Maybe"}]}]}},
            "spec.podFailurePolicy.rules[0].onPodConditions[0].status",
        ),
        (
            "Never",
            {"podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "reason": "x"}]}]}},
            "spec.podFailurePolicy.rules[0].onPodConditions[0].reason",
        ),
        (
            "Never",
            {"podFailurePolicy": {"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [1], "x": 1}}]}},
            "spec.podFailurePolicy.rules[0].onExitCodes.x",
        ),
        ("Never", {"podFailurePolicy": {"rules": [{"action": "Ignore", "foo": 1}]}}, "spec.podFailurePolicy.rules[0].foo"),
        # success policy
        ("Never", {"successPolicy": {"rules": [{"succeededCount": 1}]}}, "spec.successPolicy"),
        ("Never", {"completions": 3, "successPolicy": {"rules": [{"succeededCount": 1}]}}, "spec.successPolicy"),
        ("Never", {"completionMode": "Indexed", "completions": 3, "successPolicy": {"rules": []}}, "spec.successPolicy.rules"),
        ("Never", {"completionMode": "Indexed", "completions": 3, "successPolicy": {"rules": [{"succeededCount": 1}] * 21}}, "spec.successPolicy.rules"),
        ("Never", {"completionMode": "Indexed", "completions": 3, "successPolicy": {"rules": [{}]}}, "spec.successPolicy.rules[0]"),
        (
            "Never",
            {"completionMode": "Indexed", "completions": 3, "successPolicy": {"rules": [{"succeededCount": 4}]}},
            "spec.successPolicy.rules[0].succeededCount",
        ),
        (
            "Never",
            {"completionMode": "Indexed", "completions": 5, "successPolicy": {"rules": [{"succeededIndexes": "0-1", "succeededCount": 3}]}},
            "spec.successPolicy.rules[0].succeededCount",
        ),
        (
            "Never",
            {"completionMode": "Indexed", "completions": 3, "successPolicy": {"rules": [{"succeededCount": -1}]}},
            "spec.successPolicy.rules[0].succeededCount",
        ),
        (
            "Never",
            {"completionMode": "Indexed", "completions": 3, "successPolicy": {"rules": [{"succeededIndexes": "0-3"}]}},
            "spec.successPolicy.rules[0].succeededIndexes",
        ),
        (
            "Never",
            {"completionMode": "Indexed", "completions": 3, "successPolicy": {"rules": [{"succeededIndexes": "2,1"}]}},
            "spec.successPolicy.rules[0].succeededIndexes",
        ),
        (
            "Never",
            {"completionMode": "Indexed", "completions": 3, "successPolicy": {"rules": [{"succeededIndexes": "x"}]}},
            "spec.successPolicy.rules[0].succeededIndexes",
        ),
        (
            "Never",
            {"completionMode": "Indexed", "completions": 3, "successPolicy": {"rules": [{"succeededIndexes": ""}]}},
            "spec.successPolicy.rules[0].succeededIndexes",
        ),
        (
            "Never",
            {"completionMode": "Indexed", "completions": 3, "successPolicy": {"rules": [{"succeededIndexes": [0]}]}},
            "spec.successPolicy.rules[0].succeededIndexes",
        ),
        (
            "Never",
            {"completionMode": "Indexed", "completions": 3, "successPolicy": {"rules": [{"succeededCount": 1, "x": 1}]}},
            "spec.successPolicy.rules[0].x",
        ),
        ("Never", {"completionMode": "Indexed", "completions": 3, "successPolicy": {"rule": []}}, "spec.successPolicy.rule"),
        # unknown fields
        ("Never", {"foo": 1}, "spec.foo"),
        ("Never", {"selector": {"matchLabels": {"a": "b"}}}, "spec.selector"),
        ("Never", {"manualSelector": True}, "spec.manualSelector"),
    ],
)
def test_validation_errors_name_the_field(restart_policy, fields, path):
    if path is None:
        parse_job_spec("work", raw(restart_policy, **fields))
        return
    error = error_of(restart_policy=restart_policy, **fields)
    assert error.path == path, error
    assert str(error).startswith(f"{path}: ")


def test_error_messages():
    assert "'Always'" in error_of(restart_policy="Always").message
    assert "OnFailure" in error_of(restart_policy="OnFailure", **exit_codes()).message
    assert "not a container of the template (main, side)" in error_of(**exit_codes(container="nope")).message
    assert "0" in error_of(**exit_codes(values=[0])).message
    message = error_of(completionMode="Indexed", completions=3, successPolicy={"rules": [{"succeededCount": 4}]}).message
    assert "at most 3" in message
    assert "requires completionMode Indexed" in error_of(backoffLimitPerIndex=1).message
    assert "requires backoffLimitPerIndex" in error_of(completionMode="Indexed", completions=3, maxFailedIndexes=1).message
    assert "FailIndex requires spec.backoffLimitPerIndex" in error_of(**exit_codes(action="FailIndex")).message


def test_spec_is_required():
    with pytest.raises(SpecError) as info:
        parse_job_spec("work", None)
    assert info.value.path == "spec"


@pytest.mark.parametrize("name", ["", None, 3, "Work", "-work", "work-", "work_", "_1", "work_Job", "work.1", "wörk", "a" * 64, "work job"])
def test_bad_names(name):
    with pytest.raises(SpecError) as info:
        parse_job_spec(name, raw())
    assert info.value.path == "metadata.name"


@pytest.mark.parametrize("name", ["w", "0", "work", "work-1", "1-work", "a" * 63])
def test_good_names(name):
    assert parse_job_spec(name, raw()).name == name
    assert validate_job_name(name) == name


def test_name_is_checked_first():
    with pytest.raises(SpecError) as info:
        parse_job_spec("Bad", {"foo": 1})
    assert info.value.path == "metadata.name"


# -- immutable fields -------------------------------------------------------------------------


def stored_of(spec):
    """The immutable fields as the record keeps them (a JSON round trip)."""
    return json.loads(json.dumps(spec.immutable_fields()))


BASE = {
    "completionMode": "Indexed",
    "completions": 4,
    "parallelism": 2,
    "backoffLimitPerIndex": 1,
    "podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]},
    "successPolicy": {"rules": [{"succeededCount": 3}]},
}


def test_immutable_fields_unchanged():
    spec = job(**BASE)
    assert set(spec.immutable_fields()) == set(IMMUTABLE)
    assert changed_immutable_fields(None, spec) == []
    assert changed_immutable_fields({}, spec) == []
    assert changed_immutable_fields(stored_of(spec), spec) == []
    assert spec.immutable_hash() == job(**BASE).immutable_hash()


@pytest.mark.parametrize(
    "changes",
    [
        {"parallelism": 4},
        {"suspend": True},
        {"backoffLimit": 1},
        {"maxFailedIndexes": 2},
        {"activeDeadlineSeconds": 60},
        {"ttlSecondsAfterFinished": 0},
    ],
)
def test_mutable_fields_may_change(changes):
    before = job(**BASE)
    after = job(**dict(BASE, **changes))
    assert changed_immutable_fields(stored_of(before), after) == []
    assert before.immutable_hash() == after.immutable_hash()


@pytest.mark.parametrize(
    "changes, fields",
    [
        ({"completions": 5}, ["spec.completions"]),
        ({"backoffLimitPerIndex": 2}, ["spec.backoffLimitPerIndex"]),
        ({"podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [43]}}]}}, ["spec.podFailurePolicy"]),
        ({"podFailurePolicy": None}, ["spec.podFailurePolicy"]),
        ({"successPolicy": {"rules": [{"succeededCount": 2}]}}, ["spec.successPolicy"]),
        ({"successPolicy": {"rules": [{"succeededIndexes": "0-2"}]}}, ["spec.successPolicy"]),
        (
            {"completionMode": "NonIndexed", "backoffLimitPerIndex": None, "successPolicy": None},
            ["spec.completionMode", "spec.backoffLimitPerIndex", "spec.successPolicy"],
        ),
        ({"template": template(command=["/bin/false"])}, ["spec.template"]),
        ({"template": template(labels={"app": "x"})}, ["spec.template"]),
        ({"template": template(command=["/bin/false"]), "completions": 6}, ["spec.template", "spec.completions"]),
    ],
)
def test_immutable_fields_changed(changes, fields):
    before = job(**BASE)
    after = parse_job_spec("work", dict(raw(), **dict(BASE, **changes)))
    assert changed_immutable_fields(stored_of(before), after) == fields
    assert before.immutable_hash() != after.immutable_hash()


def test_equivalent_spellings_are_not_a_change():
    before = job(**{**BASE, "podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42, 7]}}]}})
    after = job(**{**BASE, "podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [7, 42]}}]}})
    assert changed_immutable_fields(stored_of(before), after) == []
    before = job(**{**BASE, "successPolicy": {"rules": [{"succeededIndexes": "0-2"}]}})
    after = job(**{**BASE, "successPolicy": {"rules": [{"succeededIndexes": "0,1,2"}]}})
    assert changed_immutable_fields(stored_of(before), after) == []
