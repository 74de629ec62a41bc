# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The body of the cronjob_timer module: a CronJob's timer, its runner and its runs on one host.

``present`` installs (only what differs, so a re-run changes nothing):

* the runner: ``cron_run.py`` with what it imports (the node layer,
  ``tracking.py``) under ``<state>/lib`` and ``<state>/bin/hostfleet-cron``;
* the CronJob's configuration, ``<state>/cronjobs/<name>/cronjob.json``;
* ``hfcron-<name>.timer`` (``OnCalendar=`` lines, ``AccuracySec=``,
  ``Persistent=``) and ``hfcron-<name>.service`` (the launcher), the timer
  enabled and started, or stopped and disabled when suspended (running
  runs are left alone, as Kubernetes does).

``absent`` stops the timer and every active run, removes every run's pods
and records, the units and the configuration. ``report_only`` changes nothing and reports.
"""

from __future__ import annotations

# Reads systemd's timer state outside run_command: report() is also used without a module (tests, the runner).
# pylint: disable=ansible-bad-function
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone

from ansible_collections.hostfleet.workloads.plugins.module_utils.job import cron_run, tracking
from ansible_collections.hostfleet.workloads.plugins.module_utils.job.cron_inputs import validate_args
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, fileio, node_facts, systemctl
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import units as render

TIMERS_WANTS = "/etc/systemd/system/timers.target.wants"
# Where systemd keeps a Persistent= timer's last trigger: a CronJob created anew must not inherit it.
TIMER_STAMPS = "/var/lib/systemd/timers"
LIB_PACKAGES = ("", "node", "job", "network")  # under plugins/module_utils: empty __init__.py files
BIN_SOURCE = """#!/usr/bin/python3
# Installed by hostfleet.workloads.cronjob_timer: runs a CronJob's runs on this host (module_utils/job/cron_run.py).
import time

STARTED = time.time()  # before any import: how late a run fires is measured from here

import os  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from ansible_collections.hostfleet.workloads.plugins.module_utils.job import cron_run  # noqa: E402

sys.exit(cron_run.main(sys.argv[1:], STARTED))
"""


def _source(module):
    loader = getattr(module, "__loader__", None)
    source = loader.get_source(module.__name__) if loader is not None and hasattr(loader, "get_source") else None
    if source is None:
        with open(module.__file__) as handle:
            source = handle.read()
    return source


def runner_files(state_dir):
    """{path: content} of the runner: the modules cron_run imports, as this module carries them."""
    from ansible_collections.hostfleet.workloads.plugins.module_utils import timefmt
    from ansible_collections.hostfleet.workloads.plugins.module_utils.node import events, fence, hook, namespaces, podnet, podspec, quantity, status

    base = os.path.join(state_dir, "lib", "ansible_collections", "hostfleet", "workloads", "plugins", "module_utils")
    files = {os.path.join(base, package, "__init__.py"): "" for package in LIB_PACKAGES}
    for module in (converge, events, fence, fileio, hook, namespaces, podnet, podspec, quantity, status, systemctl, render, timefmt, tracking, cron_run):
        relative = module.__name__.split(".module_utils.", 1)[1].replace(".", "/") + ".py"
        files[os.path.join(base, relative)] = _source(module)
    # The node modules the converge, the units and the hook import: the downward API and the pods' own volumes, the
    # gRPC health check (the installed hook carries it inlined), pull secrets, init containers, security contexts.
    from ansible_collections.hostfleet.workloads.plugins.module_utils.node import downward, grpc_probe, init_containers, registry_auth, security_context

    for module in (downward, grpc_probe, init_containers, registry_auth, security_context):
        files[os.path.join(base, "node", module.__name__.rsplit(".", 1)[1] + ".py")] = _source(module)
    files[os.path.join(state_dir, "bin", "hostfleet-cron")] = BIN_SOURCE
    # The runs' pods join the node's pod network (node.json), with their resolv.conf (cluster DNS), and the converge
    # runs the host's network sync (the Service rules) after it: the network modules go along.
    from ansible_collections.hostfleet.workloads.plugins.module_utils.network import config as network_config
    from ansible_collections.hostfleet.workloads.plugins.module_utils.network import dns as cluster_dns
    from ansible_collections.hostfleet.workloads.plugins.module_utils.network import nftables, services, sync

    for module in (network_config, cluster_dns, nftables, services, sync):
        files[os.path.join(base, "network", module.__name__.rsplit(".", 1)[1] + ".py")] = _source(module)
    return files


def timer_unit(name):
    return f"{cron_run.TIMER_PREFIX}{name}.timer"


def service_unit(name):
    return f"{cron_run.TIMER_PREFIX}{name}.service"


def render_units(name, config, state_dir, python):
    """{unit: content} of the CronJob's timer and launcher. Pure."""
    schedule = str(config["schedule"]).replace("%", "%%")
    timer = [
        render.HEADER,
        "[Unit]\n",
        f"Description=hostfleet CronJob {name}: schedule {schedule} ({config['timeZone']})\n",
        "\n[Timer]\n",
    ]
    timer += [f"OnCalendar={expression}\n" for expression in config["on_calendar"]]
    timer += [f"{key}={value}\n" for key, value in sorted(config["timer"].items())]
    timer += [f"Unit={service_unit(name)}\n", "\n[Install]\n", "WantedBy=timers.target\n"]
    service = [
        render.HEADER,
        "[Unit]\n",
        f"Description=hostfleet CronJob {name}: start a run\n",
        "\n[Service]\n",
        "Type=oneshot\n",
        f"ExecStart={render.exec_line([python, '-I', '-S', os.path.join(state_dir, 'bin', 'hostfleet-cron'), 'fire', state_dir, name])}\n",
        f"SyslogIdentifier=cronjob/{name}\n",
    ]
    return {timer_unit(name): "".join(timer), service_unit(name): "".join(service)}


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return None


def _show_timer(name):
    # systemd 252 prints these times only in its pretty form: ask for it in UTC and the C locale.
    done = subprocess.run(
        ["systemctl", "show", timer_unit(name), "-p", "ActiveState", "-p", "NextElapseUSecRealtime", "-p", "LastTriggerUSec"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
        env=dict(os.environ, TZ="UTC", LC_ALL="C"),
    )
    values = dict(line.split("=", 1) for line in done.stdout.decode("utf-8", "replace").splitlines() if "=" in line)

    def stamp(text):
        try:
            return datetime.strptime((text or "").strip(), "%a %Y-%m-%d %H:%M:%S UTC").replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            return None

    return {"active": values.get("ActiveState") == "active", "next": stamp(values.get("NextElapseUSecRealtime")), "last": stamp(values.get("LastTriggerUSec"))}


def report(state_dir, name, spec):
    """The CronJob's runs on this host and its timer, as the controller shows them."""
    supervised = cron_run.active_units(name)
    runs = []
    last_success = None
    for record in cron_run.list_runs(state_dir, name):
        rec = tracking.load_record(record, record["name"])
        finished = tracking.finished_condition(rec)
        active = finished is None and cron_run.run_unit(rec["name"]) in supervised
        if finished is not None and finished["type"] == tracking.COMPLETE:
            last_success = max(last_success or 0, rec.get("completion_time") or 0)
        runs.append(
            {
                "name": rec["name"],
                "scheduled": tracking.rfc3339(rec.get("scheduled")),
                "scheduled_at": rec.get("scheduled"),
                "fired_at": rec.get("fired_at"),
                "active": active,
                "outcome": finished["type"] if finished else ("Active" if active else "Unknown"),
                "status": tracking.job_status(rec, spec or {}),
                "pods": tracking.pod_report(rec),
            }
        )
    status = cron_run.read_json(os.path.join(cron_run.cron_dir(state_dir, name), "status.json"), {})
    return {
        "runs": runs,
        "last_schedule": status.get("lastScheduleTime"),
        "last_success": last_success,
        "skipped_runs": status.get("skipped") or [],
        "timer": _show_timer(name),
    }


def converge_present(state_dir, name, config, check_mode, python=None):
    """Install what differs; return (changed, diff entries)."""
    python = python or sys.executable
    config_path = os.path.join(cron_run.cron_dir(state_dir, name), "cronjob.json")
    config_text = json.dumps(config, sort_keys=True, indent=1) + "\n"
    writes = {
        path: (content, 0o755 if path.endswith("hostfleet-cron") else 0o644) for path, content in runner_files(state_dir).items() if _read(path) != content
    }
    diff = []
    before_config = _read(config_path)
    if before_config != config_text:
        writes[config_path] = (config_text, 0o600)
        diff.append({"before_header": config_path, "after_header": config_path, "before": before_config or "", "after": config_text})
    units = render_units(name, config, state_dir, python)
    changed_units = []
    for unit, content in units.items():
        path = os.path.join(render.UNIT_DIR, unit)
        before = _read(path)
        if before != content:
            writes[path] = (content, 0o644)
            changed_units.append(unit)
            diff.append({"before_header": path, "after_header": path, "before": before or "", "after": content})
    link = os.path.join(TIMERS_WANTS, timer_unit(name))
    enabled = os.path.islink(link)
    timer = _show_timer(name) if not changed_units else {"active": False}
    suspend = bool(config.get("suspend"))
    start = not suspend and (not timer["active"] or timer_unit(name) in changed_units)
    stop = suspend and (timer["active"] or enabled)
    changed = bool(writes) or (enabled == suspend) or start or stop
    if check_mode or not changed:
        return changed, diff
    if _read(os.path.join(render.UNIT_DIR, timer_unit(name))) is None:
        # A new CronJob: a stamp left by an earlier one of the same name would trigger a catch-up run at once.
        converge._unlink(os.path.join(TIMER_STAMPS, f"stamp-{timer_unit(name)}"))
    for path, (content, mode) in sorted(writes.items()):
        converge._write_atomic(path, content, mode)  # makes its directory 0755 whatever the umask
    if changed_units:
        systemctl.daemon_reload()
    if suspend:
        converge._unlink(link)
        systemctl.stop([timer_unit(name)])
    else:
        if not enabled:
            fileio.ensure_dir(TIMERS_WANTS, 0o755)
            converge._unlink(link)
            os.symlink(os.path.join(render.UNIT_DIR, timer_unit(name)), link)
        if start:
            # restart: a changed schedule takes effect now (start alone would keep the old elapse time)
            systemctl._run(["restart", timer_unit(name)])
    return changed, diff


def converge_absent(state_dir, name, check_mode):
    """Remove the CronJob from this host: timer, active runs (stopped), every run's pods and records."""
    paths = [os.path.join(render.UNIT_DIR, timer_unit(name)), os.path.join(render.UNIT_DIR, service_unit(name)), os.path.join(TIMERS_WANTS, timer_unit(name))]
    directory = cron_run.cron_dir(state_dir, name)
    runs = cron_run.list_runs(state_dir, name)
    changed = any(os.path.lexists(p) for p in paths) or os.path.isdir(directory)
    if check_mode or not changed:
        return changed, [r["name"] for r in runs]
    systemctl.stop([timer_unit(name)])
    active = sorted(cron_run.active_units(name))
    if active:
        systemctl.stop(active)
    for record in cron_run.list_runs(state_dir, name):
        cron_run.remove_run(state_dir, name, record["name"])
    for path in paths + [os.path.join(TIMER_STAMPS, f"stamp-{timer_unit(name)}")]:
        converge._unlink(path)
    systemctl.daemon_reload()
    import shutil

    shutil.rmtree(directory, ignore_errors=True)
    return True, [r["name"] for r in runs]


def run_module(module):
    params = module.params
    try:
        state_dir, name = validate_args(params)  # before any path is read: name and state_dir make paths
    except ValueError as exc:
        module.fail_json(msg=f"invalid CronJob arguments: {exc}", field=getattr(exc, "path", None))
    try:
        if params["report_only"]:
            config = cron_run.read_json(os.path.join(cron_run.cron_dir(state_dir, name), "cronjob.json"))
            result = dict(changed=False, installed=config is not None, config=config)
            if config is not None:
                result.update(report(state_dir, name, config.get("job")))
            if params["node_facts"]:
                result["node_facts"] = node_facts.facts()  # the cronjob action's first look: the node's labels
        elif params["state"] == "present":
            config = params["config"]
            changed, diff = converge_present(state_dir, name, config, module.check_mode)
            result = dict(changed=changed, **report(state_dir, name, config.get("job")))
            if module._diff:
                result["diff"] = diff
        elif params["state"] == "absent":
            changed, removed = converge_absent(state_dir, name, module.check_mode)
            result = dict(changed=changed, runs_removed=removed)
    except (systemctl.SystemctlError, OSError, ValueError) as exc:
        module.fail_json(msg=f"CronJob {name}: {exc}")
    result["observed_at"] = time.time()
    module.exit_json(**result)
