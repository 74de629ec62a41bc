"""Golden pod-template hashes: the revision of a template is a contract across releases.

The pod-template hash (``revisions.template_hash`` of the template's normal form) names every
revision: it is in every pod's name and ``pod-template-hash`` label and in every controller
record. A controller that computes a different hash for an unchanged template sees a new
revision and rolls it out: after an upgrade of the collection, EVERY workload on every host
would restart at once. So a new field that the normal form fills in with a default must never
change these hashes (``podspec.validate_pod_spec`` adds ``runtimeClassName`` only for podman pods
for that reason). If one of these tests fails, do not update the literal: keep the normal form
of existing templates as it was (omit the new field while it has its default value).

The literals were computed by the code of issue 13's start (commit d43ea1b) and must never change.
"""

from __future__ import annotations

import copy

import pytest

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.cronjob.spec import parse_cronjob_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.spec import parse_daemonset_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.spec import parse_deployment_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.job.spec import parse_job_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.replicaset import parse_replicaset_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.spec import parse_statefulset_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.templates import parse_pod_template

# The annotation a revision is pinned with to the image IDs its imagePullPolicy=Always containers
# pulled (workload_action.IMAGE_IDS_ANNOTATION): written literally, its name is part of the hash too.
IMAGE_IDS_ANNOTATION = "hostfleet.io/image-ids"
LABELS = {"app": "web"}
SELECTOR = {"matchLabels": LABELS}


def minimal_template(restart_policy=None):
    spec = {"containers": [{"name": "main", "command": ["/bin/sleep", "infinity"]}]}
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    return {"metadata": {"labels": dict(LABELS)}, "spec": spec}


def full_template(restart_policy=None):
    """Probes, resources, volumes, env, affinity, tolerations, lifecycle, security: most of the PodSpec."""
    spec = {
        "containers": [
            {
                "name": "web",
                "command": ["/usr/bin/python3", "-m", "http.server"],
                "args": ["8080", "--bind", "127.0.0.1"],
                "workingDir": "/srv/www",
                "env": [
                    {"name": "MODE", "value": "production"},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "web-secret", "key": "token"}}},
                    {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "web-config", "key": "level", "optional": True}}},
                ],
                "envFrom": [{"configMapRef": {"name": "web-config"}, "prefix": "CFG_"}],
                "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
                "ports": [{"name": "http", "containerPort": 8080}],
                "securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
                "startupProbe": {"tcpSocket": {"port": "http"}, "failureThreshold": 30, "periodSeconds": 2},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "initialDelaySeconds": 5},
                "readinessProbe": {"exec": {"command": ["/usr/bin/test", "-f", "/srv/www/index.html"]}, "successThreshold": 2},
                "lifecycle": {"preStop": {"sleep": {"seconds": 5}}, "postStart": {"exec": {"command": ["/bin/true"]}}},
                "volumeMounts": [
                    {"name": "data", "mountPath": "/srv/www/data"},
                    {"name": "config", "mountPath": "/etc/web", "readOnly": True},
                    {"name": "scratch", "mountPath": "/tmp/scratch"},
                ],
            },
            {"name": "sidecar", "command": ["/bin/sh", "-c", "while true; do sleep 60; done"], "resources": {"limits": {"memory": "16Mi"}}},
        ],
        "volumes": [
            {"name": "data", "hostPath": {"path": "/var/lib/web", "type": "DirectoryOrCreate"}},
            {"name": "config", "configMap": {"name": "web-config", "defaultMode": 0o444}},
            {"name": "scratch", "emptyDir": {}},
        ],
        "terminationGracePeriodSeconds": 45,
        "nodeSelector": {"disktype": "ssd"},
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]
                }
            },
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 50, "podAffinityTerm": {"labelSelector": {"matchLabels": dict(LABELS)}, "topologyKey": "kubernetes.io/hostname"}}
                ]
            },
        },
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}],
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": dict(LABELS)}}
        ],
    }
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    return {"metadata": {"labels": dict(LABELS), "annotations": {"team": "storefront"}}, "spec": spec}


def pinned_template(restart_policy=None):
    """An image pod whose imagePullPolicy=Always container is pinned to the image ID it pulled."""
    spec = {
        "containers": [
            {"name": "web", "image": "registry.example/web:latest", "ports": [{"containerPort": 8080}]},
            {"name": "side", "image": "registry.example/side:1.2", "imagePullPolicy": "Always"},
        ]
    }
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    pins = "side=" + "b" * 64 + ",web=" + "a" * 64
    return {"metadata": {"labels": dict(LABELS), "annotations": {IMAGE_IDS_ANNOTATION: pins}}, "spec": spec}


TEMPLATES = {"minimal": minimal_template, "full": full_template, "pinned": pinned_template}


def deployment(template):
    return parse_deployment_spec("web", {"replicas": 3, "selector": SELECTOR, "template": template}).template_hash


def replicaset(template):
    return parse_replicaset_spec("web", {"replicas": 3, "selector": SELECTOR, "template": template}).template_hash


def daemonset(template):
    return parse_daemonset_spec("web", {"selector": SELECTOR, "template": template}).template_hash


def statefulset(template):
    return parse_statefulset_spec("web", {"replicas": 3, "selector": SELECTOR, "serviceName": "web", "template": template}).template_hash


def statefulset_with_claims(template):
    """The claim templates add one persistentVolumeClaim volume each to the template that is hashed."""
    claims = [{"metadata": {"name": "state"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
    return parse_statefulset_spec("web", {"replicas": 3, "selector": SELECTOR, "template": template, "volumeClaimTemplates": claims}).template_hash


def job(template):
    return parse_job_spec("web", {"completions": 2, "template": template}).template_hash


def cronjob(template):
    spec = {"schedule": "*/5 * * * *", "jobTemplate": {"metadata": {"labels": {"team": "a"}}, "spec": {"template": template}}}
    return parse_cronjob_spec("web", spec).job.template_hash


# (kind, restartPolicy the kind needs or None for the default Always, hash function)
KINDS = {
    "Deployment": (None, deployment),
    "ReplicaSet": (None, replicaset),
    "DaemonSet": (None, daemonset),
    "StatefulSet": (None, statefulset),
    "StatefulSet+claims": (None, statefulset_with_claims),
    "Job": ("Never", job),
    "CronJob": ("OnFailure", cronjob),
}

GOLDEN = {
    ("CronJob", "full"): "ee1badb0fc",
    ("CronJob", "minimal"): "bd25479567",
    ("CronJob", "pinned"): "2375b4ce62",
    ("DaemonSet", "full"): "be516fa7be",
    ("DaemonSet", "minimal"): "39dd8819f1",
    ("DaemonSet", "pinned"): "62adbb00ad",
    ("Deployment", "full"): "be516fa7be",
    ("Deployment", "minimal"): "39dd8819f1",
    ("Deployment", "pinned"): "62adbb00ad",
    ("Job", "full"): "78c4fd8e1e",
    ("Job", "minimal"): "104c2c7e92",
    ("Job", "pinned"): "676d14199b",
    ("ReplicaSet", "full"): "be516fa7be",
    ("ReplicaSet", "minimal"): "39dd8819f1",
    ("ReplicaSet", "pinned"): "62adbb00ad",
    ("StatefulSet", "full"): "be516fa7be",
    ("StatefulSet", "minimal"): "39dd8819f1",
    ("StatefulSet", "pinned"): "62adbb00ad",
    ("StatefulSet+claims", "full"): "4634f39b56",
    ("StatefulSet+claims", "minimal"): "095aa20817",
    ("StatefulSet+claims", "pinned"): "7d4f4c9c1b",
}


@pytest.mark.parametrize("kind,shape", sorted(GOLDEN))
def test_template_hash_is_pinned(kind, shape):
    policy, hash_of = KINDS[kind]
    assert hash_of(TEMPLATES[shape](policy)) == GOLDEN[kind, shape]


def test_every_kind_and_shape_is_pinned():
    assert set(GOLDEN) == {(k, s) for k in KINDS for s in TEMPLATES}


def test_the_pin_the_action_writes_is_the_pinned_template():
    """workload_action.pin_images writes the annotation hashed above: its name and value format are in the contract too."""
    from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_action import pin_images

    unpinned = pinned_template()
    del unpinned["metadata"]["annotations"]
    ids = {"registry.example/web:latest": "a" * 64, "registry.example/side:1.2": "b" * 64}
    assert pin_images(unpinned, ids) == pinned_template()
    assert deployment(pin_images(unpinned, ids)) == GOLDEN["Deployment", "pinned"]


# --- defaults: the normal form fills them in before hashing, so spelling them out is no change -------------------
# Only the fields podspec.validate_pod_spec defaults are equal when spelled out. The scheduling fields
# (nodeSelector, affinity, tolerations, topologySpreadConstraints, priorityClassName) are hashed as written:
# a toleration's omitted operator and an explicit "Equal" are two revisions (kept so: changing it would change
# the hash of every template that has one).


def with_defaults(template, restart_policy="Always"):
    """``template`` with every default the normal form fills in written out."""
    result = copy.deepcopy(template)
    spec = result["spec"]
    spec.setdefault("restartPolicy", restart_policy)
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("hostNetwork", True)
    spec.setdefault("volumes", [])
    spec.setdefault("securityContext", {})
    images = any("image" in c for c in spec["containers"])
    spec.setdefault("runtimeClassName", "podman" if images else "process")
    for container in spec["containers"]:
        for key, empty in (("args", []), ("env", []), ("envFrom", []), ("ports", []), ("volumeMounts", []), ("securityContext", {}), ("lifecycle", {})):
            container.setdefault(key, empty)
        container.setdefault("resources", {"requests": {}, "limits": {}})
        image = container.get("image")
        if image is not None:
            container.setdefault("imagePullPolicy", "Always" if image.endswith(":latest") else "IfNotPresent")
        for port in container["ports"]:
            port.setdefault("protocol", "TCP")
        for mount in container["volumeMounts"]:
            mount.setdefault("readOnly", False)
            mount.setdefault("subPath", "")
        for item in container["envFrom"]:
            item.setdefault("prefix", "")
            for ref in ("configMapRef", "secretRef"):
                if ref in item:
                    item[ref].setdefault("optional", False)
        for item in container["env"]:
            ref = item.get("valueFrom") or {}
            for source in ref.values():
                source.setdefault("optional", False)
        for probe_kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = container.get(probe_kind)
            if probe is None:
                continue
            for key, value in (("initialDelaySeconds", 0), ("periodSeconds", 10), ("timeoutSeconds", 1), ("successThreshold", 1), ("failureThreshold", 3)):
                probe.setdefault(key, value)
            if "httpGet" in probe:
                probe["httpGet"].setdefault("scheme", "HTTP")
                probe["httpGet"].setdefault("httpHeaders", [])
    for volume in spec["volumes"]:
        if "configMap" in volume:
            volume["configMap"].setdefault("optional", False)
    return result


@pytest.mark.parametrize("kind,shape", sorted(GOLDEN))
def test_defaults_spelled_out_are_the_same_revision(kind, shape):
    policy, hash_of = KINDS[kind]
    template = TEMPLATES[shape](policy)
    explicit = with_defaults(template, policy or "Always")
    assert explicit != template
    assert hash_of(explicit) == GOLDEN[kind, shape]


def test_defaults_are_filled_in_before_hashing():
    """The defaults are in the normal form that is hashed (not merely ignored): a non-default value is another revision."""
    normal = parse_pod_template(minimal_template()).normal["spec"]
    assert (normal["restartPolicy"], normal["terminationGracePeriodSeconds"]) == ("Always", 30)
    for key, value in (("terminationGracePeriodSeconds", 31), ("runtimeClassName", "podman")):
        template = minimal_template()
        template["spec"][key] = value
        if key == "runtimeClassName":
            template["spec"]["containers"][0]["image"] = "registry.example/web:1"
        assert deployment(template) != GOLDEN["Deployment", "minimal"]
