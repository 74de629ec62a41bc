# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Job record, typed: the tracking record (``module_utils/job/tracking.py``, shared with the hosts, where a
CronJob's runs write it) plus ``immutable`` and ``seq`` (``job/sync.py``).

The tracking record is stored as it is (schema 1, no key added, so hosts and controller keep reading each other's
records); the base's fields a Job does not keep are answered from what it does keep: one generation (a Job's
spec is immutable), one revision (its template), the selector its pods carry, and no ``minReadySeconds``.
"""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.module_utils.job import tracking
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.records import Record


class JobRecord(Record):
    KIND = tracking.KIND
    SCHEMA = tracking.SCHEMA
    MIGRATIONS = {}
    CURRENT_KEY = "template_hash"

    @classmethod
    def fresh(cls, name: str) -> dict:
        return tracking.new_record(name)

    @property
    def generation(self) -> int:
        return int(self.data.get("generation") or 1)

    @property
    def observed_generation(self) -> int:
        return self.generation

    @property
    def selector(self) -> dict | None:
        return {"matchLabels": {tracking.JOB_NAME_LABEL: self.name}}

    @property
    def immutable(self) -> dict:
        """The immutable fields as first run (``template``, ``completions``, ``completionMode``, ...)."""
        return self.data.get("immutable") or {}

    @property
    def revisions(self) -> dict[str, dict]:
        current = self.current_revision
        if not current:
            return {}
        entry = {"revision": 1, "template": self.immutable.get("template"), "created": self.data.get("start_time"), "next_pod": self.data.get("next_pod") or 0}
        return {current: entry}

    @property
    def completions(self) -> int | None:
        value = self.immutable.get("completions")
        return None if value is None else int(value)

    @property
    def indexed(self) -> bool:
        return self.immutable.get("completionMode") == tracking.INDEXED

    @property
    def succeeded(self) -> int:
        return int(self.data.get("succeeded") or 0)

    @property
    def failed(self) -> int:
        return int(self.data.get("failed") or 0)

    @property
    def active(self) -> int:
        return sum(1 for e in (self.data.get("pods") or {}).values() if isinstance(e, dict) and e.get("outcome") is None)

    @property
    def completed_indexes(self) -> str:
        """Kubernetes' ``completedIndexes`` ("0-2,5"); empty for a NonIndexed Job."""
        return tracking.format_indexes(self.data.get("succeeded_indexes") or [])

    @property
    def failed_indexes(self) -> str:
        """Kubernetes' ``failedIndexes`` (indexes that failed beyond ``backoffLimitPerIndex``)."""
        return tracking.format_indexes(self.data.get("failed_indexes") or [])

    @property
    def start_time(self) -> float | None:
        return self.data.get("start_time")

    @property
    def completion_time(self) -> float | None:
        return self.data.get("completion_time")

    @property
    def finished(self) -> dict | None:
        """The Complete or Failed condition, None while the Job runs."""
        return tracking.finished_condition(self.data)
