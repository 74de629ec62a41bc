#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: service_files
short_description: The host side of Services, the Service files every host holds
version_added: 0.3.0
description:
  - Reports what the host knows for Services (its Service files, its node network, its pods with their addresses,
    labels, declared ports and readiness) and writes or removes Service files
    (C(<state_dir>/network/services/<namespace>.<name>.json)), then runs the host's network sync
    (C(<state_dir>/bin/hostfleet-net sync)) so that its nftables rules and DNS follow them.
  - M(hostfleet.workloads.service) and M(hostfleet.workloads.apply) call it on every node; use those modules unless
    you build your own orchestration.
author:
  - hostfleet.workloads developers (@hostfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
    support: full
options:
  write:
    description:
      - Service files to write (schema 1, as M(hostfleet.workloads.service) makes them); a file with the same content
        is left alone.
    type: list
    elements: dict
    default: []
  remove:
    description: Services whose files to remove, each C({namespace, name}).
    type: list
    elements: dict
    default: []
  state_dir:
    description: The node layer's state directory, an absolute path without C(.) or C(..) components.
    type: path
    default: /var/lib/hostfleet
seealso:
  - module: hostfleet.workloads.service
"""

EXAMPLES = r"""
- name: What this host knows for Services
  hostfleet.workloads.service_files:
  register: known
"""

RETURN = r"""
services:
  description: The host's Service files (after the changes), sorted by namespace and name.
  returned: always
  type: list
  elements: dict
node:
  description: The host's node network (C(node), C(node_index), C(address), C(service_cidr)), or null without one.
  returned: always
  type: dict
pods:
  description:
    - The host's pods as Services see them, C(name), C(namespace), C(labels), C(ip) (on the pod network; else null),
      C(host_network), C(ready), C(phase), C(hostname), C(subdomain), C(ports) (the containers' declared ports).
  returned: always
  type: list
  elements: dict
written:
  description: The Service files written or removed (C(namespace.name)).
  returned: always
  type: list
  elements: str
synced:
  description: Whether the host's network sync ran after writing (false in check mode, on a pure report, or when it is not installed).
  returned: always
  type: bool
"""

import json
import os
import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostfleet.workloads.plugins.module_utils.network import config as netconfig
from ansible_collections.hostfleet.workloads.plugins.module_utils.network import services as service_files
from ansible_collections.hostfleet.workloads.plugins.module_utils.network import sync as network_sync
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import converge, fileio, systemctl
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError, clean_abs_path, dns_label

ARGS = {
    "write": {"type": "list", "elements": "dict", "default": []},
    "remove": {"type": "list", "elements": "dict", "default": []},
    "state_dir": {"type": "path", "default": "/var/lib/hostfleet"},
}


def _text(data):
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def pod_views(state_dir):
    """The local pods with what endpoints are made of: one ``list-units`` for the readiness of them all."""
    host = converge.Host(state_dir)
    records = host.records()
    if not records:
        return []
    status = {pod["name"]: pod for pod in converge.observe(host)}
    views = []
    for name, record in sorted(records.items()):
        spec = record.get("spec") or {}
        seen = status.get(name) or {}
        network = record.get("network") or {}
        views.append({
            "name": name,
            "namespace": record.get("namespace") or "default",
            "labels": record.get("labels") or {},
            "ip": network.get("ip"),
            "host_network": not network.get("ip"),
            "ready": bool(seen.get("ready")),
            "phase": seen.get("phase") or "Unknown",
            "hostname": spec.get("hostname"),
            "subdomain": spec.get("subdomain"),
            "ports": [{key: port[key] for key in ("name", "protocol", "containerPort") if key in port}
                      for container in spec.get("containers") or [] for port in container.get("ports") or []],
        })
    return views


def run_sync(module, state_dir):
    """Installs and runs the host's network sync so nftables and DNS follow the files."""
    try:
        network_sync.install_script(state_dir, sys.executable)
        done = network_sync.run_sync(state_dir)
    except (RuntimeError, ValueError, OSError) as exc:
        module.fail_json(msg=f"the network sync failed: {exc}")
    for problem in done.get("problems") or []:
        module.warn(f"network sync: {problem}")
    return True


def main():
    module = AnsibleModule(argument_spec=ARGS, supports_check_mode=True)
    params = module.params
    state_dir = params["state_dir"]
    try:
        clean_abs_path(state_dir, "state_dir")
        wanted = {}
        for i, data in enumerate(params["write"]):
            service_files.check_service(data, f"write[{i}]")
            dns_label(data["namespace"], f"write[{i}].namespace")
            dns_label(data["name"], f"write[{i}].name")
            wanted[service_files.service_path(state_dir, data["namespace"], data["name"])] = _text(data)
        gone = []
        for i, item in enumerate(params["remove"]):
            namespace = dns_label(item.get("namespace"), f"remove[{i}].namespace")
            gone.append(service_files.service_path(state_dir, namespace, dns_label(item.get("name"), f"remove[{i}].name")))
    except (SpecError, service_files.ServiceFileError) as exc:
        module.fail_json(msg=f"invalid argument: {exc}")
    written = []
    try:
        for path, text in sorted(wanted.items()):
            try:
                with open(path) as handle:
                    same = handle.read() == text
            except FileNotFoundError:
                same = False
            if not same:
                written.append(os.path.basename(path)[: -len(service_files.SERVICE_SUFFIX)])
                if not module.check_mode:
                    fileio.ensure_dir(service_files.services_dir(state_dir))
                    fileio.write_atomic(path, text, 0o644)
        for path in gone:
            if os.path.exists(path):
                written.append(os.path.basename(path)[: -len(service_files.SERVICE_SUFFIX)])
                if not module.check_mode:
                    os.unlink(path)
        # Also when nothing changed here: the sync is cheap then, and rules a failed earlier sync left behind catch up.
        synced = run_sync(module, state_dir) if (wanted or gone) and not module.check_mode else False
        node = netconfig.read_node_config(state_dir)
        services = service_files.load_services(state_dir)
        pods = pod_views(state_dir)
    except (netconfig.NetworkConfigError, service_files.ServiceFileError, systemctl.SystemctlError, OSError) as exc:
        module.fail_json(msg=str(exc), written=written)
    node_view = {key: node[key] for key in ("node", "node_index", "address", "service_cidr")} if node else None
    module.exit_json(changed=bool(written), services=services, node=node_view, pods=pods, written=written, synced=synced)


if __name__ == "__main__":
    main()
