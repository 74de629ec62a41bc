"""The scheduler: filters, ranking, Pending reasons, scale-down victims."""

from __future__ import annotations

import itertools

import pytest

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.constraints import Constraints, parse_constraints
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node, NodeUsage, Resources
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.placement import Candidate, PlacedPod, PlacementState, PodTemplate

LABELS = {"app": "api"}
CONTAINER = {"name": "main", "command": ["/bin/true"]}


def nodes(*specs):
    """nodes(("n1", {"zone": "a"}), ...) or plain names."""
    result = []
    for item in specs:
        name, labels, capacity, ready = (item, {}, None, True) if isinstance(item, str) else (item + ({}, None, True)[len(item) - 1 :])[:4]
        result.append(Node(name, ready, {"kubernetes.io/hostname": name, **labels}, capacity))
    return result


def template(pod_spec=None, revision="r1", labels=None):
    spec = {"containers": [CONTAINER]}
    spec.update(pod_spec or {})
    return PodTemplate(revision, {**(labels or LABELS), "pod-template-hash": revision}, parse_constraints(spec))


def names(prefix="p"):
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter)}"


def place(fleet, tmpl, count):
    placed, why = fleet.place(tmpl, count, names())
    return [p.node for p in placed], why


def test_even_spread_ties_broken_by_name():
    fleet = PlacementState(nodes("n3", "n1", "n2"))
    placed, why = place(fleet, template(), 7)
    assert placed == ["n1", "n2", "n3", "n1", "n2", "n3", "n1"]
    assert why == ""


def test_existing_pods_count_for_spread():
    existing = [PlacedPod("a", "n1", "r1", {**LABELS, "pod-template-hash": "r1"}), PlacedPod("b", "n1", "r1", LABELS)]
    fleet = PlacementState(nodes("n1", "n2"), existing)
    assert place(fleet, template(), 2)[0] == ["n2", "n2"]


def test_new_revision_spreads_on_its_own_first():
    """During a rollout the new revision spreads evenly even where old pods still run."""
    old = [PlacedPod(f"o{i}", n, "old", LABELS) for i, n in enumerate(["n1", "n1", "n2", "n2", "n3"])]
    fleet = PlacementState(nodes("n1", "n2", "n3"), old)
    # n3 has the fewest pods overall, then every node has no pod of r1 yet: n3 first, then n1, n2
    assert place(fleet, template(revision="new"), 3)[0] == ["n3", "n1", "n2"]


def test_node_selector():
    fleet = PlacementState(nodes(("n1", {"disk": "ssd"}), ("n2", {"disk": "hdd"}), "n3"))
    placed, why = place(fleet, template({"nodeSelector": {"disk": "ssd"}}), 2)
    assert placed == ["n1", "n1"]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"key": "zone", "operator": "In", "values": ["a", "b"]}, {"n1", "n2"}),
        ({"key": "zone", "operator": "NotIn", "values": ["a"]}, {"n2", "n3"}),
        ({"key": "zone", "operator": "Exists"}, {"n1", "n2"}),
        ({"key": "zone", "operator": "DoesNotExist"}, {"n3"}),
        ({"key": "cores", "operator": "Gt", "values": ["4"]}, {"n2"}),
        ({"key": "cores", "operator": "Lt", "values": ["16"]}, {"n1"}),
    ],
)
def test_required_node_affinity_operators(expression, expected):
    fleet = PlacementState(nodes(("n1", {"zone": "a", "cores": "4"}), ("n2", {"zone": "b", "cores": "16"}), "n3"))
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [expression]}]}}}
    placed = place(fleet, template({"affinity": affinity}), 6)[0]
    assert set(placed) == expected


def test_node_affinity_terms_are_ored_expressions_anded():
    fleet = PlacementState(nodes(("n1", {"zone": "a", "disk": "ssd"}), ("n2", {"zone": "a"}), ("n3", {"gpu": "yes"})))
    terms = [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}, {"key": "disk", "operator": "Exists"}]},
        {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]},
    ]
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}
    assert set(place(fleet, template({"affinity": affinity}), 4)[0]) == {"n1", "n3"}


def test_preferred_node_affinity_breaks_ties():
    fleet = PlacementState(nodes("n1", ("n2", {"disk": "ssd"})))
    affinity = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}
            ]
        }
    }
    assert place(fleet, template({"affinity": affinity}), 2)[0] == ["n2", "n1"]


ANTI = {
    "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": LABELS}, "topologyKey": "kubernetes.io/hostname"}]}
}


def test_required_anti_affinity_one_per_host_then_pending():
    fleet = PlacementState(nodes("n1", "n2", "n3"))
    placed, why = place(fleet, template({"affinity": ANTI}), 5)
    assert placed == ["n1", "n2", "n3"]
    assert why == "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."


def test_anti_affinity_sees_other_owners_pods():
    fleet = PlacementState(nodes("n1", "n2"), other_usage={"n1": NodeUsage(1, 0, 0, (LABELS,))})
    assert place(fleet, template({"affinity": ANTI}), 2)[0] == ["n2"]


def test_anti_affinity_counts_pods_being_stopped():
    """A pod planned to stop is still running while the step is applied."""
    pod = PlacedPod("a", "n1", "r1", LABELS)
    fleet = PlacementState(nodes("n1"), [pod])
    fleet.remove(pod)
    assert place(fleet, template({"affinity": ANTI}), 1)[0] == []


def test_preferred_anti_affinity_is_a_preference():
    preferred = {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 50, "podAffinityTerm": ANTI["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]}
            ]
        }
    }
    fleet = PlacementState(nodes("n1", "n2"))
    assert place(fleet, template({"affinity": preferred}), 3)[0] == ["n1", "n2", "n1"]


def test_anti_affinity_other_topology_key_is_refused():
    affinity = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": LABELS}, "topologyKey": "zone"}]}}
    with pytest.raises(SpecError) as err:
        parse_constraints({"containers": [CONTAINER], "affinity": affinity})
    assert err.value.path == "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey"
    assert "only kubernetes.io/hostname" in err.value.message


def test_pod_affinity_other_topology_key_is_refused():
    # podAffinity is honoured on kubernetes.io/hostname (test_sched_well_known_labels.py); a zone is no domain we place by.
    affinity = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": LABELS}, "topologyKey": "zone"}]}}
    with pytest.raises(SpecError) as err:
        parse_constraints({"containers": [CONTAINER], "affinity": affinity})
    assert err.value.path == "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey"
    assert "only kubernetes.io/hostname is supported for pod affinity" in err.value.message


def spread(max_skew=1, when="DoNotSchedule", key="zone", **extra):
    return {
        "topologySpreadConstraints": [{"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when, "labelSelector": {"matchLabels": LABELS}, **extra}]
    }


ZONED = (("n1", {"zone": "a"}), ("n2", {"zone": "a"}), ("n3", {"zone": "a"}), ("n4", {"zone": "b"}))


def zone_counts(fleet_nodes, placed):
    zone = {n.name: n.labels.get("zone") for n in fleet_nodes}
    counts = {}
    for node in placed:
        counts[zone[node]] = counts.get(zone[node], 0) + 1
    return counts


def test_zone_spread_do_not_schedule_keeps_max_skew():
    fleet_nodes = nodes(*ZONED)
    fleet = PlacementState(fleet_nodes)
    placed, why = place(fleet, template(spread()), 8)
    assert zone_counts(fleet_nodes, placed) == {"a": 4, "b": 4}
    assert placed.count("n4") == 4


def test_zone_spread_max_skew_two():
    fleet_nodes = nodes(*ZONED)
    placed = place(PlacementState(fleet_nodes), template(spread(max_skew=2)), 8)[0]
    counts = zone_counts(fleet_nodes, placed)
    assert abs(counts["a"] - counts["b"]) <= 2


def test_zone_spread_do_not_schedule_leaves_pending_when_a_zone_is_full():
    fleet_nodes = nodes(("n1", {"zone": "a"}), ("n2", {"zone": "b"}, Resources(None, None, 1)))
    placed, why = place(PlacementState(fleet_nodes), template(spread()), 4)
    assert placed == ["n1", "n2", "n1"]  # a=2, b=1 is within maxSkew 1; a=3 is not
    assert why == "0/2 nodes are available: 1 Too many pods, 1 node(s) didn't match pod topology spread constraints."


def test_zone_spread_schedule_anyway_goes_on():
    fleet_nodes = nodes(("n1", {"zone": "a"}), ("n2", {"zone": "b"}, Resources(None, None, 1)))
    placed, why = place(PlacementState(fleet_nodes), template(spread(when="ScheduleAnyway")), 4)
    assert placed == ["n1", "n2", "n1", "n1"] and why == ""


def test_zone_spread_ignores_nodes_outside_node_affinity_when_honored():
    fleet_nodes = nodes(("n1", {"zone": "a", "pool": "web"}), ("n2", {"zone": "b", "pool": "web"}), ("n3", {"zone": "c"}))
    spec = {**spread(), "nodeSelector": {"pool": "web"}}
    placed, why = place(PlacementState(fleet_nodes), template(spec), 4)
    assert sorted(placed) == ["n1", "n1", "n2", "n2"]


def test_zone_spread_node_without_the_key_is_filtered():
    fleet_nodes = nodes(("n1", {"zone": "a"}), "n2")
    placed, why = place(PlacementState(fleet_nodes), template(spread()), 2)
    assert placed == ["n1", "n1"]


def test_min_domains():
    fleet_nodes = nodes(("n1", {"zone": "a"}), ("n2", {"zone": "a"}))
    placed, why = place(PlacementState(fleet_nodes), template(spread(minDomains=2)), 3)
    assert placed == ["n1"]  # with fewer domains than minDomains, the global minimum is 0
    assert "topology spread" in why


def test_match_label_keys_spread_per_revision():
    existing = [PlacedPod(f"o{i}", "n1", "old", {**LABELS, "pod-template-hash": "old"}) for i in range(3)]
    fleet_nodes = nodes(("n1", {"zone": "a"}), ("n2", {"zone": "b"}))
    fleet = PlacementState(fleet_nodes, existing)
    tmpl = template(spread(matchLabelKeys=["pod-template-hash"]), revision="new")
    placed, why = fleet.place(tmpl, 2, names())
    assert sorted(p.node for p in placed) == ["n1", "n2"]


@pytest.mark.parametrize(
    ("constraint", "path"),
    [
        ({"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {}}, "spec.topologySpreadConstraints[0].maxSkew"),
        ({"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "Maybe", "labelSelector": {}}, "spec.topologySpreadConstraints[0].whenUnsatisfiable"),
        ({"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}, "spec.topologySpreadConstraints[0].labelSelector"),
        ({"maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {}}, "spec.topologySpreadConstraints[0].topologyKey"),
        (
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {}, "minDomains": 2},
            "spec.topologySpreadConstraints[0].minDomains",
        ),
        (
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {}, "maxSkw": 1},
            "spec.topologySpreadConstraints[0].maxSkw",
        ),
    ],
)
def test_spread_constraint_errors(constraint, path):
    with pytest.raises(SpecError) as err:
        parse_constraints({"topologySpreadConstraints": [constraint]})
    assert err.value.path == path


def test_requests_against_capacity_count_all_owners():
    capacity = Resources(2000, 4 << 30, 10)
    fleet_nodes = nodes(("n1", {}, capacity), ("n2", {}, capacity))
    usage = {"n1": NodeUsage(pods=1, cpu_millis=1500, memory_bytes=0)}
    tmpl = template({"containers": [{**CONTAINER, "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]})
    assert tmpl.constraints.requests == Resources(500, 1 << 30, 1)
    placed, why = place(PlacementState(fleet_nodes, other_usage=usage), tmpl, 6)
    # n1 has 500m left: one pod; n2 has 2 cpus and 4Gi: four pods
    assert sorted(placed) == ["n1", "n2", "n2", "n2", "n2"]
    assert why == "0/2 nodes are available: 2 Insufficient cpu."


def test_memory_and_pod_count_reasons():
    fleet_nodes = nodes(("n1", {}, Resources(None, 1 << 30, None)), ("n2", {}, Resources(None, None, 2)), ("n3", {}, None, False))
    usage = {"n2": NodeUsage(pods=2)}
    tmpl = template({"containers": [{**CONTAINER, "resources": {"requests": {"memory": "2Gi"}}}]})
    placed, why = place(PlacementState(fleet_nodes, other_usage=usage), tmpl, 1)
    assert placed == []
    assert why == "0/3 nodes are available: 1 Insufficient memory, 1 Too many pods, 1 node(s) were not ready."


def test_existing_pods_requests_count_against_capacity():
    existing = [PlacedPod("a", "n1", "r1", LABELS, Resources(1000, 0, 1))]
    fleet = PlacementState(nodes(("n1", {}, Resources(1500, None, None))), existing)
    tmpl = template({"containers": [{**CONTAINER, "resources": {"requests": {"cpu": "1"}}}]})
    assert place(fleet, tmpl, 1) == ([], "0/1 nodes are available: 1 Insufficient cpu.")


def test_no_nodes_at_all():
    assert place(PlacementState([]), template(), 1) == ([], "0/0 nodes are available: no nodes to schedule on.")


def test_not_ready_node_gets_nothing_and_is_a_reason():
    fleet = PlacementState(nodes("n1", ("n2", {}, None, False)))
    assert place(fleet, template(), 2)[0] == ["n1", "n1"]


def test_no_affinity_node_selector_reason():
    fleet = PlacementState(nodes("n1", "n2"))
    assert place(fleet, template({"nodeSelector": {"gpu": "yes"}}), 1) == ([], "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.")


def candidate(name, node, revision="r1", health=3, order=1, created=0.0):
    return Candidate(PlacedPod(name, node, revision, LABELS), health, order, created)


def test_victims_unhealthy_first_then_older_revision_then_crowded_node_then_youngest():
    cands = [
        candidate("ready-old-n1", "n1", "old", 3, 1, 10.0),
        candidate("ready-new-n1", "n1", "new", 3, 2, 20.0),
        candidate("pending-new", "n2", "new", 0, 2, 30.0),
        candidate("notready-new", "n2", "new", 1, 2, 40.0),
        candidate("ready-new-n2a", "n2", "new", 3, 2, 50.0),
        candidate("ready-new-n2b", "n2", "new", 3, 2, 60.0),
    ]
    fleet = PlacementState(nodes("n1", "n2"), [c.pod for c in cands])
    order = [p.name for p in fleet.choose_victims(cands, 6)]
    assert order[:3] == ["pending-new", "notready-new", "ready-old-n1"]
    # then n2 has 2 pods left, n1 one: n2's youngest, then ties (1/1): youngest overall
    assert order[3:] == ["ready-new-n2b", "ready-new-n2a", "ready-new-n1"]


def test_victims_keep_spread():
    cands = [candidate(f"p{i}", n, created=float(i)) for i, n in enumerate(["n1", "n1", "n1", "n2", "n2", "n3"])]
    fleet = PlacementState(nodes("n1", "n2", "n3"), [c.pod for c in cands])
    victims = fleet.choose_victims(cands, 3)
    remaining = [c.pod.node for c in cands if c.pod not in victims]
    assert sorted(remaining) == ["n1", "n2", "n3"]


def test_constraints_default_fits_anything():
    assert Constraints().matches_node_affinity(Node("x", True, {}))


def test_host_ports_one_pod_per_node_then_pending_with_kubernetes_reason():
    port = {"containers": [dict(CONTAINER, ports=[{"containerPort": 80, "hostPort": 80}])]}
    fleet = PlacementState(nodes("n1", "n2"))
    placed, why = place(fleet, template(port), 3)
    assert sorted(placed) == ["n1", "n2"] and "2 node(s) didn't have free ports for the requested pod ports" in why
    # Another owner's pod holding the port counts too.
    other = PlacementState(nodes("n1", "n2"), other_usage={"n1": NodeUsage(1, 0, 0, (), (("TCP", 80),))})
    assert place(other, template(port), 1) == (["n2"], "")
    # UDP 80 is another port.
    udp = {"containers": [dict(CONTAINER, ports=[{"containerPort": 80, "hostPort": 80, "protocol": "UDP"}])]}
    assert place(other, template(udp), 1)[0] == ["n1"]


def _container(name, cpu, memory="1Mi", restart_policy=None):
    container = {"name": name, "resources": {"requests": {"cpu": cpu, "memory": memory, "nvidia.com/gpu": "1"}}}
    if restart_policy:
        container["restartPolicy"] = restart_policy
    return container


def test_init_containers_count_as_kubernetes_pod_requests():
    # An init container bigger than the app: its request is the pod's while it runs (cpu); the app's sum otherwise.
    spec = {"containers": [_container("a", "100m", "64Mi"), _container("b", "100m", "64Mi")], "initContainers": [_container("init", "500m", "1Mi")]}
    requests = parse_constraints(spec).requests
    assert (requests.cpu_millis, requests.memory_bytes) == (500, 128 * 1024 * 1024)
    # A sidecar runs with the app and with every init container after it: 300m + 400m while `late` runs.
    spec = {
        "containers": [_container("app", "100m")],
        "initContainers": [_container("early", "200m"), _container("proxy", "300m", restart_policy="Always"), _container("late", "400m")],
    }
    requests = parse_constraints(spec).requests
    assert requests.cpu_millis == 700
    # Extended resources: the app's 1 + the sidecar's 1 run together; each init container's 1 runs alone (+ sidecar).
    assert dict(requests.extended) == {"nvidia.com/gpu": 2}
