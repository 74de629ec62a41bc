"""A workload's template may say hostNetwork: false (issue 14): whether a node has a pod network is the node's to say;
every other template keeps its normal form and so its revision hash."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, validate_pod_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.templates import parse_pod_template

MAIN = {"name": "web", "command": ["/bin/sleep", "inf"], "ports": [{"containerPort": 80}]}


def tmpl(**spec):
    return {"metadata": {"labels": {"app": "web"}}, "spec": dict({"containers": [MAIN]}, **spec)}


def test_host_network_false_is_taken_and_kept():
    info = parse_pod_template(tmpl(hostNetwork=False))
    assert info.normal["spec"]["hostNetwork"] is False
    assert info.hash != parse_pod_template(tmpl()).hash
    # The node without a pod network still refuses it, naming the field.
    with pytest.raises(SpecError) as error:
        validate_pod_spec(tmpl(hostNetwork=False)["spec"])
    assert error.value.path == "spec.hostNetwork"


@given(st.sampled_from([None, True]), st.booleans(), st.integers(1, 65535))
def test_other_templates_keep_their_normal_form_and_hash(host_network, host_port, port):
    container = dict(MAIN, ports=[dict({"containerPort": port}, **({"hostPort": port} if host_port else {}))])
    spec = {"containers": [container]}
    if host_network is not None:
        spec["hostNetwork"] = host_network
    assert parse_pod_template({"metadata": {"labels": {"app": "web"}}, "spec": spec}).normal["spec"] == validate_pod_spec(spec, "spec.template.spec")
