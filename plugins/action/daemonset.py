# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostfleet.workloads.daemonset: one task that runs one pod on every eligible node of the fleet.

The semantics live in plugin_utils/controllers/daemonset/ (pure), registered with everything the
orchestration needs to know of the kind in plugin_utils/controllers/registry.py; the loop in
plugin_utils/workload_task.py.
"""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.workload_action import WorkloadAction


class ActionModule(WorkloadAction):
    # Its parser, reconcile, progress line, argument spec and flags: the registry entry of this kind.
    KIND = "DaemonSet"
