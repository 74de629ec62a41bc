#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: workload_info
short_description: What the fleet runs, with status, conditions, pods and events, as data and as a kubectl-like table
version_added: 0.2.0
description:
  - Reports every workload the play's hosts run (Deployments, ReplicaSets, ReplicationControllers, StatefulSets, DaemonSets,
    Jobs, CronJobs and bare pods), or a selection, with the counts C(kubectl get) shows (desired, current, ready,
    up-to-date, available), the conditions and revision the controllers keep on the nodes, and each pod with its node,
    phase, readiness, restarts, age, revision and container states.
  - B(One task for the whole fleet.) The task runs once on the controller and reads every node in parallel, in one
    module call per node. Nothing else is kept anywhere; the data comes from the nodes themselves - the pods' systemd
    units (one C(systemctl list-units) per node), the hook's runtime files and the controllers' records stored with
    the pods - so what it shows is what runs.
  - O(events=true) adds the pods' events in time order, read from the nodes' journals - systemd's own messages about
    each container unit (C(Started), C(Killed), C(Error), C(Completed), C(Restarted) with the restart counter,
    C(Killing) for a stop the node asked for) and the entries the node layer writes (C(SuccessfulCreate),
    C(SuccessfulDelete), C(Updated) and C(RolloutStep) for each controller step on the node, C(Unhealthy) for a failed
    probe, C(BackOff) for a crash-loop delay). A pod created on one node after it ran on another is C(Rescheduled).
  - Unreachable nodes are reported in RV(unreachable_nodes) and in the table; the task does not fail for them. Their
    pods cannot be seen and are not counted.
  - The module changes nothing and never reports C(changed). The same module runs on each node as the reading side of
    the action; run on a host by itself it returns that host's raw data.
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
      - The task runs once for the play, whatever the number of hosts (see the notes of M(hostfleet.workloads.deployment)).
  platform:
    platforms: posix
    support: full
options:
  kind:
    description:
      - Only workloads of these kinds. All kinds when omitted. V(Pod) stands for pods started with
        M(hostfleet.workloads.pod) directly, grouped by their owner.
    type: list
    elements: str
    choices: [Deployment, ReplicaSet, ReplicationController, StatefulSet, DaemonSet, Job, CronJob, Pod]
  name:
    description: Only the workload(s) with this name.
    type: str
  namespace:
    description:
      - Only the workloads (and their pods) of this namespace. Every namespace when omitted (as C(kubectl get -A)); the
        table then has a C(NAMESPACE) column once anything is outside V(default). Each workload, pod and event
        carries its C(namespace), and names are the Kubernetes names (without the nodes' C(<namespace>_) prefix).
    type: str
  selector:
    description:
      - A Kubernetes label selector (C(matchLabels), C(matchExpressions)); only the workloads whose pods (or, with no
        pod, whose current pod template) carry matching labels.
    type: dict
  nodes:
    description:
      - An inventory pattern (a group name, C(web:&gpu), C(!node3)...) that narrows the nodes read among the play's
        hosts. Default, all the play's hosts.
    type: str
  events:
    description: Also return the pods' events from the nodes' journals, in time order, and list them in the table.
    type: bool
    default: false
  events_since:
    description:
      - How far back events are read, as a duration (V(90s), V(15m), V(2h), V(1d); a bare number is seconds).
    type: raw
    default: 1h
  state_dir:
    description: The node layer's state directory on the nodes.
    type: path
    default: /var/lib/hostfleet
notes:
  - "The task runs once per play (C(BYPASS_HOST_LOOP)): use C(run_once: true) with C(register)."
  - C(desired) is what the workload's controller last stored on the nodes (a Deployment's C(replicas), the eligible
    nodes of a DaemonSet, a Job's C(completions)); it is null where the controller's record does not keep it.
  - C(available) counts the pods ready for at least the workload's C(minReadySeconds) (as its controller stored it), as
    the controller's own status counts them.
  - The playbook C(hostfleet.workloads.get) prints the table (C(ansible-playbook hostfleet.workloads.get -i inventory)).
seealso:
  - module: hostfleet.workloads.pod_info
  - module: hostfleet.workloads.pod_logs
"""

EXAMPLES = r"""
- name: What runs where
  hosts: web
  gather_facts: false
  tasks:
    - name: Read the fleet
      hostfleet.workloads.workload_info:
      register: fleet
      run_once: true

    - name: Print it like kubectl get
      ansible.builtin.debug:
        msg: "{{ fleet.table }}"
      run_once: true

- name: One Deployment with the events of the last 10 minutes
  hosts: web
  gather_facts: false
  tasks:
    - name: Read the api Deployment
      hostfleet.workloads.workload_info:
        kind: [Deployment]
        name: api
        events: true
        events_since: 10m
      register: api
      run_once: true

    - name: Every pod of api is ready
      ansible.builtin.assert:
        that: api.workloads[0].ready == api.workloads[0].desired
      run_once: true
"""

RETURN = r"""
workloads:
  description: The selected workloads, sorted by kind and name.
  returned: always
  type: list
  elements: dict
  contains:
    kind: {description: "C(Deployment), C(ReplicaSet), C(ReplicationController), C(StatefulSet), C(DaemonSet), C(Job), C(CronJob) or C(Pod).", type: str}
    name: {description: "The workload's name.", type: str}
    namespace: {description: "The workload's namespace.", type: str, sample: default}
    desired: {description: "Desired pods (completions for a Job); null when the record does not keep it.", type: int}
    current: {description: "Pods that are not finished, on the reachable nodes.", type: int}
    ready: {description: "Ready pods.", type: int}
    up_to_date: {description: "Pods of the current revision.", type: int}
    available: {description: "Pods ready for at least its C(minReadySeconds) (the controller's C(availableReplicas)).", type: int}
    revision: {description: "The current revision number (null when there is none).", type: int}
    conditions: {description: "The conditions the controller stored, times in RFC 3339.", type: list, elements: dict}
    status:
      description:
        - Kind-specific; empty for the other kinds.
        - A Job's, with the names and meaning of the status M(hostfleet.workloads.job) returns, from the Job's record -
          C(active) (pods started and not ended), C(succeeded), C(failed) (pods counted so), with C(completionMode=Indexed)
          C(completedIndexes) and with C(backoffLimitPerIndex) C(failedIndexes) (intervals, C(1,3-5)), C(startTime),
          C(completionTime) - and C(completions), C(status) (C(Complete), C(Failed), C(Suspended) or C(Running)) and
          C(duration) (seconds).
        - A CronJob's C(schedule), C(timeZone), C(suspend), C(active), C(lastScheduleTime), C(lastSuccessfulTime) and C(runs).
      type: dict
    nodes: {description: "Nodes that run its pods.", type: list, elements: str}
    created: {description: "When its first revision (or first pod) was created (RFC 3339).", type: str}
    age: {description: "Seconds since it was created.", type: float}
    pods:
      description: Its pods, sorted by node and name.
      type: list
      elements: dict
      contains:
        name: {description: "The pod's name.", type: str}
        namespace: {description: "The pod's namespace.", type: str, sample: default}
        node: {description: "The node it runs on.", type: str}
        phase: {description: "C(Pending), C(Running), C(Succeeded) or C(Failed).", type: str}
        status: {description: "What C(kubectl get pods) shows as STATUS (C(Running), C(CrashLoopBackOff), C(Completed), C(Init:0/2),
          C(Init:CrashLoopBackOff), C(PodInitializing)...).", type: str}
        ready: {description: "Whether every container is ready.", type: bool}
        ready_containers: {description: "Ready containers / containers as C(kubectl) shows it (C(1/1)), sidecars counted.", type: str}
        restarts: {description: "Restarts of its containers since the node started it.", type: int}
        age: {description: "Seconds since it was created.", type: float}
        created: {description: "When it was created (RFC 3339).", type: str}
        created_at: {description: "When it was created (epoch seconds, on the controller's clock).", type: float}
        ready_since: {description: "Since when it is ready (epoch seconds, on the controller's clock), or null.", type: float}
        owner: {description: "Its owner as the node records it (C(kind), C(name)).", type: dict}
        revision: {description: "The revision number of its template (null when unknown).", type: int}
        template_hash: {description: "The hash of its template.", type: str}
        labels: {description: "Its labels.", type: dict}
        pod_ip: {description: "Its address (C(status.podIP)): its own on the pod network, the node's on the host's network;
          null on a host's network when the node has no cluster network (M(hostfleet.workloads.cluster_network)).", type: str, sample: 10.244.1.5}
        host_ip: {description: "Its node's address (C(status.hostIP)) from the node's cluster network, or null without one.", type: str, sample: 10.77.3.11}
        containers: {description: "Per container: C(name), C(unit), C(unit_state) (systemd's active/sub state), C(state)
          (C(running), C(waiting) or C(terminated) with details), C(ready), C(restart_count), C(last_exit_code).", type: list, elements: dict}
        init_containers: {description: "Only for a pod with C(initContainers) - the same per init container, in order (as
          C(status.initContainerStatuses)).", type: list, elements: dict}
pods:
  description: Every selected pod (the pods of RV(workloads) together), sorted by node and name.
  returned: always
  type: list
  elements: dict
events:
  description: With O(events=true), the events of the selected workloads' pods, oldest first.
  returned: when O(events=true)
  type: list
  elements: dict
  contains:
    time: {description: "When (RFC 3339, with milliseconds).", type: str}
    timestamp: {description: "When (epoch seconds, on the controller's clock).", type: float}
    node: {description: "The node that recorded it.", type: str}
    type: {description: "C(Normal) or C(Warning).", type: str}
    reason: {description: "C(Started), C(Killed), C(Error), C(Completed), C(Restarted), C(Killing), C(BackOff), C(Unhealthy),
      C(SuccessfulCreate), C(SuccessfulDelete), C(Updated), C(RolloutStep), C(Rescheduled), C(Failed).", type: str}
    object: {description: "C(pod/<name>), or C(<kind>/<name>) for a rollout step.", type: str}
    pod: {description: "The pod (empty for a rollout step).", type: str}
    container: {description: "The container (may be empty).", type: str}
    owner: {description: "The workload, C(Kind/name), when known.", type: str}
    message: {description: "What happened.", type: str}
    count: {description: "For C(Restarted), systemd's restart counter.", type: int}
  sample:
    - {time: "2026-11-29T04:05:01.204Z", node: node1, type: Warning, reason: Killed, object: pod/web-6d5f-x2k9q,
       container: main, message: "Container main was killed by signal SIGKILL (killed)"}
    - {time: "2026-11-29T04:05:01.213Z", node: node1, type: Normal, reason: Restarted, object: pod/web-6d5f-x2k9q,
       container: main, count: 1, message: "Restarting container main (restart 1)"}
table:
  description: The same as text lines, one section per kind as C(kubectl get) prints it, then the pods, then the events.
  returned: always
  type: list
  elements: str
  sample:
    - "NAME             READY   UP-TO-DATE   AVAILABLE   REVISION   AGE"
    - "deployment/web   4/4     4            4           1          5m"
services:
  description:
    - The Services (M(hostfleet.workloads.service), kind Service in M(hostfleet.workloads.apply)) as the nodes hold them
      (the copy most nodes hold), as C(kubectl get svc,endpoints) lists them; none when O(kind) or O(selector) is given.
    - C(namespace), C(name), C(type), C(cluster_ip) (null when headless), C(ports), C(ports_text) (C(80/TCP),
      C(80:30080/TCP)), C(selector), C(endpoints) (C(pod), C(node), C(ip), C(ready), C(ports)), C(ready_addresses)
      and C(not_ready_addresses) (C(ip:port)).
  returned: always
  type: list
  elements: dict
unreachable_nodes:
  description: Nodes that could not be read, with the reason.
  returned: always
  type: dict
node_labels:
  description:
    - Each node's labels, as the workload modules place pods with them (what C(kubectl get nodes --show-labels)
      shows), from the inventory's C(hostfleet_node_labels), C(hostfleet.io/group.<group>), C(kubernetes.io/hostname), and the
      well-known and feature labels of the node's facts (C(kubernetes.io/os), C(kubernetes.io/arch),
      C(feature.node.kubernetes.io/...)).
  returned: always
  type: dict
  sample: {node1: {kubernetes.io/arch: amd64, kubernetes.io/hostname: node1, kubernetes.io/os: linux}}
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostfleet.workloads.plugins.module_utils.job import cron_run, cron_setup
from ansible_collections.hostfleet.workloads.plugins.module_utils.network import config as network_config
from ansible_collections.hostfleet.workloads.plugins.module_utils.network import services
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, events, node_facts, runner, systemctl
from ansible_collections.hostfleet.workloads.plugins.module_utils.observe_args import WORKLOAD_INFO_ARGS


def read_node(state_dir, with_events, events_since):
    """Everything this node holds about its workloads: pods with status, controllers' records, CronJobs, events."""
    host = converge.Host(state_dir)
    result = {
        # status.hostIP (and podIP on the host's network) from the node's cluster network, when it has one.
        "pods": converge.observe(host, host_ip=runner._host_ip(network_config.read_node_config(state_dir))),
        "owner_records": runner._all_owner_records(host),
        "cronjobs": {},
        # The Service files every host holds (issue 14): workload_info lists them as `kubectl get svc,endpoints`.
        "services": services.load_services(state_dir),
    }
    try:
        names = sorted(os.listdir(os.path.join(state_dir, "cronjobs")))
    except FileNotFoundError:
        names = []
    for name in names:
        config = cron_run.read_json(os.path.join(cron_run.cron_dir(state_dir, name), "cronjob.json"))
        if config is not None:
            result["cronjobs"][name] = dict(cron_setup.report(state_dir, name, config.get("job")), config=config)
    if with_events:
        result["events"] = events.read_events(since=time.time() - events_since)
    # What the node is (cached for its boot): the action shows the node's labels from it.
    result["node_facts"] = node_facts.facts()
    result["observed_at"] = time.time()
    return result


def main():
    module = AnsibleModule(argument_spec=WORKLOAD_INFO_ARGS, supports_check_mode=True)
    params = module.params
    try:
        since = events.parse_duration(params["events_since"])
    except events.EventError as exc:
        module.fail_json(msg=f"events_since: {exc}")
    try:
        data = read_node(params["state_dir"], params["events"], since)
    except (systemctl.SystemctlError, OSError, ValueError) as exc:
        module.fail_json(msg=f"reading the node failed: {exc}")
    module.exit_json(changed=False, **data)


if __name__ == "__main__":
    main()
