# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Observed pods, as the node layer reports them, and how the controllers classify them.

A pod is, for every controller:

* **lost** when its node is NotReady (unreachable) or unknown: it is not
  available, it is not counted (it is replaced elsewhere), and it cannot be
  acted upon until the node returns; unless it is **unknown** (its node is
  unreachable but its grace has not run out, controllers/unreachable.py):
  then it is active, counted and never available (not replaced yet);
* **finished** when its phase is Succeeded or Failed (for a long-running
  workload it is dead: it is removed and replaced, like Kubernetes'
  ReplicaSet ignores inactive pods);
* **active** otherwise (Pending, Running, Unknown on a ready node).

An active pod is **available** when it is Running and has been ready for at
least ``minReadySeconds``: ``ready_since + minReadySeconds <= now``; a pod that
restarted (a container exited and systemd started it again) for at least
``RESTARTED_READY_SECONDS`` too: a crash-looping container is up for moments
between back-offs (nginx retries a taken port for 2.5 s), and a task must not
end on such a moment reporting it available (in Kubernetes it is not ready in
CrashLoopBackOff).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import Node, Resources

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
FINISHED_PHASES = ("Succeeded", "Failed")

# Health ranks: the lower, the sooner a pod goes when scaling down.
HEALTH_PENDING = 0
HEALTH_NOT_READY = 1
HEALTH_READY = 2
HEALTH_AVAILABLE = 3
# The kubelet's first crash-loop back-off: a restarted pod counts as available once it outlived it.
RESTARTED_READY_SECONDS = 10


@dataclass(frozen=True)
class ObservedPod:
    name: str
    node: str
    revision: str
    phase: str
    ready: bool
    ready_since: float | None
    created: float
    restart_count: int = 0
    requests: Resources = Resources(0, 0, 1)
    # Why a container waits, as `kubectl get pods` shows it (ErrImagePull, CrashLoopBackOff...), and the detail.
    reason: str = ""
    message: str = ""
    # Its node cannot be reached and its grace has not run out (controllers/unreachable.py): what the record last
    # placed there, counted and unavailable, neither replaced nor reachable by a stop.
    unknown: bool = False

    def to_json(self) -> dict:
        waiting = {"reason": self.reason, "message": self.message} if self.reason else {}
        return {
            "name": self.name,
            "node": self.node,
            "revision": self.revision,
            "phase": self.phase,
            "ready": self.ready,
            "ready_since": self.ready_since,
            "created": self.created,
            "restart_count": self.restart_count,
            "requests": self.requests.to_json(),
            **waiting,
            **({"unknown": True} if self.unknown else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping) -> ObservedPod:
        phase = data.get("phase") or "Unknown"
        if phase not in PHASES:
            raise ValueError(f"pod {data.get('name')!r}: phase must be one of {', '.join(PHASES)}, got {phase!r}")
        ready_since = data.get("ready_since")
        return cls(
            name=str(data["name"]),
            node=str(data["node"]),
            revision=str(data.get("revision") or ""),
            phase=phase,
            ready=bool(data.get("ready")),
            ready_since=float(ready_since) if ready_since is not None else None,
            created=float(data.get("created") or 0.0),
            restart_count=int(data.get("restart_count") or 0),
            requests=Resources.from_json(data.get("requests")) if data.get("requests") else Resources(0, 0, 1),
            reason=str(data.get("reason") or ""),
            message=str(data.get("message") or ""),
            unknown=bool(data.get("unknown")),
        )


def is_available(pod: ObservedPod, min_ready_seconds: int, now: float) -> bool:
    if pod.restart_count > 0:
        min_ready_seconds = max(min_ready_seconds, RESTARTED_READY_SECONDS)
    return pod.phase == "Running" and pod.ready and pod.ready_since is not None and pod.ready_since + min_ready_seconds <= now


def is_ready(pod: ObservedPod) -> bool:
    return pod.phase == "Running" and pod.ready


def health(pod: ObservedPod, min_ready_seconds: int, now: float) -> int:
    if pod.phase != "Running":
        return HEALTH_PENDING
    if not pod.ready:
        return HEALTH_NOT_READY
    return HEALTH_AVAILABLE if is_available(pod, min_ready_seconds, now) else HEALTH_READY


@dataclass
class PodView:
    """One observation, classified. Lists are sorted by name (determinism)."""

    active: list[ObservedPod] = field(default_factory=list)
    lost: list[ObservedPod] = field(default_factory=list)
    finished: list[ObservedPod] = field(default_factory=list)

    def revisions(self) -> set[str]:
        """Revisions that still have pods somewhere (active or lost)."""
        return {p.revision for p in self.active} | {p.revision for p in self.lost}

    def names(self) -> set[str]:
        return {p.name for p in self.active} | {p.name for p in self.lost} | {p.name for p in self.finished}


def classify(pods: Iterable[ObservedPod], nodes: Iterable[Node]) -> PodView:
    ready_nodes = {n.name for n in nodes if n.ready}
    view = PodView()
    for pod in sorted(pods, key=lambda p: p.name):
        if pod.node not in ready_nodes and not pod.unknown:
            view.lost.append(pod)
        elif pod.phase in FINISHED_PHASES:
            view.finished.append(pod)
        else:
            view.active.append(pod)
    return view
