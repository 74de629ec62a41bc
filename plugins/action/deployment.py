# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostfleet.workloads.deployment: one task that rolls a Deployment out over the fleet.

The Kubernetes semantics live in plugin_utils/controllers/deployment/ (pure), registered
in plugin_utils/controllers/registry.py; the observe → plan → act → wait loop in plugin_utils/workload_task.py; this
file only turns task arguments into a spec and the final step into a result.
"""

from __future__ import annotations

import datetime

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment import rollback
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.record import DeploymentRecord
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_action import WorkloadAction

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


class ActionModule(WorkloadAction):
    # Its parser, reconcile, progress line, argument spec and flags: the registry entry of this kind.
    KIND = "Deployment"

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

    def finish(self, result, step, record):
        typed = DeploymentRecord.from_json(record, self.node_name) if record else None
        result["revision"] = (typed.revision_number(typed.current_revision) or 0) if typed else 0
        return result
