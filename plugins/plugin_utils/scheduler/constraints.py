# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scheduling part of a PodSpec, parsed once into ``Constraints``.

Fields (Kubernetes names and meaning):

* ``nodeSelector``: every label must be on the node.
* ``affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms``:
  at least one term must match (In / NotIn / Exists / DoesNotExist / Gt / Lt;
  ``matchFields`` on ``metadata.name``).
* ``affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution``: weights, a tie-breaker.
* ``affinity.podAntiAffinity`` (required and preferred) with
  ``topologyKey: kubernetes.io/hostname``: no (preferably no) pod matching the
  selector on the node. Other topology keys are refused: a host is the only
  failure domain we can fence; use ``topologySpreadConstraints`` for zones.
* ``affinity.podAffinity`` (required and preferred), the same way: a pod matching
  each required term's selector on the node (a pod that matches its own term may
  go anywhere while no pod matches it: the first of a group, as Kubernetes allows);
  preferred terms' weights count for a node, violated anti-affinity's against it.
* ``topologySpreadConstraints``: ``maxSkew`` over the domains of
  ``topologyKey``; ``DoNotSchedule`` filters nodes, ``ScheduleAnyway`` ranks them.
* ``containers[].resources.requests``: cpu, memory, ephemeral-storage and extended resources (``nvidia.com/gpu``),
  checked against capacity (with ``initContainers``: the larger of what the app containers and sidecars need and what an
  init container needs while it runs) (a limit without a request is the request, as Kubernetes defaults it).
* ``containers[].ports[].hostPort`` (defaulting to ``containerPort`` with ``hostNetwork: true``): one pod per node
  may take each.

* ``tolerations``: which of the nodes' taints (``hostfleet_node_taints``) the pod tolerates (scheduler/taints.py):
  an untolerated NoSchedule or NoExecute taint filters the node, untolerated PreferNoSchedule ones rank it last.

``priorityClassName`` is checked as Kubernetes validates it
(by the node layer, podspec.py) and has no effect: there is no preemption on plain hosts (NotReady is handled by
the controllers).
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import labels as parse_labels
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.labels import (
    LabelSelector,
    NodeSelectorTerm,
    known_fields,
    parse_label_selector,
    parse_node_selector_term,
)
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import (
    EPHEMERAL_STORAGE,
    HOSTNAME_LABEL,
    Node,
    Resources,
    extended_resource_name,
    parse_cpu,
    parse_extended,
    parse_memory,
)
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.taints import Toleration, parse_tolerations

WHEN_UNSATISFIABLE = ("DoNotSchedule", "ScheduleAnyway")
INCLUSION_POLICIES = ("Honor", "Ignore")


@dataclass(frozen=True)
class SpreadConstraint:
    max_skew: int
    topology_key: str
    when_unsatisfiable: str
    selector: LabelSelector
    match_label_keys: tuple[str, ...] = ()
    min_domains: int | None = None
    node_affinity_policy: str = "Honor"
    # Kubernetes' default: nodes count in the domains whatever their taints (Honor: only those the pod tolerates).
    node_taints_policy: str = "Ignore"

    @property
    def hard(self) -> bool:
        return self.when_unsatisfiable == "DoNotSchedule"

    def selector_for(self, pod_labels: dict[str, str]) -> LabelSelector:
        """The selector narrowed by the incoming pod's values of ``matchLabelKeys``."""
        extra = {key: pod_labels[key] for key in self.match_label_keys if key in pod_labels}
        return self.selector.with_labels(extra) if extra else self.selector


@dataclass(frozen=True)
class Constraints:
    """Where a pod may go and what it takes. The default (no constraints, no requests) fits any ready node."""

    node_selector: tuple[tuple[str, str], ...] = ()
    required_terms: tuple[NodeSelectorTerm, ...] | None = None
    preferred_terms: tuple[tuple[int, NodeSelectorTerm], ...] = ()
    anti_affinity: tuple[LabelSelector, ...] = ()
    anti_affinity_preferred: tuple[tuple[int, LabelSelector], ...] = ()
    affinity: tuple[LabelSelector, ...] = ()  # required podAffinity terms (topology: the host)
    affinity_preferred: tuple[tuple[int, LabelSelector], ...] = ()
    spread: tuple[SpreadConstraint, ...] = ()
    requests: Resources = Resources(0, 0, 1)
    host_ports: tuple[tuple[str, int], ...] = ()  # (protocol, hostPort): one pod per node may take each
    tolerations: tuple[Toleration, ...] = ()

    def matches_node_affinity(self, node: Node) -> bool:
        """nodeSelector AND (no required node affinity OR any of its terms)."""
        if any(node.labels.get(k) != v for k, v in self.node_selector):
            return False
        if self.required_terms is None:
            return True
        return any(term.matches(node.name, node.labels) for term in self.required_terms)

    def preference(self, node: Node) -> int:
        """Sum of the weights of the preferred node affinity terms the node matches."""
        return sum(weight for weight, term in self.preferred_terms if term.matches(node.name, node.labels))


def _list(value, path):
    if value is None:
        return []
    if not isinstance(value, list):
        raise SpecError(path, f"must be a list, got {type(value).__name__}")
    return value


def _int(value, path, minimum, maximum=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(path, f"must be an integer, got {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise SpecError(path, f"must be {bound}, got {value}")
    return value


def _weight(item, path):
    if item.get("weight") is None:
        raise SpecError(f"{path}.weight", "is required (1-100)")
    return _int(item["weight"], f"{path}.weight", 1, 100)


def _node_affinity(value, path):
    known_fields(value, {"requiredDuringSchedulingIgnoredDuringExecution", "preferredDuringSchedulingIgnoredDuringExecution"}, path)
    required = None
    raw_required = value.get("requiredDuringSchedulingIgnoredDuringExecution")
    if raw_required is not None:
        rpath = f"{path}.requiredDuringSchedulingIgnoredDuringExecution"
        known_fields(raw_required, {"nodeSelectorTerms"}, rpath)
        terms = _list(raw_required.get("nodeSelectorTerms"), f"{rpath}.nodeSelectorTerms")
        if not terms:
            raise SpecError(f"{rpath}.nodeSelectorTerms", "must have at least one term")
        required = tuple(parse_node_selector_term(term, f"{rpath}.nodeSelectorTerms[{i}]") for i, term in enumerate(terms))
    preferred = []
    ppath = f"{path}.preferredDuringSchedulingIgnoredDuringExecution"
    for i, item in enumerate(_list(value.get("preferredDuringSchedulingIgnoredDuringExecution"), ppath)):
        known_fields(item, {"weight", "preference"}, f"{ppath}[{i}]")
        if item.get("preference") is None:
            raise SpecError(f"{ppath}[{i}].preference", "is required")
        preferred.append((_weight(item, f"{ppath}[{i}]"), parse_node_selector_term(item["preference"], f"{ppath}[{i}].preference")))
    return required, tuple(preferred)


def _anti_affinity_term(value, path, what="pod anti-affinity"):
    known_fields(value, {"labelSelector", "topologyKey"}, path)
    key = value.get("topologyKey")
    if key is None:
        raise SpecError(f"{path}.topologyKey", f"is required (only {HOSTNAME_LABEL} is supported)")
    if key != HOSTNAME_LABEL:
        raise SpecError(
            f"{path}.topologyKey",
            f"only {HOSTNAME_LABEL} is supported for {what}, got {key!r} (use topologySpreadConstraints to spread over zones or other labels)",
        )
    return parse_label_selector(value.get("labelSelector"), f"{path}.labelSelector", required=True)


def _pod_anti_affinity(value, path, what="pod anti-affinity"):
    """podAntiAffinity, or podAffinity (``what``): the same terms, read the same way."""
    known_fields(value, {"requiredDuringSchedulingIgnoredDuringExecution", "preferredDuringSchedulingIgnoredDuringExecution"}, path)
    rpath = f"{path}.requiredDuringSchedulingIgnoredDuringExecution"
    terms = _list(value.get("requiredDuringSchedulingIgnoredDuringExecution"), rpath)
    required = tuple(_anti_affinity_term(term, f"{rpath}[{i}]", what) for i, term in enumerate(terms))
    preferred = []
    ppath = f"{path}.preferredDuringSchedulingIgnoredDuringExecution"
    for i, item in enumerate(_list(value.get("preferredDuringSchedulingIgnoredDuringExecution"), ppath)):
        known_fields(item, {"weight", "podAffinityTerm"}, f"{ppath}[{i}]")
        if item.get("podAffinityTerm") is None:
            raise SpecError(f"{ppath}[{i}].podAffinityTerm", "is required")
        preferred.append((_weight(item, f"{ppath}[{i}]"), _anti_affinity_term(item["podAffinityTerm"], f"{ppath}[{i}].podAffinityTerm", what)))
    return required, tuple(preferred)


def _spread_constraint(value, path):
    allowed = {"maxSkew", "topologyKey", "whenUnsatisfiable", "labelSelector", "matchLabelKeys", "minDomains", "nodeAffinityPolicy", "nodeTaintsPolicy"}
    known_fields(value, allowed, path)
    for key in ("maxSkew", "topologyKey", "whenUnsatisfiable"):
        if value.get(key) is None:
            raise SpecError(f"{path}.{key}", "is required")
    max_skew = _int(value["maxSkew"], f"{path}.maxSkew", 1)
    topology_key = value["topologyKey"]
    if not isinstance(topology_key, str) or not topology_key:
        raise SpecError(f"{path}.topologyKey", "must be a label key")
    parse_labels({topology_key: ""}, f"{path}.topologyKey")
    when = value["whenUnsatisfiable"]
    if when not in WHEN_UNSATISFIABLE:
        raise SpecError(f"{path}.whenUnsatisfiable", f"must be one of {', '.join(WHEN_UNSATISFIABLE)}, got {when!r}")
    if value.get("labelSelector") is None:
        raise SpecError(f"{path}.labelSelector", "is required (usually the labels of the pod template), without it no pod is counted")
    selector = parse_label_selector(value["labelSelector"], f"{path}.labelSelector")
    keys = []
    for i, key in enumerate(_list(value.get("matchLabelKeys"), f"{path}.matchLabelKeys")):
        if not isinstance(key, str):
            raise SpecError(f"{path}.matchLabelKeys[{i}]", "must be a label key")
        parse_labels({key: ""}, f"{path}.matchLabelKeys[{i}]")
        keys.append(key)
    min_domains = None
    if value.get("minDomains") is not None:
        if when != "DoNotSchedule":
            raise SpecError(f"{path}.minDomains", "can only be used with whenUnsatisfiable: DoNotSchedule")
        min_domains = _int(value["minDomains"], f"{path}.minDomains", 1)
    policies = {}
    for key, default in (("nodeAffinityPolicy", "Honor"), ("nodeTaintsPolicy", "Ignore")):
        policies[key] = default if value.get(key) is None else value[key]  # not `or`: "", 0 or false is no policy
        if policies[key] not in INCLUSION_POLICIES:
            raise SpecError(f"{path}.{key}", f"must be one of {', '.join(INCLUSION_POLICIES)}, got {policies[key]!r}")
    return SpreadConstraint(max_skew, topology_key, when, selector, tuple(keys), min_domains, policies["nodeAffinityPolicy"], policies["nodeTaintsPolicy"])


def _container_requests(container: dict | None, path: str) -> dict[str, int]:
    """One container's requests: cpu (millicores), memory (bytes), ephemeral-storage and extended resources."""
    resources = (container or {}).get("resources") or {}
    requests = resources.get("requests") or {}
    rpath = f"{path}.resources.requests"
    result = {}
    if requests.get("cpu") is not None:
        value = requests["cpu"]
        # The node layer's normal form has integers (millicores / bytes); user input has quantities.
        result["cpu"] = value if isinstance(value, int) and not isinstance(value, bool) else parse_cpu(value, f"{rpath}.cpu")
    if requests.get("memory") is not None:
        value = requests["memory"]
        result["memory"] = value if isinstance(value, int) and not isinstance(value, bool) else parse_memory(value, f"{rpath}.memory")
    result.update(_extended_requests(resources, f"{path}.resources"))
    return result


def _add(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    return {key: total.get(key, 0) + more.get(key, 0) for key in {*total, *more}}


def _requests(spec, path):
    """The pod's effective requests, as Kubernetes computes them (resourcehelper.PodRequests): the app containers'
    sum plus the sidecars', or more if an init container needs more while it runs (with the sidecars started
    before it, which keep running)."""
    apps: dict[str, int] = {}
    for i, container in enumerate(_list(spec.get("containers"), f"{path}.containers")):
        apps = _add(apps, _container_requests(container, f"{path}.containers[{i}]"))
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for i, container in enumerate(_list(spec.get("initContainers"), f"{path}.initContainers")):
        own = _container_requests(container, f"{path}.initContainers[{i}]")
        if (container or {}).get("restartPolicy") == "Always":
            sidecars = _add(sidecars, own)
            running = sidecars
        else:
            running = _add(sidecars, own)
        init_peak = {key: max(init_peak.get(key, 0), running.get(key, 0)) for key in {*init_peak, *running}}
    steady = _add(apps, sidecars)
    total = {key: max(steady.get(key, 0), init_peak.get(key, 0)) for key in {*steady, *init_peak}}
    extended = tuple(sorted((key, value) for key, value in total.items() if key not in ("cpu", "memory") and value))
    return Resources(total.get("cpu", 0), total.get("memory", 0), 1, extended)


def _extended_requests(resources, path) -> dict[str, int]:
    """A container's ephemeral-storage (bytes) and extended resource (count) requests; a limit alone is the request."""
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}
    result = {}
    for key in dict.fromkeys([*requests, *limits]):
        if key != EPHEMERAL_STORAGE and not extended_resource_name(key):
            continue
        part = "requests" if requests.get(key) is not None else "limits"
        value = (requests if part == "requests" else limits).get(key)
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            result[key] = value  # the normal form's bytes / count
        elif key == EPHEMERAL_STORAGE:
            result[key] = parse_memory(value, f"{path}.{part}.{key}")
        else:
            result[key] = parse_extended(value, f"{path}.{part}.{key}")
    return result


def parse_constraints(spec: dict, path: str = "spec") -> Constraints:
    """Parse the scheduling fields of a pod spec (normal form of the node layer, or raw)."""
    node_selector = parse_labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    required = None
    preferred = ()
    anti = ()
    anti_preferred = ()
    pod_affinity = pod_affinity_preferred = ()
    affinity = spec.get("affinity")
    if affinity is not None:
        apath = f"{path}.affinity"
        known_fields(affinity, {"nodeAffinity", "podAntiAffinity", "podAffinity"}, apath)
        if affinity.get("nodeAffinity") is not None:
            required, preferred = _node_affinity(affinity["nodeAffinity"], f"{apath}.nodeAffinity")
        if affinity.get("podAntiAffinity") is not None:
            anti, anti_preferred = _pod_anti_affinity(affinity["podAntiAffinity"], f"{apath}.podAntiAffinity")
        if affinity.get("podAffinity") is not None:
            pod_affinity, pod_affinity_preferred = _pod_anti_affinity(affinity["podAffinity"], f"{apath}.podAffinity", "pod affinity")
    spread_path = f"{path}.topologySpreadConstraints"
    spread = tuple(_spread_constraint(item, f"{spread_path}[{i}]") for i, item in enumerate(_list(spec.get("topologySpreadConstraints"), spread_path)))
    seen = set()
    for i, item in enumerate(spread):
        if (item.topology_key, item.when_unsatisfiable) in seen:
            message = f"duplicate constraint for topologyKey {item.topology_key!r} and whenUnsatisfiable {item.when_unsatisfiable}"
            raise SpecError(f"{spread_path}[{i}]", message)
        seen.add((item.topology_key, item.when_unsatisfiable))
    return Constraints(
        node_selector=tuple(sorted(node_selector.items())),
        required_terms=required,
        preferred_terms=preferred,
        anti_affinity=anti,
        anti_affinity_preferred=anti_preferred,
        affinity=pod_affinity,
        affinity_preferred=pod_affinity_preferred,
        spread=spread,
        requests=_requests(spec, path),
        host_ports=host_ports(spec),
        tolerations=parse_tolerations(spec.get("tolerations")),
    )


def _port_number(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def host_ports(spec: dict) -> tuple[tuple[str, int], ...]:
    """The (protocol, hostPort) pairs of a pod spec's containers (validated by the node layer's podspec).

    With ``hostNetwork: true`` a port's hostPort defaults to its containerPort, as Kubernetes defaults it: the
    container listens on the host's own address, so two such pods never share a host.
    """
    on_host = spec.get("hostNetwork") is True
    found = set()
    for container in spec.get("containers") or ():
        for port in (container or {}).get("ports") or ():
            if not isinstance(port, dict):
                continue
            if _port_number(port.get("hostPort")):
                found.add((str(port.get("protocol") or "TCP"), port["hostPort"]))
            elif on_host and _port_number(port.get("containerPort")):
                found.add((str(port.get("protocol") or "TCP"), port["containerPort"]))
    return tuple(sorted(found))
