#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: statefulset
short_description: A Kubernetes StatefulSet over a group of hosts, each identity pinned to its volume
version_added: 0.1.0
description:
  - Runs pods with stable identities C(<name>-<ordinal>) over the play's hosts (or the O(nodes) among them), with
    Kubernetes' field names, defaults and meaning. Each pod gets the labels C(statefulset.kubernetes.io/pod-name) and
    C(apps.kubernetes.io/pod-index), its name as C(hostname) (exported as C(HOSTNAME)), and one persistent volume per
    entry of O(volumeClaimTemplates), C(<template>-<name>-<ordinal>), a directory on its node.
  - An identity's first placement follows the scheduler (spread, node selection, capacity); afterwards it stays on the
    node that holds its data, across restarts, template updates and scaling. At most one live pod per identity, ever;
    when its node is unreachable the pod waits (reported with a reason) unless O(unsafeMoveOnNodeLoss) is set.
  - B(One task for the whole fleet), run once on the controller as an action plugin; see
    M(hostfleet.workloads.deployment) for node labels, capacity and what a run-once task means in Ansible.
  - Better than Kubernetes (kubernetes#67250), reverting a broken template unsticks an OrderedReady rolling update.
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
    description: The StatefulSet's name, a DNS-1123 label.
    type: str
    required: true
  state:
    description:
      - V(present) converges to this spec; V(absent) removes every pod. Volumes are kept unless
        O(persistentVolumeClaimRetentionPolicy) says C(whenDeleted=Delete).
    type: str
    default: present
    choices: [present, absent]
  replicas:
    description: The number of identities, at most 10000.
    type: int
    default: 1
  selector:
    description: A label selector (C(matchLabels)) that must match the template's labels. Defaults to the template's labels.
    type: dict
  template:
    description: The pod template (see M(hostfleet.workloads.pod) for the PodSpec fields). Required with O(state=present).
    type: dict
  serviceName:
    description: Kept with the spec, as in Kubernetes; hosts have no cluster DNS.
    type: str
  ordinals:
    description: C(start), the first ordinal (default 0).
    type: dict
  volumeClaimTemplates:
    description:
      - One persistent volume per identity for each entry, C(metadata.name) being the volume name that the template's
        C(volumeMounts) use. The claim's C(spec) (C(accessModes), C(resources)) is kept but has no effect on hosts.
    type: list
    elements: dict
    default: []
  podManagementPolicy:
    description:
      - V(OrderedReady) creates 0 to N-1, each Running and Ready before the next, and removes N-1 to 0; V(Parallel)
        does not wait.
    type: str
    default: OrderedReady
    choices: [OrderedReady, Parallel]
  updateStrategy:
    description:
      - C(type) V(RollingUpdate) (default; highest ordinal first, C(rollingUpdate.partition), C(rollingUpdate.maxUnavailable)
        default 1) or V(OnDelete) (only pods that are gone get the new template).
    type: dict
  persistentVolumeClaimRetentionPolicy:
    description:
      - C(whenDeleted) and C(whenScaled), each V(Retain) (default, never deletes data) or V(Delete) (deletes exactly
        the volumes of this set's identities that go, and nothing else).
    type: dict
  minReadySeconds:
    description: How long a pod must be ready to count as available.
    type: int
    default: 0
  revisionHistoryLimit:
    description: How many old revisions are kept.
    type: int
    default: 10
  unsafeMoveOnNodeLoss:
    description:
      - Extension. When an identity's node is unreachable, start it on another node. Its local data does not move;
        the identity starts with an empty volume there, and the copy on the lost node is stopped when it comes back.
    type: bool
    default: false
  wait:
    description: Wait until every identity runs the current template and is available.
    type: bool
    default: true
seealso:
  - module: hostfleet.workloads.deployment
  - module: hostfleet.workloads.pod
"""

EXAMPLES = r"""
- name: Three database identities, each with its own volume
  hostfleet.workloads.statefulset:
    name: db
    replicas: 3
    volumeClaimTemplates:
      - metadata: {name: data}
    template:
      metadata:
        labels: {app: db}
      spec:
        containers:
          - name: db
            command: [/bin/sh, -c, "echo $HOSTNAME >> /data/boots; exec sleep infinity"]
            volumeMounts:
              - {name: data, mountPath: /data}
  run_once: true
"""

RETURN = r"""
status:
  description: Kubernetes' StatefulSet status (C(replicas), C(readyReplicas), C(currentReplicas), C(updatedReplicas),
    C(availableReplicas), C(currentRevision), C(updateRevision), C(observedGeneration), C(conditions)).
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
  description: Identities that cannot run now, with the reason.
  returned: always
  type: list
  elements: dict
plan:
  description: The steps taken (or, in check mode, that would be taken).
  returned: always
  type: list
  elements: dict
volumes_deleted:
  description: With O(state=absent), per node, the volumes deleted by a Delete retention policy.
  returned: when state is absent
  type: dict
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

from ansible_collections.hostfleet.workloads.plugins.module_utils.workload_args import STATEFULSET_ARGS, refuse_outside_action


def main():
    refuse_outside_action(AnsibleModule(argument_spec=STATEFULSET_ARGS, supports_check_mode=True))


if __name__ == "__main__":
    main()
