#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: job
short_description: A Kubernetes Job, run to completion over a group of hosts by one task
version_added: 0.2.0
description:
  - Runs the pods of a Kubernetes Job (batch/v1) on the play's hosts (or the O(nodes) among them), with Kubernetes'
    field names, defaults and meaning, until O(completions) pods succeed (or every index succeeds with
    O(completionMode=Indexed)), or the Job fails.
  - Pods are spread over the eligible nodes, those whose labels match the template's C(nodeSelector) and required
    node affinity and that have room for the pod's resource requests; see M(hostfleet.workloads.deployment) for
    where node labels and capacity come from. A pod that fits nowhere is reported in C(pending) with the reason and
    placed on a later step.
  - "Pods are named C(<job>-<index>-<attempt>) with O(completionMode=Indexed) and C(<job>-<n>) otherwise, and carry
    the labels C(batch.kubernetes.io/job-name) and C(job-name). With O(completionMode=Indexed), each pod also gets
    its index in the environment variable C(JOB_COMPLETION_INDEX) of every container and in the label and annotation
    C(batch.kubernetes.io/job-completion-index)."
  - With the template's C(restartPolicy=OnFailure), a failed container is restarted in place on its host, with the
    kubelet's crash-loop backoff (10 s doubling up to 5 min); the restarts count toward O(backoffLimit). With
    C(restartPolicy=Never), a failed pod stays failed and a new pod is started, maybe on another node, after a delay
    of 10 s doubling with each consecutive failure up to 6 min.
  - A pod on an unreachable (NotReady) node counts as failed, with the pod condition C(DisruptionTarget), and its
    index (or its share of the completions) runs again on another node. A O(podFailurePolicy) rule on
    C(onPodConditions) of type C(DisruptionTarget) with action C(Ignore) makes such a failure not count toward
    O(backoffLimit). When the node comes back, its pod is stopped.
  - A finished Job (condition C(Complete) or C(Failed)) is not run again by a re-run of the task with the same spec,
    which returns C(changed=false) and the recorded status. Use O(replace=true), or O(state=absent) then
    O(state=present), to run it again.
  - "The fields O(template), O(completions), O(completionMode), O(backoffLimitPerIndex), O(podFailurePolicy) and
    O(successPolicy) are immutable once the Job exists, as in Kubernetes: a change is refused (the task fails naming
    the field) unless O(replace=true), which deletes the old Job's pods and runs the new spec from the start. The
    other fields (O(parallelism), O(suspend), O(backoffLimit), O(maxFailedIndexes), O(activeDeadlineSeconds),
    O(ttlSecondsAfterFinished)) may change while the Job runs."
  - After O(ttlSecondsAfterFinished), the Job's pods are removed on the first task run after it has passed, but,
    unlike Kubernetes which deletes the Job object, a small record of the Job stays on the nodes so that a re-run of
    the same task does not start it again.
  - "B(One task for the whole fleet), run once on the controller as an action plugin. There is no controller between
    task runs: pods keep running on their hosts (and C(OnFailure) containers are restarted there), but failures are
    counted, new pods started and the deadline and TTL enforced only while a task runs. With O(wait=true) (the
    default) the task runs until the Job is C(Complete) or C(Failed), or O(wait_timeout) passes."
  - "Each pod's output is in its node's journal, one unit per container: C(journalctl -u hf-<pod>.<container>.service)
    (C(job_pods[].logs) gives the command for every pod)."
  - "O(state=absent) removes every pod of the Job on every node, and its record (persistent volume data is kept)."
author:
  - hostfleet.workloads developers (@hostfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - hostfleet.workloads.fleet
  - hostfleet.workloads.namespace
attributes:
  check_mode:
    support: full
    details:
      - Returns the first wave of pods and the node each would run on (later waves depend on the pods' exit codes),
        and touches nothing. With O(replace=true), says whether the Job would be deleted and run again.
  diff_mode:
    support: full
    details: Shows the pod template, stored and requested.
  idempotent:
    description: Whether a re-run with the same arguments changes nothing.
    support: partial
    details:
      - A re-run with the same spec does not run a finished Job again. With O(replace=true), a finished Job is deleted
        and run again on every run.
options:
  name:
    description:
      - The Job's name, a DNS-1123 label. Pods are named C(<name>-<index>-<attempt>) (Indexed) or C(<name>-<n>); a
        name too long for the suffix is shortened with a hash.
      - The names are readable, not random as in Kubernetes, so two Jobs may claim the same pod name (an Indexed Job
        C(work) and a Job C(work-1) both name a pod C(work-1-0)). The node refuses the second pod, naming the Job that
        owns it, and the task fails with that message; give such Jobs names that are not each other's prefix.
    type: str
    required: true
  state:
    description:
      - V(present) runs the Job (or, once it has finished, reports its status); V(absent) removes every pod of the
        Job and its record on every node (persistent volume data is kept), so that a later V(present) runs it again.
    type: str
    default: present
    choices: [present, absent]
  template:
    description:
      - The pod template (see M(hostfleet.workloads.pod) for the PodSpec fields). Required with O(state=present).
        Immutable.
      - C(spec.restartPolicy) must be V(OnFailure) or V(Never), as in Kubernetes (the pod default V(Always) is
        refused).
    type: dict
  completions:
    description:
      - The number of pods that must succeed for the Job to be C(Complete). With O(completionMode=Indexed), required,
        at most 100000, and each index from 0 to O(completions) - 1 must succeed once. Immutable.
      - Kubernetes' default, 1 when O(parallelism) is not set either. Unset with O(parallelism) set, the Job is a work
        queue, which is C(Complete) once one pod has succeeded and no pod runs any longer.
    type: int
  parallelism:
    description:
      - The largest number of pods running at once (never more than the completions still missing). V(0) runs no pod.
        Kubernetes' default, 1. May change while the Job runs; surplus pods are stopped (the highest indexes, or the
        newest pods).
    type: int
  completionMode:
    description:
      - V(NonIndexed), the pods are interchangeable and the Job is C(Complete) when O(completions) pods have succeeded.
      - V(Indexed), each pod has an index from 0 to O(completions) - 1 (in C(JOB_COMPLETION_INDEX)), pending indexes
        start lowest first, and the Job is C(Complete) when every index has succeeded once (C(status.completedIndexes)).
      - Immutable.
    type: str
    default: NonIndexed
    choices: [NonIndexed, Indexed]
  backoffLimit:
    description:
      - The number of retries before the Job is C(Failed) with the reason C(BackoffLimitExceeded), all its pods
        stopped. The Job fails when more pods than this have failed (failures ignored by O(podFailurePolicy) do not
        count), or, with C(restartPolicy=OnFailure), when the containers' restarts reach it.
      - Kubernetes' default, 6, or 2147483647 (no limit for the Job as a whole) with O(backoffLimitPerIndex).
    type: int
  backoffLimitPerIndex:
    description:
      - With O(completionMode=Indexed) and C(restartPolicy=Never) only. The number of retries of each index; an index
        that fails once more is marked failed (C(status.failedIndexes)) and not retried, while the other indexes go on.
        The Job ends C(Failed) with the reason C(FailedIndexes) once every index has succeeded or failed. The retry
        delay then counts per index. Unset by default (the Job's O(backoffLimit) counts every failure). Immutable.
    type: int
  maxFailedIndexes:
    description:
      - With O(backoffLimitPerIndex) only; at most O(completions). When more indexes than this have failed, the Job
        is C(Failed) at once with the reason C(MaxFailedIndexesExceeded). Unset by default (no limit).
    type: int
  podFailurePolicy:
    description:
      - With C(restartPolicy=Never) only. C(rules), at most 20, matched in order against each failed pod; the first
        that matches decides. Unset by default (every failure counts). Immutable.
      - "C(action): V(FailJob) (the Job is C(Failed) at once with the reason C(PodFailurePolicy)), V(FailIndex) (the
        index fails without more retries; needs O(backoffLimitPerIndex)), V(Ignore) (the failure does not count
        toward O(backoffLimit) and the pod is replaced) or V(Count) (counted as usual)."
      - "Exactly one of C(onExitCodes), with C(containerName) (optional, default any container), C(operator) V(In) or
        V(NotIn) and C(values), distinct exit codes from 0 to 255 (V(0) not with V(In)); or C(onPodConditions), a list
        of C(type) and C(status) (default V(True)). The only pod condition set here is C(DisruptionTarget), on a pod
        whose node became unreachable."
    type: dict
  successPolicy:
    description:
      - With O(completionMode=Indexed) only. C(rules), 1 to 20, each with C(succeededIndexes) (indexes and intervals
        such as V(0,2-4)) and/or C(succeededCount). The Job is C(Complete) as soon as one rule is met (the condition
        C(SuccessCriteriaMet), the reason C(SuccessPolicy)), and its remaining pods are stopped. Unset by default
        (every index must succeed). Immutable.
    type: dict
  activeDeadlineSeconds:
    description:
      - The number of seconds, from C(status.startTime), after which the Job is C(Failed) with the reason
        C(DeadlineExceeded) and its pods are stopped, whatever O(backoffLimit) says. Greater than 0. Unset by default
        (no deadline). Suspending the Job clears C(startTime), so the count starts again on resume.
    type: int
  ttlSecondsAfterFinished:
    description:
      - The number of seconds after the Job finished (C(Complete) or C(Failed)) after which its pods are removed,
        on the first task run after that (V(0), at once). Unlike Kubernetes, a small record of the Job stays on the
        nodes, so a re-run of the task does not start the Job again. Unset by default (the pods are kept).
    type: int
  suspend:
    description:
      - V(true) stops the Job's active pods (not counted as failures) and starts no new ones; the Job has the
        condition C(Suspended). V(false) resumes it. May change while the Job runs.
    type: bool
    default: false
  replace:
    description:
      - Extension, like C(kubectl replace --force). When an immutable field changed, or the Job has finished, delete
        the old Job's pods (C(replaced) is returned) and run this spec from the start. Without it, a change of an
        immutable field fails the task and a finished Job is left as it is.
    type: bool
    default: false
  wait:
    description:
      - Wait until the Job is C(Complete) or C(Failed), up to O(wait_timeout); the pods keep running when the wait
        times out, and the next run goes on from where the Job is. With V(false), take one step (count the pods that
        ended, start the pods that may start) and return.
      - A C(Failed) Job fails the task with the condition's message.
    type: bool
    default: true
seealso:
  - module: hostfleet.workloads.pod
  - module: hostfleet.workloads.deployment
  - name: Kubernetes Jobs
    description: The Kubernetes documentation of Jobs, whose fields and semantics this module follows.
    link: https://kubernetes.io/docs/concepts/workloads/controllers/job/
"""

EXAMPLES = r"""
- name: Render six shards, three at a time, each retried at most twice, one failed shard allowed
  hostfleet.workloads.job:
    name: render
    completionMode: Indexed
    completions: 6
    parallelism: 3
    backoffLimitPerIndex: 2
    maxFailedIndexes: 1
    ttlSecondsAfterFinished: 86400
    template:
      spec:
        restartPolicy: Never
        nodeSelector: {gpu: "true"}
        containers:
          - name: render
            command: [/usr/local/bin/render, --shard, "$(JOB_COMPLETION_INDEX)", --of, "6"]
  run_once: true

- name: Migrate the database; exit code 42 is a bug (no retry), a lost node is not the job's fault
  hostfleet.workloads.job:
    name: db-migrate
    backoffLimit: 3
    activeDeadlineSeconds: 1800
    podFailurePolicy:
      rules:
        - action: FailJob
          onExitCodes:
            containerName: migrate
            operator: In
            values: [42]
        - action: Ignore
          onPodConditions:
            - type: DisruptionTarget
    template:
      spec:
        restartPolicy: Never
        containers:
          - name: migrate
            command: [/opt/app/bin/migrate, --to, latest]
  run_once: true
  register: migration

- name: Two workers drain a queue; the Job is complete when one has succeeded and both have exited
  hostfleet.workloads.job:
    name: thumbnails
    parallelism: 2
    template:
      spec:
        restartPolicy: OnFailure
        containers:
          - name: worker
            command: [/usr/local/bin/thumbnail-worker, --queue, "redis://queue.example.com/thumbnails"]
  run_once: true
"""

RETURN = r"""
status:
  description: Kubernetes' Job status.
  returned: when state is present
  type: dict
  contains:
    active: {description: "Pods running (or starting) now.", type: int}
    succeeded: {description: "Pods that succeeded (with Indexed, indexes that succeeded).", type: int}
    failed: {description: "Pods that failed and counted (a pod on a lost node included; ignored failures not).", type: int}
    startTime:
      description: When the Job started (RFC 3339), or null before it started or while it is suspended.
      type: str
      sample: "2025-11-28T12:00:00Z"
    completionTime: {description: "When the Job became C(Complete) (RFC 3339), or null.", type: str}
    completedIndexes:
      description: With O(completionMode=Indexed), the indexes that succeeded, in Kubernetes' interval form.
      type: str
      sample: "0-2,4"
    failedIndexes:
      description: With O(backoffLimitPerIndex), the indexes that failed, in Kubernetes' interval form.
      type: str
      sample: "3"
    conditions:
      description:
        - C(Complete), C(Failed), C(SuccessCriteriaMet), C(FailureTarget) or C(Suspended), each with C(type),
          C(status), C(reason) (such as C(CompletionsReached), C(SuccessPolicy), C(BackoffLimitExceeded),
          C(DeadlineExceeded), C(PodFailurePolicy), C(MaxFailedIndexesExceeded), C(FailedIndexes)), C(message),
          C(lastTransitionTime) and C(lastProbeTime).
      type: list
      elements: dict
    podsRemovedAfterTTL:
      description: Extension, V(true) once O(ttlSecondsAfterFinished) has removed the pods; absent before.
      type: bool
job_pods:
  description: Every pod the Job started, oldest first, kept after the pods themselves are removed.
  returned: when state is present
  type: list
  elements: dict
  contains:
    name: {description: "The pod's name.", type: str, sample: render-3-0}
    node: {description: "The node it ran on.", type: str}
    index: {description: "Its completion index (Indexed), or null.", type: int}
    outcome:
      description:
        - V(Active) (running), V(Succeeded), V(Failed) (counted), V(Ignored) (a failure a O(podFailurePolicy) rule
          ignored) or V(Stopped) (stopped by the Job, because it finished or was suspended, or beyond O(parallelism)).
      type: str
      sample: Succeeded
    exit_codes: {description: "Per container, the last exit code.", type: dict, sample: {render: 0}}
    restarts: {description: "Restarts of its containers in place (C(restartPolicy=OnFailure)).", type: int}
    reason:
      description: Why it failed without an exit code, V(NodeLost) (its node became unreachable) or V(PodVanished), or null.
      type: str
    started: {description: "When it was started (RFC 3339).", type: str}
    finished: {description: "When it ended (RFC 3339), or null.", type: str}
    logs:
      description: Per container, the command that shows its output in the node's journal.
      type: dict
      sample: {render: "journalctl -u hf-render-3-0.render.service"}
pods:
  description:
    - Every pod of the Job found on the nodes, with its node, phase, readiness and restarts.
    - C(name) is the pod's name in its C(namespace), as kubectl shows it.
  returned: when state is present
  type: list
  elements: dict
nodes:
  description: Per node, whether it was reachable, its labels and which of the Job's pods it runs.
  returned: when state is present
  type: dict
pending:
  description: Pods that fit on no node now, with the reason.
  returned: when state is present
  type: list
  elements: dict
plan:
  description: The steps taken, each with the pods started and stopped per node (in check mode, the first wave).
  returned: when state is present
  type: list
  elements: dict
message:
  description: The Job's progress, or the message of its C(Complete) or C(Failed) condition.
  returned: when state is present
  type: str
  sample: succeeded 4/6, failed 1, active 2
waiting_for:
  description: What the Job waits for (running pods, the retry delay, pods that cannot be placed, NotReady nodes).
  returned: when state is present
  type: list
  elements: str
replaced:
  description: Whether O(replace=true) deleted the old Job (or, in check mode, would delete it) before running this spec.
  returned: when replace deleted an old Job
  type: bool
  sample: true
field:
  description: The field the task refused, a bad value or an immutable field that changed.
  returned: on bad input
  type: str
  sample: spec.completions
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostfleet.workloads.plugins.module_utils.workload_args import JOB_ARGS, refuse_outside_action


def main():
    refuse_outside_action(AnsibleModule(argument_spec=JOB_ARGS, supports_check_mode=True))


if __name__ == "__main__":
    main()
