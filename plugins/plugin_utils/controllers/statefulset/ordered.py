# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Creating and condemning identities: OrderedReady and Parallel (Kubernetes' updateStatefulSet, first half).

``replicas``: ordinals of ``spec.ordinals`` in ascending order. A missing
identity is started (on its pinned node, or where the scheduler says the
first time); a dead pod (Succeeded/Failed) is removed (it comes back next
step). Under OrderedReady the walk HALTS at the first identity that is not
Running+Ready (available for minReadySeconds): nothing after it is created,
condemned or updated in this step.

Better than Kubernetes (kubernetes#67250): an identity that is not ready and
runs a revision that is no longer the update revision (e.g. the user reverted
a broken template) is replaced at once instead of blocking for ever; it
costs no availability, it is not available anyway. (RollingUpdate, ordinals
at or above the partition.)

``condemned``: identities outside the ordinals, highest first; under
OrderedReady one at a time, each gone (seen gone) before the next.
"""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.pods import is_available
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.fencing import Identities, Identity
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.spec import StatefulSetSpec
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.step import Pending, Planner


def node_lost_reason(ident: Identity, has_claims: bool) -> str:
    what = f"{ident.name}'s volume" if has_claims else ident.name
    return f"node {ident.pin} holding {what} is not ready (not started elsewhere: at most one pod per identity; see unsafeMoveOnNodeLoss)"


def revision_for(spec: StatefulSetSpec, planner: Planner, ordinal: int, current: str, update: str) -> str:
    """The revision a missing identity starts from: below the partition, the current one (when still startable)."""
    if spec.rolling and ordinal < spec.partition and planner.can_start(current):
        return current
    return update


def sync_replicas(
    spec: StatefulSetSpec, planner: Planner, idents: Identities, ready_nodes: set[str], current: str, update: str, start_pod
) -> tuple[bool, list[str]]:
    """Walk the ordinals; returns (halted, what it waits for). ``start_pod(ident, revision, node)`` starts one."""
    waiting: list[str] = []
    claims = bool(spec.claim_templates)
    for ordinal in spec.ordinals:
        ident = idents.get(ordinal, spec.name)
        pod = ident.pod
        wait = ""
        if pod is None:
            revision = revision_for(spec, planner, ordinal, current, update)
            if ident.pin is not None and ident.pin not in ready_nodes:
                if spec.unsafe_move_on_node_loss:
                    start_pod(ident, revision, None)
                    wait = f"{ident.name} to start (moved off NotReady node {ident.pin}: its volume data stays there)"
                else:
                    reason = node_lost_reason(ident, claims)
                    planner.pending.append(Pending(revision, 1, reason))
                    wait = reason
            else:
                start_pod(ident, revision, ident.pin)
                wait = f"{ident.name} to be Running and Ready"
        elif ident.finished:
            planner.stop([pod], f"pod {pod.phase.lower()}: recreated next step")
            wait = f"{ident.name} to be recreated"
        elif not is_available(pod, spec.min_ready_seconds, planner.now):
            if spec.rolling and ordinal >= spec.partition and pod.revision != update:
                planner.stop([pod], "not ready and not of the update revision: replaced at once")
                wait = f"{ident.name} to be replaced with the update revision"
            else:
                wait = f"{ident.name} to be Running and Ready"
        if wait:
            waiting.append(wait)
            if spec.ordered:
                return True, waiting
    return False, waiting


def condemned(spec: StatefulSetSpec, idents: Identities) -> list[Identity]:
    """Identities outside the ordinals that may still run, highest ordinal first."""
    wanted = set(spec.ordinals)
    return sorted(
        (i for i in idents.by_ordinal.values() if i.ordinal not in wanted and (i.pod is not None or i.unknown)),
        key=lambda i: -i.ordinal,
    )


def sync_condemned(spec: StatefulSetSpec, planner: Planner, idents: Identities) -> list[str]:
    """Stop condemned identities (highest first; one at a time under OrderedReady). Returns what it waits for."""
    waiting = []
    for ident in condemned(spec, idents):
        if ident.unknown:
            waiting.append(f"{ident.name} (scaled down) to be seen gone: its node {ident.pin} is not ready")
        elif ident.pod is not None:  # always: condemned() yields only identities with a pod or unknown
            planner.stop([ident.pod], "scaled down")
            waiting.append(f"{ident.name} (scaled down) to be gone")
        if spec.ordered:
            break
    return waiting
