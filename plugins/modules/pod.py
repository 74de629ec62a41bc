#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pod
short_description: Converge the pods of one owner on one host as systemd units
version_added: 0.1.0
description:
  - The node layer of C(hostfleet.workloads). In one call, makes the set of pods that an owner (a workload) has on
    this host exactly O(pods). New pods are created and started, pods whose spec changed are restarted (only the
    containers that changed), pods no longer listed are stopped and removed, and nothing else is touched.
  - Each container of a pod runs as a process under a systemd service C(hf-<pod>.<container>.service). Probes are
    systemd timers that run a small hook, so liveness restarts need no daemon. A crash-looping container keeps being
    retried with a capped backoff (the first restart at once, then 10 s doubling up to 5 min, reset after 10 min of
    running), instead of systemd's start limit that would leave it failed for good.
  - Pod specs use Kubernetes field names (a PodSpec subset). Unknown fields are refused with their path, names must
    be DNS-1123 labels, and nothing is changed on the host when any pod is invalid.
  - Unit files are rendered deterministically and written atomically; systemd is reloaded at most once per call and
    not at all when nothing changed; state is read with one C(systemctl list-units).
  - Pod records, environment files (root-only) and emptyDir volumes live under O(state_dir). Persistent volumes
    (C(persistentVolumeClaim) volumes) are directories C(<state_dir>/volumes/<claimName>) that are never deleted,
    unless named in O(delete_volumes).
  - Workload modules such as M(hostfleet.workloads.deployment) call this module on every node; use it directly for
    pods that belong to no workload.
author:
  - hostfleet.workloads developers (@hostfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports what would be created, updated and deleted, and touches nothing.
  diff_mode:
    support: full
    details: Shows the unit file changes; environment files are summarised, never shown.
  idempotent:
    description: Whether a re-run with the same arguments changes nothing.
    support: full
    details: A re-run with the same pods reports no change, restarts nothing and does not reload systemd.
  platform:
    platforms: posix
    support: full
options:
  owner:
    description:
      - The name of the workload that owns the pods (a DNS-1123 label). The set of pods of this owner on the host is
        made exactly O(pods).
    type: str
    required: true
  namespace:
    description:
      - The namespace of O(owner), of the pods in O(pods) and of the names in O(remove) (a DNS-1123 label). The node
        names them C(<namespace>_<name>) outside V(default) (see docs/architecture.md, "Namespaces"); the pods still
        see their own name as hostname and C(POD_NAME), and C(fieldRef) C(metadata.namespace) gives the namespace.
      - When omitted, names are taken as the node names them (a workload task passes C(<namespace>_<name>) itself).
    type: str
  owner_kind:
    description:
      - The kind of the owner. Together with O(owner) it identifies the pods' owner.
    type: str
    default: Pod
    choices: [Pod, Deployment, ReplicaSet, ReplicationController, StatefulSet, DaemonSet, Job, CronJob]
  pods:
    description:
      - The pods this owner must have on the host. Each item has C(name) (a DNS-1123 label, unique on the host),
        optional C(labels), C(annotations), C(revision) (an opaque revision id kept with the pod, for controllers),
        and C(spec), a Kubernetes PodSpec.
      - "Supported PodSpec fields: C(containers), C(initContainers) (containers with the same fields, run one after
        the other to completion before the app containers, again only when the whole pod starts again; one with
        C(restartPolicy: Always) is a sidecar: started in order with them, kept running beside the app containers,
        stopped after them, and stopped once the app containers of a V(Never)/V(OnFailure) pod are done; plain ones
        take no probes nor C(lifecycle); see docs/podspec-init-containers.md), C(restartPolicy) (Always, OnFailure, Never; default Always),
        C(terminationGracePeriodSeconds) (default 30), C(volumes) (C(hostPath), C(emptyDir), C(persistentVolumeClaim),
        C(configMap)/C(secret) with C(items) and modes, C(downwardAPI), C(projected); see docs/podspec-volumes.md),
        C(serviceAccountName) (kept only when a C(fieldRef) reads it),
        C(securityContext) (C(runAsUser), C(runAsGroup), C(runAsNonRoot), C(fsGroup), C(fsGroupChangePolicy),
        C(supplementalGroups), Kubernetes' safe C(sysctls), C(seccompProfile), C(appArmorProfile); see
        docs/podspec-security.md), C(hostPID), C(hostIPC), C(shareProcessNamespace) (process pods share their host's
        PID and IPC namespaces whatever these say), C(hostname), C(activeDeadlineSeconds),
        C(runtimeClassName) (V(process) or V(podman), see below), C(hostNetwork) (without a pod network, see
        O(pod_network), only V(true): every pod uses its host's network; with one, V(false) by default; V(true) then makes
        the containers' C(containerPort)s host ports, one pod per host each; either way the pod's containers share one
        network and reach each other on C(localhost)), and
        the scheduling fields C(nodeSelector), C(affinity), C(topologySpreadConstraints), C(tolerations),
        C(priorityClassName), which are kept for controllers and have no effect on one host (the workload modules
        and C(apply) place pods with them; C(tolerations) against the nodes' C(hostfleet_node_taints))."
      - "Supported container fields: C(name), C(command) (required, an absolute path first), C(args) (with
        Kubernetes C($(VAR\\)) expansion), C(env) (C(valueFrom): C(configMapKeyRef), C(secretKeyRef), or the downward
        API's C(fieldRef) of C(metadata.name), C(metadata.namespace), C(metadata.uid), C(metadata.labels['<key>']),
        C(metadata.annotations['<key>']), C(spec.nodeName), C(spec.serviceAccountName), C(status.podIP(s)),
        C(status.hostIP(s)) (the addresses need the node's node.json), and C(resourceFieldRef) with C(divisor)),
        C(envFrom) (C(configMapRef) reads C(<state_dir>/configmaps/<name>.env),
        C(secretRef) reads C(<state_dir>/secrets/<name>.env), and the extension C(fileRef: {path}) reads any
        KEY=VALUE file on the host), C(workingDir), C(securityContext) (also C(capabilities), C(allowPrivilegeEscalation),
        C(readOnlyRootFilesystem), C(privileged), C(procMount) V(Default); systemd directives for process pods, podman
        options for image pods), C(resources) (C(requests) kept for placement;
        C(limits.cpu) and C(limits.memory) become C(CPUQuota=) and C(MemoryMax=), the extension C(limits.pids) becomes
        C(TasksMax=); a C(limits.cpu) below V(10m) is clamped to V(10m), the kubelet's smallest quota, with a warning;
        C(ephemeral-storage) and extended resources (C(<domain>/<name>) such as C(nvidia.com/gpu): whole numbers,
        requests equal to limits) are for placement only; C(hugepages-<size>) is refused), C(ports), C(livenessProbe),
        C(readinessProbe), C(startupProbe) (C(exec), C(httpGet), C(tcpSocket), C(grpc) (the gRPC health-checking
        protocol, from the host, to the pod's address), with Kubernetes defaults), C(lifecycle.postStart) and C(lifecycle.preStop), C(volumeMounts)
        (bind mounts into the service's mount namespace, with C(readOnly) and C(subPath))."
      - "Runtimes: without C(image), containers are host processes under systemd (C(runtimeClassName: process)). A
        container with C(image) makes the pod an OCI container pod (C(runtimeClassName: podman), inferred; every
        container of the pod then needs an C(image)): each container is C(podman run) as the main process of its
        systemd unit (conmon, C(Type=notify)), so restart, stop grace, probes, resources (applied by podman), env (from
        the unit's environment file, never on the command line), volumes and volumeMounts mean the same as for process
        containers. C(command) replaces the image's entrypoint and C(args) its cmd, as in Kubernetes. C(image) is an OCI
        reference (V(registry/name:tag), V(name@sha256:...)); C(imagePullPolicy) is V(Always), V(IfNotPresent) or
        V(Never) (default V(Always) for the tag V(latest) or no tag, else V(IfNotPresent)) and maps to C(podman run
        --pull). Containers use the host's network: a C(hostPort) must equal its C(containerPort). Exec probes and
        lifecycle hooks of image containers run inside the container (C(podman exec)). C(imagePullSecrets) names
        Secrets of the pod's namespace of type C(kubernetes.io/dockerconfigjson) (as M(hostfleet.workloads.config_data)
        wrote them on the host): their credentials are podman's auth for this pod's pulls only (a root-only file under
        C(/run/hostfleet), read again at each start; never in a unit, a command line or the output); a missing one is
        named in the pull's error."
    type: list
    elements: dict
    default: []
  state:
    description:
      - V(present) makes the owner's pods exactly O(pods); V(absent) removes every pod of the owner (O(pods) must be
        empty). Persistent volume data is kept either way.
    type: str
    default: present
    choices: [present, absent]
  prune:
    description:
      - With V(true), the owner's pods on the host become exactly O(pods). With V(false), pods of the owner that are
        not listed stay as they are, and only those named in O(remove) are removed (controllers use this to change a
        few pods per step).
    type: bool
    default: true
  remove:
    description:
      - Names of the owner's pods (DNS-1123 labels) to remove, whatever O(prune) says.
    type: list
    elements: str
    default: []
  delete_volumes:
    description:
      - Names of persistent volumes (C(persistentVolumeClaim) claim names, DNS-1123 labels) to delete with their data,
        after the pods that go are stopped. Refused for a volume that a pod staying on the host uses. Nothing else ever
        deletes a persistent volume; controllers pass this only when a retention policy says V(Delete).
    type: list
    elements: str
    default: []
  owner_record:
    description:
      - A JSON document that controllers keep with the owner on the host (revision history, rollout progress).
        Stored when given and different; returned as RV(owner_record).
    type: dict
  state_dir:
    description:
      - The directory that holds pod records, environment files, emptyDir and persistent volumes, and the hook; an
        absolute path without C(.) or C(..) components.
    type: path
    default: /var/lib/hostfleet
  wait:
    description:
      - Wait until every pod of the owner is ready (or, for pods that run to completion, finished).
    type: bool
    default: false
  wait_timeout:
    description:
      - How many seconds O(wait) waits before failing.
    type: int
    default: 120
  pod_network:
    description:
      - "The node's pod network. Without it, the node's own when it has one (C(<state_dir>/network/node.json), written by
        M(hostfleet.workloads.cluster_network), gives C(cidr) and C(bridge)), else every pod uses the host's network, as
        always. A pod that runs on the host's network and whose spec did not change stays there as it runs when the node
        gets its pod network (no restart); a changed spec or a new pod joins the pod network."
      - "With it, each pod that does not say C(hostNetwork: true) gets its own network namespace C(/run/netns/hf-<pod>)
        with one address from O(pod_network.cidr) on C(eth0), loopback up and a default route via the bridge
        O(pod_network.bridge) (made on the host if missing, with the CIDR's first address as the gateway). The host
        reaches every pod at its address; pods on the bridge reach each other. The namespace is made by a oneshot unit
        C(hf-<pod>._netns.service) (C(ip netns add), a veth pair) that the containers bind to (C(NetworkNamespacePath=),
        or C(podman run --network=ns:...)): it outlives container restarts and is removed with the pod."
      - A pod keeps its address across restarts and re-runs (it is kept in the pod's record); removing the pod frees it.
        The call fails, naming O(pod_network.cidr), when no address is free. C(httpGet) and C(tcpSocket) probes and
        handlers with the default host connect to the pod's address. C(hostPort) is not supported yet on the pod
        network. Routes between hosts, Services and DNS are not part of this option yet (see docs/network.md).
    type: dict
    suboptions:
      cidr:
        description:
          - The node's pod CIDR, an IPv4 network (/8 to /29) such as V(10.244.3.0/24). Its first address is the
            bridge's (the pods' gateway); pods get the next ones.
        type: str
        required: true
      bridge:
        description:
          - The name of the host's bridge the pods' veth pairs join (1-15 of C([a-z0-9_-]), a letter first).
        type: str
        default: hf0
  lease:
    description:
      - The workload's lease that the calling run holds (workload modules pass it with every act; see
        M(hostfleet.workloads.pod_info) for its fields). The call changes nothing and fails with a message naming the
        current holder unless the lease is, or can now be, this caller's on this host (C(op) must be V(acquire)).
      - Without it, the call changes nothing while another run holds the owner's lease here.
    type: dict
  node_facts:
    description:
      - Also return C(node_facts), what this host is, as M(hostfleet.workloads.pod_info) does (its O(node_facts)).
    type: bool
    default: false
notes:
  - "Limits: systemd enforces C(MemoryMax=) and C(CPUQuota=) only where the cgroup controllers are available."
  - "Exec probes and lifecycle hooks of process containers run inside the container, as Kubernetes runs them, seeing its
    volumes at their mount paths: hooks are commands of the container's unit (its mount namespace, user, working
    directory and environment); a probe joins the namespaces of the container's main process, with its user and
    groups, the container's C(workingDir) and environment (no running process, the probe fails). Those of image
    containers run inside the container through C(podman exec)."
  - "Image containers need podman (4.3 or later) on the host; images come from the registries the host's podman knows, or
    from local images (C(imagePullPolicy: Never))."
  - "What a pod spec says is what systemd and podman read back, or the spec is refused naming the field: the program of
    every exec command (C(command[0]) of a process container, exec probes, C(lifecycle) exec) is an absolute,
    normalised path (probes and hooks may also give a bare command name), without quotes, backslashes, control
    characters or a leading C(+ - @ ! :) (systemd's prefixes); C(workingDir) must not end with a backslash; paths may
    hold quotes, C(:), C(,), C(%) and spaces (podman volumes are C(--mount) options). Limits: 64 KiB (UTF-8) per
    command or C(args) word, 128 KiB for C(command) and C(args) together and for each exec command, 4095 bytes per path
    (C(subPath) included) and 255 per path component; Unicode noncharacters (such as U+FFFF) are refused everywhere."
  - The output of a container is in the journal, C(journalctl -u hf-<pod>.<container>.service).
seealso:
  - module: hostfleet.workloads.pod_info
"""

EXAMPLES = r"""
- name: Run two pods of a small web app on every host of the group
  hostfleet.workloads.pod:
    owner: web
    pods:
      - name: web-a
        labels: {app: web}
        spec:
          containers:
            - name: http
              command: [/usr/bin/python3, -m, http.server, "$(PORT)"]
              env:
                - {name: PORT, value: "8080"}
              readinessProbe:
                httpGet: {port: 8080, path: /}
                periodSeconds: 2
              resources:
                limits: {memory: 128Mi, cpu: 500m}
      - name: web-b
        labels: {app: web}
        spec:
          containers:
            - name: worker
              command: [/bin/sh, -c, "while sleep 5; do date >> /data/ticks; done"]
              volumeMounts:
                - {name: data, mountPath: /data}
          volumes:
            - name: data
              persistentVolumeClaim: {claimName: web-data}
    wait: true

- name: Two pods listening on the same port on one host, each in its own network namespace
  hostfleet.workloads.pod:
    owner: api
    pod_network: {cidr: 10.244.3.0/24}
    pods:
      - name: api-a
        spec:
          containers:
            - {name: http, command: [/usr/bin/python3, -m, http.server, "8080"], readinessProbe: {tcpSocket: {port: 8080}}}
      - name: api-b
        spec:
          containers:
            - {name: http, command: [/usr/bin/python3, -m, http.server, "8080"], readinessProbe: {tcpSocket: {port: 8080}}}

- name: Remove every pod of the owner (the web-data volume is kept)
  hostfleet.workloads.pod:
    owner: web
    state: absent
"""

RETURN = r"""
pods:
  description: The owner's pods on the host after the call, with their status.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: "The pod name, as the node names it (C(<namespace>_<name>) outside V(default)).", type: str, sample: web-a}
    namespace: {description: "The pod's namespace.", type: str, sample: default}
    owner: {description: "The owner, as C(kind) and C(name).", type: dict, sample: {kind: Pod, name: web}}
    labels: {description: "The pod's labels.", type: dict}
    annotations: {description: "The pod's annotations.", type: dict}
    revision: {description: "The revision id given with the pod.", type: str}
    spec_hash: {description: "A hash of the normalised pod spec.", type: str}
    created: {description: "When the pod was created on this host (epoch seconds).", type: float}
    phase: {description: "Pending, Running, Succeeded or Failed.", type: str, sample: Running}
    ready: {description: "Whether every container is ready.", type: bool}
    ready_since: {description: "Since when the pod is ready (epoch seconds), or null.", type: float}
    restart_count: {description: "Restarts of all containers since the pod was (re)started by this module.", type: int}
    last_exit_code: {description: "The most recent exit code of any container, or null.", type: int}
    units: {description: "The containers' systemd service names.", type: list, elements: str}
    pod_ip: {description: "The pod's address (C(status.podIP)): its own on the pod network (see O(pod_network)), the node's
      (RV(pods[].host_ip)) on the host's network, null there when the node has no node.json.", type: str, sample: 10.244.3.2}
    host_ip: {description: "The node's address (C(status.hostIP)) from its node.json, or null without one.", type: str, sample: 10.77.3.11}
    containers:
      description: Per container, C(name), C(unit), C(unit_state), C(state) (running, waiting with a reason such as
        CrashLoopBackOff, or terminated with exitCode and reason), C(ready), C(ready_since), C(restart_count),
        C(last_exit_code), C(last_exit_reason), C(last_exit_at); for image containers also C(image) and
        C(container_id) (podman's ID of the running container, or null).
      type: list
      elements: dict
    requests: {description: "Summed resource requests, C(cpu) in millicores and C(memory) in bytes.", type: dict}
    host_ports: {description: "The pod's host ports as [protocol, port] pairs.", type: list, elements: list}
    reason: {description: "Why a container waits (C(ErrImagePull), C(ImagePullBackOff), C(ErrImageNeverPull), C(CrashLoopBackOff)), or null.", type: str}
    init_containers:
      description:
        - Only for a pod with C(initContainers) - per init container, in order, the keys of RV(pods[].containers) (as
          Kubernetes' C(status.initContainerStatuses)); a plain one is C(running) while it runs, C(terminated) with
          reason C(Completed) once it exited 0; a sidecar is like an app container.
      type: list
      elements: dict
    init_status:
      description:
        - Only for a pod with C(initContainers) - what C(kubectl get pods) shows while it initializes - C(Init:N/M) (N of
          M init containers done), C(Init:CrashLoopBackOff), C(Init:Error) (with restartPolicy Never the pod is then
          Failed) and other C(Init:<reason>), C(PodInitializing) until the app containers run - or null once initialized.
      type: str
      sample: Init:0/2
    initialized: {description: "Only for a pod with C(initContainers): whether they are done (Kubernetes' C(Initialized)).", type: bool}
    sidecars: {description: "Only for a pod with C(initContainers): the names of its sidecars (init containers with C(restartPolicy: Always)).",
      type: list, elements: str}
    message: {description: "The detail of that reason, or null.", type: str}
created: {description: "Pods that were created.", returned: always, type: list, elements: str}
updated: {description: "Pods whose containers were restarted because their spec changed.", returned: always, type: list, elements: str}
relabelled: {description: "Pods whose labels, annotations or revision changed (no restart).", returned: always, type: list, elements: str}
deleted: {description: "Pods that were removed.", returned: always, type: list, elements: str}
started: {description: "Unchanged pods whose stopped containers were started again.", returned: always, type: list, elements: str}
daemon_reload: {description: "Whether systemd was (or would be) reloaded.", returned: always, type: bool}
volumes_deleted: {description: "Persistent volumes that were (or would be) deleted.", returned: always, type: list, elements: str}
owner_record: {description: "The owner's stored record (see O(owner_record)), or null.", returned: always, type: dict}
observed_at: {description: "The host's clock when the status was read (epoch seconds).", returned: always, type: float}
node_facts: {description: "What this host is (see M(hostfleet.workloads.pod_info)).", returned: "when O(node_facts=true)", type: dict}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.runner import POD_ARGS, run_pod


def main():
    run_pod(AnsibleModule(argument_spec=POD_ARGS, supports_check_mode=True))


if __name__ == "__main__":
    main()
