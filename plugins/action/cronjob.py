# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostfleet.workloads.cronjob: one task that puts a CronJob's systemd timer on its node(s) of the fleet.

Between playbook runs the node runs the CronJob by itself: its timer fires,
and each run is a Job driven on that node by module_utils/job/cron_run.py
with the same Job semantics as a fleet-wide Job (module_utils/job/tracking.py).

Placement: one eligible ready node (``run_on: one``, the default), kept while
it stays eligible and reachable, else chosen by rendezvous hashing (stable as
nodes come and go); or every eligible node (``run_on: every``). Eligible: the
job template's nodeSelector and required node affinity match the node.
"""

from __future__ import annotations

import hashlib
import json

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.hostfleet.workloads.plugins.module_utils.job import tracking
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, clean_abs_path
from ansible_collections.hostfleet.workloads.plugins.module_utils.workload_args import CRONJOB_ARGS
from ansible_collections.hostfleet.workloads.plugins.plugin_utils._fanout import Fleet
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.cronjob.spec import parse_cronjob_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import CAPACITY_VAR, LABELS_VAR, node_from_inventory

NODE_MODULE = "hostfleet.workloads.cronjob_timer"
SPEC_KEYS = (
    "schedule",
    "timeZone",
    "concurrencyPolicy",
    "startingDeadlineSeconds",
    "suspend",
    "successfulJobsHistoryLimit",
    "failedJobsHistoryLimit",
    "jobTemplate",
)


def rendezvous(name: str, nodes: list[str]) -> str:
    """The node with the highest hash of (CronJob, node): a node joining or leaving moves only its own CronJobs."""
    return max(nodes, key=lambda node: hashlib.sha256(f"{name}/{node}".encode()).hexdigest())


class ActionModule(ActionBase):
    BYPASS_HOST_LOOP = True
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=CRONJOB_ARGS)
        name = args["name"]
        spec = None
        try:
            clean_abs_path(args["state_dir"], "state_dir")  # as cronjob_timer checks it on the nodes
            if args["state"] == "present":
                fields = {key: args[key] for key in SPEC_KEYS if args.get(key) is not None}
                spec = parse_cronjob_spec(name, fields)
            else:
                parse_cronjob_spec(
                    name,
                    {
                        "schedule": "@daily",
                        "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "x", "command": ["/bin/true"]}]}}}},
                    },
                )
        except SpecError as exc:
            return dict(result, failed=True, changed=False, msg=f"invalid CronJob spec: {exc}", field=exc.path)
        hosts = Fleet.select(self, task_vars, args["nodes"])
        if not hosts:
            raise AnsibleActionFail(f"no node of the play matches nodes={args['nodes']!r}")
        check_mode = bool(self._task.check_mode)
        base = {"name": name, "state_dir": args["state_dir"]}
        with Fleet(self, task_vars, hosts) as fleet:
            # 1. where is it now
            seen = fleet.run_module(NODE_MODULE, {h: dict(base, report_only=True) for h in hosts}, check_mode=False, timeout=args["wait_timeout"])
            fleet.emit_warnings(seen)
            reachable = [h for h in hosts if not (seen[h].get("unreachable") or seen[h].get("failed"))]
            unreachable = {h: seen[h].get("msg") or "unreachable" for h in hosts if h not in reachable}
            installed = [h for h in reachable if seen[h].get("installed")]
            # 2. where it should be
            if spec is None:
                targets = []
            else:
                eligible = []
                for host in reachable:
                    hostvars = fleet.host_vars(host)
                    node = node_from_inventory(host, True, {k: hostvars[k] for k in (LABELS_VAR, CAPACITY_VAR) if k in hostvars}, fleet.groups_of(host))
                    if spec.job.template.constraints.matches_node_affinity(node):
                        eligible.append(host)
                if not eligible:
                    return dict(
                        result,
                        failed=True,
                        changed=False,
                        msg=f"CronJob {name}: no reachable node matches the job template's node constraints",
                        unreachable_nodes=sorted(unreachable),
                    )
                if args["run_on"] == "every":
                    targets = eligible
                else:
                    kept = [h for h in installed if h in eligible]
                    targets = [kept[0]] if kept else [rendezvous(name, eligible)]
            # 3. install there, remove elsewhere
            calls = {h: dict(base, state="present", config=spec.config(h)) for h in targets}
            calls.update({h: dict(base, state="absent") for h in installed if h not in targets})
            done = fleet.run_module(NODE_MODULE, calls, check_mode=check_mode, timeout=args["wait_timeout"]) if calls else {}
            fleet.emit_warnings(done)
        failures = {h: r.get("msg") for h, r in done.items() if r.get("failed") or r.get("unreachable")}
        if failures:
            return dict(result, failed=True, changed=any(r.get("changed") for r in done.values()), msg=f"CronJob {name}: acting on nodes failed: {failures}")
        changed = any(r.get("changed") for r in done.values())
        if spec is None:
            removed = {h: done[h].get("runs_removed", []) for h in done}
            return dict(result, changed=changed, removed_from=sorted(done), runs_removed=removed, unreachable_nodes=sorted(unreachable))
        runs = sorted(
            (dict(run, node=h) for h in targets for run in done[h].get("runs") or []),
            key=lambda r: (r.get("scheduled_at") or 0, r["name"]),
        )
        last_schedule = max((done[h].get("last_schedule") or 0 for h in targets), default=0) or None
        last_success = max((done[h].get("last_success") or 0 for h in targets), default=0) or None
        result.update(
            changed=changed,
            nodes=targets,
            moved_from=sorted(h for h in installed if h not in targets),
            unreachable_nodes=sorted(unreachable),
            on_calendar=spec.config("")["on_calendar"],
            status={
                "active": [{"name": r["name"], "node": r["node"]} for r in runs if r["active"]],
                "lastScheduleTime": tracking.rfc3339(last_schedule),
                "lastSuccessfulTime": tracking.rfc3339(last_success),
            },
            runs=runs,
            skipped_runs=[dict(s, node=h) for h in targets for s in done[h].get("skipped_runs") or []],
            timers={h: done[h].get("timer") for h in targets},
        )
        if self._task.diff:
            before = {h: seen[h].get("config") for h in installed}
            after = {h: spec.config(h) for h in targets}
            result["diff"] = {
                "before_header": f"CronJob {name} (on the nodes)",
                "after_header": f"CronJob {name} (requested)",
                "before": json.dumps(before, indent=2, sort_keys=True) + "\n" if before else "",
                "after": json.dumps(after, indent=2, sort_keys=True) + "\n",
            }
        return result
