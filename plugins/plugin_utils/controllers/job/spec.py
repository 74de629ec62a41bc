# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Job spec: validation and defaults, in Kubernetes' field names (batch/v1).

Errors are ``SpecError`` and name the field path. The result's ``normal`` is
the form ``module_utils/job/tracking.py`` works on (on the controller, and on
the hosts for CronJob runs).

===========================  ==============  ==================================================
field                        default         rule
===========================  ==============  ==================================================
completions                  1 (see rule)    integer >= 0; unset with ``parallelism`` set is a
                                             work queue (the first success ends the Job)
parallelism                  1               integer >= 0
completionMode               NonIndexed      NonIndexed | Indexed (needs ``completions``, <= 100000)
backoffLimit                 6               integer >= 0 (2147483647 with ``backoffLimitPerIndex``)
backoffLimitPerIndex         unset           Indexed only; restartPolicy Never
maxFailedIndexes             unset           needs ``backoffLimitPerIndex``; <= completions
podFailurePolicy.rules       unset           restartPolicy Never; <= 20 rules; action FailJob |
                                             FailIndex (needs backoffLimitPerIndex) | Ignore |
                                             Count; exactly one of onExitCodes {containerName,
                                             operator In|NotIn, values 1..255 unique, In without
                                             0} / onPodConditions [{type, status}]
successPolicy.rules          unset           Indexed only; 1..20 rules of succeededIndexes
                                             ("0,2-4") and/or succeededCount
activeDeadlineSeconds        unset           integer > 0
ttlSecondsAfterFinished      unset           integer >= 0
suspend                      false
template                     required        restartPolicy OnFailure | Never
===========================  ==============  ==================================================

Immutable once the Job exists (as in Kubernetes): template, completions,
completionMode, backoffLimitPerIndex, podFailurePolicy, successPolicy. The
others (parallelism, suspend, backoffLimit, maxFailedIndexes,
activeDeadlineSeconds, ttlSecondsAfterFinished) may change while it runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ansible_collections.hostfleet.workloads.plugins.module_utils.job import tracking
from ansible_collections.hostfleet.workloads.plugins.module_utils.job.cron_inputs import JOB_KEYS
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.namespaces import split
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common.fields import bool_field, integer_field
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common.preamble import spec_mapping
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.revisions import canonical_json, template_hash
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.templates import TemplateInfo, parse_pod_template
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.labels import known_fields

# The Job spec's fields: one list, the host's (cronjob_timer checks a CronJob's jobTemplate against it too).
FIELDS = set(JOB_KEYS)
IMMUTABLE = ("template", "completions", "completionMode", "backoffLimitPerIndex", "podFailurePolicy", "successPolicy")
MAX_INDEXED_COMPLETIONS = 100000
ACTIONS = ("FailJob", "FailIndex", "Ignore", "Count")
OPERATORS = ("In", "NotIn")
CONDITION_STATUSES = ("True", "False", "Unknown")
_NAME = re.compile(r"\A[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
MAX_NAME_LENGTH = 63


@dataclass(frozen=True)
class JobSpec:
    name: str
    template: TemplateInfo
    normal: dict

    @property
    def template_hash(self) -> str:
        return self.template.hash

    @property
    def indexed(self) -> bool:
        return self.normal["completionMode"] == tracking.INDEXED

    def immutable_hash(self) -> str:
        """The hash of the fields that may not change once the Job exists."""
        return template_hash({key: self.normal.get(key) for key in IMMUTABLE if key != "template"} | {"template": self.template.normal})

    def immutable_fields(self) -> dict:
        return {key: self.normal.get(key) for key in IMMUTABLE if key != "template"} | {"template": self.template.normal}


def validate_job_name(name, path="metadata.name") -> str:
    """A Job's name, or the node layer's ``<namespace>_<name>`` of one (node/namespaces.py), checked by its own name."""
    if not isinstance(name, str) or not name:
        raise SpecError(path, "is required")
    namespace, own = split(name)
    if len(own) > MAX_NAME_LENGTH or not _NAME.match(own) or not _NAME.match(namespace):
        raise SpecError(
            path, f"{name!r} must be a DNS-1123 label: lowercase letters, digits and '-', start and end alphanumeric, at most {MAX_NAME_LENGTH} characters"
        )
    return name


def _exit_codes(raw, path):
    known_fields(raw, {"containerName", "operator", "values"}, path)
    operator = raw.get("operator")
    if operator not in OPERATORS:
        raise SpecError(f"{path}.operator", f"Unsupported value: {operator!r}: supported values: {', '.join(OPERATORS)}")
    container = raw.get("containerName")
    if container is not None and not isinstance(container, str):
        raise SpecError(f"{path}.containerName", "must be a string")
    values = raw.get("values")
    if not isinstance(values, list) or not values:
        raise SpecError(f"{path}.values", "must be a non-empty list of exit codes")
    if len(values) > 255:
        raise SpecError(f"{path}.values", "must have at most 255 elements")
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
            raise SpecError(f"{path}.values[{i}]", f"must be an exit code between 0 and 255, got {value!r}")
        if value == 0 and operator == "In":
            raise SpecError(f"{path}.values[{i}]", "must not be 0 for the In operator (a pod that exits 0 has not failed)")
    if len(set(values)) != len(values):
        raise SpecError(f"{path}.values", "must not contain duplicates")
    return {"containerName": container, "operator": operator, "values": sorted(values)}


def _pod_failure_policy(raw, path, restart_policy, per_index, container_names):
    if raw is None:
        return None
    known_fields(raw, {"rules"}, path)
    rules = raw.get("rules")
    if not isinstance(rules, list):
        raise SpecError(f"{path}.rules", "must be a list")
    if len(rules) > 20:
        raise SpecError(f"{path}.rules", f"must have at most 20 rules, got {len(rules)}")
    if restart_policy != "Never":
        raise SpecError(path, f"only with spec.template.spec.restartPolicy Never, got {restart_policy!r}")
    result = []
    for i, rule in enumerate(rules):
        rpath = f"{path}.rules[{i}]"
        known_fields(rule, {"action", "onExitCodes", "onPodConditions"}, rpath)
        action = rule.get("action")
        if action not in ACTIONS:
            raise SpecError(f"{rpath}.action", f"Unsupported value: {action!r}: supported values: {', '.join(ACTIONS)}")
        if action == "FailIndex" and not per_index:
            raise SpecError(f"{rpath}.action", "FailIndex requires spec.backoffLimitPerIndex")
        codes, conditions = rule.get("onExitCodes"), rule.get("onPodConditions")
        if (codes is None) == (conditions is None):
            raise SpecError(rpath, "specify exactly one of onExitCodes and onPodConditions")
        entry = {"action": action}
        if codes is not None:
            entry["onExitCodes"] = _exit_codes(codes, f"{rpath}.onExitCodes")
            wanted = entry["onExitCodes"]["containerName"]
            if wanted is not None and wanted not in container_names:
                raise SpecError(f"{rpath}.onExitCodes.containerName", f"{wanted!r} is not a container of the template ({', '.join(sorted(container_names))})")
        else:
            if not isinstance(conditions, list) or not conditions:
                raise SpecError(f"{rpath}.onPodConditions", "must be a non-empty list")
            parsed = []
            for j, condition in enumerate(conditions):
                cpath = f"{rpath}.onPodConditions[{j}]"
                known_fields(condition, {"type", "status"}, cpath)
                if not isinstance(condition.get("type"), str) or not condition["type"]:
                    raise SpecError(f"{cpath}.type", "is required")
                status = condition.get("status", "True")
                if status not in CONDITION_STATUSES:
                    raise SpecError(f"{cpath}.status", f"Unsupported value: {status!r}: supported values: {', '.join(CONDITION_STATUSES)}")
                parsed.append({"type": condition["type"], "status": status})
            entry["onPodConditions"] = parsed
        result.append(entry)
    return {"rules": result}


def _success_policy(raw, path, indexed, completions):
    if raw is None:
        return None
    if not indexed:
        raise SpecError(path, "requires spec.completionMode Indexed")
    known_fields(raw, {"rules"}, path)
    rules = raw.get("rules")
    if not isinstance(rules, list) or not rules:
        raise SpecError(f"{path}.rules", "must be a non-empty list")
    if len(rules) > 20:
        raise SpecError(f"{path}.rules", f"must have at most 20 rules, got {len(rules)}")
    result = []
    for i, rule in enumerate(rules):
        rpath = f"{path}.rules[{i}]"
        known_fields(rule, {"succeededIndexes", "succeededCount"}, rpath)
        if rule.get("succeededIndexes") is None and rule.get("succeededCount") is None:
            raise SpecError(rpath, "specify succeededIndexes, succeededCount or both")
        entry = {"succeededIndexes": None, "succeededCount": None}
        if rule.get("succeededIndexes") is not None:
            try:
                entry["succeededIndexes"] = tracking.parse_indexes(rule["succeededIndexes"], completions)
            except ValueError as exc:
                raise SpecError(f"{rpath}.succeededIndexes", str(exc)) from None
        if rule.get("succeededCount") is not None:
            count = integer_field(rule, "succeededCount", rpath, None, minimum=1)
            limit = len(entry["succeededIndexes"]) if entry["succeededIndexes"] is not None else completions
            if count > limit:
                raise SpecError(f"{rpath}.succeededCount", f"must be at most {limit} (the number of indexes it counts), got {count}")
            entry["succeededCount"] = count
        result.append(entry)
    return {"rules": result}


def parse_job_spec(name: str, spec: dict, path: str = "spec") -> JobSpec:
    """Validate a Job spec and fill in Kubernetes' defaults."""
    name = validate_job_name(name)
    spec = spec_mapping(spec, FIELDS, path)
    template = parse_pod_template(spec.get("template"), f"{path}.template", ("OnFailure", "Never"))
    restart_policy = template.normal["spec"]["restartPolicy"]
    completions = integer_field(spec, "completions", path, None)
    parallelism = integer_field(spec, "parallelism", path, None)
    if completions is None and parallelism is None:
        completions = 1
    parallelism = 1 if parallelism is None else parallelism
    mode = spec.get("completionMode") or tracking.NON_INDEXED
    if mode not in (tracking.NON_INDEXED, tracking.INDEXED):
        raise SpecError(f"{path}.completionMode", f"Unsupported value: {mode!r}: supported values: NonIndexed, Indexed")
    indexed = mode == tracking.INDEXED
    if indexed:
        if completions is None:
            raise SpecError(f"{path}.completions", "is required when completionMode is Indexed")
        if completions > MAX_INDEXED_COMPLETIONS:
            raise SpecError(f"{path}.completions", f"must be at most {MAX_INDEXED_COMPLETIONS} when completionMode is Indexed")
        if parallelism > MAX_INDEXED_COMPLETIONS:
            raise SpecError(f"{path}.parallelism", f"must be at most {MAX_INDEXED_COMPLETIONS} when completionMode is Indexed")
    per_index = integer_field(spec, "backoffLimitPerIndex", path, None)
    if per_index is not None:
        if not indexed:
            raise SpecError(f"{path}.backoffLimitPerIndex", "requires completionMode Indexed")
        if restart_policy != "Never":
            raise SpecError(f"{path}.backoffLimitPerIndex", f"requires spec.template.spec.restartPolicy Never, got {restart_policy!r}")
    max_failed = integer_field(spec, "maxFailedIndexes", path, None)
    if max_failed is not None:
        if per_index is None:
            raise SpecError(f"{path}.maxFailedIndexes", "requires backoffLimitPerIndex")
        if max_failed > completions:
            raise SpecError(f"{path}.maxFailedIndexes", f"must be at most completions ({completions}), got {max_failed}")
    containers = {c["name"] for c in template.normal["spec"]["containers"]}
    normal = {
        "completions": completions,
        "parallelism": parallelism,
        "completionMode": mode,
        "backoffLimit": integer_field(spec, "backoffLimit", path, tracking.MAX_INT32 if per_index is not None else tracking.DEFAULT_BACKOFF_LIMIT),
        "backoffLimitPerIndex": per_index,
        "maxFailedIndexes": max_failed,
        "podFailurePolicy": _pod_failure_policy(spec.get("podFailurePolicy"), f"{path}.podFailurePolicy", restart_policy, per_index is not None, containers),
        "successPolicy": _success_policy(spec.get("successPolicy"), f"{path}.successPolicy", indexed, completions),
        "activeDeadlineSeconds": integer_field(spec, "activeDeadlineSeconds", path, None, minimum=1),
        "ttlSecondsAfterFinished": integer_field(spec, "ttlSecondsAfterFinished", path, None),
        "suspend": bool_field(spec, "suspend", path),
        "template": template.template,
    }
    return JobSpec(name=name, template=template, normal=normal)


def changed_immutable_fields(stored: dict | None, spec: JobSpec) -> list[str]:
    """The immutable fields whose stored value (``record["immutable"]``) differs from ``spec``'s."""
    if not stored:
        return []
    wanted = spec.immutable_fields()
    return [f"spec.{key}" for key in IMMUTABLE if canonical_json(stored.get(key)) != canonical_json(wanted.get(key))]
