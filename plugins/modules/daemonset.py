#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: daemonset
short_description: A Kubernetes DaemonSet, one pod on every eligible host, kept by one task
version_added: 0.1.0
description:
  - Runs one pod of O(template) on every eligible node, with Kubernetes' field names, defaults and meaning. Eligible
    nodes are the play's hosts (or the O(nodes) among them) whose labels match the template's C(nodeSelector) and
    required node affinity; see M(hostfleet.workloads.deployment) for where node labels come from (the host variable
    C(hostfleet_node_labels), inventory groups and the node's facts, e.g. C(feature.node.kubernetes.io/pci-0300_10de.present)
    on a host with an NVIDIA GPU).
  - A node that becomes eligible (joins the group, gains the label) gets its pod on the next run; a node that stops
    being eligible has its pod removed (counted in C(numberMisscheduled) until then).
  - DaemonSet pods tolerate NotReady nodes. A pod on an unreachable node is not moved anywhere; it counts as
    unavailable and uses the update budget first.
  - A node where the new pod cannot start does not hang the rollout on the other nodes (unlike Swarm, swarmkit#1720).
    Within O(updateStrategy)'s budget the other nodes are updated, and after O(progressDeadlineSeconds) the task
    fails naming the stuck nodes.
  - B(One task for the whole fleet), run once on the controller as an action plugin.
author:
  - hostfleet.workloads developers (@hostfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - hostfleet.workloads.fleet
  - hostfleet.workloads.namespace
  - hostfleet.workloads.image_pins
attributes:
  check_mode:
    support: full
    details: Returns the plan in waves and touches nothing.
  diff_mode:
    support: full
    details: Shows the pod template change.
  idempotent:
    description: Whether a re-run with the same arguments changes nothing.
    support: full
options:
  name:
    description: The DaemonSet's name, a DNS-1123 label. Pods are named C(<name>-<suffix>).
    type: str
    required: true
  state:
    description: V(present) converges to this spec; V(absent) removes every pod (persistent volume data is kept).
    type: str
    default: present
    choices: [present, absent]
  selector:
    description: A label selector (C(matchLabels)) that must match the template's labels. Defaults to the template's labels.
    type: dict
  template:
    description: The pod template (see M(hostfleet.workloads.pod) for the PodSpec fields). Required with O(state=present).
    type: dict
  updateStrategy:
    description:
      - C(type) V(RollingUpdate) (default) with C(rollingUpdate.maxUnavailable) (default 1, an integer or a percentage
        of the eligible nodes, rounded up) and C(rollingUpdate.maxSurge) (default 0; with surge the new pod starts
        before the old one on the same node), or V(OnDelete) (only nodes whose pod is gone get the new template).
    type: dict
  minReadySeconds:
    description: How long a pod must be ready to count as available.
    type: int
    default: 0
  revisionHistoryLimit:
    description: How many old revisions are kept.
    type: int
    default: 10
  progressDeadlineSeconds:
    description:
      - Extension (Kubernetes DaemonSets have none). A rollout that makes no progress for this long fails, naming the
        nodes where the new pod does not become available.
    type: int
    default: 600
  wait:
    description: Wait until every eligible node runs an available pod of the current template.
    type: bool
    default: true
seealso:
  - module: hostfleet.workloads.deployment
"""

EXAMPLES = r"""
- name: A GPU exporter on every host labelled gpu=true (hostfleet_node_labels in the inventory)
  hostfleet.workloads.daemonset:
    name: gpu-exporter
    updateStrategy:
      type: RollingUpdate
      rollingUpdate: {maxUnavailable: 1}
    template:
      metadata:
        labels: {app: gpu-exporter}
      spec:
        nodeSelector: {gpu: "true"}
        containers:
          - name: exporter
            command: [/usr/bin/python3, -m, http.server, "9400"]
  run_once: true
"""

RETURN = r"""
status:
  description: Kubernetes' DaemonSet status (C(desiredNumberScheduled), C(currentNumberScheduled), C(numberReady),
    C(updatedNumberScheduled), C(numberAvailable), C(numberUnavailable), C(numberMisscheduled), C(observedGeneration),
    C(conditions)).
  returned: always
  type: dict
pods:
  description:
    - Every pod with its node, revision, phase and readiness.
    - C(name) is the pod's name in its C(namespace), as kubectl shows it.
  returned: always
  type: list
  elements: dict
nodes:
  description: Per node, whether it was reachable and which pods it runs.
  returned: always
  type: dict
pending:
  description: Nodes where the pod does not fit, with the reason.
  returned: always
  type: list
  elements: dict
plan:
  description: The steps taken (or, in check mode, that would be taken).
  returned: always
  type: list
  elements: dict
unreachable_since:
  description: Since when (epoch seconds, kept in the record across runs) each unreachable node has been unreachable.
  returned: always
  type: dict
deselected_nodes:
  description: Hosts that left the fleet (removed from the play's hosts or from O(nodes), still in the inventory) whose pods of this workload were removed.
  returned: always
  type: dict
pods_outside_fleet:
  description: >-
    Pods the record places on hosts this run cannot address (not in the inventory, left out by C(--limit) or a
    C(serial) batch), reported, not removed.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostfleet.workloads.plugins.module_utils.workload_args import DAEMONSET_ARGS, refuse_outside_action


def main():
    refuse_outside_action(AnsibleModule(argument_spec=DAEMONSET_ARGS, supports_check_mode=True))


if __name__ == "__main__":
    main()
