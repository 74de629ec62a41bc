# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed controller records: what each kind's controller remembers between steps, stored on the nodes as JSON.

Every kind's record has the same base (``Record``): ``schema``, ``kind``, ``name``, ``generation``,
``observed_generation``, ``spec_hash``, ``selector``, ``revisions`` ({hash: {"revision": n, "template": {...},
"created": t, "next_pod": n}}), ``conditions``, ``min_ready_seconds``, ``seq`` (set by the loop when it stores
the record) and ``current_revision`` (the hash of the revision running or being rolled out, whatever the kind
calls it). A subclass per kind (``deployment/record.py``, ``statefulset/record.py``, ``replicaset.py``,
``daemonset/record.py``, ``job/record.py``) adds its own keys and attributes.

A kind's own controller works on ``Record.data``, the stored JSON form with every key of its kind present.
Everything else (the loop, diffs, previews, ``workload_info``) reads the attributes, never a kind's keys.

``from_json`` migrates a stored record of any schema written so far, one step at a time
(``MIGRATIONS[n]`` turns schema n into n + 1), keeps keys it does not know (``fleet``, ``seq``, ``restarted_at``:
written by others), and refuses with ``RecordError`` a record of another kind, another name, a newer schema, or
one that is not a JSON object.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

R = TypeVar("R", bound="Record")
# Turns a record of schema n into schema n + 1, in place.
Migration = Callable[[dict], None]


class RecordError(ValueError):
    """The stored record cannot be used (another kind, another name, a newer schema, not JSON)."""


class Record:
    """A controller's record (see the module docstring). ``data``: the stored JSON form, at ``SCHEMA``."""

    KIND: ClassVar[str] = ""
    SCHEMA: ClassVar[int] = 1
    MIGRATIONS: ClassVar[Mapping[int, Migration]] = {}
    # The key that holds the hash of the revision running / being rolled out.
    CURRENT_KEY: ClassVar[str] = "current_hash"
    # The kind's own keys and their values in a new record.
    FIELDS: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, data: dict) -> None:
        self.data = data

    @classmethod
    def fresh(cls, name: str) -> dict:
        """A new record's stored form."""
        base = {
            "schema": cls.SCHEMA,
            "kind": cls.KIND,
            "name": name,
            "generation": 0,
            "observed_generation": 0,
            "spec_hash": None,
            "selector": None,
            "min_ready_seconds": 0,
            "revisions": {},
            "conditions": [],
        }
        return base | copy.deepcopy(dict(cls.FIELDS))

    @classmethod
    def new(cls: type[R], name: str) -> R:
        return cls(cls.fresh(name))

    @classmethod
    def from_json(cls: type[R], data: Any, name: str) -> R:
        """The record stored as ``data`` (a dict or its JSON text), migrated to ``SCHEMA``, every key present."""
        if isinstance(data, (str, bytes, bytearray)):
            try:
                data = json.loads(data)
            except ValueError as error:
                raise RecordError(f"the stored record of {name!r} is not JSON: {error}") from None
        if not isinstance(data, Mapping):
            raise RecordError(f"the stored record of {name!r} is not a JSON object but {type(data).__name__}")
        if data.get("kind", cls.KIND) != cls.KIND:
            raise RecordError(f"the stored record of {name!r} is a {data.get('kind')}, not a {cls.KIND}")
        if data.get("name", name) != name:
            raise RecordError(f"the stored record is for {data.get('name')!r}, not {name!r}")
        schema = data.get("schema")
        # Only a partial record written before the first step (an action's restart request) may lack one.
        schema = 1 if schema is None else schema
        if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
            raise RecordError(f"the stored record of {name!r} has schema {schema!r}, not a version number")
        if schema > cls.SCHEMA:
            raise RecordError(f"the stored record of {name!r} has schema {schema}, newer than this collection understands ({cls.SCHEMA})")
        try:
            result = json.loads(json.dumps(data))  # a deep copy, and proof that the record is JSON
        except (TypeError, ValueError) as error:
            raise RecordError(f"the stored record of {name!r} is not JSON: {error}") from None
        for version in range(schema, cls.SCHEMA):
            cls.MIGRATIONS[version](result)
        for key, value in cls.fresh(name).items():
            if result.get(key) is None:
                result[key] = value
        result["schema"] = cls.SCHEMA
        return cls(result)

    @classmethod
    def load(cls: type[R], data: Any, name: str) -> R:
        """``from_json``, or a new record when nothing is stored."""
        return cls.new(name) if not data else cls.from_json(data, name)

    def to_json(self) -> dict:
        return copy.deepcopy(self.data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and type(other) is type(self) and other.data == self.data

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.data!r})"

    # -- the base, the same for every kind -------------------------------------------------------------------

    @property
    def schema(self) -> int:
        return int(self.data["schema"])

    @property
    def kind(self) -> str:
        return str(self.data["kind"])

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def generation(self) -> int:
        return int(self.data.get("generation") or 0)

    @property
    def observed_generation(self) -> int:
        return int(self.data.get("observed_generation") or 0)

    @property
    def spec_hash(self) -> str | None:
        return self.data.get("spec_hash")

    @property
    def selector(self) -> dict | None:
        return self.data.get("selector")

    @property
    def revisions(self) -> dict[str, dict]:
        return self.data.get("revisions") or {}

    @property
    def conditions(self) -> list[dict]:
        return self.data.get("conditions") or []

    @property
    def seq(self) -> int:
        return int(self.data.get("seq") or 0)

    @property
    def min_ready_seconds(self) -> int:
        return int(self.data.get("min_ready_seconds") or 0)

    @property
    def current_revision(self) -> str | None:
        return self.data.get(self.CURRENT_KEY) or None

    @property
    def observed(self) -> dict | None:
        """The last observation, counted (its keys are the kind's)."""
        return self.data.get("observed")

    def revision_number(self, revision_hash: str | None) -> int | None:
        entry = self.revisions.get(revision_hash or "")
        return int(entry.get("revision") or 0) if isinstance(entry, Mapping) else None

    def revision_numbers(self) -> dict[str, int]:
        return {h: int(e.get("revision") or 0) for h, e in self.revisions.items() if isinstance(e, Mapping)}

    def template(self, revision_hash: str | None) -> dict | None:
        """The pod template of a revision, None when the record does not hold it."""
        entry = self.revisions.get(revision_hash or "")
        return entry.get("template") if isinstance(entry, Mapping) else None

    def condition(self, condition_type: str) -> dict | None:
        return next((c for c in self.conditions if isinstance(c, Mapping) and c.get("type") == condition_type), None)

    # -- the common reconcile preamble and ending ----------------------------------------------------------

    def note_spec(self, spec: Any) -> bool:
        """A new generation when the spec's normal form changed (True then); the selector and
        ``min_ready_seconds`` as the spec has them, for the step and for observers."""
        spec_hash = spec.spec_hash()
        new_generation = self.data["spec_hash"] != spec_hash
        if new_generation:
            self.data["generation"] = self.generation + 1
            self.data["spec_hash"] = spec_hash
        self.data["selector"] = spec.selector.to_json()
        self.data["min_ready_seconds"] = int(spec.min_ready_seconds)
        return new_generation

    def note_observed(self, observed: dict) -> None:
        """The step's observation, counted; the current generation has been observed."""
        self.data["observed"] = observed
        self.data["observed_generation"] = self.generation


def begin_step(record_type: type[R], stored: Any, spec: Any) -> tuple[R, bool]:
    """The common start of a reconcile step: the stored record (migrated, every key present) or a new one, and
    whether the spec makes a new generation (``Record.note_spec``)."""
    record = record_type.load(stored, spec.name)
    return record, record.note_spec(spec)


def record_types() -> dict[str, type[Record]]:
    """{kind: its Record subclass}, as the registry of kinds says. Imported here, not at the top: the registry imports
    every kind's controller, and each of those imports this module."""
    from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.registry import CONTROLLERS

    return {c.kind: c.record_type for c in CONTROLLERS if c.record_type is not None}


def load_record(kind: str, data: Any, name: str) -> Record | None:
    """The typed record of ``kind``/``name`` stored as ``data``; None when nothing is stored."""
    types = record_types()
    if kind not in types:
        raise RecordError(f"no controller record for kind {kind!r} (known: {', '.join(sorted(types))})")
    return None if not data else types[kind].from_json(data, name)
