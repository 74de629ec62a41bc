# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kinds that real manifests carry but that mean nothing on plain hosts: ``apply`` reports them and skips them.

Real multi-document manifests mix workloads with objects for the cluster around them (RBAC, namespaces, autoscalers,
disruption budgets, storage classes). Refusing the whole file for those would make ``apply`` unusable on real
manifests, applying them silently would hide that they do nothing: so each one is listed (kind, name, reason) as
not applied, and the ``unsupported_kinds: error`` option turns them into errors. Their basics are still checked
(apiVersion, ``metadata.name``), so a typo is not reported as a skip. Pure: no I/O.

This list is its own: the workload kinds come from the registry (``module_utils/kinds.py``); the kinds ``apply``
acts on besides those are ``manifests/objects.py``'s ``API_VERSIONS``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

RBAC = "rbac.authorization.k8s.io/v1"

# What Kubernetes checks a name against, per kind (apimachinery's validation): a label, a DNS-1035 label (Service),
# a subdomain, or a path segment (RBAC objects, whose names may hold ':' as in "system:controller").
NAME_RULES = {
    "label": (
        re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"),
        63,
        "a DNS-1123 label (lowercase letters, digits and '-', starting and ending alphanumeric, at most 63 characters)",
    ),
    "dns1035": (
        re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?"),
        63,
        "a DNS-1035 label (lowercase letters, digits and '-', starting with a letter, ending alphanumeric, at most 63 characters)",
    ),
    "subdomain": (
        re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"),
        253,
        "a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', at most 253 characters)",
    ),
    "path": (re.compile(r"(?!\.\.?$)[^/%]+"), 253, "a path segment name (not '.' or '..', no '/' or '%', at most 253 characters)"),
}


class SkippedKind(NamedTuple):
    api_versions: tuple  # the versions Kubernetes serves for the kind today
    name_rule: str  # a key of NAME_RULES
    reason: str  # why hosts have no use for it (shown with each skipped object)


SKIPPED_KINDS = {
    "ServiceAccount": SkippedKind(("v1",), "subdomain", "no API server: pods get no service account token"),
    "Role": SkippedKind((RBAC,), "path", "no API server to authorize requests"),
    "RoleBinding": SkippedKind((RBAC,), "path", "no API server to authorize requests"),
    "ClusterRole": SkippedKind((RBAC,), "path", "no API server to authorize requests"),
    "ClusterRoleBinding": SkippedKind((RBAC,), "path", "no API server to authorize requests"),
    "Namespace": SkippedKind(("v1",), "label", "a namespace needs no object on hosts: objects name theirs in metadata.namespace"),
    "NetworkPolicy": SkippedKind(("networking.k8s.io/v1",), "subdomain", "pods use their host's network: no per-pod policy"),
    "Ingress": SkippedKind(("networking.k8s.io/v1",), "subdomain", "no ingress controller"),
    "HorizontalPodAutoscaler": SkippedKind(("autoscaling/v2", "autoscaling/v1"), "subdomain", "no metrics pipeline: replicas are what the manifest says"),
    "PodDisruptionBudget": SkippedKind(("policy/v1",), "subdomain", "no eviction API: rollouts keep to their own maxUnavailable"),
    "PersistentVolume": SkippedKind(("v1",), "subdomain", "volumes are directories on the hosts (<state_dir>/volumes/<claim>)"),
    "StorageClass": SkippedKind(("storage.k8s.io/v1",), "subdomain", "no volume provisioner: a claim is a directory on its pod's host"),
    "PriorityClass": SkippedKind(("scheduling.k8s.io/v1",), "subdomain", "no preemption on hosts"),
}


def name_problem(kind, name):
    """Why ``name`` is not a valid ``metadata.name`` for a ``kind`` of SKIPPED_KINDS, or None."""
    pattern, limit, what = NAME_RULES[SKIPPED_KINDS[kind].name_rule]
    if not isinstance(name, str) or not name:
        return "is required"
    if len(name) > limit or not pattern.fullmatch(name):
        return f"{name!r} is not {what}"
    return None
