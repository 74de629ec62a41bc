# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DeploymentRecord: everything the controller remembers between steps, as ONE JSON-able dict.

The controller keeps no state of its own: the action plugin stores this
record (on the hosts) and passes it back to the next ``reconcile``. Times are
epoch seconds (floats). Schema 1::

    {
      "schema": 1, "kind": "Deployment", "name": "api",
      "generation": 3,              # +1 whenever the spec (normal form) changes
      "observed_generation": 3,
      "spec_hash": "0123456789",    # hash of the spec's normal form
      "selector": {...},            # the selector, immutable once stored
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

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.records import load_stored

SCHEMA = 1
KIND = "Deployment"


def new_record(name: str) -> dict:
    return {
        "schema": SCHEMA,
        "kind": KIND,
        "name": name,
        "generation": 0,
        "observed_generation": 0,
        "spec_hash": None,
        "selector": None,
        "replicas": None,
        "max_replicas": None,
        "template_hash": None,
        "current_hash": None,
        "revisions": {},
        "rollout_started": None,
        "last_progress": None,
        "held": None,
        "held_available": 0,
        "last_complete_hash": None,
        "rolled_back_from": None,
        "paused": False,
        "observed": None,
        "conditions": [],
    }


def load_record(record: dict | None, name: str) -> dict:
    """A deep copy of ``record`` with every key present (None → a new record)."""
    return load_stored(record, new_record(name), KIND, name, SCHEMA)


def revision_numbers(record: dict) -> dict[str, int]:
    return {h: int(e.get("revision") or 0) for h, e in record["revisions"].items()}
