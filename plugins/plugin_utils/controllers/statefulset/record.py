# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The StatefulSet record: everything the controller remembers between steps, as ONE JSON-able dict.

Schema 2 (schema 1 called ``min_ready_seconds`` ``minReadySeconds`` and ``stable_revision``
``current_revision``, the base's name for the revision being rolled out: here ``update_revision``)::

    {
      "schema": 2, "kind": "StatefulSet", "name": "web",
      "generation": 2, "observed_generation": 2,
      "spec_hash": "...",               # hash of the spec's normal form (+1 generation when it changes)
      "selector": {...},                # immutable once stored
      "replicas": 3, "min_ready_seconds": 0,   # spec's, at the last step (what observers count against)
      "template_hash": "...",           # the user's template, last seen (== update_revision)
      "update_revision": "...",         # the revision pods are updated to (Kubernetes' updateRevision)
      "stable_revision": "...",         # the revision every replica ran when last fully updated (currentRevision)
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

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.records import Record

KIND = "StatefulSet"


def _v1_to_v2(record: dict) -> None:
    if "minReadySeconds" in record:
        record["min_ready_seconds"] = record.pop("minReadySeconds")
    if "current_revision" in record:
        record["stable_revision"] = record.pop("current_revision")


class StatefulSetRecord(Record):
    KIND = KIND
    SCHEMA = 2
    MIGRATIONS = {1: _v1_to_v2}
    CURRENT_KEY = "update_revision"
    FIELDS = {
        "replicas": None,
        "template_hash": None,
        "update_revision": None,
        "stable_revision": None,
        "pins": {},
        "running": [],
        "claim_templates": [],
        "rollout_started": None,
        "last_progress": None,
        "observed": None,
    }

    @property
    def replicas(self) -> int | None:
        value = self.data.get("replicas")
        return None if value is None else int(value)

    @property
    def stable_revision(self) -> str | None:
        """Kubernetes' currentRevision: what every replica ran when last fully updated."""
        return self.data.get("stable_revision")

    @property
    def pins(self) -> dict[int, str]:
        return pins(self.data)

    @property
    def claim_templates(self) -> list[str]:
        return list(self.data.get("claim_templates") or [])


def pins(record: dict) -> dict[int, str]:
    return {int(k): str(v) for k, v in (record.get("pins") or {}).items()}


def store_pins(record: dict, value: dict[int, str]) -> None:
    record["pins"] = {str(k): value[k] for k in sorted(value)}
