# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole rollout as waves, for ``--check --diff`` (like ``nomad job plan``).

``preview`` runs ``reconcile`` against a what-if world in which every pod it
starts becomes available at once and every stop completes, and returns one
wave per step until nothing is left to do. It is a forecast: real pods may
be slower, fail, or nodes may change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.spec import DeploymentSpec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.sync import reconcile
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.plan import Step
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node, NodeUsage


def apply_step(pods: Iterable[ObservedPod], step: Step, now: float, min_ready_seconds: int = 0) -> list[ObservedPod]:
    """The pods after ``step``, if every stop completes and every start is available right away."""
    stopped = {s.name for s in step.stops}
    result = [p for p in pods if p.name not in stopped]
    since = now - min_ready_seconds
    result.extend(ObservedPod(s.name, s.node, s.revision, "Running", True, since, since) for s in step.starts)
    return result


def preview(
    spec: DeploymentSpec,
    record: dict | None,
    nodes: Iterable[Node],
    pods: Iterable[ObservedPod],
    other_usage: Mapping[str, NodeUsage] | None = None,
    now: float = 0.0,
    max_waves: int = 100,
) -> list[dict]:
    """Waves ``[{"wave": 1, "start": {node: [pod names]}, "stop": {...}, "pending": [...], "description": [...]}, ...]``."""
    nodes = list(nodes)
    pods = [p if isinstance(p, ObservedPod) else ObservedPod.from_json(p) for p in pods]
    waves = []
    for number in range(1, max_waves + 1):
        step = reconcile(spec, record, nodes, pods, other_usage, now)
        if step.empty:
            if step.pending:
                waves.append({"wave": number, "start": {}, "stop": {}, "pending": [p.to_json() for p in step.pending], "description": list(step.description)})
            break
        waves.append({"wave": number, **step.wave(), "pending": [p.to_json() for p in step.pending], "description": list(step.description)})
        pods = apply_step(pods, step, now, spec.min_ready_seconds)
        record = step.record
        if step.finished:
            break
    return waves
