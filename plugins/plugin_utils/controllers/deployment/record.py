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

import json

SCHEMA = 1
KIND = "Deployment"


class RecordError(ValueError):
    """The stored record cannot be used (another kind, another name, a newer schema)."""


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
    fresh = new_record(name)
    if not record:
        return fresh
    if record.get("kind", KIND) != KIND:
        raise RecordError(f"the stored record of {name!r} is a {record.get('kind')}, not a {KIND}")
    if int(record.get("schema") or SCHEMA) > SCHEMA:
        raise RecordError(f"the stored record of {name!r} has schema {record.get('schema')}, newer than this collection understands ({SCHEMA})")
    if record.get("name", name) != name:
        raise RecordError(f"the stored record is for {record.get('name')!r}, not {name!r}")
    result = json.loads(json.dumps(record))  # a deep copy, and proof that the record is JSON
    for key, value in fresh.items():
        result.setdefault(key, value)
    result["schema"] = SCHEMA
    result["revisions"] = result.get("revisions") or {}
    result["conditions"] = result.get("conditions") or []
    return result


def revision_numbers(record: dict) -> dict[str, int]:
    return {h: int(e.get("revision") or 0) for h, e in record["revisions"].items()}
