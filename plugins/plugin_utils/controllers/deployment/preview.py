# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The waves of a Deployment's rollout, for ``--check --diff`` (see controllers/preview.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.spec import DeploymentSpec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.deployment.sync import reconcile
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.preview import waves
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node, NodeUsage


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
    return waves(lambda rec, current, at: reconcile(spec, rec, nodes, current, other_usage, at), record, pods, now, spec.min_ready_seconds, max_waves)[1]
