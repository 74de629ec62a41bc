"""A kind's action plugin run against a simulated fleet (issue 13): the one orchestration path, without hosts.

``SimFleet`` answers the node modules the loop calls (pod_info, pod) in memory, for any owner; ``run_action``
builds a kind's ActionModule with a stand-in Ansible task and runs ``WorkloadAction.run_task`` over the fleet.
"""

from __future__ import annotations

import importlib
from types import SimpleNamespace

from ansible_collections.hostfleet.workloads.plugins.plugin_utils import workload_action, workload_task
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import LABELS_VAR
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_task import INFO_MODULE, NODE_MODULE, WorkloadTask

TIMER_MODULE = "hostfleet.workloads.cronjob_timer"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class SimFleet:
    """Nodes that keep pods and owner records in memory; every started pod is running and ready at once."""

    def __init__(self, clock, hosts=("a", "b", "c")):
        self.clock = clock
        self.hosts = list(hosts)
        self.pods = {h: {} for h in hosts}  # host: {pod name: status (with its owner)}
        self.records = {h: {} for h in hosts}  # host: {"Kind/name": record}
        self.timers = {h: {} for h in hosts}  # host: {CronJob name: its configuration}
        self.labels = {h: {} for h in hosts}
        self.asked = []

    def groups_of(self, host):
        return ["lab"]

    def host_vars(self, host):
        return {LABELS_VAR: self.labels[host]}

    def emit_warnings(self, results):
        pass

    def acts(self):
        return [hosts for module, hosts in self.asked if module == NODE_MODULE]

    def run_module(self, module, args_per_host, check_mode=None, timeout=None):
        self.asked.append((module, sorted(args_per_host)))
        out = {}
        for host, args in args_per_host.items():
            if module == TIMER_MODULE:
                out[host] = self._timer(host, args, check_mode)
                continue
            if module == INFO_MODULE:
                out[host] = {"pods": list(self.pods[host].values()), "owner_records": dict(self.records[host]), "observed_at": self.clock.now}
                continue
            assert module == NODE_MODULE, module
            owner = {"kind": args["owner_kind"], "name": args["owner"]}
            key = f"{owner['kind']}/{owner['name']}"
            if args.get("state") == "absent":
                deleted = sorted(n for n, p in self.pods[host].items() if p["owner"] == owner)
                if not check_mode:
                    for name in deleted:
                        del self.pods[host][name]
                    self.records[host].pop(key, None)
                out[host] = {"changed": bool(deleted), "deleted": deleted}
                continue
            for name in args.get("remove", ()):
                self.pods[host].pop(name, None)
            for pod in args.get("pods", ()):
                self.pods[host][pod["name"]] = {
                    "name": pod["name"],
                    "owner": owner,
                    "revision": pod["revision"],
                    "phase": "Running",
                    "ready": True,
                    "ready_since": self.clock.now,
                    "created": self.clock.now,
                }
            self.records[host][key] = args["owner_record"]
            out[host] = {"changed": True}
        return out

    def _timer(self, host, args, check_mode):
        """cronjob_timer's contract: report, install (what differs) or remove one CronJob here."""
        timers = self.timers[host]
        name = args["name"]
        if args.get("report_only"):
            return {"installed": name in timers, "config": timers.get(name), "observed_at": self.clock.now}
        if args["state"] == "absent":
            changed = name in timers
            if not check_mode:
                timers.pop(name, None)
            return {"changed": changed, "runs_removed": []}
        changed = timers.get(name) != args["config"]
        if not check_mode:
            timers[name] = args["config"]
        return {"changed": changed, "runs": [], "last_schedule": None, "last_success": None, "skipped_runs": [], "timer": {"active": True}}

    def plant(self, key, record):
        for host in self.hosts:
            self.records[host][key] = record


def patch_clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(workload_task, "time", clock)
    monkeypatch.setattr(workload_action, "time", clock)
    return clock


def make_action(module, args, check_mode=False, diff=False):
    """The kind's ActionModule with a stand-in task; returns (action, the validated arguments)."""
    action_module = importlib.import_module(f"ansible_collections.hostfleet.workloads.plugins.action.{module}").ActionModule
    task = SimpleNamespace(args=dict(args), check_mode=check_mode, diff=diff, get_name=lambda: "test task")
    action = action_module(task, None, None, None, None)
    action._task_vars = {}
    _validation, validated = action.validate_argument_spec(argument_spec=action.controller.info.argument_spec)
    return action, validated


def run_action(fleet, module, args, check_mode=False, diff=False, grace=None):
    """Run a kind's task (present or absent) over ``fleet`` as ``ActionModule.run`` would, once the fleet is open."""
    action, validated = make_action(module, args, check_mode, diff)
    flags = action.controller
    action.check_arguments(validated)
    validated = action.on_nodes(validated)
    observer = action.observer(validated)
    task = WorkloadTask(
        fleet, action.KIND, validated["name"], validated["state_dir"], check_mode, grace=grace, track_placement=flags.tracks_placement, observer=observer
    )
    return action.run_task({}, task, validated, check_mode)


def template(command, labels=None):
    return {"metadata": {"labels": labels or {"app": "web"}}, "spec": {"containers": [{"name": "main", "command": command}]}}
