"""The registry of kinds is the one list: every other list of kinds (module docs, runtime metadata, node layer, manifest
loader, action plugins) agrees with it. Each check fails on a kind missing (or extra) on either side."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from ansible_collections.hostfleet.workloads.plugins.module_utils import kinds, observe_args
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import fence, runner
from ansible_collections.hostfleet.workloads.plugins.module_utils.workload_args import FLEET_ARGS
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers import records, registry
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.manifests import objects
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_action import WorkloadAction

ROOT = Path(__file__).resolve().parents[2]
KIND_NAMES = [k.name for k in kinds.KINDS]
# What the workload modules have besides Kubernetes spec fields: where and how a run goes, and this collection's own options.
TASK_OPTIONS = set(FLEET_ARGS) | {"node_grace_seconds", "auto_rollback", "rollback_to", "restart", "replace", "run_on"}


def documentation(module):
    """The parsed DOCUMENTATION of plugins/modules/<module>.py, read as text (the module is not imported)."""
    source = (ROOT / "plugins" / "modules" / f"{module}.py").read_text()
    namespace: dict = {}
    start = source.index("DOCUMENTATION = ")
    exec(source[start : source.index('"""', source.index('r"""', start) + 4) + 3], namespace)  # noqa: S102 - our own file's literal
    return yaml.safe_load(namespace["DOCUMENTATION"])


def all_modules():
    return sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")


def test_one_controller_per_kind_in_the_kinds_order():
    assert [c.kind for c in registry.CONTROLLERS] == KIND_NAMES
    assert all(registry.controller(k.name).info is k for k in kinds.KINDS)
    assert kinds.WORKLOAD_KINDS == tuple(KIND_NAMES)
    assert kinds.OWNER_KINDS == ("Pod",) + kinds.WORKLOAD_KINDS


@pytest.mark.parametrize("lookup", [kinds.kind_info, registry.controller])
@pytest.mark.parametrize("name", ["Pod", "deployment", "", None, "Service"])
def test_an_unknown_kind_is_refused_naming_the_known_ones(lookup, name):
    with pytest.raises(ValueError, match=r"unknown kind .*known: Deployment, ReplicaSet"):
        lookup(name)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_every_kind_has_its_record_type_and_summary(kind):
    ctl = registry.controller(kind)
    assert ctl.summarize is not None, f"{kind} has no summary for workload_info (summaries.py)"
    if ctl.reconcile is None:  # no fleet-wide loop, no controller record (CronJob: its runs are on its node)
        return
    assert ctl.record_type is not None and ctl.record_type.KIND == kind
    assert records.record_types()[kind] is ctl.record_type


def test_names_are_unique_and_modules_are_the_lowercase_kind():
    assert len(set(KIND_NAMES)) == len(KIND_NAMES)
    # apply finds a kind's action plugin by its lowercase name
    assert all(k.module == k.name.lower() for k in kinds.KINDS)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_every_kind_has_its_action_plugin_and_documented_module(kind):
    info = kinds.kind_info(kind)
    assert (ROOT / "plugins" / "action" / f"{info.module}.py").is_file()
    doc = documentation(info.module)
    assert doc["module"] == info.module
    options = set(doc["options"])
    missing = [f for f in info.spec_fields if f not in options]
    assert not missing, f"{info.module}'s DOCUMENTATION lacks the spec fields {missing}"


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_the_argument_spec_is_the_spec_fields_and_the_task_options(kind):
    info = kinds.kind_info(kind)
    assert set(info.spec_fields) <= set(info.argument_spec), "a spec field the module would refuse"
    # An argument that is neither a spec field nor a task option would be accepted and then silently dropped.
    assert set(info.argument_spec) - TASK_OPTIONS - {"wait"} == set(info.spec_fields) - TASK_OPTIONS


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_the_action_plugin_reads_the_registry(kind):
    ctl = registry.controller(kind)
    action = importlib.import_module(f"ansible_collections.hostfleet.workloads.plugins.action.{ctl.info.module}").ActionModule
    assert issubclass(action, WorkloadAction)
    assert action.KIND == kind  # what the shared action looks the kind up by
    assert action.controller.fget(action) is ctl
    # No second copy of what the registry says (spec fields, parser, argument spec, flags) in the kind's action.
    copies = {"SPEC_KEYS", "PARSE_SPEC", "ARGUMENT_SPEC", "REPLACES_UNREACHABLE", "PINS_PULLED_IMAGES", "TRACKS_PLACEMENT", "CLEANS_DESELECTED"}
    copies |= {"FAILS_UNLESS_AVAILABLE", "reconcile", "progress_line"}
    assert not copies & set(vars(action))


def test_runtime_metadata_groups_every_kind_module():
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    group = runtime["action_groups"]["workloads"]
    assert {k.module for k in kinds.KINDS} <= set(group)
    # ... and every module of the collection, so that module_defaults for the group reach them all.
    assert sorted(group) == all_modules()


def _kind_choices():
    """(module, option, choices) of every documented option whose choices name a workload kind."""
    found = []
    for module in all_modules():
        options = documentation(module).get("options") or {}
        for option, spec in options.items():
            choices = spec.get("choices") or []
            if set(choices) & (set(kinds.OWNER_KINDS) | {"ReplicaSet"}):
                found.append((module, option, list(choices)))
    return found


def test_documented_kind_choices_are_the_registry_s():
    found = {(module, option): choices for module, option, choices in _kind_choices()}
    assert found == {
        ("pod", "owner_kind"): list(kinds.OWNER_KINDS),
        ("pod_info", "owner_kind"): list(kinds.OWNER_KINDS),
        ("workload_info", "kind"): list(kinds.WORKLOAD_KINDS) + ["Pod"],
    }
    assert runner.COMMON_ARGS["owner_kind"]["choices"] == list(kinds.OWNER_KINDS)
    assert observe_args.WORKLOAD_INFO_ARGS["kind"]["choices"] == list(kinds.WORKLOAD_KINDS) + ["Pod"]


def test_the_manifest_loader_knows_every_kind():
    assert set(objects.WORKLOADS) == set(KIND_NAMES)
    assert objects.API_VERSIONS == {
        **{k.name: k.api_version for k in kinds.KINDS},
        "Pod": "v1",
        "ConfigMap": "v1",
        "Secret": "v1",
        "PersistentVolumeClaim": "v1",
        "Service": "v1",
    }
    # The apply order is explicit, and holds every kind exactly once.
    assert sorted(objects.ORDER) == sorted(objects.API_VERSIONS)
    for kind in KIND_NAMES:
        assert objects.spec_keys(kind) == sorted(set(kinds.kind_info(kind).spec_fields) - objects.EXTENSION_ARGS)


def test_the_apply_module_documents_every_kind():
    text = yaml.dump(documentation("apply")["description"])
    assert [k for k in objects.API_VERSIONS if f"C({k})" not in text] == []


def test_the_node_fences_exactly_the_kinds_that_replace_unreachable_pods():
    # fence.py is inlined into the pod hook on the hosts, so it keeps its own list: the registry says what it must be.
    assert set(fence.TIMED_KINDS) == {c.kind for c in registry.CONTROLLERS if c.replaces_unreachable}
    assert set(fence.ALWAYS_FENCED_KINDS) == {"StatefulSet"}
