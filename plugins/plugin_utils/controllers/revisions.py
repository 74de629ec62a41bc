# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pod-template hashes, revision numbers, pod names and the revision history.

* The pod-template hash (Kubernetes' ``pod-template-hash`` label) is the
  first 10 hex characters of the sha256 of the canonical JSON (sorted keys,
  no spaces) of the template in its normal form: the same template always
  gives the same hash, on any host and Python version. A rollout happens
  only when it changes.
* Revisions (Kubernetes' ``deployment.kubernetes.io/revision``) are numbered
  1, 2, ...; a template that comes back (undo) gets a new, higher number,
  as ``kubectl rollout undo`` does.
* Pod names are ``<owner>-<hash>-<5 chars>``: the 5 chars (from Kubernetes'
  alphabet without vowels) derive from (hash, counter), so a plan is the
  same each time it is computed (``--check`` shows the names a real run
  will use) and a name already in use is skipped. A DaemonSet's pods are
  ``<owner>-<5 chars>`` (``short=True``), as in Kubernetes.

A history entry (JSON)::

    {"revision": 3, "template": {...as the user wrote it...}, "created": 1700000000.0, "next_pod": 7}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
HASH_LENGTH = 10
SUFFIX_LENGTH = 5


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def template_hash(template: Mapping) -> str:
    """10 hex chars of sha256(canonical JSON of the normalised template)."""
    return hashlib.sha256(canonical_json(template).encode("utf-8")).hexdigest()[:HASH_LENGTH]


def pod_suffix(revision: str, counter: int) -> str:
    digest = hashlib.sha256(f"{revision}/{counter}".encode()).digest()
    return "".join(NAME_ALPHABET[b % len(NAME_ALPHABET)] for b in digest[:SUFFIX_LENGTH])


def pod_name(owner: str, revision: str, counter: int) -> str:
    return f"{owner}-{revision}-{pod_suffix(revision, counter)}"


def short_pod_name(owner: str, revision: str, counter: int) -> str:
    """``<owner>-<5 chars>`` (a DaemonSet's pods): the suffix still derives from (revision, counter)."""
    return f"{owner}-{pod_suffix(revision, counter)}"


class NameAllocator:
    """Hands out fresh pod names for one revision, never one in ``taken`` (shared between allocators)."""

    def __init__(self, owner: str, revision: str, counter: int, taken: set[str], short: bool = False):
        self.owner = owner
        self.revision = revision
        self.counter = counter
        self.taken = taken
        self.naming = short_pod_name if short else pod_name

    def __call__(self) -> str:
        while True:
            name = self.naming(self.owner, self.revision, self.counter)
            self.counter += 1
            if name not in self.taken:
                self.taken.add(name)
                return name


def new_entry(revision: int, template: Mapping, now: float) -> dict:
    return {"revision": revision, "template": json.loads(canonical_json(template)), "created": float(now), "next_pod": 0}


def max_revision(history: Mapping[str, Mapping]) -> int:
    return max((int(entry.get("revision") or 0) for entry in history.values()), default=0)


def by_revision(history: Mapping[str, Mapping]) -> list[str]:
    """Hashes, oldest revision first (ties: creation time, then hash)."""
    return sorted(history, key=lambda h: (int(history[h].get("revision") or 0), float(history[h].get("created") or 0.0), h))


def find_revision(history: Mapping[str, Mapping], number: int) -> str | None:
    for key, entry in history.items():
        if int(entry.get("revision") or 0) == number:
            return key
    return None


def cleanup_history(history: Mapping[str, Mapping], limit: int, current: str | None, protected: Iterable[str], revisions_with_pods: Iterable[str]) -> dict:
    """Drop the oldest revisions without pods while more than ``limit`` old revisions remain.

    Every revision but ``current`` is old (Kubernetes' revisionHistoryLimit).
    A revision that still has pods is kept, like a ReplicaSet with replicas;
    so is a ``protected`` one (the last complete revision, the target of an
    automatic rollback): they count towards the limit but are never dropped.
    """
    keep = set(protected) | set(revisions_with_pods)
    result = {k: dict(v) for k, v in history.items()}
    old = [h for h in by_revision(result) if h != current]
    excess = len(old) - max(0, limit)
    for key in old:
        if excess <= 0:
            break
        if key in keep:
            continue
        del result[key]
        excess -= 1
    return result
