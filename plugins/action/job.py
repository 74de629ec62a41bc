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
from ansible_collections.hostfleet.workloads.plugins.module_utils.workload_args import JOB_ARGS
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.job.spec import FIELDS, changed_immutable_fields, parse_job_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.job.sync import reconcile_job
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_action import WorkloadAction

# The Job fields are the spec parser's own list (one place says which fields a Job has).
SPEC_KEYS = tuple(sorted(FIELDS))


class ActionModule(WorkloadAction):
    KIND = "Job"
    # A Job counts pods of unreachable nodes failed at once (its own record tracks them); its verdict is its result.
    TRACKS_PLACEMENT = False
    FAILS_UNLESS_AVAILABLE = False
    ARGUMENT_SPEC = JOB_ARGS
    SPEC_KEYS = SPEC_KEYS

    def spec_fields(self, args, record):
        spec = {key: args[key] for key in self.SPEC_KEYS if args.get(key) is not None}
        if spec.get("template") is None:
            raise SpecError("template", "is required with state=present")
        return spec

    def parse(self, args, record):
        return parse_job_spec(args["name"], self.spec_fields(args, record))

    def _converge(self, result, task, args, check_mode):
        """A Job's immutable fields may not change: refuse, or with ``replace`` delete the old Job first."""
        spec = self.parse(args, None)
        observation = task.observe()
        stored = observation.record()
        changed = changed_immutable_fields((stored or {}).get("immutable"), spec)
        finished = stored is not None and tracking.finished_condition(tracking.load_record(stored, args["name"])) is not None
        if (changed or finished) and args["replace"]:
            if check_mode:
                return dict(
                    result, changed=True, replaced=True, msg=f"the Job would be deleted and run again ({', '.join(changed) or 'replace: it has finished'})"
                )
            task.remove_all()
            result["replaced"] = True
        elif changed:
            return dict(
                result,
                failed=True,
                changed=False,
                field=changed[0],
                msg=(
                    f"Job {args['name']} already exists and {', '.join(changed)} cannot change (immutable, as in Kubernetes). "
                    "Delete it first (state: absent) or set replace: true to delete it and run the new spec."
                ),
            )
        return super()._converge(result, task, args, check_mode)

    def reconcile(self, spec, record, observation, now):
        return reconcile_job(spec, record, observation.nodes, observation.details, observation.usage, now)

    def simulate(self, task, plan, observation, record):
        """Check mode shows the first wave: which pods would start where (a Job's later waves depend on exit codes)."""
        step = plan(record, observation, time.time())
        waves = []
        if not step.empty or step.pending:
            waves.append({"wave": 1, **step.wave(), "pending": [p.to_json() for p in step.pending], "description": list(step.description)})
        return step, waves

    def progress_line(self, step, number):
        s = step.status
        args = self._task.args
        target = args.get("completions") if args.get("completions") is not None else ("1" if args.get("parallelism") is None else "any")
        line = f"job {args['name']}: step {number}: succeeded {s.get('succeeded', 0)}/{target}, failed {s.get('failed', 0)}, active {s.get('active', 0)}"
        if "completedIndexes" in s:
            line += f", completed indexes {s['completedIndexes'] or '-'}"
        return line

    def finish(self, result, step, record):
        containers = [c.get("name") for c in ((self._task.args.get("template") or {}).get("spec") or {}).get("containers") or []]
        pods = tracking.pod_report(record or {})
        for pod in pods:
            # The output of each container is in the node's journal, under the unit and the identifier <pod>/<container>.
            pod["logs"] = {c: f"journalctl -u hf-{pod['name']}.{c}.service" for c in containers if c}
        result["job_pods"] = pods
        return result

    def _template_diff(self, stored, step):
        def text(record):
            template = ((record or {}).get("immutable") or {}).get("template")
            return json.dumps(template, indent=2, sort_keys=True) + "\n" if template else ""

        return {"before_header": "Job template (stored)", "after_header": "Job template (requested)", "before": text(stored), "after": text(step.record)}
