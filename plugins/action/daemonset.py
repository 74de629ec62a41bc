# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostfleet.workloads.daemonset: one task that runs one pod on every eligible node of the fleet.

The semantics live in plugin_utils/controllers/daemonset/ (pure), registered with everything the
orchestration needs to know of the kind in plugin_utils/controllers/registry.py; the loop in
plugin_utils/workload_task.py.
"""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.registry import controller
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_action import WorkloadAction

CONTROLLER = controller("DaemonSet")


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

    def reconcile(self, spec, record, observation, now):
        return CONTROLLER.reconcile(spec, record, observation, now)

    def progress_line(self, step, number):
        return CONTROLLER.progress_line(self._task.args["name"], self._task.args, step, number)
