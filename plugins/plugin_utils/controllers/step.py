# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One reconcile step: its working state (``Planner``) and its result (``Step``), shared by the controllers.

``Planner`` is the working state of a step: the observation, the starts and
stops decided so far, and the scheduler's ``PlacementState``. Controllers ask it
questions in Kubernetes' vocabulary (how many pods does a revision have, how
many are available) and tell it what to do (start N pods of a revision, stop
pods, scale a revision to N); it places, names and records.

``Step`` is what a controller returns: per node the pods to start and stop,
the templates to start them from, the pods that could not be placed (with
reasons, never silently dropped), the new record, the status and the verdict
flags. Everything in it is JSON-able (``Step.to_json()``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod, PodView, health, is_available, is_ready
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.revisions import POD_TEMPLATE_HASH_LABEL, NameAllocator
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.templates import TemplateInfo
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node, NodeUsage
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.placement import Candidate, PlacedPod, PlacementState, PodTemplate


def observation(nodes: Iterable, pods: Iterable, other_usage: Mapping | None) -> tuple[list[Node], list[ObservedPod], dict[str, NodeUsage]]:
    """A controller's inputs as models: each may come as models or as their JSON (a controller accepts both)."""
    return (
        [n if isinstance(n, Node) else Node.from_json(n) for n in nodes],
        [p if isinstance(p, ObservedPod) else ObservedPod.from_json(p) for p in pods],
        {k: v if isinstance(v, NodeUsage) else NodeUsage.from_json(v) for k, v in (other_usage or {}).items()},
    )


@dataclass(frozen=True)
class PodStart:
    """One pod to start. ``template_key`` (optional): the key of its template in ``Step.templates``
    when pods of one revision differ (a StatefulSet's identities); empty means ``revision``."""

    name: str
    node: str
    revision: str
    template_key: str = ""

    @property
    def key(self) -> str:
        """The key of this pod's template in ``Step.templates``."""
        return self.template_key or self.revision

    def to_json(self) -> dict:
        result = {"name": self.name, "node": self.node, "revision": self.revision}
        if self.template_key:
            result["template_key"] = self.template_key
        return result


@dataclass(frozen=True)
class PodStop:
    name: str
    node: str
    revision: str
    reason: str

    def to_json(self) -> dict:
        return {"name": self.name, "node": self.node, "revision": self.revision, "reason": self.reason}


@dataclass(frozen=True)
class Pending:
    """``count`` pods of ``revision`` that fit on no node, and why."""

    revision: str
    count: int
    reason: str

    def to_json(self) -> dict:
        return {"revision": self.revision, "count": self.count, "reason": self.reason}


@dataclass(frozen=True)
class NodeActions:
    start: tuple[PodStart, ...] = ()
    stop: tuple[PodStop, ...] = ()

    def to_json(self) -> dict:
        return {"start": [s.to_json() for s in self.start], "stop": [s.to_json() for s in self.stop]}


@dataclass(frozen=True)
class Step:
    """The outcome of one reconcile step.

    * ``actions``: node name → NodeActions (only nodes with something to do).
      Apply all nodes in parallel (one node-module call per node).
    * ``templates``: revision hash → pod template (labels include
      ``pod-template-hash``, annotations the revision number) for every
      revision being started; a start with a ``template_key`` (per-pod
      templates, e.g. a StatefulSet's) finds its template under that key
      (``PodStart.key``).
    * ``pending``: pods that fit nowhere. ``lost``: names of pods on NotReady nodes.
    * ``record``: the new record, to store and pass back next time.
    * ``status``: Kubernetes-shaped status, conditions included.
    * ``done``: converged (every replica updated and available, nothing left to do).
    * ``finished``: stop looping (done, failed, or paused with nothing to do).
    * ``complete`` / ``failed`` / ``rolled_back``: the verdict on the requested spec.
    * ``description``: human lines for ``--check`` and logs; ``waiting_for``: why not done yet.
    * ``volumes_to_delete``: node → persistent volume claim names whose data must be deleted
      there (``/var/lib/hostfleet/volumes/<claimName>``), after this step's stops (StatefulSet
      ``persistentVolumeClaimRetentionPolicy: Delete``); empty for every other kind.
    """

    actions: dict[str, NodeActions]
    templates: dict[str, dict]
    pending: tuple[Pending, ...]
    lost: tuple[str, ...]
    record: dict
    status: dict
    done: bool
    finished: bool
    complete: bool = False
    failed: bool = False
    rolled_back: bool = False
    message: str = ""
    description: tuple[str, ...] = ()
    waiting_for: tuple[str, ...] = ()
    volumes_to_delete: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """No pod to start or stop."""
        return not self.actions

    @property
    def starts(self) -> list[PodStart]:
        return [s for node in sorted(self.actions) for s in self.actions[node].start]

    @property
    def stops(self) -> list[PodStop]:
        return [s for node in sorted(self.actions) for s in self.actions[node].stop]

    def wave(self) -> dict:
        """This step's wave for ``--check``: ``{"start": {node: [names]}, "stop": {node: [names]}}``."""
        start = {n: [s.name for s in a.start] for n, a in sorted(self.actions.items()) if a.start}
        stop = {n: [s.name for s in a.stop] for n, a in sorted(self.actions.items()) if a.stop}
        return {"start": start, "stop": stop}

    def to_json(self) -> dict:
        return {
            "actions": {n: a.to_json() for n, a in sorted(self.actions.items())},
            "templates": self.templates,
            "pending": [p.to_json() for p in self.pending],
            "lost": list(self.lost),
            "record": self.record,
            "status": self.status,
            "done": self.done,
            "finished": self.finished,
            "complete": self.complete,
            "failed": self.failed,
            "rolled_back": self.rolled_back,
            "message": self.message,
            "description": list(self.description),
            "waiting_for": list(self.waiting_for),
            "volumes_to_delete": {n: list(v) for n, v in sorted(self.volumes_to_delete.items())},
        }


@dataclass
class Planner:
    """Working state of one step (see module docstring)."""

    owner: str
    view: PodView
    nodes: list[Node]
    other_usage: Mapping[str, NodeUsage]
    templates: Mapping[str, TemplateInfo | None]
    counters: dict[str, int]
    fallback_labels: Mapping[str, str]
    min_ready_seconds: int
    now: float
    revision_order: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self):
        self.starts: list[PodStart] = []
        self.stops: list[PodStop] = []
        self.pending: list[Pending] = []
        self._stopped: set[str] = set()
        self._taken = self.view.names()
        self._allocators: dict[str, NameAllocator] = {}
        self._pod_templates: dict[str, PodTemplate] = {}
        self._active_on: dict[str, list[ObservedPod]] = {}
        for pod in self.view.active:
            self._active_on.setdefault(pod.node, []).append(pod)
        placed = [PlacedPod(p.name, p.node, p.revision, self.labels(p.revision), self._requests(p), self._host_ports(p)) for p in self.view.active]
        self.fleet = PlacementState(self.nodes, placed, self.other_usage)
        self._placed = {p.name: p for p in placed}

    def _host_ports(self, pod: ObservedPod):
        info = self.templates.get(pod.revision)
        return info.constraints.host_ports if info is not None else ()

    def _requests(self, pod: ObservedPod):
        """What a pod takes: its revision's template requests (the node layer need not report them)."""
        info = self.templates.get(pod.revision)
        return info.constraints.requests if info is not None else pod.requests

    # -- questions ---------------------------------------------------------
    def labels(self, revision: str) -> dict[str, str]:
        info = self.templates.get(revision)
        labels = dict(info.labels) if info else dict(self.fallback_labels)
        labels[POD_TEMPLATE_HASH_LABEL] = revision
        return labels

    def staying(self, revision: str | None = None) -> list[ObservedPod]:
        """Active observed pods not planned to stop (of one revision, or all)."""
        return [p for p in self.view.active if p.name not in self._stopped and (revision is None or p.revision == revision)]

    def staying_on(self, node: str) -> list[ObservedPod]:
        """Active observed pods on ``node`` not planned to stop, by name."""
        return [p for p in self._active_on.get(node, ()) if p.name not in self._stopped]

    def started(self, revision: str | None = None) -> int:
        return sum(1 for s in self.starts if revision is None or s.revision == revision)

    def size(self, revision: str | None = None) -> int:
        """Pods of a revision once this step is applied (Kubernetes' ReplicaSet spec.replicas)."""
        return len(self.staying(revision)) + self.started(revision)

    def available(self, revision: str | None = None) -> int:
        return sum(1 for p in self.staying(revision) if is_available(p, self.min_ready_seconds, self.now))

    def ready(self, revision: str | None = None) -> int:
        return sum(1 for p in self.staying(revision) if is_ready(p))

    def revisions(self) -> list[str]:
        """Revisions with active pods after this step, oldest first."""
        present = {p.revision for p in self.staying()} | {s.revision for s in self.starts}
        return sorted(present, key=self.order)

    def order(self, revision: str) -> tuple[int, str]:
        return (self.revision_order.get(revision, -1), revision)

    def can_start(self, revision: str) -> bool:
        return self.templates.get(revision) is not None

    # -- actions -----------------------------------------------------------
    def _allocator(self, revision: str) -> NameAllocator:
        if revision not in self._allocators:
            self._allocators[revision] = NameAllocator(self.owner, revision, self.counters.get(revision, 0), self._taken)
        return self._allocators[revision]

    def _pod_template(self, revision: str, info: TemplateInfo) -> PodTemplate:
        """The scheduler's view of a revision, one object per revision: the fleet keeps its placement index by it."""
        if revision not in self._pod_templates:
            self._pod_templates[revision] = PodTemplate(revision, self.labels(revision), info.constraints)
        return self._pod_templates[revision]

    def start(self, revision: str, count: int) -> int:
        """Place and start up to ``count`` pods of ``revision``; the rest is recorded as pending."""
        if count <= 0:
            return 0
        info = self.templates.get(revision)
        if info is None:
            self.pending.append(Pending(revision, count, "the template of this revision is not in the revision history"))
            return 0
        template = self._pod_template(revision, info)
        placed, why = self.fleet.place(template, count, self._allocator(revision))
        for pod in placed:
            self.starts.append(PodStart(pod.name, pod.node, revision))
        if len(placed) < count:
            self.pending.append(Pending(revision, count - len(placed), why))
        self.counters[revision] = self._allocator(revision).counter
        return len(placed)

    def start_named(self, revision: str, name: str, node: str | None = None, template_key: str = "") -> str | None:
        """Start ONE pod with a given name (a StatefulSet identity): on ``node`` when given (its data is
        there), else where the scheduler places it. Returns the node, or None (recorded as pending)."""
        info = self.templates.get(revision)
        if info is None:
            self.pending.append(Pending(revision, 1, "the template of this revision is not in the revision history"))
            return None
        template = self._pod_template(revision, info)
        if node is None:
            placed, why = self.fleet.place(template, 1, lambda: name)
            if not placed:
                self.pending.append(Pending(revision, 1, f"{name}: {why}"))
                return None
            node = placed[0].node
        else:
            target = self.fleet.nodes.get(node)
            why = self.fleet.reason(target, template) if target is not None else "the node is not in the fleet"
            if why:
                self.pending.append(Pending(revision, 1, f"{name} is pinned to node {node} (its volumes are there): {why}"))
                return None
            self.fleet.add(PlacedPod(name, node, revision, dict(template.labels), info.constraints.requests, info.constraints.host_ports))
        self._taken.add(name)
        self.starts.append(PodStart(name, node, revision, template_key))
        return node

    def stop(self, pods: Iterable[ObservedPod], reason: str) -> int:
        n = 0
        for pod in pods:
            if pod.name in self._stopped:
                continue
            self._stopped.add(pod.name)
            self.stops.append(PodStop(pod.name, pod.node, pod.revision, reason))
            if pod.name in self._placed:
                self.fleet.remove(self._placed[pod.name])
            n += 1
        return n

    def candidates(self, pods: Iterable[ObservedPod]) -> list[Candidate]:
        return [
            Candidate(self._placed[p.name], health(p, self.min_ready_seconds, self.now), self.revision_order.get(p.revision, -1), p.created)
            for p in pods
            if p.name in self._placed and p.name not in self._stopped
        ]

    def scale_down(self, pods: Iterable[ObservedPod], count: int, reason: str) -> int:
        """Stop ``count`` of ``pods``, chosen by the scheduler's victim order."""
        if count <= 0:
            return 0
        by_name = {p.name: p for p in self.view.active}
        victims = self.fleet.choose_victims(self.candidates(pods), count)
        return self.stop([by_name[v.name] for v in victims], reason)

    def unstop(self, pod: ObservedPod) -> None:
        """Take back a planned stop (used to rebalance a scale-down within budgets)."""
        self._stopped.discard(pod.name)
        self.stops = [s for s in self.stops if s.name != pod.name]
        self.fleet.unremove(self._placed[pod.name])

    def scale_to(self, revision: str, target: int, reason_down: str) -> None:
        """Start or stop pods of ``revision`` until it has ``target`` (placement permitting)."""
        size = self.size(revision)
        if size < target:
            self.start(revision, target - size)
        elif size > target:
            self.scale_down(self.staying(revision), size - target, reason_down)

    def remove_finished(self) -> None:
        """Succeeded/Failed pods of a long-running workload are dead: remove them (they are replaced)."""
        for pod in self.view.finished:
            self._stopped.add(pod.name)
            self.stops.append(PodStop(pod.name, pod.node, pod.revision, f"pod {pod.phase.lower()}"))

    # -- output ------------------------------------------------------------
    def actions(self) -> dict[str, NodeActions]:
        starts: dict[str, list[PodStart]] = {}
        stops: dict[str, list[PodStop]] = {}
        for start in self.starts:
            starts.setdefault(start.node, []).append(start)
        for stop in self.stops:
            stops.setdefault(stop.node, []).append(stop)
        return {
            node: NodeActions(tuple(sorted(starts.get(node, ()), key=lambda s: s.name)), tuple(sorted(stops.get(node, ()), key=lambda s: s.name)))
            for node in sorted(starts.keys() | stops.keys())
        }

    def merged_pending(self) -> tuple[Pending, ...]:
        merged: dict[tuple[str, str], int] = {}
        for p in self.pending:
            merged[(p.revision, p.reason)] = merged.get((p.revision, p.reason), 0) + p.count
        return tuple(Pending(rev, n, why) for (rev, why), n in sorted(merged.items()))

    def describe(self, revision_numbers: Mapping[str, int]) -> tuple[str, ...]:
        def rev(h):
            number = revision_numbers.get(h)
            return f"revision {number}" if number else f"revision {h}"

        lines = [f"start {s.name} on {s.node} ({rev(s.revision)})" for s in sorted(self.starts, key=lambda s: (s.node, s.name))]
        lines += [f"stop {s.name} on {s.node} ({rev(s.revision)}): {s.reason}" for s in sorted(self.stops, key=lambda s: (s.node, s.name))]
        lines += [f"pending: {p.count} pod(s) of {rev(p.revision)}: {p.reason}" for p in self.merged_pending()]
        return tuple(lines)
