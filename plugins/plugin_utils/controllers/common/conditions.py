# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Status conditions of every workload kind, kept in the record as Kubernetes keeps them on the object.

A condition (in the record, times as Unix seconds)::

    {"type": "Progressing", "status": "True", "reason": "...", "message": "...", "lastUpdateTime": t, "lastTransitionTime": t}

The condition types, reasons and verdicts here are shared by the kinds that have them
(Deployment, DaemonSet, ReplicaSet, StatefulSet); each kind's own reasons live with the kind
(e.g. ``deployment/progress.py``). ``render_conditions`` gives them RFC 3339 times for the status.
"""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.module_utils.timefmt import rfc3339

PROGRESSING = "Progressing"
AVAILABLE = "Available"
REPLICA_FAILURE = "ReplicaFailure"

TIMED_OUT = "ProgressDeadlineExceeded"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"
FAILED_SCHEDULING = "FailedScheduling"

# Verdicts of a kind's progress check (deployment/progress.sync_progress, daemonset/sync.py)
COMPLETE = "complete"
IN_PROGRESS = "progressing"
FAILED = "failed"
NEWLY_FAILED = "newly-failed"


def get_condition(conditions: list[dict], kind: str) -> dict | None:
    for condition in conditions:
        if condition.get("type") == kind:
            return condition
    return None


def set_condition(conditions: list[dict], kind: str, status: str, reason: str, message: str, now: float) -> None:
    """Kubernetes' SetDeploymentCondition: same status and reason → unchanged; same status → keep the transition time."""
    current = get_condition(conditions, kind)
    if current is not None and current["status"] == status and current["reason"] == reason and current["message"] == message:
        return
    transition = current["lastTransitionTime"] if current is not None and current["status"] == status else now
    updated = {"type": kind, "status": status, "reason": reason, "message": message, "lastUpdateTime": now, "lastTransitionTime": transition}
    if current is None:
        conditions.append(updated)
        conditions.sort(key=lambda c: (c["type"] != AVAILABLE, c["type"] != PROGRESSING, c["type"]))
    else:
        current.update(updated)


def remove_condition(conditions: list[dict], kind: str) -> None:
    conditions[:] = [c for c in conditions if c.get("type") != kind]


def progressing_reason(record: dict) -> str | None:
    condition = get_condition(record["conditions"], PROGRESSING)
    return condition["reason"] if condition else None


def has_progressed(previous: dict | None, observed: dict) -> bool:
    """Kubernetes' DeploymentProgressing: more updated pods, more of them ready / available, or fewer old pods.

    ``previous`` and ``observed`` are ``counts.count`` results. Unlike Kubernetes, readiness is
    counted on the current revision only, and old pods on NotReady nodes still count as old: a
    node that fails or comes back is not progress.
    """
    if previous is None:
        return False
    return (
        observed["updated"] > previous.get("updated", 0)
        or observed["old"] < previous.get("old", 0)
        or observed["updated_ready"] > previous.get("updated_ready", 0)
        or observed["updated_available"] > previous.get("updated_available", 0)
    )


def sync_replica_failure(record: dict, pending_messages: list[str], now: float) -> None:
    """ReplicaFailure (FailedScheduling) while pods cannot be placed, naming why; removed once they all are."""
    if pending_messages:
        set_condition(record["conditions"], REPLICA_FAILURE, "True", FAILED_SCHEDULING, "; ".join(sorted(set(pending_messages))), now)
    else:
        remove_condition(record["conditions"], REPLICA_FAILURE)


def render_conditions(conditions: list[dict]) -> list[dict]:
    """The record's conditions as a status shows them: RFC 3339 times."""
    return [{**c, "lastUpdateTime": rfc3339(c.get("lastUpdateTime")), "lastTransitionTime": rfc3339(c.get("lastTransitionTime"))} for c in conditions]
