# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostfleet.workloads.statefulset: one task that keeps stable identities, each pinned to its volume's node.

The semantics live in plugin_utils/controllers/statefulset/ (pure), registered with everything the
orchestration needs to know of the kind in plugin_utils/controllers/registry.py; the loop in
plugin_utils/workload_task.py.
"""

from __future__ import annotations

from types import SimpleNamespace

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.retention import claims_to_delete_on_delete
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.spec import DELETE
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_action import WorkloadAction


class ActionModule(WorkloadAction):
    # Its parser, reconcile, progress line, argument spec and flags: the registry entry of this kind.
    KIND = "StatefulSet"

    def volumes_on_delete(self, args, record):
        """whenDeleted: Delete removes exactly the claims of this set's identities; Retain (default) nothing."""
        policy = args.get("persistentVolumeClaimRetentionPolicy") or {}
        if policy.get("whenDeleted") != DELETE:
            return {}
        return claims_to_delete_on_delete(record, SimpleNamespace(name=args["name"], when_deleted=DELETE, claim_names=()))
