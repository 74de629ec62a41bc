# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs of the observing modules (workload_info, pod_logs), shared by their module files and actions."""

from __future__ import annotations

from ansible_collections.hostfleet.workloads.plugins.module_utils import kinds

# What workload_info's `kind` filter accepts: the registered kinds, then Pod (pods started directly, by owner).
WORKLOAD_KINDS = list(kinds.WORKLOAD_KINDS) + ["Pod"]

WORKLOAD_INFO_ARGS = {
    "kind": {"type": "list", "elements": "str", "choices": WORKLOAD_KINDS},
    "name": {"type": "str"},
    "namespace": {"type": "str"},
    "selector": {"type": "dict"},
    "nodes": {"type": "str"},
    "events": {"type": "bool", "default": False},
    "events_since": {"type": "raw", "default": "1h"},
    "state_dir": {"type": "path", "default": "/var/lib/hostfleet"},
}

POD_LOGS_ARGS = {
    "pod": {"type": "str", "required": True},
    "namespace": {"type": "str", "default": "default"},
    "container": {"type": "str"},
    "since": {"type": "raw"},
    "tail": {"type": "int"},
    "follow": {"type": "float", "default": 0},
    "nodes": {"type": "str"},
    "state_dir": {"type": "path", "default": "/var/lib/hostfleet"},
}
