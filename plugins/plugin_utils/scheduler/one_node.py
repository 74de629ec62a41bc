# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a workload that the fleet runs on one node goes: a CronJob's timer (the node that runs it between playbook
runs) and a bare Pod of ``apply``. Pure: no I/O.

``one`` (a CronJob's ``run_on`` default, a Pod): one eligible ready node, kept while it stays eligible and reachable
(moving it would restart it or scatter a CronJob's run history), else the one chosen by rendezvous hashing (highest
hash of name and node): stable as nodes come and go, and a node joining or leaving moves only its own workloads.
``every`` (a CronJob's ``run_on: every``): every eligible ready node. Eligible: the pod template's nodeSelector and
required node affinity match the node's labels, it tolerates the node's NoSchedule and NoExecute taints, and the
node has the extended resources (``nvidia.com/gpu``) and ephemeral-storage it requests in its capacity (what other
pods take of cpu and memory is not counted here).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.nodes import EPHEMERAL_STORAGE, Node
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.scheduler.taints import untolerated

RUN_ON = ("one", "every")


def rendezvous(name: str, nodes: Iterable[str]) -> str:
    """The node with the highest hash of (CronJob, node): a node joining or leaving moves only its own CronJobs."""
    return max(nodes, key=lambda node: hashlib.sha256(f"{name}/{node}".encode()).hexdigest())


def eligible_nodes(nodes: Iterable[Node], constraints) -> list[str]:
    """The ready nodes whose labels the pod template's node constraints (scheduler/constraints.py) accept and whose
    NoSchedule/NoExecute taints it tolerates (scheduler/taints.py), in order. A node that gets an untolerated NoExecute
    taint is no longer eligible: the workload leaves it (``choose_nodes``), as Kubernetes evicts it."""
    return [
        n.name
        for n in nodes
        if n.ready and untolerated(n.taints, constraints.tolerations) is None and constraints.matches_node_affinity(n) and _has_extended(n, constraints)
    ]


def _has_extended(node: Node, constraints) -> bool:
    """Whether the node's capacity holds what the pod requests of ephemeral-storage (unlimited when not named) and of
    each extended resource (none when not named, as Kubernetes counts it)."""
    have = dict(node.capacity.extended) if node.capacity is not None else {}
    return all(amount <= have.get(key, amount if key == EPHEMERAL_STORAGE else 0) for key, amount in constraints.requests.extended)


def most_preferred(nodes: Iterable[Node], constraints, eligible: Sequence[str]) -> list[str]:
    """The eligible nodes with the highest weight of preferred node affinity (all of them without preferences): where a
    workload that is not placed yet goes, as the scheduler ranks nodes by that score."""
    weights = {n.name: constraints.preference(n) for n in nodes if n.name in eligible}
    best = max(weights.values(), default=0)
    return [name for name in eligible if weights.get(name, 0) == best]


def choose_nodes(name: str, run_on: str, eligible: Sequence[str], installed: Sequence[str]) -> list[str]:
    """The node(s) that should hold the workload ``name``; ``installed``: where it is now (in the fleet's order).

    Empty when no node is eligible (the caller reports it).
    """
    if run_on not in RUN_ON:
        raise ValueError(f"run_on must be one of {', '.join(RUN_ON)}, not {run_on!r}")
    if not eligible:
        return []
    if run_on == "every":
        return list(eligible)
    kept = [node for node in installed if node in eligible]
    return [kept[0]] if kept else [rendezvous(name, eligible)]
