# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One reconcile step of a Deployment: desired spec + record + observation → Step.

The story (Kubernetes' syncDeployment, on pods instead of ReplicaSets):

1. note a new generation when the spec changed;
2. decide the revision that should run: the user's template, unless an undo
   or an automatic rollback put an earlier one in its place; paused
   Deployments keep the revision they run;
3. a different revision than last time → a new rollout starts;
4. count the observation and judge progress (complete, progressing, or past
   the deadline: then roll back if asked, else hold the rollout where it is);
5. act: remove dead pods; then, paused → only scale; failed rollout → hold
   every revision at its count; scaling event mid-rollout → proportional
   scaling; otherwise Recreate or RollingUpdate;
6. clean up the history, and write the status and the record.

Level-triggered and pure: call it again with a fresh observation at any
moment; the same inputs give the same Step (names included).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common import conditions, counts
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment import progress, recreate, rolling, scaling, status_report
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.record import DeploymentRecord, revision_numbers
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.rollback import (
    ROLLED_BACK,
    drop_stale_override,
    effective_target,
    mark_rolled_back,
    rollback_target,
)
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.spec import DeploymentSpec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod, PodView, classify, is_available
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.records import begin_step
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.revisions import cleanup_history, max_revision, new_entry
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.step import Planner, Step, observation
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.templates import TemplateInfo, try_parse_stored
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node, NodeUsage


def reconcile(
    spec: DeploymentSpec,
    record: dict | None,
    nodes: Iterable[Node | dict],
    pods: Iterable[ObservedPod | dict],
    other_usage: Mapping[str, NodeUsage | dict] | None = None,
    now: float = 0.0,
) -> Step:
    """Plan the next step of ``spec`` (see the module docstring). Pure: no I/O, inputs untouched."""
    nodes, pods, usage = observation(nodes, pods, other_usage)
    # 1. generation (selector, minReadySeconds)
    stored, new_generation = begin_step(DeploymentRecord, record, spec)
    rec = stored.data
    view = classify(pods, nodes)

    # 2-3. the revision that should run, and a new rollout when it changes
    user_hash = spec.template_hash
    drop_stale_override(rec, user_hash)
    rec["template_hash"] = user_hash
    infos = _templates(rec, spec)
    progress.sync_paused(rec, spec.paused, now)
    if not spec.paused:
        target = effective_target(rec, user_hash)
        info = infos.get(target)
        if info is None:
            rec["rolled_back_from"] = None  # the override's template is gone or invalid: back to the user's
            target, info = user_hash, spec.template
        if target != rec["current_hash"]:
            _start_rollout(rec, spec.name, target, info, now)
    rec["paused"] = spec.paused
    current = rec["current_hash"]

    # 4. observe and judge progress
    replicas = spec.replicas
    surge, unavailable = spec.max_surge_for(), spec.max_unavailable_for()
    observed = counts.count(view, current, spec.min_ready_seconds, now)
    message = ""
    if spec.paused:
        verdict = progress.PAUSED_VERDICT
    else:
        verdict = progress.sync_progress(rec, spec.name, replicas, spec.progress_deadline_seconds, observed, now, new_generation)
        if verdict == progress.NEWLY_FAILED:
            message = _condition_message(rec)
            if spec.rollback_on_failure:
                back_to, why = rollback_target(rec, user_hash)
                back_info = infos.get(back_to) if back_to is not None else None
                if back_to is not None and back_info is not None:
                    message = mark_rolled_back(rec, user_hash, back_to, now)
                    _start_rollout(rec, spec.name, back_to, back_info, now, rolled_back=message)
                    rec["rolled_back_from"]["to_revision"] = rec["revisions"][back_to]["revision"]
                    current = back_to
                    observed = counts.count(view, current, spec.min_ready_seconds, now)
                    verdict = progress.IN_PROGRESS
                else:
                    message = f"{message} Not rolled back: {why}."
        if verdict in (progress.FAILED, progress.NEWLY_FAILED) and rec["held"] is None and _in_flight(view, current):
            rec["held"] = _counts(view)
            rec["held_available"] = observed["updated_available"]

    # 5. act
    planner = Planner(
        owner=spec.name,
        view=view,
        nodes=nodes,
        other_usage=usage,
        templates=infos,
        counters={h: int(e.get("next_pod") or 0) for h, e in rec["revisions"].items()},
        fallback_labels=dict(spec.selector.match_labels),
        min_ready_seconds=spec.min_ready_seconds,
        now=now,
        revision_order=revision_numbers(rec),
    )
    planner.remove_finished()
    waiting: list[str] = []
    if spec.paused:
        scaling.scale(planner, current, replicas, surge, unavailable, rec["max_replicas"], exclusive=not spec.rolling)
    elif rec["held"]:
        _hold(planner, rec["held"], current, replicas + surge, replicas - unavailable)
        waiting.append("the failed rollout is held where it stopped (change the template, undo, or let its pods become available)")
    elif spec.rolling and rec["replicas"] is not None and rec["replicas"] != replicas and len(planner.revisions()) > 1:
        scaling.scale(planner, current, replicas, surge, unavailable, rec["max_replicas"])
    elif not spec.rolling:
        waiting += recreate.rollout(planner, current, replicas)
    else:
        rolling.rollout(planner, current, replicas, surge, unavailable)

    # 6. history, conditions, record, verdict
    pending = planner.merged_pending()
    progress.sync_available(rec, observed["available"], replicas - unavailable, now)
    conditions.sync_replica_failure(rec, [p.reason for p in pending], now)
    for key, counter in planner.counters.items():
        if key in rec["revisions"]:
            rec["revisions"][key]["next_pod"] = counter
    started = {s.revision for s in planner.starts}
    override = rec["rolled_back_from"]
    protected = {h for h in (current, rec["last_complete_hash"], override and override.get("to_hash")) if h}
    rec["revisions"] = cleanup_history(rec["revisions"], spec.revision_history_limit, current, protected, view.revisions() | started)
    rec["replicas"] = replicas
    rec["max_replicas"] = replicas + surge
    stored.note_observed(observed)

    actions = planner.actions()
    numbers = revision_numbers(rec)
    reason = progress.progressing_reason(rec)
    converged = progress.is_complete(observed, replicas) if not spec.paused else observed["available"] == observed["replicas"] == replicas
    done = not actions and not pending and not waiting and converged
    timed_out = reason == progress.TIMED_OUT
    failed = timed_out or bool(override and override.get("reason") == ROLLED_BACK)
    finished = done or timed_out or (spec.paused and not actions and not pending)
    if not message:
        message = _summary(rec, spec, verdict, done, numbers)
    waiting += _waiting(planner, view, current, spec, numbers) if not done else []
    return Step(
        actions=actions,
        templates={h: info.pod_template(h) for h in sorted(started) if (info := infos[h]) is not None},  # (all: only those start)
        pending=pending,
        lost=tuple(p.name for p in view.lost),
        record=rec,
        status=status_report.render(rec, observed, replicas),
        done=done,
        finished=finished,
        complete=verdict == progress.COMPLETE,
        failed=failed,
        rolled_back=bool(override and current == override.get("to_hash")),
        message=message,
        description=planner.describe(numbers),
        waiting_for=tuple(waiting),
    )


def _templates(rec: dict, spec: DeploymentSpec) -> dict[str, TemplateInfo | None]:
    """Template of every known revision (None when a stored one is no longer valid); the user's one from the spec."""
    infos: dict[str, TemplateInfo | None] = {h: try_parse_stored(e.get("template")) for h, e in rec["revisions"].items() if h != spec.template_hash}
    infos[spec.template_hash] = spec.template
    return infos


def _start_rollout(rec: dict, name: str, target: str, info: TemplateInfo, now: float, rolled_back: str = "") -> None:
    """``target`` becomes the revision to roll out, numbered above every other (kubectl's rule for undo too)."""
    history = rec["revisions"]
    number = max_revision({h: e for h, e in history.items() if h != target}) + 1
    found = target in history
    if found:
        history[target]["revision"] = max(int(history[target]["revision"]), number)
    else:
        history[target] = new_entry(number, info.template, now)
    rec["current_hash"] = target
    rec["rollout_started"] = now
    rec["last_progress"] = now
    rec["held"] = None
    rs = progress.rs_name(name, target)
    if rolled_back:
        progress.set_condition(rec["conditions"], progress.PROGRESSING, "True", progress.ROLLED_BACK, rolled_back, now)
    elif found:
        progress.set_condition(rec["conditions"], progress.PROGRESSING, "True", progress.FOUND_NEW_RS, f'Found new replica set "{rs}"', now)
    else:
        progress.set_condition(rec["conditions"], progress.PROGRESSING, "True", progress.NEW_RS_CREATED, f'Created new replica set "{rs}"', now)


def _in_flight(view: PodView, current: str | None) -> bool:
    """A rollout is in flight while pods of another revision exist somewhere."""
    return any(p.revision != current for p in view.active + view.lost)


def _counts(view: PodView) -> dict[str, int]:
    """Pods per revision where the rollout stopped (pods on NotReady nodes included: they were there)."""
    counts: dict[str, int] = {}
    for pod in view.active + view.lost:
        counts[pod.revision] = counts.get(pod.revision, 0) + 1
    return counts


def _hold(planner: Planner, held: dict[str, int], current: str | None, max_total: int, min_available: int) -> None:
    """A failed rollout stays where it stopped: each revision keeps its pod count.

    Pods lost with a node are replaced in kind (old pods by old pods first, the
    failing revision last), never beyond ``max_total`` pods. When the node
    returns, the surplus goes: unavailable pods freely, available ones only
    while availability stays at ``min_available``.
    """
    revisions = sorted(set(held) | set(planner.revisions()), key=lambda r: (r == current, planner.order(r)))
    for revision in revisions:
        missing = min(int(held.get(revision, 0)) - planner.size(revision), max_total - planner.size())
        if missing > 0:
            planner.start(revision, missing)
    for revision in revisions:
        surplus = planner.size(revision) - int(held.get(revision, 0))
        if surplus <= 0:
            continue
        unhealthy = [p for p in planner.staying(revision) if not is_available(p, planner.min_ready_seconds, planner.now)]
        surplus -= planner.scale_down(unhealthy, min(surplus, len(unhealthy)), "failed rollout held: surplus pod")
        budget = planner.available() - min_available
        if surplus > 0 and budget > 0:
            planner.scale_down(planner.staying(revision), min(surplus, budget), "failed rollout held: surplus pod")


def _condition_message(rec: dict) -> str:
    condition = conditions.get_condition(rec["conditions"], conditions.PROGRESSING)
    return condition["message"] if condition else ""


def _summary(rec: dict, spec: DeploymentSpec, verdict: str, done: bool, numbers: dict[str, int]) -> str:
    current = rec["current_hash"]
    revision = numbers.get(current) if current else None
    override = rec["rolled_back_from"]
    if override and override.get("reason") == ROLLED_BACK:
        return override["message"]
    if spec.paused:
        return "Deployment is paused: template changes are not rolled out, scaling is"
    if progress.progressing_reason(rec) == progress.TIMED_OUT:
        return _condition_message(rec)
    if done:
        return f"revision {revision} rolled out: {spec.replicas} replica(s) available"
    return f"rolling out revision {revision}"


def _waiting(planner: Planner, view: PodView, current: str | None, spec: DeploymentSpec, numbers: dict[str, int]) -> list[str]:
    lines = []
    not_available = [p.name for p in planner.staying(current) if not is_available(p, spec.min_ready_seconds, planner.now)]
    if not_available:
        number = numbers.get(current) if current is not None else None
        lines.append(f"{len(not_available)} pod(s) of revision {number} to become available: {', '.join(not_available)}")
    old = [p for p in planner.staying() if p.revision != current]
    if old:
        lines.append(f"{len(old)} pod(s) of older revisions still running")
    for pending in planner.merged_pending():
        lines.append(f"{pending.count} pod(s) cannot be placed: {pending.reason}")
    if view.lost:
        lost_nodes = sorted({p.node for p in view.lost})
        lines.append(f"{len(view.lost)} pod(s) on NotReady node(s) {', '.join(lost_nodes)} are not counted; surplus is removed when the nodes return")
    return lines
