"""Namespaces in the one orchestration path (issue 14 item 4), every kind run against a simulated fleet: the same name
in two namespaces is two workloads (their own pods, records and leases on the nodes), deleting one leaves the other;
a StatefulSet's pods keep their Kubernetes hostname, labels and claims. Manifests and workload_info key objects by
(kind, namespace, name)."""

from __future__ import annotations

import pytest
from workload_action_helpers import SimFleet, patch_clock, run_action, template

from ansible_collections.hostfleet.workloads.plugins.action import workload_info as wi
from ansible_collections.hostfleet.workloads.plugins.module_utils.kinds import KINDS
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.manifests import load
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.manifests.objects import ManifestErrors, build, dependencies
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_task import WorkloadTask

SLEEP = ["/bin/sleep", "3600"]


@pytest.fixture
def clock(monkeypatch):
    return patch_clock(monkeypatch)


def kind_args(module, **extra):
    args = {"name": "web", "template": template(SLEEP), **extra}
    if module == "statefulset":
        args["serviceName"] = "web"
        args["volumeClaimTemplates"] = [{"metadata": {"name": "data"}}]
    if module == "job":
        args["template"]["spec"]["restartPolicy"] = "Never"
        args["wait"] = False
    if module == "cronjob":
        job = {"spec": {"template": dict(template(SLEEP), spec=dict(template(SLEEP)["spec"], restartPolicy="Never"))}}
        args = {"name": "web", "schedule": "*/5 * * * *", "jobTemplate": job, **extra}
    return args


def owners(fleet):
    return {p["owner"]["name"] for pods in fleet.pods.values() for p in pods.values()}


@pytest.mark.parametrize("module", ["deployment", "replicaset", "replicationcontroller", "statefulset", "daemonset", "job"])
def test_the_same_name_in_two_namespaces_is_two_workloads(clock, module):
    fleet = SimFleet(clock)
    first = run_action(fleet, module, kind_args(module))
    second = run_action(fleet, module, kind_args(module, namespace="prod"))
    assert not first.get("failed") and not second.get("failed"), (first.get("msg"), second.get("msg"))
    assert owners(fleet) == {"web", "prod_web"}
    kind = next(k.name for k in KINDS if k.module == module)
    assert {f"{kind}/web", f"{kind}/prod_web"} <= set(fleet.records["a"])
    prod_pods = [n for pods in fleet.pods.values() for n in pods if n.startswith("prod_web-")]
    default_pods = [n for pods in fleet.pods.values() for n in pods if n.startswith("web-")]
    assert prod_pods and len(prod_pods) == len(default_pods)
    # Deleting prod's leaves default's as they were.
    before = {h: {n: p for n, p in pods.items() if p["owner"]["name"] == "web"} for h, pods in fleet.pods.items()}
    gone = run_action(fleet, module, {"name": "web", "namespace": "prod", "state": "absent"})
    assert not gone.get("failed"), gone.get("msg")
    assert fleet.pods == before


def test_a_statefulset_pod_in_a_namespace_keeps_its_kubernetes_identity(clock):
    fleet = SimFleet(clock)
    sent = []
    original = fleet.run_module

    def recording(module, args_per_host, check_mode=None, timeout=None):
        sent.extend(p for args in args_per_host.values() for p in args.get("pods", ()))
        return original(module, args_per_host, check_mode, timeout)

    fleet.run_module = recording
    result = run_action(fleet, "statefulset", kind_args("statefulset", namespace="prod", replicas=2))
    assert not result.get("failed"), result.get("msg")
    pod = next(p for p in sent if p["name"] == "prod_web-0")
    assert pod["spec"]["hostname"] == "web-0"
    assert pod["labels"]["statefulset.kubernetes.io/pod-name"] == "web-0"
    assert pod["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}}]


def test_a_cronjob_in_a_namespace_is_installed_under_its_node_name(clock):
    fleet = SimFleet(clock)
    run_action(fleet, "cronjob", kind_args("cronjob"))
    run_action(fleet, "cronjob", kind_args("cronjob", namespace="prod"))
    installed = {name for timers in fleet.timers.values() for name in timers}
    assert installed == {"web", "prod_web"}


def deployment_doc(name="web", namespace=None, claim=None):
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    spec = {"containers": [{"name": "main", "command": SLEEP}]}
    if claim:
        spec["volumes"] = [{"name": "d", "persistentVolumeClaim": {"claimName": claim}}]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata,
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


def claim_doc(name, namespace=None):
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, **({"namespace": namespace} if namespace else {})}, "spec": {}}


def test_apply_keys_objects_by_kind_namespace_and_name():
    objects = build(load.from_definition([deployment_doc(), deployment_doc(namespace="prod")]))
    assert [(o.kind, o.namespace, o.name, o.title) for o in objects] == [
        ("Deployment", "default", "web", "Deployment web"),
        ("Deployment", "prod", "web", "Deployment prod/web"),
    ]
    # -n: the namespace of documents that name none.
    assert [o.namespace for o in build(load.from_definition([deployment_doc(), deployment_doc("api", "prod")]), "staging")] == ["staging", "prod"]
    with pytest.raises(ManifestErrors) as twice:
        build(load.from_definition([deployment_doc(namespace="prod"), deployment_doc(namespace="prod")]))
    assert "Deployment web is also defined in" in str(twice.value.errors)


@pytest.mark.parametrize("bad", ["Prod", "prod_x", "-prod", "a" * 64])
def test_a_namespace_that_is_no_dns_label_is_refused_naming_the_field(bad):
    with pytest.raises(ManifestErrors) as info:
        build(load.from_definition([deployment_doc(namespace=bad)]))
    assert "metadata.namespace" in " ".join(info.value.errors)


def test_a_pod_waits_only_for_the_claims_of_its_own_namespace():
    objects = build(load.from_definition([claim_doc("data", "prod"), claim_doc("data"), deployment_doc(namespace="prod", claim="data")]))
    needs = dependencies(objects, "present")
    assert needs["Deployment prod/web"] == ["PersistentVolumeClaim prod/data"]


def node_pod(name, owner):
    return {"name": name, "owner": {"kind": "Deployment", "name": owner}, "labels": {}, "revision": "r1", "created": 1000.0, "phase": "Running",
            "ready": True, "ready_since": 1000.0, "restart_count": 0, "containers": [{"name": "main", "ready": True, "state": {"running": {}}}]}


def test_workload_info_shows_each_workload_in_its_namespace():
    report = {"observed_at": 1100.0, "pods": [node_pod("web-a-1", "web"), node_pod("prod_web-a-1", "prod_web")], "owner_records": {}, "cronjobs": {}}
    results = {"node1": report}
    workloads = wi.summarize(results, 1100.0)
    wi.as_kubernetes_names(workloads)
    assert sorted((w["namespace"], w["name"], [p["name"] for p in w["pods"]]) for w in workloads) == [
        ("default", "web", ["web-a-1"]), ("prod", "web", ["web-a-1"])]
    only = wi.summarize(results, 1100.0, name="web", namespace="prod")
    wi.as_kubernetes_names(only)
    assert [(w["namespace"], w["name"]) for w in only] == [("prod", "web")]
    table = wi.render_table(workloads, now=1100.0)
    assert table[0].split()[0] == "NAMESPACE" and any(line.split()[:2] == ["prod", "pod/web-a-1"] for line in table)
    # Without anything outside default, the table is as it was.
    alone = wi.summarize({"node1": dict(report, pods=[node_pod("web-a-1", "web")])}, 1100.0)
    wi.as_kubernetes_names(alone)
    assert wi.render_table(alone, now=1100.0)[0].split()[0] != "NAMESPACE"


class OneNodeFleet:
    """A node holding default's `web-1` and prod's `prod_web-1` (labels app=web), as pod_info reports them."""

    hosts = ["a"]

    def run_module(self, module, args_per_host, check_mode=None):
        held = (("web-1", "web"), ("prod_web-1", "prod_web"))
        pods = [dict(node_pod(name, owner), labels={"app": "web"}, requests={}, host_ports=[]) for name, owner in held]
        return {"a": {"pods": pods, "observed_at": 0}}

    def emit_warnings(self, results):
        pass

    def groups_of(self, host):
        return ["lab"]

    def host_vars(self, host):
        return {}


@pytest.mark.parametrize("owner, seen", [("api", [{"app": "web"}]), ("staging_api", [])])
def test_anti_affinity_and_spread_see_the_pods_of_their_own_namespace(owner, seen):
    observation = WorkloadTask(OneNodeFleet(), "Deployment", owner, "/var/lib/hostfleet", check_mode=False).observe()
    # Both pods count for capacity; only those of the workload's namespace for labels (anti-affinity, spread).
    assert observation.usage["a"].pods == 2
    assert list(observation.usage["a"].labels) == seen


def test_a_tasks_result_names_its_pods_as_kubernetes_does(clock):
    fleet = SimFleet(clock)
    result = run_action(fleet, "deployment", kind_args("deployment", namespace="prod", replicas=2))
    assert {(p["namespace"], p["name"].startswith("web-")) for p in result["pods"]} == {("prod", True)}
    assert all(name.startswith("web-") for node in result["nodes"].values() for name in node["pods"])
