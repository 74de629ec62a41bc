# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bare ReplicaSet: keep exactly ``replicas`` pods of its template, placed by the scheduler.

As in Kubernetes, a ReplicaSet has no strategy: every pod it owns counts,
whatever template it was started from, and a template change only affects
the pods started afterwards (use a Deployment to roll a change out). Lost
pods (NotReady nodes) are replaced at once; dead pods (Succeeded/Failed) are
removed and replaced; surplus pods go in the scheduler's victim order
(unhealthy, older template, most crowded node, youngest).

The record (JSON), schema 2 (schema 1 called ``min_ready_seconds`` ``minReadySeconds``)::

    {"schema": 2, "kind": "ReplicaSet", "name": "web", "generation": 2, "observed_generation": 2,
     "spec_hash": "...", "selector": {...}, "template_hash": "...", "replicas": 3, "min_ready_seconds": 0,
     "revisions": {hash: {"revision": 1, "template": {...}, "created": t, "next_pod": 4}},
     "observed": {...}, "conditions": [...]}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common import conditions, counts
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common.fields import integer_field
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common.preamble import parse_preamble, parse_replicas
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod, classify, is_available, is_ready
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.records import Record, begin_step
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.revisions import max_revision, new_entry, template_hash
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.step import Planner, Step, observation
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.templates import TemplateInfo, try_parse_stored
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.labels import LabelSelector
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node, NodeUsage

KIND = "ReplicaSet"
FIELDS = {"replicas", "selector", "template", "minReadySeconds"}


@dataclass(frozen=True)
class ReplicaSetSpec:
    name: str
    replicas: int
    selector: LabelSelector
    template: TemplateInfo
    min_ready_seconds: int = 0

    @property
    def template_hash(self) -> str:
        return self.template.hash

    def to_json(self) -> dict:
        return {"replicas": self.replicas, "selector": self.selector.to_json(), "template": self.template.normal, "minReadySeconds": self.min_ready_seconds}

    def spec_hash(self) -> str:
        return template_hash(self.to_json())


def parse_replicaset_spec(name: str, spec: dict, stored_selector: dict | None = None, path: str = "spec") -> ReplicaSetSpec:
    # replicas after the template: the order this kind always reported errors in.
    head = parse_preamble(name, spec, FIELDS, stored_selector, path, replicas=False)
    return ReplicaSetSpec(head.name, parse_replicas(spec, path), head.selector, head.template, integer_field(spec, "minReadySeconds", path, 0))


def _min_ready_seconds_renamed(record: dict) -> None:
    if "minReadySeconds" in record:
        record["min_ready_seconds"] = record.pop("minReadySeconds")


class ReplicaSetRecord(Record):
    KIND = KIND
    SCHEMA = 2
    MIGRATIONS = {1: _min_ready_seconds_renamed}
    # Every pod counts whatever its template: the one that runs is the template pods start from now.
    CURRENT_KEY = "template_hash"
    FIELDS = {"replicas": None, "template_hash": None, "observed": None}

    @property
    def replicas(self) -> int | None:
        value = self.data.get("replicas")
        return None if value is None else int(value)


def reconcile_replicaset(
    spec: ReplicaSetSpec,
    record: dict | None,
    nodes: Iterable[Node | dict],
    pods: Iterable[ObservedPod | dict],
    other_usage: Mapping[str, NodeUsage | dict] | None = None,
    now: float = 0.0,
    record_type: type[ReplicaSetRecord] = ReplicaSetRecord,
) -> Step:
    """Plan the next step of a bare ReplicaSet. Pure, level-triggered, deterministic.

    ``record_type``: the kind whose record this is (a ReplicationController is a ReplicaSet with a record of its own).
    """
    nodes, pods, usage = observation(nodes, pods, other_usage)
    stored, _new_generation = begin_step(record_type, record, spec)
    rec = stored.data
    view = classify(pods, nodes)
    # What observers (workload_info) count against, as kubectl does.
    rec["replicas"] = spec.replicas
    current = spec.template_hash
    rec["template_hash"] = current
    history = rec["revisions"]
    if current not in history:
        history[current] = new_entry(max_revision(history) + 1, spec.template.template, now)
    infos: dict[str, TemplateInfo | None] = {h: try_parse_stored(e.get("template")) for h, e in history.items() if h != current}
    infos[current] = spec.template
    planner = Planner(
        owner=spec.name,
        view=view,
        nodes=nodes,
        other_usage=usage,
        templates=infos,
        counters={h: int(e.get("next_pod") or 0) for h, e in history.items()},
        fallback_labels=dict(spec.selector.match_labels),
        min_ready_seconds=spec.min_ready_seconds,
        now=now,
        revision_order={h: int(e.get("revision") or 0) for h, e in history.items()},
    )
    planner.remove_finished()
    size = planner.size()
    if size < spec.replicas:
        planner.start(current, spec.replicas - size)
    elif size > spec.replicas:
        planner.scale_down(planner.staying(), size - spec.replicas, "more pods than replicas")

    pending = planner.merged_pending()
    conditions.sync_replica_failure(rec, [p.reason for p in pending], now)
    for key, counter in planner.counters.items():
        if key in history:
            history[key]["next_pod"] = counter
    keep = view.revisions() | {current}
    rec["revisions"] = {h: e for h, e in history.items() if h in keep}
    observed = counts.count(view, current, spec.min_ready_seconds, now)
    stored.note_observed(observed)
    actions = planner.actions()
    available = sum(1 for p in view.active if is_available(p, spec.min_ready_seconds, now))
    done = not actions and not pending and len(view.active) == spec.replicas and available == spec.replicas
    numbers = {h: int(e.get("revision") or 0) for h, e in rec["revisions"].items()}
    started = sorted({s.revision for s in planner.starts})
    waiting = []
    not_available = [p.name for p in planner.staying() if not is_available(p, spec.min_ready_seconds, now)]
    if not done:
        if not_available:
            waiting.append(f"{len(not_available)} pod(s) to become available: {', '.join(not_available)}")
        waiting += [f"{p.count} pod(s) cannot be placed: {p.reason}" for p in pending]
    return Step(
        actions=actions,
        templates={h: info.pod_template(h) for h in started if (info := infos[h]) is not None},  # (all: only those start)
        pending=pending,
        lost=tuple(p.name for p in view.lost),
        record=rec,
        status={
            "observedGeneration": rec["observed_generation"],
            "replicas": len(view.active),
            "fullyLabeledReplicas": len(view.active),
            "readyReplicas": sum(1 for p in view.active if is_ready(p)),
            "availableReplicas": available,
            "lostReplicas": len(view.lost),
            "conditions": conditions.render_conditions(rec["conditions"]),
        },
        done=done,
        # Nothing left to wait for but room on some node: stop (ReplicaFailure tells why).
        finished=done or (not actions and bool(pending) and not not_available),
        complete=done,
        message=f"{spec.replicas} replica(s) available" if done else f"{available}/{spec.replicas} replica(s) available",
        description=planner.describe(numbers),
        waiting_for=tuple(waiting),
    )
