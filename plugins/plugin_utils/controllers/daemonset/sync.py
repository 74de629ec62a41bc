# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One step of a DaemonSet: one pod per eligible node, rolled out within maxUnavailable / maxSurge.

The story of a step (``reconcile_daemonset``):

1. observe: classify the pods (pods on NotReady nodes are lost: kept, not
   counted as available, not acted upon); a node is eligible when it matches the
   template's ``nodeSelector`` and required node affinity, ready or not;
2. the revision: a new template gets the next revision number and starts a
   rollout (``Progressing`` / ``NewRevisionCreated``);
3. act (``update.py``): misscheduled pods go, missing pods start, then the
   RollingUpdate replaces old pods within the budgets (OnDelete: never);
4. progress: more nodes updated / ready / available, or fewer old pods, is
   progress; none for ``progressDeadlineSeconds`` (extension) reports
   ``Progressing=False / ProgressDeadlineExceeded`` naming the nodes that hold
   the rollout, and ends the loop (``finished``) with ``failed``;
5. history beyond ``revisionHistoryLimit`` is dropped (revisions with pods stay).

The loop also ends (``finished`` without ``complete``) when nothing can change
by itself: no action, no pod on a ready node to wait for, only NotReady nodes
or pods that fit nowhere left (``waiting_for`` says which).

The record: ``record.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common import conditions
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.record import DaemonSetRecord
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.spec import DaemonSetSpec, with_daemon_tolerations
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.daemonset.update import DaemonPlan, manage, rolling_update
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod, PodView, classify, is_available, is_ready
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.records import begin_step
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.revisions import cleanup_history, max_revision, new_entry
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.step import Planner, Step, observation
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.templates import TemplateInfo, try_parse_stored
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node, NodeUsage

REVISION_CREATED = "NewRevisionCreated"
FOUND_REVISION = "FoundNewRevision"
UPDATED = "DaemonSetUpdated"
REVISION_AVAILABLE = "NewRevisionAvailable"
STATUS_KEYS = (
    "desiredNumberScheduled",
    "currentNumberScheduled",
    "numberReady",
    "updatedNumberScheduled",
    "numberAvailable",
    "numberUnavailable",
    "numberMisscheduled",
    "observedGeneration",
    "conditions",
)


def count(view: PodView, nodes: list[Node], eligible: set[str], current: str, min_ready_seconds: int, now: float) -> dict:
    """The observation per node (Kubernetes' DaemonSet status counts nodes, not pods)."""
    by_node: dict[str, list[ObservedPod]] = {}
    for pod in view.active + view.lost:
        by_node.setdefault(pod.node, []).append(pod)
    known = {n.name for n in nodes}
    active = {p.name for p in view.active}

    def nodes_with(test) -> int:
        return sum(1 for n in eligible if any(test(p) for p in by_node.get(n, ())))

    return {
        "desired": len(eligible),
        "scheduled": nodes_with(lambda p: True),
        "ready": nodes_with(lambda p: p.name in active and is_ready(p)),
        "available": nodes_with(lambda p: p.name in active and is_available(p, min_ready_seconds, now)),
        "updated": nodes_with(lambda p: p.revision == current),
        "updated_ready": nodes_with(lambda p: p.name in active and p.revision == current and is_ready(p)),
        "updated_available": nodes_with(lambda p: p.name in active and p.revision == current and is_available(p, min_ready_seconds, now)),
        "misscheduled": sum(1 for n in by_node if n in known and n not in eligible),
        "old": sum(1 for p in view.active + view.lost if p.revision != current),
        "pods": len(view.active) + len(view.lost),
        "lost": len(view.lost),
    }


def is_complete(observed: dict, rolling: bool) -> bool:
    """Every eligible node runs exactly one available pod (of the current revision, unless OnDelete), none elsewhere."""
    desired = observed["desired"]
    settled = observed["pods"] == desired and observed["misscheduled"] == 0 and observed["lost"] == 0
    if rolling:
        return settled and observed["updated_available"] == desired
    return settled and observed["available"] == desired


def _progressed(previous: dict | None, observed: dict) -> bool:
    """The Deployment's notion, plus more available nodes (OnDelete, or a node that came back)."""
    return conditions.has_progressed(previous, observed) or observed["available"] > (previous or {}).get("available", observed["available"])


def _stuck_nodes(plan: DaemonPlan, view: PodView, rolling: bool) -> list[str]:
    """Eligible nodes without an available pod (of the current revision when rolling), NotReady ones marked."""
    good = {p.node for p in view.active if plan.available(p) and (p.revision == plan.current or not rolling)}
    return [n if plan.nodes[n].ready else f"{n} (NotReady)" for n in sorted(plan.eligible) if n not in good]


def sync_progress(rec: dict, spec: DaemonSetSpec, observed: dict, stuck: list[str], now: float, new_generation: bool) -> str:
    """Update Progressing from this observation; return the verdict (conditions.COMPLETE, IN_PROGRESS, FAILED, NEWLY_FAILED)."""
    current = rec["conditions"]
    reason = conditions.progressing_reason(rec)
    if is_complete(observed, spec.rolling):
        conditions.set_condition(current, conditions.PROGRESSING, "True", REVISION_AVAILABLE, f'DaemonSet "{spec.name}" has successfully progressed.', now)
        return conditions.COMPLETE
    if rec["last_progress"] is None:
        rec["last_progress"] = now
    if reason in (REVISION_CREATED, FOUND_REVISION) and rec["rollout_started"] == now:
        return conditions.IN_PROGRESS
    if _progressed(rec["observed"], observed) or (new_generation and reason == conditions.TIMED_OUT) or reason in (REVISION_AVAILABLE, None):
        conditions.set_condition(current, conditions.PROGRESSING, "True", UPDATED, f'DaemonSet "{spec.name}" is progressing.', now)
        rec["last_progress"] = now
        return conditions.IN_PROGRESS
    if reason == conditions.TIMED_OUT:
        return conditions.FAILED
    if now > rec["last_progress"] + spec.progress_deadline_seconds:
        message = f'DaemonSet "{spec.name}" has timed out progressing: no available pod of the current revision on node(s) {", ".join(stuck)}.'
        conditions.set_condition(current, conditions.PROGRESSING, "False", conditions.TIMED_OUT, message, now)
        return conditions.NEWLY_FAILED
    return conditions.IN_PROGRESS


def _start_rollout(rec: dict, spec: DaemonSetSpec, now: float) -> None:
    """The template becomes the current revision, numbered above every other (a template that comes back too)."""
    current = spec.template_hash
    history = rec["revisions"]
    found = current in history
    number = max_revision({h: e for h, e in history.items() if h != current}) + 1
    if found:
        history[current]["revision"] = max(int(history[current]["revision"]), number)
    else:
        history[current] = new_entry(number, spec.template.template, now)
    rec["current_hash"] = current
    rec["rollout_started"] = now
    rec["last_progress"] = now
    reason, verb = (FOUND_REVISION, "Found") if found else (REVISION_CREATED, "Created")
    message = f'{verb} revision {history[current]["revision"]} of DaemonSet "{spec.name}"'
    conditions.set_condition(rec["conditions"], conditions.PROGRESSING, "True", reason, message, now)


def reconcile_daemonset(
    spec: DaemonSetSpec,
    record: dict | None,
    nodes: Iterable[Node | dict],
    pods: Iterable[ObservedPod | dict],
    other_usage: Mapping[str, NodeUsage | dict] | None = None,
    now: float = 0.0,
) -> Step:
    """Plan the next step of a DaemonSet. Pure, level-triggered, deterministic."""
    # 1. observe
    nodes, pods, usage = observation(nodes, pods, other_usage)
    stored, new_generation = begin_step(DaemonSetRecord, record, spec)
    rec = stored.data
    view = classify(pods, nodes)
    eligible = {n.name for n in nodes if spec.eligible(n)}
    surge, unavailable = spec.budgets(len(eligible))

    # 2. the revision
    if rec["current_hash"] != spec.template_hash or spec.template_hash not in rec["revisions"]:
        _start_rollout(rec, spec, now)
    current = spec.template_hash
    history = rec["revisions"]
    infos: dict[str, TemplateInfo | None] = {h: try_parse_stored(e.get("template")) for h, e in history.items() if h != current}
    infos = {h: with_daemon_tolerations(info) if info is not None else None for h, info in infos.items()}
    infos[current] = spec.template

    # 3. act
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
    continuing = {n.name for n in nodes if n.name not in eligible and spec.continues(n)}
    plan = DaemonPlan(planner, spec.name, current, {n.name: n for n in nodes}, eligible, continuing=continuing)
    planner.remove_finished()
    manage(plan, surge > 0)
    if spec.rolling:
        rolling_update(plan, surge, unavailable)

    # 4. progress
    observed = count(view, nodes, eligible, current, spec.min_ready_seconds, now)
    pending = planner.merged_pending()
    verdict = sync_progress(rec, spec, observed, _stuck_nodes(plan, view, spec.rolling), now, new_generation)
    conditions.sync_replica_failure(rec, [p.reason for p in pending], now)

    # 5. history, record
    for key, counter in planner.counters.items():
        if key in history:
            history[key]["next_pod"] = counter
    started = {s.revision for s in planner.starts}
    rec["revisions"] = cleanup_history(history, spec.revision_history_limit, current, {current}, view.revisions() | started)
    stored.note_observed(observed)

    actions = planner.actions()
    numbers = {h: int(e.get("revision") or 0) for h, e in rec["revisions"].items()}
    waiting_on_ready = bool(planner.starts) or any(not plan.available(p) for p in planner.staying() if p.node in eligible)
    done = verdict == conditions.COMPLETE and not actions and not pending
    timed_out = conditions.progressing_reason(rec) == conditions.TIMED_OUT
    blocked = not done and not actions and not waiting_on_ready
    waiting = [] if done else _waiting(plan, view, spec, pending, numbers)
    return Step(
        actions=actions,
        templates={h: info.pod_template(h) for h in sorted(started) if (info := infos[h]) is not None},  # (all: only those start)
        pending=pending,
        lost=tuple(p.name for p in view.lost),
        record=rec,
        status=render_status(rec, observed),
        done=done,
        finished=done or timed_out or blocked,
        complete=done,
        failed=timed_out,
        message=_summary(rec, spec, observed, done, timed_out, blocked, numbers),
        description=planner.describe(numbers),
        waiting_for=tuple(waiting),
    )


def render_status(rec: dict, observed: dict) -> dict:
    return {
        "desiredNumberScheduled": observed["desired"],
        "currentNumberScheduled": observed["scheduled"],
        "numberReady": observed["ready"],
        "updatedNumberScheduled": observed["updated"],
        "numberAvailable": observed["available"],
        "numberUnavailable": max(0, observed["desired"] - observed["available"]),
        "numberMisscheduled": observed["misscheduled"],
        "observedGeneration": rec["observed_generation"],
        "conditions": conditions.render_conditions(rec["conditions"]),
    }


def _summary(rec: dict, spec: DaemonSetSpec, observed: dict, done: bool, timed_out: bool, blocked: bool, numbers: dict[str, int]) -> str:
    revision = numbers.get(rec["current_hash"])
    if timed_out:
        condition = conditions.get_condition(rec["conditions"], conditions.PROGRESSING)
        return condition["message"] if condition else "progress deadline exceeded"
    if done:
        return f"revision {revision} runs on all {observed['desired']} eligible node(s), available"
    counts = f"{observed['updated_available']}/{observed['desired']} node(s) updated and available"
    if blocked:
        return f"revision {revision}: {counts}; nothing more can be done now (see waiting_for)"
    return f"rolling out revision {revision}: {counts}" if spec.rolling else f"revision {revision} (OnDelete): {counts}"


def _waiting(plan: DaemonPlan, view: PodView, spec: DaemonSetSpec, pending, numbers: dict[str, int]) -> list[str]:
    lines = []
    not_available = [p.name for p in plan.planner.staying() if p.node in plan.eligible and not plan.available(p)]
    if not_available:
        lines.append(f"{len(not_available)} pod(s) to become available: {', '.join(not_available)}")
    started = [f"{s.name} on {s.node}" for s in plan.planner.starts]
    if started:
        lines.append(f"{len(started)} pod(s) starting: {', '.join(started)}")
    if plan.deferred:
        lines.append(f"node(s) {', '.join(sorted(plan.deferred))}: the new pod starts once the old one has stopped")
    old = sorted({p.node for p in plan.planner.staying() if p.revision != plan.current})
    if old and spec.rolling:
        lines.append(f"pods of older revisions still run on node(s) {', '.join(old)}")
    lines += [f"{p.count} pod(s) of revision {numbers.get(p.revision, p.revision)} cannot be placed: {p.reason}" for p in pending]
    down = sorted({p.node for p in view.lost} | {n for n in plan.eligible if not plan.nodes[n].ready})
    if down:
        lines.append(f"node(s) {', '.join(down)} are NotReady (or unknown): their pods are kept and counted unavailable until they return")
    return lines
