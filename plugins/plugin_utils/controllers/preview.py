# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A whole rollout as waves, for ``--check`` (like ``nomad job plan``), for any controller.

``waves`` runs a controller's step function against a what-if world in which
every pod it starts becomes available at once and every stop completes, and
returns one wave per step until nothing is left to do. It is a forecast: real
pods may be slower, fail, or nodes may change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.step import Step


def apply_step(pods: Iterable[ObservedPod], step: Step, now: float, min_ready_seconds: int = 0) -> list[ObservedPod]:
    """The pods after ``step``, if every stop completes and every start is available right away."""
    stopped = {s.name for s in step.stops}
    result = [p for p in pods if p.name not in stopped]
    since = now - min_ready_seconds
    result.extend(ObservedPod(s.name, s.node, s.revision, "Running", True, since, since) for s in step.starts)
    return result


def waves(plan: Callable[[dict | None, list[ObservedPod], float], Step], record: dict | None, pods: Iterable[ObservedPod], now: float,
          min_ready_seconds: int = 0, max_waves: int = 100) -> tuple[Step | None, list[dict]]:
    """(the last step, ``[{"wave": 1, "start": {node: [pod names]}, "stop": {...}, "pending": [...], "description": [...]}, ...]``).

    ``plan(record, pods, now)`` is one controller step over a fixed set of nodes.
    """
    pods = [p if isinstance(p, ObservedPod) else ObservedPod.from_json(p) for p in pods]
    result = []
    step = None
    for number in range(1, max_waves + 1):
        step = plan(record, pods, now)
        if step.empty:
            if step.pending:
                result.append({"wave": number, "start": {}, "stop": {}, "pending": [p.to_json() for p in step.pending], "description": list(step.description)})
            break
        result.append({"wave": number, **step.wave(), "pending": [p.to_json() for p in step.pending], "description": list(step.description)})
        pods = apply_step(pods, step, now, min_ready_seconds)
        record = step.record
        if step.finished:
            break
    return step, result
