# -*- coding: utf-8 -*-
# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The service module's argument spec, shared by its module file (documentation checks) and its action plugin."""

from __future__ import annotations

SERVICE_ARGS = {
    "name": {"type": "str", "required": True},
    "namespace": {"type": "str", "default": "default"},
    "spec": {"type": "dict", "default": {}},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    "nodes": {"type": "str"},
    "wait_timeout": {"type": "int", "default": 600},
    "state_dir": {"type": "path", "default": "/var/lib/hostfleet"},
}
