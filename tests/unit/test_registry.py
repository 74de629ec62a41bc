"""The registry of kinds is the one list: every other list of kinds (docs, runtime metadata, node layer, loader) agrees with it."""

from __future__ import annotations

import pytest

from ansible_collections.hostfleet.workloads.plugins.module_utils import kinds
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers import registry


def test_one_controller_per_kind_in_the_kinds_order():
    assert [c.kind for c in registry.CONTROLLERS] == [k.name for k in kinds.KINDS]
    assert all(registry.controller(k.name).info is k for k in kinds.KINDS)
    assert kinds.WORKLOAD_KINDS == tuple(k.name for k in kinds.KINDS)
    assert kinds.OWNER_KINDS == ("Pod",) + kinds.WORKLOAD_KINDS


@pytest.mark.parametrize("lookup", [kinds.kind_info, registry.controller])
@pytest.mark.parametrize("name", ["Pod", "deployment", "", None, "Service"])
def test_an_unknown_kind_is_refused_naming_the_known_ones(lookup, name):
    with pytest.raises(ValueError, match=r"unknown kind .*known: Deployment, ReplicaSet"):
        lookup(name)


def test_names_are_unique_and_modules_are_the_lowercase_kind():
    assert len({k.name for k in kinds.KINDS}) == len(kinds.KINDS)
    assert all(k.module == k.name.lower() for k in kinds.KINDS)
