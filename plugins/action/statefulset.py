# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostfleet.workloads.statefulset: one task that keeps stable identities, each pinned to its volume's node.

The semantics live in plugin_utils/controllers/statefulset/ (pure); the loop
in plugin_utils/workload_task.py.
"""

from __future__ import annotations

from types import SimpleNamespace

from ansible_collections.hostfleet.workloads.plugins.module_utils.workload_args import STATEFULSET_ARGS
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.retention import claims_to_delete_on_delete
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.spec import DELETE, parse_statefulset_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.sync import reconcile_statefulset
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_action import WorkloadAction

SPEC_KEYS = (
    "replicas",
    "selector",
    "template",
    "serviceName",
    "ordinals",
    "volumeClaimTemplates",
    "podManagementPolicy",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
    "revisionHistoryLimit",
    "unsafeMoveOnNodeLoss",
)


class ActionModule(WorkloadAction):
    KIND = "StatefulSet"
    # An identity's data is pinned to its node: a node that left the fleet is reported, its pods never removed.
    CLEANS_DESELECTED = False
    PINS_PULLED_IMAGES = True
    SPEC_KEYS = SPEC_KEYS
    PARSE_SPEC = staticmethod(parse_statefulset_spec)
    ARGUMENT_SPEC = STATEFULSET_ARGS

    def volumes_on_delete(self, args, record):
        """whenDeleted: Delete removes exactly the claims of this set's identities; Retain (default) nothing."""
        policy = args.get("persistentVolumeClaimRetentionPolicy") or {}
        if policy.get("whenDeleted") != DELETE:
            return {}
        return claims_to_delete_on_delete(record, SimpleNamespace(name=args["name"], when_deleted=DELETE, claim_names=()))

    def reconcile(self, spec, record, observation, now):
        return reconcile_statefulset(spec, record, observation.nodes, observation.pods, observation.usage, now)

    def progress_line(self, step, number):
        s = step.status
        return (
            f"statefulset {self._task.args['name']}: step {number}: ready {s.get('readyReplicas', 0)}/{self._task.args.get('replicas', 1)}, "
            f"updated {s.get('updatedReplicas', 0)} ({', '.join(step.description) or 'waiting'})"
        )
