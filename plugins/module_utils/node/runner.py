# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bodies of the pod and pod_info modules (the module files are documentation)."""

from __future__ import annotations

import json
import os
import sys
import time

from ansible_collections.hostfleet.workloads.plugins.module_utils import kinds
from ansible_collections.hostfleet.workloads.plugins.module_utils.network import config as network_config
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, namespaces, node_facts, podnet, systemctl
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import lease as node_lease
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import units as render
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import (
    SpecError,
    clean_abs_path,
    dns_label,
    labels,
    node_name,
    resource_warnings,
    validate_pod,
)

# The choices of owner_kind (a list, as module argument specs have them).
OWNER_KINDS = list(kinds.OWNER_KINDS)

COMMON_ARGS = dict(
    owner=dict(type="str"),
    namespace=dict(type="str"),
    owner_kind=dict(type="str", default="Pod", choices=OWNER_KINDS),
    state_dir=dict(type="path", default="/var/lib/hostfleet"),
)

POD_ARGS = dict(
    COMMON_ARGS,
    owner=dict(type="str", required=True),
    pods=dict(type="list", elements="dict", default=[]),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    prune=dict(type="bool", default=True),
    remove=dict(type="list", elements="str", default=[]),
    delete_volumes=dict(type="list", elements="str", default=[]),
    owner_record=dict(type="dict"),
    wait=dict(type="bool", default=False),
    wait_timeout=dict(type="int", default=120),
    lease=dict(type="dict"),
    pod_network=dict(type="dict", options=dict(cidr=dict(type="str", required=True), bridge=dict(type="str", default="hf0"))),
    node_facts=dict(type="bool", default=False),
)

POD_INFO_ARGS = dict(
    COMMON_ARGS,
    selector=dict(type="dict"),
    names=dict(type="list", elements="str"),
    lease=dict(type="dict"),
    node_facts=dict(type="bool", default=False),
)


def _owner_record_path(host, kind, name):
    return os.path.join(host.state_dir, "owners", f"{kind.lower()}.{name}.json")


def _read_owner_record(host, kind, name):
    try:
        with open(_owner_record_path(host, kind, name)) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _all_owner_records(host):
    """{"Kind/name": record} of every owner that stored a record on this host."""
    by_file_prefix = {kind.lower(): kind for kind in OWNER_KINDS}
    result = {}
    base = os.path.join(host.state_dir, "owners")
    try:
        names = sorted(os.listdir(base))
    except FileNotFoundError:
        return result
    for filename in names:
        kind, _sep, rest = filename.partition(".")
        name = rest[: -len(".json")] if rest.endswith(".json") else None
        if kind in by_file_prefix and name:
            record = _read_owner_record(host, by_file_prefix[kind], name)
            if record is not None:
                result[f"{by_file_prefix[kind]}/{name}"] = record
    return result


def _validate_pods_either_network(raw_pods):
    """The pods' normal forms, checked before the host is read (its node.json says which network they join): a pod
    valid on neither network is refused, naming the field (the pod network's complaint about hostNetwork aside)."""
    result = []
    for i, pod in enumerate(raw_pods):
        try:
            result.append(validate_pod(pod, f"pods[{i}]", False))
        except SpecError as on_host:
            try:
                result.append(validate_pod(pod, f"pods[{i}]", True))
            except SpecError as on_pod_network:
                raise on_pod_network if on_host.path.endswith(".spec.hostNetwork") else on_host from None
    return result


def _validate_pods_on_node_network(raw_pods, records):
    """The pods' normal forms on a node whose pod network is node.json's: a pod running on the host's network whose
    spec did not change stays there as it runs (converge.stays_on_host_network); every other pod joins the pod
    network unless it says hostNetwork: true."""
    result = []
    for i, pod in enumerate(raw_pods):
        try:
            before = validate_pod(pod, f"pods[{i}]", False)
        except SpecError:
            before = None  # hostNetwork: false, or invalid (the validation below names the field)
        if before is not None and converge.stays_on_host_network(records.get(before["name"]), before["spec"]):
            result.append(before)
        else:
            result.append(validate_pod(pod, f"pods[{i}]", True))
    return result


def _host_ip(node_config):
    return node_config["address"] if node_config is not None else None


def _in_namespace(params, name):
    """The node layer's name (namespaces.py) of ``name`` in the call's ``namespace``; without one, ``name`` as given.

    Workload tasks pass node names (``<namespace>_<name>`` outside default) with no namespace; a person calling the
    module names the namespace instead.
    """
    if params["namespace"] is None or not isinstance(name, str):
        return name
    return namespaces.node_name(dns_label(params["namespace"], "namespace"), name)


def _settled(pod, restart_policy=None):
    """A pod a waiting caller can stop waiting for: ready, or finished for good.

    A container this converge just restarted is "terminated" for a moment between its stop and its start: with
    restartPolicy Always that ends no pod (nor does a failure with OnFailure), so only a finish its policy keeps
    counts. ``restart_policy`` None (a pod of the owner that this call did not send) keeps any finish.
    """
    if pod["ready"]:
        return True
    if restart_policy == "Always":
        return False
    if restart_policy == "OnFailure":
        return pod["phase"] == "Succeeded"
    return pod["phase"] in ("Succeeded", "Failed")


def run_pod(module):
    params = module.params
    network_lock = None
    try:
        # Everything that names a path or a unit is checked before anything is read or touched.
        clean_abs_path(params["state_dir"], "state_dir")
        owner = node_name(_in_namespace(params, params["owner"]), "owner")
        if params["namespace"] is not None:
            params["pods"] = [dict(p, name=_in_namespace(params, p.get("name"))) if isinstance(p, dict) else p for p in params["pods"]]
        network = podnet.validate_config(params["pod_network"]) if params["pod_network"] is not None else None
        if network is not None:
            pods = [validate_pod(pod, f"pods[{i}]", True) for i, pod in enumerate(params["pods"])]
        else:
            pods = _validate_pods_either_network(params["pods"])
        seen = set()
        for i, pod in enumerate(pods):
            if pod["name"] in seen:
                raise SpecError(f"pods[{i}].name", f"duplicate pod name {pod['name']!r}")
            seen.add(pod["name"])
        if params["state"] == "absent" and pods:
            raise SpecError("pods", "must be empty with state=absent (every pod of the owner is removed)")
        remove = [node_name(_in_namespace(params, n), f"remove[{i}]") for i, n in enumerate(params["remove"])]
        both = sorted(seen & set(remove))
        if both:
            raise SpecError("remove", f"{', '.join(both)} cannot be both in pods and in remove")
        # Claim names, as spec.volumes[].persistentVolumeClaim.claimName: labels, so never a path (volumes/<claim>).
        delete_volumes = [dns_label(n, f"delete_volumes[{i}]") for i, n in enumerate(params["delete_volumes"])]
        node_config = network_config.read_node_config(params["state_dir"])
        host = converge.Host(params["state_dir"])
        if network is None and node_config is not None:
            # The node's pod network (the cluster_network task's node.json) is the default, as Kubernetes' hostNetwork: false.
            network = {"cidr": node_config["cidr"], "bridge": node_config["bridge"]}
            pods = _validate_pods_on_node_network(params["pods"], host.records())
        elif network is None:
            pods = [validate_pod(pod, f"pods[{i}]") for i, pod in enumerate(params["pods"])]
        units_before = systemctl.list_units(f"{render.UNIT_PREFIX}*")
        lease = node_lease.validate(params["lease"], ops=("acquire",)) if params["lease"] is not None else None
        if lease is not None and (lease["kind"] or params["owner_kind"], lease["name"] or owner) != (params["owner_kind"], owner):
            raise SpecError("lease", f"is the lease of {lease['kind']} {lease['name']}, not of the owner {params['owner_kind']} {owner}")
        if network is not None and not module.check_mode:
            # Addresses are planned from the pod records and written with them: one converge at a time on this host.
            network_lock = podnet.lock(host.state_dir).__enter__()
        plan = converge.plan(
            host, params["owner_kind"], owner, pods, params["state"], sys.executable, units_before, params["prune"], remove, delete_volumes, network,
            _host_ip(node_config), node_config,
        )
    except SpecError as exc:
        module.fail_json(msg=f"invalid pod spec: {exc}", field=exc.path)
    except (converge.NodeError, systemctl.SystemctlError, network_config.NetworkConfigError, OSError) as exc:
        module.fail_json(msg=str(exc))

    for i, pod in enumerate(pods):
        # Accepted but changed on the host (a CPU limit below the smallest quota): said in the task result.
        for warning in resource_warnings(pod["spec"], f"pods[{i}].spec"):
            module.warn(warning)
    record_path = _owner_record_path(host, params["owner_kind"], owner)
    old_record = _read_owner_record(host, params["owner_kind"], owner)
    record_changed = False
    if params["state"] == "absent":
        record_changed = old_record is not None
    elif params["owner_record"] is not None and params["owner_record"] != old_record:
        record_changed = True

    changed = plan.changed or record_changed
    if not module.check_mode:
        _fence(module, params["state_dir"], params["owner_kind"], owner, lease)
        try:
            converge.apply(host, plan)
            # The pods run; Services the host's rules left out (or a failed sync) are the user's to know, not a failure.
            for problem in plan.network_problems:
                module.warn(f"network sync: {problem}")
            if record_changed and params["state"] == "absent":
                os.unlink(record_path)
            elif record_changed:
                converge._write_atomic(record_path, json.dumps(params["owner_record"], sort_keys=True) + "\n", 0o600)
        except (systemctl.SystemctlError, OSError) as exc:
            module.fail_json(msg=f"converging pods failed: {exc}", plan=plan.summary())
    if network_lock is not None:
        network_lock.__exit__(None, None, None)

    host_ip = _host_ip(node_config)
    observed = converge.observe(host, params["owner_kind"], owner, host_ip=host_ip)
    if params["wait"] and not module.check_mode:
        deadline = time.time() + params["wait_timeout"]
        policies = {pod["name"]: pod["spec"].get("restartPolicy", "Always") for pod in pods} if params["state"] == "present" else {}
        while not all(_settled(p, policies.get(p["name"])) for p in observed) and time.time() < deadline:
            time.sleep(0.2)
            observed = converge.observe(host, params["owner_kind"], owner, host_ip=host_ip)
        if not all(_settled(p, policies.get(p["name"])) for p in observed):
            module.fail_json(
                msg=f"pods not ready after {params['wait_timeout']}s: {', '.join(p['name'] for p in observed if not _settled(p, policies.get(p['name'])))}",
                changed=changed,
                pods=observed,
                **plan.summary(),
            )
    result = dict(
        changed=changed,
        pods=observed,
        owner_record=params["owner_record"] if record_changed and params["state"] == "present" else (None if params["state"] == "absent" else old_record),
        observed_at=time.time(),
        **plan.summary(),
    )
    if params["node_facts"]:
        result["node_facts"] = node_facts.facts()  # the workload's first look at this node: its labels (no extra round)
    if module._diff:
        result["diff"] = plan.diff
    module.exit_json(**result)


def _fence(module, state_dir, kind, owner, lease):
    """Act only under the workload's current lease here (lease.py): the caller's, granted or renewed now.

    Without a lease argument (a direct call), act only if no run holds the workload's lease.
    """
    try:
        answer = node_lease.apply(state_dir, kind, owner, lease or {"op": "read", "holder": "-", "token": 1})
    except OSError as exc:
        module.fail_json(msg=f"reading the lease of {kind} {owner} failed: {exc}")
    holder = answer["holder"]
    if lease is None:
        if holder is not None:
            module.fail_json(msg=f"{kind} {owner} is being changed by another run: {node_lease.describe(holder)}; nothing changed", lease=answer)
        return
    if not answer["granted"]:
        who = f"held here by {node_lease.describe(holder)}" if holder else f"a newer run took it over (token {answer['hwm']} > {lease['token']})"
        module.fail_json(msg=f"stale lease: this run no longer holds the lease of {kind} {owner} ({who}); nothing changed", lease=answer, lease_refused=True)


def run_pod_info(module):
    params = module.params
    try:
        clean_abs_path(params["state_dir"], "state_dir")
        owner = node_name(_in_namespace(params, params["owner"]), "owner") if params["owner"] is not None else None
        lease = node_lease.validate(params["lease"]) if params["lease"] is not None else None
        if lease is not None:
            lease["kind"], lease["name"] = lease["kind"] or params["owner_kind"], lease["name"] or owner
            if lease["name"] is None:
                raise SpecError("lease.name", "is required without owner (a lease belongs to one workload)")
            if lease["kind"] not in OWNER_KINDS:
                raise SpecError("lease.kind", f"must be one of {', '.join(OWNER_KINDS)}")
        selector = labels(params["selector"], "selector") if params["selector"] else None
        names = [node_name(_in_namespace(params, n), f"names[{i}]") for i, n in enumerate(params["names"])] if params["names"] is not None else None
        host = converge.Host(params["state_dir"])
        host_ip = _host_ip(network_config.read_node_config(params["state_dir"]))
        pods = converge.observe(host, params["owner_kind"] if owner else None, owner, selector, names, host_ip=host_ip)
        if params["namespace"] is not None:
            pods = [p for p in pods if p["namespace"] == dns_label(params["namespace"], "namespace")]
        record = _read_owner_record(host, params["owner_kind"], owner) if owner else None
        records = _all_owner_records(host) if owner is None else ({f"{params['owner_kind']}/{owner}": record} if record is not None else {})
    except SpecError as exc:
        module.fail_json(msg=f"invalid argument: {exc}", field=exc.path)
    except (systemctl.SystemctlError, network_config.NetworkConfigError, OSError) as exc:
        module.fail_json(msg=str(exc))
    extra = {}
    if lease is not None:
        try:
            # Piggy-backed on the observation: taking, renewing or releasing the lease costs no extra round.
            extra["lease"] = node_lease.apply(params["state_dir"], lease["kind"], lease["name"], lease, check_mode=module.check_mode)
        except OSError as exc:
            module.fail_json(msg=f"lease of {lease['kind']} {lease['name']}: {exc}")
    if params["node_facts"]:
        extra["node_facts"] = node_facts.facts()  # asked by a run's first observation: the node's labels (no extra round)
    module.exit_json(changed=False, pods=pods, owner_record=record, owner_records=records, observed_at=time.time(), **extra)
