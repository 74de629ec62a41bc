# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DaemonSet spec: validation and defaults, in Kubernetes' field names.

Errors are ``SpecError`` (from the node layer) and name the field path, e.g.
``spec.updateStrategy.rollingUpdate.maxSurge: ...``.

================================  ============  ==================================================
field                             default       rule
================================  ============  ==================================================
selector                          required      matchLabels/matchExpressions; must match the
                                                template labels; immutable
template                          required      metadata.labels/annotations + PodSpec (restartPolicy
                                                Always); ``nodeSelector``, required node affinity
                                                and the nodes' taints (with the tolerations
                                                Kubernetes adds to daemon pods) choose the eligible
                                                nodes
updateStrategy.type               RollingUpdate RollingUpdate | OnDelete
updateStrategy.rollingUpdate      1 / 0         maxUnavailable, maxSurge: int or "N%" of the eligible
                                                nodes, rounded UP; not both 0; refused with OnDelete
minReadySeconds                   0             integer >= 0
revisionHistoryLimit              10            integer >= 0
progressDeadlineSeconds           600           (extension: not a DaemonSet field in Kubernetes)
                                                integer > minReadySeconds; a rollout that makes no
                                                progress for that long is reported as failed
                                                (Progressing=False, ProgressDeadlineExceeded)
================================  ============  ==================================================
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common.fields import integer_field
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common.preamble import parse_preamble
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.intstr import is_zero, parse_int_or_percent, scaled_value
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.revisions import template_hash
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.templates import TemplateInfo
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.labels import LabelSelector, known_fields
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.taints import NO_EXECUTE, daemonset_tolerations, untolerated

ROLLING_UPDATE = "RollingUpdate"
ON_DELETE = "OnDelete"
STRATEGIES = (ROLLING_UPDATE, ON_DELETE)
FIELDS = {"selector", "template", "updateStrategy", "minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds"}


@dataclass(frozen=True)
class DaemonSetSpec:
    name: str
    selector: LabelSelector
    template: TemplateInfo
    strategy: str = ROLLING_UPDATE
    max_unavailable: int | str = 1
    max_surge: int | str = 0
    min_ready_seconds: int = 0
    revision_history_limit: int = 10
    progress_deadline_seconds: int = 600

    @property
    def template_hash(self) -> str:
        return self.template.hash

    @property
    def rolling(self) -> bool:
        return self.strategy == ROLLING_UPDATE

    def eligible(self, node: Node) -> bool:
        """Should this node run a daemon pod (ready or not: daemon pods tolerate NotReady nodes): its node constraints
        match and it tolerates the node's NoSchedule/NoExecute taints (with the daemon pods' own tolerations, below)."""
        constraints = self.template.constraints
        return constraints.matches_node_affinity(node) and untolerated(node.taints, constraints.tolerations) is None

    def continues(self, node: Node) -> bool:
        """May a daemon pod already on this node stay there (Kubernetes' shouldContinueRunning): its node constraints
        match and no NoExecute taint of the node is untolerated (a new NoSchedule taint lets it run on)."""
        constraints = self.template.constraints
        return constraints.matches_node_affinity(node) and untolerated(node.taints, constraints.tolerations, (NO_EXECUTE,)) is None

    def budgets(self, desired: int) -> tuple[int, int]:
        """(maxSurge, maxUnavailable) as numbers of nodes for ``desired`` eligible nodes (Kubernetes'
        SurgeCount / UnavailableCount: percentages round UP; both 0 → 1 unavailable)."""
        if not self.rolling:
            return 0, 0
        surge = scaled_value(self.max_surge, desired, round_up=True)
        unavailable = scaled_value(self.max_unavailable, desired, round_up=True)
        if desired > 0 and surge == 0 and unavailable == 0:
            unavailable = 1
        return surge, unavailable

    def to_json(self) -> dict:
        """The spec in normal form (Kubernetes shape, defaults filled in)."""
        strategy: dict = {"type": self.strategy}
        if self.rolling:
            strategy["rollingUpdate"] = {"maxUnavailable": self.max_unavailable, "maxSurge": self.max_surge}
        return {
            "selector": self.selector.to_json(),
            "template": self.template.normal,
            "updateStrategy": strategy,
            "minReadySeconds": self.min_ready_seconds,
            "revisionHistoryLimit": self.revision_history_limit,
            "progressDeadlineSeconds": self.progress_deadline_seconds,
        }

    def spec_hash(self) -> str:
        return self._spec_hash

    @functools.cached_property
    def _spec_hash(self) -> str:
        return template_hash(self.to_json())


def with_daemon_tolerations(info: TemplateInfo) -> TemplateInfo:
    """The template as the scheduler sees its daemon pods: with the tolerations Kubernetes' DaemonSet controller adds
    (scheduler/taints.py). Only the scheduling constraints change: the template, its normal form and hash do not."""
    constraints = info.constraints
    host_network = ((info.template or {}).get("spec") or {}).get("hostNetwork") is True
    return dataclasses.replace(info, constraints=dataclasses.replace(constraints, tolerations=daemonset_tolerations(constraints.tolerations, host_network)))


def parse_update_strategy(raw, path: str = "spec.updateStrategy") -> tuple[str, int | str, int | str]:
    """Return (type, maxUnavailable, maxSurge)."""
    raw = {} if raw is None else raw
    known_fields(raw, {"type", "rollingUpdate"}, path)
    kind = raw.get("type") or ROLLING_UPDATE
    if kind not in STRATEGIES:
        raise SpecError(f"{path}.type", f"Unsupported value: {kind!r}: supported values: {', '.join(STRATEGIES)}")
    rolling = raw.get("rollingUpdate")
    if kind == ON_DELETE:
        if rolling is not None:
            raise SpecError(f"{path}.rollingUpdate", "may not be specified when strategy `type` is 'OnDelete'")
        return kind, 0, 0
    rolling = {} if rolling is None else rolling
    known_fields(rolling, {"maxSurge", "maxUnavailable"}, f"{path}.rollingUpdate")
    unavailable = parse_int_or_percent(rolling.get("maxUnavailable", 1), f"{path}.rollingUpdate.maxUnavailable", max_percent=100)
    surge = parse_int_or_percent(rolling.get("maxSurge", 0), f"{path}.rollingUpdate.maxSurge", max_percent=100)
    if is_zero(surge) and is_zero(unavailable):
        raise SpecError(f"{path}.rollingUpdate.maxUnavailable", "may not be 0 when `maxSurge` is 0")
    return kind, unavailable, surge


def parse_daemonset_spec(name: str, spec: dict, stored_selector: dict | None = None, path: str = "spec") -> DaemonSetSpec:
    """Validate a DaemonSet spec and fill in defaults; ``stored_selector`` (``record["selector"]``) is immutable."""
    head = parse_preamble(name, spec, FIELDS, stored_selector, path, replicas=False)
    template = with_daemon_tolerations(head.template)
    strategy, unavailable, surge = parse_update_strategy(spec.get("updateStrategy"), f"{path}.updateStrategy")
    min_ready = integer_field(spec, "minReadySeconds", path, 0)
    deadline = integer_field(spec, "progressDeadlineSeconds", path, 600, minimum=1)
    if deadline <= min_ready:
        raise SpecError(f"{path}.progressDeadlineSeconds", f"must be greater than minReadySeconds ({min_ready}), got {deadline}")
    return DaemonSetSpec(
        name=head.name,
        selector=head.selector,
        template=template,
        strategy=strategy,
        max_unavailable=unavailable,
        max_surge=surge,
        min_ready_seconds=min_ready,
        revision_history_limit=integer_field(spec, "revisionHistoryLimit", path, 10),
        progress_deadline_seconds=deadline,
    )
