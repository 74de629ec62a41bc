# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostfleet.workloads.daemonset: one task that runs one pod on every eligible node of the fleet.

The semantics live in plugin_utils/controllers/daemonset/ (pure); the loop in
plugin_utils/workload_task.py.
"""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.module_utils.workload_args import DAEMONSET_ARGS
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.spec import parse_daemonset_spec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.sync import reconcile_daemonset
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_action import WorkloadAction

SPEC_KEYS = ("selector", "template", "updateStrategy", "minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds")


class ActionModule(WorkloadAction):
    KIND = "DaemonSet"
    PINS_PULLED_IMAGES = True
    SPEC_KEYS = SPEC_KEYS
    PARSE_SPEC = staticmethod(parse_daemonset_spec)
    ARGUMENT_SPEC = DAEMONSET_ARGS

    def reconcile(self, spec, record, observation, now):
        return reconcile_daemonset(spec, record, observation.nodes, observation.pods, observation.usage, now)

    def progress_line(self, step, number):
        s = step.status
        return (
            f"daemonset {self._task.args['name']}: step {number}: updated {s.get('updatedNumberScheduled', 0)}/{s.get('desiredNumberScheduled', 0)}, "
            f"available {s.get('numberAvailable', 0)}/{s.get('desiredNumberScheduled', 0)}, misscheduled {s.get('numberMisscheduled', 0)}"
            f" ({len(step.starts)} started, {len(step.stops)} stopped)"
        )
