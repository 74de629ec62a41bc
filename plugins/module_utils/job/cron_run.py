# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A CronJob on its host between playbook runs: the timer fires, a run starts, each run is a Job.

Installed on the host by the cronjob_timer module (with the node layer and
``tracking.py``, under ``<state>/lib``) and run as ``<state>/bin/hostfleet-cron``:

* ``fire STATE NAME`` (``hfcron-<name>.service``, started by the CronJob's
  timer at each scheduled minute): applies ``startingDeadlineSeconds`` and
  ``concurrencyPolicy`` (Forbid skips while a run is active, Replace stops
  and deletes the active runs, Allow overlaps), names the run
  ``<name>-<unix minutes of the schedule>`` as Kubernetes does, writes its
  record and starts its supervisor, the transient unit ``hfrun-<run>.service``.
  A systemd timer alone would only ever give Forbid: it never starts a
  second instance of an active unit, which is why a run is not the timer's
  own service.
* ``supervise STATE NAME RUN``: runs the Job with ``tracking.sync`` on this
  host (backoff, deadline, exit-code policy, as a fleet-wide Job) until it
  ends, then keeps only the newest ``successfulJobsHistoryLimit`` /
  ``failedJobsHistoryLimit`` finished runs (their pods and records go; the
  journal keeps their output). SIGTERM (Replace, deletion) removes the run's
  pods and record: Kubernetes deletes a replaced Job.

Files: ``<state>/cronjobs/<name>/cronjob.json`` (the config the module
wrote), ``runs/<run>.json`` (each run's Job record plus ``scheduled`` and
``fired_at``), ``status.json`` (lastScheduleTime, skipped runs).
"""

from __future__ import annotations

# A standalone program run by systemd, not by AnsibleModule: subprocess and sys.exit are its tools.
# pylint: disable=ansible-bad-function
import fcntl
import json
import os
import signal
import subprocess
import sys
import time

from ansible_collections.hostfleet.workloads.plugins.module_utils.job import tracking
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import fileio

TIMER_PREFIX = "hfcron-"
RUN_PREFIX = "hfrun-"
POLL = 0.25
SKIPPED_KEPT = 10


def cron_dir(state_dir, name):
    return os.path.join(state_dir, "cronjobs", name)


def runs_dir(state_dir, name):
    return os.path.join(cron_dir(state_dir, name), "runs")


def run_unit(run):
    return f"{RUN_PREFIX}{run}.service"


def read_json(path, default=None):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return default


def write_json(path, data, mode=0o600):
    """A CronJob's record or status, atomically and synced (run history must survive a power cut)."""
    fileio.ensure_dir(os.path.dirname(path), 0o755)
    fileio.write_atomic(path, json.dumps(data, sort_keys=True), mode)


class Lock:
    """One CronJob's lock: fire and the history cleanup never interleave."""

    def __init__(self, state_dir, name):
        fileio.ensure_dir(cron_dir(state_dir, name), 0o755)
        self.path = os.path.join(cron_dir(state_dir, name), "lock")

    def __enter__(self):
        # Never through a symlink; 0600 whatever the umask (only root takes this lock).
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        self.handle = os.fdopen(fd, "a")
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def list_runs(state_dir, name):
    """Every run record of a CronJob, oldest first."""
    base = runs_dir(state_dir, name)
    try:
        files = sorted(os.listdir(base))
    except FileNotFoundError:
        return []
    runs = []
    for filename in files:
        if filename.endswith(".json"):
            record = read_json(os.path.join(base, filename))
            if record:
                runs.append(record)
    return sorted(runs, key=lambda r: (r.get("scheduled") or 0, r.get("name") or ""))


def active_units(name):
    """Run supervisors of this CronJob that systemd has active (one list-units call)."""
    done = subprocess.run(
        ["systemctl", "list-units", "--all", "--plain", "--no-legend", "--no-pager", "--full", f"{RUN_PREFIX}{name}-*"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    active = set()
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        fields = line.split(None, 4)
        if len(fields) >= 3 and fields[2] in ("active", "activating", "deactivating", "reloading"):
            active.add(fields[0])
    return active


def is_finished(record):
    return tracking.finished_condition(tracking.load_record(record, record.get("name", ""))) is not None


def remove_run(state_dir, name, run):
    """A run's pods (units, records) and its record go; the journal keeps what they printed."""
    from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge

    host = converge.Host(state_dir)
    plan = converge.plan(host, tracking.KIND, run, [], "absent", sys.executable)
    converge.apply(host, plan)
    try:
        os.unlink(os.path.join(runs_dir(state_dir, name), f"{run}.json"))
    except FileNotFoundError:
        pass


def apply_history(state_dir, name, config):
    """Keep the newest N successful and M failed finished runs; remove the others (Kubernetes' history limits)."""
    finished = [r for r in list_runs(state_dir, name) if is_finished(r)]
    succeeded = [r for r in finished if tracking.finished_condition(r)["type"] == tracking.COMPLETE]
    failed = [r for r in finished if tracking.finished_condition(r)["type"] == tracking.FAILED]
    doomed = []
    for runs, limit in ((succeeded, config.get("successfulJobsHistoryLimit", 3)), (failed, config.get("failedJobsHistoryLimit", 1))):
        runs = sorted(runs, key=lambda r: (r.get("finished_time") or 0, r.get("scheduled") or 0))
        doomed += runs[: max(0, len(runs) - limit)]
    for record in doomed:
        remove_run(state_dir, name, record["name"])
    return [r["name"] for r in doomed]


def run_name(name, scheduled):
    """Kubernetes' name for a CronJob's Job: <cronjob>-<scheduled time in unix minutes>."""
    return f"{name}-{int(scheduled // 60)}"


def _log(message):
    print(message, file=sys.stderr, flush=True)


def fire(state_dir, name, fired_at=None):
    """The timer fired: start a run (or skip it, per the config)."""
    fired_at = fired_at or time.time()
    config = read_json(os.path.join(cron_dir(state_dir, name), "cronjob.json"))
    if not config:
        _log(f"CronJob {name}: no configuration under {cron_dir(state_dir, name)}: nothing to run")
        return 1
    if config.get("suspend"):
        _log(f"CronJob {name} is suspended: no new run")
        return 0
    # Cron's resolution is the minute: the run is for the minute the timer fired in.
    scheduled = fired_at - (fired_at % 60)
    status_path = os.path.join(cron_dir(state_dir, name), "status.json")
    with Lock(state_dir, name):
        status = read_json(status_path, {})
        run = run_name(name, scheduled)
        deadline = config.get("startingDeadlineSeconds")

        def skip(reason):
            _log(f"CronJob {name}: run {run} skipped: {reason}")
            status["skipped"] = (status.get("skipped") or [])[-(SKIPPED_KEPT - 1) :] + [{"run": run, "scheduled": scheduled, "reason": reason}]
            write_json(status_path, status)
            return 0

        if deadline is not None and fired_at - scheduled > deadline:
            return skip(f"{fired_at - scheduled:.0f} s late, more than startingDeadlineSeconds ({deadline})")
        if os.path.exists(os.path.join(runs_dir(state_dir, name), f"{run}.json")):
            return skip("a run for this scheduled time exists already")
        supervised = active_units(name)
        active = []
        for record in list_runs(state_dir, name):
            if is_finished(record):
                continue
            if run_unit(record["name"]) in supervised:
                active.append(record["name"])
            else:
                # Its supervisor is gone (the host restarted mid-run): the run cannot end by itself.
                record = tracking.load_record(record, record["name"])
                tracking.fail(record, "SupervisorLost", "the run's supervisor ended before the Job finished (host restart?)", fired_at)
                write_json(os.path.join(runs_dir(state_dir, name), f"{record['name']}.json"), record)
        policy = config.get("concurrencyPolicy", "Allow")
        if active and policy == "Forbid":
            return skip(f"concurrencyPolicy Forbid and run(s) {', '.join(active)} still active")
        if active and policy == "Replace":
            for old in active:
                _log(f"CronJob {name}: concurrencyPolicy Replace: stopping and deleting run {old}")
                # The supervisor's SIGTERM handler removes its pods and record (a replaced Job is deleted).
                subprocess.run(["systemctl", "stop", run_unit(old)], stdin=subprocess.DEVNULL, check=False)
                if os.path.exists(os.path.join(runs_dir(state_dir, name), f"{old}.json")):
                    remove_run(state_dir, name, old)
        record = tracking.new_record(run)
        record.update(scheduled=scheduled, fired_at=fired_at, cronjob=name, node=config.get("node"))
        write_json(os.path.join(runs_dir(state_dir, name), f"{run}.json"), record)
        status["lastScheduleTime"] = scheduled
        write_json(status_path, status)
        grace = int((config["job"]["template"].get("spec") or {}).get("terminationGracePeriodSeconds", 30) or 0)
        command = [
            "systemd-run",
            f"--unit={run_unit(run)}",
            "--collect",
            "--no-block",
            "--quiet",
            f"--description=hostfleet CronJob {name}: run {run}",
            f"--property=TimeoutStopSec={grace + 60}s",
            f"--property=SyslogIdentifier=cronjob/{name}",
            "--",
            sys.executable,
            "-I",
            "-S",
            os.path.join(state_dir, "bin", "hostfleet-cron"),
            "supervise",
            state_dir,
            name,
            run,
        ]
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, check=False)
        if done.returncode != 0:
            _log(f"CronJob {name}: could not start run {run}: {done.stderr.decode('utf-8', 'replace').strip()}")
            os.unlink(os.path.join(runs_dir(state_dir, name), f"{run}.json"))
            return 1
        _log(f"CronJob {name}: run {run} started ({fired_at - scheduled:.3f} s after the scheduled minute)")
    return 0


def supervise(state_dir, name, run):
    """Drive one run's Job on this host until it ends (see the module docstring)."""
    from ansible_collections.hostfleet.workloads.plugins.module_utils.network import config as network_config
    from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, podnet, systemctl
    from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import validate_pod

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_unused: stopping.append(True))
    host = converge.Host(state_dir)
    path = os.path.join(runs_dir(state_dir, name), f"{run}.json")
    config = read_json(os.path.join(cron_dir(state_dir, name), "cronjob.json")) or {}
    spec = config.get("job")
    if not spec:
        _log(f"CronJob {name}: run {run}: no Job spec in the configuration")
        return 1
    node = config.get("node") or "localhost"
    metadata = config.get("jobMetadata") or {}
    # A node of the cluster network (node.json): the run's pods join its pod network, as every other pod does
    # (hostNetwork: true keeps the host's).
    node_config = network_config.read_node_config(state_dir)
    network = {"cidr": node_config["cidr"], "bridge": node_config["bridge"]} if node_config is not None else None
    while True:
        if stopping:
            _log(f"CronJob {name}: run {run} stopped: its pods and record are removed")
            remove_run(state_dir, name, run)
            return 0
        stored = read_json(path)
        if stored is None:
            return 0  # deleted meanwhile (history, the CronJob removed)
        now = time.time()
        statuses = converge.observe(host, tracking.KIND, run)
        decision = tracking.sync(spec, stored, [tracking.job_pod(s, node) for s in statuses], (), now, run)
        record = decision.record
        starts = []
        for start in decision.start:
            template = tracking.pod_template(spec["template"], run, start["index"])
            labels = dict(metadata.get("labels") or {}, **(template.get("metadata") or {}).get("labels", {}))
            pod = {"name": start["name"], "labels": labels, "annotations": (template.get("metadata") or {}).get("annotations") or {}, "spec": template["spec"]}
            starts.append(validate_pod(pod, f"run {run} pod {start['name']}", network is not None))
        remove = sorted({s["name"] for s in decision.stop} | ({s["name"] for s in statuses} if decision.remove_all else set()))
        if starts or remove:
            # Pod addresses are handed out under the host's network lock, as the pod module's converges do.
            lock = podnet.lock(state_dir) if network is not None else None
            if lock is not None:
                lock.__enter__()
            try:
                plan = converge.plan(
                    host, tracking.KIND, run, starts, "present", sys.executable, systemctl.list_units("hf-*"), prune=False, remove=remove,
                    network=network, host_ip=node_config["address"] if node_config is not None else None, node_config=node_config,
                )
                converge.apply(host, plan)
            finally:
                if lock is not None:
                    lock.__exit__(None, None, None)
            for start in decision.start:
                tracking.commit_start(record, start["name"], start["index"], node, now)
        for event in decision.events:
            _log(f"CronJob {name}: run {run}: {event}")
        if read_json(path) is None:
            return 0
        write_json(path, record)
        if decision.finished and not starts:
            _log(f"CronJob {name}: run {run} ended: {decision.message}")
            with Lock(state_dir, name):
                removed = apply_history(state_dir, name, config)
            if removed:
                _log(f"CronJob {name}: history limits removed run(s) {', '.join(removed)}")
            return 0
        wait = POLL if decision.wake_at is None else max(0.05, min(POLL, decision.wake_at - now))
        time.sleep(wait)


def main(argv, started=None):
    """``started``: when the program started (the launcher measures how late a run fires from it)."""
    usage = "usage: hostfleet-cron fire STATE_DIR NAME | supervise STATE_DIR NAME RUN"
    if len(argv) == 3 and argv[0] == "fire":
        return fire(argv[1], argv[2], started)
    if len(argv) == 4 and argv[0] == "supervise":
        return supervise(argv[1], argv[2], argv[3])
    print(usage, file=sys.stderr)
    return 2
