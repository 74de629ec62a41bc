# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CronJob spec: validation, defaults, and the configuration its node's timer runs from (batch/v1 names).

================================  ============  ===============================================
field                             default       rule
================================  ============  ===============================================
schedule                          required      5-field cron or a macro (``schedule.py``)
timeZone                          UTC           IANA name (Kubernetes: the controller's zone)
concurrencyPolicy                 Allow         Allow | Forbid | Replace
startingDeadlineSeconds           unset         integer >= 0
suspend                           false         stops new runs; running ones go on
successfulJobsHistoryLimit        3             integer >= 0
failedJobsHistoryLimit            1             integer >= 0
jobTemplate                       required      metadata.labels/annotations + a Job spec
================================  ============  ===============================================

A CronJob's name is at most 52 characters (Kubernetes: its Jobs append
``-<unix minutes>``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.hostfleet.workloads.plugins.module_utils.job.cron_inputs import MAX_NAME_LENGTH, POLICIES
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.namespaces import kube_name
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import annotations as parse_annotations
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import labels as parse_labels
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common.fields import bool_field, integer_field
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common.preamble import spec_mapping
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.cronjob.oncalendar import timer_settings, to_on_calendar
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.cronjob.schedule import (
    DEFAULT_TIME_ZONE,
    CronSchedule,
    parse_schedule,
    parse_time_zone,
)
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.job.spec import JobSpec, parse_job_spec, validate_job_name
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.labels import known_fields

FIELDS = {
    "schedule",
    "timeZone",
    "concurrencyPolicy",
    "startingDeadlineSeconds",
    "suspend",
    "successfulJobsHistoryLimit",
    "failedJobsHistoryLimit",
    "jobTemplate",
}
# Placeholder run name used to validate the job template: as long as the longest real one.
_RUN_SUFFIX = "-99999999"


@dataclass(frozen=True)
class CronJobSpec:
    name: str
    schedule: CronSchedule
    time_zone: str
    job: JobSpec
    job_metadata: dict
    concurrency_policy: str = "Allow"
    starting_deadline_seconds: int | None = None
    suspend: bool = False
    successful_history: int = 3
    failed_history: int = 1

    def config(self, node: str) -> dict:
        """What the node's runner works from (``module_utils/job/cron_run.py``)."""
        return {
            "name": self.name,
            "node": node,
            "schedule": self.schedule.text,
            "timeZone": self.time_zone,
            "on_calendar": to_on_calendar(self.schedule, self.time_zone),
            "timer": timer_settings(self.starting_deadline_seconds),
            "concurrencyPolicy": self.concurrency_policy,
            "startingDeadlineSeconds": self.starting_deadline_seconds,
            "suspend": self.suspend,
            "successfulJobsHistoryLimit": self.successful_history,
            "failedJobsHistoryLimit": self.failed_history,
            "jobMetadata": self.job_metadata,
            "job": self.job.normal,
        }


def parse_cronjob_spec(name: str, spec: dict, path: str = "spec") -> CronJobSpec:
    name = validate_job_name(name)
    if len(kube_name(name)) > MAX_NAME_LENGTH:
        raise SpecError("metadata.name", f"must be at most {MAX_NAME_LENGTH} characters (its Jobs add -<unix minutes>), got {len(kube_name(name))}")
    spec = spec_mapping(spec, FIELDS, path)
    if spec.get("schedule") is None:
        raise SpecError(f"{path}.schedule", "is required")
    schedule = parse_schedule(spec["schedule"], f"{path}.schedule")
    zone = spec.get("timeZone")
    parse_time_zone(zone, f"{path}.timeZone")
    policy = spec.get("concurrencyPolicy") or "Allow"
    if policy not in POLICIES:
        raise SpecError(f"{path}.concurrencyPolicy", f"Unsupported value: {policy!r}: supported values: {', '.join(POLICIES)}")
    template = spec.get("jobTemplate")
    if template is None:
        raise SpecError(f"{path}.jobTemplate", "is required")
    known_fields(template, {"metadata", "spec"}, f"{path}.jobTemplate")
    metadata = template.get("metadata") or {}
    known_fields(metadata, {"labels", "annotations"}, f"{path}.jobTemplate.metadata")
    job_metadata = {
        "labels": parse_labels(metadata.get("labels"), f"{path}.jobTemplate.metadata.labels"),
        "annotations": parse_annotations(metadata.get("annotations"), f"{path}.jobTemplate.metadata.annotations"),
    }
    job = parse_job_spec(name + _RUN_SUFFIX, template.get("spec"), f"{path}.jobTemplate.spec")
    return CronJobSpec(
        name=name,
        schedule=schedule,
        time_zone=zone or DEFAULT_TIME_ZONE,
        job=job,
        job_metadata=job_metadata,
        concurrency_policy=policy,
        starting_deadline_seconds=integer_field(spec, "startingDeadlineSeconds", path, None),
        suspend=bool_field(spec, "suspend", path),
        successful_history=integer_field(spec, "successfulJobsHistoryLimit", path, 3),
        failed_history=integer_field(spec, "failedJobsHistoryLimit", path, 1),
    )
