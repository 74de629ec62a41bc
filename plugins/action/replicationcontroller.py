# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostfleet.workloads.replicationcontroller: one task that keeps N pods of a template over the fleet (core v1).

The ReplicaSet controller runs it (plugin_utils/controllers/replicationcontroller.py adapts the spec), registered
in plugin_utils/controllers/registry.py; the loop in plugin_utils/workload_task.py.
"""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.registry import controller
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_action import WorkloadAction

CONTROLLER = controller("ReplicationController")


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

    def spec_fields(self, args, record):
        """The spec as Kubernetes writes it; an absent selector is left to the parser (the template's labels, as a map)."""
        spec = super().spec_fields(args, record)
        if args.get("selector") is None:
            spec.pop("selector", None)  # not the LabelSelector the shared default makes
        return spec

    def reconcile(self, spec, record, observation, now):
        return CONTROLLER.reconcile(spec, record, observation, now)

    def progress_line(self, step, number):
        return CONTROLLER.progress_line(self._task.args["name"], self._task.args, step, number)
