# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deployment spec: validation and defaults, in Kubernetes' field names.

Errors are ``SpecError`` (from the node layer) and name the field path, e.g.
``spec.strategy.rollingUpdate.maxSurg: unknown field``.

=========================  ============  ==================================================
field                      default       rule
=========================  ============  ==================================================
replicas                   1             integer, 0 to 10000 (MAX_REPLICAS)
selector                   required      matchLabels/matchExpressions; must match the
                                         template labels; immutable
template                   required      metadata.labels/annotations + PodSpec (restartPolicy Always)
strategy.type              RollingUpdate RollingUpdate | Recreate
strategy.rollingUpdate     25% / 25%     maxSurge, maxUnavailable: int or "N%" (unavailable
                                         at most 100%); not both 0; refused with Recreate
minReadySeconds            0             integer >= 0
progressDeadlineSeconds    600           integer > minReadySeconds
revisionHistoryLimit       10            integer >= 0
paused                     false
rollbackOnFailure          false         (extension) roll back to the last complete
                                         revision when the progress deadline passes
=========================  ============  ==================================================
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common.fields import bool_field, integer_field
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.common.preamble import parse_preamble
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.intstr import is_zero, parse_int_or_percent, resolve_fenceposts
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.revisions import canonical_json, template_hash
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.templates import TemplateInfo
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.labels import LabelSelector, known_fields

ROLLING_UPDATE = "RollingUpdate"
RECREATE = "Recreate"
STRATEGIES = (ROLLING_UPDATE, RECREATE)
FIELDS = {
    "replicas",
    "selector",
    "template",
    "strategy",
    "minReadySeconds",
    "progressDeadlineSeconds",
    "revisionHistoryLimit",
    "paused",
    "rollbackOnFailure",
}


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    replicas: int
    selector: LabelSelector
    template: TemplateInfo
    strategy: str = ROLLING_UPDATE
    max_surge: int | str = "25%"
    max_unavailable: int | str = "25%"
    min_ready_seconds: int = 0
    progress_deadline_seconds: int = 600
    revision_history_limit: int = 10
    paused: bool = False
    rollback_on_failure: bool = False

    @property
    def template_hash(self) -> str:
        return self.template.hash

    @property
    def rolling(self) -> bool:
        return self.strategy == ROLLING_UPDATE

    def max_surge_for(self, replicas: int | None = None) -> int:
        """Kubernetes' MaxSurge: 0 unless RollingUpdate."""
        replicas = self.replicas if replicas is None else replicas
        if not self.rolling:
            return 0
        return resolve_fenceposts(self.max_surge, self.max_unavailable, replicas)[0]

    def max_unavailable_for(self, replicas: int | None = None) -> int:
        """Kubernetes' MaxUnavailable: 0 unless RollingUpdate with replicas, never above replicas."""
        replicas = self.replicas if replicas is None else replicas
        if not self.rolling or replicas == 0:
            return 0
        return min(replicas, resolve_fenceposts(self.max_surge, self.max_unavailable, replicas)[1])

    def to_json(self) -> dict:
        """The spec in normal form (Kubernetes shape, defaults filled in)."""
        strategy: dict = {"type": self.strategy}
        if self.rolling:
            strategy["rollingUpdate"] = {"maxSurge": self.max_surge, "maxUnavailable": self.max_unavailable}
        return {
            "replicas": self.replicas,
            "selector": self.selector.to_json(),
            "template": self.template.normal,
            "strategy": strategy,
            "minReadySeconds": self.min_ready_seconds,
            "progressDeadlineSeconds": self.progress_deadline_seconds,
            "revisionHistoryLimit": self.revision_history_limit,
            "paused": self.paused,
            "rollbackOnFailure": self.rollback_on_failure,
        }

    def spec_hash(self) -> str:
        """Changes whenever the spec changes (a new generation)."""
        return self._spec_hash

    @functools.cached_property
    def _spec_hash(self) -> str:
        return template_hash(self.to_json())

    def selector_json(self) -> str:
        return canonical_json(self.selector.to_json())


def parse_strategy(raw, path: str = "spec.strategy") -> tuple[str, int | str, int | str]:
    """Return (type, maxSurge, maxUnavailable)."""
    raw = {} if raw is None else raw
    known_fields(raw, {"type", "rollingUpdate"}, path)
    kind = raw.get("type") or ROLLING_UPDATE
    if kind not in STRATEGIES:
        raise SpecError(f"{path}.type", f"Unsupported value: {kind!r}: supported values: {', '.join(STRATEGIES)}")
    rolling = raw.get("rollingUpdate")
    if kind == RECREATE:
        if rolling is not None:
            raise SpecError(f"{path}.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
        return kind, 0, 0
    rolling = {} if rolling is None else rolling
    known_fields(rolling, {"maxSurge", "maxUnavailable"}, f"{path}.rollingUpdate")
    surge = parse_int_or_percent(rolling.get("maxSurge", "25%"), f"{path}.rollingUpdate.maxSurge")
    unavailable = parse_int_or_percent(rolling.get("maxUnavailable", "25%"), f"{path}.rollingUpdate.maxUnavailable", max_percent=100)
    if is_zero(surge) and is_zero(unavailable):
        raise SpecError(f"{path}.rollingUpdate.maxUnavailable", "may not be 0 when `maxSurge` is 0")
    return kind, surge, unavailable


def parse_deployment_spec(name: str, spec: dict, stored_selector: dict | None = None, path: str = "spec") -> DeploymentSpec:
    """Validate a Deployment spec and fill in defaults.

    ``stored_selector`` is the selector of the existing Deployment (``record["selector"]``):
    the selector is immutable, as in Kubernetes.
    """
    head = parse_preamble(name, spec, FIELDS, stored_selector, path)
    strategy, surge, unavailable = parse_strategy(spec.get("strategy"), f"{path}.strategy")
    min_ready = integer_field(spec, "minReadySeconds", path, 0)
    deadline = integer_field(spec, "progressDeadlineSeconds", path, 600, minimum=1)
    if deadline <= min_ready:
        raise SpecError(f"{path}.progressDeadlineSeconds", f"must be greater than minReadySeconds ({min_ready}), got {deadline}")
    return DeploymentSpec(
        name=head.name,
        replicas=head.replica_count,
        selector=head.selector,
        template=head.template,
        strategy=strategy,
        max_surge=surge if strategy == ROLLING_UPDATE else 0,
        max_unavailable=unavailable if strategy == ROLLING_UPDATE else 0,
        min_ready_seconds=min_ready,
        progress_deadline_seconds=deadline,
        revision_history_limit=integer_field(spec, "revisionHistoryLimit", path, 10),
        paused=bool_field(spec, "paused", path),
        rollback_on_failure=bool_field(spec, "rollbackOnFailure", path),
    )
