#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: apply
short_description: Apply Kubernetes manifests, as they are, to the fleet
version_added: 0.3.0
description:
  - Reads Kubernetes manifests (a file, a directory, a multi-document YAML text or a list) of kinds C(Deployment),
    C(ReplicaSet), C(StatefulSet), C(DaemonSet) (C(apps/v1)), C(Job), C(CronJob) (C(batch/v1)), C(Pod),
    C(ReplicationController), C(ConfigMap), C(Secret) and C(PersistentVolumeClaim) (C(v1)), and applies them to the fleet.
  - Documents of kinds that mean nothing on plain hosts (C(ServiceAccount), C(Role), C(RoleBinding), C(ClusterRole),
    C(ClusterRoleBinding), C(Namespace), C(NetworkPolicy), C(Ingress), C(HorizontalPodAutoscaler),
    C(PodDisruptionBudget), C(PersistentVolume), C(StorageClass), C(PriorityClass), and for now C(Service)) are
    checked for their C(apiVersion) and C(metadata.name), then listed in RV(not_applied) and a warning and not applied,
    with O(state=present) and O(state=absent) alike; O(unsupported_kinds=error) refuses them instead.
  - A C(PersistentVolumeClaim) names the volume that pods' C(persistentVolumeClaim.claimName) mounts, a directory
    C(<state_dir>/volumes/<name>) on each pod's host; its C(storageClassName), C(accessModes), C(resources) and the
    like are listed as ignored, C(dataSource) and C(volumeMode=Block) are refused. Deleting it never deletes the data.
  - B(One task for the whole fleet), run once on the controller as an action plugin.
  - Each workload is applied by the same code as its kind module (M(hostfleet.workloads.deployment) and the others),
    with the document's C(spec) as that module's arguments, so the semantics are the same. A bare C(Pod) runs on
    its C(spec.nodeName), else on one node that its C(nodeSelector)/affinity allow (kept there while it stays
    eligible). ConfigMaps and Secrets become files on every node (see M(hostfleet.workloads.config_data)) that
    C(envFrom), C(env[].valueFrom.configMapKeyRef/secretKeyRef) and C(configMap)/C(secret) volumes read.
  - Order, ConfigMaps, Secrets and PersistentVolumeClaims first, then StatefulSets, Deployments, ReplicaSets,
    ReplicationControllers, DaemonSets, Pods, Jobs, CronJobs; with O(state=absent) the reverse. When an object fails,
    only the objects that depend on it are not applied (with O(state=present), those whose pods read a ConfigMap,
    Secret or claim that failed; with O(state=absent), the ConfigMaps, Secrets and claims read by an object that
    could not be deleted); every other object is applied, and the task fails at the end naming each failed object.
  - A Job that had already failed before this run (and is unchanged) is reported with RV(objects[].already_failed)
    and a warning, not as a failure of the task; delete it (O(state=absent)) to run it again.
  - Fields that have no meaning on plain hosts (C(metadata.namespace), C(metadata.labels) of workloads,
    C(status), C(serviceAccountName) (unless a C(fieldRef) reads C(spec.serviceAccountName)), C(automountServiceAccountToken),
    a projected volume's C(serviceAccountToken) sources, C(imagePullSecrets) of pods without images, C(dnsPolicy),
    C(schedulerName), C(enableServiceLinks), C(preemptionPolicy), C(priority), C(terminationMessagePath),
    C(terminationMessagePolicy) and the server-set metadata) are left out and listed in RV(ignored_fields). Every
    other field the project cannot honour is refused, naming the document and the field path.
  - B(Nothing is applied when any document has a problem), every problem of every document is reported at once,
    and no host is touched.
  - "Reading a document is bounded, aliases expanded each time they are used, before anything is built from it: at
    most 100 levels of nesting, 1,000 aliases, 200,000 values and 4 MiB of text per document (an alias bomb is
    refused in milliseconds). Load errors name the document (C(file#index)) and the line and column; YAML parser
    messages never include the text of the line. Fields kept as given (C(priorityClassName),
    C(volumeClaimTemplates[].spec)) are checked against Kubernetes' types; C(tolerations) are validated as
    Kubernetes does and honoured against the nodes' taints (C(hostfleet_node_taints), C(docs/podspec-taints.md)).
    See C(docs/apply.md)."
  - Secret values never appear in the result, the diff or the logs; on the nodes their files are readable by root
    only.
author:
  - hostfleet.workloads developers (@hostfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - hostfleet.workloads.fleet
attributes:
  check_mode:
    support: full
    details: Returns, per object, what its kind module would do (which pods would start where, in which waves).
  diff_mode:
    support: full
    details: Per object, the template change, the pod unit changes, or the ConfigMap keys and values, a Secret's key names only.
  idempotent:
    description: Whether a re-run with the same arguments changes nothing.
    support: full
options:
  src:
    description:
      - A manifest file, or a directory whose C(.yaml), C(.yml) and C(.json) files are read in name order (not
        recursively), as C(kubectl apply -f). A relative path is looked up like the C(copy) module's O(src).
      - Exactly one of O(src) and O(definition).
    type: path
  definition:
    description:
      - The manifests inline, a YAML text with one or more documents, one mapping, or a list of mappings or texts.
      - Exactly one of O(src) and O(definition).
    type: raw
  state:
    description:
      - V(present) creates or updates every object. V(absent) deletes them (workloads first, ConfigMaps and Secrets
        last); a StatefulSet's volumes are kept unless its C(persistentVolumeClaimRetentionPolicy.whenDeleted) is
        V(Delete).
    type: str
    default: present
    choices: [present, absent]
  namespace:
    description:
      - The namespace of the documents that name none in C(metadata.namespace), as C(kubectl apply -n). An object is
        known by its kind, namespace and name (two Deployments C(web) in two namespaces are two objects); the pods of a
        workload read the ConfigMaps, Secrets and claims of their own namespace (see the kinds' O(namespace)).
    type: str
    default: default
  wait:
    description: Wait for each workload to converge (as its kind module's O(wait)) before applying the next object.
    type: bool
    default: true
  unsupported_kinds:
    description:
      - What to do with documents of kinds that mean nothing on plain hosts (see the description).
      - V(skip) lists them in RV(not_applied), warns, and applies the other documents. V(error) refuses the manifests,
        naming each such document, and applies nothing.
    type: str
    default: skip
    choices: [skip, error]
seealso:
  - module: hostfleet.workloads.deployment
  - module: hostfleet.workloads.statefulset
  - module: hostfleet.workloads.config_data
"""

EXAMPLES = r"""
- name: Apply a directory of Kubernetes manifests to the web hosts
  hostfleet.workloads.apply:
    src: manifests/
  run_once: true

- name: One manifest inline
  hostfleet.workloads.apply:
    definition: |
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: api}
      spec:
        replicas: 3
        selector: {matchLabels: {app: api}}
        template:
          metadata: {labels: {app: api}}
          spec:
            serviceAccountName: api   # ignored on hosts, listed in ignored_fields
            containers:
              - name: api
                command: [/usr/bin/python3, -m, http.server, "8080"]
                readinessProbe: {httpGet: {port: 8080, path: /}}
  run_once: true

- name: Delete what the manifests define (volumes of StatefulSets are kept unless their policy says Delete)
  hostfleet.workloads.apply:
    src: manifests/
    state: absent
  run_once: true
"""

RETURN = r"""
objects:
  description: One entry per object, in the order they were applied.
  returned: when the manifests are valid
  type: list
  elements: dict
  contains:
    kind: {description: "The object's kind.", type: str, sample: Deployment}
    name: {description: "Its C(metadata.name).", type: str, sample: api}
    source: {description: "The document it comes from (C(file#index) or C(definition[i])).", type: str}
    changed: {description: "Whether applying it changed something.", type: bool}
    failed: {description: "Whether applying it failed.", type: bool}
    skipped: {description: "True when it was not applied because an object it depends on failed (see the description).", type: bool}
    already_failed: {description: "True for a Job that had already failed before this run: reported, not a failure of the task.", type: bool}
    volume: {description: "PersistentVolumeClaim, the directory its pods mount on their hosts.", type: str, sample: /var/lib/hostfleet/volumes/data}
    used_by: {description: "PersistentVolumeClaim, the objects of these manifests whose pods mount it.", type: list, elements: str}
    msg: {description: "Why it failed, or was not applied.", type: str}
    status: {description: "The kind module's C(status) (a bare Pod's status on its node).", type: dict}
    plan: {description: "In check mode, the kind module's plan (waves of pod starts and stops).", type: list}
    ignored_fields: {description: "Field paths of this document that were ignored.", type: list, elements: str}
    nodes: {description: "ConfigMap, Secret, Pod, CronJob, the nodes it is on.", type: raw}
    data_keys: {description: "ConfigMap and Secret, the key names (never values).", type: list, elements: str}
ignored_fields:
  description: "Every ignored field, as C(<document> (<Kind> <name>): <field path>)."
  returned: when the manifests are valid
  type: list
  elements: str
  sample: ["manifests/web.yaml#0 (Deployment web): spec.template.spec.serviceAccountName"]
not_applied:
  description: The documents of kinds that mean nothing on hosts, not applied (with O(unsupported_kinds=skip)).
  returned: when the manifests are valid
  type: list
  elements: dict
  contains:
    kind: {description: "The document's kind.", type: str, sample: PodDisruptionBudget}
    name: {description: "Its C(metadata.name).", type: str, sample: nginx}
    namespace: {description: "Its C(metadata.namespace) (V(default) when it has none).", type: str, sample: default}
    source: {description: "The document it comes from.", type: str, sample: "manifests/web.yaml#0"}
    reason: {description: "Why hosts have no use for it.", type: str}
errors:
  description: Every problem of every document, when the manifests are refused (nothing was applied).
  returned: failure
  type: list
  elements: str
  sample: ["manifests/web.yaml#0 (Deployment web): spec.template.spec.hostUsers: unknown field (allowed here: ...)"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostfleet.workloads.plugins.module_utils.apply_args import APPLY_ARGS, APPLY_MUTUALLY_EXCLUSIVE, APPLY_REQUIRED_ONE_OF
from ansible_collections.hostfleet.workloads.plugins.module_utils.workload_args import refuse_outside_action


def main():
    refuse_outside_action(
        AnsibleModule(
            argument_spec=APPLY_ARGS,
            mutually_exclusive=APPLY_MUTUALLY_EXCLUSIVE,
            required_one_of=APPLY_REQUIRED_ONE_OF,
            supports_check_mode=True,
        )
    )


if __name__ == "__main__":
    main()
