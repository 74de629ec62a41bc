# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostfleet.workloads.statefulset: one task that keeps stable identities, each pinned to its volume's node.

The semantics live in plugin_utils/controllers/statefulset/ (pure), registered with everything the
orchestration needs to know of the kind in plugin_utils/controllers/registry.py; the loop in
plugin_utils/workload_task.py.
"""

from __future__ import annotations

from types import SimpleNamespace

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.registry import controller
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.retention import claims_to_delete_on_delete
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.spec import DELETE
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_action import WorkloadAction

CONTROLLER = controller("StatefulSet")


class ActionModule(WorkloadAction):
    KIND = CONTROLLER.kind
    REPLACES_UNREACHABLE = CONTROLLER.replaces_unreachable
    PINS_PULLED_IMAGES = CONTROLLER.pins_pulled_images
    TRACKS_PLACEMENT = CONTROLLER.tracks_placement
    CLEANS_DESELECTED = CONTROLLER.cleans_deselected
    FAILS_UNLESS_AVAILABLE = CONTROLLER.fails_unless_available
    ARGUMENT_SPEC = CONTROLLER.info.argument_spec
    SPEC_KEYS = CONTROLLER.info.spec_fields
    PARSE_SPEC = staticmethod(CONTROLLER.parse_spec)

    def volumes_on_delete(self, args, record):
        """whenDeleted: Delete removes exactly the claims of this set's identities; Retain (default) nothing."""
        policy = args.get("persistentVolumeClaimRetentionPolicy") or {}
        if policy.get("whenDeleted") != DELETE:
            return {}
        return claims_to_delete_on_delete(record, SimpleNamespace(name=args["name"], when_deleted=DELETE, claim_names=()))

    def reconcile(self, spec, record, observation, now):
        return CONTROLLER.reconcile(spec, record, observation, now)

    def progress_line(self, step, number):
        return CONTROLLER.progress_line(self._task.args["name"], self._task.args, step, number)
