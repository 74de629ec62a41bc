# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The StatefulSet record: everything the controller remembers between steps, as ONE JSON-able dict.

Schema 1::

    {
      "schema": 1, "kind": "StatefulSet", "name": "web",
      "generation": 2, "observed_generation": 2,
      "spec_hash": "...",               # hash of the spec's normal form (+1 generation when it changes)
      "selector": {...},                # immutable once stored
      "template_hash": "...",           # the user's template, last seen (== update_revision)
      "update_revision": "...",         # the revision pods are updated to (Kubernetes' updateRevision)
      "current_revision": "...",        # the revision every replica ran when last fully updated (currentRevision)
      "revisions": {hash: {"revision": 2, "template": {...}, "created": t, "next_pod": 0}},
      "pins": {"0": "node1", "1": "node3"},   # ordinal → node holding the identity's data (and its only pod)
      "running": [0, 1],                # ordinals whose pod may be alive (fencing while a node is NotReady)
      "claim_templates": ["data"],      # claim template names ever used (claims to delete)
      "rollout_started": t,             # when update_revision last changed
      "last_progress": t,               # last time updated/ready/available counts grew
      "observed": {...},                # last observation, counted
      "conditions": [...]
    }

Pins stay as long as the identity's claims are retained: scaling back up
brings an identity back on the node that holds its data.
"""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.records import load_stored

SCHEMA = 1
KIND = "StatefulSet"


def new_record(name: str) -> dict:
    return {
        "schema": SCHEMA,
        "kind": KIND,
        "name": name,
        "generation": 0,
        "observed_generation": 0,
        "spec_hash": None,
        "selector": None,
        "template_hash": None,
        "update_revision": None,
        "current_revision": None,
        "revisions": {},
        "pins": {},
        "running": [],
        "claim_templates": [],
        "rollout_started": None,
        "last_progress": None,
        "observed": None,
        "conditions": [],
    }


def load_record(record: dict | None, name: str) -> dict:
    """A deep copy of ``record`` with every key present (None → a new record)."""
    return load_stored(record, new_record(name), KIND, name, SCHEMA)


def pins(record: dict) -> dict[int, str]:
    return {int(k): str(v) for k, v in (record.get("pins") or {}).items()}


def store_pins(record: dict, value: dict[int, str]) -> None:
    record["pins"] = {str(k): value[k] for k in sorted(value)}
