#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cluster_network
short_description: The pod network across hosts (one CIDR per node, routes between hosts, direct or VXLAN)
version_added: 0.3.0
description:
  - Gives every node of the play a pod CIDR of its own inside O(cluster_cidr) (one V(/24) by default), allocated
    stably and recorded on the node (C(<state_dir>/network/node.json)), and sets on every node the routes that let a
    pod reach the pods of every other node by their IPs. See C(docs/network.md).
  - B(Stable ranges.) A node keeps the range its node.json records, also while it is unreachable (the other nodes
    remember it as a peer); a new node takes the lowest free range; a node that is no longer in the play frees its
    range and its routes are removed from the others.
  - B(Links.) With O(mode=auto), two nodes that share a link (each one's address is on a subnet the other is
    connected to) get direct routes (C(<peer cidr> via <peer address>)); others are linked over VXLAN (device
    C(hfvx), VNI 4244, UDP port 4789, static entries per peer, no multicast). O(mode=direct) or O(mode=vxlan) forces
    one way for every pair.
  - On each node, also the bridge O(bridge) with the node's gateway address (its CIDR's first), C(net.ipv4.ip_forward=1),
    a route for O(service_cidr) on the bridge, the policy rules that carry Service traffic to the node that has its
    ready endpoints, C(hostfleet-network.service) (re-applies everything at boot), the network sync (nftables) and
    the cluster DNS unit.
  - The address a node is reached at is C(hostfleet_node_address) when set, else C(ansible_host) when it is one of
    the node's addresses, else its only IPv4 address.
  - Check mode reports what would change; nothing is changed on any host when an option or an address is wrong.
author:
  - hostfleet.workloads developers (@hostfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: node.json before and after, and the commands, per node.
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: full
    details:
      - The task runs once for the play, whatever the number of hosts.
  platform:
    platforms: posix
    support: full
options:
  cluster_cidr:
    description: The range every pod address comes from, split into one range per node (an IPv4 network, V(/8) to V(/28)).
    type: str
    default: 10.244.0.0/16
  node_prefix:
    description: The prefix length of each node's range (longer than O(cluster_cidr)'s, at most V(29)).
    type: int
    default: 24
  service_cidr:
    description: The range of Services' virtual IPs; must not overlap O(cluster_cidr).
    type: str
    default: 10.96.0.0/12
  cluster_domain:
    description: The cluster DNS domain (Services are C(<name>.<namespace>.svc.<cluster_domain>)).
    type: str
    default: cluster.local
  bridge:
    description: The bridge of each node's pods (an interface name).
    type: str
    default: hf0
  mode:
    description: How nodes are linked; V(auto) is direct between nodes that share a link, VXLAN otherwise.
    type: str
    choices: [auto, direct, vxlan]
    default: auto
  state:
    description:
      - V(absent) removes the cluster network from the nodes (routes, rules, VXLAN, node.json, the units, the nftables
        table); pods are never touched, and the bridge stays while pods are attached to it.
    type: str
    choices: [present, absent]
    default: present
  nodes:
    description: An inventory pattern that narrows the nodes among the play's hosts. Default, all the play's hosts.
    type: str
  state_dir:
    description: The node layer's state directory on the nodes.
    type: path
    default: /var/lib/hostfleet
notes:
  - "The task runs once per play (C(BYPASS_HOST_LOOP)): use C(run_once: true) with C(register)."
  - Pick ranges that no host network, VPN or route of your site uses (a host address inside O(cluster_cidr) or
    O(service_cidr) is refused).
  - C(net.ipv4.ip_forward) is left on by O(state=absent).
seealso:
  - module: hostfleet.workloads.pod
"""

EXAMPLES = r"""
- name: The pod network over all the play's hosts
  hostfleet.workloads.cluster_network:

- name: Hosts on different networks, VXLAN between all of them
  hostfleet.workloads.cluster_network:
    cluster_cidr: 10.200.0.0/16
    mode: vxlan
"""

RETURN = r"""
nodes:
  description: Each node's range and how it reaches each peer (V(direct) or V(vxlan)), unreachable nodes included.
  returned: when state is present
  type: dict
  sample: {"node1": {"node_index": 0, "address": "10.77.2.11", "cidr": "10.244.0.0/24", "gateway": "10.244.0.1", "peers": {"node2": "direct"}}}
unreachable_nodes:
  description: Nodes that could not be asked, with the reason; they keep their ranges.
  returned: always
  type: dict
commands:
  description: Per node, the C(ip)/C(bridge)/C(sysctl) commands run (in check mode, that would run).
  returned: always
  type: dict
changes:
  description: Per node, what else changed (node.json, units, scripts, the network sync).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostfleet.workloads.plugins.module_utils.network.config import CLUSTER_NETWORK_ARGS
from ansible_collections.hostfleet.workloads.plugins.module_utils.workload_args import refuse_outside_action


def main():
    refuse_outside_action(AnsibleModule(argument_spec=CLUSTER_NETWORK_ARGS, supports_check_mode=True))


if __name__ == "__main__":
    main()
