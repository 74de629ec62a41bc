#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pod_logs
short_description: The output of a pod's containers, from its node's journal, like kubectl logs
version_added: 0.2.0
description:
  - Returns what the containers of one pod wrote (their standard output and error, which systemd keeps in the journal
    of the node), in time order, each line with its container and time. Like C(kubectl logs), with O(since), O(tail)
    and O(follow) for a number of seconds.
  - B(Finds the pod's node itself.) The task runs once on the controller and asks every node of the play (or of
    O(nodes)) at once; the node that runs the pod answers. systemd's own messages about the units and the node layer's
    lines (crash-loop back-off, probes) are left out; see M(hostfleet.workloads.workload_info) with
    O(hostfleet.workloads.workload_info#module:events=true) for those.
  - The module changes nothing and never reports C(changed). The same module runs on each node as the reading side of
    the action.
author:
  - hostfleet.workloads developers (@hostfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details: Reads only; the same result in check mode.
  diff_mode:
    support: none
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
  pod:
    description: The pod's name (as M(hostfleet.workloads.workload_info) lists it).
    type: str
    required: true
  namespace:
    description: The pod's namespace (as M(hostfleet.workloads.workload_info) lists it).
    type: str
    default: default
  container:
    description: Only this container's lines (an app or init container). Every container's when omitted.
    type: str
  since:
    description:
      - Only lines written within this duration before now (V(30s), V(5m), V(2h), V(1d); a bare number is seconds),
        like C(kubectl logs --since). All that the journal keeps when omitted.
    type: raw
  tail:
    description: Only the last N lines (after O(since)), like C(kubectl logs --tail). All when omitted.
    type: int
  follow:
    description:
      - After the lines already written, keep reading for this many seconds and return what the containers write
        meanwhile (C(kubectl logs -f), bounded). V(0) does not follow; at most V(3600) (an hour), and a value that is
        not a finite number of seconds in that range fails the task.
    type: float
    default: 0
  nodes:
    description:
      - An inventory pattern that narrows the nodes asked among the play's hosts. Default, all the play's hosts.
    type: str
  state_dir:
    description: The node layer's state directory on the nodes, an absolute path without C(.) or C(..) components.
    type: path
    default: /var/lib/hostfleet
notes:
  - "The task runs once per play (C(BYPASS_HOST_LOOP)): use C(run_once: true) with C(register)."
  - The journal's own retention limits how far back lines go. A container that writes no newline has its output
    shown when the line ends or the process exits (as journald stores it).
  - Only this pod's lines, from its creation on this node (an earlier pod of the same name had its own); lines of
    its containers' earlier runs (before a restart) are included.
  - Fails when no reachable node runs the pod.
seealso:
  - module: hostfleet.workloads.workload_info
"""

EXAMPLES = r"""
- name: The last 20 lines of a pod
  hostfleet.workloads.pod_logs:
    pod: web-6d5f9c7b8d-x2k9q
    tail: 20
  register: logs
  run_once: true

- name: Print them
  ansible.builtin.debug:
    msg: "{{ logs.messages }}"
  run_once: true

- name: What the main container writes in the next 10 seconds, after the last 5 minutes
  hostfleet.workloads.pod_logs:
    pod: db-0
    container: main
    since: 5m
    follow: 10
  run_once: true
"""

RETURN = r"""
node:
  description: The node that runs the pod.
  returned: success
  type: str
  sample: node2
containers:
  description: The pod's containers.
  returned: success
  type: list
  elements: str
lines:
  description: The lines, oldest first.
  returned: success
  type: list
  elements: dict
  contains:
    time: {description: "When it was written (RFC 3339 with milliseconds).", type: str}
    timestamp: {description: "When it was written (epoch seconds, on the controller's clock).", type: float}
    container: {description: "The container that wrote it.", type: str}
    message: {description: "The line.", type: str}
  sample:
    - {time: "2026-11-29T04:05:01.204Z", timestamp: 1795925101.204, container: main, message: "listening on :8080"}
messages:
  description: The lines' text only, oldest first (what C(kubectl logs) prints).
  returned: success
  type: list
  elements: str
unreachable_nodes:
  description: Nodes that could not be asked, with the reason (the pod may be on one of them).
  returned: always
  type: dict
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, events, namespaces
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import units as render
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, clean_abs_path, dns_label
from ansible_collections.hostfleet.workloads.plugins.module_utils.observe_args import POD_LOGS_ARGS


def main():
    module = AnsibleModule(argument_spec=POD_LOGS_ARGS, supports_check_mode=True)
    params = module.params
    try:
        # As the action checks them: names make unit names, state_dir a path.
        dns_label(params["pod"], "pod")
        dns_label(params["namespace"], "namespace")
        if params["container"] is not None:
            dns_label(params["container"], "container")
        clean_abs_path(params["state_dir"], "state_dir")
    except SpecError as exc:
        module.fail_json(msg=f"invalid argument: {exc}")
    try:
        since = events.parse_duration(params["since"]) if params["since"] not in (None, "") else None
    except events.EventError as exc:
        module.fail_json(msg=f"since: {exc}")
    if params["tail"] is not None and params["tail"] < 0:
        module.fail_json(msg="tail: must be 0 or more")
    try:
        follow = events.follow_seconds(params["follow"])
    except events.EventError as exc:
        module.fail_json(msg=str(exc))
    host = converge.Host(params["state_dir"])
    # The node layer names the pod <namespace>_<pod> outside default (namespaces.py).
    pod = namespaces.node_name(params["namespace"], params["pod"])
    record = host.records().get(pod)
    if record is None:
        module.exit_json(changed=False, found=False, observed_at=time.time())
    spec = record.get("spec", {})
    # Init containers too (kubectl logs -c init-myservice), before the app containers, in their start order.
    containers = [c["name"] for c in (spec.get("initContainers") or []) + spec.get("containers", [])]
    if params["container"] is not None and params["container"] not in containers:
        module.fail_json(msg=f"pod {params['pod']} has no container {params['container']!r} (it has {', '.join(containers)})", found=True)
    wanted = [params["container"]] if params["container"] is not None else containers
    units = {render.container_unit(pod, name): name for name in wanted}
    start = time.time() - since if since is not None else None
    if record.get("created"):
        # This pod's lines only: an earlier pod of the same name (a StatefulSet identity, a re-created workload) had its own.
        start = max(start or 0.0, float(record["created"]))
    try:
        lines = events.read_logs(units, since=start, tail=params["tail"], follow=follow)
    except OSError as exc:
        module.fail_json(msg=f"reading the journal failed: {exc}", found=True)
    module.exit_json(changed=False, found=True, containers=containers, lines=lines, observed_at=time.time())


if __name__ == "__main__":
    main()
