# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""persistentVolumeClaimRetentionPolicy: which claims to delete, and where.

* ``Retain`` (default) NEVER names a claim: the data and the pin stay, and
  the identity comes back on the same node with the same data.
* ``whenScaled: Delete``: the claims of identities outside the ordinals,
  once their pod is SEEN gone (never while it may run on a NotReady node),
  on the node that holds them; the pin is dropped with them.
* ``whenDeleted: Delete``: every claim of every pinned identity, for
  ``state: absent`` (``claims_to_delete_on_delete``).
"""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.identity import claim_names
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.record import pins
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.statefulset.spec import DELETE


def claim_templates(record: dict, spec) -> list[str]:
    """Claim template names of the spec and of the record (a template removed since still has claims)."""
    names = list(spec.claim_names)
    return names + [n for n in record.get("claim_templates") or [] if n not in names]


def _by_node(entries) -> dict[str, tuple[str, ...]]:
    result: dict[str, list[str]] = {}
    for node, claims in entries:
        result.setdefault(node, []).extend(claims)
    return {node: tuple(sorted(claims)) for node, claims in sorted(result.items()) if claims}


def scaled_claims(spec, record: dict, gone: dict[int, str], ready_nodes: set[str]) -> dict[str, tuple[str, ...]]:
    """whenScaled: claims of identities outside the ordinals whose pods are gone (``gone``: ordinal → pinned node)."""
    if spec.when_scaled != DELETE:
        return {}
    templates = claim_templates(record, spec)
    wanted = set(spec.ordinals)
    return _by_node((node, claim_names(templates, spec.name, o)) for o, node in sorted(gone.items()) if o not in wanted and node in ready_nodes)


def claims_to_delete_on_delete(record: dict | None, spec) -> dict[str, tuple[str, ...]]:
    """whenDeleted (``state: absent``): node → claims of every identity the record pins there (Retain: nothing)."""
    if spec.when_deleted != DELETE or not record:
        return {}
    templates = claim_templates(record, spec)
    return _by_node((node, claim_names(templates, spec.name, o)) for o, node in sorted(pins(record).items()))
