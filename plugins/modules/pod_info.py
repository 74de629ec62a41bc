#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pod_info
short_description: Report the pods on one host and their status
version_added: 0.1.0
description:
  - Returns the pods that M(hostfleet.workloads.pod) manages on the host, with the same status fields, selected by
    owner, by labels, or by name. Reads one C(systemctl list-units) and the pods' runtime files; changes nothing.
author:
  - hostfleet.workloads developers (@hostfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
    support: full
options:
  owner:
    description:
      - Only the pods of this owner (with O(owner_kind)). All pods when omitted.
    type: str
  namespace:
    description:
      - Only the pods of this namespace; O(owner) and O(names) are names in it (the node names them
        C(<namespace>_<name>) outside V(default)). When omitted, every namespace, and names as the node names them.
    type: str
  owner_kind:
    description:
      - The kind of O(owner).
    type: str
    default: Pod
    choices: [Pod, Deployment, ReplicaSet, ReplicationController, StatefulSet, DaemonSet, Job, CronJob]
  selector:
    description:
      - Only the pods whose labels include all of these (a Kubernetes C(matchLabels)).
    type: dict
  names:
    description:
      - Only the pods with these names.
    type: list
    elements: str
  state_dir:
    description:
      - The node layer's state directory, an absolute path without C(.) or C(..) components.
    type: path
    default: /var/lib/hostfleet
  lease:
    description:
      - "One writer per workload: reads, takes or renews, or releases this host's share of the O(owner)'s lease, kept in
        C(<state_dir>/leases/<kind>.<name>.json) under a lock. Workload modules take it on a majority of the
        workload's nodes, renew it with every observation and release it when done; a holder that dies loses it when
        it expires."
      - "Fields: C(kind) and C(name) (the workload; default O(owner_kind) and O(owner)), C(holder) (the run's id),
        C(token) (a positive integer fencing token), C(duration) (seconds, default 30), C(op) (V(read), V(acquire)
        (also renews), V(release); default V(acquire)), C(description) (who holds it, shown to other runs).
        V(acquire) is granted when no other holder's lease is current here and the token is above the highest token
        this host ever granted for the workload (or this holder already holds it here)."
      - In check mode the lease is only read.
    type: dict
  node_facts:
    description:
      - Also return C(node_facts), what this host is (C(os), C(machine), C(kernel), C(cpu_flags), C(cpu_vendor),
        C(pci_devices) as class and vendor, C(product_name) from DMI, C(os_release)), read once per boot and kept in
        C(/run/hostfleet/node-facts.json) (removing that file reads them again). The workload modules ask for it in
        their first look at each node and derive the node's well-known and feature labels from it (C(kubernetes.io/os),
        C(kubernetes.io/arch), C(feature.node.kubernetes.io/...)). A fact that cannot be read is left out.
    type: bool
    default: false
seealso:
  - module: hostfleet.workloads.pod
"""

EXAMPLES = r"""
- name: Pods of the web owner
  hostfleet.workloads.pod_info:
    owner: web
  register: web_pods

- name: Every pod labelled app=web, whatever its owner
  hostfleet.workloads.pod_info:
    selector: {app: web}
"""

RETURN = r"""
pods:
  description: The selected pods with their status, as returned by M(hostfleet.workloads.pod).
  returned: always
  type: list
  elements: dict
  sample:
    - name: web-a
      phase: Running
      ready: true
      restart_count: 0
      pod_ip: 10.244.1.4
      host_ip: 10.77.3.11
      units: [hf-web-a.http.service]
owner_record:
  description: The owner's stored record when O(owner) is given, else null.
  returned: always
  type: dict
owner_records:
  description: The stored records of every owner on the host (or of O(owner) only), keyed by C(Kind/name).
  returned: always
  type: dict
observed_at:
  description: The host's clock when the status was read (epoch seconds).
  returned: always
  type: float
lease:
  description:
    - The outcome of O(lease) here, C(granted) and C(reason) (V(granted), V(renewed), V(held), V(stale), V(released),
      V(not-held), V(read)), C(hwm) (the highest token granted here) and C(holder), the current lease (C(id),
      C(description), C(token), C(held_for), C(expires_in), in seconds) or null.
  returned: when O(lease) is given
  type: dict
node_facts:
  description: What this host is (see O(node_facts)); facts that could not be read are left out.
  returned: when O(node_facts=true)
  type: dict
  sample: {version: 1, os: linux, machine: x86_64, kernel: 6.1.0-18-amd64, cpu_flags: [avx2, sse4_2], cpu_vendor: GenuineIntel,
    pci_devices: [{class: "030000", vendor: "10de"}], os_release: {ID: debian, VERSION_ID: "12"}}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.runner import POD_INFO_ARGS, run_pod_info


def main():
    run_pod_info(AnsibleModule(argument_spec=POD_INFO_ARGS, supports_check_mode=True))


if __name__ == "__main__":
    main()
