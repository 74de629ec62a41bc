#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: replicaset
short_description: A Kubernetes ReplicaSet over a group of hosts, kept by one task
version_added: 0.1.0
description:
  - Keeps exactly O(replicas) pods of one pod O(template) running over the play's hosts (or the O(nodes) among them),
    as systemd units, with Kubernetes' placement rules (see M(hostfleet.workloads.deployment) for node labels,
    capacity, and how unreachable nodes are handled).
  - Like a Kubernetes ReplicaSet, it does not roll out template changes to existing pods; new pods use the new
    template, existing ones stay. Use M(hostfleet.workloads.deployment) for rolling updates.
  - B(One task for the whole fleet), run once on the controller as an action plugin.
author:
  - hostfleet.workloads developers (@hostfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - hostfleet.workloads.fleet
  - hostfleet.workloads.namespace
  - hostfleet.workloads.fleet.node_grace
  - hostfleet.workloads.image_pins
attributes:
  check_mode:
    support: full
    details: Returns which pods would start and stop on which node, and touches nothing.
  diff_mode:
    support: full
    details: Shows the pod template change.
  idempotent:
    description: Whether a re-run with the same arguments changes nothing.
    support: full
options:
  name:
    description: The ReplicaSet's name, a DNS-1123 label. Pods are named C(<name>-<suffix>).
    type: str
    required: true
  state:
    description: V(present) keeps the pods; V(absent) removes them on every node (persistent volume data is kept).
    type: str
    default: present
    choices: [present, absent]
  replicas:
    description: The number of pods, at most 10000.
    type: int
    default: 1
  selector:
    description: A label selector (C(matchLabels)) that must match the template's labels. Defaults to the template's labels.
    type: dict
  template:
    description: The pod template, C(metadata) and C(spec) (see M(hostfleet.workloads.pod)). Required with O(state=present).
    type: dict
  minReadySeconds:
    description: How long a pod must be ready to count as available.
    type: int
    default: 0
  wait:
    description: Wait until every replica is available.
    type: bool
    default: true
seealso:
  - module: hostfleet.workloads.deployment
"""

EXAMPLES = r"""
- name: Three workers anywhere in the group
  hostfleet.workloads.replicaset:
    name: worker
    replicas: 3
    template:
      metadata:
        labels: {app: worker}
      spec:
        containers:
          - name: worker
            command: [/bin/sh, -c, "while sleep 60; do date; done"]
  run_once: true
"""

RETURN = r"""
status:
  description: >-
    Kubernetes' ReplicaSet status, C(replicas), C(readyReplicas), C(availableReplicas), C(fullyLabeledReplicas), and
    C(unknownReplicas) (pods on unreachable nodes, which the run could not see).
  returned: always
  type: dict
pods:
  description:
    - Every pod with its node, phase, readiness and restarts.
    - C(name) is the pod's name in its C(namespace), as kubectl shows it.
  returned: always
  type: list
  elements: dict
nodes:
  description: Per node, whether it was reachable and which pods it runs.
  returned: always
  type: dict
pending:
  description: Pods that fit on no node, with the reason.
  returned: always
  type: list
  elements: dict
plan:
  description: The steps taken (or, in check mode, that would be taken).
  returned: always
  type: list
  elements: dict
unknown_pods:
  description: Pods on unreachable nodes still within their grace (C(node_grace_seconds)), counted as unavailable, not replaced yet.
  returned: always
  type: list
  elements: str
evicted_pods:
  description: Pods on unreachable nodes past their grace, replaced elsewhere (their node may still run them until it returns).
  returned: always
  type: list
  elements: str
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

from ansible_collections.hostfleet.workloads.plugins.module_utils.workload_args import REPLICASET_ARGS, refuse_outside_action


def main():
    refuse_outside_action(AnsibleModule(argument_spec=REPLICASET_ARGS, supports_check_mode=True))


if __name__ == "__main__":
    main()
