# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 11 (6, 7): the host-side modules hold their own inputs to the rules of the actions that call them.

image_id (references, and '--' before them on podman's command line), cronjob_timer (name, state_dir, and every
value of its configuration that reaches a path or a unit file line), pod and pod_info (state_dir, names, claim
names): bad input is refused with the field named, before anything on the host is read or touched.
"""

from __future__ import annotations

import copy
import re
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hostfleet.workloads.plugins.module_utils.job import cron_inputs, cron_setup
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, images, runner, systemctl
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.module_utils.workload_args import CRONJOB_TIMER_ARGS
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.cronjob.spec import parse_cronjob_spec


class Failed(Exception):
    pass


class Exited(Exception):
    pass


class FakeModule:
    """What the module bodies use of AnsibleModule; fail_json and exit_json end the call as they do."""

    def __init__(self, spec, **params):
        self.params = {key: copy.deepcopy(option.get("default")) for key, option in spec.items()}
        self.params.update(params)
        self.check_mode = False
        self._diff = False

    def fail_json(self, **kwargs):
        raise Failed(kwargs)

    def exit_json(self, **kwargs):
        raise Exited(kwargs)


def refused(call, field):
    """Run ``call``; it must raise SpecError naming ``field``. Returns the message."""
    with pytest.raises(SpecError) as info:
        call()
    assert info.value.path == field, str(info.value)
    return str(info.value)


@pytest.fixture
def untouched(monkeypatch):
    """Every way the module bodies reach the host fails the test: validation must come first."""

    def touched(*args, **_kwargs):
        raise AssertionError(f"the host was touched: {args!r}")

    for owner, name in (
        (converge, "Host"),
        (converge, "plan"),
        (converge, "apply"),
        (converge, "observe"),
        (systemctl, "list_units"),
        (systemctl, "daemon_reload"),
        (cron_setup, "converge_present"),
        (cron_setup, "converge_absent"),
        (cron_setup, "report"),
        (cron_setup.cron_run, "read_json"),
        (images, "image_ids"),
    ):
        monkeypatch.setattr(owner, name, touched)


# ---- image_id --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["--help", "-q", "--authfile=/etc/shadow", "-", "Web:1", "web:1\n", "web 1", ""])
def test_image_references_are_checked_with_the_item_named(ref):
    message = refused(lambda: images.check_references(["registry.example.com/web:1", ref]), "images[1]")
    assert "not a valid image reference" in message


def test_image_id_refuses_a_bad_reference_before_podman_runs(untouched):
    module = FakeModule({"images": {}, "pull": {"default": False}}, images=["docker.io/library/busybox:1.36", "-q"], pull=True)
    with pytest.raises(Failed) as info:
        images.run_image_id(module)
    assert info.value.args[0]["field"] == "images[1]"


@given(ref=st.sampled_from(["web", "reg.example.com:5000/team/web:1.2", "web@sha256:" + "a" * 64, "localhost/x_y__z-w:latest"]), pull=st.booleans())
def test_every_podman_command_ends_its_options_before_the_reference(ref, pull):
    argv = images.podman_argv(ref, pull)
    assert argv[0] == images.PODMAN and argv[-2:] == ["--", ref]
    assert "--" not in argv[:-2]


def test_image_ids_runs_no_podman_command_without_the_separator():
    calls = []

    def run(argv, **_kwargs):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "f" * 64 + "\n", "")

    refs = ["web:1", "reg.example.com/web@sha256:" + "b" * 64]
    images.image_ids(refs, True, run=run)
    images.image_ids(refs, False, run=run)
    assert len(calls) == 4
    assert all(argv[-2:] == ["--", ref] for argv, ref in zip(calls, refs + refs, strict=True))


# ---- cronjob_timer ---------------------------------------------------------------------------------------

JOB_TEMPLATE = {
    "metadata": {"labels": {"team": "ops"}},
    "spec": {
        "backoffLimit": 1,
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "command": ["/bin/sh", "-c", "date"]}]}},
    },
}


def action_config(name="report", node="node1", **fields):
    """The configuration the cronjob action builds for its node (the same code path as plugins/action/cronjob.py)."""
    spec = {"schedule": "*/5 9-17 * * MON-FRI", "jobTemplate": copy.deepcopy(JOB_TEMPLATE)}
    spec.update(fields)
    return parse_cronjob_spec(name, spec).config(node)


def timer_args(**params):
    return dict({key: copy.deepcopy(option.get("default")) for key, option in CRONJOB_TIMER_ARGS.items()}, **params)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("../../etc", "DNS-1123"), ("..", "DNS-1123"), ("a/b", "DNS-1123"), ("Report", "DNS-1123"), ("x\n", "DNS-1123"), ("a" * 53, "at most 52")],
)
@pytest.mark.parametrize("state", ["present", "absent", "report"])
def test_cronjob_timer_name_is_a_short_label(name, fragment, state):
    params = timer_args(name=name, state="absent" if state == "absent" else "present", report_only=state == "report", config=action_config())
    assert fragment in refused(lambda: cron_inputs.validate_args(params), "name")


@pytest.mark.parametrize("state_dir", ["var/lib/hostfleet", "/var/lib/hostfleet/../../etc", "/var/lib/./hostfleet", "/var/lib/hf\nx"])
def test_cronjob_timer_state_dir_is_absolute_and_clean(state_dir):
    refused(lambda: cron_inputs.validate_args(timer_args(name="report", state="absent", state_dir=state_dir)), "state_dir")


def test_cronjob_timer_refuses_before_reading_anything(untouched):
    for params, field in (
        (timer_args(name="../../../tmp", state="absent"), "name"),
        (timer_args(name="report", config=dict(action_config(), schedule="0\n*\n*\n*\n*")), "config.schedule"),
        (timer_args(name="report", state="present"), "config"),
    ):
        with pytest.raises(Failed) as info:
            cron_setup.run_module(FakeModule(CRONJOB_TIMER_ARGS, **params))
        assert info.value.args[0]["field"] == field, info.value.args[0]["msg"]


@pytest.mark.parametrize(
    ("fields", "node"),
    [
        ({}, "node1"),
        ({"schedule": "@daily", "timeZone": "Europe/Berlin", "startingDeadlineSeconds": 30, "suspend": True}, "db-2.example.com"),
        ({"schedule": "0 0 1,15 * 5", "timeZone": "America/Argentina/Buenos_Aires", "concurrencyPolicy": "Forbid"}, "10.77.12.3"),
        ({"schedule": "  7/13  */2 ? JAN-MAR,oct  *  ", "timeZone": "Etc/GMT+5", "successfulJobsHistoryLimit": 0}, "node1"),
    ],
)
def test_what_the_action_builds_is_accepted(fields, node):
    config = action_config(node=node, **fields)
    assert cron_inputs.validate_config("report", config) is config


@settings(max_examples=150, deadline=None)
@given(
    minute=st.sampled_from(["*", "0", "*/7", "5-50/5", "1,2,3,30-33", "59"]),
    hour=st.sampled_from(["*", "3", "*/2", "9-17", "0,12"]),
    dom=st.sampled_from(["*", "?", "1", "1-7", "*/10", "15,31"]),
    month=st.sampled_from(["*", "2", "JAN-MAR", "*/3", "dec"]),
    dow=st.sampled_from(["*", "?", "0", "7", "MON-FRI", "1,3,5", "*/2"]),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Etc/GMT-14"]),
    deadline=st.none() | st.integers(0, 10**6),
)
def test_every_config_the_action_builds_is_accepted(minute, hour, dom, month, dow, zone, deadline):
    text = f"{minute} {hour} {dom} {month} {dow}"
    try:
        config = action_config(schedule=text, timeZone=zone, startingDeadlineSeconds=deadline)
    except SpecError:
        return  # a schedule that never fires (30 February): the action refuses it already
    cron_inputs.validate_config("report", config)


def test_every_time_zone_name_has_the_characters_of_an_iana_name():
    from zoneinfo import available_timezones

    assert all(cron_inputs.TIME_ZONE_NAME.fullmatch(zone) for zone in available_timezones())


INJECTED = "\n[Service]\nExecStartPre=/bin/touch /tmp/pwned"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"schedule": "0\n*\n*\n*\n*"}, "config.schedule"),
        ({"schedule": "0 * * * *" + INJECTED}, "config.schedule"),
        ({"schedule": "0\t* * * *"}, "config.schedule"),
        ({"schedule": "0\r* * * *"}, "config.schedule"),
        ({"schedule": "0\u2003* * * *"}, "config.schedule"),
        ({"schedule": "   "}, "config.schedule"),
        ({"schedule": "%n * * * *"}, "config.schedule"),
        ({"timeZone": "UTC\n"}, "config.timeZone"),
        ({"timeZone": "../../etc/passwd"}, "config.timeZone"),
        ({"timeZone": "Europe/Berlin", "on_calendar": ["*-*-* 09..17:00/5:00 Europe/Berlin" + INJECTED]}, "config.on_calendar[0]"),
        ({"on_calendar": ["*-*-* *:*:00 UTC\nPersistent=true"]}, "config.on_calendar[0]"),
        ({"on_calendar": ["*-*-* *:*:00 Europe/Berlin"]}, "config.on_calendar[0]"),
        ({"on_calendar": ["minutely"]}, "config.on_calendar[0]"),
        ({"on_calendar": []}, "config.on_calendar"),
        ({"on_calendar": ["*-*-* *:*:00 UTC"] * 3}, "config.on_calendar"),
        ({"timer": {"AccuracySec": "100ms", "RandomizedDelaySec": "0", "Persistent": "true", "Unit": "evil.service"}}, "config.timer"),
        ({"timer": {"AccuracySec": "1h", "RandomizedDelaySec": "0", "Persistent": "true"}}, "config.timer"),
        ({"timer": {"AccuracySec": "100ms", "RandomizedDelaySec": "0", "Persistent": "false"}}, "config.timer"),
        ({"startingDeadlineSeconds": -1}, "config.startingDeadlineSeconds"),
        ({"startingDeadlineSeconds": "60"}, "config.startingDeadlineSeconds"),
        ({"name": "other"}, "config.name"),
        ({"node": "node1\nExecStart=/bin/sh"}, "config.node"),
        ({"node": ""}, "config.node"),
        ({"concurrencyPolicy": "Sometimes"}, "config.concurrencyPolicy"),
        ({"suspend": "yes"}, "config.suspend"),
        ({"failedJobsHistoryLimit": -1}, "config.failedJobsHistoryLimit"),
        ({"jobMetadata": {"labels": {"bad key!": "x"}}}, "config.jobMetadata.labels['bad key!']"),
        ({"raw": "ExecStart=/bin/sh"}, "config.raw"),
    ],
)
def test_config_values_that_reach_the_units_are_refused(change, field):
    config = dict(action_config(), **change)
    refused(lambda: cron_inputs.validate_config("report", config), field)


def test_config_keys_are_all_required():
    for key in cron_inputs.CONFIG_KEYS:
        config = action_config()
        del config[key]
        refused(lambda config=config: cron_inputs.validate_config("report", config), f"config.{key}")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"backoffLimit": "6"}, "config.job.backoffLimit"),
        ({"parallelism": None}, "config.job.parallelism"),
        ({"completionMode": "Sometimes"}, "config.job.completionMode"),
        ({"activeDeadlineSeconds": 0}, "config.job.activeDeadlineSeconds"),
        ({"podFailurePolicy": ["x"]}, "config.job.podFailurePolicy"),
        ({"extra": 1}, "config.job.extra"),
        ({"template": None}, "config.job.template"),
    ],
)
def test_config_job_is_the_normal_form(change, field):
    config = action_config()
    config["job"].update(change)
    refused(lambda: cron_inputs.validate_config("report", config), field)


def test_config_job_template_is_checked_as_a_runs_pod():
    config = action_config()
    config["job"]["template"]["spec"]["containers"][0]["command"] = ["relative/sh"]
    assert refused(lambda: cron_inputs.validate_config("report", config), "config.job.template.spec.containers[0].command[0]")
    config = action_config()
    config["job"]["template"]["spec"]["restartPolicy"] = "Always"
    refused(lambda: cron_inputs.validate_config("report", config), "config.job.template.spec.restartPolicy")
    config = action_config()
    config["job"]["template"]["metadata"]["labels"]["x"] = "a b"
    refused(lambda: cron_inputs.validate_config("report", config), "config.job.template.labels['x']")


UNIT_LINE = re.compile(r"(#[^\n]*|\[(Unit|Timer|Install|Service)\]|[A-Za-z]+=[^\n]*|)")


@settings(max_examples=50, deadline=None)
@given(
    schedule=st.sampled_from(["* * * * *", "@hourly", "0 0 1,15 * 5", "*/15 9-17 * * MON-FRI", "30 2 * 3 SUN"]),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "Pacific/Chatham"]),
)
def test_units_of_an_accepted_config_are_only_the_lines_the_module_writes(schedule, zone):
    config = cron_inputs.validate_config("report", action_config(schedule=schedule, timeZone=zone))
    units = cron_setup.render_units("report", config, "/var/lib/hostfleet", "/usr/bin/python3")
    timer = units["hfcron-report.timer"].split("\n")
    assert all(UNIT_LINE.fullmatch(line) for line in timer), timer
    keys = [line.split("=", 1)[0] for line in timer if "=" in line and not line.startswith("#")]
    assert keys == ["Description"] + ["OnCalendar"] * len(config["on_calendar"]) + sorted(config["timer"]) + ["Unit", "WantedBy"]
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", "".join(units.values()))


def test_timer_settings_have_one_source():
    from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.cronjob import oncalendar

    assert oncalendar.timer_settings is cron_inputs.timer_settings


# ---- pod / pod_info --------------------------------------------------------------------------------------


def pod_module(**params):
    return FakeModule(runner.POD_ARGS, **dict({"owner": "web"}, **params))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"delete_volumes": ["../../etc"]}, "delete_volumes[0]"),
        ({"delete_volumes": ["web-data", "/etc"]}, "delete_volumes[1]"),
        ({"delete_volumes": [".."]}, "delete_volumes[0]"),
        ({"remove": ["../web"]}, "remove[0]"),
        ({"owner": "../../etc"}, "owner"),
        ({"state_dir": "var/lib/hostfleet"}, "state_dir"),
        ({"state_dir": "/var/lib/hostfleet/../../etc"}, "state_dir"),
        ({"state_dir": "/var/lib/hostfleet\n"}, "state_dir"),
        ({"pods": [{"name": "../x", "spec": {"containers": [{"name": "m", "command": ["/bin/true"]}]}}]}, "pods[0].name"),
        ({"pods": [{"name": "x", "revision": "1/../../2", "spec": {"containers": [{"name": "m", "command": ["/bin/true"]}]}}]}, "pods[0].revision"),
    ],
)
def test_pod_refuses_paths_and_names_before_touching_the_host(untouched, params, field):
    with pytest.raises(Failed) as info:
        runner.run_pod(pod_module(**params))
    assert info.value.args[0]["field"] == field, info.value.args[0]["msg"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"state_dir": "relative"}, "state_dir"),
        ({"state_dir": "/var/lib/../../etc"}, "state_dir"),
        ({"owner": "../x"}, "owner"),
        ({"names": ["ok", "../x"]}, "names[1]"),
        ({"selector": {"app\n": "x"}}, "selector['app\\n']"),
    ],
)
def test_pod_info_refuses_paths_and_names_before_reading_the_host(untouched, params, field):
    with pytest.raises(Failed) as info:
        runner.run_pod_info(FakeModule(runner.POD_INFO_ARGS, **params))
    assert info.value.args[0]["field"] == field, info.value.args[0]["msg"]
