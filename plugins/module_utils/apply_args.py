# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs of hostfleet.workloads.apply (controller) and hostfleet.workloads.config_data (hosts)."""

from __future__ import annotations

APPLY_ARGS = dict(
    src=dict(type="path"),
    definition=dict(type="raw"),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    namespace=dict(type="str", default="default"),
    nodes=dict(type="str"),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=600),
    state_dir=dict(type="path", default="/var/lib/hostfleet"),
    unsupported_kinds=dict(type="str", default="skip", choices=["skip", "error"]),
)
APPLY_MUTUALLY_EXCLUSIVE = [["src", "definition"]]
APPLY_REQUIRED_ONE_OF = [["src", "definition"]]

CONFIG_DATA_ARGS = dict(
    kind=dict(type="str", required=True, choices=["ConfigMap", "Secret"]),
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    files=dict(type="dict", default={}, no_log=True),
    immutable=dict(type="bool", default=False),
    state_dir=dict(type="path", default="/var/lib/hostfleet"),
)
