# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Loading a controller's stored record, the same way for every kind.

A record comes back from the nodes as JSON; the controller works on a deep
copy with every key of its kind's fresh record present, and refuses a record
of another kind, another name, or a newer schema than it understands.
"""

from __future__ import annotations

import json


class RecordError(ValueError):
    """The stored record cannot be used (another kind, another name, a newer schema)."""


def load_stored(record: dict | None, fresh: dict, kind: str, name: str, schema: int) -> dict:
    """A deep copy of ``record`` completed from ``fresh`` (keys missing or null); ``fresh`` itself when there is none."""
    if not record:
        return fresh
    if record.get("kind", kind) != kind:
        raise RecordError(f"the stored record of {name!r} is a {record.get('kind')}, not a {kind}")
    if int(record.get("schema") or schema) > schema:
        raise RecordError(f"the stored record of {name!r} has schema {record.get('schema')}, newer than this collection understands ({schema})")
    if record.get("name", name) != name:
        raise RecordError(f"the stored record is for {record.get('name')!r}, not {name!r}")
    result = json.loads(json.dumps(record))  # a deep copy, and proof that the record is JSON
    for key, value in fresh.items():
        if result.get(key) is None:
            result[key] = value
    result["schema"] = schema
    result["revisions"] = result.get("revisions") or {}
    result["conditions"] = result.get("conditions") or []
    return result
