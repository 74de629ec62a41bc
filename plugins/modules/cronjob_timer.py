#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cronjob_timer
short_description: The host side of a CronJob, its systemd timer and its runs on one host
version_added: 0.2.0
description:
  - Installs, reports or removes one CronJob on the host it runs on. M(hostfleet.workloads.cronjob) calls it on the
    node(s) it chooses; use that module, not this one, unless you build your own orchestration.
  - V(present) installs what differs (a re-run changes nothing) the runner C(<state_dir>/bin/hostfleet-cron) with
    the node layer it imports under C(<state_dir>/lib), the configuration C(<state_dir>/cronjobs/<name>/cronjob.json),
    the timer C(hfcron-<name>.timer) and its launcher C(hfcron-<name>.service). The timer is enabled and started,
    or stopped and disabled when the configuration says C(suspend) (running runs go on).
  - At each scheduled time the launcher applies C(startingDeadlineSeconds) and C(concurrencyPolicy) and starts the run
    C(<name>-<unix minutes>) as the transient unit C(hfrun-<run>.service), which drives the run's Job on this host
    (backoff, deadline, exit-code policy) and then applies the history limits.
  - V(absent) stops the timer and every active run and removes every run's pods and records, the units and the
    configuration. With O(report_only=true) nothing changes and the module only reports.
author:
  - hostfleet.workloads developers (@hostfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Shows the configuration and unit files that change.
  platform:
    platforms: posix
    support: full
options:
  name:
    description: The CronJob's name, a DNS-1123 label of at most 52 characters (it names the units, runs and C(<state_dir>/cronjobs/<name>)).
    type: str
    required: true
  state:
    description: V(present) installs or updates, V(absent) removes.
    type: str
    default: present
    choices: [present, absent]
  report_only:
    description: Change nothing, only report whether the CronJob is installed here, its configuration and its runs.
    type: bool
    default: false
  node_facts:
    description:
      - With O(report_only=true), also return C(node_facts), what this host is, as M(hostfleet.workloads.pod_info)
        does (its O(node_facts)), from which the CronJob action reads the node's labels.
    type: bool
    default: false
  config:
    description:
      - The CronJob's configuration, as M(hostfleet.workloads.cronjob) builds it from a validated spec (C(schedule),
        C(timeZone), C(on_calendar), C(timer), C(concurrencyPolicy), C(startingDeadlineSeconds), C(suspend), the history
        limits, C(jobMetadata), C(job) in normal form, C(node)). Required with O(state=present).
      - It is held to what that module builds, since its values reach the unit files; anything else is refused, naming
        the field (for example C(config.schedule)), before anything changes. Every key is required and no other is
        accepted; C(schedule) has only the characters of a cron schedule (no tab, newline or other control character);
        C(timeZone) only those of an IANA name; each C(on_calendar) expression is of the form
        C([Mon..Fri ]*-MM-DD HH:MM:00 <timeZone>); C(timer) is exactly the options that C(startingDeadlineSeconds)
        gives; the pod of C(job.template) is checked as a run's pod would be.
    type: dict
  state_dir:
    description: The node layer's state directory, an absolute path without C(.) or C(..) components.
    type: path
    default: /var/lib/hostfleet
seealso:
  - module: hostfleet.workloads.cronjob
"""

EXAMPLES = r"""
- name: What does the CronJob report run here
  hostfleet.workloads.cronjob_timer:
    name: report
    report_only: true
  register: report_runs
"""

RETURN = r"""
installed:
  description: Whether the CronJob is installed on this host.
  returned: with O(report_only=true)
  type: bool
node_facts:
  description: What this host is (see M(hostfleet.workloads.pod_info)).
  returned: with O(report_only=true) and O(node_facts=true)
  type: dict
config:
  description: The installed configuration.
  returned: with O(report_only=true)
  type: dict
runs:
  description: Every run kept on this host, oldest first, with C(name), C(scheduled), C(fired_at), C(active),
    C(outcome), the Job C(status) and its C(pods) (node, index, outcome, exit codes).
  returned: when installed
  type: list
  elements: dict
last_schedule:
  description: When the last run was scheduled (unix time).
  returned: when installed
  type: float
last_success:
  description: When the last successful run completed (unix time).
  returned: when installed
  type: float
skipped_runs:
  description: The last skipped runs (concurrencyPolicy Forbid, starting deadline) with the reason.
  returned: when installed
  type: list
  elements: dict
timer:
  description: The timer's state, C(active), C(next) and C(last) elapse (unix times).
  returned: when installed
  type: dict
runs_removed:
  description: The runs removed with the CronJob.
  returned: with O(state=absent)
  type: list
  elements: str
observed_at:
  description: The host's clock when it reported.
  returned: always
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostfleet.workloads.plugins.module_utils.job.cron_setup import run_module
from ansible_collections.hostfleet.workloads.plugins.module_utils.workload_args import CRONJOB_TIMER_ARGS


def main():
    run_module(AnsibleModule(argument_spec=CRONJOB_TIMER_ARGS, supports_check_mode=True))


if __name__ == "__main__":
    main()
