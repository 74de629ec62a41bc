# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A StatefulSet's identities: ``<name>-<ordinal>``, its labels, its hostname and its claims.

Every pod of an identity is started from its OWN template (``pod_template``):
the revision's template plus

* labels ``statefulset.kubernetes.io/pod-name: <pod>``, ``apps.kubernetes.io/pod-index: "<ordinal>"``
  and ``controller-revision-hash: <name>-<hash>`` (``pod-template-hash`` is set too, as for every kind);
* ``spec.hostname: <pod>``;
* per claim template ``<t>``, the volume ``<t>`` becomes
  ``{persistentVolumeClaim: {claimName: <t>-<pod>}}`` (a directory on the host that holds it).
"""

from __future__ import annotations

import re

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.namespaces import kube_name
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.templates import TemplateInfo

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"


def pod_name(owner: str, ordinal: int) -> str:
    return f"{owner}-{ordinal}"


def ordinal_of(owner: str, name: str) -> int | None:
    """The ordinal of ``<owner>-<ordinal>``; None for any other name (not one of our identities)."""
    match = re.fullmatch(re.escape(owner) + r"-(0|[1-9][0-9]*)", name)
    return int(match.group(1)) if match else None


def claim_names(claim_templates: tuple[str, ...] | list[str], owner: str, ordinal: int) -> list[str]:
    """The claims of one identity: ``<template>-<owner>-<ordinal>``, named in the owner's namespace (the node puts
    them under ``<namespace>_<claim>`` outside default)."""
    return [f"{t}-{pod_name(kube_name(owner), ordinal)}" for t in claim_templates]


def revision_name(owner: str, revision: str) -> str:
    """Kubernetes' ControllerRevision name (``status.currentRevision`` / ``updateRevision``)."""
    return f"{kube_name(owner)}-{revision}"


def pod_template(info: TemplateInfo, revision: str, owner: str, ordinal: int, claim_templates: tuple[str, ...] | list[str], service_name: str = "") -> dict:
    """The template of ONE identity for the node layer (see the module docstring); with the StatefulSet's
    ``serviceName``, the pod's ``subdomain`` (as Kubernetes' controller sets it): the cluster DNS names it
    ``<pod>.<serviceName>``."""
    # The pod's Kubernetes name: the node layer's is <namespace>_<name> outside default (node/namespaces.py).
    name = kube_name(pod_name(owner, ordinal))
    template = info.pod_template(revision)
    labels = template["metadata"]["labels"]
    labels[POD_NAME_LABEL] = name
    labels[POD_INDEX_LABEL] = str(ordinal)
    labels[REVISION_LABEL] = revision_name(owner, revision)
    spec = template["spec"]
    spec["hostname"] = name
    if service_name and not spec.get("subdomain"):
        spec["subdomain"] = service_name
    claims = set(claim_templates)
    volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in claims]
    volumes += [{"name": t, "persistentVolumeClaim": {"claimName": f"{t}-{name}"}} for t in claim_templates]
    if volumes:
        spec["volumes"] = volumes
    return template
