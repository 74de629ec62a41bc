# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who is each identity now: its one live pod, the node that holds its data, and whether it may be alive unseen.

At most one pod per identity, EVER. An identity is pinned to the node of its
first placement (its volumes are there). From one observation:

* pods of the identity on ready nodes: the one on the pinned node is kept
  (else the healthiest, oldest one, and the pin moves to it: the data in use
  is there); any other copy is a duplicate to stop;
* a pod on a NotReady node is invisible or unreachable: if that node is the
  pin and the identity was running (record ``running``) or a pod is seen
  there, the identity is FENCED (``unknown``): it may still run, so it is
  never started elsewhere (unless ``unsafeMoveOnNodeLoss``) and it cannot be
  counted as gone;
* a copy on a NotReady node that is not the pin (left behind by an unsafe
  move) is ignored until its node returns, then stopped as a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import FINISHED_PHASES, ObservedPod, PodView, health
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.identity import ordinal_of, pod_name


@dataclass
class Identity:
    ordinal: int
    name: str
    pin: str | None = None
    pod: ObservedPod | None = None
    unknown: bool = False
    duplicates: list[ObservedPod] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.pod is not None and self.pod.phase in FINISHED_PHASES


@dataclass
class Identities:
    by_ordinal: dict[int, Identity]
    strays: list[ObservedPod]

    def get(self, ordinal: int, owner: str) -> Identity:
        if ordinal not in self.by_ordinal:
            self.by_ordinal[ordinal] = Identity(ordinal, pod_name(owner, ordinal))
        return self.by_ordinal[ordinal]


def observe(owner: str, view: PodView, ready_nodes: set[str], pins: dict[int, str], running: Iterable[int], min_ready: int, now: float) -> Identities:
    seen: dict[int, list[ObservedPod]] = {}
    lost: dict[int, list[ObservedPod]] = {}
    strays = []
    for pod in view.active + view.finished:
        ordinal = ordinal_of(owner, pod.name)
        if ordinal is None:
            strays.append(pod)
        else:
            seen.setdefault(ordinal, []).append(pod)
    for pod in view.lost:
        ordinal = ordinal_of(owner, pod.name)
        if ordinal is not None:
            lost.setdefault(ordinal, []).append(pod)
    was_running = set(running)
    result = Identities({}, strays)
    for ordinal in sorted(set(seen) | set(lost) | set(pins) | was_running):
        ident = result.get(ordinal, owner)
        ident.pin = pins.get(ordinal)
        pods = seen.get(ordinal, [])
        if pods:
            on_pin = [p for p in pods if p.node == ident.pin]
            keep = on_pin[0] if on_pin else min(pods, key=lambda p: (-health(p, min_ready, now), p.created, p.node))
            ident.pod = keep
            ident.pin = keep.node
            ident.duplicates = [p for p in pods if p is not keep]
        elif ident.pin is not None and ident.pin not in ready_nodes:
            ident.unknown = ordinal in was_running or any(p.node == ident.pin for p in lost.get(ordinal, []))
    return result
