# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostfleet.workloads.replicaset: one task that keeps N pods of a template over the fleet.

The semantics live in plugin_utils/controllers/replicaset.py (pure); the loop
in plugin_utils/workload_task.py.
"""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.module_utils.workload_args import REPLICASET_ARGS
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.replicaset import parse_replicaset_spec, reconcile_replicaset
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_action import WorkloadAction

SPEC_KEYS = ("replicas", "selector", "template", "minReadySeconds")


class ActionModule(WorkloadAction):
    KIND = "ReplicaSet"
    REPLACES_UNREACHABLE = True
    PINS_PULLED_IMAGES = True
    SPEC_KEYS = SPEC_KEYS
    PARSE_SPEC = staticmethod(parse_replicaset_spec)
    ARGUMENT_SPEC = REPLICASET_ARGS

    def reconcile(self, spec, record, observation, now):
        return reconcile_replicaset(spec, record, observation.nodes, observation.pods, observation.usage, now)

    def progress_line(self, step, number):
        s = step.status
        return (
            f"replicaset {self._task.args['name']}: step {number}: ready {s.get('readyReplicas', 0)}/{self._task.args.get('replicas', 1)}, "
            f"available {s.get('availableReplicas', 0)} ({len(step.starts)} started, {len(step.stops)} stopped)"
        )
