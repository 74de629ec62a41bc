# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostfleet.workloads.job: one task that runs a Job to completion over the fleet.

The Job's semantics live in module_utils/job/tracking.py (shared with the
hosts, which run CronJob runs with it) and plugin_utils/controllers/job/
(validation, placement); the loop in plugin_utils/workload_task.py.
"""

from __future__ import annotations

import json
import time

from ansible_collections.hostfleet.workloads.plugins.module_utils.job import tracking
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.job.spec import changed_immutable_fields
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_action import WorkloadAction


class ActionModule(WorkloadAction):
    KIND = "Job"

    def spec_fields(self, args, record):
        spec = {key: args[key] for key in self.controller.info.spec_fields if args.get(key) is not None}
        if spec.get("template") is None:
            raise SpecError("template", "is required with state=present")
        return spec

    def before_converge(self, task, observation, stored, args, check_mode):
        """A Job's immutable fields may not change: refuse, or with ``replace`` delete the old Job first."""
        self._replaced = False
        spec = self.parse(args, None)
        changed = changed_immutable_fields((stored or {}).get("immutable"), spec)
        condition = tracking.finished_condition(tracking.load_record(stored, args["name"])) if stored is not None else None
        finished = condition is not None
        # How the Job had ended before this run (apply reports a Job that had already failed, not as this run's failure).
        self._finished_before = None if args["replace"] else (condition or {}).get("type")
        if (changed or finished) and args["replace"]:
            if check_mode:
                return dict(changed=True, replaced=True, msg=f"the Job would be deleted and run again ({', '.join(changed) or 'replace: it has finished'})")
            task.remove_all()  # the shared loop observes the fleet again before planning the new Job
            self._replaced = True
            return None
        if changed:
            return dict(
                failed=True,
                changed=False,
                field=changed[0],
                msg=(
                    f"Job {args['name']} already exists and {', '.join(changed)} cannot change (immutable, as in Kubernetes). "
                    "Delete it first (state: absent) or set replace: true to delete it and run the new spec."
                ),
            )
        return None

    def simulate(self, task, plan, observation, record, spec):
        """Check mode shows the first wave: which pods would start where (a Job's later waves depend on exit codes)."""
        step = plan(record, observation, time.time())
        waves = []
        if not step.empty or step.pending:
            waves.append({"wave": 1, **step.wave(), "pending": [p.to_json() for p in step.pending], "description": list(step.description)})
        return step, waves

    def finish(self, result, step, record):
        containers = [c.get("name") for c in ((self._task.args.get("template") or {}).get("spec") or {}).get("containers") or []]
        pods = tracking.pod_report(record or {})
        for pod in pods:
            # The output of each container is in the node's journal, under the unit and the identifier <pod>/<container>.
            pod["logs"] = {c: f"journalctl -u hf-{pod['name']}.{c}.service" for c in containers if c}
        result["job_pods"] = pods
        if getattr(self, "_replaced", False):
            result["replaced"] = True
        if getattr(self, "_finished_before", None):
            result["finished_before_run"] = self._finished_before
        return result

    def template_diff(self, stored, step):
        def text(record):
            template = ((record or {}).get("immutable") or {}).get("template")
            return json.dumps(template, indent=2, sort_keys=True) + "\n" if template else ""

        return {"before_header": "Job template (stored)", "after_header": "Job template (requested)", "before": text(stored), "after": text(step.record)}
