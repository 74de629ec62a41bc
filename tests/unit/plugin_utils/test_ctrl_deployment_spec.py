"""Deployment spec validation: defaults, and errors that name the field path."""

from __future__ import annotations

import copy

import pytest
from plugin_utils_helpers import raw_spec, template

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.spec import parse_deployment_spec


def test_defaults():
    spec = parse_deployment_spec("api", {"selector": {"matchLabels": {"app": "api"}}, "template": template()})
    assert spec.replicas == 1
    assert spec.strategy == "RollingUpdate"
    assert (spec.max_surge, spec.max_unavailable) == ("25%", "25%")
    assert (spec.min_ready_seconds, spec.progress_deadline_seconds, spec.revision_history_limit) == (0, 600, 10)
    assert spec.paused is False and spec.rollback_on_failure is False
    assert spec.to_json()["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}


def test_budgets_like_kubernetes():
    spec = parse_deployment_spec("api", raw_spec(10))
    assert (spec.max_surge_for(), spec.max_unavailable_for()) == (3, 2)
    assert spec.max_unavailable_for(0) == 0
    recreate = parse_deployment_spec("api", raw_spec(10, strategy={"type": "Recreate"}))
    assert (recreate.max_surge_for(), recreate.max_unavailable_for()) == (0, 0)
    all_at_once = parse_deployment_spec("api", raw_spec(3, strategy={"rollingUpdate": {"maxUnavailable": "100%", "maxSurge": 0}}))
    assert all_at_once.max_unavailable_for() == 3  # never more than replicas


def test_template_hash_ignores_key_order_and_explicit_defaults():
    a = parse_deployment_spec("api", raw_spec())
    b_raw = raw_spec()
    b_raw["template"]["spec"]["restartPolicy"] = "Always"
    b_raw["template"]["spec"]["terminationGracePeriodSeconds"] = 30
    b = parse_deployment_spec("api", b_raw)
    assert a.template_hash == b.template_hash
    assert a.template_hash != parse_deployment_spec("api", raw_spec(version="v2")).template_hash


def test_replicas_and_strategy_are_not_part_of_the_template_hash():
    a = parse_deployment_spec("api", raw_spec(3))
    b = parse_deployment_spec("api", raw_spec(9, strategy={"type": "Recreate"}))
    assert a.template_hash == b.template_hash
    assert a.spec_hash() != b.spec_hash()


def test_restart_annotation_changes_the_hash():
    a = parse_deployment_spec("api", raw_spec())
    raw = raw_spec()
    raw["template"]["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}
    assert parse_deployment_spec("api", raw).template_hash != a.template_hash


def test_the_raw_template_is_kept_for_the_node_layer():
    raw = raw_spec()
    raw["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "500m"}}
    spec = parse_deployment_spec("api", raw)
    assert spec.template.template["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "500m"}}
    assert spec.template.normal["spec"]["containers"][0]["resources"]["requests"] == {"cpu": 500}
    pod_template = spec.template.pod_template(spec.template_hash)
    assert pod_template["metadata"]["labels"] == {"app": "api", "pod-template-hash": spec.template_hash}
    assert "annotations" not in pod_template["metadata"]  # no revision number on pods, as in Kubernetes


def with_change(path, value):
    raw = raw_spec()
    target = raw
    keys = path.split(".")
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    if value is DELETE:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return raw


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "error_path", "fragment"),
    [
        ("strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxSurg": 1}}, "spec.strategy.rollingUpdate.maxSurg", "unknown field"),
        ("replica", 3, "spec.replica", "unknown field"),
        ("replicas", -1, "spec.replicas", "greater than or equal to 0"),
        ("replicas", "3", "spec.replicas", "must be an integer"),
        ("replicas", True, "spec.replicas", "must be an integer"),
        ("selector", DELETE, "spec.selector", "required"),
        ("selector", {}, "spec.selector", "empty selector"),
        ("selector", {"matchLabels": {"app": "web"}}, "spec.template.metadata.labels", "does not match"),
        ("selector", {"matchExpressions": [{"key": "app", "operator": "In"}]}, "spec.selector.matchExpressions[0].values", "non-empty"),
        ("template", DELETE, "spec.template", "required"),
        ("template.spec", DELETE, "spec.template.spec", "required"),
        ("template.metadata.name", "x", "spec.template.metadata.name", "unknown field"),
        ("template.metadata.labels", {"app": "api", "pod-template-hash": "x"}, "spec.template.metadata.labels['pod-template-hash']", "reserved"),
        ("template.spec.restartPolicy", "Never", "spec.template.spec.restartPolicy", "supported values: 'Always'"),
        ("template.spec.containers", [], "spec.template.spec.containers", "at least one"),
        ("template.spec.nodeSelector", {"disk": "s s d"}, "spec.template.spec.nodeSelector['disk']", "not a valid label value"),
        ("strategy", {"type": "BlueGreen"}, "spec.strategy.type", "Unsupported value"),
        (
            "strategy",
            {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}},
            "spec.strategy.rollingUpdate",
            "may not be specified when strategy `type` is 'Recreate'",
        ),
        (
            "strategy",
            {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}},
            "spec.strategy.rollingUpdate.maxUnavailable",
            "may not be 0 when `maxSurge` is 0",
        ),
        ("strategy", {"rollingUpdate": {"maxSurge": "0%", "maxUnavailable": 0}}, "spec.strategy.rollingUpdate.maxUnavailable", "may not be 0"),
        ("strategy", {"rollingUpdate": {"maxSurge": "1.5"}}, "spec.strategy.rollingUpdate.maxSurge", "percentage"),
        ("strategy", {"rollingUpdate": {"maxUnavailable": "101%"}}, "spec.strategy.rollingUpdate.maxUnavailable", "100%"),
        ("strategy", "Recreate", "spec.strategy", "mapping"),
        ("minReadySeconds", -5, "spec.minReadySeconds", "greater than or equal to 0"),
        ("progressDeadlineSeconds", 10, "spec.progressDeadlineSeconds", "greater than minReadySeconds"),
        ("revisionHistoryLimit", -1, "spec.revisionHistoryLimit", "greater than or equal to 0"),
        ("paused", "yes", "spec.paused", "must be a boolean"),
        ("rollbackOnFailure", 1, "spec.rollbackOnFailure", "must be a boolean"),
        (
            "template.spec.affinity",
            {
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "api"}}, "topologyKey": "zone"}]
                }
            },
            "spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
            "only kubernetes.io/hostname",
        ),
    ],
)
def test_errors_name_the_field(path, value, error_path, fragment):
    raw = with_change(path, value)
    if path == "progressDeadlineSeconds":
        raw["minReadySeconds"] = 10
    with pytest.raises(SpecError) as err:
        parse_deployment_spec("api", raw)
    assert err.value.path == error_path, err.value
    assert fragment in err.value.message, err.value
    assert str(err.value).startswith(error_path + ": ")


def test_pod_spec_errors_come_from_the_node_layer_with_their_path():
    raw = raw_spec()
    raw["template"]["spec"]["containers"][0]["command"] = ["relative"]
    with pytest.raises(SpecError) as err:
        parse_deployment_spec("api", raw)
    assert err.value.path == "spec.template.spec.containers[0].command[0]"


def test_selector_is_immutable():
    spec = parse_deployment_spec("api", raw_spec())
    stored = spec.selector.to_json()
    assert parse_deployment_spec("api", raw_spec(), stored_selector=stored).selector == spec.selector
    raw = raw_spec()
    raw["selector"] = {"matchLabels": {"app": "api", "tier": "web"}}
    raw["template"]["metadata"]["labels"]["tier"] = "web"
    with pytest.raises(SpecError) as err:
        parse_deployment_spec("api", raw, stored_selector=stored)
    assert err.value.path == "spec.selector" and "immutable" in err.value.message


@pytest.mark.parametrize("name", ["", "API", "api_", "prod_API", "prod_" + "a" * 47, "-api", "a" * 47, None])
def test_bad_names(name):
    with pytest.raises(SpecError) as err:
        parse_deployment_spec(name, raw_spec())
    assert err.value.path == "metadata.name"


def test_longest_name_gives_a_63_char_pod_name():
    spec = parse_deployment_spec("a" * 46, raw_spec())
    assert len(f"{spec.name}-{spec.template_hash}-xxxxx") == 63


def test_input_is_not_modified():
    raw = raw_spec()
    before = copy.deepcopy(raw)
    parse_deployment_spec("api", raw)
    assert raw == before
