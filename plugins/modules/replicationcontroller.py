#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: replicationcontroller
short_description: A Kubernetes ReplicationController (core v1) over a group of hosts, kept by one task
version_added: 0.1.0
description:
  - Keeps exactly O(replicas) pods of one pod O(template) running over the play's hosts (or the O(nodes) among them),
    as systemd units, with Kubernetes' placement rules (see M(hostfleet.workloads.deployment) for node labels,
    capacity, and how unreachable nodes are handled). It is run by the same controller as
    M(hostfleet.workloads.replicaset), as Kubernetes runs ReplicationControllers.
  - "The ReplicationController is what a Deployment replaced in Kubernetes; real manifests still contain it, and
    M(hostfleet.workloads.apply) applies C(kind: ReplicationController) (C(apiVersion: v1)) through this module's code."
  - Like Kubernetes' ReplicationController, it does not roll out template changes; new pods use the new template,
    running ones stay. Use M(hostfleet.workloads.deployment) for rolling updates.
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
    description: The ReplicationController's name, a DNS-1123 label. Pods are named C(<name>-<suffix>).
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
    description:
      - "A plain label map (C(app: web)), not a C(matchLabels) selector; every pair must be among the template's labels.
        Defaults (absent or empty) to the template's labels."
      - It cannot change once the ReplicationController exists (in Kubernetes a new selector orphans the pods it no
        longer selects; here pods belong to their owner by name).
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
  - module: hostfleet.workloads.replicaset
  - module: hostfleet.workloads.deployment
  - module: hostfleet.workloads.apply
"""

EXAMPLES = r"""
- name: Three web servers anywhere in the group, selected by app=web (the template's labels)
  hostfleet.workloads.replicationcontroller:
    name: web
    replicas: 3
    template:
      metadata:
        labels: {app: web}
      spec:
        containers:
          - name: web
            command: [/usr/bin/python3, -m, http.server, "8080"]
            readinessProbe: {httpGet: {port: 8080, path: /}}
  run_once: true

- name: Scale it down to one (the other pods stop; a template change here would only affect new pods)
  hostfleet.workloads.replicationcontroller:
    name: web
    replicas: 1
    selector: {app: web}
    template:
      metadata:
        labels: {app: web}
      spec:
        containers:
          - name: web
            command: [/usr/bin/python3, -m, http.server, "8080"]
  run_once: true

- name: Remove it and its pods
  hostfleet.workloads.replicationcontroller:
    name: web
    state: absent
  run_once: true
"""

RETURN = r"""
status:
  description: >-
    Kubernetes' ReplicationController status, C(replicas), C(readyReplicas), C(availableReplicas), C(fullyLabeledReplicas), and
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

from ansible_collections.hostfleet.workloads.plugins.module_utils.workload_args import REPLICATIONCONTROLLER_ARGS, refuse_outside_action


def main():
    refuse_outside_action(AnsibleModule(argument_spec=REPLICATIONCONTROLLER_ARGS, supports_check_mode=True))


if __name__ == "__main__":
    main()
