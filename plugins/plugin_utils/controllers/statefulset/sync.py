# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One reconcile step of a StatefulSet: desired spec + record + observation → Step.

The story (Kubernetes' StatefulSet controller, on pinned identities):

1. note a new generation when the spec changed; the user's template is the
   update revision (a template seen before, e.g. a revert, gets a new number);
2. find each identity: its one live pod, its pinned node, whether it is
   fenced on a NotReady node (``fencing.py``); stop strays and duplicates;
3. walk the ordinals (``ordered.py``): create missing identities on their
   node, remove dead pods, replace stuck pods of a reverted revision; under
   OrderedReady halt at the first identity not Running+Ready;
4. unless halted: condemn identities beyond the ordinals, highest first
   (``ordered.py``), then roll the update revision out (``update.py``);
5. retention: claims of identities seen gone beyond the ordinals are
   deleted under ``whenScaled: Delete`` (``retention.py``), pins otherwise kept;
6. the record (pins, running, revisions), the status and the verdict.

Every pod start has ``template_key`` = the pod name: ``Step.templates`` holds
one template per identity (``identity.pod_template``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common import conditions
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod, classify, is_available, is_ready
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.records import begin_step
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.revisions import cleanup_history, max_revision, new_entry
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset import fencing, ordered, update
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.identity import pod_template, revision_name
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.record import StatefulSetRecord, pins, store_pins
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.retention import claim_templates, scaled_claims
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.spec import StatefulSetSpec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.step import Planner, PodStop, Step, observation
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.templates import TemplateInfo, try_parse_stored
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node, NodeUsage


def reconcile_statefulset(
    spec: StatefulSetSpec,
    record: dict | None,
    nodes: Iterable[Node | dict],
    pods: Iterable[ObservedPod | dict],
    other_usage: Mapping[str, NodeUsage | dict] | None = None,
    now: float = 0.0,
) -> Step:
    """Plan the next step of ``spec`` (see the module docstring). Pure: no I/O, inputs untouched."""
    nodes, pods, usage = observation(nodes, pods, other_usage)
    # 1. generation (selector, minReadySeconds) and revisions
    stored, _new_generation = begin_step(StatefulSetRecord, record, spec)
    rec = stored.data
    view = classify(pods, nodes)
    ready_nodes = {n.name for n in nodes if n.ready}
    # What observers (workload_info) count against, as kubectl does.
    rec["replicas"] = spec.replicas
    target = spec.template_hash
    _sync_revisions(rec, spec, now)
    current = rec["stable_revision"] or target
    infos: dict[str, TemplateInfo | None] = {h: try_parse_stored(e.get("template")) for h, e in rec["revisions"].items() if h != target}
    infos[target] = spec.template
    claims = claim_templates(rec, spec)
    rec["claim_templates"] = claims
    numbers = {h: int(e.get("revision") or 0) for h, e in rec["revisions"].items()}

    # 2. identities, strays and duplicates
    idents = fencing.observe(spec.name, view, ready_nodes, pins(rec), rec["running"], spec.min_ready_seconds, now)
    planner = Planner(
        owner=spec.name,
        view=view,
        nodes=nodes,
        other_usage=usage,
        templates=infos,
        counters={},
        fallback_labels=dict(spec.selector.match_labels),
        min_ready_seconds=spec.min_ready_seconds,
        now=now,
        revision_order=numbers,
    )
    planner.stop(idents.strays, "not one of the StatefulSet's identities")
    for ident in idents.by_ordinal.values():
        # Same name as the kept pod: recorded directly (the Planner tracks stops by name).
        planner.stops += [PodStop(p.name, p.node, p.revision, f"duplicate of {ident.name} (kept on {ident.pin})") for p in ident.duplicates]
    new_pins = {o: i.pin for o, i in idents.by_ordinal.items() if i.pin is not None}
    templates: dict[str, dict] = {}

    def start_pod(ident: fencing.Identity, revision: str, node: str | None) -> None:
        placed = planner.start_named(revision, ident.name, node, template_key=ident.name)
        info = infos[revision]
        if placed is not None and info is not None:  # (info always is when placed: start_named starts only those)
            new_pins[ident.ordinal] = placed
            templates[ident.name] = pod_template(info, revision, spec.name, ident.ordinal, claims, spec.service_name)

    # 3-4. ordinals, condemned, update
    halted, waiting = ordered.sync_replicas(spec, planner, idents, ready_nodes, current, target, start_pod)
    if not halted:
        scaling_down = ordered.sync_condemned(spec, planner, idents)
        waiting += scaling_down
        if not (spec.ordered and scaling_down):
            waiting += update.rolling_update(spec, planner, idents, target)

    # 5. retention
    wanted = set(spec.ordinals)
    gone = {o: i.pin for o, i in idents.by_ordinal.items() if o not in wanted and i.pod is None and not i.unknown and i.pin is not None}
    to_delete = scaled_claims(spec, rec, gone, ready_nodes)
    for ordinal, node in gone.items():
        if node in to_delete or not claims:
            new_pins.pop(ordinal, None)  # nothing of the identity is left there
    for ident in ordered.condemned(spec, idents):
        if ident.unknown:
            waiting.append(f"{ident.name} is beyond the replicas but its node {ident.pin} is not ready: its claims are not deleted yet")

    # 6. record, status, verdict
    started = {s.name for s in planner.starts}
    stopped = {(s.name, s.node) for s in planner.stops}
    store_pins(rec, new_pins)
    rec["running"] = sorted(o for o, i in idents.by_ordinal.items() if i.pod is not None or i.unknown or i.name in started)
    in_range = [idents.get(o, spec.name) for o in spec.ordinals]

    def settled(ident: fencing.Identity) -> bool:
        pod = ident.pod
        if pod is None or ident.finished or (pod.name, pod.node) in stopped or not is_available(pod, spec.min_ready_seconds, now):
            return False
        return not (spec.rolling and ident.ordinal >= spec.partition and pod.revision != target)

    if all(i.pod is not None and i.pod.revision == target and settled(i) for i in in_range):
        rec["stable_revision"] = target
    current = rec["stable_revision"] or target
    live = [i.pod for i in idents.by_ordinal.values() if i.pod is not None and not i.finished]
    observed = {
        "replicas": len(live),
        "ready": sum(1 for p in live if is_ready(p)),
        "available": sum(1 for p in live if is_available(p, spec.min_ready_seconds, now)),
        "current": sum(1 for p in live if p.revision == current),
        "updated": sum(1 for p in live if p.revision == target),
        "lost": sum(1 for i in idents.by_ordinal.values() if i.unknown),
    }
    if rec["observed"] != observed:
        rec["last_progress"] = now
    stored.note_observed(observed)
    pending = planner.merged_pending()
    conditions.sync_replica_failure(rec, [p.reason for p in pending], now)
    if observed["available"] >= spec.replicas:
        available = ("True", conditions.MIN_AVAILABLE, "StatefulSet has all its replicas available.")
    else:
        available = ("False", conditions.MIN_UNAVAILABLE, "StatefulSet does not have all its replicas available.")
    conditions.set_condition(rec["conditions"], conditions.AVAILABLE, *available, now)
    started_revisions = {s.revision for s in planner.starts}
    rec["revisions"] = cleanup_history(
        rec["revisions"], spec.revision_history_limit, target, {current}, {p.revision for p in view.active + view.lost} | started_revisions
    )

    actions = planner.actions()
    no_extra = not ordered.condemned(spec, idents) and not idents.strays and not any(i.duplicates for i in idents.by_ordinal.values())
    done = not actions and not pending and not to_delete and no_extra and all(settled(i) for i in in_range)
    transitioning = any(i.pod is not None and not settled(i) for i in in_range)
    finished = done or (not actions and not to_delete and bool(pending) and not transitioning)
    if done:
        waiting = []
    else:
        waiting += [f"pending: {p.reason}" for p in pending if p.reason not in waiting]
    numbers = {h: int(e.get("revision") or 0) for h, e in rec["revisions"].items()}
    description = planner.describe(numbers) + tuple(
        f"delete volume {claim} on {node} (persistentVolumeClaimRetentionPolicy.whenScaled: Delete)" for node, names in to_delete.items() for claim in names
    )
    lost = sorted({p.name for p in view.lost} | {i.name for i in idents.by_ordinal.values() if i.unknown})
    return Step(
        actions=actions,
        templates={name: templates[name] for name in sorted(templates)},
        pending=pending,
        lost=tuple(lost),
        record=rec,
        status={
            "observedGeneration": rec["observed_generation"],
            "replicas": observed["replicas"],
            "readyReplicas": observed["ready"],
            "currentReplicas": observed["current"],
            "updatedReplicas": observed["updated"],
            "availableReplicas": observed["available"],
            "currentRevision": revision_name(spec.name, current),
            "updateRevision": revision_name(spec.name, target),
            "collisionCount": 0,
            "lostReplicas": observed["lost"],
            "conditions": conditions.render_conditions(rec["conditions"]),
        },
        done=done,
        finished=finished,
        complete=done,
        message=f"{spec.replicas} replica(s) updated and available" if done else f"{observed['available']}/{spec.replicas} replica(s) available",
        description=description,
        waiting_for=tuple(dict.fromkeys(waiting)),
        volumes_to_delete=to_delete,
    )


def _sync_revisions(rec: dict, spec: StatefulSetSpec, now: float) -> None:
    """The user's template is the update revision; a new one (or one that comes back) is numbered above every other."""
    target = spec.template_hash
    history = rec["revisions"]
    rec["template_hash"] = target
    if rec["update_revision"] == target and target in history:
        return
    number = max_revision({h: e for h, e in history.items() if h != target}) + 1
    if target in history:
        history[target]["revision"] = max(int(history[target].get("revision") or 0), number)
    else:
        history[target] = new_entry(number, spec.template.template, now)
    rec["update_revision"] = target
    rec["rollout_started"] = now
    if rec["stable_revision"] is None:
        rec["stable_revision"] = target
