# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ``workload_info`` shows of each kind: counts, status and table row, from a record and the pods.

Pure (no I/O). One :class:`KindSummary` per kind; the registry of kinds
(``controllers/registry.py``) holds each kind's as ``summarize``, so
``workload_info`` dispatches through it. Inputs: the controller's record as
stored on the nodes (the newest copy, already loaded), the kind's pods as
``workload_info`` views them (``pod_view``: times on the controller's clock)
and, for a CronJob, the nodes' report of its schedule and runs.

The counts are the ones ``kubectl get`` shows, computed the way the
controller computes its own status: a pod is available when it has been
ready for the record's ``minReadySeconds`` (every kind's record carries it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ansible_collections.hostfleet.workloads.plugins.module_utils.job import tracking
from ansible_collections.hostfleet.workloads.plugins.module_utils.timefmt import rfc3339
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod, is_available, is_ready

FINISHED = ("Succeeded", "Failed")


def parse_rfc3339(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def human_duration(seconds):
    """kubectl's short age (k8s.io/apimachinery duration.HumanDuration): 45s, 3m20s, 2h5m, 3d4h, 400d, 2y10d."""
    if seconds is None:
        return "<unknown>"
    total = int(seconds)
    if total < 0:
        return "<invalid>" if total < -1 else "0s"
    if total < 120:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        return f"{minutes}m{total % 60}s" if total % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    years = hours // (24 * 365)
    if years < 8:
        days = (hours // 24) % 365
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{years}y"


def _n(value):
    return "-" if value is None else str(value)


# -- the record (records.Record, or None when the nodes hold none) -------------------------------------


def revision_numbers(record) -> dict:
    return record.revision_numbers() if record is not None else {}


def current_template(record) -> dict:
    """The pod template of the revision running or being rolled out (a Job's: its template), or {}."""
    return (record.template(record.current_revision) if record is not None else None) or {}


def _conditions(record):
    rendered = []
    for condition in record.conditions if record is not None else []:
        item = dict(condition)
        for key in ("lastUpdateTime", "lastTransitionTime", "lastProbeTime"):
            if isinstance(item.get(key), (int, float)):
                item[key] = rfc3339(item[key])
        if isinstance(item.get("time"), (int, float)):
            item["lastTransitionTime"] = rfc3339(item.pop("time"))
        rendered.append(item)
    return rendered


def _first_created(record, pods):
    times = [e.get("created") for e in (record.revisions if record is not None else {}).values() if isinstance(e, dict) and e.get("created")]
    times += [p["created_at"] for p in pods if p.get("created_at")]
    return min(times) if times else None


def _observed(view):
    return ObservedPod.from_json(
        {
            "name": view["name"],
            "node": view["node"],
            "revision": view["template_hash"],
            "phase": view["phase"],
            "ready": view["ready"],
            "ready_since": view["ready_since"],
            "created": view["created_at"] or 0.0,
        }
    )


def counts(kind, name, record, pods, now, desired=None):
    """The entry every kind shares: pods counted as the controllers count them, conditions, revision, age."""
    current = record.current_revision if record is not None else None
    live = [p for p in pods if p["phase"] not in FINISHED]
    observed = [_observed(p) for p in live]
    # The workload's own minReadySeconds, as its controller counts availableReplicas.
    min_ready = record.min_ready_seconds if record is not None else 0
    created = _first_created(record, pods)
    return {
        "kind": kind,
        "name": name,
        "desired": desired if isinstance(desired, int) and not isinstance(desired, bool) else None,
        "current": len(live),
        "ready": sum(1 for p in observed if is_ready(p)),
        "up_to_date": sum(1 for p in live if current and p["template_hash"] == current),
        "available": sum(1 for p in observed if is_available(p, min_ready, now)),
        "revision": record.revision_number(current) if current else None,
        "conditions": _conditions(record),
        "status": {},
        "nodes": sorted({p["node"] for p in pods}),
        "created": rfc3339(created),
        "age": (now - created) if created is not None else None,
        "pods": sorted(pods, key=lambda p: (p["node"], p["name"])),
    }


# -- one summary per kind ----------------------------------------------------------------------------


@dataclass(frozen=True)
class KindSummary:
    """How workload_info shows one kind: its entry (``summary(name, record, pods, now, cronjob)``) and its table rows."""

    kind: str
    summarize: Callable[..., dict]
    header: tuple
    row: Callable[[dict, float], list]

    def __call__(self, name, record, pods, now, cronjob=None) -> dict:
        return self.summarize(self.kind, name, record, pods, now, cronjob)


def _replicas(kind, name, record, pods, now, _cronjob):
    return counts(kind, name, record, pods, now, record.replicas if record is not None else None)


def _daemonset(kind, name, record, pods, now, _cronjob):
    return counts(kind, name, record, pods, now, record.desired if record is not None else None)


def _job(kind, name, record, pods, now, _cronjob):
    workload = counts(kind, name, record, pods, now, record.completions if record is not None else None)
    data = record.data if record is not None else tracking.new_record(name)
    immutable = data.get("immutable") or {}
    # The Job action's own status (tracking.job_status), from the record and the Job's immutable fields.
    status = tracking.job_status(data, immutable)
    finished = tracking.finished_condition(data)
    suspended = any(c.get("type") == tracking.SUSPENDED and c.get("status") == "True" for c in data["conditions"])
    start, end = data["start_time"], data["completion_time"] or data["finished_time"]
    workload["status"] = {
        "active": status["active"],
        "succeeded": status["succeeded"],
        "failed": status["failed"],
        **{key: status[key] for key in ("completedIndexes", "failedIndexes") if key in status},
        "completions": workload["desired"],
        "status": finished["type"] if finished else ("Suspended" if suspended else "Running"),
        "startTime": status["startTime"],
        "completionTime": status["completionTime"],
        "duration": ((end or now) - start) if start else None,
    }
    return workload


def _cronjob(kind, name, record, pods, now, cronjob):
    workload = counts(kind, name, record, pods, now)
    if cronjob:
        config = cronjob.get("config") or {}
        runs = cronjob.get("runs") or []
        workload["status"] = {
            "schedule": config.get("schedule"),
            "timeZone": config.get("timeZone"),
            "suspend": bool(config.get("suspend")),
            "active": sum(1 for r in runs if r.get("active")),
            "lastScheduleTime": rfc3339(cronjob.get("last_schedule")),
            "lastSuccessfulTime": rfc3339(cronjob.get("last_success")),
            "runs": [{k: r.get(k) for k in ("name", "scheduled", "active", "outcome")} for r in runs],
        }
    return workload


def _pods_only(kind, name, record, pods, now, _cronjob):
    return counts(kind, name, record, pods, now)


def _name(w):
    return f"{w['kind'].lower()}/{w['name']}"


DEPLOYMENT = KindSummary(
    "Deployment",
    _replicas,
    ("NAME", "READY", "UP-TO-DATE", "AVAILABLE", "REVISION", "AGE"),
    lambda w, now: [_name(w), f"{w['ready']}/{_n(w['desired'])}", w["up_to_date"], w["available"], _n(w["revision"]), human_duration(w["age"])],
)
REPLICASET = KindSummary(
    "ReplicaSet",
    _replicas,
    ("NAME", "DESIRED", "CURRENT", "READY", "AGE"),
    lambda w, now: [_name(w), _n(w["desired"]), w["current"], w["ready"], human_duration(w["age"])],
)
# kubectl shows a ReplicationController like a ReplicaSet.
REPLICATIONCONTROLLER = KindSummary("ReplicationController", _replicas, REPLICASET.header, REPLICASET.row)
STATEFULSET = KindSummary(
    "StatefulSet",
    _replicas,
    ("NAME", "READY", "UP-TO-DATE", "REVISION", "AGE"),
    lambda w, now: [_name(w), f"{w['ready']}/{_n(w['desired'])}", w["up_to_date"], _n(w["revision"]), human_duration(w["age"])],
)
DAEMONSET = KindSummary(
    "DaemonSet",
    _daemonset,
    ("NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "REVISION", "AGE"),
    lambda w, now: [_name(w), _n(w["desired"]), w["current"], w["ready"], w["up_to_date"], w["available"], _n(w["revision"]), human_duration(w["age"])],
)


def _job_row(w, now):
    duration = w["status"].get("duration")
    return [_name(w), w["status"].get("status", "-"), f"{w['status'].get('succeeded', 0)}/{_n(w['desired'])}",
            human_duration(duration) if duration is not None else "-", human_duration(w["age"])]


def _cronjob_row(w, now):
    status = w["status"]
    last = status.get("lastScheduleTime")
    return [_name(w), status.get("schedule") or "-", status.get("timeZone") or "-", str(bool(status.get("suspend"))), status.get("active", 0),
            human_duration(now - parse_rfc3339(last)) if last else "<none>", human_duration(w["age"])]


JOB = KindSummary("Job", _job, ("NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"), _job_row)
CRONJOB = KindSummary("CronJob", _cronjob, ("NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"), _cronjob_row)


def owned_pods(kind: str) -> KindSummary:
    """Bare pods (kind Pod) and pods of an owner kind this collection does not know: their pods, counted."""
    return KindSummary(
        kind, _pods_only, ("NAME", "READY", "PODS", "AGE"), lambda w, now: [_name(w), f"{w['ready']}/{w['current']}", len(w["pods"]), human_duration(w["age"])]
    )


POD = owned_pods("Pod")
