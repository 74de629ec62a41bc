# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DeploymentRecord: everything the controller remembers between steps, as ONE JSON-able dict.

The controller keeps no state of its own: the action plugin stores this
record (on the hosts) and passes it back to the next ``reconcile``. Times are
epoch seconds (floats). Schema 2 (schema 1 lacked ``min_ready_seconds``)::

    {
      "schema": 2, "kind": "Deployment", "name": "api",
      "generation": 3,              # +1 whenever the spec (normal form) changes
      "observed_generation": 3,
      "spec_hash": "0123456789",    # hash of the spec's normal form
      "selector": {...},            # the selector, immutable once stored
      "min_ready_seconds": 0,       # spec.minReadySeconds at the last step (observers count availability with it)
      "replicas": 6,                # spec.replicas at the last step  (scaling-event detection)
      "max_replicas": 8,            # replicas + maxSurge at the last step (proportional scaling)
      "template_hash": "...",       # the hash of the template the USER asked for, last seen
      "current_hash": "...",        # the revision being rolled out / running (Kubernetes' new ReplicaSet)
      "revisions": {hash: {"revision": 3, "template": {...}, "created": t, "next_pod": 7}},
      "rollout_started": t,         # when current_hash became current
      "last_progress": t,           # last time the rollout made progress (progress deadline)
      "held": {hash: count} | null, # a failed rollout, frozen where it stopped (per revision pod counts)
      "held_available": 2,          # available pods of current_hash when it was held (resumes above that)
      "last_complete_hash": "...",  # the last revision that completed (automatic rollback target)
      "rolled_back_from": null | {  # current_hash overrides the user's template (undo / automatic rollback)
          "hash": "...", "revision": 4,          # the user's template that is NOT running
          "to_hash": "...", "to_revision": 5,    # what runs instead
          "reason": "RolledBack" | "Undo", "message": "...", "time": t},
      "paused": false,              # spec.paused at the last step (DeploymentPaused / DeploymentResumed)
      "observed": {"replicas": 6, "updated": 6, "ready": 6, "available": 6, "old": 0},  # last observation
      "conditions": [{"type": "Progressing", "status": "True", "reason": "...", "message": "...",
                      "lastUpdateTime": t, "lastTransitionTime": t}, ...]
    }
"""

from __future__ import annotations

from typing import Any

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.records import Record

KIND = "Deployment"


def _add_min_ready_seconds(record: dict) -> None:
    # Schema 1 did not keep it: unknown until the next step writes the spec's, 0 as the default.
    record.setdefault("min_ready_seconds", 0)


class DeploymentRecord(Record):
    KIND = KIND
    SCHEMA = 2
    MIGRATIONS = {1: _add_min_ready_seconds}
    CURRENT_KEY = "current_hash"
    FIELDS = {
        "replicas": None,
        "max_replicas": None,
        "template_hash": None,
        "current_hash": None,
        "rollout_started": None,
        "last_progress": None,
        "held": None,
        "held_available": 0,
        "last_complete_hash": None,
        "rolled_back_from": None,
        "paused": False,
        "observed": None,
    }

    @property
    def replicas(self) -> int | None:
        """spec.replicas at the last step."""
        value = self.data.get("replicas")
        return None if value is None else int(value)

    @property
    def template_hash(self) -> str | None:
        """The user's template, last seen (not running while ``rolled_back_from`` is set)."""
        return self.data.get("template_hash")

    @property
    def paused(self) -> bool:
        return bool(self.data.get("paused"))

    @property
    def rolled_back_from(self) -> dict | None:
        return self.data.get("rolled_back_from") or None

    @property
    def held(self) -> dict[str, int] | None:
        return self.data.get("held") or None


def load_record(record: Any, name: str) -> dict:
    """The stored form of ``record`` migrated, with every key present (None → a new record)."""
    return DeploymentRecord.load(record, name).data


def revision_numbers(record: dict) -> dict[str, int]:
    return {h: int(e.get("revision") or 0) for h, e in record["revisions"].items()}
