#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_network
short_description: One host's part of the cluster network (the node side of cluster_network)
version_added: 0.3.0
description:
  - The module M(hostfleet.workloads.cluster_network) runs on each host; use that task, not this module.
  - With O(step=observe), reports the host's node.json and its IPv4 addresses, changing nothing.
  - With O(step=apply) and O(state=present), makes the kernel hold what O(node_config) says (the bridge and its
    gateway address, C(net.ipv4.ip_forward), routes to every peer's CIDR, directly or over the VXLAN device
    C(hfvx), the Service policy rules and tables), writes node.json atomically, installs and enables
    C(hostfleet-network.service) (re-applies all of it at boot), installs and runs the network sync
    (C(hostfleet-net)) and installs and starts the cluster DNS unit C(hostfleet-dns.service).
  - With O(step=apply) and O(state=absent), removes all of that (node.json too) but no pod; the bridge stays while
    pods are attached to it.
author:
  - hostfleet.workloads developers (@hostfleet)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
    support: full
options:
  step:
    description: V(observe) reads, V(apply) changes the host.
    type: str
    choices: [observe, apply]
    default: observe
  node_config:
    description: The host's node.json (O(step=apply), O(state=present)), as M(hostfleet.workloads.cluster_network) computes it.
    type: dict
  state:
    description: V(present) sets the network up as O(node_config) says, V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  state_dir:
    description: The node layer's state directory, an absolute path.
    type: path
    default: /var/lib/hostfleet
"""

EXAMPLES = r"""
- name: Read what the host holds (the cluster_network task does this)
  hostfleet.workloads.node_network:
    step: observe
"""

RETURN = r"""
node_config:
  description: O(step=observe) the host's node.json, null when there is none (or it is unreadable, with a warning).
  returned: when step is observe
  type: dict
networks:
  description: O(step=observe) the host's IPv4 addresses with their prefix (V(10.77.2.11/24)), loopback and the cluster network's own devices left out.
  returned: when step is observe
  type: list
  elements: str
commands:
  description: The C(ip)/C(bridge)/C(sysctl) commands run (in check mode, that would run) on the host.
  returned: when step is apply
  type: list
  elements: str
changes:
  description: What else changed (node.json, the boot unit, the sync script, the DNS unit, the network sync's result).
  returned: when step is apply
  type: list
  elements: str
"""

import json
import os
import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostfleet.workloads.plugins.module_utils.network import config, dns, routes, sync
from ansible_collections.hostfleet.workloads.plugins.module_utils.node import fileio

UNIT_DIR = "/etc/systemd/system"
NFT_TABLE = ("ip", "hostfleet")


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _command(module, argv, check=True):
    rc, out, err = module.run_command(argv)
    if check and rc != 0:
        raise routes.RoutesError(f"{' '.join(argv)} failed ({rc}): {err.strip() or out.strip()}")
    return rc, out


def _systemctl(module, *args, check=True):
    return _command(module, ["systemctl", *args], check)[0]


def own_device(name):
    return name in (config.VXLAN_DEVICE,) or name.startswith("hfv") or name == "lo"


def networks(module, bridge):
    found = []
    for link in json.loads(_command(module, [routes.IP, "-j", "addr", "show"])[1] or "[]"):
        name = link.get("ifname", "")
        if own_device(name) or name == bridge:
            continue
        for info in link.get("addr_info", []):
            if info.get("family") == "inet" and info.get("scope") == "global":
                found.append(f"{info['local']}/{info['prefixlen']}")
    return found


def node_json_text(node):
    return json.dumps(node, indent=2, sort_keys=True) + "\n"


def boot_unit_text(state_dir, python):
    script = os.path.join(state_dir, "bin", config.ROUTES_SCRIPT)
    return (
        "# Managed by hostfleet.workloads (cluster_network); changes here are overwritten.\n"
        "[Unit]\n"
        "Description=hostfleet cluster network: routes to the other nodes' pods, Service rules\n"
        "After=network-online.target\n"
        "Wants=network-online.target\n"
        "\n[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        f"ExecStart={python} -I -S {script} apply {state_dir}\n"
        f"ExecStart={python} -I -S {sync.script_path(state_dir)} sync {state_dir}\n"
        "\n[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def _install(path, text, mode, check_mode):
    if _read(path) == text:
        return False
    if not check_mode:
        fileio.ensure_dir(os.path.dirname(path), 0o755)
        fileio.write_atomic(path, text, mode)
    return True


def _remove(path, check_mode):
    if not os.path.lexists(path):
        return False
    if not check_mode:
        os.unlink(path)
    return True


def present(module, state_dir, node, check_mode):
    previous = _previous(state_dir, module)
    commands = routes.converge(node, previous, check_mode)
    changes = []
    # written_at only orders disagreeing files (cidrs.allocate): a file that says the same is kept as it is.
    same = previous is not None and {k: v for k, v in previous.items() if k != "written_at"} == {k: v for k, v in node.items() if k != "written_at"}
    path = config.node_config_path(state_dir)
    if not same:
        changes.append(f"{path} written")
        if not check_mode:
            fileio.ensure_dir(config.network_dir(state_dir), 0o755)
            fileio.write_atomic(path, node_json_text(node), 0o644)
    python = sys.executable
    script = routes.script_source().replace("#!/usr/bin/python3\n", f"#!{python}\n", 1)
    if _install(os.path.join(state_dir, "bin", config.ROUTES_SCRIPT), script, 0o755, check_mode):
        changes.append(f"{config.ROUTES_SCRIPT} installed")
    units_changed = []
    if _install(os.path.join(UNIT_DIR, config.NETWORK_UNIT), boot_unit_text(state_dir, python), 0o644, check_mode):
        units_changed.append(config.NETWORK_UNIT)
    dns_unit = dns.unit_text(node, state_dir)
    if _install(os.path.join(UNIT_DIR, dns.UNIT), dns_unit, 0o644, check_mode):
        units_changed.append(dns.UNIT)
    changes += [f"{unit} installed" for unit in units_changed]
    if check_mode:
        if _read(sync.script_path(state_dir)) is None:
            changes.append(f"{sync.SCRIPT_NAME} installed")
        return commands, changes
    if sync.install_script(state_dir, python):
        changes.append(f"{sync.SCRIPT_NAME} installed")
    if units_changed:
        _systemctl(module, "daemon-reload")
    for unit in (config.NETWORK_UNIT, dns.UNIT):
        if _systemctl(module, "is-enabled", "--quiet", unit, check=False) != 0:
            _systemctl(module, "enable", "--quiet", unit)
            changes.append(f"{unit} enabled")
    # The boot unit is applied above already: marked active without running it again.
    if _systemctl(module, "is-active", "--quiet", config.NETWORK_UNIT, check=False) != 0:
        _systemctl(module, "start", config.NETWORK_UNIT)
    if dns.UNIT in units_changed:
        _systemctl(module, "restart", dns.UNIT)
    elif _systemctl(module, "is-active", "--quiet", dns.UNIT, check=False) != 0:
        _systemctl(module, "start", dns.UNIT)
        changes.append(f"{dns.UNIT} started")
    synced = sync.run_sync(state_dir)
    for problem in synced.get("problems") or ():
        module.warn(f"network sync: {problem}")
    if synced.get("changed"):
        changes.append("network sync applied changes (nftables, DNS)")
    return commands, changes


def absent(module, state_dir, check_mode):
    previous = _previous(state_dir, module)
    commands = routes.converge(None, previous, check_mode)
    changes = []
    for unit in (dns.UNIT, config.NETWORK_UNIT):
        path = os.path.join(UNIT_DIR, unit)
        if os.path.lexists(path):
            changes.append(f"{unit} removed")
            if not check_mode:
                _systemctl(module, "disable", "--now", "--quiet", unit, check=False)
                os.unlink(path)
    if changes and not check_mode:
        _systemctl(module, "daemon-reload")
    for path in (config.node_config_path(state_dir), os.path.join(state_dir, "bin", config.ROUTES_SCRIPT)):
        if _remove(path, check_mode):
            changes.append(f"{path} removed")
    # The Service rules the network sync made: without node.json it no longer maintains them.
    if _command(module, ["nft", "list", "table", *NFT_TABLE], check=False)[0] == 0:
        changes.append(f"nftables table {' '.join(NFT_TABLE)} deleted")
        if not check_mode:
            _command(module, ["nft", "delete", "table", *NFT_TABLE])
    # With it the sync's record of what it loaded: else a later cluster network whose rules render the same would
    # see nothing to load and leave the host without its table.
    if not check_mode and os.path.exists(sync.applied_path()):
        os.unlink(sync.applied_path())
    return commands, changes


def _previous(state_dir, module):
    try:
        return config.read_node_config(state_dir)
    except config.NetworkConfigError as exc:
        module.warn(f"{exc}: replaced")
        return None


def main():
    module = AnsibleModule(
        argument_spec={
            "step": {"type": "str", "choices": ["observe", "apply"], "default": "observe"},
            "node_config": {"type": "dict"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "state_dir": {"type": "path", "default": "/var/lib/hostfleet"},
        },
        supports_check_mode=True,
    )
    params = module.params
    state_dir = params["state_dir"]
    if not os.path.isabs(state_dir):
        module.fail_json(msg=f"state_dir: {state_dir!r} is not an absolute path")
    if params["step"] == "observe":
        node = _previous(state_dir, module)
        module.exit_json(changed=False, node_config=node, networks=networks(module, node["bridge"] if node else None))
    try:
        if params["state"] == "present":
            if params["node_config"] is None:
                module.fail_json(msg="node_config: required with step=apply and state=present")
            node = config.check_node_config(params["node_config"], "node_config")
            before = _read(config.node_config_path(state_dir)) or ""
            commands, changes = present(module, state_dir, node, module.check_mode)
            after = node_json_text(node)
        else:
            before = _read(config.node_config_path(state_dir)) or ""
            commands, changes = absent(module, state_dir, module.check_mode)
            after = ""
    except (routes.RoutesError, config.NetworkConfigError, OSError) as exc:
        module.fail_json(msg=str(exc))
    changed = bool(commands or changes)
    result = {"changed": changed, "commands": commands, "changes": changes}
    if module._diff and changed:
        result["diff"] = {"before": before, "after": after if any("node.json" in c for c in changes) or params["state"] == "absent" else before,
                          "before_header": config.node_config_path(state_dir), "after_header": config.node_config_path(state_dir),
                          "prepared": "\n".join(commands + changes)}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
