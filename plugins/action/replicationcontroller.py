# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostfleet.workloads.replicationcontroller: one task that keeps N pods of a template over the fleet (core v1).

The ReplicaSet controller runs it (plugin_utils/controllers/replicationcontroller.py adapts the spec), registered
in plugin_utils/controllers/registry.py; the loop in plugin_utils/workload_task.py.
"""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_action import WorkloadAction


class ActionModule(WorkloadAction):
    # Its parser, reconcile, progress line, argument spec and flags: the registry entry of this kind.
    KIND = "ReplicationController"

    def spec_fields(self, args, record):
        """The spec as Kubernetes writes it; an absent selector is left to the parser (the template's labels, as a map)."""
        spec = super().spec_fields(args, record)
        if args.get("selector") is None:
            spec.pop("selector", None)  # not the LabelSelector the shared default makes
        return spec
