# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostfleet.workloads.deployment: one task that rolls a Deployment out over the fleet.

The Kubernetes semantics live in plugin_utils/controllers/deployment/ (pure);
the observe → plan → act → wait loop in plugin_utils/workload_task.py; this
file only turns task arguments into a spec and the final step into a result.
"""

from __future__ import annotations

import datetime

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.module_utils.workload_args import DEPLOYMENT_ARGS
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment import rollback
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.spec import parse_deployment_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.sync import reconcile
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_action import WorkloadAction

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
SPEC_KEYS = ("replicas", "selector", "template", "strategy", "minReadySeconds", "progressDeadlineSeconds", "revisionHistoryLimit", "paused")


class ActionModule(WorkloadAction):
    KIND = "Deployment"
    REPLACES_UNREACHABLE = True
    PINS_PULLED_IMAGES = True
    ARGUMENT_SPEC = DEPLOYMENT_ARGS
    SPEC_KEYS = SPEC_KEYS
    PARSE_SPEC = staticmethod(parse_deployment_spec)

    def spec_fields(self, args, record):
        spec = super().spec_fields(args, record)
        spec["rollbackOnFailure"] = args["auto_rollback"]
        restarted = (record or {}).get("restarted_at")
        if restarted and isinstance(spec["template"], dict):
            # `rollout restart` lives in the record, so a later run without restart does not undo it.
            metadata = dict(spec["template"].get("metadata") or {})
            metadata["annotations"] = dict(metadata.get("annotations") or {}, **{RESTARTED_AT: restarted})
            spec["template"] = dict(spec["template"], metadata=metadata)
        return spec

    def prepare_record(self, args, record, now):
        """Imperative requests (restart, undo) change the record before planning."""
        record = dict(record) if record else None
        if args["restart"]:
            record = dict(record or {"kind": self.KIND, "name": args["name"]})
            record["restarted_at"] = datetime.datetime.fromtimestamp(now, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if args["rollback_to"] is not None:
            if not record:
                raise SpecError("rollback_to", "there is no revision history on the nodes to roll back to")
            try:
                undone = rollback.undo(record, args["rollback_to"] or None, now)
            except rollback.RollbackError as exc:
                raise SpecError("rollback_to", str(exc)) from None
            record = undone.record
        return record

    def reconcile(self, spec, record, observation, now):
        return reconcile(spec, record, observation.nodes, observation.pods, observation.usage, now)

    def progress_line(self, step, number):
        s = step.status
        desired = s.get("replicas_desired", self._task.args.get("replicas", 1))
        return (
            f"deployment {self._task.args['name']}: step {number}: updated {s.get('updatedReplicas', 0)}/{desired}, "
            f"ready {s.get('readyReplicas', 0)}/{desired}, available {s.get('availableReplicas', 0)}/{desired}"
            f" ({len(step.starts)} started, {len(step.stops)} stopped)"
        )

    def finish(self, result, step, record):
        numbers = {h: int(e.get("revision") or 0) for h, e in (record or {}).get("revisions", {}).items()}
        result["revision"] = numbers.get((record or {}).get("current_hash"), 0)
        return result
