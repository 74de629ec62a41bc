#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deployment
short_description: A Kubernetes Deployment over a group of hosts, rolled out by one task
version_added: 0.1.0
description:
  - Runs O(replicas) copies of a pod O(template) spread over the play's hosts (or the O(nodes) among them), as
    systemd units, and rolls template changes out without going below the availability budget, with Kubernetes'
    field names, defaults and meaning.
  - B(One task for the whole fleet.) The task runs once on the controller (an action plugin), connects to every node
    with each host's own inventory settings, and loops observe, plan, act, wait until the rollout is complete, fails,
    or O(wait_timeout) passes. Each step is one module call per node, in parallel.
  - "The pods of one template hash form a ReplicaSet C(<name>-<hash>) with a revision number, as in Kubernetes; the
    revision history and rollout progress are kept on the nodes themselves (the controller keeps no state)."
  - "Placement: C(nodeSelector), node affinity, pod affinity and anti-affinity on C(kubernetes.io/hostname), topology
    spread constraints and resource requests (cpu, memory, ephemeral-storage, extended resources such as
    C(nvidia.com/gpu)) against node capacity. Node labels come from the host variable C(hostfleet_node_labels) (a
    dict), plus C(kubernetes.io/hostname=<inventory name>) and C(hostfleet.io/group.<group>=true) for each inventory
    group, plus the well-known and feature labels of the node's facts (C(kubernetes.io/os), C(kubernetes.io/arch),
    C(feature.node.kubernetes.io/...); see the notes); capacity from C(hostfleet_node_capacity). Pods that fit
    nowhere are reported Pending with a reason."
  - An unreachable node is NotReady. Its pods are replaced on other nodes within the same run; when it comes back,
    the surplus is removed (oldest revision first, then the busiest nodes).
  - Beyond Kubernetes, O(auto_rollback) returns to the previous revision when the progress deadline passes, with
    the same budgets.
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
    details: Returns the plan (which pods start and stop on which node, in which waves) and touches nothing.
  diff_mode:
    support: full
    details: Shows the pod template change.
  idempotent:
    description: Whether a re-run with the same arguments changes nothing.
    support: partial
    details: A re-run with the same spec changes nothing; O(restart) and O(rollback_to) are imperative, like their kubectl counterparts.
options:
  name:
    description: The Deployment's name, a DNS-1123 label. Pods are named C(<name>-<template hash>-<suffix>).
    type: str
    required: true
  state:
    description:
      - V(present) makes the Deployment converge to this spec; V(absent) stops and removes its pods on every node
        (persistent volume data is kept).
    type: str
    default: present
    choices: [present, absent]
  replicas:
    description: The number of pods, at most 10000. Scaling during a rollout is split between the old and new revisions.
    type: int
    default: 1
  selector:
    description:
      - A Kubernetes label selector (C(matchLabels)) that must match the template's labels. Immutable once created.
        Defaults to C(matchLabels) of the template's labels.
    type: dict
  template:
    description:
      - The pod template, C(metadata) (C(labels), C(annotations)) and C(spec) (a PodSpec, see M(hostfleet.workloads.pod)
        for the supported fields). A change of the template starts a rollout; scaling does not.
      - Required with O(state=present).
    type: dict
  strategy:
    description:
      - C(type) V(RollingUpdate) (default) with C(rollingUpdate.maxSurge) and C(rollingUpdate.maxUnavailable) (each an
        integer or a percentage of O(replicas); default 25%; surge rounds up, unavailable rounds down; both 0 is refused),
        or V(Recreate) (every old pod is gone before any new one starts). The budgets hold across the whole fleet.
    type: dict
  minReadySeconds:
    description: How long a pod must be ready, without a container crashing, to count as available.
    type: int
    default: 0
  progressDeadlineSeconds:
    description:
      - A rollout that makes no progress for this long is reported with condition C(Progressing=False), reason
        C(ProgressDeadlineExceeded), and the task fails (or rolls back with O(auto_rollback)).
    type: int
    default: 600
  revisionHistoryLimit:
    description: How many old revisions are kept for O(rollback_to).
    type: int
    default: 10
  paused:
    description: While paused, template changes are recorded but not rolled out; scaling still applies.
    type: bool
    default: false
  auto_rollback:
    description:
      - When the progress deadline passes, roll back to the previous revision, within the same budgets.
    type: bool
    default: false
  rollback_to:
    description:
      - Roll back to this revision number (V(0) is the previous revision), like C(kubectl rollout undo --to-revision).
        Imperative. The rolled-back template becomes a new revision.
    type: int
  restart:
    description:
      - Restart every pod with a rolling update, like C(kubectl rollout restart) (sets the template annotation
        C(kubectl.kubernetes.io/restartedAt)). Imperative.
    type: bool
    default: false
  wait:
    description:
      - Wait until the rollout is complete (every replica updated and available). When false, the task does one
        reconcile step and returns; the next run of the task continues the rollout.
    type: bool
    default: true
seealso:
  - module: hostfleet.workloads.replicaset
  - module: hostfleet.workloads.pod
"""

EXAMPLES = r"""
- name: Six replicas of an HTTP API, rolled one at a time with no loss of capacity
  hosts: web
  gather_facts: false
  tasks:
    - name: Deploy the api
      hostfleet.workloads.deployment:
        name: api
        replicas: 6
        strategy:
          type: RollingUpdate
          rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
        minReadySeconds: 5
        template:
          metadata:
            labels: {app: api}
          spec:
            containers:
              - name: api
                command: [/usr/bin/python3, -m, http.server, "8080"]
                readinessProbe:
                  httpGet: {port: 8080, path: /}
                  periodSeconds: 2
      register: api
      run_once: true

- name: Roll back to the previous revision
  hosts: web
  gather_facts: false
  tasks:
    - name: Undo the last rollout
      hostfleet.workloads.deployment:
        name: api
        rollback_to: 0
        template: "{{ api_template }}"
"""

RETURN = r"""
status:
  description: Kubernetes' Deployment status.
  returned: always
  type: dict
  contains:
    replicas: {description: "Pods of the Deployment on ready nodes.", type: int}
    updatedReplicas: {description: "Pods of the current template.", type: int}
    readyReplicas: {description: "Ready pods.", type: int}
    availableReplicas: {description: "Pods ready for at least minReadySeconds.", type: int}
    unavailableReplicas: {description: "Desired replicas that are not available.", type: int}
    observedGeneration: {description: "The spec generation the status describes.", type: int}
    unknownReplicas: {description: "Pods on unreachable nodes, which this run could not see (not claimed gone).", type: int}
    conditions: {description: "C(Available), C(Progressing) and C(ReplicaFailure) with C(status), C(reason), C(message).", type: list, elements: dict}
revision:
  description: The revision number of the current template.
  returned: always
  type: int
pods:
  description:
    - Every pod with its node, revision, phase, readiness and restarts.
    - C(name) is the pod's name in its C(namespace), as kubectl shows it.
    - A pod whose container waits for a reason of its own (C(ErrImagePull), C(ImagePullBackOff), C(ErrImageNeverPull),
      C(CrashLoopBackOff)) also has C(reason) and C(message), as C(kubectl get pods) shows in STATUS.
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
  description: The steps taken (or, in check mode, that would be taken), each with the pods started and stopped per node.
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

from ansible_collections.hostfleet.workloads.plugins.module_utils.workload_args import DEPLOYMENT_ARGS, refuse_outside_action


def main():
    refuse_outside_action(AnsibleModule(argument_spec=DEPLOYMENT_ARGS, supports_check_mode=True))


if __name__ == "__main__":
    main()
