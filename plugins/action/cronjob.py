# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostfleet.workloads.cronjob: one task that puts a CronJob's systemd timer on its node(s) of the fleet.

Between playbook runs the node runs the CronJob by itself: its timer fires,
and each run is a Job driven on that node by module_utils/job/cron_run.py
with the same Job semantics as a fleet-wide Job (module_utils/job/tracking.py).

It runs the one orchestration path of every kind (plugin_utils/workload_action.py): the arguments checked
and the spec parsed before any node is contacted, then ONE observation round (its node module's report, through
workload_task.py) and one act. Where it goes is the scheduler's (scheduler/one_node.py: one eligible ready node,
kept while it stays eligible and reachable, else rendezvous hashing; or every eligible node); this file only turns
the chosen nodes into cronjob_timer calls and their answers into the result.
"""

from __future__ import annotations

import json

from ansible_collections.hostfleet.workloads.plugins.module_utils.job import tracking
from ansible_collections.hostfleet.workloads.plugins.module_utils.job.cron_inputs import MAX_NAME_LENGTH
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, clean_abs_path
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.job.spec import validate_job_name
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.one_node import choose_nodes, eligible_nodes
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_action import WorkloadAction

NODE_MODULE = "hostfleet.workloads.cronjob_timer"


class ActionModule(WorkloadAction):
    KIND = "CronJob"

    def spec_fields(self, args, record):
        return {key: args[key] for key in self.controller.info.spec_fields if args.get(key) is not None}

    def check_arguments(self, args):
        clean_abs_path(args["state_dir"], "state_dir")  # as cronjob_timer checks it on the nodes
        validate_job_name(args["name"])
        if len(args["name"]) > MAX_NAME_LENGTH:
            raise SpecError("metadata.name", f"must be at most {MAX_NAME_LENGTH} characters (its Jobs add -<unix minutes>), got {len(args['name'])}")

    def observer(self, args):
        """A CronJob is observed by its node module's report: whether it is installed on the node, and how."""
        return NODE_MODULE, {"name": args["name"], "report_only": True}

    def takes_lease(self):
        # cronjob_timer keeps no lease (pod_info does): two runs changing one CronJob at once are not serialised.
        return False

    def run_task(self, result, task, args, check_mode):
        """One round: observe where it is installed, choose where it goes, install there and remove it elsewhere."""
        name = args["name"]
        observation = task.observe()
        reachable = [n.name for n in observation.nodes if n.ready]
        unreachable = dict(observation.unreachable)
        installed = [h for h in reachable if observation.reports[h].get("installed")]
        spec = None
        targets = []
        if args["state"] == "present":
            spec = self.parse(args, None)
            eligible = eligible_nodes(observation.nodes, spec.job.template.constraints)
            if not eligible:
                return dict(
                    result,
                    failed=True,
                    changed=False,
                    msg=f"CronJob {name}: no reachable node matches the job template's node constraints",
                    unreachable_nodes=sorted(unreachable),
                )
            targets = choose_nodes(name, args["run_on"], eligible, installed)
        base = {"name": name, "state_dir": args["state_dir"]}
        calls = {h: dict(base, state="present", config=spec.config(h)) for h in targets}
        calls.update({h: dict(base, state="absent") for h in installed if h not in targets})
        done = task.act_with(NODE_MODULE, calls, timeout=args["wait_timeout"]) if calls else {}
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
            before = {h: observation.reports[h].get("config") for h in installed}
            after = {h: spec.config(h) for h in targets}
            result["diff"] = {
                "before_header": f"CronJob {name} (on the nodes)",
                "after_header": f"CronJob {name} (requested)",
                "before": json.dumps(before, indent=2, sort_keys=True) + "\n" if before else "",
                "after": json.dumps(after, indent=2, sort_keys=True) + "\n",
            }
        return result
