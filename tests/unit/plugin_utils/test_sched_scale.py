"""The indexed scheduler (issue 11) decides exactly as the plain one did, and stays near-linear.

``naive_scheduler.NaiveFleet`` is the scheduler as it was: every pick scans every node and recounts its
pods. On random fleets (labels, readiness, capacity, other owners' pods and ports, leaving pods) and random
templates (node selector and affinity, required and preferred anti-affinity, hard and soft spread
constraints over zones or hosts with minDomains and matchLabelKeys, requests, host ports), the same
sequence of placements, stops, taken-back stops and victim choices must give the same nodes, names,
Pending messages and victims.
"""

from __future__ import annotations

import itertools
import random
import time

import pytest
from naive_scheduler import NaiveFleet

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.constraints import parse_constraints
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node, NodeUsage, Resources
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.placement import Candidate, PlacedPod, PlacementState, PodTemplate

ZONES = ("a", "b", "c", "d")
CONTAINER = {"name": "main", "command": ["/bin/true"]}


def random_nodes(rng, count):
    nodes = []
    for i in range(count):
        name = f"n{i:02d}"
        labels = {"kubernetes.io/hostname": name}
        if rng.random() < 0.9:
            labels["zone"] = rng.choice(ZONES)
        if rng.random() < 0.5:
            labels["disk"] = "ssd"
        capacity = None
        if rng.random() < 0.4:
            capacity = Resources(rng.choice([None, 500, 1000, 3000]), rng.choice([None, 2**30]), rng.choice([None, 2, 4, 8]))
            if rng.random() < 0.5:  # issue 15: extended resources (none where the capacity does not name them)
                capacity = Resources(capacity.cpu_millis, capacity.memory_bytes, capacity.pods, (("nvidia.com/gpu", rng.choice([1, 2, 4])),))
        nodes.append(Node(name, rng.random() < 0.9, labels, capacity))
    rng.shuffle(nodes)  # both sort them by name
    return nodes


def random_usage(rng, nodes):
    usage = {}
    for node in nodes:
        if rng.random() < 0.3:
            labels = tuple({"app": rng.choice(["api", "db"]), "tier": rng.choice(["x", "y"])} for _i in range(rng.randint(0, 2)))
            ports = (("TCP", 8080),) if rng.random() < 0.2 else ()
            gpus = (("nvidia.com/gpu", 1),) if rng.random() < 0.3 else ()
            usage[node.name] = NodeUsage(rng.randint(0, 2), rng.choice([0, 200]), 0, labels, ports, gpus)
    return usage


def random_template(rng, revision):
    labels = {"app": "api", "pod-template-hash": revision}
    spec = {"containers": [dict(CONTAINER)]}
    if rng.random() < 0.2:
        spec["nodeSelector"] = {"disk": "ssd"}
    if rng.random() < 0.2:
        terms = [{"matchExpressions": [{"key": "zone", "operator": "In", "values": rng.sample(ZONES, 2)}]}]
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}
    if rng.random() < 0.3:
        preferred = [{"weight": rng.randint(1, 100), "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}}]
        spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})["preferredDuringSchedulingIgnoredDuringExecution"] = preferred
    anti = {}
    if rng.random() < 0.15:
        anti["requiredDuringSchedulingIgnoredDuringExecution"] = [{"labelSelector": {"matchLabels": {"app": "api"}}, "topologyKey": "kubernetes.io/hostname"}]
    if rng.random() < 0.25:
        term = {"labelSelector": {"matchLabels": {"app": rng.choice(["api", "db"])}}, "topologyKey": "kubernetes.io/hostname"}
        anti["preferredDuringSchedulingIgnoredDuringExecution"] = [{"weight": rng.randint(1, 100), "podAffinityTerm": term}]
    if anti:
        spec.setdefault("affinity", {})["podAntiAffinity"] = anti
    # issue 15: pod affinity (required: with the pods it names, or anywhere for the first of a self-affine group).
    affinity = {}
    if rng.random() < 0.15:
        selector = {"matchLabels": {"app": rng.choice(["api", "db"])}}
        affinity["requiredDuringSchedulingIgnoredDuringExecution"] = [{"labelSelector": selector, "topologyKey": "kubernetes.io/hostname"}]
    if rng.random() < 0.2:
        term = {"labelSelector": {"matchLabels": {"tier": rng.choice(["x", "y"])}}, "topologyKey": "kubernetes.io/hostname"}
        affinity["preferredDuringSchedulingIgnoredDuringExecution"] = [{"weight": rng.randint(1, 100), "podAffinityTerm": term}]
    if affinity:
        spec.setdefault("affinity", {})["podAffinity"] = affinity
    spread = []
    for key in rng.sample(["zone", "kubernetes.io/hostname", "disk"], rng.choice([0, 0, 1, 1, 2])):
        constraint = {
            "maxSkew": rng.randint(1, 3),
            "topologyKey": key,
            "whenUnsatisfiable": rng.choice(["DoNotSchedule", "ScheduleAnyway"]),
            "labelSelector": {"matchLabels": {"app": "api"}},
        }
        if rng.random() < 0.3:
            constraint["matchLabelKeys"] = ["pod-template-hash"]
        if constraint["whenUnsatisfiable"] == "DoNotSchedule" and rng.random() < 0.3:
            constraint["minDomains"] = rng.randint(1, 6)
        if rng.random() < 0.3:
            constraint["nodeAffinityPolicy"] = "Ignore"
        spread.append(constraint)
    if spread:
        spec["topologySpreadConstraints"] = spread
    if rng.random() < 0.3:
        spec["containers"][0]["resources"] = {"requests": {"cpu": rng.choice(["100m", "300m"]), "memory": "64Mi"}}
    if rng.random() < 0.1:
        spec["containers"][0]["ports"] = [{"containerPort": 8080, "hostPort": 8080}]
    if rng.random() < 0.15:
        spec["containers"][0].setdefault("resources", {}).setdefault("requests", {})["nvidia.com/gpu"] = 1
    return PodTemplate(revision, labels, parse_constraints(spec))


def pod_names(prefix):
    counter = itertools.count()
    return lambda: f"{prefix}-{next(counter)}"


def play(seed, operations=40):
    """One random run on both schedulers; the outputs of every operation, side by side."""
    rng = random.Random(seed)
    nodes = random_nodes(rng, rng.randint(1, 24))
    usage = random_usage(rng, nodes)
    templates = [random_template(rng, f"r{i}") for i in range(rng.randint(1, 3))]
    ready = sorted(n.name for n in nodes if n.ready) or [nodes[0].name]
    existing = []
    for i in range(rng.randint(0, 40)):
        template = rng.choice(templates)
        existing.append(PlacedPod(f"old-{i}", rng.choice(ready), template.revision, dict(template.labels), template.constraints.requests))
    fleets = [PlacementState(nodes, existing, usage), NaiveFleet(nodes, existing, usage)]
    outputs = ([], [])
    names = [pod_names(f"s{seed}"), pod_names(f"s{seed}")]
    placed_so_far = list(existing)
    for _step in range(operations):
        kind = rng.choice(["place", "place", "place", "victims", "victims", "remove", "unremove", "reason"])
        count = rng.randint(1, 12)
        template = rng.choice(templates)
        pods = sorted(placed_so_far, key=lambda p: p.name)
        if kind in ("remove", "unremove", "victims") and not pods:
            continue
        if kind == "victims":
            chosen = rng.sample(pods, min(len(pods), rng.randint(1, 30)))
            candidates = [Candidate(p, rng.randint(0, 3), rng.choice([-1, 1, 2]), float(rng.randint(0, 5))) for p in chosen]
        picked = rng.choice(pods) if pods else None
        node = rng.choice(nodes)
        for fleet, out, name in zip(fleets, outputs, names, strict=True):
            if kind == "place":
                placed, why = fleet.place(template, count, name)
                out.append(("place", [(p.name, p.node) for p in placed], why))
            elif kind == "victims":
                out.append(("victims", [p.name for p in fleet.choose_victims(candidates, count)]))
            elif kind == "remove":
                fleet.remove(picked)
            elif kind == "unremove":
                fleet.unremove(picked)
            else:
                out.append(("reason", node.name, fleet.reason(node, template), fleet.count(node.name), fleet.count(node.name, template.revision)))
        if kind == "place":
            new_names = {n for n, _node in outputs[1][-1][1]}
            placed_so_far += [p for n in fleets[1].nodes for p in fleets[1]._pods[n].values() if p.name in new_names]
    return outputs


@pytest.mark.parametrize("seed", range(150))
def test_indexed_scheduler_decides_as_the_plain_one(seed):
    indexed, plain = play(seed)
    assert indexed == plain


def test_the_plain_scheduler_reference_is_exercised():
    """The random runs place, fail to place (with reasons) and choose victims: the comparison covers them."""
    outputs = [entry for seed in range(150) for entry in play(seed)[1]]
    assert sum(1 for o in outputs if o[0] == "place" and o[1]) > 200
    assert sum(1 for o in outputs if o[0] == "place" and o[2]) > 50
    assert any("topology spread" in o[2] for o in outputs if o[0] == "place")
    assert sum(1 for o in outputs if o[0] == "victims" and o[1]) > 100


def test_placing_is_near_linear():
    """10,000 pods over 1,000 nodes, with and without a zone spread constraint, in seconds (CPU time, generous:
    before issue 11 this took minutes)."""
    nodes = [Node(f"n{i:04d}", True, {"kubernetes.io/hostname": f"n{i:04d}", "zone": ZONES[i % 4]}) for i in range(1000)]
    zone = {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "api"}}}
    spread = {"topologySpreadConstraints": [zone]}
    for extra in ({}, spread):
        template = PodTemplate("r1", {"app": "api"}, parse_constraints({"containers": [CONTAINER], **extra}))
        fleet = PlacementState(nodes)
        start = time.process_time()
        placed, why = fleet.place(template, 10_000, pod_names("p"))
        spent = time.process_time() - start
        assert len(placed) == 10_000 and why == ""
        per_node = [fleet.count(n.name) for n in nodes]
        assert max(per_node) - min(per_node) <= 1
        victims = fleet.choose_victims([Candidate(p, 2, 1, float(i % 7)) for i, p in enumerate(placed)], 5_000)
        spent = time.process_time() - start
        assert len({v.name for v in victims}) == 5_000
        per_node = [fleet.count(n.name) for n in nodes]
        assert max(per_node) - min(per_node) <= 1
        assert spent < 10, f"placing 10,000 pods and choosing 5,000 victims took {spent:.1f} s of CPU"
