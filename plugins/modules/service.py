#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: service
short_description: A Kubernetes Service over the fleet (a virtual IP and node ports in front of ready pods)
version_added: 0.3.0
description:
  - Runs once for the play's hosts. Every host holds every Service, as the file
    C(<state_dir>/network/services/<namespace>.<name>.json), and its network sync turns the files into nftables rules
    and cluster DNS (docs/network.md).
  - "A Service's cluster IP comes from the service CIDR (the nodes' C(service_cidr), default C(10.96.0.0/12)) and is
    kept: it is read back from the hosts' files at each run, so a re-run or a run with a node down keeps it.
    C(clusterIP) may name a free address of the CIDR; C(clusterIP: None) makes it headless. A NodePort Service gets a
    stable node port in 30000-32767 per port unless C(nodePort) names a free one."
  - "Endpoints: the pods of every reachable node that the selector picks, with their pod IP (a host-network pod's
    is its host's address), node, readiness and the port a named C(targetPort) means on each pod. The nodes
    that cannot be reached contribute none, so their endpoints leave every other host's rules at this run.
    Readiness changes between runs are followed on each host by the probe hook."
  - A spec hosts cannot honour (types C(LoadBalancer) and C(ExternalName), C(externalIPs), C(sessionAffinity)
    ClientIP, ...) fails the task naming the field, before any host is touched. C(ipFamilies), C(ipFamilyPolicy),
    C(allocateLoadBalancerNodePorts), C(trafficDistribution) and ports' C(appProtocol) are accepted and ignored
    (returned in RV(ignored_fields)).
author:
  - hostfleet.workloads developers (@hostfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: full
    details:
      - The task runs once for the play, whatever the number of hosts.
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The Service file before and after (ports, cluster IP, endpoints).
  platform:
    platforms: posix
    support: full
options:
  name:
    description: The Service's name, a DNS-1035 label (lowercase letters, digits and C(-), starting with a letter).
    type: str
    required: true
  namespace:
    description: The Service's namespace (a DNS-1123 label).
    type: str
    default: default
  spec:
    description:
      - "A Kubernetes ServiceSpec: C(type) (V(ClusterIP) or V(NodePort)), C(clusterIP) (an address of the service CIDR,
        or V(None) for a headless Service), C(ports) (C(name), C(protocol) V(TCP) or V(UDP), C(port), C(targetPort)
        a number or a container port's name, C(nodePort)), C(selector), C(publishNotReadyAddresses)."
    type: dict
    default: {}
  state:
    description: V(present) creates or updates the Service on every node, V(absent) removes it from every reachable node.
    type: str
    default: present
    choices: [present, absent]
  nodes:
    description:
      - An inventory pattern that narrows the nodes among the play's hosts. Default, all the play's hosts.
    type: str
  wait_timeout:
    description: How many seconds each node may take to answer.
    type: int
    default: 600
  state_dir:
    description: The node layer's state directory on the nodes.
    type: path
    default: /var/lib/hostfleet
notes:
  - "The task runs once per play (C(BYPASS_HOST_LOOP)): C(register) stores the result on the first host only."
  - A node that is unreachable keeps its copy of the Service file until a run reaches it again.
seealso:
  - module: hostfleet.workloads.apply
  - module: hostfleet.workloads.workload_info
"""

EXAMPLES = r"""
- name: A Service in front of the backend's pods
  hostfleet.workloads.service:
    name: backend
    spec:
      selector: {app: backend}
      ports:
        - {name: http, port: 8080, targetPort: http}

- name: A headless Service for a StatefulSet
  hostfleet.workloads.service:
    name: nginx
    spec:
      clusterIP: None
      selector: {app: nginx}
      ports: [{name: web, port: 80}]
"""

RETURN = r"""
service:
  description: The Service file as every host now holds it (in check mode, as it would be).
  returned: when O(state=present)
  type: dict
cluster_ip:
  description: The Service's cluster IP, or null for a headless Service.
  returned: when O(state=present)
  type: str
endpoints:
  description: The endpoints found (C(pod), C(node), C(ip), C(ready), C(ports)).
  returned: when O(state=present)
  type: list
  elements: dict
nodes:
  description: The nodes whose Service file was written (or removed), or would be in check mode.
  returned: always
  type: list
  elements: str
unreachable_nodes:
  description: The nodes that could not be reached, with the reason.
  returned: always
  type: dict
ignored_fields:
  description: The spec's fields accepted and ignored.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostfleet.workloads.plugins.module_utils.service_args import SERVICE_ARGS
from ansible_collections.hostfleet.workloads.plugins.module_utils.workload_args import refuse_outside_action


def main():
    refuse_outside_action(AnsibleModule(argument_spec=SERVICE_ARGS, supports_check_mode=True))


if __name__ == "__main__":
    main()
