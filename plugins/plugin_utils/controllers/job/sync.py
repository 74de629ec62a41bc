# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One step of a fleet-wide Job: the Job's own semantics (``module_utils/job/tracking.py``) plus placement.

The tracking module counts pods, gives the verdict and proposes pods to start
and stop; this step places each proposed pod on an eligible ready node (the
scheduler spreads them and honours capacity and the template's node
constraints), and records only the pods that were placed. A pod that fits
nowhere is pending (with the scheduler's reason) and proposed again next step.

Pods on NotReady nodes are counted as failed (``DisruptionTarget``) and their
index runs again elsewhere; when their node comes back they are stopped.

The record is the tracking record plus ``immutable`` (the immutable fields
as first run, so a change can be named) and ``seq`` (set by the loop).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ansible_collections.hostfleet.workloads.plugins.module_utils.job import tracking
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.job.spec import JobSpec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod, classify
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.step import Planner, Step
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node, NodeUsage


def _observed(pod: dict, node: str) -> ObservedPod:
    return ObservedPod.from_json(
        {
            "name": pod["name"],
            "node": node,
            "revision": pod.get("revision") or "",
            "phase": pod.get("phase") or "Unknown",
            "ready": bool(pod.get("ready")),
            "created": pod.get("created") or 0.0,
            "restart_count": pod.get("restart_count") or 0,
        }
    )


def reconcile_job(
    spec: JobSpec,
    record: dict | None,
    nodes: Iterable[Node | dict],
    pods_by_node: Mapping[str, list[dict]],
    other_usage: Mapping[str, NodeUsage | dict] | None = None,
    now: float = 0.0,
) -> Step:
    """Plan the next step of a Job. ``pods_by_node``: the node layer's pod statuses of this Job, per ready node."""
    fleet_nodes = [n if isinstance(n, Node) else Node.from_json(n) for n in nodes]
    usage = {k: v if isinstance(v, NodeUsage) else NodeUsage.from_json(v) for k, v in (other_usage or {}).items()}
    lost_nodes = {n.name for n in fleet_nodes if not n.ready}
    raw = [(node, pod) for node in sorted(pods_by_node) for pod in pods_by_node[node]]
    decision = tracking.sync(spec.normal, record, [tracking.job_pod(pod, node) for node, pod in raw], lost_nodes, now, spec.name)
    rec = decision.record
    rec.setdefault("immutable", spec.immutable_fields())
    rec["template_hash"] = spec.template_hash

    observed = [_observed(pod, node) for node, pod in raw]
    by_name = {p.name: p for p in observed}
    revision = spec.template_hash
    planner = Planner(
        owner=spec.name,
        view=classify(observed, fleet_nodes),
        nodes=fleet_nodes,
        other_usage=usage,
        templates={revision: spec.template},
        counters={},
        fallback_labels={},
        min_ready_seconds=0,
        now=now,
    )
    # Stops first: they free room on their nodes for this step's starts.
    if decision.remove_all:
        planner.stop(list(observed), "ttlSecondsAfterFinished has passed")
    for stop in decision.stop:
        if stop["name"] in by_name:
            planner.stop([by_name[stop["name"]]], stop["reason"])
    templates = {}
    placed = 0
    for start in decision.start:
        key = revision if start["index"] is None else f"{revision}-{start['index']}"
        node = planner.start_named(revision, start["name"], None, key if start["index"] is not None else "")
        if node is None:
            continue
        tracking.commit_start(rec, start["name"], start["index"], node, now)
        templates[key] = tracking.pod_template(spec.template.pod_template(revision), spec.name, start["index"])
        placed += 1

    actions = planner.actions()
    pending = planner.merged_pending()
    running = sum(1 for e in rec["pods"].values() if e.get("outcome") is None and e["node"] not in lost_nodes)
    # Nothing runs, nothing starts, nothing will happen by time alone: waiting cannot help.
    blocked = not decision.finished and not actions and not running and decision.wake_at is None
    waiting = list(decision.waiting_for)
    waiting += [f"{p.count} pod(s) cannot be placed: {p.reason}" for p in pending]
    if running and not decision.finished:
        waiting.append(f"{running} pod(s) running")
    if lost_nodes and not decision.finished:
        waiting.append(f"node(s) {', '.join(sorted(lost_nodes))} are NotReady: their pods count as failed and run again elsewhere")
    message = decision.message
    if blocked and pending:
        message = f"{message}; no node can run the Job's pods now (see pending)"
    return Step(
        actions=actions,
        templates=templates,
        pending=pending,
        lost=tuple(sorted(n for n, e in rec["pods"].items() if e["node"] in lost_nodes and e.get("outcome") == tracking.POD_FAILED)),
        record=rec,
        status=tracking.job_status(rec, spec.normal),
        done=decision.finished and not actions,
        finished=decision.finished or blocked,
        complete=decision.complete,
        failed=decision.failed,
        message=message,
        description=planner.describe({revision: 1}) + tuple(decision.events),
        waiting_for=tuple(waiting),
    )
