"""Hostile YAML in manifests (issue 11, items 8-10): alias bombs and wrong types in fields kept verbatim, nesting
deeper than Python's recursion, parser messages that would echo a Secret's line.

Every load error is a LoadError naming the document (``source#index``) and the line and column; what is kept
verbatim on its way to the hosts has Kubernetes' types.
"""

from __future__ import annotations

import base64
import re

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, validate_pod_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.templates import parse_pod_template
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.manifests import load
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.manifests.objects import ManifestErrors, build

DEPLOYMENT_HEAD = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: main, command: [/bin/sleep, infinity]}]
"""


def alias_bomb(levels, width=9, field="tolerations"):
    """The billion laughs in a pod spec field: ``width ** levels`` strings from a few hundred bytes."""
    lines = [f"      {field}:", f"        - &a0 [{','.join(['lol'] * width)}]"]
    lines += [f"        - &a{i} [{','.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return DEPLOYMENT_HEAD + "\n".join(lines) + "\n"


def load_error(text, source="m.yaml"):
    with pytest.raises(load.LoadError) as info:
        load.from_text(text, source)
    return str(info.value)


class Counting:
    """How much work the loader did: nodes composed and objects constructed."""

    def __init__(self, monkeypatch):
        self.composed = self.constructed = 0
        compose, construct = load._BoundedComposer.compose_node, load._BoundedComposer.construct_object

        def counted_compose(loader, parent, index):
            self.composed += 1
            return compose(loader, parent, index)

        def counted_construct(loader, node, deep=False):
            self.constructed += 1
            return construct(loader, node, deep)

        monkeypatch.setattr(load._BoundedComposer, "compose_node", counted_compose)
        monkeypatch.setattr(load._BoundedComposer, "construct_object", counted_construct)


# -- 8. alias bombs: bounded, before anything is built -------------------------------------------


def test_the_alias_bomb_of_the_issue_is_refused_naming_the_document_and_nothing_is_built(monkeypatch):
    text = alias_bomb(9)  # 9 ** 9 = 387 million strings once expanded (MemoryError before the fix)
    assert len(text) < 800
    work = Counting(monkeypatch)
    message = load_error(text, "bomb.yaml")
    assert re.fullmatch(r"bomb\.yaml#0: line \d+, column \d+: the document expands to more than 200000 values .*", message), message
    # The work is that of reading the text: every node once, nothing constructed, nothing expanded.
    assert work.composed < 150
    assert work.constructed == 0


@settings(max_examples=40, deadline=None)
@given(levels=st.integers(1, 8), width=st.integers(1, 12))
def test_property_a_document_is_refused_exactly_when_its_expansion_is_over_the_bound(levels, width):
    text = alias_bomb(levels, width)
    # The values of the expanded tolerations list; the rest of the document is a few dozen values.
    expanded = 1 + sum(sum(width**k for k in range(level + 1)) for level in range(1, levels + 1))
    if expanded > load.MAX_NODES:
        assert "the document expands to more than 200000 values" in load_error(text)
    elif expanded < load.MAX_NODES - 100:
        # Below the bound, the bounded loader reads exactly what PyYAML's safe loader reads.
        (document,) = load.from_text(text, "m.yaml")
        assert document.body == yaml.safe_load(text)


def test_aliases_text_size_and_recursion_are_bounded_too():
    many_aliases = "a: &a x\nb: [" + ", ".join(["*a"] * (load.MAX_ALIASES + 1)) + "]\n"
    assert "more than 1000 aliases in one document" in load_error(many_aliases)
    big = "a: &a " + "x" * (1024 * 1024) + "\nb: [*a, *a, *a, *a]\n"
    # The first text (1 MiB), then the aliases: the third one crosses 4 MiB.
    assert re.match(r"m\.yaml#0: line 2, column 13: the document expands to more than 4 MiB of text", load_error(big))
    assert "a recursive structure cannot be a manifest" in load_error("a: &a [1, *a]\n")
    # Aliases cannot stack nesting beyond the bound either (each anchor 60 levels, the alias inside another 60).
    nested = "a: &a " + "[" * 60 + "x" + "]" * 60 + "\nb: " + "[" * 60 + "*a" + "]" * 60 + "\n"
    assert "nests more than 100 levels deep, aliases expanded" in load_error(nested)
    # Used within the bounds, anchors, aliases and merge keys read as before.
    text = "a: &a {x: 1}\nb: {<<: *a, y: 2}\nc: [*a, *a]\n"
    assert load.from_text(text, "m.yaml")[0].body == yaml.safe_load(text)


def test_documents_given_as_data_are_bounded_without_recursion():
    deep = leaf = {}
    for _attempt in range(load.MAX_DEPTH + 50):
        leaf["a"] = {}
        leaf = leaf["a"]
    with pytest.raises(load.LoadError, match=r"^definition: the document nests more than 100 levels deep"):
        load.from_definition(deep)
    shared = ["x" * 10] * 1000
    wide = {"a": [shared] * 1000}  # a million values through shared references
    with pytest.raises(load.LoadError, match=r"^definition\[1\]: the document is more than 200000 values"):
        load.from_definition([{"kind": "ConfigMap"}, wide])
    cyclic = {"a": []}
    cyclic["a"].append(cyclic)
    with pytest.raises(load.LoadError, match=r"^definition: the document nests more than 100 levels deep"):
        load.from_definition(cyclic)


# -- 8. fields kept verbatim have Kubernetes' types ------------------------------------------------


def template_with(**spec):
    return {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "main", "command": ["/bin/sleep", "infinity"]}], **spec}}


VALID_TOLERATIONS = [
    [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
    [{"operator": "Exists"}],
    [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
    [{"key": "example.com/k", "value": "", "effect": "PreferNoSchedule"}, {"key": "k", "operator": "Exists", "effect": ""}],
]


@pytest.mark.parametrize("tolerations", VALID_TOLERATIONS)
def test_valid_tolerations_and_priority_class_are_kept_verbatim(tolerations):
    info = parse_pod_template(template_with(tolerations=tolerations, priorityClassName="high-priority.example.com"))
    assert info.normal["spec"]["tolerations"] == tolerations
    assert info.normal["spec"]["priorityClassName"] == "high-priority.example.com"


@pytest.mark.parametrize(
    "field,value,path,message",
    [
        ("tolerations", 5, "tolerations", "must be a list, got an integer"),
        ("tolerations", [5], "tolerations[0]", "must be a mapping, got an integer"),
        ("tolerations", [["lol"]], "tolerations[0]", "must be a mapping, got a list"),
        ("tolerations", [{"key": ["k"]}], "tolerations[0].key", "must be a string, got a list"),
        ("tolerations", [{"key": "k", "value": 1}], "tolerations[0].value", "must be a string, got an integer"),
        ("tolerations", [{"key": "k", "operator": "In"}], "tolerations[0].operator", "Unsupported value: 'In'"),
        ("tolerations", [{"key": "k", "effect": "NoRun"}], "tolerations[0].effect", "Unsupported value: 'NoRun'"),
        ("tolerations", [{"key": "k", "tolerationSeconds": "60", "effect": "NoExecute"}], "tolerations[0].tolerationSeconds", "must be an integer"),
        ("tolerations", [{"key": "k", "tolerationSeconds": 60}], "tolerations[0].tolerationSeconds", "is only for effect NoExecute"),
        ("tolerations", [{"value": "v"}], "tolerations[0].operator", "must be Exists when key is empty"),
        ("tolerations", [{"key": "k", "operator": "Exists", "value": "v"}], "tolerations[0].value", "must be empty when operator is Exists"),
        ("tolerations", [{"key": "bad key"}], "tolerations[0].key", "key name must be"),
        ("tolerations", [{"key": "k", "value": "not a label value"}], "tolerations[0].value", "is not a valid label value"),
        ("tolerations", [{"key": "k", "seconds": 1}], "tolerations[0].seconds", "unknown field"),
        ("priorityClassName", 5, "priorityClassName", "must be a string, got an integer"),
        ("priorityClassName", ["high"], "priorityClassName", "must be a string, got a list"),
        ("priorityClassName", "High_Priority", "priorityClassName", "is not a DNS-1123 subdomain"),
        ("nodeSelector", ["gpu"], "nodeSelector", "must be a mapping, got a list"),
        ("nodeSelector", {"gpu": ["true"]}, "nodeSelector['gpu']", "label values must be strings"),
        ("affinity", 5, "affinity", "must be a mapping, got an integer"),
        ("topologySpreadConstraints", 5, "topologySpreadConstraints", "must be a list, got an integer"),
        ("topologySpreadConstraints", ["zone"], "topologySpreadConstraints[0]", "must be a mapping, got a string"),
    ],
)
def test_scheduling_fields_of_the_wrong_type_are_refused_naming_the_field(field, value, path, message):
    # The node layer (what the pod module and every controller validate with) refuses them ...
    with pytest.raises(SpecError) as info:
        validate_pod_spec(template_with(**{field: value})["spec"], "spec")
    assert info.value.path == f"spec.{path}" and message in info.value.message
    # ... and so does a workload's template, as apply checks it before any host is touched.
    with pytest.raises(SpecError) as info:
        parse_pod_template(template_with(**{field: value}))
    assert info.value.path == f"spec.template.spec.{path}"


@pytest.mark.parametrize(
    "constraint,path",
    [
        ({"nodeAffinityPolicy": ""}, "topologySpreadConstraints[0].nodeAffinityPolicy"),
        ({"nodeTaintsPolicy": False}, "topologySpreadConstraints[0].nodeTaintsPolicy"),
        ({"labelSelector": {"matchExpressions": ""}}, "topologySpreadConstraints[0].labelSelector.matchExpressions"),
    ],
)
def test_falsy_values_of_the_wrong_type_are_not_taken_for_defaults(constraint, path):
    spread = {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}, **constraint}
    with pytest.raises(SpecError) as info:
        parse_pod_template(template_with(topologySpreadConstraints=[spread]))
    assert info.value.path == f"spec.template.spec.{path}"


def test_node_affinity_terms_of_the_wrong_type_are_refused():
    term = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}], "matchFields": 0}
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
    with pytest.raises(SpecError) as info:
        parse_pod_template(template_with(affinity=affinity))
    assert info.value.path.endswith("nodeSelectorTerms[0].matchFields")


def statefulset(claim_spec):
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "selector": {"matchLabels": {"app": "db"}},
            "template": template_with(),
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": claim_spec}],
        },
    }


def test_claim_template_specs_kept_with_the_statefulset_have_kubernetes_types():
    good = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": "fast", "volumeMode": "Filesystem"}
    (obj,) = build([load.Document("db.yaml#0", statefulset(good))])
    assert obj.args["volumeClaimTemplates"][0]["spec"] == good
    bad = {
        "accessModes": "ReadWriteOnce",
        "resources": {"requests": {"storage": ["1Gi"]}},
        "storageClassName": 5,
        "volumeMode": "Raw",
        "selector": {"matchLabels": {"a": ["b"]}},
        "dataSource": {"name": 5},
        "bomb": [[["lol"]]],
    }
    with pytest.raises(ManifestErrors) as info:
        build([load.Document("db.yaml#0", statefulset(bad))])
    where = "db.yaml#0 (StatefulSet db): spec.volumeClaimTemplates[0].spec"
    assert info.value.errors == [
        f"{where}.accessModes: must be a list, got a string",
        f"{where}.resources.requests['storage']: must be a resource name and a quantity (e.g. storage: 1Gi)",
        f"{where}.storageClassName: must be a string, got an integer",
        f"{where}.volumeMode: Unsupported value: 'Raw': supported values: Filesystem, Block",
        f"{where}.selector.matchLabels['a']: label values must be strings, got a list",
        f"{where}.dataSource.name: must be a string, got an integer",
        f"{where}.bomb: unknown field (allowed here: accessModes, dataSource, dataSourceRef, resources, selector, storageClassName, volumeAttributesClassName, "
        "volumeMode, volumeName)",
    ]
    with pytest.raises(ManifestErrors, match=r"spec\.volumeClaimTemplates\[0\]\.spec: must be a mapping, got a list"):
        build([load.Document("db.yaml#0", statefulset([]))])


@pytest.mark.parametrize("env", [1.5, [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": [1]}}}]])
def test_wrong_types_reach_the_kinds_parsers_instead_of_crashing_the_manifest_layer(env):
    body = yaml.safe_load(DEPLOYMENT_HEAD)
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"A": "1"}}
    body["spec"]["template"]["spec"]["containers"][0]["env"] = env
    objects = build([load.Document("c.yaml#0", config), load.Document("web.yaml#0", body)])  # no TypeError
    with pytest.raises(SpecError, match="env"):
        parse_pod_template(objects[1].args["template"])


def test_cronjob_job_template_of_the_wrong_shape_does_not_crash_the_manifest_layer():
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"}, "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": [[1]]}}}
    (obj,) = build([load.Document("c.yaml#0", cron)])  # no AttributeError: the CronJob's parser names it
    assert obj.args["jobTemplate"] == {"spec": [[1]]}


# -- 9. nesting beyond Python's recursion: a LoadError naming the document ----------------------


@pytest.mark.parametrize(
    "text,position",
    [
        ("a: " + "[" * 1200 + "]" * 1200, "line 1, column 103"),
        ("a: " + "{a: " * 1200 + "}" * 1200, "line 1, column 397"),
        ("a:\n" + "".join(" " * i + "- \n" for i in range(1200)), "line 101, column 100"),
    ],
)
def test_deep_nesting_is_a_load_error_naming_the_document_and_position(text, position):
    message = load_error("kind: ConfigMap\n---\n" + text, "deep.yaml")
    line, column = (int(n) for n in re.findall(r"\d+", position))
    assert message == f"deep.yaml#1: line {line + 2}, column {column}: the document nests more than 100 levels deep (the limit per document)"


def test_scalars_their_type_cannot_hold_are_load_errors_naming_the_document():
    message = load_error("a: 1\n---\na: 2\n---\ndate: 2024-13-01\n")
    assert message == "m.yaml#2: not valid YAML: line 5, column 7: not a valid timestamp value (quote it to keep it as text)"
    assert load_error("n: " + "1" * 5000) == "m.yaml#0: not valid YAML: line 1, column 4: not a valid int value (quote it to keep it as text)"
    assert load_error("a: b\x00") == "m.yaml#0: not valid YAML: character 5: special characters are not allowed"


# -- 10. parser messages: line and column, never the text of the line ----------------------------


SECRET = """apiVersion: v1
kind: Secret
metadata: {name: db}
stringData: {password: s3cr3t: hunter2}
"""


def test_a_malformed_secret_line_is_not_echoed_by_the_parser_message():
    message = load_error(SECRET, "secret.yaml")
    assert message == "secret.yaml#0: not valid YAML: line 4, column 30: expected ',' or '}', but got ':' (while parsing a flow mapping, line 4, column 13)"
    for value in ("s3cr3t", "hunter2", "password", "stringData"):
        assert value not in message


@pytest.mark.parametrize(
    "line,expected",
    [
        ("stringData: {password: *hunter2}", "line 4, column 24: found undefined alias (value not shown)"),
        ("stringData: {password: !hunter2 x}", "line 4, column 24: could not determine a constructor for the tag (value not shown)"),
        ("stringData: {password: &hunter2 a, b: &hunter2 c}", "found duplicate anchor (value not shown); first occurrence"),
        ('stringData: {password: "hunter2\\q"}', "line 4, column 33: found unknown escape character 'q'"),
        ("stringData:\n  password: hunter2\n   other: x", "line 6, column 9: mapping values are not allowed here"),
    ],
)
def test_parts_of_the_input_that_parser_messages_quote_are_not_shown(line, expected):
    message = load_error(SECRET.replace("stringData: {password: s3cr3t: hunter2}", line))
    assert expected in message
    assert "hunter2" not in message


@settings(max_examples=80, deadline=None)
@given(
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=6, max_size=30),
    shape=st.sampled_from(
        ["{password: %s: x}", "{password: x: %s}", "{password: *%s}", "{password: !%s x}", "[%s: %s: x]", "{password: '%s}"]
        + ["{password: \"%s\\q\"}", "%s\n  - %s", "{password: &%s a, b: &%s c}"]
    ),
)
def test_property_no_part_of_a_malformed_value_is_in_the_message(secret, shape):
    assume(secret.lower() not in ("stringdata", "password") and not secret.startswith("-"))
    text = SECRET.replace("{password: s3cr3t: hunter2}", shape.replace("%s", secret))
    try:
        load.from_text(text, "secret.yaml")
    except load.LoadError as exc:
        assert secret not in str(exc)
        assert base64.b64encode(secret.encode()).decode() not in str(exc)
        assert re.match(r"secret\.yaml#0: not valid YAML: (line \d+, column \d+|character \d+): ", str(exc)), str(exc)
