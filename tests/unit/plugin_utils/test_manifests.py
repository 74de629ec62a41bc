"""The manifest layer: loading documents, kinds and apiVersions, ignored vs refused fields, ConfigMap/Secret data."""

from __future__ import annotations

import base64
import copy

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.manifests import load
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.manifests.objects import (
    CONTAINER_IGNORED,
    ORDER,
    POD_IGNORED,
    ManifestErrors,
    build,
    spec_keys,
)

CONTAINER = {"name": "main", "command": ["/bin/sleep", "infinity"]}


def deployment(name="web", **spec):
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [dict(CONTAINER)]}},
        },
    }
    body["spec"].update(spec)
    return body


def objects_of(*bodies):
    return build([load.Document(f"doc#{i}", b) for i, b in enumerate(bodies)])


def errors_of(*bodies):
    with pytest.raises(ManifestErrors) as info:
        objects_of(*bodies)
    return info.value.errors


# -- loading ------------------------------------------------------------------------------------


def test_multi_document_text_skips_empty_documents_and_names_each():
    text = yaml.safe_dump(deployment("a")) + "---\n---\n" + yaml.safe_dump(deployment("b"))
    docs = load.from_text(text, "m.yaml")
    assert [d.source for d in docs] == ["m.yaml#0", "m.yaml#2"]
    assert [d.body["metadata"]["name"] for d in docs] == ["a", "b"]


def test_list_kind_is_expanded():
    docs = load.from_definition({"apiVersion": "v1", "kind": "List", "items": [deployment("a"), deployment("b")]})
    assert [d.source for d in docs] == ["definition.items[0]", "definition.items[1]"]


def test_definition_list_of_mappings_and_texts():
    docs = load.from_definition([deployment("a"), yaml.safe_dump(deployment("b"))])
    assert [d.source for d in docs] == ["definition[0]", "definition[1]#0"]


def test_directory_reads_manifest_files_in_name_order(tmp_path):
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(deployment("b")))
    (tmp_path / "a.yml").write_text(yaml.safe_dump(deployment("a")))
    (tmp_path / "notes.txt").write_text("not a manifest")
    (tmp_path / ".hidden.yaml").write_text("{")
    docs = load.from_path(str(tmp_path))
    assert [d.body["metadata"]["name"] for d in docs] == ["a", "b"]


def test_bad_yaml_and_missing_paths_are_load_errors(tmp_path):
    with pytest.raises(load.LoadError, match="not valid YAML"):
        load.from_text("a: [", "x.yaml")
    with pytest.raises(load.LoadError, match="no such file"):
        load.from_path(str(tmp_path / "missing"))
    with pytest.raises(load.LoadError, match="no manifest files"):
        load.from_path(str(tmp_path))
    with pytest.raises(load.LoadError, match="must be a YAML text"):
        load.from_definition(42)


# -- kinds, names, order ------------------------------------------------------------------------


def test_workload_spec_becomes_the_kind_module_arguments():
    (obj,) = objects_of(deployment(strategy={"type": "Recreate"}))
    assert obj.kind == "Deployment" and obj.name == "web"
    assert obj.args["replicas"] == 2 and obj.args["strategy"] == {"type": "Recreate"}
    assert obj.ignored == []


def test_apply_order_puts_config_first_and_keeps_document_order_within_a_kind():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"A": "1"}}
    objs = objects_of(deployment("z"), cm, deployment("a"))
    assert [(o.kind, o.name) for o in objs] == [("ConfigMap", "c"), ("Deployment", "z"), ("Deployment", "a")]
    assert ORDER[0] == "ConfigMap" and ORDER[1] == "Secret"


@pytest.mark.parametrize(
    "body,expected",
    [
        ({**deployment(), "apiVersion": "extensions/v1beta1"}, "apiVersion: must be 'apps/v1'"),
        ({**deployment(), "kind": "Certificate"}, "kind: 'Certificate' is not supported"),
        ({**deployment(), "metadata": {"name": "Web_1"}}, "metadata.name: 'Web_1' is not a DNS-1123 label"),
        ({**deployment(), "metadata": {}}, "metadata.name"),
        ("just text", "a manifest must be a mapping"),
        ({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}}, "spec: is required"),
    ],
)
def test_kind_version_and_name_are_checked(body, expected):
    (error,) = errors_of(body)
    assert error.startswith("doc#0")
    assert expected in error


def test_duplicate_objects_are_refused_naming_both_documents():
    errors = errors_of(deployment("a"), deployment("a"))
    assert errors == ["doc#1 (Deployment a): metadata.name: Deployment a is also defined in doc#0"]


def test_every_problem_of_every_document_is_reported_at_once():
    bad_spec = deployment("a", hostUsers=False)
    bad_meta = deployment("b")
    bad_meta["metadata"]["ownerReferences"] = [{"name": "x"}]
    bad_kind = {**deployment("c"), "apiVersion": "apps/v1beta2"}
    errors = errors_of(bad_spec, bad_meta, bad_kind)
    assert len(errors) == 3
    assert errors[0].startswith("doc#0 (Deployment a): spec.hostUsers: unknown field")
    assert errors[1].startswith("doc#1 (Deployment b): metadata.ownerReferences: unknown field")
    assert errors[2].startswith("doc#2 (Deployment): apiVersion")


def test_extension_options_are_not_manifest_fields():
    assert "auto_rollback" not in spec_keys("Deployment")
    assert "unsafeMoveOnNodeLoss" not in spec_keys("StatefulSet")
    (error,) = errors_of(deployment(auto_rollback=True))
    assert "spec.auto_rollback: unknown field" in error


# -- ignored fields -----------------------------------------------------------------------------


def test_fields_without_meaning_on_hosts_are_taken_out_and_reported():
    body = deployment()
    body["metadata"].update(namespace="shop", uid="1234", labels={"x": "y"})
    body["status"] = {"replicas": 2}
    pod = body["spec"]["template"]["spec"]
    pod.update(serviceAccountName="web", imagePullSecrets=[{"name": "r"}], dnsPolicy="ClusterFirst")
    pod["containers"][0]["terminationMessagePolicy"] = "File"
    body["spec"]["template"]["metadata"]["creationTimestamp"] = None
    (obj,) = objects_of(body)
    assert obj.namespace == "shop"  # part of the object's identity since issue 14, no longer ignored
    assert set(obj.ignored) == {
        "metadata.uid",
        "metadata.labels",
        "status",
        "spec.template.metadata.creationTimestamp",
        "spec.template.spec.serviceAccountName",
        "spec.template.spec.imagePullSecrets",
        "spec.template.spec.containers[0].terminationMessagePolicy",
    }
    template = obj.args["template"]
    # dnsPolicy is honoured since the cluster DNS (issue 14): kept for the pods.
    assert set(template["spec"]) == {"containers", "dnsPolicy"}
    assert template["metadata"] == {"labels": {"app": "web"}}
    assert set(template["spec"]["containers"][0]) == {"name", "command"}


def test_ignoring_does_not_change_the_input_documents():
    body = deployment()
    body["spec"]["template"]["spec"]["serviceAccountName"] = "web"
    before = copy.deepcopy(body)
    objects_of(body)
    assert body == before


def test_cronjob_pod_template_and_claim_templates_are_cleaned_too():
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "c"},
        "spec": {
            "schedule": "* * * * *",
            "jobTemplate": {
                "metadata": {"creationTimestamp": None},
                "spec": {"template": {"spec": {"restartPolicy": "Never", "serviceAccountName": "s", "containers": [dict(CONTAINER)]}}},
            },
        },
    }
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "s"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [dict(CONTAINER)]}},
            "volumeClaimTemplates": [{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "d", "creationTimestamp": None},
                                      "spec": {}, "status": {"phase": "Pending"}}],
        },
    }
    by_kind = {o.kind: o for o in objects_of(cron, sts)}
    assert by_kind["CronJob"].ignored == ["spec.jobTemplate.metadata.creationTimestamp", "spec.jobTemplate.spec.template.spec.serviceAccountName"]
    assert set(by_kind["StatefulSet"].ignored) == {
        "spec.volumeClaimTemplates[0].apiVersion",
        "spec.volumeClaimTemplates[0].kind",
        "spec.volumeClaimTemplates[0].status",
        "spec.volumeClaimTemplates[0].metadata.creationTimestamp",
    }
    assert by_kind["StatefulSet"].args["volumeClaimTemplates"] == [{"metadata": {"name": "d"}, "spec": {}}]


@settings(max_examples=60, deadline=None)
@given(
    pod_fields=st.lists(st.sampled_from(POD_IGNORED), unique=True),
    container_fields=st.lists(st.sampled_from(CONTAINER_IGNORED), unique=True),
)
def test_property_ignored_fields_are_exactly_those_present(pod_fields, container_fields):
    body = deployment()
    pod = body["spec"]["template"]["spec"]
    for key in pod_fields:
        pod[key] = "x"
    for key in container_fields:
        pod["containers"][0][key] = "x"
    (obj,) = objects_of(body)
    expected = {f"spec.template.spec.{k}" for k in pod_fields} | {f"spec.template.spec.containers[0].{k}" for k in container_fields}
    assert set(obj.ignored) == expected
    assert obj.args["template"]["spec"] == {"containers": [dict(CONTAINER)]}


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=20))
def test_property_unknown_spec_fields_are_refused_by_name(field):
    if field in spec_keys("Deployment"):
        return
    (error,) = errors_of(deployment(**{field: 1}))
    assert f"spec.{field}: unknown field" in error


# -- Pods -----------------------------------------------------------------------------------------


def test_pod_keeps_its_labels_and_node_name():
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": "b"}, "annotations": {"n": "v"}},
        "spec": {"nodeName": "node2", "serviceAccountName": "x", "containers": [dict(CONTAINER)]},
    }
    (obj,) = objects_of(pod)
    assert obj.args == {"labels": {"a": "b"}, "annotations": {"n": "v"}, "spec": {"containers": [dict(CONTAINER)]}, "nodeName": "node2"}
    assert obj.ignored == ["spec.serviceAccountName"]


# -- ConfigMaps and Secrets -----------------------------------------------------------------------


def b64(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def test_configmap_data_and_binary_data_become_files():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"A": "1", "x.conf": "a\nb\n"}, "binaryData": {"bin": b64(b"\x00\xff")}}
    (obj,) = objects_of(cm)
    assert obj.args == {"files": {"A": b64("1"), "x.conf": b64("a\nb\n"), "bin": b64(b"\x00\xff")}, "immutable": False}
    assert obj.secret_values == []


def test_secret_string_data_wins_over_data_and_values_are_collected_to_scrub():
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "type": "Opaque",
        "data": {"P": b64("old-value"), "T": b64("token-value")},
        "stringData": {"P": "new-value"},
        "immutable": True,
    }
    (obj,) = objects_of(secret)
    assert obj.args == {"files": {"P": b64("new-value"), "T": b64("token-value")}, "immutable": True}
    for value in ("new-value", "token-value", b64("token-value"), b64("new-value")):
        assert value in obj.secret_values


@pytest.mark.parametrize(
    "body,expected",
    [
        ({"kind": "ConfigMap", "data": {"A": 8080}}, "data['A']: must be a string, got an integer"),
        ({"kind": "ConfigMap", "data": {"a/b": "x"}}, "is not a valid ConfigMap/Secret key"),
        ({"kind": "ConfigMap", "data": {"..a": "x"}}, "is not a valid ConfigMap/Secret key"),
        ({"kind": "ConfigMap", "data": {"A": "x"}, "binaryData": {"A": b64("y")}}, "duplicate key"),
        ({"kind": "Secret", "data": {"A": "not base64!"}}, "data['A']: is not valid base64"),
        ({"kind": "Secret", "type": "kubernetes.io/service-account-token"}, "type: kubernetes.io/service-account-token"),
        ({"kind": "ConfigMap", "spec": {}}, "spec: unknown field"),
        ({"kind": "ConfigMap", "immutable": "yes"}, "immutable: must be a boolean"),
    ],
)
def test_config_problems_are_named(body, expected):
    body = {"apiVersion": "v1", "metadata": {"name": "c"}, **body}
    (error,) = errors_of(body)
    assert expected in error


def test_value_from_a_key_of_the_same_apply_must_exist_and_fit_an_environment_file():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"A": "1", "multi": "a\nb"}}
    body = deployment()
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "missing"}}},
        {"name": "Y", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "multi"}}},
        {"name": "Z", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "gone", "optional": True}}},
        {"name": "W", "valueFrom": {"configMapKeyRef": {"name": "elsewhere", "key": "k"}}},
    ]
    errors = errors_of(cm, body)
    assert len(errors) == 2
    assert "env[0].valueFrom.configMapKeyRef.key: ConfigMap c has no key 'missing'" in errors[0]
    assert "env[1].valueFrom.configMapKeyRef.key: the value of 'multi' is not one line" in errors[1]


def test_objects_with_problems_are_still_handed_over_for_the_kinds_own_checks():
    """So that one run names the manifest-level problems AND what the kind's parser finds in the rest."""
    body = deployment("a", hostUsers=False)
    with pytest.raises(ManifestErrors) as info:
        objects_of(body, {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "s"}})
    assert len(info.value.errors) == 2
    assert [(o.kind, o.name) for o in info.value.objects] == [("Deployment", "a")]
    assert "hostUsers" not in info.value.objects[0].args
