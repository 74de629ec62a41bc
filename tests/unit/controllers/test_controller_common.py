"""The controllers' shared helpers (controllers/common/, module_utils/timefmt.py), and that they stay shared.

Every kind's spec parser reads its fields and starts the same way (name, spec, replicas, selector,
template) through ``common``; Deployment's package keeps only Deployment logic, so no other kind
may import from it.
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.module_utils.timefmt import rfc3339
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common import conditions
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common.fields import bool_field, choice_field, integer_field
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common.preamble import MAX_REPLICAS
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.spec import parse_daemonset_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.spec import parse_deployment_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.replicaset import parse_replicaset_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.spec import parse_statefulset_spec

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"
DEPLOYMENT_PACKAGE = "ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment"
# Deployment's own code, and the two tables that dispatch to every kind.
MAY_IMPORT_DEPLOYMENT = {"plugin_utils/controllers/registry.py", "plugin_utils/controllers/records.py", "action/deployment.py"}


def template(labels=None):
    return {"metadata": {"labels": {"app": "web"} if labels is None else labels}, "spec": {"containers": [{"name": "main", "command": ["/bin/sleep", "1"]}]}}


def error_of(call, *args, **kwargs) -> SpecError:
    with pytest.raises(SpecError) as caught:
        call(*args, **kwargs)
    return caught.value


# --- fields ------------------------------------------------------------------------------------------------------


@given(st.integers(-5, 5), st.integers(-3, 3))
def test_integer_field_takes_integers_from_the_minimum(value, minimum):
    if value >= minimum:
        assert integer_field({"n": value}, "n", "spec.x", 7, minimum) == value
    else:
        error = error_of(integer_field, {"n": value}, "n", "spec.x", 7, minimum)
        assert (error.path, error.message) == ("spec.x.n", f"must be greater than or equal to {minimum}, got {value}")


@given(st.one_of(st.booleans(), st.floats(allow_nan=False), st.text(max_size=3), st.lists(st.integers(), max_size=2)))
def test_integer_field_refuses_what_is_not_an_integer_naming_the_field(value):
    error = error_of(integer_field, {"n": value}, "n", "spec", 1)
    assert error.path == "spec.n" and error.message.startswith("must be an integer, got ")


@given(st.one_of(st.integers(), st.text(max_size=3), st.floats(allow_nan=False)))
def test_bool_field_takes_only_booleans(value):
    assert bool_field({"b": True}, "b", "spec") is True and bool_field({}, "b", "spec") is False and bool_field({"b": None}, "b", "spec", True) is True
    assert error_of(bool_field, {"b": value}, "b", "spec.x").path == "spec.x.b"


def test_choice_field_defaults_to_the_first_choice_and_names_the_others():
    assert choice_field({}, "type", "spec.s", ("A", "B")) == "A"
    assert choice_field({"type": "B"}, "type", "spec.s", ("A", "B")) == "B"
    error = error_of(choice_field, {"type": "C"}, "type", "spec.s", ("A", "B"))
    assert (error.path, error.message) == ("spec.s.type", "Unsupported value: 'C': supported values: A, B")


# --- the spec preamble -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("parse", [parse_deployment_spec, parse_replicaset_spec, parse_statefulset_spec, parse_daemonset_spec])
def test_every_replicated_kind_starts_the_same_way(parse):
    good = {"selector": {"matchLabels": {"app": "web"}}, "template": template()}
    assert error_of(parse, "Web", good).path == "metadata.name"
    assert error_of(parse, "web", None).path == "spec"
    assert error_of(parse, "web", {**good, "bogus": 1}).path == "spec.bogus"
    assert error_of(parse, "web", {"template": template()}).path == "spec.selector"
    assert error_of(parse, "web", {"selector": good["selector"]}).path == "spec.template"
    assert error_of(parse, "web", {**good, "template": template({"app": "db"})}).path == "spec.template.metadata.labels"
    error = error_of(parse, "web", good, stored_selector={"matchLabels": {"app": "other"}})
    assert (error.path, error.message.split(" (")[0]) == ("spec.selector", "field is immutable")
    assert parse("web", good, stored_selector={"matchLabels": {"app": "web"}}).selector.to_json() == {"matchLabels": {"app": "web"}}


@pytest.mark.parametrize("parse", [parse_deployment_spec, parse_replicaset_spec, parse_statefulset_spec])
def test_replicas_default_to_one_and_are_bounded(parse):
    good = {"selector": {"matchLabels": {"app": "web"}}, "template": template()}
    assert parse("web", good).replicas == 1
    assert parse("web", {**good, "replicas": MAX_REPLICAS}).replicas == MAX_REPLICAS
    assert error_of(parse, "web", {**good, "replicas": MAX_REPLICAS + 1}).path == "spec.replicas"
    assert error_of(parse, "web", {**good, "replicas": True}).path == "spec.replicas"


def test_each_kind_keeps_the_order_it_reports_errors_in():
    # Two errors at once: a Deployment names replicas (read before the selector), a ReplicaSet the selector.
    both = {"replicas": -1, "template": template()}
    assert error_of(parse_deployment_spec, "web", both).path == "spec.replicas"
    assert error_of(parse_replicaset_spec, "web", both).path == "spec.selector"
    # A StatefulSet reads its claim templates after the selector and before the template.
    claims = {"selector": {"matchLabels": {"app": "web"}}, "volumeClaimTemplates": [{"spec": {}}]}
    assert error_of(parse_statefulset_spec, "web", claims).path == "spec.volumeClaimTemplates[0].metadata"


# --- conditions and times ----------------------------------------------------------------------------------------


def test_set_condition_keeps_the_transition_time_while_the_status_holds():
    found: list[dict] = []
    conditions.set_condition(found, conditions.PROGRESSING, "True", "A", "m", 10.0)
    conditions.set_condition(found, conditions.AVAILABLE, "True", "B", "m", 11.0)
    conditions.set_condition(found, conditions.PROGRESSING, "True", "C", "m2", 20.0)
    assert [c["type"] for c in found] == [conditions.AVAILABLE, conditions.PROGRESSING]
    assert conditions.get_condition(found, conditions.PROGRESSING) | {} == {
        "type": "Progressing", "status": "True", "reason": "C", "message": "m2", "lastUpdateTime": 20.0, "lastTransitionTime": 10.0,
    }  # fmt: skip
    conditions.set_condition(found, conditions.PROGRESSING, "False", conditions.TIMED_OUT, "m3", 30.0)
    assert conditions.progressing_reason({"conditions": found}) == conditions.TIMED_OUT
    assert conditions.render_conditions(found)[1]["lastTransitionTime"] == "1970-01-01T00:00:30Z"


def test_replica_failure_names_every_reason_once_and_goes_when_all_are_placed():
    record = {"conditions": []}
    conditions.sync_replica_failure(record, ["b: full", "a: tainted", "b: full"], 5.0)
    assert conditions.get_condition(record["conditions"], conditions.REPLICA_FAILURE)["message"] == "a: tainted; b: full"
    conditions.sync_replica_failure(record, [], 6.0)
    assert record["conditions"] == []


@given(st.floats(0, 4_102_444_800, allow_nan=False))
def test_rfc3339_is_utc_to_the_second_or_millisecond(timestamp):
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    assert rfc3339(timestamp) == moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert rfc3339(timestamp, millis=True) == moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    assert rfc3339(None) is None


# --- what stays where ----------------------------------------------------------------------------------------------


def _imported_modules(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_no_other_kind_imports_from_the_deployment_package():
    """Deployment's package keeps only Deployment logic: what other kinds share lives in controllers/common/."""
    offenders = []
    for path in sorted(PLUGINS.rglob("*.py")):
        relative = path.relative_to(PLUGINS).as_posix()
        if relative.startswith("plugin_utils/controllers/deployment/") or relative in MAY_IMPORT_DEPLOYMENT:
            continue
        offenders += [f"{relative}: {m}" for m in _imported_modules(path) if m == DEPLOYMENT_PACKAGE or m.startswith(DEPLOYMENT_PACKAGE + ".")]
    assert offenders == []


def test_one_rfc3339_for_the_collection():
    defined = [path.relative_to(PLUGINS).as_posix() for path in sorted(PLUGINS.rglob("*.py")) if "\ndef rfc3339(" in path.read_text()]
    assert defined == ["module_utils/timefmt.py"]
