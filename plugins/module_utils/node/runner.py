# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bodies of the pod and pod_info modules (the module files are documentation)."""

from __future__ import annotations

import json
import os
import sys
import time

from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, systemctl
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import units as render
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, dns_label, labels, validate_pod

OWNER_KINDS = ["Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob"]

COMMON_ARGS = dict(
    owner=dict(type="str"),
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
)

POD_INFO_ARGS = dict(
    COMMON_ARGS,
    selector=dict(type="dict"),
    names=dict(type="list", elements="str"),
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
    kinds = {kind.lower(): kind for kind in OWNER_KINDS}
    result = {}
    base = os.path.join(host.state_dir, "owners")
    try:
        names = sorted(os.listdir(base))
    except FileNotFoundError:
        return result
    for filename in names:
        kind, _sep, rest = filename.partition(".")
        name = rest[: -len(".json")] if rest.endswith(".json") else None
        if kind in kinds and name:
            record = _read_owner_record(host, kinds[kind], name)
            if record is not None:
                result[f"{kinds[kind]}/{name}"] = record
    return result


def _settled(pod):
    """A pod a waiting caller can stop waiting for: ready, or finished for good."""
    return pod["ready"] or pod["phase"] in ("Succeeded", "Failed")


def run_pod(module):
    params = module.params
    try:
        owner = dns_label(params["owner"], "owner")
        pods = [validate_pod(pod, f"pods[{i}]") for i, pod in enumerate(params["pods"])]
        seen = set()
        for i, pod in enumerate(pods):
            if pod["name"] in seen:
                raise SpecError(f"pods[{i}].name", f"duplicate pod name {pod['name']!r}")
            seen.add(pod["name"])
        if params["state"] == "absent" and pods:
            raise SpecError("pods", "must be empty with state=absent (every pod of the owner is removed)")
        remove = [dns_label(n, f"remove[{i}]") for i, n in enumerate(params["remove"])]
        both = sorted(seen & set(remove))
        if both:
            raise SpecError("remove", f"{', '.join(both)} cannot be both in pods and in remove")
        host = converge.Host(params["state_dir"])
        units_before = systemctl.list_units(f"{render.UNIT_PREFIX}*")
        delete_volumes = [dns_label(n, f"delete_volumes[{i}]") for i, n in enumerate(params["delete_volumes"])]
        plan = converge.plan(host, params["owner_kind"], owner, pods, params["state"], sys.executable, units_before, params["prune"], remove, delete_volumes)
    except SpecError as exc:
        module.fail_json(msg=f"invalid pod spec: {exc}", field=exc.path)
    except (converge.NodeError, systemctl.SystemctlError, OSError) as exc:
        module.fail_json(msg=str(exc))

    record_path = _owner_record_path(host, params["owner_kind"], owner)
    old_record = _read_owner_record(host, params["owner_kind"], owner)
    record_changed = False
    if params["state"] == "absent":
        record_changed = old_record is not None
    elif params["owner_record"] is not None and params["owner_record"] != old_record:
        record_changed = True

    changed = plan.changed or record_changed
    if not module.check_mode:
        try:
            converge.apply(host, plan)
            if record_changed and params["state"] == "absent":
                os.unlink(record_path)
            elif record_changed:
                converge._write_atomic(record_path, json.dumps(params["owner_record"], sort_keys=True) + "\n", 0o600)
        except (systemctl.SystemctlError, OSError) as exc:
            module.fail_json(msg=f"converging pods failed: {exc}", plan=plan.summary())

    observed = converge.observe(host, params["owner_kind"], owner)
    if params["wait"] and not module.check_mode:
        deadline = time.time() + params["wait_timeout"]
        while not all(_settled(p) for p in observed) and time.time() < deadline:
            time.sleep(0.2)
            observed = converge.observe(host, params["owner_kind"], owner)
        if not all(_settled(p) for p in observed):
            module.fail_json(
                msg=f"pods not ready after {params['wait_timeout']}s: {', '.join(p['name'] for p in observed if not _settled(p))}",
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
    if module._diff:
        result["diff"] = plan.diff
    module.exit_json(**result)


def run_pod_info(module):
    params = module.params
    try:
        owner = dns_label(params["owner"], "owner") if params["owner"] is not None else None
        selector = labels(params["selector"], "selector") if params["selector"] else None
        names = [dns_label(n, f"names[{i}]") for i, n in enumerate(params["names"])] if params["names"] is not None else None
        host = converge.Host(params["state_dir"])
        pods = converge.observe(host, params["owner_kind"] if owner else None, owner, selector, names)
        record = _read_owner_record(host, params["owner_kind"], owner) if owner else None
        records = _all_owner_records(host) if owner is None else ({f"{params['owner_kind']}/{owner}": record} if record is not None else {})
    except SpecError as exc:
        module.fail_json(msg=f"invalid argument: {exc}", field=exc.path)
    except (systemctl.SystemctlError, OSError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, pods=pods, owner_record=record, owner_records=records, observed_at=time.time())
