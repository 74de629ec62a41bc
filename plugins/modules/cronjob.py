#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cronjob
short_description: A Kubernetes CronJob, a systemd timer on its node(s) that runs a Job on schedule, set by one task
version_added: 0.2.0
description:
  - Runs a Kubernetes CronJob (batch/v1) on the play's hosts (or the O(nodes) among them), with Kubernetes' field names,
    defaults and meaning. Each CronJob becomes the systemd timer C(hfcron-<name>.timer) with its launcher
    C(hfcron-<name>.service), installed by M(hostfleet.workloads.cronjob_timer) on the node(s) that run it.
  - "Eligible nodes are the reachable ones whose labels match the job template's C(nodeSelector) and required node
    affinity (see M(hostfleet.workloads.deployment) for where node labels come from: the host variable
    C(hostfleet_node_labels), inventory groups and the node's facts; cpu and memory requests are not checked against
    node capacity, extended resources such as C(nvidia.com/gpu) must be in it). With
    O(run_on=one) (the default) the timer is on ONE eligible node: the node that holds it keeps it while it stays
    eligible and reachable; otherwise rendezvous hashing of the CronJob's and the nodes' names picks one, so CronJobs
    spread over the nodes and few move when nodes come and go. With O(run_on=every), every eligible node has the
    timer and runs its own runs."
  - "B(Between playbook runs the node runs the CronJob alone.) At each scheduled minute the launcher starts a run named
    C(<name>-<unix minutes>) (as Kubernetes names a CronJob's Jobs) as the transient unit C(hfrun-<run>.service),
    which drives the run's Job on that node with the same Job semantics as M(hostfleet.workloads.job) (C(backoffLimit)
    and retry backoff, C(activeDeadlineSeconds), C(podFailurePolicy), C(completionMode=Indexed), C(parallelism)... of
    O(jobTemplate)). All the pods of a run run on that node."
  - "Exact cron semantics: five fields (minute, hour, day of month, month, day of week) with lists, ranges, steps and
    month and weekday names, or a macro (C(@yearly), C(@annually), C(@monthly), C(@weekly), C(@daily),
    C(@midnight), C(@hourly)). When both day fields are restricted, a day matches if EITHER matches, as in cron;
    such a schedule becomes two C(OnCalendar=) lines, since systemd ANDs the parts of one expression. Day of week
    C(0) and C(7) are both Sunday."
  - "Timer settings: C(AccuracySec=100ms) (systemd's default of 1 min would let runs start up to a minute late),
    C(RandomizedDelaySec=0)."
  - "Daylight saving time (measured with systemd 252): a wall time skipped by the spring-forward transition does not
    fire that day, as in Kubernetes (robfig/cron); a wall time repeated by the fall-back transition fires once
    (Kubernetes fires it twice). With O(timeZone=UTC), the default, there is no DST."
  - "After each run ends, only the newest O(successfulJobsHistoryLimit) successful and O(failedJobsHistoryLimit) failed
    finished runs are kept on the node (the others' pods and records are removed; their output stays in the
    journal). A finished run's pods stay until then."
  - "Each pod's output is in its node's journal, one unit per container: C(journalctl -u hf-<pod>.<container>.service).
    The launcher's messages (runs started, skipped, replaced) are in the journal of C(hfcron-<name>.service), a run's
    progress in that of C(hfrun-<run>.service)."
  - "O(state=absent) removes the timer, stops the active runs and removes every run (pods and records) from every
    reachable node that has the CronJob; persistent volume data is kept."
  - "Bad input (an unparseable schedule, an unknown time zone, a bad job template) fails the task before any node is
    contacted, naming the field (C(field))."
  - "B(One task for the whole fleet), run once on the controller as an action plugin. The task only places, updates
    or removes the timers and reports the runs; it does not wait for runs."
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
      - Reports what would change (the timer installed, updated, moved or removed) and touches nothing; the runs and
        timers returned are those on the nodes now.
  diff_mode:
    support: full
    details: Shows the CronJob's configuration per node, on the nodes and requested.
  idempotent:
    description: Whether a re-run with the same arguments changes nothing.
    support: full
    details:
      - Only what differs is written; with O(run_on=one), the timer moves only when its node stops being eligible or
        reachable.
options:
  name:
    description:
      - The CronJob's name, a DNS-1123 label of at most 52 characters (its runs add C(-<unix minutes>)).
    type: str
    required: true
  state:
    description:
      - V(present) installs or updates the timer on its node(s) (and removes it from the nodes that no longer run it);
        V(absent) removes the timer, stops the active runs and removes every run (pods and records) from every
        reachable node (persistent volume data is kept).
    type: str
    default: present
    choices: [present, absent]
  schedule:
    description:
      - The cron schedule, five fields C(minute hour day-of-month month day-of-week) or a macro (C(@yearly),
        C(@annually), C(@monthly), C(@weekly), C(@daily), C(@midnight), C(@hourly)). Required with O(state=present).
      - Each field is a comma list of C(*), C(N), C(N-M), each optionally with C(/STEP) (C(N/STEP) runs to the field's
        maximum); month names C(JAN)-C(DEC) and weekday names C(SUN)-C(SAT); C(?) in the day fields means C(*).
      - When both the day of month and the day of week are restricted, a day matches if either matches.
      - Refused, as in Kubernetes or because they have no calendar meaning here, C(TZ=) and C(CRON_TZ=) prefixes (use
        O(timeZone)), C(@reboot), C(@every), C(L), C(W), C(#), six fields (seconds), reversed ranges, and schedules
        that can never fire (such as C(0 0 30 2 *)).
    type: str
  timeZone:
    description:
      - The IANA time zone (such as V(Europe/Berlin)) in which O(schedule) is read. An unknown zone, and V(Local), are
        refused.
      - Default V(UTC). Kubernetes uses the controller's zone; a fixed default keeps the units identical whoever runs
        the playbook.
    type: str
  concurrencyPolicy:
    description:
      - What a scheduled run does while an earlier run of the CronJob is still active on the node.
      - V(Allow), the runs overlap.
      - V(Forbid), the new run is skipped (logged in the journal of C(hfcron-<name>.service) and returned in
        C(skipped_runs)).
      - V(Replace), the active run is stopped and deleted (its pods and record), then the new one starts.
    type: str
    default: Allow
    choices: [Allow, Forbid, Replace]
  startingDeadlineSeconds:
    description:
      - Unset (the default), the timer has C(Persistent=true) - after the node was down (or the timer stopped) over a
        scheduled time, one catch-up run starts when it is back, as Kubernetes starts one missed run; the run is named
        after the minute it starts in.
      - Set (0 or more), the timer has C(Persistent=false) (no catch-up run), and a run that starts more than this many
        seconds after its scheduled minute is skipped (returned in C(skipped_runs)).
    type: int
  suspend:
    description:
      - V(true) stops and disables the timer, so no new run starts; runs in progress go on. V(false) starts it again.
    type: bool
    default: false
  successfulJobsHistoryLimit:
    description:
      - How many successful finished runs are kept on each node (their pods and records); older ones are removed after
        each run. 0 or more.
    type: int
    default: 3
  failedJobsHistoryLimit:
    description:
      - How many failed finished runs are kept on each node (their pods and records); older ones are removed after each
        run. 0 or more.
    type: int
    default: 1
  jobTemplate:
    description:
      - The Job of each run, C(metadata) (C(labels), C(annotations), given to the run's pods) and C(spec), a Job spec
        with the fields and rules of M(hostfleet.workloads.job) (C(template), C(completions), C(parallelism),
        C(completionMode), C(backoffLimit), C(backoffLimitPerIndex), C(maxFailedIndexes), C(podFailurePolicy),
        C(successPolicy), C(activeDeadlineSeconds)...). Required with O(state=present).
      - The pod template's C(spec.restartPolicy) must be V(OnFailure) or V(Never); its C(nodeSelector) and required
        node affinity choose the eligible nodes.
    type: dict
  run_on:
    description:
      - Extension. V(one), the CronJob runs on one eligible node, kept while it stays eligible and reachable, else
        chosen by rendezvous hashing.
      - V(every), every eligible node has the timer and runs its own runs (as a DaemonSet of CronJobs).
    type: str
    default: one
    choices: [one, every]
notes:
  - A node that was down while the CronJob was moved to another node may still hold its timer (and start runs) when it
    comes back, until the next run of the task removes it there.
  - A run whose supervisor ended before its Job finished (the node restarted) is marked C(Failed) with the reason
    C(SupervisorLost) at the next scheduled time.
seealso:
  - module: hostfleet.workloads.job
  - module: hostfleet.workloads.cronjob_timer
  - name: Kubernetes CronJobs
    description: The Kubernetes documentation of CronJobs, whose fields and semantics this module follows.
    link: https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/
"""

EXAMPLES = r"""
- name: Back up the database every night at 02:30 Berlin time, never two at once, keep a week of successes
  hostfleet.workloads.cronjob:
    name: db-backup
    schedule: "30 2 * * *"
    timeZone: Europe/Berlin
    concurrencyPolicy: Forbid
    successfulJobsHistoryLimit: 7
    failedJobsHistoryLimit: 3
    jobTemplate:
      spec:
        backoffLimit: 2
        activeDeadlineSeconds: 3600
        template:
          spec:
            restartPolicy: OnFailure
            containers:
              - name: backup
                command: [/usr/local/bin/db-backup, --to, /srv/backups]
  run_once: true

- name: Every 5 minutes, on every GPU node (hostfleet_node_labels gpu=true), check the GPUs
  hostfleet.workloads.cronjob:
    name: gpu-check
    schedule: "*/5 * * * *"
    run_on: every
    concurrencyPolicy: Replace
    startingDeadlineSeconds: 30
    jobTemplate:
      metadata:
        labels: {app: gpu-check}
      spec:
        template:
          spec:
            restartPolicy: Never
            nodeSelector: {gpu: "true"}
            containers:
              - name: check
                command: [/usr/local/bin/gpu-health, --quick]
  run_once: true

- name: On weekdays at 06:00, rebuild four search shards; exit code 3 (bad input) fails the run at once
  hostfleet.workloads.cronjob:
    name: reindex
    schedule: "0 6 * * MON-FRI"
    jobTemplate:
      spec:
        completionMode: Indexed
        completions: 4
        parallelism: 2
        backoffLimit: 4
        podFailurePolicy:
          rules:
            - action: FailJob
              onExitCodes:
                containerName: index
                operator: In
                values: [3]
        template:
          spec:
            restartPolicy: Never
            containers:
              - name: index
                command: [/opt/search/bin/reindex, --shard, "$(JOB_COMPLETION_INDEX)", --of, "4"]
  run_once: true
  register: reindex
"""

RETURN = r"""
nodes:
  description: The nodes that run the CronJob's timer.
  returned: when state is present
  type: list
  elements: str
  sample: [node2]
moved_from:
  description: Reachable nodes that had the timer and no longer run it (it was removed there).
  returned: when state is present
  type: list
  elements: str
unreachable_nodes:
  description: The nodes that could not be reached (not considered for placement; a timer there is left as it is).
  returned: unless the input was refused
  type: list
  elements: str
on_calendar:
  description: The timer's C(OnCalendar=) expressions (two when both day fields are restricted).
  returned: when state is present
  type: list
  elements: str
  sample: ["*-*-* 02:30:00 Europe/Berlin"]
status:
  description: Kubernetes' CronJob status.
  returned: when state is present
  type: dict
  contains:
    active:
      description: The active runs, each with C(name) and C(node).
      type: list
      elements: dict
    lastScheduleTime:
      description: When the last run was scheduled (RFC 3339), or null.
      type: str
      sample: "2025-11-28T01:30:00Z"
    lastSuccessfulTime:
      description: When the last successful run completed (RFC 3339), or null.
      type: str
runs:
  description: The runs kept on the nodes (active ones and the finished ones the history limits keep), oldest first.
  returned: when state is present
  type: list
  elements: dict
  contains:
    name: {description: "The run's (its Job's) name, C(<name>-<unix minutes>).", type: str, sample: db-backup-29404890}
    node: {description: "The node it runs on.", type: str}
    scheduled: {description: "Its scheduled minute (RFC 3339).", type: str}
    scheduled_at: {description: "Its scheduled minute (unix time).", type: float}
    fired_at: {description: "When the launcher started it (unix time).", type: float}
    active: {description: "Whether it runs now.", type: bool}
    outcome:
      description: V(Complete), V(Failed), V(Active), or V(Unknown) (not finished, its supervisor gone).
      type: str
      sample: Complete
    status:
      description: The run's Job status, as M(hostfleet.workloads.job) returns it in C(status).
      type: dict
    pods:
      description: Every pod the run started, as M(hostfleet.workloads.job) returns them in C(job_pods).
      type: list
      elements: dict
skipped_runs:
  description: The last skipped runs on each node, each with C(run), C(scheduled) (unix time), C(reason) and C(node).
  returned: when state is present
  type: list
  elements: dict
  sample:
    - run: db-backup-29404890
      scheduled: 1764293400.0
      reason: concurrencyPolicy Forbid and run(s) db-backup-29403450 still active
      node: node2
timers:
  description: Per node running it, the timer's state, C(active), C(next) and C(last) elapse (unix times, or null).
  returned: when state is present
  type: dict
  sample: {node2: {active: true, next: 1764379800.0, last: 1764293400.0}}
removed_from:
  description: The nodes the CronJob was removed from.
  returned: when state is absent
  type: list
  elements: str
runs_removed:
  description: Per node, the runs removed with the CronJob.
  returned: when state is absent
  type: dict
  sample: {node2: [db-backup-29403450, db-backup-29404890]}
field:
  description: The field the task refused.
  returned: on bad input
  type: str
  sample: spec.schedule
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostfleet.workloads.plugins.module_utils.workload_args import CRONJOB_ARGS, refuse_outside_action


def main():
    refuse_outside_action(AnsibleModule(argument_spec=CRONJOB_ARGS, supports_check_mode=True))


if __name__ == "__main__":
    main()
