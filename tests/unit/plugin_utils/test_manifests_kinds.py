"""The manifest layer's classification (issue 14): kinds that mean nothing on hosts are skipped by name, not a refusal
of the file; a standalone PersistentVolumeClaim names a volume; which objects depend on which (apply's "independent")."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.manifests import load
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.manifests.objects import (
    ORDER,
    ManifestErrors,
    build,
    dependencies,
    references,
)
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.manifests.skipped_kinds import SKIPPED_KINDS, name_problem

CONTAINER = {"name": "main", "command": ["/bin/sleep", "infinity"]}

# The kubernetes.io StatefulSet example (concepts/workloads/controllers/statefulset), unchanged.
STATEFULSET_EXAMPLE = """\
apiVersion: v1
kind: Service
metadata:
  name: nginx
  labels:
    app: nginx
spec:
  ports:
  - port: 80
    name: web
  clusterIP: None
  selector:
    app: nginx
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: nginx # has to match .spec.template.metadata.labels
  serviceName: "nginx"
  replicas: 3 # by default is 1
  minReadySeconds: 10 # by default is 0
  template:
    metadata:
      labels:
        app: nginx # has to match .spec.selector.matchLabels
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: nginx
        image: registry.k8s.io/nginx-slim:0.24
        ports:
        - containerPort: 80
          name: web
        volumeMounts:
        - name: www
          mountPath: /usr/share/nginx/html
  volumeClaimTemplates:
  - metadata:
      name: www
    spec:
      accessModes: [ "ReadWriteOnce" ]
      storageClassName: "my-storage-class"
      resources:
        requests:
          storage: 1Gi
"""

SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
# One document of each skipped kind, as real manifests write them.
EXAMPLES = {
    "ServiceAccount": {"apiVersion": "v1", "metadata": {"name": "web", "namespace": "shop"}},
    "Role": {"apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "pod-reader"}, "rules": [{"apiGroups": [""], "verbs": ["get"]}]},
    "RoleBinding": {"apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "read-pods"}, "roleRef": {"kind": "Role", "name": "pod-reader"}},
    "ClusterRole": {"apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "system:web-reader"}, "rules": []},
    "ClusterRoleBinding": {"apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "system:web-reader"}, "subjects": []},
    "Namespace": {"apiVersion": "v1", "metadata": {"name": "shop"}},
    "NetworkPolicy": {"apiVersion": "networking.k8s.io/v1", "metadata": {"name": "deny-all"}, "spec": {"podSelector": {}}},
    "Ingress": {"apiVersion": "networking.k8s.io/v1", "metadata": {"name": "web.example.com"}, "spec": {"rules": []}},
    "HorizontalPodAutoscaler": {"apiVersion": "autoscaling/v2", "metadata": {"name": "web"}, "spec": {"maxReplicas": 5}},
    "PodDisruptionBudget": {"apiVersion": "policy/v1", "metadata": {"name": "web-pdb"}, "spec": {"minAvailable": 1}},
    "PersistentVolume": {"apiVersion": "v1", "metadata": {"name": "pv0001"}, "spec": {"capacity": {"storage": "5Gi"}}},
    "StorageClass": {"apiVersion": "storage.k8s.io/v1", "metadata": {"name": "fast"}, "provisioner": "kubernetes.io/no-provisioner"},
    "PriorityClass": {"apiVersion": "scheduling.k8s.io/v1", "metadata": {"name": "high-priority"}, "value": 1000000},
}


def deployment(name="web", volumes=(), env=(), env_from=()):
    container = dict(CONTAINER, env=list(env), envFrom=list(env_from))
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container], "volumes": list(volumes)}},
        },
    }


def configmap(name):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"A": "1"}}


def claim(name, **spec):
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}


def objects_of(*bodies):
    return build([load.Document(f"doc#{i}", b) for i, b in enumerate(bodies)])


def errors_of(*bodies):
    with pytest.raises(ManifestErrors) as info:
        objects_of(*bodies)
    return info.value.errors


# -- kinds that mean nothing on hosts -----------------------------------------------------------


def test_the_examples_cover_every_skipped_kind_of_the_brief():
    assert set(EXAMPLES) == set(SKIPPED_KINDS)
    assert not set(SKIPPED_KINDS) & set(ORDER)  # never applied: no place in the apply order


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_each_skipped_kind_is_reported_by_name_with_a_reason_and_the_rest_is_built(kind):
    objs = objects_of({**EXAMPLES[kind], "kind": kind}, deployment())
    assert [(o.kind, o.name, bool(o.skipped_because)) for o in objs] == [("Deployment", "web", False), (kind, EXAMPLES[kind]["metadata"]["name"], True)]
    assert objs[1].skipped_because == SKIPPED_KINDS[kind].reason
    assert objs[1].source == "doc#0" and objs[1].args == {}


def test_the_kubernetes_io_statefulset_example_builds_with_its_service_applied_after_the_workload():
    objs = build(load.from_text(STATEFULSET_EXAMPLE, "web.yaml"))
    assert [(o.kind, o.name, o.source) for o in objs] == [("StatefulSet", "web", "web.yaml#1"), ("Service", "nginx", "web.yaml#0")]
    assert not objs[1].skipped_because and objs[1].args["spec"]["clusterIP"] == "None"
    assert objs[1].ignored == ["metadata.labels"]
    assert "spec.volumeClaimTemplates[0].spec" not in " ".join(objs[0].ignored)  # kept with the StatefulSet, as before


@pytest.mark.parametrize(
    "kind,body,expected",
    [
        ("Service", {"apiVersion": "apps/v1", "metadata": {"name": "s"}}, "doc#0 (Service): apiVersion: must be 'v1' for a Service, got 'apps/v1'"),
        (
            "HorizontalPodAutoscaler",
            {"apiVersion": "autoscaling/v2beta1", "metadata": {"name": "h"}},
            "apiVersion: must be 'autoscaling/v2' or 'autoscaling/v1' for a HorizontalPodAutoscaler, got 'autoscaling/v2beta1'",
        ),
        ("Service", {"apiVersion": "v1", "metadata": {"name": "9lives"}}, "doc#0 (Service 9lives): metadata.name: '9lives' is not a DNS-1035 label"),
        ("Namespace", {"apiVersion": "v1", "metadata": {"name": "a.b"}}, "metadata.name: 'a.b' is not a DNS-1123 label"),
        ("Ingress", {"apiVersion": "networking.k8s.io/v1", "metadata": {"name": "Web"}}, "metadata.name: 'Web' is not a DNS-1123 subdomain"),
        ("ClusterRole", {"apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "a/b"}}, "is not a path segment name"),
        ("Role", {"apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": ".."}}, "is not a path segment name"),
        ("ServiceAccount", {"apiVersion": "v1", "metadata": {}}, "doc#0 (ServiceAccount): metadata.name: is required"),
        ("ServiceAccount", {"apiVersion": "v1"}, "metadata.name: is required"),
    ],
)
def test_skipped_kinds_still_have_their_basics_checked(kind, body, expected):
    (error,) = errors_of({**body, "kind": kind}, deployment())
    assert expected in error, error


def test_an_unknown_kind_is_still_refused_and_the_message_names_what_is_skipped():
    (error,) = errors_of({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "c"}})
    assert "kind: 'Certificate' is not supported" in error
    assert "reported and not applied: ClusterRole, ClusterRoleBinding" in error and "RoleBinding, ServiceAccount" in error


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(SKIPPED_KINDS)), st.text(alphabet="abz09-.:/%A", min_size=0, max_size=70))
def test_property_a_skipped_document_is_built_exactly_when_its_name_is_valid(kind, name):
    body = {"apiVersion": SKIPPED_KINDS[kind].api_versions[0], "kind": kind, "metadata": {"name": name}}
    problem = name_problem(kind, name)
    if problem is None:
        (obj,) = objects_of(body)
        assert (obj.kind, obj.name) == (kind, name) and obj.skipped_because
    else:
        (error,) = errors_of(body)
        assert error == f"doc#0 ({kind}): metadata.name: {problem}"
    # A DNS-1123 label is valid for every kind but a Service (DNS-1035: a letter first).
    if name and len(name) <= 63 and name[0] in "abz" and name[-1] in "abz09" and set(name) <= set("abz09-"):
        assert problem is None


# -- PersistentVolumeClaim ----------------------------------------------------------------------


def test_a_standalone_claim_is_built_and_its_spec_is_listed_as_ignored():
    body = claim("data", storageClassName="fast", accessModes=["ReadWriteOnce"], resources={"requests": {"storage": "1Gi"}}, volumeMode="Filesystem")
    volume = {"name": "d", "persistentVolumeClaim": {"claimName": "data"}}
    objs = objects_of(deployment(volumes=[volume]), body)
    assert [(o.kind, o.name) for o in objs] == [("PersistentVolumeClaim", "data"), ("Deployment", "web")]
    assert sorted(objs[0].ignored) == ["spec.accessModes", "spec.resources", "spec.storageClassName", "spec.volumeMode"]
    assert objs[0].is_claim and not objs[0].skipped_because


@pytest.mark.parametrize(
    "body,expected",
    [
        (claim("Data"), "(PersistentVolumeClaim): metadata.name: 'Data' is not a DNS-1123 label"),
        (claim("data", accessModes=["ReadWriteSometimes"]), "(PersistentVolumeClaim data): spec.accessModes[0]: Unsupported value: 'ReadWriteSometimes'"),
        (claim("data", volumeMode="Block"), "(PersistentVolumeClaim data): spec.volumeMode: Block is not supported on hosts"),
        (claim("data", dataSource={"kind": "VolumeSnapshot", "name": "s"}), "(PersistentVolumeClaim data): spec.dataSource: is not supported on hosts"),
        (claim("data", resources=[]), "(PersistentVolumeClaim data): spec.resources: must be a mapping, got a list"),
        ({**claim("data"), "apiVersion": "v2"}, "(PersistentVolumeClaim): apiVersion: must be 'v1'"),
        ({**claim("data"), "data": {}}, "(PersistentVolumeClaim data): data: unknown field"),
    ],
)
def test_claim_problems_are_named(body, expected):
    (error,) = errors_of(body)
    assert expected in error, error


# -- dependencies: what "independent" means ----------------------------------------------------


def test_references_are_what_the_pods_read_by_name():
    volumes = [
        {"name": "c", "configMap": {"name": "cm-vol"}},
        {"name": "s", "secret": {"secretName": "sec-vol"}},
        {"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
        {"name": "e", "emptyDir": {}},
    ]
    env = [
        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm-key", "key": "A"}}},
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "sec-key", "key": "B"}}},
    ]
    env_from = [{"configMapRef": {"name": "cm-from"}}, {"secretRef": {"name": "sec-from"}}]
    (obj,) = objects_of(deployment(volumes=volumes, env=env, env_from=env_from))
    assert references(obj) == {
        ("ConfigMap", "cm-vol"),
        ("ConfigMap", "cm-key"),
        ("ConfigMap", "cm-from"),
        ("Secret", "sec-vol"),
        ("Secret", "sec-key"),
        ("Secret", "sec-from"),
        ("PersistentVolumeClaim", "data"),
    }


def test_dependencies_present_and_absent():
    reader = deployment("reader", env_from=[{"configMapRef": {"name": "cfg"}}], volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}])
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "job"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [CONTAINER]}}},
    }
    objs = objects_of(configmap("cfg"), configmap("other"), claim("data"), reader, deployment("plain"), job, SERVICE)
    assert dependencies(objs, "present") == {
        "ConfigMap cfg": [],
        "ConfigMap other": [],
        "PersistentVolumeClaim data": [],
        "Deployment reader": ["ConfigMap cfg", "PersistentVolumeClaim data"],
        "Deployment plain": [],
        "Job job": [],
        "Service web": [],
    }
    absent = dependencies(objs, "absent")
    assert absent["ConfigMap cfg"] == ["Deployment reader"] and absent["PersistentVolumeClaim data"] == ["Deployment reader"]
    assert absent["Deployment reader"] == [] and absent["ConfigMap other"] == []


def test_a_reference_to_an_object_outside_the_apply_is_no_dependency():
    (obj,) = objects_of(deployment("reader", env_from=[{"configMapRef": {"name": "applied-before"}}]))
    assert dependencies([obj], "present") == {"Deployment reader": []}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sets(st.sampled_from(["a", "b", "c", "x"]))), min_size=1, max_size=5, unique_by=lambda t: t[0]))
def test_property_dependencies_are_exactly_the_references_within_the_apply_and_absent_reverses_them(spec):
    """Workload w-<n> reads the ConfigMaps named in its set; ConfigMaps a, b, c are in the apply, x is not."""
    bodies = [configmap(c) for c in ("a", "b", "c")]
    bodies += [deployment(f"w-{n}", env_from=[{"configMapRef": {"name": c}} for c in sorted(reads)]) for n, reads in spec]
    objs = objects_of(*bodies)
    present, absent = dependencies(objs, "present"), dependencies(objs, "absent")
    edges = {(f"Deployment w-{n}", f"ConfigMap {c}") for n, reads in spec for c in reads if c != "x"}
    assert {(user, dep) for user, deps in present.items() for dep in deps} == edges
    assert {(user, dep) for dep, users in absent.items() for user in users} == edges
    assert all(not present[f"ConfigMap {c}"] for c in "abc")


def test_the_manifests_are_not_changed_by_classification():
    text = STATEFULSET_EXAMPLE
    docs = load.from_text(text, "web.yaml")
    before = yaml.safe_dump_all([d.body for d in docs])
    build(docs)
    assert yaml.safe_dump_all([d.body for d in docs]) == before
