# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The namespace option of every workload module (metadata.namespace)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  namespace:
    description:
      - "The workload's namespace, C(metadata.namespace) in a manifest. With O(name), its identity, as in Kubernetes:
        the same name in two namespaces is two workloads, each with its own pods, record and lease, side by side on
        the same nodes; deleting one leaves the other."
      - "A DNS-1123 label. Workloads of V(default) keep the node-side names they had before namespaces existed; in any
        other namespace the nodes name the workload, its pods and their units C(<namespace>_<name>) (pods still see
        their own name as hostname and C(POD_NAME); C(fieldRef) C(metadata.namespace) gives the namespace). See
        docs/architecture.md, section Namespaces."
    type: str
    default: default
"""
