# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One daemon pod per eligible node, and how a new template reaches the nodes (Kubernetes' daemon_controller.go + update.go).

``manage`` is the DaemonSet's own loop, node by node (name order, deterministic):

* a ready node that is no longer eligible loses its pods (they were counted as
  ``numberMisscheduled`` until then);
* an eligible ready node without a pod gets one of the current revision (also
  with OnDelete); if it does not fit (capacity), that is reported as pending
  for THAT node, never placed elsewhere;
* an eligible node with several pods keeps one (two during a surge: an
  unavailable new pod next to an available old one);
* a NotReady node is left alone: its pod stays (daemon pods tolerate NotReady
  nodes), counts as unavailable, and nothing replaces it elsewhere.

``rolling_update`` then replaces old pods:

* maxSurge 0: the nodes without an available pod (NotReady nodes first, then
  missing, starting or failing pods) use up maxUnavailable; old pods that are
  not available are replaced at once (it costs no availability); available old
  pods are replaced (stop, then start in the same node call) while fewer than
  maxUnavailable nodes lack an available pod. A node whose new pod never becomes
  available holds one unit of the budget, not the whole rollout: with
  maxUnavailable >= 2 the other nodes keep being updated (swarmkit#1720).
* maxSurge > 0 (maxUnavailable is then not used, as in Kubernetes): the new pod
  starts next to the old one on up to maxSurge nodes at a time; the old one
  stops once the new one is available.

When a replacement does not fit next to the pod being stopped (capacity), the
start waits for the next step, when the stop is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import ObservedPod, is_available, is_ready
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.revisions import NameAllocator
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.step import Pending, Planner
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.placement import PodTemplate

MISSCHEDULED = "the node no longer matches the DaemonSet's nodeSelector/affinity"
DUPLICATE = "more than one daemon pod on the node"
REPLACED = "old revision, replaced"
REPLACED_UNAVAILABLE = "old revision, unavailable"
SURGED = "old revision, the new pod on the node is available"


@dataclass
class DaemonPlan:
    """One step of a DaemonSet over the Planner: which node gets what."""

    planner: Planner
    owner: str
    current: str
    nodes: dict[str, Node]
    eligible: set[str]
    deferred: list[str] = field(default_factory=list)
    # Not eligible, but its pods may stay (a NoSchedule taint the pods do not tolerate came after them: spec.continues).
    continuing: set[str] = field(default_factory=set)

    def __post_init__(self):
        self._taken = set(self.planner.view.names())
        self._allocators: dict[str, NameAllocator] = {}

    # -- questions ---------------------------------------------------------
    def pods_on(self, node: str) -> list[ObservedPod]:
        return self.planner.staying_on(node)

    def available(self, pod: ObservedPod) -> bool:
        return is_available(pod, self.planner.min_ready_seconds, self.planner.now)

    def rank(self, pod: ObservedPod) -> tuple:
        """Which pod of a node to keep (lowest first): available, current revision, ready, oldest."""
        return (not self.available(pod), pod.revision != self.current, not is_ready(pod), pod.created, pod.name)

    def ready_eligible(self) -> list[str]:
        return [n for n in sorted(self.eligible) if self.nodes[n].ready]

    # -- actions -----------------------------------------------------------
    def _name(self, revision: str) -> str:
        if revision not in self._allocators:
            counter = self.planner.counters.get(revision, 0)
            self._allocators[revision] = NameAllocator(self.owner, revision, counter, self._taken, short=True)
        name = self._allocators[revision]()
        self.planner.counters[revision] = self._allocators[revision].counter
        return name

    def start_on(self, node: str, revision: str) -> bool:
        """Start one pod of ``revision`` on ``node`` if it fits there (else pending for that node, or deferred)."""
        planner = self.planner
        info = planner.templates.get(revision)
        if info is None:
            planner.pending.append(Pending(revision, 1, f"node {node}: the template of this revision is not in the revision history"))
            return False
        why = planner.fleet.reason(self.nodes[node], PodTemplate(revision, planner.labels(revision), info.constraints))
        if why:
            if any(s.node == node for s in planner.stops):
                self.deferred.append(node)  # room once this step's stop there is done
            else:
                planner.pending.append(Pending(revision, 1, f"node {node}: {why}"))
            return False
        return planner.start_named(revision, self._name(revision), node) is not None

    def replace(self, pod: ObservedPod, reason: str) -> None:
        self.planner.stop([pod], reason)
        self.start_on(pod.node, self.current)


def manage(plan: DaemonPlan, surge: bool) -> None:
    """Misscheduled pods go, missing pods start, duplicates go (see the module docstring)."""
    for name in sorted(plan.nodes):
        if not plan.nodes[name].ready:
            continue
        pods = plan.pods_on(name)
        if name not in plan.eligible:
            if name not in plan.continuing:
                plan.planner.stop(pods, MISSCHEDULED)
        elif not pods:
            plan.start_on(name, plan.current)
        elif len(pods) > 1:
            plan.planner.stop([p for p in pods if p not in _keep(plan, pods, surge)], DUPLICATE)


def _keep(plan: DaemonPlan, pods: list[ObservedPod], surge: bool) -> list[ObservedPod]:
    new = sorted((p for p in pods if p.revision == plan.current), key=plan.rank)
    old = sorted((p for p in pods if p.revision != plan.current), key=plan.rank)
    if surge and new and old and not plan.available(new[0]) and plan.available(old[0]):
        return [new[0], old[0]]  # a surge in progress
    return [min(pods, key=plan.rank)]


def rolling_update(plan: DaemonPlan, max_surge: int, max_unavailable: int) -> None:
    if max_surge > 0:
        _surge(plan, max_surge)
    else:
        _unavailable(plan, max_unavailable)


def _unavailable(plan: DaemonPlan, max_unavailable: int) -> None:
    """maxSurge 0: at most ``max_unavailable`` eligible nodes without an available pod."""
    unavailable = 0
    candidates = []
    for name in sorted(plan.eligible):
        pods = plan.pods_on(name) if plan.nodes[name].ready else []
        if len(pods) != 1:
            unavailable += 1  # NotReady, or a pod still to start / that could not be placed
            continue
        pod = pods[0]
        if pod.revision == plan.current:
            unavailable += not plan.available(pod)
        elif not plan.available(pod):
            unavailable += 1
            plan.replace(pod, REPLACED_UNAVAILABLE)
        else:
            candidates.append(pod)
    for pod in candidates:
        if unavailable >= max_unavailable:
            break
        plan.replace(pod, REPLACED)
        unavailable += 1


def _surge(plan: DaemonPlan, max_surge: int) -> None:
    """maxSurge > 0: the new pod first, next to the old one; the old one goes when the new one is available."""
    surging = 0
    candidates = []
    for name in plan.ready_eligible():
        pods = plan.pods_on(name)
        new = [p for p in pods if p.revision == plan.current]
        old = [p for p in pods if p.revision != plan.current]
        if not old:
            continue
        if not new:
            if plan.available(old[0]):
                candidates.append(name)
            else:
                plan.replace(old[0], REPLACED_UNAVAILABLE)
        elif plan.available(new[0]):
            plan.planner.stop(old, SURGED)
        else:
            surging += 1
    room = max_surge - surging
    for name in candidates:
        if room <= 0:
            break
        room -= plan.start_on(name, plan.current)
