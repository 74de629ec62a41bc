# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DaemonSet record, stored with the pods like the Deployment's. Schema 2 (schema 1 lacked ``min_ready_seconds``)::

    {"schema": 2, "kind": "DaemonSet", "name": "agent", "generation": 2, "observed_generation": 2,
     "spec_hash": "...", "selector": {...}, "min_ready_seconds": 0, "current_hash": "...",
     "revisions": {hash: {"revision": 2, "template": {...}, "created": t, "next_pod": 3}},
     "rollout_started": t, "last_progress": t,
     "observed": {"desired": 3, "scheduled": 3, "ready": 3, "available": 3, "updated": 3,
                  "updated_ready": 3, "updated_available": 3, "misscheduled": 0, "old": 0, "pods": 3, "lost": 0},
     "conditions": [{"type": "Progressing", "status": "True", "reason": "...", ...}]}
"""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.records import Record


def _add_min_ready_seconds(record: dict) -> None:
    # Schema 1 did not keep it: unknown until the next step writes the spec's, 0 as the default.
    record.setdefault("min_ready_seconds", 0)


class DaemonSetRecord(Record):
    KIND = "DaemonSet"
    SCHEMA = 2
    MIGRATIONS = {1: _add_min_ready_seconds}
    CURRENT_KEY = "current_hash"
    FIELDS = {"current_hash": None, "rollout_started": None, "last_progress": None, "observed": None}

    @property
    def desired(self) -> int | None:
        """Eligible nodes at the last step (Kubernetes' desiredNumberScheduled)."""
        value = (self.observed or {}).get("desired")
        return None if value is None else int(value)
