# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every fleet-wide workload module shares: where it runs, how long it waits, what a run-once task means."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  nodes:
    description:
      - An inventory pattern (a group name, C(web:&gpu), C(!node3)...) that narrows the nodes among the play's hosts.
        Default, all the play's hosts.
    type: str
  wait_timeout:
    description: How many seconds to wait before failing.
    type: int
    default: 600
  state_dir:
    description: The node layer's state directory on the nodes.
    type: path
    default: /var/lib/hostfleet
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: full
    details:
      - The task runs once for the play, whatever the number of hosts; see the notes.
  platform:
    platforms: posix
    support: full
notes:
  - "The task runs once per play (C(BYPASS_HOST_LOOP)): C(register) stores the result on the first host only (use
    C(run_once: true) to make that explicit); PLAY RECAP counts it on the first host; the C(free) strategy refuses it;
    with C(serial), it only sees the hosts of the current batch, so do not use C(serial) with workload tasks; task
    keywords such as C(environment) are templated once, with the first host's variables; a failure fails the task
    for every host."
  - Progress is printed while a rollout runs, one line per step.
  - "One writer per workload: the task holds the workload's lease on a strict majority of its nodes while it runs
    (kept on the nodes, renewed with every observation, released at the end; see M(hostfleet.workloads.pod_info)'s
    O(hostfleet.workloads.pod_info#module:lease)). Another run of the same workload, from any control machine, fails
    at once, changing nothing, with a message naming the holder (user, host, pid, playbook, task); the lease of a run
    that was killed expires 30 s after its last renewal. With C(--check) no lease is taken; a held one is reported
    as a warning. A CronJob task takes no lease."
  - "Node labels come from the host variable C(hostfleet_node_labels) (a dict), plus C(kubernetes.io/hostname=<inventory
    name>) and C(hostfleet.io/group.<group>=true) for each inventory group, plus the labels a kubelet and Node Feature
    Discovery set, from facts the task's first look at each node reads (kept on the host for its boot in
    C(/run/hostfleet/node-facts.json)): C(kubernetes.io/os), C(kubernetes.io/arch) (Go's names: amd64, arm64, ...) and
    their C(beta.kubernetes.io/) aliases, C(node.kubernetes.io/instance-type) (the DMI product name when it is a
    label value), and C(feature.node.kubernetes.io/) C(cpu-cpuid.<FLAG>) (AVX2, AVX512F, AESNI, ...),
    C(cpu-model.vendor_id), C(kernel-version.full/major/minor/revision), C(pci-<class>_<vendor>.present) for display
    controllers, co-processors and accelerators (classes 03, 0b40, 12, e.g. C(pci-0300_10de.present) for an NVIDIA
    GPU) and C(system-os_release.ID/VERSION_ID). An inventory label of the same key wins; a fact that cannot be read
    gives no label."
  - "Capacity comes from C(hostfleet_node_capacity): C(cpu), C(memory), C(pods), C(ephemeral-storage) (unlimited when
    not given) and extended resources such as C(nvidia.com/gpu) (none on a node whose capacity does not name it, as in
    Kubernetes), checked against the pods' requests (a limit alone is the request)."
  - "Node taints come from the host variable C(hostfleet_node_taints), in Kubernetes' form (a list of C(key),
    C(value), C(effect)): a pod is placed on a node only if it tolerates its C(NoSchedule) and C(NoExecute) taints,
    a node with C(PreferNoSchedule) taints it does not tolerate is taken only when no other fits, and a running pod
    that does not tolerate a C(NoExecute) taint is evicted (after its C(tolerationSeconds), counted from the first
    run that saw the taint) and replaced by its controller. DaemonSet pods tolerate what Kubernetes adds to them.
    See C(docs/podspec-taints.md)."
"""

    # The kinds that replace pods of unreachable nodes (Deployment, ReplicaSet): hostfleet.workloads.fleet.node_grace
    NODE_GRACE = r"""
options:
  node_grace_seconds:
    description:
      - How many seconds the pods of a node that cannot be reached (SSH fails, or fails while the task acts on it)
        are waited for before they are replaced on other nodes. Until then they count as unavailable against the
        budget and are reported as unknown (C(status.unknownReplicas), C(unknown_pods)), never as gone, and the node
        is asked again every few seconds; a node that answers again keeps its pods.
      - The time a node was first found unreachable is kept in the workload's record on the other nodes, so the
        grace runs on across runs (the controller role's next run replaces the pods once it has run out).
      - The default is Kubernetes' node-monitor grace period. A pod's own toleration of the
        C(node.kubernetes.io/unreachable) taint with C(tolerationSeconds) replaces this value for that pod (without
        C(tolerationSeconds) the pod is never replaced).
    type: int
    default: 40
"""
