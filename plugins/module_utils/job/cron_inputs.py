# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the cronjob_timer module accepts: exactly what the cronjob action builds (plugin_utils/controllers/cronjob).

The module can also be called directly, and each of these values ends up in a path
(``<state_dir>/cronjobs/<name>``) or on a unit file line (``Description=``,
``OnCalendar=``, the ``[Timer]`` options), so the host holds them to the rules of the
action again: a name is a DNS-1123 label, the schedule and the zone have only the
characters their grammars use, the ``OnCalendar=`` expressions are of the subset
``oncalendar.to_on_calendar`` emits, and the ``[Timer]`` options are the ones
:func:`timer_settings` gives. Pure, stdlib only.
"""

from __future__ import annotations

import re

from ansible_collections.hostfleet.workloads.plugins.module_utils.job import tracking
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import namespaces
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, clean_abs_path, labels, node_name, validate_pod
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import _bool as boolean_field
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import _expect as expect_type
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import _int as integer_field
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import _known as known_fields
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import annotations as parse_annotations  # the future import binds annotations

# Kubernetes: a CronJob's Jobs append -<unix minutes> to its name, which must stay a 63-character label.
MAX_NAME_LENGTH = 52
POLICIES = ("Allow", "Forbid", "Replace")
JOB_RESTART_POLICIES = ("OnFailure", "Never")
CONFIG_KEYS = (
    "name",
    "node",
    "schedule",
    "timeZone",
    "on_calendar",
    "timer",
    "concurrencyPolicy",
    "startingDeadlineSeconds",
    "suspend",
    "successfulJobsHistoryLimit",
    "failedJobsHistoryLimit",
    "jobMetadata",
    "job",
)
JOB_KEYS = (
    "completions",
    "parallelism",
    "completionMode",
    "backoffLimit",
    "backoffLimitPerIndex",
    "maxFailedIndexes",
    "podFailurePolicy",
    "successPolicy",
    "activeDeadlineSeconds",
    "ttlSecondsAfterFinished",
    "suspend",
    "template",
)
# Every character the schedule grammar uses (schedule.py: numbers, month and weekday names, * ? , / - and @macros),
# at least one of them not a space. Printable ASCII only: the schedule is shown on the timer's Description= line.
SCHEDULE_TEXT = re.compile(r"\A[ 0-9A-Za-z*?,/@-]*[0-9A-Za-z*?@][ 0-9A-Za-z*?,/@-]*\Z")
# The characters of IANA time zone names (Europe/Berlin, Etc/GMT+5, America/Port-au-Prince); no '.', so no '..'.
TIME_ZONE_NAME = re.compile(r"\A[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*\Z")
MAX_TIME_ZONE_LENGTH = 255
# The OnCalendar= subset oncalendar.to_on_calendar emits: [weekdays ]*-MM-DD HH:MM:00 Zone/Name.
_CALENDAR_VALUES = r"(\*|[0-9]{2}/[0-9]{1,2}|[0-9]{2}(\.\.[0-9]{2})?(,[0-9]{2}(\.\.[0-9]{2})?)*)"
_WEEKDAY = r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_WEEKDAYS = rf"{_WEEKDAY}(\.\.{_WEEKDAY})?(,{_WEEKDAY}(\.\.{_WEEKDAY})?)*"
ON_CALENDAR = re.compile(rf"\A({_WEEKDAYS} )?\*-{_CALENDAR_VALUES}-{_CALENDAR_VALUES} {_CALENDAR_VALUES}:{_CALENDAR_VALUES}:00 (?P<zone>[^ ]+)\Z")
# A placeholder run name as long as the longest real one: the job template's pod is checked as a run's would be.
_RUN_SUFFIX = "-99999999"
# The inventory host name the action passes as the node (kept in run records): no line breaks or other controls.
_NODE_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def timer_settings(starting_deadline_seconds=None):
    """The ``[Timer]`` options besides ``OnCalendar=``.

    * ``AccuracySec=100ms``: systemd's default of 1 min lets a run start up to a minute late, and
      1 s would let it start up to a second late (systemd elapses anywhere in the window).
    * ``RandomizedDelaySec=0``: runs start on time (explicit; also the default).
    * ``Persistent=``: Kubernetes, with no ``startingDeadlineSeconds``, starts ONE
      run for missed schedules when the controller comes back; ``Persistent=true``
      is exactly that (one catch-up run at timer activation). With a deadline,
      a late run must be skipped beyond N s, which systemd cannot bound: we set
      ``Persistent=false`` (never late; stricter than Kubernetes, which would
      still run a schedule missed by less than N s).
    """
    if starting_deadline_seconds is not None and (isinstance(starting_deadline_seconds, bool) or not isinstance(starting_deadline_seconds, int)):
        raise TypeError("starting_deadline_seconds must be an int or None")
    return {
        "AccuracySec": "100ms",
        "RandomizedDelaySec": "0",
        "Persistent": "true" if starting_deadline_seconds is None else "false",
    }


def cronjob_name(name, path="name"):
    """A CronJob name: a DNS-1123 label of at most 52 characters (it names paths, units and runs), or the node layer's
    ``<namespace>_<name>`` of one outside ``default`` (node/namespaces.py)."""
    node_name(name, path)
    if len(namespaces.kube_name(name)) > MAX_NAME_LENGTH:
        raise SpecError(path, f"must be at most {MAX_NAME_LENGTH} characters (its Jobs add -<unix minutes>), got {len(namespaces.kube_name(name))}")
    return name


def schedule_text(value, path="config.schedule"):
    """The schedule's characters (the action parsed its grammar); no tab, newline or other control character."""
    expect_type(value, str, path)
    if not SCHEDULE_TEXT.fullmatch(value):
        raise SpecError(
            path, f"{value!r} is not a cron schedule: only digits, letters, spaces and * ? , / - @ are allowed (no tab, newline or other control character)"
        )
    return value


def time_zone_name(value, path="config.timeZone"):
    """The characters of an IANA time zone name."""
    expect_type(value, str, path)
    if len(value) > MAX_TIME_ZONE_LENGTH or not TIME_ZONE_NAME.fullmatch(value):
        raise SpecError(path, f"{value!r} is not an IANA time zone name (such as Europe/Berlin): letters, digits, '_', '+', '-' and '/' only")
    return value


def _required_int(mapping, key, path, minimum):
    if mapping.get(key) is None:
        raise SpecError(f"{path}.{key}", "is required")
    return integer_field(mapping, key, path, minimum=minimum)


def validate_job(job, name, path="config.job"):
    """The Job normal form the runner drives (tracking.py): its scalars, and its pod template checked as a run's pod is."""
    known_fields(job, set(JOB_KEYS), path)
    for key in ("parallelism", "backoffLimit"):
        _required_int(job, key, path, 0)
    for key in ("completions", "backoffLimitPerIndex", "maxFailedIndexes", "ttlSecondsAfterFinished"):
        integer_field(job, key, path, minimum=0)
    integer_field(job, "activeDeadlineSeconds", path, minimum=1)
    boolean_field(job, "suspend", path)
    mode = job.get("completionMode")
    if mode not in (tracking.NON_INDEXED, tracking.INDEXED):
        raise SpecError(f"{path}.completionMode", f"Unsupported value: {mode!r}: supported values: {tracking.NON_INDEXED}, {tracking.INDEXED}")
    for key in ("podFailurePolicy", "successPolicy"):
        if job.get(key) is not None:
            expect_type(job[key], dict, f"{path}.{key}")
    template = job.get("template")
    if template is None:
        raise SpecError(f"{path}.template", "is required")
    known_fields(template, {"metadata", "spec"}, f"{path}.template")
    known_fields(template.get("metadata") or {}, {"labels", "annotations"}, f"{path}.template.metadata")
    if template.get("spec") is None:
        raise SpecError(f"{path}.template.spec", "is required")
    expect_type(template["spec"], dict, f"{path}.template.spec")
    run = name + _RUN_SUFFIX
    index = 0 if mode == tracking.INDEXED else None
    pod = tracking.pod_template(template, run, index)
    entry = {"name": tracking.pod_name(run, index, 0), "labels": pod["metadata"].get("labels"), "spec": pod["spec"]}
    if pod["metadata"].get("annotations"):
        entry["annotations"] = pod["metadata"]["annotations"]
    policy = validate_pod(entry, f"{path}.template")["spec"]["restartPolicy"]
    if policy not in JOB_RESTART_POLICIES:
        raise SpecError(f"{path}.template.spec.restartPolicy", f"Unsupported value: {policy!r}: supported values: {', '.join(JOB_RESTART_POLICIES)}")
    return job


def validate_config(name, config, path="config"):
    """Hold ``config`` to what the cronjob action builds for CronJob ``name``; raises SpecError naming the field."""
    known_fields(config, set(CONFIG_KEYS), path)
    for key in CONFIG_KEYS:
        if key not in config:
            raise SpecError(f"{path}.{key}", "is required")
    if config["name"] != name:
        raise SpecError(f"{path}.name", f"must be the CronJob's name {name!r}, got {config['name']!r}")
    node = expect_type(config["node"], str, f"{path}.node")
    if not node or _NODE_UNSAFE.search(node):
        raise SpecError(f"{path}.node", f"{node!r} must be a non-empty host name without control characters")
    schedule_text(config["schedule"], f"{path}.schedule")
    zone = time_zone_name(config["timeZone"], f"{path}.timeZone")
    expressions = expect_type(config["on_calendar"], list, f"{path}.on_calendar")
    # One expression, or two when cron ORs a restricted day of month with a restricted weekday.
    if not 1 <= len(expressions) <= 2:
        raise SpecError(f"{path}.on_calendar", f"must have 1 or 2 expressions, got {len(expressions)}")
    for i, expression in enumerate(expressions):
        epath = f"{path}.on_calendar[{i}]"
        match = ON_CALENDAR.fullmatch(expect_type(expression, str, epath))
        if not match:
            raise SpecError(epath, f"{expression!r} is not an OnCalendar= expression of the form [Mon..Fri ]*-MM-DD HH:MM:00 Zone/Name")
        if match.group("zone") != zone:
            raise SpecError(epath, f"its time zone {match.group('zone')!r} must be the CronJob's timeZone {zone!r}")
    if config["concurrencyPolicy"] not in POLICIES:
        raise SpecError(f"{path}.concurrencyPolicy", f"Unsupported value: {config['concurrencyPolicy']!r}: supported values: {', '.join(POLICIES)}")
    expected_timer = timer_settings(integer_field(config, "startingDeadlineSeconds", path, minimum=0))
    if config["timer"] != expected_timer:
        raise SpecError(f"{path}.timer", f"must be {expected_timer!r} (as startingDeadlineSeconds gives), got {config['timer']!r}")
    expect_type(config["suspend"], bool, f"{path}.suspend")
    for key in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        _required_int(config, key, path, 0)
    metadata = known_fields(config["jobMetadata"], {"labels", "annotations"}, f"{path}.jobMetadata")
    labels(metadata.get("labels"), f"{path}.jobMetadata.labels")
    parse_annotations(metadata.get("annotations"), f"{path}.jobMetadata.annotations")
    validate_job(expect_type(config["job"], dict, f"{path}.job"), name, f"{path}.job")
    return config


def validate_args(params):
    """(state_dir, name) of the module's arguments, ``config`` checked too with state=present; raises SpecError."""
    name = cronjob_name(params["name"], "name")
    state_dir = clean_abs_path(params["state_dir"], "state_dir")
    if not params["report_only"] and params["state"] == "present":
        if not params["config"]:
            raise SpecError("config", "is required with state=present")
        validate_config(name, params["config"])
    return state_dir, name
