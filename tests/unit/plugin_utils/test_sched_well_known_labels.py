"""Issue 15: node labels from facts (well_known_labels.py), podAffinity, ephemeral-storage and extended resources."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import labels as parse_labels
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.constraints import parse_constraints
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import (
    Node,
    NodeUsage,
    Resources,
    node_from_inventory,
    parse_capacity,
)
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.one_node import eligible_nodes, most_preferred
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.placement import PlacedPod, PlacementState, PodTemplate
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.well_known_labels import labels_from_facts

GPU_HOST = {
    "version": 1,
    "os": "linux",
    "machine": "x86_64",
    "kernel": "6.1.0-18-amd64",
    "cpu_flags": ["aes", "avx", "avx2", "avx512f", "cmov", "fma", "popcnt", "sse4_2", "sha_ni"],
    "cpu_vendor": "GenuineIntel",
    "pci_devices": [
        {"class": "020000", "vendor": "1af4"},  # a network card: not a class NFD labels by default
        {"class": "030000", "vendor": "10de"},  # an NVIDIA VGA controller
        {"class": "0b4000", "vendor": "8086"},  # a co-processor
        {"class": "120000", "vendor": "1e52"},  # a processing accelerator
    ],
    "product_name": "m5.large",
    "os_release": {"ID": "debian", "VERSION_ID": "12"},
}
F = "feature.node.kubernetes.io/"


def test_labels_of_a_gpu_host():
    assert labels_from_facts(GPU_HOST) == {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        F + "cpu-cpuid.AESNI": "true",
        F + "cpu-cpuid.AVX": "true",
        F + "cpu-cpuid.AVX2": "true",
        F + "cpu-cpuid.AVX512F": "true",
        F + "cpu-cpuid.FMA3": "true",
        F + "cpu-cpuid.SHA": "true",
        F + "cpu-model.vendor_id": "Intel",
        F + "kernel-version.full": "6.1.0-18-amd64",
        F + "kernel-version.major": "6",
        F + "kernel-version.minor": "1",
        F + "kernel-version.revision": "0",
        F + "pci-0300_10de.present": "true",
        F + "pci-0b40_8086.present": "true",
        F + "pci-1200_1e52.present": "true",
        F + "system-os_release.ID": "debian",
        F + "system-os_release.VERSION_ID": "12",
        F + "system-os_release.VERSION_ID.major": "12",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "m5.large",
    }


ARCHES = [("x86_64", "amd64"), ("aarch64", "arm64"), ("armv7l", "arm"), ("i686", "386"), ("ppc64le", "ppc64le"), ("s390x", "s390x")]


@pytest.mark.parametrize(("machine", "arch"), ARCHES)
def test_arch_as_go_names_it(machine, arch):
    labels = labels_from_facts({"os": "Linux", "machine": machine})
    assert labels == {"kubernetes.io/os": "linux", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": arch, "beta.kubernetes.io/arch": arch}


def test_unknown_or_unlabelable_facts_give_no_label():
    labels = labels_from_facts({"machine": "pdp11", "kernel": "5.10.0+", "product_name": "Standard PC (Q35 + ICH9, 2009)", "os_release": {"ID": ""}})
    # No arch for a machine Go has no name for, no instance type that is not a label value, no full kernel with '+'.
    assert labels == {F + "kernel-version.major": "5", F + "kernel-version.minor": "10", F + "kernel-version.revision": "0"}
    assert labels_from_facts(None) == {} and labels_from_facts({}) == {}


def test_arm_flags_and_version_id_minor():
    labels = labels_from_facts({"machine": "aarch64", "cpu_flags": ["aes", "asimd", "fp", "sve"], "os_release": {"ID": "ubuntu", "VERSION_ID": "22.04"}})
    assert labels[F + "cpu-cpuid.ASIMD"] == labels[F + "cpu-cpuid.SVE"] == labels[F + "cpu-cpuid.AES"] == "true"
    assert F + "cpu-cpuid.FP" not in labels and F + "cpu-cpuid.AESNI" not in labels  # arm's aes is not x86's AES-NI
    assert labels[F + "system-os_release.VERSION_ID.major"] == "22" and labels[F + "system-os_release.VERSION_ID.minor"] == "04"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
FACT_VALUES = {
    "os": st.sampled_from(["linux", "Linux", "", "li nux"]) | st.text(max_size=70),
    "machine": st.sampled_from(["x86_64", "aarch64", "riscv64", "?"]) | st.text(max_size=10),
    "kernel": st.from_regex(r"[0-9]{1,2}\.[0-9]{1,3}(\.[0-9]+)?[-+a-z0-9._~]{0,70}", fullmatch=True) | st.text(max_size=80),
    "cpu_flags": st.lists(st.sampled_from(["avx2", "aes", "sse", "sve", "x"]) | st.text(max_size=8), max_size=8) | JSON,
    "cpu_vendor": st.sampled_from(["GenuineIntel", "AuthenticAMD", "0x41"]) | st.text(max_size=70),
    "pci_devices": st.lists(
        st.fixed_dictionaries({"class": st.from_regex(r"[0-9a-fA-F]{0,7}", fullmatch=True), "vendor": st.from_regex(r"[0-9a-fA-F]{3,5}", fullmatch=True)}),
        max_size=5,
    )
    | JSON,
    "product_name": st.text(max_size=80),
    "os_release": st.fixed_dictionaries({}, optional={"ID": st.text(max_size=70), "VERSION_ID": st.text(max_size=70)}) | JSON,
}


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional=FACT_VALUES))
def test_any_facts_give_valid_labels_and_never_fail(facts):
    """Whatever a host reports, the labels are valid Kubernetes labels (what the scheduler and nodeSelector read)."""
    labels = labels_from_facts(facts)
    assert parse_labels(labels, "labels") == labels
    assert all(k.startswith((F, "kubernetes.io/", "beta.kubernetes.io/", "node.kubernetes.io/")) for k in labels)


def test_node_labels_merge_facts_inventory_and_groups():
    host_vars = {"hostfleet_node_labels": {"node.kubernetes.io/instance-type": "gpu-large", "disktype": "ssd"}}
    node = node_from_inventory("node1", True, host_vars, ["gpus"], GPU_HOST)
    assert node.labels["kubernetes.io/os"] == "linux" and node.labels["beta.kubernetes.io/arch"] == "amd64"
    assert node.labels["node.kubernetes.io/instance-type"] == "gpu-large"  # the inventory wins over the DMI product name
    assert node.labels["disktype"] == "ssd" and node.labels["hostfleet.io/group.gpus"] == "true"
    assert node.labels[F + "pci-0300_10de.present"] == "true"
    assert node.labels["kubernetes.io/hostname"] == "node1"
    assert list(node.labels) == sorted(node.labels)
    # Without facts (a node not reached): the inventory's labels only, as before.
    assert "kubernetes.io/os" not in node_from_inventory("node1", False, {}, []).labels


@pytest.mark.parametrize("key", ["kubernetes.io/os", "beta.kubernetes.io/os"])
def test_node_selector_os_linux_schedules_everywhere(key):
    """Issue 15: the pods of `nodeSelector: {kubernetes.io/os: linux}` were unschedulable on every node."""
    linux = {"os": "linux", "machine": "x86_64"}
    fleet_nodes = [node_from_inventory(f"node{i}", True, {}, [], linux) for i in (1, 2, 3)]
    tmpl = PodTemplate("r1", {"app": "web"}, parse_constraints({"containers": [CONTAINER], "nodeSelector": {key: "linux"}}))
    placed, why = PlacementState(fleet_nodes).place(tmpl, 3, names())
    assert why == "" and sorted(p.node for p in placed) == ["node1", "node2", "node3"]
    assert eligible_nodes(fleet_nodes, tmpl.constraints) == ["node1", "node2", "node3"]


# -- podAffinity ---------------------------------------------------------------------------------------------------

CONTAINER = {"name": "main", "command": ["/bin/true"]}


def names(prefix="p"):
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter)}"


def plain_nodes(*names_, capacity=None):
    return [Node(n, True, {"kubernetes.io/hostname": n}, capacity) for n in names_]


def affinity_template(labels, required=(), preferred=(), anti=(), revision="r1", resources=None):
    def term(sel):
        return {"labelSelector": {"matchLabels": sel}, "topologyKey": "kubernetes.io/hostname"}

    affinity = {}
    if required or preferred:
        affinity["podAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": [term(s) for s in required],
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": w, "podAffinityTerm": term(s)} for w, s in preferred],
        }
    if anti:
        affinity["podAntiAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": [term(s) for s in anti]}
    container = dict(CONTAINER, resources=resources) if resources else CONTAINER
    spec = {"containers": [container], **({"affinity": affinity} if affinity else {})}
    return PodTemplate(revision, labels, parse_constraints(spec))


def test_required_pod_affinity_follows_the_pods_it_names():
    """The docs' pod-with-pod-affinity: with the security=S1 pod on node2, the pod goes there only."""
    usage = {"node2": NodeUsage(pods=1, labels=({"security": "S1"},))}
    fleet = PlacementState(plain_nodes("node1", "node2", "node3"), other_usage=usage)
    placed, why = fleet.place(affinity_template({"app": "web"}, required=[{"security": "S1"}]), 3, names())
    assert [p.node for p in placed] == ["node2", "node2", "node2"] and why == ""


def test_required_pod_affinity_without_any_match_is_unschedulable():
    fleet = PlacementState(plain_nodes("node1", "node2"))
    placed, why = fleet.place(affinity_template({"app": "web"}, required=[{"security": "S1"}]), 1, names())
    assert placed == [] and why == "0/2 nodes are available: 2 node(s) didn't match pod affinity rules."


def test_self_affine_group_starts_anywhere_then_stays_together():
    """Kubernetes lets the first pod of a group that matches its own affinity go anywhere; the others follow it."""
    fleet = PlacementState(plain_nodes("node1", "node2", "node3"))
    placed, why = fleet.place(affinity_template({"app": "cache"}, required=[{"app": "cache"}]), 4, names())
    assert why == "" and len({p.node for p in placed}) == 1 and len(placed) == 4


def test_affinity_and_anti_affinity_together_the_docs_web_store():
    """The docs' redis-cache / web-store example: each web pod next to a cache pod, no two web pods together."""
    fleet = PlacementState(plain_nodes("node1", "node2", "node3"))
    cache = affinity_template({"app": "store"}, anti=[{"app": "store"}], revision="cache")
    placed, why = fleet.place(cache, 3, names("cache-"))
    assert why == "" and sorted(p.node for p in placed) == ["node1", "node2", "node3"]
    web = affinity_template({"app": "web-store"}, required=[{"app": "store"}], anti=[{"app": "web-store"}], revision="web")
    placed, why = fleet.place(web, 4, names("web-"))
    assert sorted(p.node for p in placed) == ["node1", "node2", "node3"]
    assert why == "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."


def test_preferred_pod_affinity_ranks_the_node_with_the_pod_first():
    usage = {"node3": NodeUsage(pods=1, labels=({"app": "db"},))}
    fleet = PlacementState(plain_nodes("node1", "node2", "node3"), other_usage=usage)
    placed, _why = fleet.place(affinity_template({"app": "web"}, preferred=[(50, {"app": "db"})]), 1, names())
    assert [p.node for p in placed] == ["node3"]


def test_pod_affinity_fields_are_checked():
    with pytest.raises(SpecError) as err:
        parse_constraints({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname"}]}}})
    assert err.value.path == "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector"
    with pytest.raises(SpecError) as err:
        parse_constraints({"affinity": {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"podAffinityTerm": {}}]}}})
    assert err.value.path == "spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight"
    with pytest.raises(SpecError) as err:
        parse_constraints({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"namespaces": ["x"]}]}}})
    assert "namespaces" in err.value.path


# -- ephemeral-storage and extended resources ------------------------------------------------------------------------


def test_capacity_with_ephemeral_storage_and_extended_resources():
    capacity = parse_capacity({"cpu": "2", "ephemeral-storage": "100Gi", "nvidia.com/gpu": 2, "example.com/fpga": "1"})
    assert capacity.extended == (("ephemeral-storage", 100 * 2**30), ("example.com/fpga", 1), ("nvidia.com/gpu", 2))
    assert Resources.from_json(capacity.to_json()) == capacity
    assert parse_capacity({"cpu": "1"}).to_json() == {"cpu_millis": 1000, "memory_bytes": None, "pods": None}  # unchanged form


@pytest.mark.parametrize(
    ("capacity", "path"),
    [
        ({"nvidia.com/gpu": "1.5"}, "hostfleet_node_capacity.nvidia.com/gpu"),
        ({"nvidia.com/gpu": "lots"}, "hostfleet_node_capacity.nvidia.com/gpu"),
        ({"gpu": 1}, "hostfleet_node_capacity.gpu"),
        ({"kubernetes.io/gpu": 1}, "hostfleet_node_capacity.kubernetes.io/gpu"),
        ({"ephemeral-storage": "a lot"}, "hostfleet_node_capacity.ephemeral-storage"),
    ],
)
def test_bad_capacity_names_the_key(capacity, path):
    with pytest.raises(SpecError) as err:
        parse_capacity(capacity)
    assert err.value.path == path


def gpu_template(gpus=1, storage=None, limits_only=False):
    amounts = {"nvidia.com/gpu": gpus, **({"ephemeral-storage": storage} if storage else {})}
    resources = {"limits": amounts} if limits_only else {"requests": amounts}
    return PodTemplate("r1", {"app": "train"}, parse_constraints({"containers": [dict(CONTAINER, resources=resources)]}))


def test_extended_resource_fits_only_where_the_capacity_has_it():
    fleet_nodes = [
        Node("node1", True, {}, parse_capacity({"nvidia.com/gpu": 2})),
        Node("node2", True, {}, None),  # no capacity at all: no GPU
        Node("node3", True, {}, parse_capacity({"cpu": "4"})),  # a capacity without the key: no GPU
    ]
    placed, why = PlacementState(fleet_nodes).place(gpu_template(), 3, names())
    assert [p.node for p in placed] == ["node1", "node1"]
    assert why == "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    assert eligible_nodes(fleet_nodes, gpu_template().constraints) == ["node1"]


def test_a_limit_alone_is_the_request_and_others_usage_counts():
    fleet_nodes = [Node("node1", True, {}, parse_capacity({"nvidia.com/gpu": 4, "ephemeral-storage": "10Gi"}))]
    usage = {"node1": NodeUsage(pods=1, extended=(("ephemeral-storage", 4 * 2**30), ("nvidia.com/gpu", 1)))}
    placed, why = PlacementState(fleet_nodes, other_usage=usage).place(gpu_template(1, "3Gi", limits_only=True), 5, names())
    assert len(placed) == 2  # storage: 4 + 3 + 3 <= 10 Gi, a third would make 13
    assert why == "0/1 nodes are available: 1 Insufficient ephemeral-storage."


def test_ephemeral_storage_is_unlimited_where_the_capacity_does_not_say():
    tmpl = PodTemplate("r1", {}, parse_constraints({"containers": [dict(CONTAINER, resources={"requests": {"ephemeral-storage": "1Ti"}})]}))
    placed, why = PlacementState([Node("node1", True, {}, parse_capacity({"cpu": "1"}))]).place(tmpl, 3, names())
    assert len(placed) == 3 and why == ""


def test_normal_form_requests_are_read_as_numbers():
    """The node layer's normal form (podspec) has bytes and counts where the user wrote quantities."""
    spec = {"containers": [dict(CONTAINER, resources={"requests": {"cpu": 100, "ephemeral-storage": 2048, "nvidia.com/gpu": 1}, "limits": {}})]}
    assert parse_constraints(spec).requests.extended == (("ephemeral-storage", 2048), ("nvidia.com/gpu", 1))
    # A spec without them keeps the old requests (what records and hashes saw before).
    assert parse_constraints({"containers": [CONTAINER]}).requests == Resources(0, 0, 1)


@settings(max_examples=150, deadline=None)
@given(
    capacities=st.lists(st.one_of(st.none(), st.integers(0, 4)), min_size=1, max_size=5),
    others=st.lists(st.integers(0, 3), min_size=5, max_size=5),
    requests=st.lists(st.integers(1, 3), min_size=1, max_size=4),
    count=st.integers(1, 8),
)
def test_extended_resources_never_exceed_capacity(capacities, others, requests, count):
    """Whatever the templates and the other owners' usage, no node gets more GPUs than it has (none when unnamed)."""
    fleet_nodes = [Node(f"n{i}", True, {}, parse_capacity({"nvidia.com/gpu": c}) if c is not None else None) for i, c in enumerate(capacities)]
    usage = {f"n{i}": NodeUsage(pods=1, extended=(("nvidia.com/gpu", others[i]),)) for i in range(len(capacities))}
    fleet = PlacementState(fleet_nodes, other_usage=usage)
    placed = []
    for i, gpus in enumerate(requests):
        got, _why = fleet.place(PodTemplate(f"r{i}", {"app": "train"}, gpu_template(gpus).constraints), count, names(f"r{i}-"))
        placed += [(p.node, gpus) for p in got]
    for i, capacity in enumerate(capacities):
        taken = sum(g for node, g in placed if node == f"n{i}")
        assert taken == 0 or others[i] + taken <= (capacity or 0)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(["a", "b", "c"]), max_size=2), min_size=1, max_size=5),
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=2, unique=True),
    st.sampled_from(["a", "b", "c"]),
    st.integers(1, 6),
    st.booleans(),
)
def test_affinity_index_agrees_with_each_nodes_own_verdict(apps_per_node, required, own_app, count, preferred):
    """The placement index (incremental) picks what filtering and ranking every node afresh picks, pod after pod."""
    fleet_nodes = plain_nodes(*(f"n{i}" for i in range(len(apps_per_node))))
    usage = {f"n{i}": NodeUsage(pods=len(apps), labels=tuple({"app": a} for a in apps)) for i, apps in enumerate(apps_per_node)}
    tmpl = affinity_template(
        {"app": own_app}, required=[{"app": a} for a in required], preferred=[(10, {"app": "b"})] if preferred else (), anti=[{"app": "anti"}]
    )
    fleet = PlacementState(fleet_nodes, other_usage=usage)
    pick = names()
    for _index in range(count):
        fits = [n for n in fleet.nodes.values() if fleet.reason(n, tmpl) is None]
        expected = min(fits, key=lambda n: fleet._rank(n, tmpl, [])).name if fits else None
        node, _why = fleet.best_node(tmpl)
        assert node == expected
        if node is None:
            break
        fleet.add(PlacedPod(pick(), node, tmpl.revision, dict(tmpl.labels)))


def test_a_bare_pod_goes_where_its_preferred_node_affinity_points():
    """apply's bare Pod (one_node): the docs' pod-nginx-preferred-affinity goes to the ssd node, not to any node."""
    fleet_nodes = [Node(n, True, {"kubernetes.io/hostname": n, **({"disktype": "ssd"} if n == "node2" else {})}) for n in ("node1", "node2", "node3")]
    preferred = {"weight": 1, "preference": {"matchExpressions": [{"key": "disktype", "operator": "In", "values": ["ssd"]}]}}
    constraints = parse_constraints({"containers": [CONTAINER], "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [preferred]}}})
    eligible = eligible_nodes(fleet_nodes, constraints)
    assert eligible == ["node1", "node2", "node3"]
    assert most_preferred(fleet_nodes, constraints, eligible) == ["node2"]
    assert most_preferred(fleet_nodes, parse_constraints({"containers": [CONTAINER]}), eligible) == eligible


def test_a_pods_status_carries_its_extended_requests_for_other_workloads_placement():
    """The node reports each pod's ephemeral-storage and extended resource requests (status.py): other workloads'
    placement counts them against the node's capacity (workload_task.py's NodeUsage)."""
    from ansible_collections.hostfleet.workloads.plugins.module_utils.node.status import _other_requests

    containers = [
        {"resources": {"requests": {"cpu": 100, "memory": 1024, "nvidia.com/gpu": 1, "ephemeral-storage": 2048}}},
        {"resources": {"requests": {"nvidia.com/gpu": 1}}},
        {"resources": {"requests": {}}},
    ]
    assert _other_requests(containers) == {"nvidia.com/gpu": 2, "ephemeral-storage": 2048}
    assert _other_requests([{"resources": {"requests": {"cpu": 5}}}]) == {}  # a pod without them reports as before
