# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Going back to an earlier template: ``undo`` (kubectl rollout undo) and the automatic rollback.

Both work the same way: the record's ``rolled_back_from`` says "the user asks
for template X, but revision Y runs instead". While the user's template
stays X, ``reconcile`` rolls out Y (as a new revision number, like kubectl),
with the Deployment's own strategy and budgets; Nomad's revert replaces
everything at once, this does not. As soon as the user's template changes,
the override is dropped and the new template rolls out.

* ``undo(record, to_revision=None)``: to the previous revision (or the given
  one); refused while paused, as kubectl does.
* ``rollbackOnFailure: true``: when the progress deadline passes, back to the
  last revision that completed. Never twice in a row: if the rollback itself
  fails, the Deployment stays failed where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.record import load_record
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.revisions import by_revision, find_revision

ROLLED_BACK = "RolledBack"
UNDO = "Undo"


class RollbackError(ValueError):
    """An undo that cannot be done (unknown revision, paused Deployment, no history)."""


@dataclass(frozen=True)
class UndoResult:
    record: dict
    changed: bool
    message: str


def effective_target(record: dict, user_hash: str) -> str:
    """What should run: the user's template, or the revision an undo / rollback put in its place."""
    override = record.get("rolled_back_from")
    if override and override.get("hash") == user_hash:
        return override["to_hash"]
    return user_hash


def drop_stale_override(record: dict, user_hash: str) -> None:
    """The user changed the template since the rollback: their new template wins."""
    override = record.get("rolled_back_from")
    if override and override.get("hash") != user_hash:
        record["rolled_back_from"] = None


def _number(record: dict, key: str | None) -> int | None:
    entry = record["revisions"].get(key) if key else None
    return int(entry["revision"]) if entry else None


def undo(record: dict, to_revision: int | None = None, now: float = 0.0) -> UndoResult:
    """Make an earlier revision's template current (it becomes a new revision when it rolls out)."""
    rec = load_record(record, (record or {}).get("name", ""))
    if not rec["revisions"] or rec["current_hash"] is None:
        raise RollbackError("no rollout history found")
    if rec["paused"]:
        raise RollbackError("you cannot rollback a paused deployment; resume it first")
    current = rec["current_hash"]
    if to_revision in (None, 0):
        older = [h for h in by_revision(rec["revisions"]) if h != current]
        if not older:
            raise RollbackError("no revision to roll back to: only one revision in the history")
        target = older[-1]
    else:
        found = find_revision(rec["revisions"], int(to_revision))
        if found is None:
            raise RollbackError(f"unable to find specified revision {to_revision} in history")
        target = found
    if target == current:
        return UndoResult(rec, False, f"skipped rollback (current template already matches revision {_number(rec, target)})")
    user_hash = rec["template_hash"]
    if target == user_hash:
        rec["rolled_back_from"] = None
    else:
        rec["rolled_back_from"] = {
            "hash": user_hash,
            "revision": _number(rec, user_hash),
            "to_hash": target,
            "to_revision": _number(rec, target),
            "reason": UNDO,
            "message": f"rolled back to revision {_number(rec, target)}",
            "time": float(now),
        }
    return UndoResult(rec, True, f"rolled back to revision {_number(rec, target)}")


def rollback_target(record: dict, user_hash: str) -> tuple[str | None, str]:
    """Where an automatic rollback would go, or (None, why not)."""
    override = record.get("rolled_back_from")
    if override and override.get("hash") == user_hash and override.get("reason") == ROLLED_BACK:
        return None, "already rolled back once; not rolling back the rollback"
    target = record.get("last_complete_hash")
    if not target or target not in record["revisions"]:
        return None, "no earlier revision ever completed: nothing to roll back to"
    if target == record["current_hash"]:
        return None, "the failing revision is the last complete one"
    return target, ""


def mark_rolled_back(record: dict, user_hash: str, target: str, now: float) -> str:
    failed = record["current_hash"]
    message = f"progress deadline exceeded for revision {_number(record, failed)} ({failed}); rolled back to revision {_number(record, target)} ({target})"
    record["rolled_back_from"] = {
        "hash": user_hash,
        "revision": _number(record, failed) if failed == user_hash else _number(record, user_hash),
        "to_hash": target,
        "to_revision": _number(record, target),
        "reason": ROLLED_BACK,
        "message": message,
        "time": float(now),
    }
    return message
