# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deployment conditions and the progress deadline (Kubernetes' progress.go).

``Progressing`` tells the story of the current rollout:

==========================  ========  ==========================================================
reason                      status    when
==========================  ========  ==========================================================
NewReplicaSetCreated        True      a new template revision starts rolling out
FoundNewReplicaSet          True      the template matches a revision already in the history
ReplicaSetUpdated           True      progress: more updated / ready / available pods, fewer old
NewReplicaSetAvailable      True      complete: every replica updated and available, no old pod
ProgressDeadlineExceeded    False     no progress for progressDeadlineSeconds
RolledBack                  True      (extension) rollbackOnFailure switched back to the last
                                      complete revision, which now rolls out within the budgets
DeploymentPaused            Unknown   paused: no progress estimation
DeploymentResumed           Unknown   resumed (the deadline counts from here)
==========================  ========  ==========================================================

Different from Kubernetes on purpose: a Deployment that WAS complete and is
no longer (a node lost, a scale-up) also gets a deadline, so that a run
waiting for it always ends.
"""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common.conditions import (
    AVAILABLE,
    COMPLETE,
    FAILED,
    IN_PROGRESS,
    MIN_AVAILABLE,
    MIN_UNAVAILABLE,
    NEWLY_FAILED,
    PROGRESSING,
    TIMED_OUT,
    has_progressed,
    progressing_reason,
    set_condition,
)

NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
ROLLED_BACK = "RolledBack"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"

# The verdict of a paused Deployment (the others are conditions.COMPLETE, IN_PROGRESS, FAILED, NEWLY_FAILED)
PAUSED_VERDICT = "paused"


def rs_name(name: str, revision: str | None) -> str:
    return f"{name}-{revision}" if revision else name


def is_complete(observed: dict, replicas: int) -> bool:
    """Kubernetes' DeploymentComplete: every replica updated and available, no old pod."""
    return observed["updated"] == replicas and observed["replicas"] == replicas and observed["available"] == replicas


def sync_paused(record: dict, paused: bool, now: float) -> None:
    """DeploymentPaused / DeploymentResumed (a reported timeout is never overwritten)."""
    conditions = record["conditions"]
    reason = progressing_reason(record)
    if reason == TIMED_OUT:
        return
    if paused and reason != PAUSED:
        set_condition(conditions, PROGRESSING, "Unknown", PAUSED, "Deployment is paused", now)
    elif not paused and reason == PAUSED:
        set_condition(conditions, PROGRESSING, "Unknown", RESUMED, "Deployment is resumed", now)
        record["last_progress"] = now


def sync_progress(record: dict, name: str, replicas: int, deadline: int, observed: dict, now: float, new_generation: bool) -> str:
    """Update Progressing from this observation; return the verdict (COMPLETE, IN_PROGRESS, FAILED, NEWLY_FAILED)."""
    conditions = record["conditions"]
    rs = rs_name(name, record["current_hash"])
    reason = progressing_reason(record)
    if is_complete(observed, replicas):
        set_condition(conditions, PROGRESSING, "True", NEW_RS_AVAILABLE, f'ReplicaSet "{rs}" has successfully progressed.', now)
        record["last_complete_hash"] = record["current_hash"]
        record["held"] = None
        return COMPLETE
    if record["last_progress"] is None:
        record["last_progress"] = now
    if reason in (NEW_RS_CREATED, FOUND_NEW_RS, ROLLED_BACK) and record["rollout_started"] == now:
        return IN_PROGRESS  # the rollout starts in this very step
    if reason == TIMED_OUT and record["held"] is not None:
        # A held rollout resumes only when its new pods become available: replacing pods lost
        # with a node, or a node coming back, must not look like progress.
        progressed = observed["updated_available"] > int(record.get("held_available") or 0)
    else:
        progressed = has_progressed(record["observed"], observed)
    if progressed or (new_generation and reason == TIMED_OUT) or reason in (NEW_RS_AVAILABLE, RESUMED, None):
        # Progress; or a spec change after a timeout (the user touched it: try again);
        # or no longer complete (a node lost, a scale-up): the clock starts again.
        set_condition(conditions, PROGRESSING, "True", RS_UPDATED, f'ReplicaSet "{rs}" is progressing.', now)
        record["last_progress"] = now
        record["held"] = None
        return IN_PROGRESS
    if reason == TIMED_OUT:
        return FAILED
    if now > record["last_progress"] + deadline:
        set_condition(conditions, PROGRESSING, "False", TIMED_OUT, f'ReplicaSet "{rs}" has timed out progressing.', now)
        return NEWLY_FAILED
    return IN_PROGRESS


def sync_available(record: dict, available: int, min_available: int, now: float) -> None:
    if available >= min_available:
        set_condition(record["conditions"], AVAILABLE, "True", MIN_AVAILABLE, "Deployment has minimum availability.", now)
    else:
        set_condition(record["conditions"], AVAILABLE, "False", MIN_UNAVAILABLE, "Deployment does not have minimum availability.", now)
