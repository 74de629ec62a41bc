"""Nodes from inventory, capacity quantities, label selectors and node selector terms."""

from __future__ import annotations

import pytest

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.labels import (
    LabelSelector,
    Requirement,
    parse_label_selector,
    parse_node_selector_term,
    parse_requirement,
)
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import (
    Node,
    NodeUsage,
    Resources,
    node_from_inventory,
    parse_capacity,
    parse_cpu,
    parse_memory,
)


@pytest.mark.parametrize(
    ("value", "millis"),
    [("500m", 500), ("2", 2000), (2, 2000), (0.5, 500), ("1.5", 1500), ("0.1", 100), ("1m", 1), ("250m", 250)],
)
def test_cpu_quantities(value, millis):
    assert parse_cpu(value, "cpu") == millis


@pytest.mark.parametrize(
    ("value", "size"),
    [("1Gi", 1 << 30), ("512Mi", 512 << 20), ("1G", 10**9), ("500M", 500 * 10**6), (1024, 1024), ("4Ki", 4096), ("1e3", 1000)],
)
def test_memory_quantities(value, size):
    assert parse_memory(value, "memory") == size


@pytest.mark.parametrize("bad", ["lots", "-1", "1Gb", True, None, "1 Gi"])
def test_bad_quantities_name_the_field(bad):
    with pytest.raises(SpecError) as err:
        parse_memory(bad, "hostfleet_node_capacity.memory")
    assert err.value.path == "hostfleet_node_capacity.memory"


def test_node_from_inventory_labels_groups_hostname_and_capacity():
    node = node_from_inventory(
        "web1",
        True,
        {"hostfleet_node_labels": {"zone": "a", "disk": "ssd", "rack": 7}, "hostfleet_node_capacity": {"cpu": "2", "memory": "4Gi", "pods": 110}},
        ["web", "eu"],
    )
    assert node == Node(
        "web1",
        True,
        {
            "disk": "ssd",
            "hostfleet.io/group.eu": "true",
            "hostfleet.io/group.web": "true",
            "kubernetes.io/hostname": "web1",
            "rack": "7",
            "zone": "a",
        },
        Resources(2000, 4 << 30, 110),
    )
    assert Node.from_json(node.to_json()) == node


def test_node_without_vars_has_hostname_and_group_labels_and_no_capacity():
    node = node_from_inventory("db1", False, {}, ["db"])
    assert node.labels == {"hostfleet.io/group.db": "true", "kubernetes.io/hostname": "db1"}
    assert node.capacity is None and node.ready is False


def test_partial_capacity_leaves_other_resources_unlimited():
    assert parse_capacity({"pods": 3}) == Resources(None, None, 3)


@pytest.mark.parametrize(
    ("host_vars", "path", "fragment"),
    [
        ({"hostfleet_node_labels": ["zone=a"]}, "hostvars['n1'].hostfleet_node_labels", "mapping"),
        ({"hostfleet_node_labels": {"bad key!": "x"}}, "hostvars['n1'].hostfleet_node_labels['bad key!']", "key name"),
        ({"hostfleet_node_labels": {"zone": "a b"}}, "hostvars['n1'].hostfleet_node_labels['zone']", "not a valid label value"),
        ({"hostfleet_node_labels": {"zone": {"a": 1}}}, "hostvars['n1'].hostfleet_node_labels['zone']", "strings"),
        ({"hostfleet_node_labels": {"kubernetes.io/hostname": "x"}}, "hostvars['n1'].hostfleet_node_labels['kubernetes.io/hostname']", "reserved"),
        ({"hostfleet_node_labels": {"hostfleet.io/group.web": "true"}}, "hostvars['n1'].hostfleet_node_labels['hostfleet.io/group.web']", "reserved"),
        ({"hostfleet_node_capacity": "2 cpus"}, "hostvars['n1'].hostfleet_node_capacity", "mapping"),
        ({"hostfleet_node_capacity": {"gpu": 1}}, "hostvars['n1'].hostfleet_node_capacity.gpu", "unknown resource"),
        ({"hostfleet_node_capacity": {"cpu": "two"}}, "hostvars['n1'].hostfleet_node_capacity.cpu", "not a quantity"),
        ({"hostfleet_node_capacity": {"pods": -1}}, "hostvars['n1'].hostfleet_node_capacity.pods", "non-negative"),
        ({"hostfleet_node_capacity": {"pods": "10"}}, "hostvars['n1'].hostfleet_node_capacity.pods", "non-negative"),
    ],
)
def test_malformed_inventory_vars_are_refused_clearly(host_vars, path, fragment):
    with pytest.raises(SpecError) as err:
        node_from_inventory("n1", True, host_vars, [])
    assert err.value.path == path
    assert fragment in err.value.message


def test_node_usage_round_trips():
    usage = NodeUsage(2, 500, 1 << 20, ({"app": "db"},))
    assert NodeUsage.from_json(usage.to_json()) == usage


@pytest.mark.parametrize(
    ("operator", "values", "labels", "expected"),
    [
        ("In", ["a", "b"], {"zone": "a"}, True),
        ("In", ["a", "b"], {"zone": "c"}, False),
        ("In", ["a"], {}, False),
        ("NotIn", ["a"], {"zone": "b"}, True),
        ("NotIn", ["a"], {"zone": "a"}, False),
        ("NotIn", ["a"], {}, True),
        ("Exists", [], {"zone": ""}, True),
        ("Exists", [], {}, False),
        ("DoesNotExist", [], {}, True),
        ("DoesNotExist", [], {"zone": "a"}, False),
        ("Gt", ["3"], {"zone": "4"}, True),
        ("Gt", ["3"], {"zone": "3"}, False),
        ("Lt", ["3"], {"zone": "2"}, True),
        ("Lt", ["3"], {"zone": "x"}, False),
        ("Gt", ["3"], {}, False),
    ],
)
def test_requirement_operators(operator, values, labels, expected):
    requirement = parse_requirement({"key": "zone", "operator": operator, "values": values}, "r", ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"))
    assert requirement.matches(labels) is expected


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        ({"key": "zone", "operator": "In"}, "r.values", "non-empty"),
        ({"key": "zone", "operator": "Exists", "values": ["a"]}, "r.values", "must be empty"),
        ({"key": "zone", "operator": "Near", "values": ["a"]}, "r.operator", "must be one of"),
        ({"operator": "Exists"}, "r.key", "required"),
        ({"key": "zone", "operator": "Exists", "value": "a"}, "r.value", "unknown field"),
    ],
)
def test_requirement_errors(raw, path, fragment):
    with pytest.raises(SpecError) as err:
        parse_requirement(raw, "r")
    assert err.value.path == path and fragment in err.value.message


def test_gt_needs_one_integer():
    with pytest.raises(SpecError) as err:
        parse_requirement({"key": "cores", "operator": "Gt", "values": ["many"]}, "r", ("Gt",))
    assert err.value.path == "r.values[0]"


def test_label_selector_match_labels_and_expressions():
    selector = parse_label_selector(
        {"matchLabels": {"app": "api"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "edge"]}]}, "spec.selector", required=True
    )
    assert selector.matches({"app": "api", "tier": "web"})
    assert not selector.matches({"app": "api", "tier": "db"})
    assert not selector.matches({"tier": "web"})
    assert selector.to_json() == {"matchLabels": {"app": "api"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "edge"]}]}


def test_required_selector_must_select_something():
    with pytest.raises(SpecError) as err:
        parse_label_selector({}, "spec.selector", required=True)
    assert err.value.path == "spec.selector"
    with pytest.raises(SpecError):
        parse_label_selector(None, "spec.selector", required=True)


def test_selector_with_labels_narrows():
    selector = LabelSelector((("app", "api"),))
    narrowed = selector.with_labels({"pod-template-hash": "abc"})
    assert narrowed.matches({"app": "api", "pod-template-hash": "abc"})
    assert not narrowed.matches({"app": "api", "pod-template-hash": "def"})


def test_node_selector_term_expressions_and_fields():
    term = parse_node_selector_term(
        {
            "matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}],
            "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n2"]}],
        },
        "t",
    )
    assert term.matches("n1", {"disk": "ssd"})
    assert not term.matches("n2", {"disk": "ssd"})
    assert not term.matches("n1", {"disk": "hdd"})
    assert not parse_node_selector_term({}, "t").matches("n1", {})  # an empty term matches no node


def test_match_fields_only_on_metadata_name():
    with pytest.raises(SpecError) as err:
        parse_node_selector_term({"matchFields": [{"key": "spec.unschedulable", "operator": "In", "values": ["true"]}]}, "t")
    assert err.value.path == "t.matchFields[0].key"


def test_requirement_json():
    assert Requirement("a", "Exists").to_json() == {"key": "a", "operator": "Exists"}
