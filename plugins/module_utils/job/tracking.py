# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Job controller's core: count finished pods, decide the verdict, say which pods to start and stop.

Pure (no I/O, stdlib only) and shared by both sides, which is why it lives
in module_utils and not with the other controllers:

* on the Ansible controller, ``plugin_utils/controllers/job/`` wraps it with
  spec validation and placement over the fleet (a fleet-wide Job);
* on a host, ``job/cron_run.py`` drives one CronJob run with it, between two
  playbook runs (the timer fires when no Ansible is there).

One call of :func:`sync` is one level-triggered step, as in Kubernetes'
``syncJob``: from the record (what was started and already counted) and
the observed pods it

1. counts each newly finished pod once (its outcome and exit codes go into
   the record): a success; a failure, matched against ``podFailurePolicy``
   (first matching rule wins: FailJob / FailIndex / Ignore / Count); a pod
   whose node is lost (NotReady) counts as a failure with the condition
   ``DisruptionTarget`` (a rule ``onPodConditions`` can Ignore it); a pod that
   vanished from a reachable node counts as a failure too;
2. gives the verdict, in Kubernetes' order: FailJob (``PodFailurePolicy``),
   ``BackoffLimitExceeded`` (failures, plus restarts with OnFailure, above
   ``backoffLimit``), ``DeadlineExceeded`` (``activeDeadlineSeconds`` since the
   start), ``MaxFailedIndexesExceeded``, then success (``successPolicy``, all
   completions, or the first success of a work queue once no pod runs), or
   ``FailedIndexes`` when every index ended and some failed;
3. says which pods to start (lowest pending indexes first, up to
   ``parallelism``, none while the backoff delay of 10 s doubling up to 6 min
   after consecutive failures runs) and which to stop (all active pods of a
   finished or suspended Job, pods beyond ``parallelism``, pods already
   counted that reappear with their node);
4. after the end, ``ttlSecondsAfterFinished`` removes every pod; the record
   stays (a tombstone), so the same Job is not run again by a re-run.

Starts are proposals: the caller places them and calls :func:`commit_start`
for each pod it really starts (a pod that fits nowhere is proposed again
next step).

The spec is the validated normal form (``plugin_utils/controllers/job/spec.py``)::

    {"completions": 6 | None, "parallelism": 3, "completionMode": "Indexed" | "NonIndexed",
     "backoffLimit": 6, "backoffLimitPerIndex": None, "maxFailedIndexes": None,
     "podFailurePolicy": {"rules": [...]} | None, "successPolicy": {"rules": [...]} | None,
     "activeDeadlineSeconds": None, "ttlSecondsAfterFinished": None, "suspend": False,
     "template": {"metadata": {...}, "spec": {..., "restartPolicy": "Never"}}}

An observed pod (:func:`job_pod` makes one from the node layer's pod status)::

    {"name": "work-3-0", "node": "node1", "index": 3, "phase": "Failed", "ready": False,
     "restart_count": 0, "exit_codes": {"main": 42}, "finished_at": 1700000000.0}
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.namespaces import kube_name
from ansible_collections.hostfleet.workloads.plugins.module_utils.timefmt import rfc3339

KIND = "Job"
SCHEMA = 1
INDEXED = "Indexed"
NON_INDEXED = "NonIndexed"
DEFAULT_BACKOFF_LIMIT = 6
MAX_INT32 = 2**31 - 1
BACKOFF_BASE = 10.0
BACKOFF_CAP = 360.0
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_NAME_LABEL = "job-name"
INDEX_ENV = "JOB_COMPLETION_INDEX"
MAX_POD_NAME = 63
_DIGITS = re.compile(r"[0-9]+")  # not str.isdigit(), which is also true for '²'

# Condition types and reasons (Kubernetes' batch/v1 names).
COMPLETE = "Complete"
FAILED = "Failed"
SUSPENDED = "Suspended"
SUCCESS_CRITERIA_MET = "SuccessCriteriaMet"
FAILURE_TARGET = "FailureTarget"
DISRUPTION_TARGET = "DisruptionTarget"
BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
DEADLINE_EXCEEDED = "DeadlineExceeded"
POD_FAILURE_POLICY = "PodFailurePolicy"
MAX_FAILED_INDEXES_EXCEEDED = "MaxFailedIndexesExceeded"
FAILED_INDEXES = "FailedIndexes"
COMPLETIONS_REACHED = "CompletionsReached"
SUCCESS_POLICY = "SuccessPolicy"
JOB_SUSPENDED = "JobSuspended"
JOB_RESUMED = "JobResumed"

# Pod outcomes kept in the record (None while the pod is active).
SUCCEEDED = "Succeeded"
POD_FAILED = "Failed"
IGNORED = "Ignored"
STOPPED = "Stopped"


def format_indexes(indexes) -> str:
    """Kubernetes' interval form: [1, 3, 4, 5, 7] → "1,3-5,7"."""
    ordered = sorted(set(indexes))
    parts = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def parse_indexes(text: str, completions: int) -> list:
    """The inverse of :func:`format_indexes`; intervals ascending, not overlapping, each below ``completions``."""
    if not isinstance(text, str) or not text:
        raise ValueError("must be a non-empty string of indexes like '1,3-5,7'")
    result: list[int] = []
    last = -1
    for part in text.split(","):
        first, dash, end = part.partition("-")
        if not first.isdigit() or (dash and not end.isdigit()) or not first.isascii() or not end.isascii():
            raise ValueError(f"{part!r} is not an index or an interval a-b")
        low, high = int(first), int(end) if dash else int(first)
        if low > high:
            raise ValueError(f"interval {part!r}: the first index is greater than the last")
        if low <= last:
            raise ValueError(f"interval {part!r}: intervals must be ascending and not overlap")
        if high >= completions:
            raise ValueError(f"index {high} is out of range: completions is {completions}")
        result.extend(range(low, high + 1))
        last = high
    return result


def backoff_delay(failures: int) -> float:
    """Seconds before a new pod after ``failures`` consecutive failures: 0, then 10 s doubling, at most 6 min."""
    if failures <= 0:
        return 0.0
    return min(BACKOFF_BASE * (2 ** min(failures - 1, 32)), BACKOFF_CAP)


def pod_name(job: str, index, attempt: int) -> str:
    """``<job>-<index>-<attempt>`` (Indexed) or ``<job>-<n>``; a long job name is shortened with a hash, never cut blindly.

    Readable on purpose (the attempt is in the name), unlike Kubernetes' random suffixes: a Job named like
    another's pods (``work-1`` beside an Indexed ``work``) can claim the same name; the node layer then refuses the
    second pod, naming its owner."""
    suffix = f"-{attempt}" if index is None else f"-{index}-{attempt}"
    if len(job) + len(suffix) <= MAX_POD_NAME:
        return job + suffix
    digest = hashlib.sha256(job.encode("utf-8")).hexdigest()[:5]
    keep = MAX_POD_NAME - len(suffix) - len(digest) - 1
    return f"{job[:keep].rstrip('-')}-{digest}{suffix}"


def pod_template(template: dict, job: str, index) -> dict:
    """The template of one pod: the Job's labels, and with Indexed its completion index (label, annotation, env)."""
    result = json.loads(json.dumps(template))
    metadata = result.setdefault("metadata", {})
    labels = metadata.setdefault("labels", {})
    # The Job's name in its namespace (the node layer's is <namespace>_<name> outside default: node/namespaces.py).
    labels[JOB_NAME_LABEL] = labels[LEGACY_JOB_NAME_LABEL] = kube_name(job)
    if index is not None:
        labels[INDEX_LABEL] = str(index)
        metadata.setdefault("annotations", {})[INDEX_ANNOTATION] = str(index)
        for container in result["spec"].get("containers") or []:
            env = [e for e in container.get("env") or [] if e.get("name") != INDEX_ENV]
            container["env"] = env + [{"name": INDEX_ENV, "value": str(index)}]
    return result


def job_pod(status: dict, node: str) -> dict:
    """A node-layer pod status (``node/status.py``) as this module observes it."""
    codes = {}
    finished = None
    for container in status.get("containers") or []:
        terminated = (container.get("state") or {}).get("terminated")
        if terminated is not None:
            codes[container["name"]] = terminated.get("exitCode")
            finished = max(finished or 0.0, terminated.get("finishedAt") or 0.0)
        elif container.get("last_exit_code") is not None:
            codes[container["name"]] = container["last_exit_code"]
    index = (status.get("annotations") or {}).get(INDEX_ANNOTATION)
    return {
        "name": status["name"],
        "node": node,
        "index": int(index) if index is not None and _DIGITS.fullmatch(str(index)) else None,
        "phase": status.get("phase") or "Unknown",
        "ready": bool(status.get("ready")),
        "restart_count": int(status.get("restart_count") or 0),
        "exit_codes": codes,
        "finished_at": finished,
        "created": status.get("created"),
    }


def new_record(name: str) -> dict:
    return {
        "schema": SCHEMA,
        "kind": KIND,
        "name": name,
        "spec_hash": None,
        "template_hash": None,
        "start_time": None,
        "completion_time": None,
        "finished_time": None,
        "pods": {},
        "succeeded": 0,
        "failed": 0,
        "ignored": 0,
        "succeeded_indexes": [],
        "failed_indexes": [],
        "index_failures": {},
        "consecutive_failures": 0,
        "last_failure": None,
        "next_pod": 0,
        "conditions": [],
        "suspended": False,
        "ttl_expired": False,
    }


def load_record(record, name: str) -> dict:
    """A deep copy of a stored Job record with every key present (None → a new record)."""
    fresh = new_record(name)
    if not record:
        return fresh
    if record.get("kind", KIND) != KIND:
        raise ValueError(f"the stored record of {name!r} is a {record.get('kind')}, not a {KIND}")
    if int(record.get("schema") or SCHEMA) > SCHEMA:
        raise ValueError(f"the stored record of {name!r} has schema {record.get('schema')}, newer than this collection understands ({SCHEMA})")
    result = copy.deepcopy(record)
    for key, value in fresh.items():
        if result.get(key) is None:
            result[key] = value
    return result


def _condition(record, kind):
    for condition in record["conditions"]:
        if condition["type"] == kind:
            return condition
    return None


def _set_condition(record, kind, status, reason, message, now):
    condition = _condition(record, kind)
    if condition is not None and condition["status"] == status and condition["reason"] == reason:
        return
    entry = {"type": kind, "status": status, "reason": reason, "message": message, "time": now}
    record["conditions"] = [c for c in record["conditions"] if c["type"] != kind] + [entry]


def finished_condition(record):
    """The Complete or Failed condition (status True) of a finished Job, or None."""
    for kind in (COMPLETE, FAILED):
        condition = _condition(record, kind)
        if condition is not None and condition["status"] == "True":
            return condition
    return None


def match_failure_policy(rules, pod):
    """The first ``podFailurePolicy`` rule a failed pod matches: (rule index, rule, container, exit code), or None."""
    for number, rule in enumerate(rules or ()):
        on_codes = rule.get("onExitCodes")
        if on_codes:
            for container, code in sorted((pod.get("exit_codes") or {}).items()):
                if code in (None, 0) or (on_codes.get("containerName") and on_codes["containerName"] != container):
                    continue
                inside = code in on_codes["values"]
                if inside == (on_codes["operator"] == "In"):
                    return number, rule, container, code
        for wanted in rule.get("onPodConditions") or ():
            if wanted["type"] in (pod.get("conditions") or ()) and wanted.get("status", "True") == "True":
                return number, rule, None, None
    return None


@dataclass
class Decision:
    """One step: pods to start (proposals: see :func:`commit_start`) and stop, the verdict, the status."""

    record: dict
    start: list = field(default_factory=list)  # [{"name", "index"}]
    stop: list = field(default_factory=list)  # [{"name", "node", "reason"}]
    remove_all: bool = False
    finished: bool = False
    complete: bool = False
    failed: bool = False
    message: str = ""
    wake_at: float | None = None
    waiting_for: list = field(default_factory=list)
    events: list = field(default_factory=list)

    def status(self, spec: dict) -> dict:
        return job_status(self.record, spec)


class _Step:
    """Working state of one :func:`sync` call."""

    def __init__(self, name, spec, record, now):
        self.name = name
        self.spec = spec
        self.rec = record
        self.now = now
        self.indexed = spec["completionMode"] == INDEXED
        self.per_index = self.indexed and spec.get("backoffLimitPerIndex") is not None
        self.never = (spec["template"].get("spec") or {}).get("restartPolicy", "Never") == "Never"
        self.events = []
        self.fail_job = None  # (reason, message) from a FailJob rule

    def index_key(self, index):
        return str(index)

    # -- counting --------------------------------------------------------------------------------
    def count(self, name, entry, pod, lost):
        """Record the outcome of one pod that ended (pod None: it vanished, or its node is lost)."""
        rec = self.rec
        entry["finished_at"] = (pod or {}).get("finished_at") or self.now
        if pod is not None:
            entry["exit_codes"] = pod.get("exit_codes") or {}
            entry["restarts"] = pod.get("restart_count") or 0
        if pod is not None and pod["phase"] == SUCCEEDED:
            entry["outcome"] = SUCCEEDED
            if self.indexed:
                if entry["index"] not in rec["succeeded_indexes"]:
                    rec["succeeded_indexes"] = sorted(rec["succeeded_indexes"] + [entry["index"]])
                rec["succeeded"] = len(rec["succeeded_indexes"])
            else:
                rec["succeeded"] += 1
            rec["consecutive_failures"] = 0
            self.events.append(f"pod {name} on {entry['node']} succeeded")
            return
        observed = dict(pod or {}, conditions=[DISRUPTION_TARGET] if lost else [])
        if lost:
            entry["reason"] = "NodeLost"
        elif pod is None:
            entry["reason"] = "PodVanished"
        match = match_failure_policy((self.spec.get("podFailurePolicy") or {}).get("rules"), observed) if self.never else None
        action = match[1]["action"] if match else "Count"
        codes = ", ".join(f"{c}={v}" for c, v in sorted(entry.get("exit_codes", {}).items())) or entry.get("reason", "no exit code")
        if action == "Ignore":
            entry["outcome"] = IGNORED
            rec["ignored"] += 1
            self.events.append(f"pod {name} on {entry['node']} failed ({codes}): ignored by podFailurePolicy rule {match[0]}")
            return
        entry["outcome"] = POD_FAILED
        rec["failed"] += 1
        self.events.append(f"pod {name} on {entry['node']} failed ({codes})")
        if action == "FailJob":
            _number, _rule, container, code = match
            if container is not None:
                message = f"Container {container} for pod {name} failed with exit code {code} matching FailJob rule at index {match[0]}"
            else:
                message = f"Pod {name} has condition {DISRUPTION_TARGET} matching FailJob rule at index {match[0]}"
            self.fail_job = self.fail_job or (POD_FAILURE_POLICY, message)
            return
        if action == "FailIndex" and self.indexed:
            self.fail_index(entry["index"])
            return
        rec["consecutive_failures"] += 1
        rec["last_failure"] = max(rec["last_failure"] or 0.0, entry["finished_at"])
        if self.indexed:
            key = self.index_key(entry["index"])
            failures, _last = rec["index_failures"].get(key, [0, None])
            rec["index_failures"][key] = [failures + 1, entry["finished_at"]]
            if self.per_index and failures + 1 > self.spec["backoffLimitPerIndex"]:
                self.fail_index(entry["index"])

    def fail_index(self, index):
        if index not in self.rec["failed_indexes"] and index not in self.rec["succeeded_indexes"]:
            self.rec["failed_indexes"] = sorted(self.rec["failed_indexes"] + [index])
            self.events.append(f"index {index} failed")

    # -- questions -------------------------------------------------------------------------------
    def restarts(self):
        """Restarts of the active pods (Kubernetes' pastBackoffLimitOnFailure counts those only)."""
        return sum(int(e.get("restarts") or 0) for e in self.rec["pods"].values() if e.get("outcome") is None)

    def backoff_until(self, index):
        """When a new pod (of ``index``) may start after failures; 0 when it may now."""
        if self.per_index:
            failures, last = self.rec["index_failures"].get(self.index_key(index), [0, None])
        else:
            failures, last = self.rec["consecutive_failures"], self.rec["last_failure"]
        if not failures or last is None:
            return 0.0
        return last + backoff_delay(failures)


def sync(spec: dict, record, pods, lost_nodes=(), now: float = 0.0, name: str = "") -> Decision:
    """One step of a Job (see the module docstring). ``pods``: observed pods on reachable nodes;
    ``lost_nodes``: NotReady nodes, whose pods are counted as failed (DisruptionTarget)."""
    name = name or (record or {}).get("name") or ""
    rec = load_record(record, name)
    step = _Step(name, spec, rec, now)
    observed = {p["name"]: p for p in pods}
    lost_nodes = set(lost_nodes)
    decision = Decision(record=rec)

    # Pods found that the record does not know (a record write that did not land): adopt them.
    for pod_name_, pod in sorted(observed.items()):
        if pod_name_ not in rec["pods"]:
            rec["pods"][pod_name_] = {"node": pod["node"], "index": pod.get("index"), "created": pod.get("created") or now, "outcome": None}

    # 1. count what ended
    ended = []
    for pod_name_, entry in sorted(rec["pods"].items()):
        pod = observed.get(pod_name_)
        if pod is not None and entry.get("outcome") is None:
            entry["restarts"] = pod.get("restart_count") or 0
        if entry.get("outcome") is not None:
            if pod is not None and pod["phase"] not in (SUCCEEDED, POD_FAILED) and pod_name_ not in [s["name"] for s in decision.stop]:
                # Counted already (its node was lost) and back: the index runs elsewhere.
                decision.stop.append({"name": pod_name_, "node": pod["node"], "reason": "counted as failed while its node was lost; replaced"})
            continue
        if entry["node"] in lost_nodes:
            ended.append((now, pod_name_, entry, None, True))
        elif pod is None:
            ended.append((now, pod_name_, entry, None, False))
        elif pod["phase"] in (SUCCEEDED, POD_FAILED):
            ended.append((pod.get("finished_at") or now, pod_name_, entry, pod, False))
    # In the order they ended: a success resets the backoff only for the failures before it.
    for _when, pod_name_, entry, pod, lost in sorted(ended, key=lambda item: (item[0], item[1])):
        step.count(pod_name_, entry, pod, lost=lost)

    active = {n: e for n, e in rec["pods"].items() if e.get("outcome") is None}
    finished = finished_condition(rec)

    # 2. the verdict
    if finished is None and rec["start_time"] is None and not spec.get("suspend"):
        rec["start_time"] = now  # Kubernetes sets startTime at the first unsuspended sync
    if finished is None and not rec["suspended"] and not spec.get("suspend"):
        verdict = _verdict(step, active)
        if verdict is not None:
            kind, reason, message = verdict
            _finish(rec, kind, reason, message, now)
            finished = finished_condition(rec)
            step.events.append(f"job {kind.lower()}: {reason}")

    if finished is not None:
        # A finished Job: its active pods go; after the TTL every pod goes, the record stays.
        for pod_name_, entry in sorted(active.items()):
            if entry["node"] not in lost_nodes:
                entry["outcome"] = STOPPED
                decision.stop.append({"name": pod_name_, "node": entry["node"], "reason": f"job {finished['type'].lower()}"})
        ttl = spec.get("ttlSecondsAfterFinished")
        if rec["ttl_expired"] and observed:
            decision.remove_all = True  # pods whose node was down when the TTL passed
        elif ttl is not None and not rec["ttl_expired"]:
            expiry = (rec["finished_time"] or now) + ttl
            if now >= expiry:
                rec["ttl_expired"] = True
                decision.remove_all = True
                step.events.append("ttlSecondsAfterFinished passed: every pod removed")
            else:
                decision.wake_at = expiry
        decision.finished = True
        decision.complete = finished["type"] == COMPLETE
        decision.failed = finished["type"] == FAILED
        decision.message = finished["message"]
        decision.events = step.events
        return decision

    # 3. suspend / resume
    if spec.get("suspend"):
        for pod_name_, entry in sorted(active.items()):
            if entry["node"] not in lost_nodes:
                entry["outcome"] = STOPPED
                decision.stop.append({"name": pod_name_, "node": entry["node"], "reason": "job suspended"})
        if not rec["suspended"]:
            rec["suspended"] = True
            _set_condition(rec, SUSPENDED, "True", JOB_SUSPENDED, "Job suspended", now)
            step.events.append("job suspended")
        rec["start_time"] = None
        decision.finished = True
        decision.message = "the Job is suspended: no pod runs"
        decision.events = step.events
        return decision
    if rec["suspended"]:
        rec["suspended"] = False
        _set_condition(rec, SUSPENDED, "False", JOB_RESUMED, "Job resumed", now)
        step.events.append("job resumed")
    if rec["start_time"] is None:
        rec["start_time"] = now

    # 4. pods to start and stop
    _plan_pods(step, decision, active, observed, lost_nodes)
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None:
        decision.wake_at = min(x for x in (decision.wake_at, rec["start_time"] + deadline) if x is not None)
    decision.events = step.events
    decision.message = _progress_message(step, active, decision)
    return decision


def _verdict(step, active):
    """(condition type, reason, message) when the Job ends now, else None."""
    rec, spec, now = step.rec, step.spec, step.now
    if step.fail_job:
        return (FAILED,) + step.fail_job
    limit = spec["backoffLimit"]
    restarts = 0 if step.never else step.restarts()
    # Kubernetes: failed pods above the limit (with backoffLimitPerIndex too, where it defaults to 2147483647);
    # with OnFailure also restarts of the active pods reaching it (any, for a limit of 0).
    if rec["failed"] > limit or (restarts and restarts >= max(limit, 1)):
        return FAILED, BACKOFF_LIMIT_EXCEEDED, "Job has reached the specified backoff limit"
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and rec["start_time"] is not None and now - rec["start_time"] >= deadline:
        return FAILED, DEADLINE_EXCEEDED, "Job was active longer than specified deadline"
    max_failed = spec.get("maxFailedIndexes")
    if step.per_index and max_failed is not None and len(rec["failed_indexes"]) > max_failed:
        return FAILED, MAX_FAILED_INDEXES_EXCEEDED, "Job has exceeded the specified maximal number of failed indexes"
    completions = spec.get("completions")
    if step.indexed:
        succeeded = set(rec["succeeded_indexes"])
        ended = succeeded | set(rec["failed_indexes"])
        if rec["failed_indexes"] and len(ended) >= completions:
            return FAILED, FAILED_INDEXES, "Job has failed indexes"
        for number, rule in enumerate((spec.get("successPolicy") or {}).get("rules") or ()):
            wanted = set(rule.get("succeededIndexes") or range(completions))
            done = wanted & succeeded
            needed = rule.get("succeededCount")
            # At least one succeeded index, whatever the rule says (Kubernetes).
            if done and ((needed is None and done == wanted) or (needed is not None and len(done) >= needed)):
                _set_condition(rec, SUCCESS_CRITERIA_MET, "True", SUCCESS_POLICY, "Matched rules at index " + str(number), now)
                return COMPLETE, SUCCESS_POLICY, f"Matched rules at index {number}"
        if len(ended) >= completions:
            return COMPLETE, COMPLETIONS_REACHED, "Reached expected number of succeeded pods"
        return None
    if completions is not None:
        if rec["succeeded"] >= completions:
            return COMPLETE, COMPLETIONS_REACHED, "Reached expected number of succeeded pods"
        return None
    # A work queue: the first success means the work is done, once every pod has ended.
    if rec["succeeded"] > 0 and not active:
        return COMPLETE, COMPLETIONS_REACHED, "Reached expected number of succeeded pods"
    return None


def _finish(rec, kind, reason, message, now):
    _set_condition(rec, kind, "True", reason, message, now)
    if kind == FAILED:
        _set_condition(rec, FAILURE_TARGET, "True", reason, message, now)
    rec["finished_time"] = now
    if kind == COMPLETE:
        rec["completion_time"] = now


def fail(record: dict, reason: str, message: str, now: float) -> None:
    """End a Job as Failed from outside a step (e.g. its supervisor on a host is gone)."""
    if finished_condition(record) is None:
        _finish(record, FAILED, reason, message, now)


def _plan_pods(step, decision, active, observed, lost_nodes):
    rec, spec, now = step.rec, step.spec, step.now
    parallelism = spec["parallelism"]
    running = {n: e for n, e in active.items() if e["node"] not in lost_nodes}
    waits = []
    if step.indexed:
        completions = spec["completions"]
        ended = set(rec["succeeded_indexes"]) | set(rec["failed_indexes"])
        busy = {e["index"] for e in running.values()}
        # Too many pods (parallelism lowered, or an index that ended meanwhile): the highest indexes go.
        doomed = sorted((n for n, e in running.items() if e["index"] in ended), key=lambda n: (running[n]["index"], n))
        keep = sorted((n for n in running if n not in doomed), key=lambda n: (running[n]["index"], n))
        doomed += keep[parallelism:]
        for pod in doomed:
            running[pod]["outcome"] = STOPPED
            decision.stop.append(
                {"name": pod, "node": running[pod]["node"], "reason": "beyond parallelism" if running[pod]["index"] not in ended else "its index has ended"}
            )
        room = parallelism - (len(running) - len(doomed))
        attempts = {}
        for entry in rec["pods"].values():
            attempts[entry["index"]] = attempts.get(entry["index"], 0) + 1
        for index in range(completions):
            if room <= 0:
                break
            if index in ended or index in busy:
                continue
            until = step.backoff_until(index)
            if until > now:
                waits.append(until)
                if not step.per_index:
                    break  # the Job's backoff holds every new pod back
                continue
            decision.start.append({"name": pod_name(step.name, index, attempts.get(index, 0)), "index": index})
            room -= 1
    else:
        completions = spec.get("completions")
        if completions is None:
            wanted = 0 if rec["succeeded"] > 0 else parallelism
        else:
            wanted = max(0, min(parallelism, completions - rec["succeeded"]))
        extra = sorted(running, key=lambda n: (running[n].get("created") or 0, n), reverse=True)[: max(0, len(running) - max(wanted, 0))]
        if rec["succeeded"] == 0 or completions is not None:
            for pod in extra:
                running[pod]["outcome"] = STOPPED
                decision.stop.append({"name": pod, "node": running[pod]["node"], "reason": "beyond parallelism"})
        missing = wanted - (len(running) - len(extra))
        until = step.backoff_until(None)
        if missing > 0 and until > now:
            waits.append(until)
        elif missing > 0:
            counter = rec["next_pod"]
            for _unused in range(missing):
                name = pod_name(step.name, None, counter)
                while name in rec["pods"]:
                    counter += 1
                    name = pod_name(step.name, None, counter)
                decision.start.append({"name": name, "index": None})
                counter += 1
    if waits:
        decision.wake_at = min(waits)
        decision.waiting_for.append(f"backoff after failures: next pod at {rfc3339(min(waits))} (in {min(waits) - now:.0f} s)")


def commit_start(record: dict, name: str, index, node: str, now: float) -> None:
    """Record a pod the caller has really started (placed on ``node``)."""
    record["pods"][name] = {"node": node, "index": index, "created": now, "outcome": None}
    if index is None:
        number = name.rsplit("-", 1)[-1]
        if _DIGITS.fullmatch(number):
            record["next_pod"] = max(record["next_pod"], int(number) + 1)


def _progress_message(step, active, decision):
    rec, spec = step.rec, step.spec
    target = spec.get("completions")
    done = f"{rec['succeeded']}/{target}" if target is not None else f"{rec['succeeded']} (work queue)"
    return f"succeeded {done}, failed {rec['failed']}, active {len(active) - len(decision.stop) + len(decision.start)}"


def job_status(rec: dict, spec: dict) -> dict:
    """The Job's status as Kubernetes shows it."""
    active = [e for e in rec["pods"].values() if e.get("outcome") is None]
    status = {
        "active": len(active),
        "succeeded": rec["succeeded"],
        "failed": rec["failed"],
        "startTime": rfc3339(rec["start_time"]),
        "completionTime": rfc3339(rec["completion_time"]),
        "conditions": [
            {
                "type": c["type"],
                "status": c["status"],
                "reason": c["reason"],
                "message": c["message"],
                "lastTransitionTime": rfc3339(c["time"]),
                "lastProbeTime": rfc3339(c["time"]),
            }
            for c in rec["conditions"]
        ],
    }
    if spec.get("completionMode") == INDEXED:
        status["completedIndexes"] = format_indexes(rec["succeeded_indexes"])
        if spec.get("backoffLimitPerIndex") is not None:
            status["failedIndexes"] = format_indexes(rec["failed_indexes"])
    if rec.get("ttl_expired"):
        status["podsRemovedAfterTTL"] = True
    return status


def pod_report(rec: dict) -> list:
    """Every pod the Job started, with its node, index, outcome and exit codes (kept after the pods are removed)."""
    return [
        {
            "name": name,
            "node": entry["node"],
            "index": entry.get("index"),
            "outcome": entry.get("outcome") or "Active",
            "exit_codes": entry.get("exit_codes") or {},
            "restarts": entry.get("restarts") or 0,
            "reason": entry.get("reason"),
            "started": rfc3339(entry.get("created")),
            "finished": rfc3339(entry.get("finished_at")),
        }
        for name, entry in sorted(rec["pods"].items(), key=lambda item: (item[1].get("created") or 0, item[0]))
    ]
